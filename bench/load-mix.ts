/**
 * The incidents of `npm run bench:load`: one input per category chosen so that many of them can run
 * at once against one sandbox and all really complete, what the approvers and the commander send,
 * the outcomes each must end with, and the two latencies read from each incident's event history.
 *
 * Shared sandbox state decides the mix. A Clerk outage would fail every other incident's Clerk
 * calls, 40 bypasses would toggle the same Vercel flag, 40 key rotations would rotate the key every
 * worker call uses, and 40 reconciliations would deliver the same missed events. So:
 *  - clerk_outage: no outage injected; a dry run. Both approvers approve the bypass, the workflow
 *    reads the deploy adapter and records what it would do, the recovery watch sees Clerk healthy.
 *  - key_compromise: a dry run. Both gates approved by two people: the rotation reads the current
 *    key and changes nothing; the revocation of every session runs as a dry-run child workflow
 *    (it lists every active user's sessions, revokes none).
 *  - middleware_failure: for real, no fault injected; the operator confirms the fix, the workflow
 *    probes again and verifies it.
 *  - session_issues: for real; each incident has two users of its own (fresh sign-ups), and the
 *    targeted revocation of their sessions the reporter asks for is approved, done and verified.
 *  - webhook_backlog: a dry run of the reconciliation (compares Clerk and the app's store, delivers
 *    nothing); no gate.
 * A dry run always ends `needs_human` ("dry run: nothing was changed"): the commander resolves it.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import type { GatedStep, IncidentCategory, IncidentInput } from '../src/domain';
import type { IncidentState } from '../src/workflows/incident';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Gates decide well within the run, probes have their default, Clerk's recovery is checked every 2 s. */
export const LOAD_TIMEOUTS = { escalateAfter: '5m', decideWithin: '10m', probe: '5s', recoveryCheckEvery: '2s', recoveryWatchFor: '3m', resolveWithin: '10m' } as const;

const REPORTER = 'alice@example.com';
const APPROVERS = ['bob@example.com', 'carol@example.com'];

/** What marks a gated step as applied in history: its activity's completion, or its child workflow's. */
export type AppliedBy = { activity: string } | { child: string };

export interface MixEntry {
  /** One line for the output and the docs. */
  how: string;
  input(users: string[]): IncidentInput;
  /** Users of its own the incident needs (created in the sandbox before it starts). */
  usersEach: number;
  /** Who approves each gate, in order (the last one decides). */
  approvals: Partial<Record<GatedStep, string[]>>;
  /** The event that applies each gated step (approval → step applied). */
  applied: Partial<Record<GatedStep, AppliedBy>>;
  /** Last outcome of each step at the end. */
  expected: Record<string, string>;
  /** The open items the commander resolves (dry runs); none: it ends `resolved` by itself. */
  openItems: string[];
}

const base = (category: IncidentCategory, summary: string, extra: Partial<IncidentInput> = {}): IncidentInput => ({
  category,
  reporter: REPORTER,
  summary,
  approvers: APPROVERS,
  timeouts: { ...LOAD_TIMEOUTS },
  ...extra,
});

const DRY_RUN = 'dry run: nothing was changed';

export const MIX: Record<IncidentCategory, MixEntry> = {
  clerk_outage: {
    how: 'dry run, no outage: bypass approved by two, recorded as what it would do; recovery watch sees Clerk healthy',
    input: () => base('clerk_outage', 'load: users cannot sign in', { dryRun: true, bypass: { duration: '15m' } }),
    usersEach: 0,
    approvals: { emergency_bypass: APPROVERS },
    applied: { emergency_bypass: { activity: 'bypassSettings' } },
    expected: { emergency_bypass: 'not_needed', recovery_watch: 'succeeded', review: 'succeeded' },
    openItems: [DRY_RUN],
  },
  key_compromise: {
    how: 'dry run: rotation and revocation of every session approved by two each; the key is read, sessions listed, nothing changed',
    input: () => base('key_compromise', 'load: secret key pasted in a public gist', { dryRun: true }),
    usersEach: 0,
    approvals: { rotate_secret_key: APPROVERS, revoke_all_sessions: APPROVERS },
    applied: { rotate_secret_key: { activity: 'keyRotationBegin' }, revoke_all_sessions: { child: 'revokeSessionsWorkflow' } },
    expected: { rotate_secret_key: 'not_needed', revoke_all_sessions: 'succeeded', review: 'succeeded' },
    openItems: [DRY_RUN, 'rotate_secret_key not done (not_needed)'],
  },
  middleware_failure: {
    how: 'for real, no fault: diagnostics, the operator confirms the fix, the probes verify it',
    input: () => base('middleware_failure', 'load: /dashboard answers 500 since the deploy'),
    usersEach: 0,
    approvals: { operator_action: [APPROVERS[0] as string] },
    applied: { operator_action: { activity: 'runTriageProbes' } },
    expected: { diagnostics: 'succeeded', operator_action: 'approved', verify_fix: 'succeeded', review: 'succeeded' },
    openItems: [],
  },
  session_issues: {
    how: 'for real: two users of its own; the reporter asks to end their sessions (no diagnostics check fails, so no other remedy); the targeted revocation approved, done and verified',
    input: (users) => base('session_issues', 'load: some users are signed out every minute', { affectedUserIds: users, targetedRevocation: { userIds: users } }),
    usersEach: 2,
    approvals: { targeted_revocation: [APPROVERS[0] as string] },
    applied: { targeted_revocation: { child: 'revokeSessionsWorkflow' } },
    expected: { diagnostics: 'succeeded', targeted_revocation: 'succeeded', verify_remedy: 'succeeded', review: 'succeeded' },
    openItems: [],
  },
  webhook_backlog: {
    how: "dry run of the reconciliation (Clerk vs the app's store, nothing delivered); no gate",
    input: () => base('webhook_backlog', 'load: user.created events missing in our store', { dryRun: true, approvers: [APPROVERS[0] as string] }),
    usersEach: 0,
    approvals: {},
    applied: {},
    expected: { reconcile_webhooks: 'succeeded', review: 'succeeded' },
    openItems: [DRY_RUN],
  },
};

export const REPORTER_OF_LOAD = REPORTER;

/** `total` incidents, the categories in turn (40 of each for 200). */
export function planMix(total: number, categories: readonly IncidentCategory[]): IncidentCategory[] {
  return Array.from({ length: total }, (_, k) => categories[k % categories.length] as IncidentCategory);
}

/** Where the final state differs from the entry's expectations; empty when it ended as expected. */
export function outcomeProblems(final: IncidentState, entry: MixEntry): string[] {
  const problems: string[] = [];
  if (final.status !== 'resolved') problems.push(`status ${final.status}`);
  const last = new Map(final.steps.map((s) => [s.step, s.outcome]));
  for (const [step, outcome] of Object.entries(entry.expected)) {
    if (last.get(step) !== outcome) problems.push(`${step} ${last.get(step) ?? 'missing'} (expected ${outcome})`);
  }
  const resolve = final.timeline.find((e) => e.step === 'resolve');
  const open = (resolve?.details?.openItems as string[] | undefined) ?? [];
  if (JSON.stringify(open) !== JSON.stringify(entry.openItems)) {
    problems.push(`open items ${open.length ? open.join('; ') : '(none)'} (expected ${entry.openItems.join('; ') || '(none)'})`);
  }
  return problems;
}

// -- latencies from history -------------------------------------------------------------------------

/** Milliseconds of an event's time (`seconds` is a Long from the server). */
function eventMs(e: HistoryEvent): number {
  const seconds: unknown = e.eventTime?.seconds ?? 0;
  const whole = typeof seconds === 'object' && seconds && 'toNumber' in seconds ? (seconds as { toNumber(): number }).toNumber() : Number(seconds);
  return whole * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
}

function approvalStep(e: HistoryEvent): string | undefined {
  const request = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest;
  if (request?.input?.name !== 'approveStep') return undefined;
  const payload = request.input.args?.payloads?.[0];
  const args = payload ? (defaultPayloadConverter.fromPayload(payload) as { step?: unknown }) : undefined;
  return typeof args?.step === 'string' ? args.step : undefined;
}

export interface IncidentTimings {
  /** Workflow start → the triage activity's completion. */
  triageMs?: number;
  /** Where that went: start → first workflow task started, triage scheduled → started (waiting for a slot), started → completed. */
  triageParts?: { workflowTaskWaitMs: number; activityWaitMs: number; activityRunMs: number };
  /** The deciding approval's acceptance → the gated step's activity (or child workflow) completion. */
  gates: Array<{ step: GatedStep; ms?: number }>;
  /** Workflow start → close (includes the driver's reaction times). */
  totalMs?: number;
}

/** The two latencies of one incident, from the event times the server recorded (not the driver's clock). */
export function timingsFromHistory(events: readonly HistoryEvent[], applied: MixEntry['applied']): IncidentTimings {
  const start = events[0] ? eventMs(events[0]) : 0;
  const activityOf = new Map<string, string>();
  let triageMs: number | undefined;
  let triageParts: IncidentTimings['triageParts'];
  let totalMs: number | undefined;
  let firstTask: number | undefined;
  const byId = new Map<string, HistoryEvent>();
  const deciding = new Map<string, number>();
  const done = new Map<string, number>();
  for (const e of events) {
    const id = String(e.eventId ?? '');
    byId.set(id, e);
    if (firstTask === undefined && e.workflowTaskStartedEventAttributes) firstTask = eventMs(e);
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) activityOf.set(id, scheduled.activityType?.name ?? '');
    const step = approvalStep(e);
    if (step) deciding.set(step, eventMs(e));
    const completedType =
      (e.activityTaskCompletedEventAttributes && { activity: activityOf.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId ?? '')) ?? '' }) ||
      (e.childWorkflowExecutionCompletedEventAttributes && { child: e.childWorkflowExecutionCompletedEventAttributes.workflowType?.name ?? '' });
    if (completedType) {
      if (triageMs === undefined && 'activity' in completedType && completedType.activity === 'runTriageProbes') {
        triageMs = eventMs(e) - start;
        const a = e.activityTaskCompletedEventAttributes;
        const scheduledAt = byId.get(String(a?.scheduledEventId ?? ''));
        const startedAt = byId.get(String(a?.startedEventId ?? ''));
        if (scheduledAt && startedAt && firstTask !== undefined) {
          triageParts = { workflowTaskWaitMs: firstTask - start, activityWaitMs: eventMs(startedAt) - eventMs(scheduledAt), activityRunMs: eventMs(e) - eventMs(startedAt) };
        }
      }
      for (const [gate, by] of Object.entries(applied)) {
        const at = deciding.get(gate);
        const matches = 'activity' in by ? 'activity' in completedType && completedType.activity === by.activity : 'child' in completedType && completedType.child === by.child;
        if (at !== undefined && matches && !done.has(gate)) done.set(gate, eventMs(e) - at);
      }
    }
    if (e.workflowExecutionCompletedEventAttributes) totalMs = eventMs(e) - start;
  }
  const gates = (Object.keys(applied) as GatedStep[]).map((step) => ({ step, ...(done.has(step) ? { ms: done.get(step) } : {}) }));
  return { ...(triageMs !== undefined ? { triageMs } : {}), ...(triageParts ? { triageParts } : {}), gates, ...(totalMs !== undefined ? { totalMs } : {}) };
}

// -- percentiles -------------------------------------------------------------------------------------

export interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles (ms); with few samples p90 and p99 are the maximum. */
export function percentiles(samples: readonly number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
  return { n: sorted.length, p50: at(50), p90: at(90), p99: at(99), max: sorted.at(-1) ?? Number.NaN };
}
