import protobuf from 'protobufjs';
import { CelebaGanError } from '../errors.js';
import { outputShape } from '../model/shapes.js';
import type { ArchitectureSpec } from '../model/spec.js';
import { packageVersion } from '../version.js';

/**
 * The `metadata_props` a celeba-gan ONNX model carries, so that a consumer (`generate`) needs no
 * flags: what z to feed and what comes out. Keys are stable; values are strings (ONNX's rule).
 */
export const META = Object.freeze({
  version: 'celeba_gan.version',
  preset: 'celeba_gan.preset',
  width: 'celeba_gan.width',
  zDim: 'celeba_gan.z_dim',
  /** `uniform` = U(-1, 1), `normal` = N(0, 1) */
  latent: 'celeba_gan.latent',
  imageHeight: 'celeba_gan.image_height',
  imageWidth: 'celeba_gan.image_width',
  imageChannels: 'celeba_gan.image_channels',
  /** always `NCHW` */
  layout: 'celeba_gan.layout',
  /** always `-1,1` */
  outputRange: 'celeba_gan.output_range',
  /** training step of the exported checkpoint (set by exportRun) */
  step: 'celeba_gan.step',
  /** sha256 of the checkpoint's weights file (set by exportRun) */
  checkpointSha256: 'celeba_gan.checkpoint_sha256',
  /** `running-stats` or `folded` */
  batchNorm: 'celeba_gan.batchnorm',
});

/** The keys derived from the spec alone; exportRun adds step, checkpoint hash and run details. */
export function specMetadata(spec: ArchitectureSpec, foldBatchNorm: boolean): Record<string, string> {
  const [channels, height, width] = outputShape(spec, 'generator');
  return {
    [META.version]: packageVersion(),
    [META.preset]: spec.preset,
    [META.width]: String(spec.width),
    [META.zDim]: String(spec.zDim),
    [META.latent]: spec.latent,
    [META.imageHeight]: String(height),
    [META.imageWidth]: String(width),
    [META.imageChannels]: String(channels),
    [META.layout]: 'NCHW',
    [META.outputRange]: '-1,1',
    [META.batchNorm]: foldBatchNorm ? 'folded' : 'running-stats',
  };
}

export interface OnnxHeader {
  irVersion: number;
  producerName: string;
  producerVersion: string;
  /** Version of the default (`ai.onnx`) operator set. */
  opset: number | undefined;
  docString: string;
  metadata: Record<string, string>;
}

/**
 * Read a model's top-level fields and `metadata_props` without decoding the graph (whose weights
 * can be tens of MB): walks ModelProto's fields and skips the graph. onnxruntime-node does not
 * expose custom metadata, so consumers read it here.
 */
export function readOnnxHeader(bytes: Uint8Array, source = 'ONNX model'): OnnxHeader {
  const out: OnnxHeader = { irVersion: 0, producerName: '', producerVersion: '', opset: undefined, docString: '', metadata: {} };
  try {
    const r = protobuf.Reader.create(bytes);
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      // Field numbers of onnx.ModelProto (see onnx-proto.ts).
      if (field === 1 && wire === 0) out.irVersion = Number(r.int64());
      else if (field === 2 && wire === 2) out.producerName = r.string();
      else if (field === 3 && wire === 2) out.producerVersion = r.string();
      else if (field === 6 && wire === 2) out.docString = r.string();
      else if (field === 8 && wire === 2) {
        const end = r.uint32() + r.pos;
        let domain = '';
        let version: number | undefined;
        while (r.pos < end) {
          const t = r.uint32();
          if (t >>> 3 === 1 && (t & 7) === 2) domain = r.string();
          else if (t >>> 3 === 2 && (t & 7) === 0) version = Number(r.int64());
          else r.skipType(t & 7);
        }
        if ((domain === '' || domain === 'ai.onnx') && version !== undefined) out.opset = version;
      } else if (field === 14 && wire === 2) {
        const end = r.uint32() + r.pos;
        let key = '';
        let value = '';
        while (r.pos < end) {
          const t = r.uint32();
          if (t >>> 3 === 1 && (t & 7) === 2) key = r.string();
          else if (t >>> 3 === 2 && (t & 7) === 2) value = r.string();
          else r.skipType(t & 7);
        }
        out.metadata[key] = value;
      } else r.skipType(wire);
    }
  } catch (err) {
    throw new CelebaGanError('E_ONNX_CORRUPT', `${source} is not a valid ONNX model: ${(err as Error).message}`, {
      hint: 'The file may be truncated; export it again with `celeba-gan export --onnx --force`.',
      cause: err,
    });
  }
  if (out.irVersion === 0) {
    throw new CelebaGanError('E_ONNX_CORRUPT', `${source} is not a valid ONNX model: it has no ir_version`, {
      hint: 'Pass a .onnx file written by `celeba-gan export --onnx`.',
    });
  }
  return out;
}
