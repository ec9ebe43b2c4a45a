/**
 * The runbook's watch as a Temporal Schedule: `watchWorkflow` every WATCH_INTERVAL on the
 * worker's task queue (src/workflows/watch.ts). `npm start` ensures it (created once, brought in
 * line with the configuration when that changed, paused or not as it was); `npm run watch`
 * pauses, resumes, triggers and shows it (src/cli/watch.ts).
 */
import { Client, ScheduleAlreadyRunning, ScheduleOverlapPolicy, WorkflowFailedError, type ConnectionLike, type ScheduleDescription } from '@temporalio/client';
import { z } from 'zod';
import { durationSchema, formatDuration, personSchema } from '../domain';
import { watchInputSchema, watchResultSchema, type WatchInput, type WatchResult } from '../workflows/watch';

/**
 * One watch per task queue: each worker pool watches the Clerk and app it is configured for.
 * `name` tells apart another watch on the same queue (a drill's, `npm run drill -- --detect`).
 */
export const watchScheduleId = (taskQueue: string, name?: string): string => `runbook-watch:${taskQueue}${name ? `:${name}` : ''}`;

const list = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []);

const watchEnvSchema = z.object({
  /** `off`: `npm start` creates no watch (an existing one is left, pause it with `npm run watch -- pause`). */
  WATCH: z.enum(['on', 'off']).default('on'),
  WATCH_INTERVAL: durationSchema(1_000, 3_600_000).default(30_000),
  WATCH_CONSECUTIVE: z.coerce.number().int().min(1).max(20).default(2),
  /** Approvers of the incidents the watch opens; ALERT_APPROVERS when unset. */
  WATCH_APPROVERS: z.string().optional().transform(list).pipe(z.array(personSchema).max(50)),
  ALERT_APPROVERS: z.string().optional().transform(list).pipe(z.array(personSchema).max(50)),
  ALERT_DEPLOYMENT: watchInputSchema.shape.deployment.default('production'),
});

export interface WatchConfig {
  enabled: true;
  intervalMs: number;
  input: z.output<typeof watchInputSchema>;
}

export class WatchConfigError extends Error {
  override readonly name = 'WatchConfigError' as const;
}

/** The watch's configuration; `defaultApprovers` are used when neither WATCH_APPROVERS nor ALERT_APPROVERS is set (the sandbox's sample people). */
export function watchConfigFromEnv(source: NodeJS.ProcessEnv, defaultApprovers: readonly string[] = []): WatchConfig | { enabled: false; reason: string } {
  const parsed = watchEnvSchema.safeParse(source);
  if (!parsed.success) throw new WatchConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const env = parsed.data;
  if (env.WATCH === 'off') return { enabled: false, reason: 'WATCH=off' };
  const approvers = env.WATCH_APPROVERS.length ? env.WATCH_APPROVERS : env.ALERT_APPROVERS.length ? env.ALERT_APPROVERS : [...defaultApprovers];
  if (approvers.length === 0) return { enabled: false, reason: 'no WATCH_APPROVERS (or ALERT_APPROVERS): an incident the watch opens needs its approvers' };
  const input = watchInputSchema.safeParse({ deployment: env.ALERT_DEPLOYMENT, consecutive: env.WATCH_CONSECUTIVE, approvers } satisfies WatchInput);
  if (!input.success) throw new WatchConfigError(input.error.issues.map((i) => `WATCH.${i.path.join('.')}: ${i.message}`).join('; '));
  return { enabled: true, intervalMs: env.WATCH_INTERVAL, input: input.data };
}

const intervalOf = (d: ScheduleDescription) => {
  const every = d.spec.intervals?.[0]?.every;
  return typeof every === 'number' ? every : every === undefined ? undefined : Number(every);
};
const sameArgs = (d: ScheduleDescription, input: WatchInput) => d.action.type === 'startWorkflow' && JSON.stringify(d.action.args?.[0]) === JSON.stringify(input);

function scheduleOptions(taskQueue: string, config: WatchConfig, name?: string) {
  return {
    spec: { intervals: [{ every: config.intervalMs }] },
    action: {
      type: 'startWorkflow' as const,
      workflowType: 'watchWorkflow',
      args: [config.input],
      taskQueue,
      workflowId: `watch:${taskQueue}${name ? `:${name}` : ''}`,
      // A run stuck (the worker down) ends and shows as timed out in the recent actions; the next one runs.
      workflowExecutionTimeout: Math.max(60_000, config.intervalMs * 4),
    },
    // A run still going is not doubled; missed runs are not caught up (the next one looks now).
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: Math.max(10_000, config.intervalMs) },
  };
}

/** Created once; an existing one is updated only when the configuration changed, and keeps its paused state. */
export async function ensureWatchSchedule(connection: ConnectionLike, namespace: string, taskQueue: string, config: WatchConfig, name?: string): Promise<'created' | 'exists' | 'updated'> {
  const client = new Client({ connection, namespace });
  const scheduleId = watchScheduleId(taskQueue, name);
  const options = scheduleOptions(taskQueue, config, name);
  try {
    await client.schedule.create({ scheduleId, ...options, memo: { purpose: 'the runbook watch: triage probes every interval; opens an incident on a rule seen in consecutive runs (docs/detection.md)' } });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  const handle = client.schedule.getHandle(scheduleId);
  const current = await handle.describe();
  if (intervalOf(current) === config.intervalMs && sameArgs(current, config.input)) return 'exists';
  await handle.update((prev) => ({ ...prev, spec: options.spec, action: { ...prev.action, ...options.action }, policies: { ...prev.policies, ...options.policies } }));
  return 'updated';
}

/** One of the watch's recent runs as `status` shows it. */
export interface WatchRun {
  scheduledAt: string;
  workflowId: string;
  runId: string;
  status: string;
  /** A completed run's result. */
  result?: WatchResult;
  /** A run that did not complete: why (failed, timed out, terminated). */
  error?: string;
}

export interface WatchStatus {
  scheduleId: string;
  paused: boolean;
  note?: string;
  every?: string;
  consecutive?: number;
  nextRunAt?: string;
  running: number;
  runs: WatchRun[];
}

export async function watchStatus(client: Client, taskQueue: string, recent = 10, name?: string): Promise<WatchStatus> {
  const scheduleId = watchScheduleId(taskQueue, name);
  const d = await client.schedule.getHandle(scheduleId).describe();
  const actions = d.info.recentActions.slice(-recent);
  const runs = await Promise.all(
    actions.map(async (a): Promise<WatchRun> => {
      const { workflowId, firstExecutionRunId: runId } = a.action.workflow;
      const handle = client.workflow.getHandle(workflowId, runId);
      const run: WatchRun = { scheduledAt: a.scheduledAt.toISOString(), workflowId, runId, status: 'UNKNOWN' };
      try {
        run.status = (await handle.describe()).status.name;
        if (run.status === 'COMPLETED') {
          const parsed = watchResultSchema.safeParse(await handle.result());
          if (parsed.success) run.result = parsed.data;
        } else if (run.status !== 'RUNNING') {
          await handle.result().catch((e: unknown) => {
            run.error = e instanceof WorkflowFailedError ? (e.cause?.message ?? e.message) : String(e);
          });
        }
      } catch (e) {
        run.error = String(e);
      }
      return run;
    }),
  );
  const every = intervalOf(d);
  const args = d.action.type === 'startWorkflow' ? watchInputSchema.safeParse(d.action.args?.[0]) : undefined;
  return {
    scheduleId,
    paused: d.state.paused,
    ...(d.state.note ? { note: d.state.note } : {}),
    ...(every !== undefined ? { every: formatDuration(every) } : {}),
    ...(args?.success ? { consecutive: args.data.consecutive } : {}),
    ...(d.info.nextActionTimes[0] ? { nextRunAt: d.info.nextActionTimes[0].toISOString() } : {}),
    running: d.info.runningActions.length,
    runs,
  };
}

