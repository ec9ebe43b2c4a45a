/**
 * The last line against a secret in an activity failure: before a failure leaves the worker for
 * the history (and from there the timeline, chat and review), anything in its message, stack,
 * string details or causes shaped like a known secret (src/secret-patterns.ts) becomes
 * `[redacted]`. Activities already name references and fingerprints only; this catches what a
 * library's error might quote.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { redactSecrets } from '../secret-patterns';

const redactValue = (value: unknown, depth: number): unknown => {
  if (typeof value === 'string') return redactSecrets(value);
  if (depth > 4 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v, depth + 1)]));
};

/** The same error, its texts redacted in place (its type and retry decision kept). */
export function redactError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error) || depth > 8) return err;
  err.message = redactSecrets(err.message);
  if (err.stack) err.stack = redactSecrets(err.stack);
  if (err instanceof ApplicationFailure && err.details) {
    const details = err.details.map((d) => redactValue(d, 0));
    Object.defineProperty(err, 'details', { value: details, configurable: true, writable: true });
  }
  if (err.cause !== undefined) redactError(err.cause, depth + 1);
  return err;
}

export const redactFailures: ActivityInterceptorsFactory = () => ({
  inbound: {
    async execute(input, next) {
      try {
        return await next(input);
      } catch (err) {
        throw redactError(err);
      }
    },
  },
});
