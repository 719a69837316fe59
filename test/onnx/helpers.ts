// Moved to test/support/onnx.ts; this re-export keeps tests written before the move working. Delete it once nothing imports it.
export * from '../support/onnx.js';
