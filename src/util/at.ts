/**
 * `items[index]` for an index that a caller hands in (an API argument, a loop over another
 * array): a RangeError naming `what` when it is not one of `items`' indices, so a caller's bug
 * reads as one instead of an `undefined` travelling on. Indices that come from a user's input or
 * a file are checked where they are read, with the `E_*` code that names the fix; this is for
 * the rest. Not for hot numeric loops, where the bound is shown by construction instead.
 */
export function itemAt<T>(items: ArrayLike<T>, index: number, what: string): T {
  if (!Number.isInteger(index) || index < 0 || index >= items.length) {
    throw new RangeError(`${what} index ${index} is outside 0..${items.length - 1}`);
  }
  return items[index] as T;
}
