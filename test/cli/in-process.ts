// Moved to test/support/in-process.ts; this re-export keeps tests written before the move working. Delete it once nothing imports it.
export * from '../support/in-process.js';
