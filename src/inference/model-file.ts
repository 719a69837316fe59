import protobuf from 'protobufjs';

/**
 * Just enough of an ONNX ModelProto reader to validate a file before onnxruntime sees it and to
 * read `metadata_props` (onnxruntime-node does not expose custom metadata). It walks the
 * top-level protobuf fields and skips the graph without decoding it, so it costs microseconds
 * even for large models. Field numbers are ONNX's (onnx/onnx.proto3), frozen by its rules.
 */

const IR_VERSION = 1; // int64
const GRAPH = 7; // GraphProto
const OPSET_IMPORT = 8; // repeated OperatorSetIdProto
const METADATA_PROPS = 14; // repeated StringStringEntryProto {key = 1; value = 2}

export interface ModelFileSummary {
  irVersion: number;
  hasGraph: boolean;
  opsetCount: number;
  /** metadata_props in file order (a repeated key keeps its last value). */
  metadata: Map<string, string>;
}

/**
 * Summarise a serialized ModelProto. Throws a plain Error (the caller words the user-facing
 * one) when the bytes are not a protobuf message shaped like an ONNX model.
 */
export function readModelSummary(bytes: Uint8Array): ModelFileSummary {
  const reader = protobuf.Reader.create(bytes);
  let irVersion = 0;
  let hasGraph = false;
  let opsetCount = 0;
  const metadata = new Map<string, string>();
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) throw new Error(`invalid protobuf field number 0 at byte ${reader.pos}`);
    if (field === IR_VERSION && wire === 0) irVersion = Number(reader.int64());
    else if (field === GRAPH && wire === 2) {
      reader.skipType(2);
      hasGraph = true;
    } else if (field === OPSET_IMPORT && wire === 2) {
      reader.skipType(2);
      opsetCount++;
    } else if (field === METADATA_PROPS && wire === 2) {
      const entry = protobuf.Reader.create(reader.bytes());
      let key = '';
      let value = '';
      while (entry.pos < entry.len) {
        const t = entry.uint32();
        if (t >>> 3 === 1 && (t & 7) === 2) key = entry.string();
        else if (t >>> 3 === 2 && (t & 7) === 2) value = entry.string();
        else entry.skipType(t & 7);
      }
      metadata.set(key, value);
    } else reader.skipType(wire);
  }
  if (irVersion <= 0) throw new Error('no ir_version field');
  if (!hasGraph) throw new Error('no graph field');
  return { irVersion, hasGraph, opsetCount, metadata };
}
