import { loadTfjs, type TfjsBackendName, TFJS_BACKENDS } from '../../bindings/tfjs.js';
import { UsageError } from '../../errors.js';
import { initialWeights } from '../../model/init.js';
import { allParameters, type LayerInfo, type ParamInfo } from '../../model/shapes.js';
import type { ArchitectureSpec, NetworkName } from '../../model/spec.js';
import type { TensorMap } from '../../model/tensors.js';
import { stepRandomness } from '../randomness.js';
import { EMA_STATS_CHUNK, EMA_STATS_CHUNKS, assertEmaDecay, emaDecayAt, emaStatsLabels, emaStatsLatents } from '../ema.js';
import type { EngineInfo, GeneratorWeights, OptimizerState, StepMetrics, TrainStepOptions, TrainingEngine } from '../engine.js';
import { nchwToNhwc, nhwcToNchw, toCanonicalLayout, toEngineLayout } from './layout.js';
import { Network, type TrainMode } from './network.js';
import type { Scalar, Tensor, Tf, Variable } from './types.js';
import { checkedEma, checkedLabels, checkedState } from '../state.js';
import { attributeCount } from '../../model/shapes.js';

/**
 * The TensorFlow.js engine: both networks as explicit tf.Variables built from the spec, Adam
 * written out here (PyTorch's update rule) so its moments are the canonical `adam.m.<name>` /
 * `adam.v.<name>` tensors and a resume is exact. Implements TrainingEngine (src/engines/engine.ts).
 */

export interface TfjsEngineOptions {
  /** `auto` (default) | `tfjs-node-gpu` | `tfjs-node` | `cpu`. */
  backend?: string;
  /** Not selectable in tfjs (use CUDA_VISIBLE_DEVICES with tfjs-node-gpu); must be unset. */
  device?: string;
  /** Not settable after load in tfjs (use TF_NUM_INTRAOP_THREADS for tfjs-node); ignored. */
  threads?: number;
}

/** Real images: uint8 -> float32 exactly as float32 arithmetic does x / 127.5 - 1 (torch-identical). */
const PIXEL_TO_FLOAT = Float32Array.from({ length: 256 }, (_, x) => Math.fround(Math.fround(x / 127.5) - 1));

interface Slot {
  info: ParamInfo;
  variable: Variable;
  m?: Variable;
  v?: Variable;
  /** The EMA copy (generator tensors only, while the EMA is on). */
  ema?: Variable;
}

export class TfjsEngine implements TrainingEngine {
  private readonly slots = new Map<string, Slot>();
  private readonly vars = new Map<string, Variable>();
  private readonly generator: Network;
  private readonly discriminator: Network;
  /** The EMA generator's variables by canonical name (filled by setEma) and the network over them. */
  private readonly emaVars = new Map<string, Variable>();
  private readonly emaGenerator: Network;
  private emaDecay = 0;
  /** The EMA weights moved since its batch-norm statistics were last computed (src/engines/ema.ts). */
  private emaStale = false;
  private adamSteps = { generator: 0, discriminator: 0 };
  private disposed = false;

  constructor(
    private readonly tf: Tf,
    readonly spec: ArchitectureSpec,
    readonly info: EngineInfo,
    /** tfjs's name for the backend this engine runs on: `tensorflow` or `cpu`. */
    private readonly tfBackend: string = tf.getBackend(),
  ) {
    const init = initialWeights(spec, 0);
    for (const p of allParameters(spec)) {
      const value = toEngineLayout(tf, p, init.get(p.name)!.data);
      const variable = tf.variable(value, p.trainable);
      value.dispose();
      const slot: Slot = { info: p, variable };
      if (p.trainable) {
        slot.m = tf.tidy(() => tf.variable(tf.zerosLike(variable), false));
        slot.v = tf.tidy(() => tf.variable(tf.zerosLike(variable), false));
      }
      this.slots.set(p.name, slot);
      this.vars.set(p.name, variable);
    }
    this.generator = new Network(tf, spec, 'generator', this.vars);
    this.discriminator = new Network(tf, spec, 'discriminator', this.vars);
    this.emaGenerator = new Network(tf, spec, 'generator', this.emaVars);
  }

  private check(): void {
    if (this.disposed) throw new Error('tfjs engine used after dispose()');
  }

  /** tfjs has one global backend; others in this process (evaluation's wasm) may switch it. */
  private async ready(): Promise<void> {
    this.check();
    if (this.tf.getBackend() !== this.tfBackend) await this.tf.setBackend(this.tfBackend);
  }

  async setWeights(weights: TensorMap, optimizer?: OptimizerState): Promise<void> {
    this.check();
    // Check everything first, so a bad map changes nothing.
    const state = checkedState(this.spec, weights, optimizer);
    const tf = this.tf;
    const assign = (variable: Variable, p: ParamInfo, data: Float32Array): void => {
      const t = toEngineLayout(tf, p, data);
      variable.assign(t);
      t.dispose();
    };
    for (const slot of this.slots.values()) {
      const p = slot.info;
      assign(slot.variable, p, state.weights[p.name]!);
      if (state.optimizer && slot.m && slot.v) {
        assign(slot.m, p, state.optimizer[`adam.m.${p.name}`]!);
        assign(slot.v, p, state.optimizer[`adam.v.${p.name}`]!);
      }
    }
    if (optimizer) this.adamSteps = { ...optimizer.steps };
  }

  private async read(p: ParamInfo, t: Tensor): Promise<Float32Array> {
    const c = toCanonicalLayout(this.tf, p, t);
    try {
      return Float32Array.from(await c.data());
    } finally {
      c.dispose();
    }
  }

  async getWeights(): Promise<TensorMap> {
    this.check();
    const out: TensorMap = new Map();
    for (const { info, variable } of this.slots.values()) out.set(info.name, { shape: [...info.shape], data: await this.read(info, variable) });
    return out;
  }

  async getOptimizerState(): Promise<OptimizerState> {
    this.check();
    const tensors: TensorMap = new Map();
    const slots = [...this.slots.values()].filter((s) => s.m && s.v);
    for (const s of slots) tensors.set(`adam.m.${s.info.name}`, { shape: [...s.info.shape], data: await this.read(s.info, s.m!) });
    for (const s of slots) tensors.set(`adam.v.${s.info.name}`, { shape: [...s.info.shape], data: await this.read(s.info, s.v!) });
    return { tensors, steps: { ...this.adamSteps } };
  }

  async setEma(decay: number, generator?: TensorMap): Promise<void> {
    this.check();
    assertEmaDecay(decay);
    const start = generator ? checkedEma(this.spec, generator) : null;
    const tf = this.tf;
    for (const slot of this.slots.values()) {
      if (slot.info.network !== 'generator') continue;
      if (decay === 0) {
        slot.ema?.dispose();
        delete slot.ema;
        continue;
      }
      const value = start ? toEngineLayout(tf, slot.info, start[slot.info.name]!) : tf.clone(slot.variable);
      if (slot.ema) slot.ema.assign(value);
      else slot.ema = tf.variable(value, false);
      value.dispose();
    }
    this.emaVars.clear();
    for (const slot of this.slots.values()) if (slot.ema) this.emaVars.set(slot.info.name, slot.ema);
    this.emaDecay = decay;
    this.emaStale = false;
  }

  /**
   * The EMA generator's batch-norm running statistics, recomputed for its averaged weights if they
   * moved: the cumulative average (chunk k enters with weight 1 / (k + 1)) of each layer's batch
   * statistics over the chunks of emaStatsLatents, train mode without dropout (src/engines/ema.ts).
   */
  private freshEma(): void {
    if (this.emaDecay === 0 || !this.emaStale) return;
    const tf = this.tf;
    const zDim = this.spec.zDim;
    const K = attributeCount(this.spec);
    const all = emaStatsLatents(this.spec);
    const allLabels = emaStatsLabels(this.spec);
    for (let k = 0; k < EMA_STATS_CHUNKS; k++) {
      const kept: Tensor[] = [];
      const mode: TrainMode = { train: true, masks: null, running: new Map(), kept, momentum: k / (k + 1) };
      tf.tidy(() => {
        const z = tf.tensor(all.subarray(k * EMA_STATS_CHUNK * zDim, (k + 1) * EMA_STATS_CHUNK * zDim), [EMA_STATS_CHUNK, zDim], 'float32');
        const y = allLabels
          ? tf.tensor(allLabels.subarray(k * EMA_STATS_CHUNK * K, (k + 1) * EMA_STATS_CHUNK * K), [EMA_STATS_CHUNK, K], 'float32')
          : undefined;
        this.emaGenerator.forward(z, mode, y);
      });
      for (const [name, value] of mode.running) this.emaVars.get(name)!.assign(value);
      for (const t of kept) t.dispose();
    }
    this.emaStale = false;
  }

  async getEmaWeights(): Promise<TensorMap | null> {
    this.check();
    if (this.emaDecay === 0) return null;
    this.freshEma();
    const out: TensorMap = new Map();
    for (const { info, ema } of this.slots.values()) if (ema) out.set(info.name, { shape: [...info.shape], data: await this.read(info, ema) });
    return out;
  }

  /** The EMA update after the G update with `t` updates before it (see src/engines/ema.ts). */
  private updateEma(t: number): void {
    if (this.emaDecay === 0) return;
    const tf = this.tf;
    const d = emaDecayAt(this.emaDecay, t);
    for (const s of this.slots.values()) {
      if (!s.ema) continue;
      // Batch-norm running statistics: recomputed when read (freshEma).
      if (s.info.trainable) tf.tidy(() => s.ema!.assign(tf.add(tf.mul(s.ema!, d), tf.mul(s.variable, 1 - d))));
    }
    this.emaStale = true;
  }

  private trainable(network: NetworkName): Slot[] {
    return [...this.slots.values()].filter((s) => s.info.network === network && s.info.trainable);
  }

  /** PyTorch's Adam (torch.optim.Adam, 1.13 single-tensor path), applied in place. */
  private adam(network: NetworkName, grads: Record<string, Tensor>): void {
    const tf = this.tf;
    const { learningRate: lr, beta1, beta2, epsilon } = this.spec.training;
    const t = ++this.adamSteps[network];
    const bc1 = 1 - beta1 ** t;
    const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
    const stepSize = lr / bc1;
    for (const s of this.trainable(network)) {
      const g = grads[s.variable.name];
      if (!g) throw new Error(`tfjs engine: no gradient for ${s.info.name}`);
      tf.tidy(() => {
        const m = tf.add(tf.mul(s.m!, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(s.v!, beta2), tf.mul(tf.mul(g, g), 1 - beta2));
        const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), epsilon);
        s.variable.assign(tf.sub(s.variable, tf.mul(tf.div(m, denom), stepSize)));
        s.m!.assign(m);
        s.v!.assign(v);
      });
    }
  }

  /** Sigmoid cross-entropy with logits, numerically stable: max(x, 0) - x * y + log(1 + exp(-|x|)). */
  private bce(logits: Tensor, label: number): Tensor {
    const tf = this.tf;
    return tf.mean(tf.add(tf.sub(tf.relu(logits), tf.mul(logits, label)), tf.log1p(tf.exp(tf.neg(tf.abs(logits))))));
  }

  private masks(list: Float32Array[] | null, n: number): Tensor[] | null {
    if (!list) return null;
    const tf = this.tf;
    const shapes = this.generator.infos.filter((i) => i.layer.kind === 'dropout').map((i) => i.input);
    if (list.length !== shapes.length) throw new Error(`randomness has ${list.length} dropout masks, the generator has ${shapes.length} dropout layers`);
    return list.map((mask, i) => nchwToNhwc(tf, tf.tensor(mask, [n, ...shapes[i]!], 'float32')));
  }

  async trainStep(batch: Uint8Array, n: number, opts: TrainStepOptions): Promise<StepMetrics> {
    await this.ready();
    const { height: H, width: W, channels: C } = this.spec.image;
    if (!Number.isInteger(n) || n < 2) throw new UsageError('E_BAD_ARGUMENT', `Expected a batch of at least 2 images for trainStep but received ${n}`);
    if (batch.length !== n * H * W * C) throw new Error(`trainStep: batch has ${batch.length} bytes, ${n} images of ${H}x${W}x${C} need ${n * H * W * C}`);
    const r = opts.randomness ?? stepRandomness(this.spec, opts.seed, opts.step, n);
    if (r.z.length !== n * this.spec.zDim) throw new Error(`trainStep: z has ${r.z.length} values, expected ${n}x${this.spec.zDim}`);
    const labelData = checkedLabels(this.spec, opts.labels, n, 'trainStep');
    const realData = new Float32Array(batch.length);
    for (let i = 0; i < batch.length; i++) realData[i] = PIXEL_TO_FLOAT[batch[i]!]!;

    const tf = this.tf;
    const kept: Tensor[] = [];
    const applyRunning = (running: Map<string, Tensor>): void => {
      for (const [name, value] of running) this.vars.get(name)!.assign(value);
    };
    const metrics = tf.tidy(() => {
      const real = tf.tensor(realData, [n, H, W, C], 'float32');
      const z = tf.tensor(r.z, [n, this.spec.zDim], 'float32');
      // Conditional: the real batch's label rows, for the fakes too (engine.ts).
      const y = labelData ? tf.tensor(labelData, [n, attributeCount(this.spec)], 'float32') : undefined;
      const realLabel = this.spec.training.realLabel;

      // D update: fake from G (train mode, masks m1), then D on real and on fake.
      const modeD: TrainMode = { train: true, masks: this.masks(r.dropoutD, n), running: new Map(), kept };
      const fake = this.generator.forward(z, modeD, y);
      let logitsReal: Tensor | undefined;
      let logitsFake: Tensor | undefined;
      const dVars = this.trainable('discriminator').map((s) => s.variable);
      const d = tf.variableGrads(() => {
        logitsReal = tf.keep(this.discriminator.forward(real, modeD, y));
        logitsFake = tf.keep(this.discriminator.forward(fake, modeD, y));
        kept.push(logitsReal, logitsFake);
        return tf.add<Scalar>(this.bce(logitsReal, realLabel), this.bce(logitsFake, 0));
      }, dVars);
      applyRunning(modeD.running);
      this.adam('discriminator', d.grads);

      // G update: same z, fresh masks m2, through the updated D; non-saturating loss.
      const modeG: TrainMode = { train: true, masks: this.masks(r.dropoutG, n), running: new Map(), kept };
      const gVars = this.trainable('generator').map((s) => s.variable);
      const g = tf.variableGrads(() => this.bce(this.discriminator.forward(this.generator.forward(z, modeG, y), modeG, y), 1) as Scalar, gVars);
      applyRunning(modeG.running);
      const updatesBefore = this.adamSteps.generator;
      this.adam('generator', g.grads);
      this.updateEma(updatesBefore);

      return tf.stack([d.value, g.value, tf.mean(tf.sigmoid(logitsReal!)), tf.mean(tf.sigmoid(logitsFake!))]);
    });
    for (const t of kept) t.dispose();
    try {
      const [lossD, lossG, dReal, dFake] = await metrics.data();
      return { lossD: lossD!, lossG: lossG!, dReal: dReal!, dFake: dFake! };
    } finally {
      metrics.dispose();
    }
  }

  async generate(z: Float32Array, n: number, weights: GeneratorWeights = 'raw', labels?: Float32Array): Promise<Float32Array> {
    await this.ready();
    if (z.length !== n * this.spec.zDim) throw new Error(`generate: z has ${z.length} values, expected ${n}x${this.spec.zDim}`);
    const labelData = checkedLabels(this.spec, labels, n, 'generate');
    if (weights === 'ema' && this.emaDecay === 0) throw new Error('generate: the EMA generator is off (setEma was not called with a decay above 0)');
    const tf = this.tf;
    if (weights === 'ema') this.freshEma();
    const net = weights === 'ema' ? this.emaGenerator : this.generator;
    const out = tf.tidy(() => nhwcToNchw(tf, net.forward(tf.tensor(z, [n, this.spec.zDim], 'float32'), { train: false }, this.labelTensor(labelData, n))));
    try {
      return Float32Array.from(await out.data());
    } finally {
      out.dispose();
    }
  }

  async discriminate(images: Float32Array, n: number, labels?: Float32Array): Promise<Float32Array> {
    await this.ready();
    const { channels: C, height: H, width: W } = this.spec.image;
    if (images.length !== n * C * H * W) throw new Error(`discriminate: images have ${images.length} values, expected ${n}x${C}x${H}x${W}`);
    const labelData = checkedLabels(this.spec, labels, n, 'discriminate');
    const tf = this.tf;
    const out = tf.tidy(() =>
      tf.reshape(this.discriminator.forward(nchwToNhwc(tf, tf.tensor(images, [n, C, H, W], 'float32')), { train: false }, this.labelTensor(labelData, n)), [n]),
    );
    try {
      return Float32Array.from(await out.data());
    } finally {
      out.dispose();
    }
  }

  /** Inside tf.tidy: checked label rows as a [n, K] tensor (undefined for an unconditional spec). */
  private labelTensor(labels: Float32Array | undefined, n: number): Tensor | undefined {
    return labels ? this.tf.tensor(labels, [n, attributeCount(this.spec)], 'float32') : undefined;
  }

  /**
   * Test hook: every layer's output (canonical layout) for one forward pass in inference mode.
   * Used to check each layer's shape against src/model/shapes.ts.
   */
  async traceLayers(network: NetworkName, input: Float32Array, n: number, labels?: Float32Array): Promise<{ info: LayerInfo; shape: number[] }[]> {
    await this.ready();
    const tf = this.tf;
    const out: { info: LayerInfo; shape: number[] }[] = [];
    tf.tidy(() => {
      const { channels: C, height: H, width: W } = this.spec.image;
      const x = network === 'generator' ? tf.tensor(input, [n, this.spec.zDim]) : nchwToNhwc(tf, tf.tensor(input, [n, C, H, W]));
      const net = network === 'generator' ? this.generator : this.discriminator;
      net.forward(x, { train: false }, this.labelTensor(checkedLabels(this.spec, labels, n, 'traceLayers'), n), (info, t) =>
        out.push({ info, shape: [...t.shape] }),
      );
    });
    return out;
  }

  /** Live tfjs tensors (tests check this stays constant across steps). */
  numTensors(): number {
    return this.tf.memory().numTensors;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.slots.values()) {
      s.variable.dispose();
      s.m?.dispose();
      s.v?.dispose();
      s.ema?.dispose();
    }
  }
}

export async function createTfjsEngine(spec: ArchitectureSpec, opts: TfjsEngineOptions = {}): Promise<TfjsEngine> {
  const backend = opts.backend ?? 'auto';
  if (backend !== 'auto' && !(TFJS_BACKENDS as readonly string[]).includes(backend)) {
    throw new UsageError('E_BAD_ARGUMENT', `Unsupported backend "${backend}" for the tfjs engine. Should be one of: auto, ${TFJS_BACKENDS.join(', ')}`);
  }
  if (opts.device !== undefined && opts.device !== 'auto') {
    throw new UsageError('E_BAD_ARGUMENT', `The tfjs engine cannot pick a device (received --device ${opts.device})`, {
      hint: 'Leave --device out; with tfjs-node-gpu choose the GPU with CUDA_VISIBLE_DEVICES, or use --engine torch.',
    });
  }
  const loaded = await loadTfjs(backend as 'auto' | TfjsBackendName);
  const notes = [...loaded.notes];
  if (opts.threads !== undefined) notes.push('threads: tfjs cannot change its thread count once loaded; set TF_NUM_INTRAOP_THREADS for tfjs-node');
  const info: EngineInfo = {
    engine: 'tfjs',
    backend: loaded.description,
    device: loaded.backend === 'tfjs-node-gpu' ? 'cuda' : 'cpu',
    notes,
  };
  return new TfjsEngine(loaded.tf, spec, info, loaded.backend === 'cpu' ? 'cpu' : 'tensorflow');
}
