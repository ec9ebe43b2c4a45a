/**
 * What every CLI command shares (the convention is docs/cli.md): the typed argument error, zod
 * issues named as flags (and the flag helpers that build the input), one exit-code policy (`runCli`), and a Temporal client from the
 * environment whose errors come back as one line naming the address, the id and the next command.
 */
import { Client, Connection, NamespaceNotFoundError, ServiceError, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { hostname, userInfo } from 'node:os';
import { CommanderError } from 'commander';
import type { z } from 'zod';
import { dataConverterFromEnv } from '../codec';
import { loadEnv, type Env } from '../config';
import { temporalConnectionOptions } from '../connection';
import { terminalLine } from '../render-safe';
import { findRunningStart, runtimeFilePath } from '../runtime-file';
import { exitQuietlyWhenOutputCloses } from '../stdio';

/** Refusal of a CLI argument; the message names the flag. Exit code 2. */
export class CliArgumentError extends Error {
  override readonly name = 'CliArgumentError';
}

/** 0 ok; 1 refused by the workflow, failed, unreachable, or finished with a failed outcome; 2 usage. */
export type ExitCode = 0 | 1 | 2;

/**
 * Runs a CLI's `main` and returns its exit code, printing a failure as one line on stderr,
 * `error: <message>`: 2 for a usage error (`CliArgumentError`, or commander's own when the program
 * was built with `.exitOverride()`; commander prints those itself, in the same form), 1 for any
 * other error. A command that completes but reports a failed outcome (a triage verdict that is not
 * all clear, a failed revocation) sets `process.exitCode = 1` instead of throwing: that is kept.
 */
export async function cliExitCode(main: () => Promise<void>): Promise<ExitCode> {
  try {
    await main();
    return process.exitCode === 1 ? 1 : 0;
  } catch (err) {
    // Help and --version are CommanderErrors with exit code 0, already printed.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    // One line, as docs/cli.md promises: text quoted in a message (a refused value) cannot add one.
    console.error(`error: ${terminalLine(err instanceof Error ? err.message : String(err))}`);
    return err instanceof CliArgumentError ? 2 : 1;
  }
}

/** The entry point of every CLI: `cliExitCode` as the process's exit code; a reader closing stdout early ends it quietly. */
export function runCli(main: () => Promise<void>): void {
  exitQuietlyWhenOutputCloses();
  void cliExitCode(main).then((code) => {
    process.exitCode = code;
  });
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * zod issues of an input assembled from flags, as `--flag: message`. `flagOf` maps a field path
 * (`timeouts.decideWithin`, or its head `approvers`) to its flag; unmapped fields become
 * `--kebab-case`. Field names in a message (`must be shorter than decideWithin`) are named as flags
 * too. `required` says what a flag is for: a missing one reads `--reporter: required (who reports
 * the incident)` instead of zod's `expected string, received undefined`.
 */
export function describeFlagIssues(error: z.ZodError, flagOf: Record<string, string> = {}, required: Record<string, string> = {}): string {
  const flagFor = (path: string[]) => flagOf[path.join('.')] ?? (path[0] !== undefined ? flagOf[path[0]] : undefined) ?? `--${kebab(path.at(-1) ?? 'arguments')}`;
  // Only camelCase field names (decideWithin, not approvers): plain words in a message stay words.
  const renames = Object.entries(flagOf)
    .map(([path, flag]) => [path.split('.').at(-1) ?? path, flag] as const)
    .filter(([field]) => /[a-z][A-Z]/.test(field))
    .map(([field, flag]) => [new RegExp(`\\b${escapeRegExp(field)}\\b`, 'g'), flag] as const);
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `--${kebab(k)}: unknown flag`).join('; ');
      const path = issue.path.map(String);
      const flag = path.length ? flagFor(path) : 'arguments';
      if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) {
        const what = required[flag];
        return `${flag}: required${what ? ` (${what})` : ''}`;
      }
      return `${flag}: ${renames.reduce((m, [word, f]) => m.replace(word, f), issue.message)}`;
    })
    .join('; ');
}

/** `raw` parsed by `schema`, or a `CliArgumentError` naming the flags (`describeFlagIssues`). */
export function parseOrThrow<T>(schema: z.ZodType<T>, raw: unknown, flagOf: Record<string, string> = {}): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new CliArgumentError(describeFlagIssues(parsed.error, flagOf));
  return parsed.data;
}

/** A repeatable flag's parser: one value per occurrence, in order. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The fields that were given: flags left out stay out of the request. */
export const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** Where the CLI talks to Temporal, for the messages below. */
export interface ClientContext {
  address: string;
  namespace: string;
  /** Where the address came from, when not TEMPORAL_ADDRESS (e.g. the running npm start's runtime file). */
  source?: string;
}

/**
 * The Temporal address of a CLI: TEMPORAL_ADDRESS when set; else the running `npm start`'s (its
 * runtime file), so `incident …` reaches the server it started; else the default. A runtime file
 * that is stale or unreadable is named in `note` (the caller prints it) and the default is used.
 */
function cliTemporalAddress(env: Env, source: NodeJS.ProcessEnv = process.env): { address: string; from?: string; note?: string } {
  if (source.TEMPORAL_ADDRESS?.trim()) return { address: env.TEMPORAL_ADDRESS };
  const running = findRunningStart(runtimeFilePath(source));
  if (running.kind === 'found') return { address: running.info.temporalAddress, from: `the running npm start, pid ${running.info.pid}, ${runtimeFilePath(source)}` };
  if (running.kind === 'missing') return { address: env.TEMPORAL_ADDRESS };
  return { address: env.TEMPORAL_ADDRESS, note: `note: ${running.reason}; using ${env.TEMPORAL_ADDRESS} (set TEMPORAL_ADDRESS, or start npm start)` };
}

/** The workflow types our CLIs know, and how to look at one from a terminal. */
const WORKFLOW_KINDS: Record<string, { noun: string; show: (id: string) => string }> = {
  incidentWorkflow: { noun: 'an incident', show: (id) => `npm run incident -- show ${id}` },
  revokeSessionsWorkflow: { noun: 'a session revocation', show: (id) => `npm run revoke -- progress ${id}` },
  reconcileUsersWorkflow: { noun: 'a reconciliation', show: (id) => `npm run reconcile -- progress ${id}` },
};

/** A workflow id that names a workflow of another type than the command acts on. Exit code 1. */
export class WrongWorkflowType extends Error {
  override readonly name = 'WrongWorkflowType';
  constructor(
    readonly workflowId: string,
    readonly actualType: string,
    readonly expectedType: string,
  ) {
    const expected = WORKFLOW_KINDS[expectedType]?.noun ?? `a ${expectedType}`;
    const other = WORKFLOW_KINDS[actualType];
    super(`${workflowId} is a ${actualType}, not ${expected}${other ? `: try ${other.show(workflowId)}` : ''}`);
  }
}

const unreachable = (ctx: ClientContext) => `cannot reach Temporal at ${ctx.address} (${ctx.source ?? 'TEMPORAL_ADDRESS'}): is npm start running?`;

/**
 * One line for a Temporal client error a user can act on: unreachable server, unknown workflow or
 * namespace, an id already in use. Undefined for anything else (printed as it is).
 */
export function describeClientError(err: unknown, ctx: ClientContext): string | undefined {
  if (err instanceof WorkflowNotFoundError) {
    return `no workflow ${err.workflowId} in namespace ${ctx.namespace}: list incidents with npm run temporal -- workflow list`;
  }
  if (err instanceof NamespaceNotFoundError) {
    return `no namespace ${err.namespace} at ${ctx.address} (TEMPORAL_NAMESPACE): list them with npm run temporal -- operator namespace list`;
  }
  if (err instanceof WorkflowExecutionAlreadyStartedError) {
    return `--id ${err.workflowId}: a workflow with this id is already running; choose another id or leave --id out`;
  }
  if (!(err instanceof Error)) return undefined;
  // Connection.connect: "Failed to connect before the deadline"; a call on a lost connection: gRPC 14 UNAVAILABLE.
  const grpcCode = err instanceof ServiceError ? (err.cause as { code?: unknown } | undefined)?.code : undefined;
  if (/Failed to connect before the deadline|fetch failed|ECONNREFUSED/.test(err.message) || grpcCode === 14) return unreachable(ctx);
  return undefined;
}

/**
 * Who runs a command, as Temporal records it (the client identity on each update, signal and
 * cancellation in history): the flag, else INCIDENT_OPERATOR, else `<os user>@<hostname>`.
 */
export function operatorIdentity(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const given = flag?.trim() || env.INCIDENT_OPERATOR?.trim();
  if (given) return given;
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (some containers): the host still says where it ran
  }
  return `${user}@${hostname()}`;
}

/**
 * Run `fn` with a client for TEMPORAL_ADDRESS (or the running npm start's, `cliTemporalAddress`) /
 * TEMPORAL_NAMESPACE, closing the connection after.
 * Client errors leave it as one line (`describeClientError`). `identity` is the client identity
 * Temporal records in history (default: the SDK's `<pid>@<hostname>`); see `operatorIdentity`.
 */
export async function withClient<T>(fn: (client: Client, env: Env) => Promise<T>, identity?: string): Promise<T> {
  const given = loadEnv();
  const { address, from, note } = cliTemporalAddress(given);
  if (note) console.error(note);
  const env: Env = { ...given, TEMPORAL_ADDRESS: address };
  const ctx: ClientContext = { address, namespace: env.TEMPORAL_NAMESPACE, ...(from ? { source: from } : {}) };
  const translate = (err: unknown): never => {
    const line = describeClientError(err, ctx);
    throw line === undefined ? err : new Error(line, { cause: err });
  };
  const connection = await Connection.connect(temporalConnectionOptions(env)).catch(translate);
  try {
    const client = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE, dataConverter: dataConverterFromEnv(env), ...(identity ? { identity } : {}) });
    return await fn(client, env).catch(translate);
  } finally {
    await connection.close();
  }
}

/**
 * A handle on an existing workflow of the type the command acts on: an unknown id is
 * `WorkflowNotFoundError` (see `describeClientError`), an id of another type `WrongWorkflowType`
 * naming the command that reads it. One describe call, so no query or update waits on a workflow
 * that cannot answer it.
 */
export async function existingWorkflow(client: Client, workflowId: string, workflowType: string): Promise<WorkflowHandle> {
  const handle = client.workflow.getHandle(workflowId);
  const { type } = await handle.describe();
  if (type !== workflowType) throw new WrongWorkflowType(workflowId, type, workflowType);
  return handle;
}
