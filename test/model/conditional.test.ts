import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PRESET_NAMES, buildSpec } from '../../src/config/presets.js';
import type { CelebaGanError } from '../../src/errors.js';
import { emaStatsLabels, EMA_STATS_CHUNK, EMA_STATS_CHUNKS } from '../../src/engines/ema.js';
import { initialWeights } from '../../src/model/init.js';
import { allParameters, layerInfos, parameterList } from '../../src/model/shapes.js';
import type { ArchitectureSpec } from '../../src/model/spec.js';

const ATTRS = ['Smiling', 'Eyeglasses', 'Blond_Hair'];

test('unconditional specs are unchanged by the conditioning option: the same JSON and parameters', () => {
  for (const preset of PRESET_NAMES) {
    const plain = buildSpec(preset, 0.5);
    assert.equal(JSON.stringify(buildSpec(preset, 0.5, {})), JSON.stringify(plain));
    assert.equal(JSON.stringify(buildSpec(preset, 0.5, { attributes: [] })), JSON.stringify(plain));
    assert.equal(plain.conditioning, undefined);
    assert.ok(!JSON.stringify(plain).includes('Labels'), 'no label layers');
  }
});

for (const preset of PRESET_NAMES) {
  test(`${preset} conditional: G's first layer takes zDim + K inputs, D gains E [K, F] on the features its last layer reads; nothing else changes`, () => {
    const plain = buildSpec(preset, 1);
    const spec = buildSpec(preset, 1, { attributes: ATTRS });
    assert.deepEqual(spec.conditioning, { attributes: ATTRS });
    const g = layerInfos(spec, 'generator');
    assert.equal(g[0]!.layer.kind, 'concatLabels');
    assert.deepEqual(g[0]!.output, [plain.zDim + ATTRS.length]);
    // The rest of the generator is the unconditional one's, shape for shape (dcgan64's first
    // reshape, of z to zDim x 1 x 1, carries the labels too).
    assert.deepEqual(
      g.slice(2).map((l) => l.output),
      layerInfos(plain, 'generator')
        .slice(1)
        .map((l) => l.output),
    );
    const d = layerInfos(spec, 'discriminator');
    const at = d.findIndex((l) => l.layer.kind === 'projectLabels');
    const weighted = d.filter((l) => l.layer.kind === 'dense' || l.layer.kind === 'conv2d').map((l) => l.index);
    assert.equal(
      weighted.find((i) => i > at),
      weighted.at(-1),
      'the projection reads what the last layer with weights reads',
    );
    const features = d[at]!.input.reduce((a, b) => a * b, 1);
    assert.equal(features, preset === 'seed28' ? 4096 : 8192);
    // Parameters: the unconditional list, the first generator weight widened by K, E added.
    const names = (s: ArchitectureSpec): string[] => allParameters(s).map((p) => p.name);
    assert.deepEqual(
      names(spec).filter((n) => n !== 'discriminator.embed.weight'),
      names(plain),
    );
    assert.ok(names(spec).includes('discriminator.embed.weight'));
    const first = parameterList(spec, 'generator')[0]!;
    const firstPlain = parameterList(plain, 'generator')[0]!;
    const widened = preset === 'seed28' ? [firstPlain.shape[0]!, 100 + ATTRS.length] : [100 + ATTRS.length, ...firstPlain.shape.slice(1)];
    assert.deepEqual(first.shape, widened);
    const embed = allParameters(spec).find((p) => p.name === 'discriminator.embed.weight')!;
    assert.deepEqual(embed, {
      name: 'discriminator.embed.weight',
      network: 'discriminator',
      layer: 'embed',
      role: 'weight',
      shape: [ATTRS.length, features],
      trainable: true,
    });
    // Initialised like every weight of the preset (glorot / DCGAN normal), and not zero.
    const e = initialWeights(spec, 1).get('discriminator.embed.weight')!.data;
    assert.ok(e.some((v) => v !== 0));
    if (spec.training.init.kind === 'glorotUniform') assert.ok(e.every((v) => Math.abs(v) <= Math.sqrt(6 / (features + ATTRS.length))));
    // The other tensors' initial values do not move (each has its own stream).
    assert.deepEqual(initialWeights(spec, 1).get('discriminator.conv1.weight'), initialWeights(plain, 1).get('discriminator.conv1.weight'));
  });
}

test('the EMA statistics labels follow the attribute frequencies, from a fixed stream', () => {
  const spec = buildSpec('seed28', 0.125, { attributes: ATTRS, frequencies: [0.5, 0.1, 0.9] });
  const y = emaStatsLabels(spec)!;
  assert.equal(y.length, EMA_STATS_CHUNKS * EMA_STATS_CHUNK * ATTRS.length);
  assert.deepEqual(emaStatsLabels(spec), y, 'deterministic');
  const rows = y.length / ATTRS.length;
  const freq = [0, 1, 2].map((k) => y.filter((v, i) => i % 3 === k && v === 1).length / rows);
  // 512 draws: 4 standard deviations of a binomial proportion is at most 0.09.
  [0.5, 0.1, 0.9].forEach((f, k) => assert.ok(Math.abs(freq[k]! - f) < 0.09, `attribute ${k}: ${freq[k]} vs ${f}`));
  assert.ok(y.every((v) => v === 1 || v === -1));
  assert.equal(emaStatsLabels(buildSpec('seed28', 0.125)), undefined);
});

test('ERROR PATH - bad attribute lists and frequencies are usage errors naming the problem', () => {
  const bad = (opts: Parameters<typeof buildSpec>[2], re: RegExp) =>
    assert.throws(
      () => buildSpec('seed28', 1, opts),
      (err: CelebaGanError) => {
        assert.equal(err.code, 'E_BAD_ARGUMENT');
        assert.equal(err.kind, 'usage');
        assert.match(err.message, re);
        return true;
      },
    );
  bad({ attributes: ['Smiling', 'Smiling'] }, /"Smiling" is listed twice/);
  bad({ attributes: ['Smiling', 'has space'] }, /attribute names of letters.*"has space"/);
  bad({ attributes: ['Smiling'], frequencies: [0.5, 0.5] }, /Expected 1 attribute frequencies/);
  bad({ attributes: ['Smiling'], frequencies: [1.5] }, /frequency of Smiling/);
  bad({ frequencies: [0.5] }, /frequencies were given without attributes/);
});

test('ERROR PATH - a label layer in an unconditional spec is E_SPEC', () => {
  const plain = buildSpec('seed28', 0.25);
  const broken: ArchitectureSpec = { ...plain, generator: [{ kind: 'concatLabels' }, ...plain.generator] };
  assert.throws(
    () => layerInfos(broken, 'generator'),
    (err: CelebaGanError) => err.code === 'E_SPEC' && /generator layer 0 \(concatLabels\) needs attribute labels/.test(err.message),
  );
});
