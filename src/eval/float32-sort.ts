/**
 * Sort float32 values in place, ascending (LSD radix sort on order-preserving uint32 keys, three
 * passes of 11 bits): the same order as Float32Array.prototype.sort for finite values, about 3x
 * faster on the 10^4..10^6 projections a level has. One read builds the keys and all three
 * histograms; each pass then only scatters, and the last one writes the floats back: four passes
 * over the data instead of eight.
 */
export class Float32Sorter {
  private keys = new Uint32Array(0);
  private spare = new Uint32Array(0);
  private readonly counts = new Uint32Array(3 * 2048);

  sort(values: Float32Array): Float32Array {
    const n = values.length;
    if (this.keys.length < n) {
      this.keys = new Uint32Array(n);
      this.spare = new Uint32Array(n);
    }
    const bits = new Uint32Array(values.buffer, values.byteOffset, n);
    const counts = this.counts;
    counts.fill(0);
    const a = this.keys;
    const b = this.spare;
    // `]!` in the hot loops: i < n <= keys.length = spare.length = bits.length, a digit is 11 bits
    // (< 2048) plus its histogram's offset (< 3 * 2048 = counts.length), and a bucket's running
    // offset stays below n.
    // Negative floats: flip all bits; positive: flip the sign bit. Unsigned order = float order.
    for (let i = 0; i < n; i++) {
      const v = bits[i]!;
      const k = v & 0x80000000 ? ~v >>> 0 : (v | 0x80000000) >>> 0;
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
    for (let i = 0; i < n; i++) {
      const k = a[i]!;
      bits[counts[4096 + (k >>> 22)]!++] = k & 0x80000000 ? (k ^ 0x80000000) >>> 0 : ~k >>> 0;
    }
    return values;
  }
}
