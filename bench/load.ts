/**
 * `npm run bench:load`: many concurrent incidents of every category on ONE worker, end to end (a
 * Temporal dev server of its own with a throwaway SQLite database, the Clerk sandbox and the app's
 * user store in this process, the worker in a child process of its own: bench/load-environment.ts,
 * bench/load-worker.ts).
 *
 * First a baseline, each category's incident alone, one after the other; then `--incidents` (200)
 * at once, the categories in turn (bench/load-mix.ts says which input each runs and why). The
 * driver plays the approvers and the commander through the real updates, reacting to the worker's
 * chat messages ("Approval needed: <step>", "Incident needs a human") as people in the channel
 * would, so it adds no polling load to the worker. Prints, for both phases and as load / baseline:
 *
 *  - start → triage done: the workflow's start to its triage activity's completion (history times);
 *  - approval → step applied: the deciding approval's acceptance to the gated step's activity (or
 *    child workflow) completion (history times);
 *  - the worker's CPU seconds (getrusage, every thread) and peak RSS;
 *  - whether every incident completed with its expected outcomes, and the sandbox's own records
 *    (the targeted sessions revoked once, no other session revoked).
 *
 * Exit code 1 when an incident did not complete as expected. BENCH_LOAD_WORKER_NODE_OPTIONS adds
 * node options to the worker's process (e.g. `--cpu-prof`). Docs: docs/load.md.
 */
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { Command, InvalidArgumentError } from 'commander';
import { runCli } from '../src/cli/common';
import { INCIDENT_CATEGORIES, type GatedStep, type IncidentCategory } from '../src/domain';
import { sendUpdate } from '../src/temporal/updates';
import { approveStep, incidentWorkflow, resolveIncident, type IncidentState } from '../src/workflows/incident';
import { cpuSeconds, openEnvironment, type LoadEnvironment } from './load-environment';
import { MIX, outcomeProblems, percentiles, planMix, REPORTER_OF_LOAD, timingsFromHistory, type IncidentTimings, type Percentiles } from './load-mix';

export interface LoadOptions {
  incidents: number;
  /** Sandbox users (seeded), besides the two each session_issues incident creates. */
  users: number;
  /** A running Temporal server (e.g. the test suite's); otherwise a dev server of its own. */
  temporalAddress?: string;
  /** A prebuilt workflow bundle; otherwise bundled now. */
  workflowBundle?: string;
  /** The worker's CLERK_RATE_HEADROOM (see docs/load.md: its probes call Clerk unpaced, beside its paced calls). */
  clerkHeadroom: number;
  /** How long a phase may take before its unfinished incidents count as not completed. */
  phaseTimeoutMs: number;
  log: (line: string) => void;
}

export interface IncidentResult {
  workflowId: string;
  category: IncidentCategory;
  completed: boolean;
  problems: string[];
  timings: IncidentTimings;
}

export interface PhaseReport {
  incidents: number;
  completed: number;
  wallSeconds: number;
  triageMs: Percentiles;
  approvalToAppliedMs: Percentiles;
  /** The same, per gated step (p50 / max tell which steps wait on what). */
  approvalToAppliedByStep: Partial<Record<GatedStep, Percentiles>>;
  /** Where start → triage done went (see IncidentTimings.triageParts). */
  triageParts: { workflowTaskWaitMs: Percentiles; activityWaitMs: Percentiles; activityRunMs: Percentiles };
  workerCpuSeconds: number;
  workerPeakRssBytes: number;
  /** For context: the CPU of this process (driver, sandbox, user store) and of the dev server (when the bench started it). */
  driverCpuSeconds: number;
  serverCpuSeconds?: number;
  /** Requests the sandbox answered (its audit), and how many of them were 429s. */
  clerkRequests: number;
  clerkRateLimited: number;
  /** Updates the driver had to send again because the call failed (not refused), with the first few reasons. */
  updateRetries: { count: number; examples: string[] };
  /** The sandbox's own records: targeted sessions revoked exactly once, nothing else revoked. */
  sandboxProblems: string[];
  failures: Array<Pick<IncidentResult, 'workflowId' | 'category' | 'problems'>>;
}

export interface LoadReport {
  mix: Record<IncidentCategory, { count: number; how: string }>;
  baseline: PhaseReport;
  load: PhaseReport;
  /** load / baseline of the same statistic. */
  ratios: {
    triage: Record<'p50' | 'p90' | 'p99' | 'max', number>;
    approvalToApplied: Record<'p50' | 'p90' | 'p99' | 'max', number>;
    workerCpuPerIncident: number;
    workerPeakRss: number;
  };
  /** Every incident of both phases completed with its expected outcomes, and the sandbox agrees. */
  allCompleted: boolean;
}

// -- one incident --------------------------------------------------------------------------------------

type Handle = WorkflowHandle<typeof incidentWorkflow>;
const UPDATE_ATTEMPTS = 5;

const refusal = (err: unknown) => (err instanceof WorkflowUpdateFailedError ? `refused: ${err.cause?.message ?? err.message}` : err instanceof Error ? err.message : String(err));

/** Starts one incident and answers its channel messages as its approvers and commander; resolves with its final state. */
async function driveIncident(env: LoadEnvironment, category: IncidentCategory, users: string[], workflowId: string, deadline: number): Promise<{ handle: Handle; final?: IncidentState; errors: string[]; retries: string[] }> {
  const entry = MIX[category];
  const errors: string[] = [];
  const retries: string[] = [];
  const acted = new Set<string>();
  // A handle by id before the start: a message that arrives before start() returns is answered too.
  const handle: Handle = env.client.workflow.getHandle(workflowId);
  /**
   * An update as a person sends it, sent again (same update id: Temporal runs it once) when the call
   * itself failed, e.g. "context deadline exceeded" from a busy server; a refusal is final.
   */
  const send = (name: string, call: (updateId: string) => Promise<unknown>) =>
    sendUpdate(call, `${workflowId}/${name}`, {
      attempts: UPDATE_ATTEMPTS,
      delayMs: (attempt) => 1000 * attempt,
      onResend: (err) => retries.push(`${name}: ${err instanceof Error ? err.message : String(err)}`),
    });
  const react = async (title: string) => {
    const gate = /^(?:Approval needed: |Escalation: )([a-z_]+)/.exec(title)?.[1] as GatedStep | undefined;
    const approvers = gate ? entry.approvals[gate] : undefined;
    if (gate && approvers && !acted.has(gate)) {
      acted.add(gate);
      for (const approver of approvers) await send(`${gate}/${approver}`, (updateId) => handle.executeUpdate(approveStep, { args: [{ step: gate, approver }], updateId }));
    } else if (title === 'Incident needs a human' && !acted.has('resolve')) {
      acted.add('resolve');
      const summary = 'bench:load: a dry run, nothing was meant to change';
      await send('resolve', (updateId) => handle.executeUpdate(resolveIncident, { args: [{ resolvedBy: REPORTER_OF_LOAD, summary }], updateId }));
    }
  };
  let replies = Promise.resolve();
  env.channel.on(workflowId, (title) => {
    replies = replies.then(() => react(title)).catch((err: unknown) => void errors.push(`${title}: ${refusal(err)}`));
  });
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  try {
    await env.client.workflow.start(incidentWorkflow, { taskQueue: env.taskQueue, workflowId, args: [entry.input(users)], staticSummary: `bench:load ${category}` });
    started = true;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('not finished within the phase timeout')), Math.max(0, deadline - Date.now()))));
    return { handle, final: await Promise.race([handle.result(), late]), errors, retries };
  } catch (err) {
    errors.push(err instanceof Error ? err.message : String(err));
    if (started) await handle.terminate('bench:load: not finished in time').catch(() => undefined);
    return { handle, errors, retries };
  } finally {
    clearTimeout(timer);
    env.channel.off(workflowId);
  }
}

// -- a phase -------------------------------------------------------------------------------------------

/** Runs `categories` (all at once, or one after the other) and measures them. */
async function runPhase(env: LoadEnvironment, name: string, categories: IncidentCategory[], atOnce: boolean, opts: LoadOptions): Promise<{ report: PhaseReport; results: IncidentResult[] }> {
  const { sandbox } = env;
  // Each session_issues incident gets users of its own: fresh sign-ups (sessions with a short past would make the lifetime the remedy, changed once per instance, not per incident).
  const activeBefore = new Set(sandbox.admin.sessionIds('active'));
  const revokedBefore = sandbox.admin.revokes();
  const usersOf = categories.map((c) =>
    MIX[c].usersEach ? sandbox.admin.createUsers({ count: MIX[c].usersEach }).map((u) => u.id) : [],
  );
  const targets = sandbox.admin.sessionIds('active').filter((id) => !activeBefore.has(id));
  const tag = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  const ids = categories.map((c, k) => `load-${name}-${String(k + 1).padStart(3, '0')}-${c.replace(/_/g, '-')}-${tag}`);

  const before = await env.worker.stats();
  const driver0 = cpuSeconds();
  const server0 = env.serverCpu?.();
  const audit0 = sandbox.admin.auditSummary();
  const t0 = performance.now();
  const deadline = Date.now() + opts.phaseTimeoutMs;
  const run = (k: number) => driveIncident(env, categories[k] as IncidentCategory, usersOf[k] ?? [], ids[k] as string, deadline);
  let runs: Awaited<ReturnType<typeof run>>[] = [];
  if (atOnce) runs = await Promise.all(categories.map((_, k) => run(k)));
  else for (let k = 0; k < categories.length; k++) runs.push(await run(k));
  const wallSeconds = (performance.now() - t0) / 1000;
  const after = await env.worker.stats();
  const driverCpuSeconds = cpuSeconds() - driver0;
  const server1 = env.serverCpu?.();
  const audit1 = sandbox.admin.auditSummary();

  // Histories after the measured window: fetching them is the server's work, not the worker's.
  const results: IncidentResult[] = [];
  for (let k = 0; k < runs.length; k += 16) {
    results.push(
      ...(await Promise.all(
        runs.slice(k, k + 16).map(async ({ handle, final, errors }, j) => {
          const category = categories[k + j] as IncidentCategory;
          const history = await handle.fetchHistory();
          const timings = timingsFromHistory(history.events ?? [], MIX[category].applied);
          const problems = [...(final ? outcomeProblems(final, MIX[category]) : []), ...errors];
          return { workflowId: handle.workflowId, category, completed: final !== undefined && problems.length === 0, problems, timings };
        }),
      )),
    );
  }

  const revokes = sandbox.admin.revokes();
  const stillActive = new Set(sandbox.admin.sessionIds('active'));
  const notEnded = targets.filter((id) => stillActive.has(id) || (revokes[id]?.revoked ?? 0) !== 1);
  const others = Object.entries(revokes).filter(([id, r]) => !targets.includes(id) && r.revoked > (revokedBefore[id]?.revoked ?? 0)).map(([id]) => id);
  const sandboxProblems = [
    ...(notEnded.length ? [`${notEnded.length} of ${targets.length} targeted session(s) still active or not revoked exactly once: ${notEnded.slice(0, 5).join(', ')}`] : []),
    ...(others.length ? [`${others.length} other session(s) revoked (the dry runs must revoke none): ${others.slice(0, 5).join(', ')}`] : []),
  ];
  const parts = results.flatMap((r) => (r.timings.triageParts ? [r.timings.triageParts] : []));
  const report: PhaseReport = {
    incidents: results.length,
    completed: results.filter((r) => r.completed).length,
    wallSeconds,
    triageMs: percentiles(results.flatMap((r) => (r.timings.triageMs === undefined ? [] : [r.timings.triageMs]))),
    approvalToAppliedMs: percentiles(results.flatMap((r) => r.timings.gates.flatMap((g) => (g.ms === undefined ? [] : [g.ms])))),
    approvalToAppliedByStep: byStep(results),
    triageParts: {
      workflowTaskWaitMs: percentiles(parts.map((p) => p.workflowTaskWaitMs)),
      activityWaitMs: percentiles(parts.map((p) => p.activityWaitMs)),
      activityRunMs: percentiles(parts.map((p) => p.activityRunMs)),
    },
    workerCpuSeconds: after.cpuSeconds - before.cpuSeconds,
    workerPeakRssBytes: after.peakRss,
    driverCpuSeconds,
    ...(server0 !== undefined && server1 !== undefined ? { serverCpuSeconds: server1 - server0 } : {}),
    clerkRequests: audit1.total - audit0.total,
    clerkRateLimited: (audit1.byStatus['429'] ?? 0) - (audit0.byStatus['429'] ?? 0),
    updateRetries: { count: runs.reduce((n, r) => n + r.retries.length, 0), examples: runs.flatMap((r) => r.retries).slice(0, 5) },
    sandboxProblems,
    failures: results.filter((r) => !r.completed).map(({ workflowId, category, problems }) => ({ workflowId, category, problems })),
  };
  return { report, results };
}

function byStep(results: IncidentResult[]): Partial<Record<GatedStep, Percentiles>> {
  const samples = new Map<GatedStep, number[]>();
  for (const g of results.flatMap((r) => r.timings.gates)) if (g.ms !== undefined) samples.set(g.step, [...(samples.get(g.step) ?? []), g.ms]);
  return Object.fromEntries([...samples].map(([step, ms]) => [step, percentiles(ms)]));
}

// -- the bench -----------------------------------------------------------------------------------------

const ratio = (a: number, b: number) => (b > 0 ? a / b : Number.NaN);
const PCTS = ['p50', 'p90', 'p99', 'max'] as const;

export async function runLoadBench(opts: LoadOptions): Promise<LoadReport> {
  const categories = [...INCIDENT_CATEGORIES];
  const plan = planMix(opts.incidents, categories);
  const env = await openEnvironment(opts);
  try {
    opts.log(`baseline: ${categories.length} incidents, one category at a time, each alone…`);
    const baseline = await runPhase(env, 'baseline', categories, false, opts);
    opts.log(`baseline done in ${baseline.report.wallSeconds.toFixed(1)} s; now ${opts.incidents} incidents at once…`);
    const load = await runPhase(env, 'load', plan, true, opts);
    opts.log(`load done in ${load.report.wallSeconds.toFixed(1)} s`);
    const b = baseline.report;
    const l = load.report;
    const mix = Object.fromEntries(categories.map((c) => [c, { count: plan.filter((p) => p === c).length, how: MIX[c].how }])) as LoadReport['mix'];
    return {
      mix,
      baseline: b,
      load: l,
      ratios: {
        triage: Object.fromEntries(PCTS.map((p) => [p, ratio(l.triageMs[p], b.triageMs[p])])) as LoadReport['ratios']['triage'],
        approvalToApplied: Object.fromEntries(PCTS.map((p) => [p, ratio(l.approvalToAppliedMs[p], b.approvalToAppliedMs[p])])) as LoadReport['ratios']['approvalToApplied'],
        workerCpuPerIncident: ratio(l.workerCpuSeconds / l.incidents, b.workerCpuSeconds / b.incidents),
        workerPeakRss: ratio(l.workerPeakRssBytes, b.workerPeakRssBytes),
      },
      allCompleted: [b, l].every((p) => p.completed === p.incidents && p.sandboxProblems.length === 0),
    };
  } finally {
    await env.close();
  }
}

const ms = (n: number) => (Number.isFinite(n) ? `${(n / 1000).toFixed(2)} s` : '—');
const x = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '—');
const secs = (n: number | undefined) => (n === undefined ? '—' : `${n.toFixed(1)} s`);
const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MB`;

export function formatLoadReport(r: LoadReport): string {
  const row = (label: string, b: Percentiles, l: Percentiles, q: Record<string, number>) =>
    `| ${label} | ${PCTS.map((p) => ms(b[p])).join(' / ')} | ${PCTS.map((p) => ms(l[p])).join(' / ')} | ${PCTS.map((p) => x(q[p] as number)).join(' / ')} |`;
  const lines = [
    'Mix:',
    ...Object.entries(r.mix).map(([c, m]) => `  ${c} × ${m.count}: ${m.how}`),
    '',
    `| measure | baseline (${r.baseline.incidents}, one at a time) | load (${r.load.incidents} at once) | load / baseline |`,
    '|---|---|---|---|',
    row(`start → triage done, p50 / p90 / p99 / max`, r.baseline.triageMs, r.load.triageMs, r.ratios.triage),
    row(`approval → step applied, p50 / p90 / p99 / max`, r.baseline.approvalToAppliedMs, r.load.approvalToAppliedMs, r.ratios.approvalToApplied),
    ...Object.entries(r.load.approvalToAppliedByStep).map(([step, l]) => {
      const b = r.baseline.approvalToAppliedByStep[step as GatedStep];
      return b ? row(`  ${step}`, b, l, {}) : '';
    }),
    `| worker CPU | ${r.baseline.workerCpuSeconds.toFixed(1)} s (${(r.baseline.workerCpuSeconds / r.baseline.incidents).toFixed(2)} s/incident) | ${r.load.workerCpuSeconds.toFixed(1)} s (${(r.load.workerCpuSeconds / r.load.incidents).toFixed(2)} s/incident) | ${x(r.ratios.workerCpuPerIncident)} per incident |`,
    row('  of which: first workflow task', r.baseline.triageParts.workflowTaskWaitMs, r.load.triageParts.workflowTaskWaitMs, {}),
    row('  of which: triage activity waiting for a slot', r.baseline.triageParts.activityWaitMs, r.load.triageParts.activityWaitMs, {}),
    row('  of which: triage activity running', r.baseline.triageParts.activityRunMs, r.load.triageParts.activityRunMs, {}),
    `| worker peak RSS | ${mb(r.baseline.workerPeakRssBytes)} | ${mb(r.load.workerPeakRssBytes)} | ${x(r.ratios.workerPeakRss)} |`,
    `| CPU beside the worker: driver + sandbox / dev server | ${r.baseline.driverCpuSeconds.toFixed(1)} s / ${secs(r.baseline.serverCpuSeconds)} | ${r.load.driverCpuSeconds.toFixed(1)} s / ${secs(r.load.serverCpuSeconds)} | |`,
    `| Clerk requests (sandbox audit), 429s | ${r.baseline.clerkRequests}, ${r.baseline.clerkRateLimited} | ${r.load.clerkRequests}, ${r.load.clerkRateLimited} | |`,
    `| update calls sent again (failed, not refused) | ${r.baseline.updateRetries.count} | ${r.load.updateRetries.count}${r.load.updateRetries.examples[0] ? ` (e.g. ${r.load.updateRetries.examples[0]})` : ''} | |`,
    `| wall time | ${r.baseline.wallSeconds.toFixed(1)} s | ${r.load.wallSeconds.toFixed(1)} s | |`,
    `| completed with expected outcomes | ${r.baseline.completed} of ${r.baseline.incidents} | ${r.load.completed} of ${r.load.incidents} | |`,
    '',
  ];
  for (const [name, p] of [['baseline', r.baseline], ['load', r.load]] as const) {
    for (const s of p.sandboxProblems) lines.push(`${name}: sandbox: ${s}`);
    for (const f of p.failures.slice(0, 20)) lines.push(`${name}: ${f.workflowId}: ${f.problems.join('; ')}`);
    if (p.failures.length > 20) lines.push(`${name}: and ${p.failures.length - 20} more incident(s) not completed as expected`);
  }
  lines.push(r.allCompleted ? `all ${r.baseline.incidents + r.load.incidents} incidents completed with their expected outcomes` : 'NOT every incident completed with its expected outcomes');
  return lines.join('\n');
}

const positiveInt = (flag: string, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${flag} must be a whole number from 1 to ${max}`);
  return n;
};

/**
 * The triage and verify probes call the Backend API directly (as the app would), beside the worker's
 * paced calls. With the default 5 % headroom, 40 dry-run scans of every session at once keep the
 * paced calls at 95 % of the limit, and a probe now and then gets a 429 that triage reads as the app
 * being rate-limited (docs/load.md). The bench leaves 20 %.
 */
export const DEFAULT_HEADROOM = 0.2;

const headroom = (v: string) => {
  const n = Number(v);
  if (!(n >= 0 && n <= 0.9)) throw new InvalidArgumentError('--clerk-headroom must be a number from 0 to 0.9');
  return n;
};

export function buildLoadProgram(): Command {
  return new Command('bench:load')
    .exitOverride()
    .description('many concurrent incidents of every category on one worker, against a baseline of each alone (docs/load.md)')
    .option('--incidents <n>', 'incidents at once in the load phase, the categories in turn', positiveInt('--incidents', 2000), 200)
    .option('--users <n>', 'users the Clerk sandbox is seeded with', positiveInt('--users', 100_000), 100)
    .option('--temporal-address <host:port>', 'a running Temporal server (default: a dev server of its own, throwaway database)')
    .option('--workflow-bundle <path>', 'a prebuilt workflow bundle (npm run build writes dist/workflow-bundle.js; default: bundle now)')
    .option('--clerk-headroom <fraction>', "the worker's CLERK_RATE_HEADROOM: share of Clerk's rate limit its paced calls leave to the app and to its own probes", headroom, DEFAULT_HEADROOM)
    .option('--phase-timeout <minutes>', 'minutes a phase may take before unfinished incidents count as not completed', positiveInt('--phase-timeout', 120), 15)
    .option('--json', 'print the report as JSON')
    .showHelpAfterError()
    .action(async (o: { incidents: number; users: number; temporalAddress?: string; workflowBundle?: string; clerkHeadroom: number; phaseTimeout: number; json?: boolean }) => {
      const report = await runLoadBench({
        incidents: o.incidents,
        users: o.users,
        ...(o.temporalAddress ? { temporalAddress: o.temporalAddress } : {}),
        ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : {}),
        clerkHeadroom: o.clerkHeadroom,
        phaseTimeoutMs: o.phaseTimeout * 60_000,
        log: (line) => console.error(line),
      });
      console.log(o.json ? JSON.stringify(report, null, 2) : formatLoadReport(report));
      if (!report.allCompleted) process.exitCode = 1;
    });
}

if (require.main === module) runCli(() => buildLoadProgram().parseAsync(process.argv).then(() => undefined));
