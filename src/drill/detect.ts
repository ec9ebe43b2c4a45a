/**
 * `npm run drill -- clerk_outage --detect`: nobody starts the incident. Before the fault is
 * injected the drill runs the runbook's watch (src/watch/schedule.ts, a real Temporal Schedule of
 * `watchWorkflow`) on its task queue under a schedule of its own, with a short interval; the watch
 * must see the fault in `consecutive` runs and open the category's incident under its
 * deterministic id (`incident-<deployment>-<category>`); the drill then goes on against that
 * incident as it would against its own. Reported: MTTD (the incident's detectedAt → openedAt) and
 * fault injected → opened, checked against interval × consecutive + 5 s. The schedule is deleted
 * at the end; a running `npm start`'s own watch of the same queue is paused meanwhile (it would
 * open an incident of its own for the same fault) and resumed after.
 */
import { randomUUID } from 'node:crypto';
import { ScheduleNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { formatDuration, type IncidentCategory } from '../domain';
import { detectedIncidentId } from '../intake/temporal-opener';
import { ensureWatchSchedule, watchScheduleId, watchStatus } from '../watch/schedule';
import { getIncidentState, type incidentWorkflow, type IncidentState } from '../workflows/incident';
import { DrillStopped, type DrillDetectionReport, type DrillDetector, type DrillRun } from './run';
import { DRILL_APPROVERS } from './scenarios';

/** The categories whose drill runs with `--detect` (the fault the watch's probes see and the drill lifts). */
export const DETECTABLE_CATEGORIES = ['clerk_outage'] as const satisfies readonly IncidentCategory[];

export interface DetectOptions {
  /** The watch's interval (the Schedule's workflow ids end in the second: at least 1 s). */
  intervalMs: number;
  /** Runs in a row that open the incident. */
  consecutive: number;
}

/** A drill's watch: every 2 s, two runs in a row (the production default is every 30 s). */
export const DRILL_DETECT: DetectOptions = { intervalMs: 2_000, consecutive: 2 };

/** What the goal allows beyond interval × consecutive: the runs' own time and the Schedule's. */
const GOAL_SLACK_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class WatchDetector implements DrillDetector {
  /** The incidents the drill's watch opens belong to this deployment: `incident-<deployment>-<category>`. */
  readonly deployment = `drill-${randomUUID().slice(0, 8)}`;
  report?: DrillDetectionReport;
  /** A running npm start's own watch, paused for the drill. */
  private pausedOwn = false;
  private created = false;

  constructor(
    private readonly category: IncidentCategory,
    private readonly options: DetectOptions = DRILL_DETECT,
  ) {}

  get incidentId(): string {
    return detectedIncidentId(this.deployment, this.category);
  }

  private scheduleId(run: DrillRun): string {
    return watchScheduleId(run.target.taskQueue, this.deployment);
  }

  async setup(run: DrillRun): Promise<void> {
    const { client, taskQueue } = run.target;
    const own = client.schedule.getHandle(watchScheduleId(taskQueue));
    try {
      if (!(await own.describe()).state.paused) {
        await own.pause(`paused by npm run drill -- ${this.category} --detect: the drill runs a watch of its own (${this.scheduleId(run)}); resumed when it ends`);
        this.pausedOwn = true;
        run.say(`paused the watch ${own.scheduleId} for the drill (it would open an incident of its own for the injected fault)`);
      }
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    await ensureWatchSchedule(
      client.connection,
      client.options.namespace,
      taskQueue,
      { enabled: true, intervalMs: this.options.intervalMs, input: { deployment: this.deployment, consecutive: this.options.consecutive, approvers: [...DRILL_APPROVERS], probeTimeoutMs: 3_000 } },
      this.deployment,
    );
    this.created = true;
    run.say(`watch ${this.scheduleId(run)} runs every ${formatDuration(this.options.intervalMs)}, opens on ${this.options.consecutive} run(s) in a row; nothing is started by hand`);
  }

  async open(run: DrillRun): Promise<WorkflowHandle<typeof incidentWorkflow>> {
    const { intervalMs, consecutive } = this.options;
    const goalMs = intervalMs * consecutive + GOAL_SLACK_MS;
    const waitMs = (goalMs + 60_000) * (run.target.patience ?? 1);
    const handle = run.target.client.workflow.getHandle<typeof incidentWorkflow>(this.incidentId);
    const deadline = Date.now() + waitMs;
    let state: IncidentState | undefined;
    for (;;) {
      // Not found until the watch opens it; a query before its first workflow task may fail too.
      state = await handle.query(getIncidentState).catch(() => undefined);
      if (state?.detection) break;
      if (Date.now() > deadline) {
        const runs = await watchStatus(run.target.client, run.target.taskQueue, 3, this.deployment)
          .then((s) => s.runs.map((r) => `${r.scheduledAt} ${r.result ? `${r.result.outcome}: ${r.result.message}` : `${r.status} ${r.error ?? ''}`}`).join('; ') || 'no runs')
          .catch((err: unknown) => `status unavailable: ${String(err)}`);
        throw new DrillStopped(`the watch did not open ${this.incidentId} within ${formatDuration(waitMs)} (its last runs: ${runs})`);
      }
      await sleep(200);
    }
    const d = state.detection;
    const opened = Date.parse(d.openedAt);
    this.report = {
      scheduleId: this.scheduleId(run),
      intervalMs,
      consecutive,
      incidentId: this.incidentId,
      detectedBy: d.detectedBy,
      detectedAt: d.detectedAt,
      openedAt: d.openedAt,
      injectedAt: run.injectedAt === undefined ? null : new Date(run.injectedAt).toISOString(),
      mttdMs: opened - Date.parse(d.detectedAt),
      injectedToOpenedMs: run.injectedAt === undefined ? null : opened - run.injectedAt,
      goalMs,
    };
    const r = this.report;
    run.check(
      'the watch opened the incident (nobody started it)',
      d.detectedBy === 'watch' && state.reporter === 'monitor:watch',
      `${this.incidentId}: detected by ${d.detectedBy} at ${d.detectedAt}, reporter ${state.reporter}, opened ${d.openedAt}`,
    );
    const within = r.mttdMs <= goalMs && (r.injectedToOpenedMs === null || r.injectedToOpenedMs <= goalMs);
    run.check(
      'detected within interval × consecutive + 5 s',
      within,
      `MTTD (detectedAt → openedAt) ${(r.mttdMs / 1000).toFixed(1)} s, fault injected → opened ${r.injectedToOpenedMs === null ? 'unknown' : `${(r.injectedToOpenedMs / 1000).toFixed(1)} s`}; goal ≤ ${(goalMs / 1000).toFixed(1)} s`,
    );
    run.say(`the watch opened ${this.incidentId}: MTTD ${(r.mttdMs / 1000).toFixed(1)} s, injected → opened ${r.injectedToOpenedMs === null ? '?' : (r.injectedToOpenedMs / 1000).toFixed(1)} s`);
    return handle;
  }

  async teardown(run: DrillRun): Promise<void> {
    const { client, taskQueue } = run.target;
    try {
      if (this.created) await client.schedule.getHandle(this.scheduleId(run)).delete();
    } finally {
      if (this.pausedOwn) await client.schedule.getHandle(watchScheduleId(taskQueue)).unpause(`resumed by npm run drill -- ${this.category} --detect: the drill is over`);
    }
  }
}
