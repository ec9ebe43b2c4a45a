/**
 * One game-day drill: a scenario (scenarios.ts) injects its category's fault in the sandbox,
 * starts the sample incident, plays the approvers and the operator through the same updates a
 * person sends, and the checks compare the outcome with the sandbox's own records. The runner
 * here does what every drill shares: the incident's handle and waits, closing a `needs_human`
 * incident as its commander would, the review written to a file, and a report that passes only
 * when every check did.
 */
import { dedupKeyFor } from '../activities/paging';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServiceError, WorkflowNotFoundError, type Client, type UpdateDefinition, type WorkflowHandle } from '@temporalio/client';
import { formatDuration, type GatedStep, type IncidentCategory, type IncidentInput } from '../domain';
import { sendUpdate } from '../temporal/updates';
import { INCIDENT_WORKFLOW_TASK_TIMEOUT } from '../shared';
import { approveStep, completeReview, finalizeReview, getIncidentState, getReview, incidentWorkflow, resolveIncident, type IncidentState } from '../workflows/incident';
import type { DrillSandbox } from './sandbox';
import { terminalLines } from '../render-safe';
import { DrillSlack } from './slack';

export interface DrillCheck {
  name: string;
  passed: boolean;
  detail: string;
}

export interface DrillReport {
  category: IncidentCategory;
  passed: boolean;
  checks: DrillCheck[];
  workflowId: string | null;
  steps: Array<{ step: string; outcome: string }>;
  /** Where the post-incident review was written, when it was. */
  reviewPath: string | null;
  durationMs: number;
  /** With `--detect`: how the watch found the fault. */
  detection?: DrillDetectionReport;
}

/** How detection opened the drill's incident (`--detect`, src/drill/detect.ts). */
export interface DrillDetectionReport {
  /** The watch's Schedule the drill ran, and its interval and runs in a row. */
  scheduleId: string;
  intervalMs: number;
  consecutive: number;
  incidentId: string;
  detectedBy: string;
  /** The first failing run's probes (detection) and the incident's start, as the incident's state has them. */
  detectedAt: string;
  openedAt: string;
  /** When the drill injected the fault (this machine's clock). */
  injectedAt: string | null;
  /** detectedAt → openedAt: this incident's time to detect (MTTD over drills). */
  mttdMs: number;
  /** Fault injected → incident opened: what a user waited for the runbook to know. */
  injectedToOpenedMs: number | null;
  /** interval × consecutive + 5 s. */
  goalMs: number;
}

/**
 * Who opens a drill's incident when it is not the drill (`--detect`): set up before the fault is
 * injected, asked for the incident where the drill would start it, torn down whatever happened.
 */
export interface DrillDetector {
  setup(run: DrillRun): Promise<void>;
  /** Waits for detection to open the incident (the drill's checks of it recorded on `run`); its handle. */
  open(run: DrillRun): Promise<WorkflowHandle<typeof incidentWorkflow>>;
  teardown(run: DrillRun): Promise<void>;
  readonly report?: DrillDetectionReport;
}

/** Where the drill's incidents run: a Temporal client, the task queue a sandbox-mode worker polls, the sandbox. */
export interface DrillTarget {
  client: Client;
  taskQueue: string;
  sandbox: DrillSandbox;
  /** The app's user store the worker reconciles (webhook_backlog), as a USER_STORE_URL. */
  userStoreUrl?: string;
  /** Folder the reviews are written to (`.data/drills` by default). */
  reviewDir: string;
  /** `--via slack`: the approvers click in the sandbox's emulated Slack instead of sending updates. */
  slack?: DrillSlack;
  /** Multiplies every wait of the drill (the crash suite's workers die on purpose; 1 by default). */
  patience?: number;
  log: (line: string) => void;
}

/** Test seams: `beforeChecks` runs once the incident is over, before the checks read the sandbox. */
export interface DrillHooks {
  beforeChecks?: (ctx: { category: IncidentCategory; workflowId: string; sandbox: DrillSandbox }) => Promise<void>;
}

/**
 * A category's drill. `play` injects the fault, starts and drives the incident, and returns the
 * checks to run on the final state (after the incident is over and `beforeChecks` ran).
 * `cleanup` lifts whatever the drill may have left in the sandbox, whatever happened.
 */
export interface DrillScenario {
  /** Set when the playbook cannot be drilled in this build: reported as a failed check, nothing is run. */
  notDrillable?: string;
  play(run: DrillRun): Promise<(final: IncidentState) => Promise<void>>;
  cleanup(sandbox: DrillSandbox): Promise<void>;
}

/** Thrown when the drill cannot go on (a state not reached in time); the report says where it stopped. */
export class DrillStopped extends Error {
  override readonly name = 'DrillStopped';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DONE: ReadonlySet<string> = new Set(['resolved', 'cancelled']);

export class DrillRun {
  readonly checks: DrillCheck[] = [];
  handle: WorkflowHandle<typeof incidentWorkflow> | undefined;
  /** When the scenario injected its fault (`injected`). */
  injectedAt: number | undefined;
  private input: IncidentInput | undefined;

  constructor(
    readonly category: IncidentCategory,
    readonly target: DrillTarget,
    readonly detector?: DrillDetector,
  ) {}

  get sandbox(): DrillSandbox {
    return this.target.sandbox;
  }

  check(name: string, passed: boolean, detail: string): void {
    this.checks.push({ name, passed, detail });
  }

  say(line: string): void {
    this.target.log(`[${this.category}] ${line}`);
  }

  /** The scenario's fault is in place: said, and its time kept (detection is measured from it). */
  injected(what: string): void {
    this.injectedAt ??= Date.now();
    this.say(`injected: ${what}`);
  }

  /**
   * Starts the incident with `input`; with a detector (`--detect`) nothing is started: detection
   * opens the incident (with its own input) and the drill goes on with it.
   */
  async start(input: IncidentInput): Promise<void> {
    this.input = input;
    if (this.detector) {
      this.handle = await this.detector.open(this);
      return;
    }
    const workflowId = `drill-${this.category.replace(/_/g, '-')}-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${Math.random().toString(36).slice(2, 6)}`;
    this.handle = await this.target.client.workflow.start(incidentWorkflow, {
      taskQueue: this.target.taskQueue,
      workflowId,
      args: [input],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      workflowTaskTimeout: INCIDENT_WORKFLOW_TASK_TIMEOUT,
      staticSummary: `drill: ${input.summary}`,
    });
    this.say(`started incident ${workflowId}`);
  }

  private get h(): WorkflowHandle<typeof incidentWorkflow> {
    if (!this.handle) throw new DrillStopped('the incident was not started');
    return this.handle;
  }

  async state(): Promise<IncidentState> {
    return this.h.query(getIncidentState);
  }

  /**
   * Polls the incident's state until `ready`; stops the drill with the last state seen when it
   * never is. A query that fails (no worker polls while one restarts, the server restarting) is
   * asked again until the deadline: a game day goes on through a crash.
   */
  async waitFor(what: string, ready: (s: IncidentState) => boolean, timeoutMs = 60_000): Promise<IncidentState> {
    timeoutMs *= this.target.patience ?? 1;
    const deadline = Date.now() + timeoutMs;
    let last: IncidentState | undefined;
    let error: string | undefined;
    for (;;) {
      try {
        last = await this.h.query(getIncidentState);
        error = undefined;
        if (ready(last)) return last;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw err;
        error = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > deadline) {
        const seen = last ? `status ${last.status}; waiting for: ${last.waitingFor}` : 'no state read';
        throw new DrillStopped(`${what}: not reached within ${formatDuration(timeoutMs)} (${seen}${error ? `; last query failed: ${error}` : ''})`);
      }
      await sleep(250);
    }
  }

  /**
   * Sends an update as a person does, again when the call fails without an answer (a worker or
   * server restarting): the update id makes the server apply it once however often it is sent.
   * A refusal by the workflow (its validator or handler) is final and thrown.
   */
  async update<Ret, Args extends [unknown, ...unknown[]]>(def: UpdateDefinition<Ret, Args>, args: Args, updateId: string, timeoutMs = 120_000): Promise<Ret> {
    return sendUpdate((id) => this.h.executeUpdate(def, { args, updateId: id }), `${this.h.workflowId}-${updateId}`, {
      attempts: Infinity,
      deadline: Date.now() + timeoutMs,
      onResend: (err) => this.say(`update ${def.name} not answered (${err instanceof Error ? err.message : String(err)}): sending it again`),
    });
  }

  async waitForApproval(step: string, timeoutMs = 60_000): Promise<IncidentState> {
    return this.waitFor(`approval request for ${step}`, (s) => s.pendingApprovals.some((p) => p.step === step), timeoutMs);
  }

  /** An approver approves, as `npm run incident -- approve` does; with `--via slack`, by clicking Approve in the thread. */
  async approve(step: GatedStep, approver: string): Promise<void> {
    if (this.target.slack) {
      try {
        await this.target.slack.approve(this.h.workflowId, step, approver, 30_000 * (this.target.patience ?? 1));
      } catch (err) {
        throw new DrillStopped(err instanceof Error ? err.message : String(err));
      }
      this.say(`${approver} clicked Approve on ${step} in Slack`);
      return;
    }
    await this.update(approveStep, [{ step, approver }], `approve-${step}-${approver}`);
    this.say(`${approver} approved ${step}`);
  }

  /**
   * The worker's post-incident phase (REVIEW_PHASE), played as the commander would: the draft at
   * `resolved`, the findings (the proposed action items kept, each owned and due in two weeks, and
   * one of the drill's own), then the review finalized. Undefined when the worker has no phase.
   */
  private async reviewPhase(): Promise<{ rootCause: string; detection: string; lessons: string[]; item: string } | undefined> {
    const s = await this.waitFor('the review: a draft (post-incident phase) or the final one', (x) => x.postIncident !== undefined || x.steps.some((st) => st.step === 'review'), 60_000);
    if (!s.postIncident) return undefined;
    const draft = await this.waitFor('the draft review', (x) => (x.review ?? '').startsWith('# Post-incident review (DRAFT)'), 60_000);
    this.check('draft review at resolved', draft.status === 'resolved', `status ${draft.status}; draft until ${draft.postIncident?.until}`);
    // The commander: the reporter, or for an incident a monitor opened, the first person who decided a gate in it.
    const decider = draft.gates.flatMap((g) => g.approvals.map((a) => a.approver)).at(0);
    const commander = draft.reporter.startsWith('monitor:') ? (decider ?? draft.approvers[0] ?? draft.reporter) : draft.reporter;
    const proposed = (await this.h.query(getReview))?.review.actionItems ?? [];
    const due = new Date(Date.now() + 14 * 86_400_000).toISOString().slice(0, 10);
    const item = `rehearse the ${this.category} drill again`;
    const found = { rootCause: `game-day drill: the ${this.category} fault was injected in the sandbox`, detection: this.detector ? 'a monitoring alert' : 'found by hand', lessons: [`the ${this.category} playbook ran against the sandbox`], item };
    const items = [...proposed.map((a) => ({ title: a.text.replace(/\s+/g, ' ').slice(0, 300), owner: commander, due })), { title: item, owner: commander, due }];
    if (this.target.slack) {
      // In Slack, as the commander would: the findings form, then the Finalize button.
      const slack = this.target.slack;
      const patience = 30_000 * (this.target.patience ?? 1);
      try {
        await slack.completeReview(this.h.workflowId, commander, { rootCause: found.rootCause, trigger: 'the drill injected the fault', detection: this.detector ? 'monitoring_alert' : 'manual', wentWell: found.lessons, actionItems: items }, patience);
        await this.waitFor('the findings sent from Slack', (x) => (x.postIncident?.completions ?? 0) > 0, 30_000);
        await slack.finalizeReview(this.h.workflowId, commander, patience);
      } catch (err) {
        throw new DrillStopped(err instanceof Error ? err.message : String(err));
      }
      this.say(`${commander} sent the review's findings (${items.length} action item(s)) and finalized it, in Slack`);
      return found;
    }
    await this.update(
      completeReview,
      [
        {
          completedBy: commander,
          rootCause: found.rootCause,
          trigger: 'the drill injected the fault',
          detection: this.detector ? 'monitoring_alert' : 'manual',
          dataLoss: 'none',
          lessons: { wentWell: found.lessons },
          actionItems: items,
        },
      ],
      'complete-review',
    );
    await this.update(finalizeReview, [{ finalizedBy: commander, note: 'game-day drill' }], 'finalize-review');
    this.say(`${commander} sent the review's findings (${proposed.length + 1} action item(s)) and finalized it`);
    return found;
  }

  /**
   * Waits for the playbook to end. An incident the runbook could not verify (`needs_human`) is
   * closed by its commander with `resolve`, as a person would; the check "resolved by the runbook's
   * own verification" then fails. Returns the final state (the workflow's result).
   */
  async finish(timeoutMs = 180_000): Promise<IncidentState> {
    const over = await this.waitFor('end of the playbook', (s) => DONE.has(s.status) || s.status === 'needs_human', timeoutMs);
    this.check(
      'incident resolved by the runbook’s own verification',
      over.status === 'resolved',
      over.status === 'resolved' ? 'status resolved, nothing left open' : `status ${over.status}; open: ${over.openItems.join('; ') || '(none)'}`,
    );
    if (over.status === 'needs_human') {
      const commander = this.input?.reporter ?? over.reporter;
      await this.update(resolveIncident, [{ resolvedBy: commander, summary: `game-day drill: closed by the drill; open: ${over.openItems.join('; ')}` }], 'resolve');
      this.say(`${commander} resolved the incident (the runbook could not verify it)`);
    }
    const findings = await this.reviewPhase();
    // The end is known from the query; the result is read again when the call fails (a server restarting).
    for (let attempt = 1; ; attempt++) {
      try {
        const final = await this.h.result();
        if (findings) {
          // The owner as the incident recorded it (with a roster: the person's id).
          const owner = final.postIncident?.actionItems?.find((a) => a.title === findings.item)?.owner ?? '(no owner)';
          const missing = [findings.rootCause, `detection: ${findings.detection}`, ...findings.lessons, `| ${findings.item} | ${owner} |`].filter((t) => !(final.review ?? '').includes(t));
          this.check('final review holds the findings', missing.length === 0 && final.postIncident?.final?.how === 'finalized', missing.length ? `missing from the final review: ${missing.join('; ')}` : `root cause, detection, lessons and ${final.postIncident?.actionItems?.length ?? 0} owned action item(s); finalized by ${final.postIncident?.final?.by}`);
        }
        return final;
      } catch (err) {
        if (!(err instanceof ServiceError) || attempt >= 20) throw err;
        await sleep(500);
      }
    }
  }
}

/** Checks every drill shares, on the final state: the review was written (and to a file). */
function reviewCheck(run: DrillRun, final: IncidentState, reviewDir: string): string | null {
  const step = final.steps.filter((s) => s.step === 'review').at(-1);
  if (!final.review || step?.outcome !== 'succeeded') {
    run.check('review written', false, `review step ${step?.outcome ?? 'missing'}; no review in the final state`);
    return null;
  }
  mkdirSync(reviewDir, { recursive: true });
  const path = join(reviewDir, `${final.incidentId}.md`);
  writeFileSync(path, final.review.endsWith('\n') ? final.review : `${final.review}\n`);
  const names = final.review.includes(final.incidentId);
  run.check('review written', names, names ? `${path} (${final.review.split('\n').length} lines)` : `the review does not name the incident ${final.incidentId}`);
  return path;
}

/**
 * With a roster, every gate paged someone and every alert closed with the incident: judged by the
 * emulated PagerDuty's log, not by the workflow's `pages`.
 */
async function pagingCheck(run: DrillRun, final: IncidentState, sandbox: DrillSandbox): Promise<void> {
  if (!final.roster || !final.gates.length) return;
  const pd = await sandbox.admin.pagerduty();
  const problems: string[] = [];
  const seen: string[] = [];
  for (const gate of final.gates) {
    const dedupKey = dedupKeyFor(final.incidentId, gate.step);
    const alerts = pd.alerts.filter((a) => a.dedupKey === dedupKey);
    if (!pd.log.some((e) => e.dedupKey === dedupKey && e.eventAction === 'trigger' && e.outcome === 'accepted')) problems.push(`${gate.step}: nobody paged`);
    else if (alerts.some((a) => a.status !== 'resolved')) problems.push(`${gate.step}: an alert still ${alerts.find((a) => a.status !== 'resolved')?.status}`);
    else seen.push(`${gate.step} paged ${alerts.length} service(s), ${alerts.some((a) => a.history.some((h) => h.action === 'acknowledge')) ? 'acknowledged, ' : ''}resolved`);
  }
  run.check('the on-call was paged for each gate (sandbox PagerDuty log)', problems.length === 0, problems.length ? problems.join('; ') : seen.join('; '));
}

/**
 * `--via slack`: every approval the incident recorded came from a click (the sandbox's deliveries,
 * each answered 200), and the thread's first message shows the incident's final status.
 */
async function slackCheck(run: DrillRun, final: IncidentState, slack: DrillSlack): Promise<void> {
  const o = await slack.admin.slack();
  const thread = DrillSlack.threadOf(o, final.incidentId);
  const approvals = final.gates.flatMap((g) => g.approvals.map((a) => `${g.step}:${a.approver}`));
  const clicks = slack.clicks.filter((c) => c.incidentId === final.incidentId && c.status === 200);
  const root = thread ? JSON.stringify(thread.root.blocks) : '';
  const finalShown = root.includes(`Status: ${final.status}`);
  run.check(
    'every approval was a click in Slack (sandbox records)',
    thread !== undefined && clicks.length === approvals.length && finalShown,
    `${clicks.length} click(s) answered 200 and written into their message (${clicks.map((c) => `${c.step} by ${c.user}`).join(', ') || 'no gate to decide'}) for ${approvals.length} approval(s) recorded; thread ${thread ? `${thread.root.ts} with ${thread.root.replies.length} replies, its first message edited ${thread.root.edits} time(s)${finalShown ? ` and showing status ${final.status}` : `, NOT showing status ${final.status}`}` : 'not found'}`,
  );
}

export async function runDrill(category: IncidentCategory, scenario: DrillScenario, target: DrillTarget, hooks: DrillHooks = {}, detector?: DrillDetector): Promise<DrillReport> {
  const startedAt = Date.now();
  const run = new DrillRun(category, target, detector);
  let reviewPath: string | null = null;
  let final: IncidentState | undefined;
  if (scenario.notDrillable) {
    run.check('drillable', false, `not drillable yet: ${scenario.notDrillable}`);
  } else {
    try {
      await detector?.setup(run);
      const verify = await scenario.play(run);
      final = await run.finish();
      await hooks.beforeChecks?.({ category, workflowId: final.incidentId, sandbox: target.sandbox });
      await verify(final);
      await pagingCheck(run, final, target.sandbox);
      if (target.slack) await slackCheck(run, final, target.slack);
      reviewPath = reviewCheck(run, final, target.reviewDir);
    } catch (err) {
      run.check('drill ran to the end', false, err instanceof Error ? err.message : String(err));
      // Leave nothing running: cancellation runs the incident's compensations (e.g. bypass off).
      if (run.handle && !final) {
        await run.handle.cancel().catch(() => undefined);
        await run.handle.result().catch(() => undefined);
      }
    } finally {
      await scenario.cleanup(target.sandbox).catch((err: unknown) => run.check('fault lifted after the drill', false, String(err)));
      await detector?.teardown(run).catch((err: unknown) => run.check('detection torn down after the drill', false, String(err)));
    }
  }
  const state = final ?? (run.handle ? await run.handle.query(getIncidentState).catch(() => undefined) : undefined);
  return {
    category,
    passed: run.checks.length > 0 && run.checks.every((c) => c.passed),
    checks: run.checks,
    workflowId: run.handle?.workflowId ?? null,
    steps: (state?.steps ?? []).map((s) => ({ step: s.step, outcome: s.outcome })),
    reviewPath,
    durationMs: Date.now() - startedAt,
    ...(detector?.report ? { detection: detector.report } : {}),
  };
}

/** What `--json` prints: `[{category, passed, checks, workflowId, steps, reviewPath, durationMs}]`, and `detection` with `--detect`. */
export function reportsJson(reports: DrillReport[]): string {
  return JSON.stringify(
    reports.map(({ category, passed, checks, workflowId, steps, reviewPath, durationMs, detection }) => ({ category, passed, checks, workflowId, steps, reviewPath, durationMs, ...(detection ? { detection } : {}) })),
    null,
    2,
  );
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** "opened by watch: MTTD 2.1 s (detectedAt → openedAt), fault injected → opened 3.4 s; goal ≤ 9.0 s (every 2s, 2 runs in a row)" */
export function describeDetection(d: DrillDetectionReport): string {
  return (
    `${d.incidentId} opened by ${d.detectedBy}: MTTD ${seconds(d.mttdMs)} (detectedAt ${d.detectedAt} → openedAt ${d.openedAt}), ` +
    `fault injected → opened ${d.injectedToOpenedMs === null ? 'unknown' : seconds(d.injectedToOpenedMs)}; goal ≤ ${seconds(d.goalMs)} (${d.scheduleId} every ${formatDuration(d.intervalMs)}, ${d.consecutive} run(s) in a row)`
  );
}

/** The report for a terminal. */
export function formatReports(reports: DrillReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(`${r.passed ? 'PASSED' : 'FAILED'}  ${r.category}  (${formatDuration(r.durationMs)}${r.workflowId ? `, incident ${r.workflowId}` : ''})`);
    if (r.detection) lines.push(`  detection: ${describeDetection(r.detection)}`);
    if (r.steps.length) lines.push(`  steps: ${r.steps.map((s) => `${s.step} ${s.outcome}`).join(' → ')}`);
    for (const c of r.checks) lines.push(`  ${c.passed ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
    if (r.reviewPath) lines.push(`  review: ${r.reviewPath}`);
  }
  const failed = reports.filter((r) => !r.passed).map((r) => r.category);
  lines.push(failed.length ? `${failed.length} of ${reports.length} drill(s) failed: ${failed.join(', ')}` : `all ${reports.length} drill(s) passed`);
  return terminalLines(lines);
}
