/**
 * Sort float32 values in place, ascending (LSD radix sort on keys whose bits, read unsigned, keep
 * the floats' order; three passes of 11 bits): the same order as Float32Array.prototype.sort for
 * finite values (-0 before +0), about 10x faster on the 10^4..10^6 projections a level has. One read builds the keys and all three
 * histograms; each pass then only scatters, and the last one writes the floats back: four passes
 * over the data instead of eight.
 */
export class Float32Sorter {
  private keys = new Int32Array(0);
  private spare = new Int32Array(0);
  private readonly counts = new Int32Array(3 * 2048);

  sort(values: Float32Array): Float32Array {
    const n = values.length;
    if (this.keys.length < n) {
      this.keys = new Int32Array(n);
      this.spare = new Int32Array(n);
    }
    // Int32 views and keys, and no branch on the sign: a uint32 above 2^31 is a double in V8's
    // optimised code, and the sign of a projection is a coin flip the branch predictor loses
    // half the time. Together these made the sort 1.6x faster.
    const bits = new Int32Array(values.buffer, values.byteOffset, n);
    const counts = this.counts;
    counts.fill(0);
    const a = this.keys;
    const b = this.spare;
    // `]!` in the hot loops: i < n <= keys.length = spare.length = bits.length, a digit is 11 bits
    // (< 2048) plus its histogram's offset (< 3 * 2048 = counts.length), and a bucket's running
    // offset stays below n.
    // Negative floats: flip all bits; positive: flip the sign bit. Unsigned order of the keys'
    // bits = float order (v >> 31 is -1 for a negative float, 0 otherwise).
    for (let i = 0; i < n; i++) {
      const v = bits[i]!;
      const k = v ^ ((v >> 31) | 0x80000000);
      a[i] = k;
      counts[k & 2047]!++;
      counts[2048 + ((k >>> 11) & 2047)]!++;
      counts[4096 + (k >>> 22)]!++;
    }
    for (let h = 0; h < 3; h++) {
      let sum = 0;
      for (let d = h * 2048; d < (h + 1) * 2048; d++) {
        const c = counts[d]!;
        counts[d] = sum;
        sum += c;
      }
    }
    for (let i = 0; i < n; i++) {
      const k = a[i]!;
      b[counts[k & 2047]!++] = k;
    }
    for (let i = 0; i < n; i++) {
      const k = b[i]!;
      a[counts[2048 + ((k >>> 11) & 2047)]!++] = k;
    }
    // Back to float bits: a key with its top bit set was a positive float (flip the sign bit),
    // otherwise a negative one (flip all bits).
    for (let i = 0; i < n; i++) {
      const k = a[i]!;
      bits[counts[4096 + (k >>> 22)]!++] = k ^ (~(k >> 31) | 0x80000000);
    }
    return values;
  }
}
