/**
 * The worker's log: the SDK's `DefaultLogger` (stderr), except that a workflow refusing its input
 * is one line, not the SDK's "Workflow failed" with the failure's stack trace. A refusal is a
 * start with bad input (the workflow fails at once with one of `INPUT_REFUSAL_TYPES`); the stack
 * says nothing an operator can act on, and twenty bad starts would bury everything else. Every
 * other workflow failure keeps its stack.
 */
import { formatWithOptions } from 'node:util';
import { DefaultLogger, type LogEntry, type Logger, type LogLevel, type LogMetadata } from '@temporalio/worker';
import { logLine } from '../render-safe';
import { redactSecrets } from '../secret-patterns';

/** The `ApplicationFailure` types a workflow fails with when its input does not parse. */
export const INPUT_REFUSAL_TYPES = ['InvalidIncidentInput', 'InvalidRevocationInput', 'InvalidReconcileInput'] as const;

/** Read by DefaultLogger for the entry's time (the SDK's `LogTimestamp`, not exported by the package root). */
const LOG_TIMESTAMP = Symbol.for('log_timestamp');

/**
 * The refusal's type. The failure crosses from the workflow thread to the logger by structured
 * clone, which keeps an error's message and stack but drops its own fields (`type`): the stack's
 * first line, `ApplicationFailure: <message>`, and the message's `input.` prefix (`describeIssues`)
 * are what is left.
 */
function isInputRefusal(error: unknown): error is Error {
  if (!(error instanceof Error) && (typeof error !== 'object' || error === null)) return false;
  const { type, message, stack } = error as { type?: unknown; message?: unknown; stack?: unknown };
  if (typeof type === 'string') return (INPUT_REFUSAL_TYPES as readonly string[]).includes(type);
  return typeof message === 'string' && /^input[.:]/.test(message) && typeof stack === 'string' && stack.startsWith(`ApplicationFailure: ${message}`);
}

/**
 * The last line against a secret in the log: anything shaped like a known secret (src/secret-patterns.ts)
 * in the message or its metadata (an error's message, stack and cause included) becomes `[redacted]`.
 */
export function redactLogEntry(message: string, meta?: LogMetadata): [string, LogMetadata | undefined] {
  const seen = new WeakSet<object>();
  const redact = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') return redactSecrets(value);
    if (typeof value !== 'object' || value === null || depth > 6 || seen.has(value)) return value;
    seen.add(value);
    if (value instanceof Error) {
      const copy = new Error(redactSecrets(value.message));
      copy.name = value.name;
      copy.stack = value.stack === undefined ? undefined : redactSecrets(value.stack);
      if (value.cause !== undefined) copy.cause = redact(value.cause, depth + 1);
      for (const [k, v] of Object.entries(value)) if (!(k in copy)) (copy as unknown as Record<string, unknown>)[k] = redact(v, depth + 1);
      return copy;
    }
    if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
    const out: Record<string | symbol, unknown> = {};
    for (const k of Reflect.ownKeys(value)) out[k] = redact((value as Record<string | symbol, unknown>)[k], depth + 1);
    return out;
  };
  return [redactSecrets(message), meta === undefined ? undefined : (redact(meta, 0) as LogMetadata)];
}

export class WorkerLogger implements Logger {
  constructor(private readonly inner: Logger) {}

  log(level: LogLevel, rawMessage: string, rawMeta?: LogMetadata): void {
    const [message, meta] = redactLogEntry(rawMessage, rawMeta);
    if (message === 'Workflow failed' && meta && isInputRefusal(meta.error)) {
      const line = `Workflow input refused: ${String(meta.workflowType)} ${String(meta.workflowId)}: ${logLine(String(meta.error.message))}`;
      this.inner.log(level, line, meta[LOG_TIMESTAMP] === undefined ? undefined : { [LOG_TIMESTAMP]: meta[LOG_TIMESTAMP] });
      return;
    }
    this.inner.log(level, message, meta);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

/**
 * One entry as written to stderr: `<time> [LEVEL] <message> <meta>`. The message is one line with
 * control characters shown escaped; the metadata is printed as the SDK prints it, except that its
 * controls are escaped too and a line after the first (a stack frame) is indented, so no text in
 * an entry can start a line that reads as an entry of its own.
 */
export function logRecord(entry: LogEntry): string {
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const meta = entry.meta === undefined ? '' : ` ${formatWithOptions({ colors: false }, entry.meta)}`;
  const lines = `${time} [${entry.level}] ${logLine(entry.message)}${meta}`.split(/\r?\n/).map((l) => logLine(l));
  return `${lines.map((l, n) => (n === 0 || /^\s/.test(l) ? l : `  ${l}`)).join('\n')}\n`;
}

/** The logger `Runtime.install` gets in `npm start` and the standalone worker. */
export function workerLogger(level: LogLevel): WorkerLogger {
  return new WorkerLogger(new DefaultLogger(level, (entry) => process.stderr.write(logRecord(entry))));
}
