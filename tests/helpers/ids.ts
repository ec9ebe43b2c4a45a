/** Unique names for tests. Free of vitest: child worker processes (tests/helpers/*-worker.ts) import it through incident.ts. */
import { randomUUID } from 'node:crypto';

/** A task queue of its own per test, so workers of parallel tests never steal each other's tasks. */
export function uniqueTaskQueue(prefix = 'test'): string {
  return `${prefix}-${randomUUID()}`;
}

export function uniqueWorkflowId(prefix = 'incident'): string {
  return `${prefix}-${randomUUID()}`;
}
