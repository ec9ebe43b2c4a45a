/**
 * `npm run revoke -- <command>`: start a mass session revocation and follow its progress.
 *
 *   npm run revoke -- start --all --requested-by alice@example.com --reason "key compromise" [--dry-run] [--exclude user_…] [--follow]
 *   npm run revoke -- start --users user_1,user_2 --requested-by … --reason …
 *   npm run revoke -- start --active-from 2026-11-26T08:00:00Z [--active-to …] --requested-by … --reason …
 *   npm run revoke -- progress <workflowId>        # a live progress bar until it completes
 *
 * The input is validated with the workflow's own schema, so a bad flag is refused (and named)
 * before anything reaches Temporal.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { SingleBar } from 'cli-progress';
import { Command } from 'commander';
import { CliArgumentError, runCli, withClient } from './common';
import { describeIssues, formatDuration } from '../domain';
import { formatCount, type RevocationProgress } from '../revoke-sessions';
import {
  getRevocationProgress,
  revokeSessionsInputSchema,
  revokeSessionsWorkflow,
  type RevocationScope,
  type RevokeSessionsInput,
} from '../workflows/revoke-sessions';

const say = (line: string) => process.stdout.write(`${line}\n`);
const list = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

interface StartFlags {
  all?: boolean;
  users?: string[];
  activeFrom?: string;
  activeTo?: string;
  exclude?: string[];
  dryRun?: boolean;
  requestedBy?: string;
  reason?: string;
  incidentId?: string;
  maxSessionLifetimeDays?: string;
  workflowId?: string;
  follow?: boolean;
}

/** The workflow input the flags describe, validated. */
export function inputFromFlags(flags: StartFlags): RevokeSessionsInput {
  const chosen = [flags.all, flags.users, flags.activeFrom].filter((v) => v !== undefined).length;
  if (chosen !== 1) throw new CliArgumentError('scope: give exactly one of --all, --users <ids>, --active-from <time>');
  const scope: RevocationScope | Record<string, unknown> = flags.all
    ? { type: 'all' }
    : flags.users
      ? { type: 'users', userIds: flags.users }
      : { type: 'activeBetween', from: flags.activeFrom, ...(flags.activeTo ? { to: flags.activeTo } : {}) };
  const raw = {
    scope,
    excludeUserIds: flags.exclude ?? [],
    dryRun: flags.dryRun ?? false,
    requestedBy: flags.requestedBy,
    reason: flags.reason,
    ...(flags.incidentId ? { incidentId: flags.incidentId } : {}),
    ...(flags.maxSessionLifetimeDays ? { maxSessionLifetimeDays: Number(flags.maxSessionLifetimeDays) } : {}),
  };
  const parsed = revokeSessionsInputSchema.safeParse(raw);
  if (!parsed.success) throw new CliArgumentError(describeIssues(parsed.error));
  return raw as RevokeSessionsInput;
}

function summaryLine(p: RevocationProgress): string {
  const t = p.totals;
  return p.dryRun
    ? `${formatCount(t.sessionsFound)} session(s) would be revoked; ${formatCount(t.usersSkippedByFilter)} idle user(s) skipped; ${formatCount(t.failures)} failure(s)`
    : `${formatCount(t.sessionsRevoked)} revoked, ${formatCount(t.sessionsAlreadyRevoked)} already revoked; ${formatCount(t.usersSkippedByFilter)} idle user(s) skipped; ${formatCount(t.failures)} failure(s)`;
}

/** Polls the progress query and draws a bar until the workflow completes (or fails). */
export async function followProgress(client: Client, workflowId: string, everyMs = 1000): Promise<void> {
  const handle = client.workflow.getHandle(workflowId);
  const interactive = process.stdout.isTTY === true;
  const bar = new SingleBar({
    format: '{bar} {percentage}% | {value}/{total} users | {sessions} | {rate} req/s | ETA {eta_text} | {phase}',
    hideCursor: true,
    noTTYOutput: !interactive,
    notTTYSchedule: 5000,
  });
  let started = false;
  let done = false;
  const resultPromise = handle.result().finally(() => {
    done = true;
  });
  resultPromise.catch(() => undefined);
  while (!done) {
    try {
      const p = await handle.query(getRevocationProgress);
      const total = Math.max(1, p.usersInScope ?? p.totals.usersScanned);
      const payload = {
        sessions: p.dryRun ? `${formatCount(p.totals.sessionsFound)} would be revoked` : `${formatCount(p.totals.sessionsRevoked)} revoked`,
        rate: p.requestsPerSecond.toFixed(1),
        eta_text: p.etaSeconds === null ? '…' : formatDuration(p.etaSeconds * 1000),
        phase: p.dryRun ? `${p.phase} (dry run)` : p.phase,
      };
      if (!started) {
        bar.start(total, p.totals.usersScanned, payload);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(p.totals.usersScanned, payload);
      }
    } catch {
      // Between runs (continue-as-new) or before the first workflow task the query may fail: try again.
    }
    await Promise.race([resultPromise.catch(() => undefined), sleep(everyMs)]);
  }
  const p = await handle.query(getRevocationProgress).catch(() => null);
  if (started) {
    if (p) bar.update(p.totals.usersScanned, { eta_text: 'done', phase: p.phase, rate: p.requestsPerSecond.toFixed(1) });
    bar.stop();
  }
  try {
    const result = await resultPromise;
    say(`completed in ${formatDuration(result.elapsedSeconds * 1000)}: ${p ? summaryLine(p) : `${formatCount(result.totals.sessionsRevoked)} revoked`}`);
    for (const f of result.failures.slice(0, 20)) say(`  failed: ${f.sessionId ?? f.userId} ${f.operation} ${f.status ?? ''} ${f.code ?? ''} ${f.message}`);
    if (result.failures.length > 20 || result.failuresDropped > 0) say(`  … ${result.totals.failures - 20} more failure(s) in the workflow result`);
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? (err.cause?.message ?? err.message) : String(err);
    say(`revocation failed: ${cause}`);
    process.exitCode = 1;
  }
}

export function buildProgram(): Command {
  // exitOverride before the subcommands, which inherit it: usage errors reach runCli (exit 2).
  const program = new Command('revoke').exitOverride().description('Mass session revocation on Clerk (revokeSessionsWorkflow)');
  program
    .command('start')
    .description('start a revocation (prints its workflow id)')
    .option('--all', 'every user (idle users are skipped by the last-activity filter)')
    .option('--users <ids>', 'comma-separated user ids (repeatable)', list)
    .option('--active-from <time>', 'users active since this ISO time')
    .option('--active-to <time>', 'and before this ISO time')
    .option('--exclude <ids>', 'user ids never to revoke, e.g. the break-glass admin (repeatable)', list)
    .option('--dry-run', 'count what would be revoked; revoke nothing')
    .option('--requested-by <person>', 'who asks for it (recorded in the timeline)')
    .option('--reason <text>', 'why (recorded in the timeline)')
    .option('--incident-id <id>', 'the incident this belongs to')
    .option('--max-session-lifetime-days <days>', "the instance's maximum session lifetime (default 7)")
    .option('--workflow-id <id>', 'workflow id (default: revoke-<random>)')
    .option('--follow', 'show a progress bar until it completes')
    .action(async (flags: StartFlags) => {
      const input = inputFromFlags(flags);
      await withClient(async (client, env) => {
        const workflowId = flags.workflowId ?? `revoke-${randomUUID()}`;
        await client.workflow.start(revokeSessionsWorkflow, { taskQueue: env.TEMPORAL_TASK_QUEUE, workflowId, args: [input] });
        say(`started ${input.dryRun ? 'DRY RUN ' : ''}revocation ${workflowId}`);
        say(`follow it: npm run revoke -- progress ${workflowId}`);
        if (flags.follow) await followProgress(client, workflowId);
      });
    });
  program
    .command('progress')
    .description('show a live progress bar of a revocation until it completes')
    .argument('<workflowId>')
    .option('--once', 'print the progress once, as JSON, and exit')
    .action(async (workflowId: string, flags: { once?: boolean }) => {
      await withClient(async (client) => {
        if (flags.once) {
          say(JSON.stringify(await client.workflow.getHandle(workflowId).query(getRevocationProgress), null, 2));
          return;
        }
        await followProgress(client, workflowId);
      });
    });
  return program;
}

if (require.main === module) {
  runCli(async () => {
    await buildProgram().parseAsync(process.argv);
  });
}
