/**
 * `npm run revoke -- <command>`: start a mass session revocation and follow its progress.
 *
 *   npm run revoke -- start --all --requester alice@example.com --reason "key compromise" [--dry-run] [--exclude user_…]… [--follow [--json]] [--id <workflowId>]
 *   npm run revoke -- start --user user_1 --user user_2 --requester … --reason …
 *   npm run revoke -- start --active-from 2026-11-26T08:00:00Z [--active-to …] --requester … --reason …
 *   npm run revoke -- progress <workflowId> [--json | --once]   # a live progress bar (or JSON lines) until it completes
 *
 * The input is validated with the workflow's own schema, so a bad flag is refused (and named)
 * before anything reaches Temporal. Exit codes (`runCli`): 0 succeeded, 1 refused or failed
 * (including a `partial` or `failed` outcome), 2 usage.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { SingleBar } from 'cli-progress';
import { Command } from 'commander';
import type { z } from 'zod';
import { CliArgumentError, collect, runCli, withClient } from './common';
import { followRun, say, startRun, type RunKind } from './runs';
import { terminalLine } from '../render-safe';
import { formatDuration } from '../domain';
import { formatCount, type RevocationProgress, type RevokeSessionsResult } from '../revoke-sessions';
import {
  getRevocationProgress,
  revokeSessionsInputSchema,
  revokeSessionsWorkflow,
  type RevocationScope,
  type RevokeSessionsInput,
} from '../workflows/revoke-sessions';

/** Ids listed one by one in the final output before the rest is only counted. */
const IDS_SHOWN = 20;

interface StartFlags {
  all?: boolean;
  user?: string[];
  activeFrom?: string;
  activeTo?: string;
  exclude?: string[];
  dryRun?: boolean;
  requester?: string;
  reason?: string;
  incidentId?: string;
  maxSessionLifetimeDays?: string;
  id?: string;
  follow?: boolean;
  json?: boolean;
}

/** Where each input field comes from on the command line, for errors that name the flag typed. */
const FLAG_OF_FIELD: Record<string, { flag: string; value: (f: StartFlags) => unknown }> = {
  'scope.userIds': { flag: '--user', value: (f) => f.user },
  'scope.from': { flag: '--active-from', value: (f) => f.activeFrom },
  'scope.to': { flag: '--active-to', value: (f) => f.activeTo },
  excludeUserIds: { flag: '--exclude', value: (f) => f.exclude },
  requestedBy: { flag: '--requester', value: (f) => f.requester },
  reason: { flag: '--reason', value: (f) => f.reason },
  incidentId: { flag: '--incident-id', value: (f) => f.incidentId },
  maxSessionLifetimeDays: { flag: '--max-session-lifetime-days', value: (f) => f.maxSessionLifetimeDays },
};

/** `--user: must be a Clerk user id like "user_2abc…" (got "alice")`: one issue, named by its flag and the value typed. */
function flagIssue(issue: z.core.$ZodIssue, flags: StartFlags): string {
  const path = issue.path.map(String);
  const field = path[0] === 'scope' ? path.slice(0, 2).join('.') : (path[0] ?? '');
  const source = FLAG_OF_FIELD[field];
  if (!source) return `input.${path.join('.')}: ${issue.message}`;
  const typed = source.value(flags);
  const index = path[field.split('.').length];
  const value = Array.isArray(typed) && index !== undefined ? typed[Number(index)] : typed;
  if (value === undefined) return `${source.flag}: required`;
  const shown = Array.isArray(value) ? '' : ` (got ${JSON.stringify(value)})`;
  return `${source.flag}: ${issue.message}${shown}`;
}

/** The workflow input the flags describe, validated; a refusal names the flags, not JSON paths. */
export function inputFromFlags(flags: StartFlags): RevokeSessionsInput {
  const chosen = [flags.all, flags.user, flags.activeFrom].filter((v) => v !== undefined).length;
  if (chosen !== 1) throw new CliArgumentError('scope: give exactly one of --all, --user <userId> (repeatable), --active-from <time>');
  for (const [flag, values] of [['--user', flags.user], ['--exclude', flags.exclude]] as const) {
    const listed = values?.find((v) => v.includes(','));
    if (listed) throw new CliArgumentError(`${flag}: one user id per flag, repeat ${flag} for each (got ${JSON.stringify(listed)})`);
  }
  if (flags.activeTo && !flags.activeFrom) throw new CliArgumentError('--active-to: only with --active-from');
  const days = flags.maxSessionLifetimeDays;
  if (days !== undefined && !Number.isFinite(Number(days))) {
    throw new CliArgumentError(`--max-session-lifetime-days: must be a number of days, e.g. 7 (got ${JSON.stringify(days)})`);
  }
  const scope: RevocationScope | Record<string, unknown> = flags.all
    ? { type: 'all' }
    : flags.user
      ? { type: 'users', userIds: flags.user }
      : { type: 'activeBetween', from: flags.activeFrom, ...(flags.activeTo ? { to: flags.activeTo } : {}) };
  const raw = {
    scope,
    excludeUserIds: flags.exclude ?? [],
    dryRun: flags.dryRun ?? false,
    requestedBy: flags.requester,
    reason: flags.reason,
    ...(flags.incidentId ? { incidentId: flags.incidentId } : {}),
    ...(flags.maxSessionLifetimeDays ? { maxSessionLifetimeDays: Number(flags.maxSessionLifetimeDays) } : {}),
  };
  const parsed = revokeSessionsInputSchema.safeParse(raw);
  if (!parsed.success) throw new CliArgumentError([...new Set(parsed.error.issues.map((i) => flagIssue(i, flags)))].join('; '));
  return raw as RevokeSessionsInput;
}

/**
 * The handle of revocation `workflowId`, or a one-line refusal: an unknown id, or the id of
 * another kind of workflow (an incident, most likely) with the command that shows it.
 * (Local to this CLI: `src/cli/common.ts` belongs to the shared CLI conventions.)
 */
export async function revocationHandle(client: Client, namespace: string, workflowId: string): Promise<WorkflowHandle<typeof revokeSessionsWorkflow>> {
  const handle = client.workflow.getHandle<typeof revokeSessionsWorkflow>(workflowId);
  let type: string;
  try {
    type = (await handle.describe()).type;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new Error(`no workflow ${workflowId} in namespace ${namespace}`);
    throw err;
  }
  if (type === 'revokeSessionsWorkflow') return handle;
  if (type === 'incidentWorkflow') throw new Error(`${workflowId} is an incidentWorkflow, not a revocation: try npm run incident -- show ${workflowId}`);
  throw new Error(`${workflowId} is a ${type}, not a revocation`);
}

/** An activity Temporal is running or retrying for the revocation; retries are invisible to the workflow's own progress. */
export interface PendingActivity {
  type: string;
  attempt: number;
  /** The last attempt's failure (e.g. Clerk's 503), null before any failed. */
  lastFailure: string | null;
  /** Its failure type, e.g. `ClerkUnavailable`. */
  lastFailureType: string | null;
}

/** The most troubled pending activity (highest attempt), from `describe()`. */
export async function pendingActivity(handle: WorkflowHandle): Promise<PendingActivity | null> {
  const { raw } = await handle.describe();
  const pending = (raw.pendingActivities ?? []).map((a) => ({
    type: a.activityType?.name ?? 'activity',
    attempt: a.attempt ?? 1,
    lastFailure: a.lastFailure?.message ?? null,
    lastFailureType: a.lastFailure?.applicationFailureInfo?.type ?? null,
  }));
  return pending.sort((a, b) => b.attempt - a.attempt)[0] ?? null;
}

const clip = (text: string, max = 100) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** What the bar shows of trouble: Temporal retrying an activity, or Clerk interrupting batches; '' when all is well. */
export function troubleText(p: RevocationProgress | null, pending: PendingActivity | null): string {
  if (pending && (pending.attempt > 1 || pending.lastFailure)) {
    const who = pending.lastFailureType?.startsWith('Clerk') ? 'Clerk' : pending.type;
    return `${who}: attempt ${pending.attempt}${pending.lastFailure ? `, ${clip(pending.lastFailure)}` : ''}`;
  }
  const e = p?.lastClerkError;
  if (e) return `Clerk: ${e.interruptionsInARow} batch(es) interrupted in a row, ${clip(`${e.type}: ${e.message}`)}`;
  return '';
}

function summaryLine(p: Pick<RevocationProgress, 'dryRun' | 'totals'>): string {
  const t = p.totals;
  const done = p.dryRun
    ? `${formatCount(t.sessionsFound)} session(s) would be revoked`
    : `${formatCount(t.sessionsRevoked)} revoked, ${formatCount(t.sessionsAlreadyRevoked)} already revoked`;
  return `${done}; ${formatCount(t.usersSkippedByFilter)} idle user(s) skipped; ${formatCount(t.usersNotFound)} user(s) not found; ${formatCount(t.failures)} failure(s)`;
}

/** The final lines: the outcome, then each id not found and each failure, one a line (the first 20 of each). */
export function resultLines(result: RevokeSessionsResult): string[] {
  const t = result.totals;
  const lines = [`${result.outcome}: ${result.dryRun ? 'dry run ' : ''}completed in ${formatDuration(result.elapsedSeconds * 1000)}: ${summaryLine(result)}`];
  for (const id of result.notFoundUserIds.slice(0, IDS_SHOWN)) lines.push(`  not found: ${id}`);
  if (t.usersNotFound > IDS_SHOWN) lines.push(`  … ${formatCount(t.usersNotFound - IDS_SHOWN)} more not found (ids in the workflow result, up to 1,000)`);
  for (const f of result.failures.slice(0, IDS_SHOWN)) {
    const answer = [f.status, f.code].filter((v) => v !== null).join(' ');
    lines.push(`  failed: ${f.userId}${f.sessionId ? ` ${f.sessionId}` : ''} ${f.operation}${answer ? ` ${answer}` : ''}: ${f.message}`);
  }
  if (t.failures > IDS_SHOWN) lines.push(`  … ${formatCount(t.failures - IDS_SHOWN)} more failure(s) (ids in the workflow result, up to 1,000)`);
  return lines;
}

function barPayload(p: RevocationProgress, trouble: string) {
  return {
    sessions: p.dryRun ? `${formatCount(p.totals.sessionsFound)} would be revoked` : `${formatCount(p.totals.sessionsRevoked)} revoked`,
    rate: p.requestsPerSecond.toFixed(1),
    eta_text: p.phase === 'completed' ? 'done' : p.etaSeconds === null ? '…' : formatDuration(p.etaSeconds * 1000),
    phase: `${p.phase}${p.dryRun ? ' (dry run)' : ''}${p.phase === 'completed' ? `: ${p.outcome}` : ''}`,
    trouble: trouble ? ` | ${terminalLine(trouble)}` : '',
  };
}

const REVOCATION: RunKind<typeof revokeSessionsWorkflow> = { workflow: revokeSessionsWorkflow, noun: 'revocation', command: 'npm run revoke', resultLines };

/**
 * Polls the progress query (and the workflow's pending activities, whose retries the workflow
 * cannot see) and draws a bar, or prints one JSON line per poll, until the workflow completes.
 * Sets exit code 1 unless the outcome is `succeeded`.
 */
export async function followProgress(
  client: Client,
  workflowId: string,
  opts: { json?: boolean; everyMs?: number } = {},
): Promise<void> {
  const handle = client.workflow.getHandle<typeof revokeSessionsWorkflow>(workflowId);
  const interactive = process.stdout.isTTY === true && !opts.json;
  const bar = new SingleBar({
    format: '{bar} {percentage}% | {value}/{total} users | {sessions} | {rate} req/s | ETA {eta_text} | {phase}{trouble}',
    hideCursor: true,
    noTTYOutput: !interactive,
    notTTYSchedule: 5000,
  });
  let started = false;
  await followRun(handle, REVOCATION, {
    everyMs: opts.everyMs ?? 1000,
    json: opts.json ?? false,
    poll: async () => {
      const [p, pending] = await Promise.all([handle.query(getRevocationProgress), pendingActivity(handle).catch(() => null)]);
      if (opts.json) {
        say(JSON.stringify({ ...p, pendingActivity: pending }));
        return;
      }
      const total = Math.max(1, p.usersInScope ?? p.totals.usersScanned);
      const payload = barPayload(p, troubleText(p, pending));
      if (!started) {
        bar.start(total, p.totals.usersScanned, payload);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(p.totals.usersScanned, payload);
      }
    },
    settle: async () => {
      if (!started) return;
      const p = await handle.query(getRevocationProgress).catch(() => null);
      if (p) bar.update(p.totals.usersScanned, barPayload(p, ''));
      bar.stop();
    },
  });
}

export function buildProgram(): Command {
  // exitOverride before the subcommands, which inherit it: usage errors reach runCli (exit 2).
  const program = new Command('revoke').exitOverride().description('Mass session revocation on Clerk (revokeSessionsWorkflow)');
  program
    .command('start')
    .description('start a revocation (prints its workflow id)')
    .option('--all', 'every user (idle users are skipped by the last-activity filter)')
    .option('--user <userId>', 'a user whose sessions to revoke (repeat for each user)', collect)
    .option('--active-from <time>', 'users active since this ISO time')
    .option('--active-to <time>', 'and before this ISO time')
    .option('--exclude <userId>', 'a user never to revoke, e.g. the break-glass admin (repeat for each)', collect)
    .option('--dry-run', 'count what would be revoked; revoke nothing')
    .requiredOption('--requester <name>', 'required: who asks for it (recorded in the timeline)')
    .requiredOption('--reason <text>', 'required: why (recorded in the timeline)')
    .option('--incident-id <id>', 'the incident this belongs to')
    .option('--max-session-lifetime-days <days>', "the instance's maximum session lifetime (default 7)")
    .option('--id <workflowId>', 'workflow id (default: revoke-<random>)')
    .option('--follow', 'show a progress bar until it completes (exit 1 unless the outcome is succeeded)')
    .option('--json', 'with --follow: one JSON line per poll instead of the bar, then {"result": …}')
    .action(async (flags: StartFlags) => {
      const input = inputFromFlags(flags);
      if (flags.json && !flags.follow) throw new CliArgumentError('--json: only with --follow');
      await withClient(async (client, env) => {
        const workflowId = flags.id ?? `revoke-${randomUUID()}`;
        await startRun(client, env, REVOCATION, {
          workflowId,
          args: [input],
          dryRun: input.dryRun === true,
          seeExisting: `, or see it: npm run revoke -- progress ${workflowId}`,
          ...(flags.json ? { out: (line: string) => process.stderr.write(`${line}\n`) } : {}),
        });
        if (flags.follow) await followProgress(client, workflowId, { json: flags.json ?? false });
      });
    });
  program
    .command('progress')
    .description('show a live progress bar of a revocation until it completes (exit 1 unless the outcome is succeeded)')
    .argument('<workflowId>')
    .option('--json', 'one JSON line per poll instead of the bar (with pendingActivity), then {"result": …}')
    .option('--once', 'print the progress once, as JSON (with pendingActivity), and exit 0')
    .action(async (workflowId: string, flags: { once?: boolean; json?: boolean }) => {
      await withClient(async (client, env) => {
        const handle = await revocationHandle(client, env.TEMPORAL_NAMESPACE, workflowId);
        if (flags.once) {
          const [p, pending] = await Promise.all([handle.query(getRevocationProgress), pendingActivity(handle)]);
          say(JSON.stringify({ ...p, pendingActivity: pending }, null, 2));
          return;
        }
        await followProgress(client, workflowId, { json: flags.json ?? false });
      });
    });
  return program;
}

if (require.main === module) {
  runCli(async () => {
    await buildProgram().parseAsync(process.argv);
  });
}
