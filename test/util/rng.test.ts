import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng, deriveSeed } from '../../src/util/rng.js';
import { python } from '../support/onnx.js';
import { referenceSkip } from '../support/references.js';

/**
 * Known-answer vectors for src/util/rng.ts, on which every seeded artefact depends (initial
 * weights, synthetic faces, latents, data order, dropout). The numbers in VECTORS were computed by
 * REFERENCE, a Python implementation written from the published algorithms, not from our
 * TypeScript: xoshiro128** 1.1 (Blackman & Vigna, https://prng.di.unimi.it/xoshiro128starstar.c)
 * seeded by a splitmix32 stream (a Weyl sequence with step 0x9e3779b9 through MurmurHash3's
 * fmix32 finaliser). Keys fold into the seed as rng.ts documents: a number as its low then high
 * 32-bit half, a string character by character, each fold XORing the key into the last output and
 * taking the next splitmix32 output. The last test runs REFERENCE again, so VECTORS cannot drift.
 */

const REFERENCE = String.raw`
import json, math

M32 = 0xFFFFFFFF

class SplitMix32:
    def __init__(self, seed):
        self.s = seed & M32
    def next(self):
        self.s = (self.s + 0x9E3779B9) & M32
        z = self.s
        z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M32
        z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
        return (z ^ (z >> 16)) & M32

def derive_seed(seed, *keys):
    st = SplitMix32(seed)
    h = st.next()
    for key in keys:
        if isinstance(key, int):
            for half in (key & M32, (key >> 32) & M32):
                st.s = h ^ half
                h = st.next()
        else:
            for ch in key:
                st.s = h ^ ord(ch)
                h = st.next()
    return h

def rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & M32

class Xoshiro128StarStar:
    def __init__(self, seed, *keys):
        st = SplitMix32(derive_seed(seed, *keys))
        self.s = [st.next() for _ in range(4)]
        if self.s == [0, 0, 0, 0]:
            self.s[0] = 1
        self.spare = None
    def next_u32(self):
        s = self.s
        result = (rotl((s[1] * 5) & M32, 7) * 9) & M32
        t = (s[1] << 9) & M32
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 11)
        return result
    def uniform(self):  # the top 24 bits: exact in float32
        return (self.next_u32() >> 8) / 16777216
    def int(self, n):
        return math.floor(self.uniform() * n)
    def normal(self):  # Box-Muller: the cosine first, the sine kept for the next call
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        u = 0.0
        while u == 0.0:
            u = self.uniform()
        v = self.uniform()
        r = math.sqrt(-2 * math.log(u))
        self.spare = r * math.sin(2 * math.pi * v)
        return r * math.cos(2 * math.pi * v)
    def permutation(self, n):  # Fisher-Yates from the end
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.int(i + 1)
            p[i], p[j] = p[j], p[i]
        return p

def u32(seed, *keys):
    r = Xoshiro128StarStar(seed, *keys)
    return [r.next_u32() for _ in range(8)]

def series(r, f, n):
    return [f(r) for _ in range(n)]

print(json.dumps({
    "deriveSeed": [[[0], derive_seed(0)], [[1], derive_seed(1)], [[2018, "data-shuffle", 3], derive_seed(2018, "data-shuffle", 3)],
                   [[7, "torch-step", 2**32 + 5], derive_seed(7, "torch-step", 2**32 + 5)], [[4294967295, "z"], derive_seed(4294967295, "z")]],
    "u32": [[[0], u32(0)], [[1], u32(1)], [[2018, "init"], u32(2018, "init")], [[3, "test-z", 9], u32(3, "test-z", 9)]],
    "uniform": series(Xoshiro128StarStar(5, "u"), lambda r: r.uniform(), 6),
    "int": series(Xoshiro128StarStar(6), lambda r: r.int(1000), 10),
    "normal": series(Xoshiro128StarStar(11, "bn"), lambda r: r.normal(), 6),
    "permutation": Xoshiro128StarStar(2018, "data-shuffle", 0).permutation(12),
}))
`;

type Args = [number, ...(number | string)[]];
const VECTORS: {
  deriveSeed: [Args, number][];
  u32: [Args, number[]][];
  uniform: number[];
  int: number[];
  normal: number[];
  permutation: number[];
} = {
  deriveSeed: [
    [[0], 2462723854],
    [[1], 2527132011],
    [[2018, 'data-shuffle', 3], 1056727799],
    [[7, 'torch-step', 4294967301], 2982785993],
    [[4294967295, 'z'], 83616716],
  ],
  u32: [
    [[0], [4187458251, 2444602982, 3872279642, 1301277917, 3522596180, 3608892633, 319368982, 3831402213]],
    [[1], [3452021429, 2070578150, 3493707356, 809416686, 4198466742, 930374739, 3361683134, 2245597164]],
    [
      [2018, 'init'],
      [1655751650, 1736883718, 778564190, 633509674, 3207819661, 3116029504, 2685044113, 2228569940],
    ],
    [
      [3, 'test-z', 9],
      [1231124895, 2465954282, 55380599, 1776326162, 146901121, 3214810186, 1839445438, 2852186513],
    ],
  ],
  uniform: [0.1682949662208557, 0.27088212966918945, 0.9362242221832275, 0.9583443999290466, 0.7778920531272888, 0.5911538004875183],
  int: [885, 502, 165, 851, 748, 255, 25, 962, 811, 655],
  normal: [-0.6418164461517942, -0.05803434653839043, -0.9336558263342942, -0.9066853783607369, 1.2086792557414288, 0.9961283929349264],
  permutation: [10, 0, 4, 5, 3, 9, 11, 8, 2, 1, 6, 7],
};

test('deriveSeed: known answers (numbers as two 32-bit halves, strings by character)', () => {
  for (const [args, want] of VECTORS.deriveSeed) assert.equal(deriveSeed(...args), want, JSON.stringify(args));
});

test('xoshiro128** seeded by splitmix32: the first 8 outputs of 4 streams', () => {
  for (const [args, want] of VECTORS.u32) {
    const r = new Rng(...args);
    assert.deepEqual(
      Array.from({ length: 8 }, () => r.nextU32()),
      want,
      JSON.stringify(args),
    );
  }
});

test('uniform (24 bits), int, Box-Muller normal and Fisher-Yates permutation: known answers', () => {
  const u = new Rng(5, 'u');
  assert.deepEqual(
    Array.from({ length: 6 }, () => u.uniform()),
    VECTORS.uniform,
  );
  const i = new Rng(6);
  assert.deepEqual(
    Array.from({ length: 10 }, () => i.int(1000)),
    VECTORS.int,
  );
  // log, sin and cos may differ in the last bit between libm and V8.
  const n = new Rng(11, 'bn');
  for (const [k, want] of VECTORS.normal.entries()) {
    const got = n.normal();
    assert.ok(Math.abs(got - want) <= 1e-14, `normal #${k}: ${got} vs ${want}`);
  }
  assert.deepEqual([...new Rng(2018, 'data-shuffle', 0).permutation(12)], VECTORS.permutation);
});

test('getState/setState restore a stream exactly', () => {
  const a = new Rng(9, 'state');
  a.nextU32();
  const saved = a.getState();
  const next = [a.nextU32(), a.nextU32()];
  const b = new Rng(0);
  b.setState(saved);
  assert.deepEqual([b.nextU32(), b.nextU32()], next);
  assert.throws(() => b.setState([1, 2, 3]), /Rng state must have 4 words, got 3/);
});

test(
  'the known answers are what the independent Python reference computes',
  { skip: referenceSkip({ modules: ['json', 'math'], install: 'apt-get install python3' }) },
  () => {
    assert.deepEqual(JSON.parse(python(REFERENCE)), VECTORS);
  },
);
