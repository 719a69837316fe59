import protobuf from 'protobufjs';

/**
 * The subset of the ONNX protobuf schema this project writes and reads, as proto text embedded
 * in TypeScript (so it is found from src/ under tsx and from dist/ alike; no .proto file to ship).
 *
 * Why our own subset rather than an npm package with ONNX's schema: the packages that ship it
 * for protobufjs (e.g. `onnx-proto`) are generated code pinned to old protobufjs releases and to
 * old IR versions, unmaintained for years; the messages we need are few and their field numbers
 * are frozen by ONNX's compatibility rules. Field numbers below are exactly those of
 * onnx/onnx.proto3 in the ONNX repository; fields we never write are left out (protobuf skips
 * unknown fields when reading a model written by another tool).
 */
const ONNX_PROTO_SUBSET = `
syntax = "proto3";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0;
    FLOAT = 1;
    INT = 2;
    STRING = 3;
    TENSOR = 4;
    GRAPH = 5;
    FLOATS = 6;
    INTS = 7;
    STRINGS = 8;
    TENSORS = 9;
    GRAPHS = 10;
    SPARSE_TENSOR = 11;
    SPARSE_TENSORS = 12;
  }
  string name = 1;
  string doc_string = 13;
  AttributeType type = 20;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
}

message ValueInfoProto {
  string name = 1;
  TypeProto type = 2;
  string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  string domain = 7;
  repeated AttributeProto attribute = 5;
  string doc_string = 6;
}

message ModelProto {
  int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}

message StringStringEntryProto {
  string key = 1;
  string value = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  enum DataType {
    UNDEFINED = 0;
    FLOAT = 1;
    UINT8 = 2;
    INT8 = 3;
    UINT16 = 4;
    INT16 = 5;
    INT32 = 6;
    INT64 = 7;
    STRING = 8;
    BOOL = 9;
    FLOAT16 = 10;
    DOUBLE = 11;
    UINT32 = 12;
    UINT64 = 13;
  }
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  string name = 8;
  string doc_string = 12;
  bytes raw_data = 9;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    int32 elem_type = 1;
    TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  string denotation = 6;
}

message OperatorSetIdProto {
  string domain = 1;
  int64 version = 2;
}
`;

/** ONNX TensorProto.DataType values used here. */
export const DataType = Object.freeze({ FLOAT: 1, INT64: 7 });
/** ONNX AttributeProto.AttributeType values used here. */
export const AttributeType = Object.freeze({ FLOAT: 1, INT: 2, STRING: 3, INTS: 7 });

// Plain-object shapes of the messages (protobufjs `fromObject` input, `toObject` output with
// keepCase and longs as numbers). Only what this project fills in.
export interface TensorShapeDimension {
  dim_value?: number;
  dim_param?: string;
}
export interface ValueInfo {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: TensorShapeDimension[] } } };
  doc_string?: string;
}
export interface Attribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  ints?: number[];
}
export interface Node {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain?: string;
  attribute?: Attribute[];
  doc_string?: string;
}
export interface TensorInit {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
  doc_string?: string;
}
export interface Graph {
  name: string;
  node: Node[];
  initializer: TensorInit[];
  input: ValueInfo[];
  output: ValueInfo[];
  value_info?: ValueInfo[];
  doc_string?: string;
}
export interface Model {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  domain?: string;
  model_version?: number;
  doc_string?: string;
  graph: Graph;
  metadata_props: { key: string; value: string }[];
}

let modelType: protobuf.Type | undefined;

/** The ModelProto type, parsed once from the embedded schema. */
export function modelProtoType(): protobuf.Type {
  if (!modelType) {
    const { root } = protobuf.parse(ONNX_PROTO_SUBSET, { keepCase: true });
    modelType = root.lookupType('onnx.ModelProto');
  }
  return modelType;
}

export function encodeModel(model: Model): Uint8Array {
  const type = modelProtoType();
  const message = type.fromObject(model);
  return type.encode(message).finish();
}

/** Decode a serialized ModelProto (our subset; unknown fields are skipped). int64s become numbers. */
export function decodeModel(bytes: Uint8Array): Model {
  const type = modelProtoType();
  return type.toObject(type.decode(bytes), { longs: Number, defaults: true, arrays: true }) as Model;
}
