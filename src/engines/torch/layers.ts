import type { NativeLayer, NativeParam } from '../../bindings/torch.js';
import { allParameters, layerInfos, parameterList, type ParamRole } from '../../model/shapes.js';
import type { ArchitectureSpec, NetworkName } from '../../model/spec.js';

/**
 * The spec as the addon reads it: each layer with its explicit pads (src/model/shapes.ts) and the
 * canonical names of its tensors, so the C++ side builds both networks from this data alone.
 */

export function nativeParams(spec: ArchitectureSpec): NativeParam[] {
  return allParameters(spec).map((p) => ({ name: p.name, shape: [...p.shape], trainable: p.trainable, network: p.network }));
}

export function nativeLayers(spec: ArchitectureSpec, network: NetworkName): NativeLayer[] {
  const params = parameterList(spec, network);
  const named = (layer: string, role: ParamRole): string | undefined => params.find((p) => p.layer === layer && p.role === role)?.name;
  return layerInfos(spec, network).map((info): NativeLayer => {
    const l = info.layer;
    switch (l.kind) {
      case 'dense':
        return { kind: l.kind, weight: named(l.name, 'weight'), bias: named(l.name, 'bias') };
      case 'reshape':
        return { kind: l.kind, shape: [l.channels, l.height, l.width] };
      case 'conv2d':
      case 'convTranspose2d': {
        const { h, w } = info.pads!;
        return { kind: l.kind, weight: named(l.name, 'weight'), bias: named(l.name, 'bias'), stride: l.stride, pads: [h.begin, h.end, w.begin, w.end] };
      }
      case 'batchNorm':
        return {
          kind: l.kind,
          weight: named(l.name, 'gamma'),
          bias: named(l.name, 'beta'),
          runningMean: named(l.name, 'runningMean'),
          runningVar: named(l.name, 'runningVar'),
          momentum: l.momentum,
          epsilon: l.epsilon,
        };
      case 'leakyRelu':
        return { kind: l.kind, alpha: l.alpha };
      case 'dropout':
        return { kind: l.kind, rate: l.rate };
      case 'projectLabels':
        return { kind: l.kind, weight: named(l.name, 'weight') };
      default:
        return { kind: l.kind };
    }
  });
}
