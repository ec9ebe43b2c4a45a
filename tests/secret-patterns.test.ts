/**
 * The secret shapes (src/secret-patterns.ts): every free-text field refuses them naming the field
 * and never quoting the text; innocent look-alikes pass; the log and failures redact them.
 */
import { describe, expect, it } from 'vitest';
import { describeIssues, incidentInputSchema } from '../src/domain';
import { redactSecrets, secretKind } from '../src/secret-patterns';
import { approveRequestSchema, confirmOldKeyDeletedRequestSchema, provideNewKeyRequestSchema, resolveRequestSchema } from '../src/workflows/incident-types';
import { reconcileDecisionSchema } from '../src/workflows/reconcile-input';
import { redactLogEntry } from '../src/worker/logger';
import { redactError } from '../src/worker/redact-failures';
import { ApplicationFailure } from '@temporalio/common';
import { INNOCENT_SAMPLES, SECRET_SAMPLES } from './helpers/secret-shapes';

const secretPart = (text: string) => text.split(/\s+/).sort((a, b) => b.length - a.length)[0]!;

describe('secret shapes', () => {
  it.each(SECRET_SAMPLES)('%s is found and redacted', (_kind, text) => {
    expect(secretKind(text)).toBeDefined();
    const redacted = redactSecrets(text);
    expect(redacted).toContain('[redacted]');
    expect(secretKind(redacted)).toBeUndefined();
  });

  it.each(INNOCENT_SAMPLES)('%s passes', (_what, text) => {
    expect(secretKind(text)).toBeUndefined();
    expect(redactSecrets(text)).toBe(text);
  });
});

describe('free text refuses secrets, naming the field, never quoting it', () => {
  const incident = { category: 'key_compromise', reporter: 'alice', approvers: ['bob', 'carol'], summary: 'x' };
  const fields: [string, (text: string) => { success: boolean; error?: import('zod').ZodError }, string][] = [
    ['input.summary', (t) => incidentInputSchema.safeParse({ ...incident, summary: t }), 'input'],
    ['input.reporter', (t) => incidentInputSchema.safeParse({ ...incident, reporter: t.replace(/\n/g, ' ').slice(0, 200) }), 'input'],
    ['update.comment', (t) => approveRequestSchema.safeParse({ step: 'operator_action', approver: 'bob', comment: t }), 'update'],
    ['update.note', (t) => provideNewKeyRequestSchema.safeParse({ ref: 'file:/run/secrets/clerk-new', providedBy: 'bob', note: t }), 'update'],
    ['update.note', (t) => confirmOldKeyDeletedRequestSchema.safeParse({ confirmedBy: 'bob', note: t }), 'update'],
    ['update.summary', (t) => resolveRequestSchema.safeParse({ resolvedBy: 'alice', summary: t }), 'update'],
    ['update.actionItems.0', (t) => resolveRequestSchema.safeParse({ resolvedBy: 'alice', summary: 'ok', actionItems: [t.slice(0, 500)] }), 'update'],
    ['update.reason', (t) => reconcileDecisionSchema.safeParse({ decision: 'reject', approver: 'bob', reason: t }), 'update'],
  ];
  for (const [field, parse, root] of fields) {
    it.each(SECRET_SAMPLES)(`${field}: %s`, (_kind, text) => {
      const parsed = parse(text);
      expect(parsed.success).toBe(false);
      const message = describeIssues(parsed.error!, root);
      expect(message).toMatch(new RegExp(`${field.replace(/\./g, '\\.')}: looks like .*never carries a secret`));
      expect(message).not.toContain(secretPart(text));
    });
  }
  it.each(INNOCENT_SAMPLES)('update.comment accepts %s', (_what, text) => {
    expect(approveRequestSchema.safeParse({ step: 'operator_action', approver: 'bob', comment: text }).success).toBe(true);
  });
});

describe('last-line redaction', () => {
  const key = `${'sk_' + 'live_'}${'Q'.repeat(40)}`;
  it('the worker log: message, metadata and errors (message, stack, cause)', () => {
    const error = new Error(`Headers.append: "Bearer ${key}" is an invalid header value`, { cause: new Error(`got ${key}`) });
    const [message, meta] = redactLogEntry(`failed with ${key}`, { error, note: [key] });
    const all = `${message} ${JSON.stringify(meta)} ${(meta?.error as Error).message} ${(meta?.error as Error).stack} ${((meta?.error as Error).cause as Error).message}`;
    expect(all).not.toContain(key);
    expect(message).toBe('failed with [redacted]');
  });
  it('an activity failure keeps its type and retry decision', () => {
    const failure = ApplicationFailure.create({ type: 'NewKeyInvalid', message: `refused ${key}`, nonRetryable: true, details: [{ said: key }], cause: new Error(key) });
    const out = redactError(failure) as ApplicationFailure;
    expect(out.type).toBe('NewKeyInvalid');
    expect(out.nonRetryable).toBe(true);
    expect(`${out.message} ${out.stack} ${JSON.stringify(out.details)} ${(out.cause as Error).message}`).not.toContain(key);
  });
});
