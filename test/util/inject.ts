// Moved to test/support/inject.ts; this re-export keeps tests written before the move working. Delete it once nothing imports it.
export * from '../support/inject.js';
