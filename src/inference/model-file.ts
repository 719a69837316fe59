import { modelProtoType } from '../onnx/onnx-proto.js';

/**
 * A model file's top-level fields, read before onnxruntime sees it: to say "not an ONNX model"
 * clearly and to read `metadata_props` (onnxruntime-node does not expose custom metadata). It
 * decodes with the project's one ONNX schema (src/onnx/onnx-proto.ts, the one the exporter
 * writes with), so there is a single ONNX reader; byte fields (the weights) stay views of the
 * file's buffer, so decoding costs no copy of the weights.
 */

export interface ModelFileSummary {
  irVersion: number;
  hasGraph: boolean;
  opsetCount: number;
  /** metadata_props in file order (a repeated key keeps its last value). */
  metadata: Map<string, string>;
}

interface DecodedModel {
  ir_version?: number | { toNumber(): number };
  graph?: unknown;
  opset_import?: unknown[];
  metadata_props?: { key?: string; value?: string }[];
}

/**
 * Summarise a serialized ModelProto. Throws a plain Error (the caller words the user-facing
 * one) when the bytes are not a protobuf message shaped like an ONNX model.
 */
export function readModelSummary(bytes: Uint8Array): ModelFileSummary {
  const model = modelProtoType().decode(bytes) as unknown as DecodedModel;
  const ir = model.ir_version;
  const irVersion = typeof ir === 'number' ? ir : ir ? ir.toNumber() : 0;
  if (irVersion <= 0) throw new Error('no ir_version field');
  if (!model.graph) throw new Error('no graph field');
  const metadata = new Map<string, string>();
  for (const entry of model.metadata_props ?? []) metadata.set(entry.key ?? '', entry.value ?? '');
  return { irVersion, hasGraph: true, opsetCount: model.opset_import?.length ?? 0, metadata };
}
