import { AttributeType, DataType, type Attribute, type Node, type TensorInit, type ValueInfo } from './onnx-proto.js';

/** Collects nodes and initializers of one ONNX graph, in order. */
export class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly initializers: TensorInit[] = [];
  private readonly names = new Set<string>();

  /** Add a float32 initializer (stored as little-endian raw_data); returns its name. */
  float(name: string, dims: readonly number[], data: Float32Array): string {
    this.claim(name);
    this.initializers.push({ name, dims: [...dims], data_type: DataType.FLOAT, raw_data: float32LE(data) });
    return name;
  }

  /** Add an int64 initializer; returns its name. */
  int64(name: string, values: readonly number[]): string {
    this.claim(name);
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    const bytes = new Uint8Array(data.buffer);
    if (!LITTLE_ENDIAN) for (let i = 0; i < bytes.length; i += 8) bytes.subarray(i, i + 8).reverse();
    this.initializers.push({ name, dims: [values.length], data_type: DataType.INT64, raw_data: bytes });
    return name;
  }

  node(opType: string, name: string, inputs: string[], output: string, attributes: Attribute[] = []): string {
    this.claim(name);
    this.nodes.push({ op_type: opType, name, input: inputs, output: [output], attribute: attributes });
    return output;
  }

  private claim(name: string): void {
    if (this.names.has(name)) throw new Error(`ONNX graph builder: duplicate name ${name}`);
    this.names.add(name);
  }
}

export const attr = {
  float: (name: string, f: number): Attribute => ({ name, type: AttributeType.FLOAT, f }),
  int: (name: string, i: number): Attribute => ({ name, type: AttributeType.INT, i }),
  ints: (name: string, ints: readonly number[]): Attribute => ({ name, type: AttributeType.INTS, ints: [...ints] }),
};

/** A float32 tensor value with fixed dims or symbolic (string) ones. */
export function tensorValue(name: string, dims: readonly (number | string)[]): ValueInfo {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) },
      },
    },
  };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** ONNX raw_data is little-endian: a view on little-endian hosts, a swapped copy otherwise. */
function float32LE(data: Float32Array): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN) return view;
  const copy = new Uint8Array(view);
  for (let i = 0; i < copy.length; i += 4) copy.subarray(i, i + 4).reverse();
  return copy;
}
