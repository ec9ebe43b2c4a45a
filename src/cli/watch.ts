/**
 * `npm run watch -- status | pause | resume | trigger`: the runbook's watch (docs/detection.md), a
 * Temporal Schedule `npm start` creates. `status` shows whether it runs, its interval, and its
 * recent runs with what each saw (clear, firing N of M, inconclusive, opened, joined) or why it did
 * not complete; `pause` / `resume` take a reason, recorded as the Schedule's note; `trigger` runs
 * it once now. Exit code: 0, or 1 when the watch is missing, paused (`status`) or its last run failed.
 */
import { Command } from 'commander';
import { z } from 'zod';
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { freeText, plainLine } from '../domain';
import { terminalLine, terminalLines } from '../render-safe';
import { watchScheduleId, watchStatus, type WatchStatus } from '../watch/schedule';
import { CliArgumentError, operatorIdentity, runCli, withClient } from './common';

const say = (line: string) => process.stdout.write(`${line}\n`);
const reasonSchema = freeText(z.string().trim().min(1).max(500)).refine((r) => !/[\r\n]/.test(r), 'must be one line');

function parseReason(raw: string | undefined, fallback: string): string {
  if (raw === undefined) return fallback;
  const parsed = reasonSchema.safeParse(raw);
  if (!parsed.success) throw new CliArgumentError(`--reason: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

export function formatWatchStatus(s: WatchStatus): string {
  const lines = [
    `watch ${s.scheduleId}: ${s.paused ? 'PAUSED' : 'running'}${s.note ? ` (${s.note})` : ''}`,
    `every ${s.every ?? '?'}, acts on ${s.consecutive ?? '?'} run(s) in a row${s.nextRunAt && !s.paused ? `, next run ${s.nextRunAt}` : ''}${s.running ? `, ${s.running} run(s) in progress` : ''}`,
    ...(s.runs.length ? ['recent runs (oldest first):'] : ['no runs yet']),
    ...s.runs.map((r) => `  ${r.scheduledAt}  ${r.result ? `${r.result.outcome.padEnd(14)} ${r.result.message}` : `${r.status.toLowerCase().padEnd(14)} ${r.error ?? ''}`}`),
  ];
  return terminalLines(lines);
}

const program = new Command('watch')
  .description("the runbook's watch: a Temporal Schedule of triage's probes that opens incidents (docs/detection.md)")
  .exitOverride()
  .option('--task-queue <name>', 'the worker pool whose watch this is (default TEMPORAL_TASK_QUEUE)');

const taskQueueSchema = plainLine(z.string().trim().min(1).max(200));
function taskQueueOf(env: { TEMPORAL_TASK_QUEUE: string }): string {
  const given = program.opts<{ taskQueue?: string }>().taskQueue;
  if (given === undefined) return env.TEMPORAL_TASK_QUEUE;
  const parsed = taskQueueSchema.safeParse(given);
  if (!parsed.success) throw new CliArgumentError(`--task-queue: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}
const missing = (id: string) => new Error(`${id}: no such watch; npm start creates it (unless WATCH=off)`);

program
  .command('status')
  .description('whether the watch runs, and its recent runs')
  .option('--json', 'one JSON document')
  .option('--runs <n>', 'how many recent runs', '10')
  .action(async (o: { json?: boolean; runs: string }) => {
    const runs = z.coerce.number().int().min(1).max(100).safeParse(o.runs);
    if (!runs.success) throw new CliArgumentError('--runs: must be a whole number from 1 to 100');
    await withClient(async (client, env) => {
      const id = watchScheduleId(taskQueueOf(env));
      const status = await watchStatus(client, taskQueueOf(env), runs.data).catch((e: unknown) => {
        throw e instanceof ScheduleNotFoundError ? missing(id) : e;
      });
      say(o.json ? JSON.stringify(status) : formatWatchStatus(status));
      const last = status.runs.at(-1);
      if (status.paused || (last && last.status !== 'COMPLETED' && last.status !== 'RUNNING')) process.exitCode = 1;
    });
  });

for (const [name, verb] of [['pause', 'pauses'], ['resume', 'resumes']] as const) {
  program
    .command(name)
    .description(`${verb} the watch; the reason is kept as its note`)
    .option('--reason <text>', 'why (one line)')
    .action(async (o: { reason?: string }) => {
      const who = operatorIdentity();
      const reason = parseReason(o.reason, `${name}d from npm run watch`);
      await withClient(async (client, env) => {
        const id = watchScheduleId(taskQueueOf(env));
        const handle = client.schedule.getHandle(id);
        const note = `${name}d by ${who}: ${reason}`;
        await (name === 'pause' ? handle.pause(note) : handle.unpause(note)).catch((e: unknown) => {
          throw e instanceof ScheduleNotFoundError ? missing(id) : e;
        });
        say(terminalLine(`watch ${id} ${name}d (${note})`));
      });
    });
}

program
  .command('trigger')
  .description('runs the watch once now (a run already going is not doubled)')
  .action(async () => {
    await withClient(async (client, env) => {
      const id = watchScheduleId(taskQueueOf(env));
      await client.schedule
        .getHandle(id)
        // The Schedule's own overlap policy (SKIP): the SDK's default for a trigger, ALLOW_ALL, would also start the run without the last one's result (its streak).
        .trigger(ScheduleOverlapPolicy.SKIP)
        .catch((e: unknown) => {
          throw e instanceof ScheduleNotFoundError ? missing(id) : e;
        });
      say(terminalLine(`watch ${id}: a run was started; see npm run watch -- status`));
    });
  });

runCli(async () => {
  await program.parseAsync(process.argv);
});
