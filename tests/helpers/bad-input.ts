/** The bad-input tables' shared pieces (tests/bad-input*.test.ts): row types and oversized values. */

/** One megabyte of text: far above every text field's limit, well under Temporal's 2 MB payload limit. */
export const MB_STRING = 'x'.repeat(1024 * 1024);

/** `count` values made by `make`: an oversized array. */
export const huge = <T>(count: number, make: (i: number) => T): T[] => Array.from({ length: count }, (_, i) => make(i));

export type WorkflowName = 'incidentWorkflow' | 'revokeSessionsWorkflow' | 'reconcileUsersWorkflow';

/** workflow, what is wrong, the input, what the failure's message must say (field and rule), and a second argument if any. */
export type StartRow = [workflow: WorkflowName, what: string, input: unknown, message: RegExp, second?: unknown];

/** target workflow, update name, what is wrong, the request, what the refusal must say. */
export type UpdateRow = [target: 'incident' | 'reconcile' | 'lease', update: string, what: string, request: unknown, message: RegExp];
