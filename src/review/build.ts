/**
 * The post-incident review, written from what happened: the workflow's event history (times, who
 * sent each update) and its final state (what each step did). Pure — no I/O, no Node APIs — so it
 * can run in the CLI, an activity or the workflow itself. It matches each timeline line to its
 * history event and derives impact and action items; the Markdown is render.ts's.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { formatDuration } from '../domain';
import type { IncidentState } from '../workflows/incident-types';
import { parseSshSignature } from '../signing/sshsig';
import { resolvePerson } from '../roster/resolve';
import { bypassMinutes } from '../workflows/bypass-record';
import { promoteCommand, rollbackRecord, type RollbackRecord } from '../workflows/rollback-record';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Where a timeline row's time comes from: a history event (as the UI shows it) or the state. */
export type TimeSource = { eventId: number; eventType: string } | 'state';

export interface ReviewTimelineRow {
  time: string;
  source: TimeSource;
  step: string;
  actor: string;
  description: string;
}

/** One update a person sent (or a cancellation request): the name in it beside the client identity Temporal recorded. */
export interface DecisionRow {
  time: string;
  eventId: number;
  update: string;
  step: string;
  /** The person the request names (approver, confirmedBy, requester, resolvedBy). */
  named: string;
  /** `acceptedRequest.meta.identity` (or the cancel request's identity). */
  identity: string;
  result: string;
  /** With an identity mapping configured: why this identity does not match the person named (absent when it does). */
  mismatch?: string;
  /** Signed approvals: the fingerprint of the SSH key that signed the decision (the validator verified it). */
  fingerprint?: string;
  /** With a roster: the roster person the name resolved to (the one its policy checked). */
  person?: string;
  /** Another person's decision of the same gate came from this client identity: one client, two names. */
  sharedIdentity?: string;
}

/** Which client identities each person sends updates from (worker configuration `APPROVER_IDENTITIES`). */
export type IdentityMapping = Readonly<Record<string, readonly string[]>>;

/** A row whose recorded identity is not one the mapping lists for the person it names. */
function identityMismatch(row: Pick<DecisionRow, 'named' | 'identity'>, mapping: IdentityMapping | undefined): string | undefined {
  if (!mapping || !row.named) return undefined;
  const known = mapping[row.named];
  if (!known) return `${row.named} is not in the identity mapping`;
  return known.includes(row.identity) ? undefined : `${row.named} sends from ${known.join(', ')}, not ${row.identity || 'an unnamed client'}`;
}

export type ActionItemKind = 'second_approver' | 'fix_webhook' | 'probe_or_rule' | 'automate' | 'follow_up' | 'fix_forward' | 'commander';

export interface ActionItem {
  kind: ActionItemKind;
  text: string;
  /** What happened that calls for it. */
  why: string;
  /** The commander's (completeReview): who owns it, by when, and where it stands. */
  owner?: string;
  due?: string;
  state?: 'open' | 'done' | 'dropped';
}

/** An action item as an issue tracker imports it (`incident review --json`): title, body, owner, due. */
export interface TrackerItem {
  title: string;
  body: string;
  owner: string;
  due: string;
}

export interface RevocationImpact {
  step: string;
  dryRun: boolean;
  sessionsRevoked: number;
  sessionsFound: number;
  usersChecked: number;
  usersNotFound: number;
  failures: number;
}

export interface Review {
  incidentId: string;
  summary: string;
  reporter: string;
  /** The day it started, UTC (YYYY-MM-DD). */
  date: string;
  startedAt: string;
  /** The close event's time; absent while the workflow runs. */
  closedAt?: string;
  /** How the workflow ended (`running` while open). */
  closedAs: 'completed' | 'cancelled' | 'failed' | 'terminated' | 'timed_out' | 'continued_as_new' | 'running';
  /** First event to close (or to the last event while running). */
  durationMs: number;
  duration: string;
  status: IncidentState['status'];
  severity: string;
  category: string;
  triage: { agreement: string; note: string } | 'not run';
  dryRun: boolean;
  timeline: ReviewTimelineRow[];
  cause: { rootCause: string; trigger: string; detection: string; resolution: string };
  /** Opened by detection (the watch, an alert): who noticed, when, and the time to detect (detection → incident opened). */
  detection?: ReviewDetection;
  impact: {
    sessionsRevoked: number;
    usersAffected: number;
    revocations: RevocationImpact[];
    stepsByHand: { step: string; outcome: string; by?: string; note?: string }[];
    openItems: string[];
    dataLoss: string;
    /** As the commander counted them (`resolve`); else "not given". */
    usersReportedAffected: string;
    /** key_compromise: the exposure audit's summary (what was created while the leaked key worked). */
    keyExposure?: string;
    /** Only when the emergency auth bypass was on: how long users reached the app without sign-in. */
    authBypass?: AuthBypassImpact;
    /** Differences the user reconciliation fixed (webhook events replayed or store writes); absent when none ran. */
    webhookEventsReplayed?: number;
    /** Only when production was rolled back (and not undone): from and to which deployment, and the failure's minutes. */
    rollback?: RollbackRecord;
  };
  actionItems: ActionItem[];
  /** The commander's open action items, ready for an issue tracker (none while they are only proposed). */
  trackerItems: TrackerItem[];
  /**
   * `draft`: the post-incident phase is open (findings still come, `until`); `final`: written at
   * the end (`finalized` by a person or at the phase's `deadline`); no phase: final at once.
   */
  reviewState: { state: 'draft'; until: string } | { state: 'final'; how?: 'finalized' | 'deadline'; by?: string; at?: string };
  /** The commander's lessons (`resolve`). */
  lessons: { wentWell: string[]; wentWrong: string[]; gotLucky: string[] };
  whoDecided: DecisionRow[];
  /** What the workflow flagged for a human while it ran. */
  attention: string[];
}

export const NOT_GIVEN = 'not given';

export interface ReviewDetection {
  by: string;
  /** The first failing probe run (watch) or the alert's `startsAt`. */
  at: string;
  openedAt: string;
  /** Time to detect: `openedAt - at` (0 when the clocks disagree the other way). */
  mttdMs: number;
  mttd: string;
  /** Detection reports the incident received (the opening one included). */
  reports: number;
}

/** How the detection reads in the review's cause section, when the commander did not say. */
const detectedByText = (by: string) => (by === 'watch' ? "the runbook's watch (triage probes on a Schedule)" : by.startsWith('alert:') ? `an alert (receiver ${by.slice(6)})` : 'reported by a person');

function reviewDetection(state: IncidentState): ReviewDetection | undefined {
  const d = state.detection;
  if (!d) return undefined;
  const mttdMs = Math.max(0, Date.parse(d.openedAt) - Date.parse(d.detectedAt)) || 0;
  return { by: d.detectedBy, at: d.detectedAt, openedAt: d.openedAt, mttdMs, mttd: formatDuration(mttdMs), reports: d.reports };
}

const iso = (ms: number) => new Date(ms).toISOString();
const eventId = (e: HistoryEvent) => Number(e.eventId ?? 0);
/** Milliseconds of an event's time; `seconds` is a Long from the server, a number or string from JSON. */
function eventMs(e: HistoryEvent): number {
  const seconds: unknown = e.eventTime?.seconds ?? 0;
  const whole = typeof seconds === 'object' && seconds && 'toNumber' in seconds ? (seconds as { toNumber(): number }).toNumber() : Number(seconds);
  return whole * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
}

/** The event's kind, from the attributes it carries (robust to how the history was loaded). */
function eventKind(e: HistoryEvent): string {
  for (const [key, value] of Object.entries(e)) {
    if (key.endsWith('EventAttributes') && value) return key.slice(0, -'EventAttributes'.length);
  }
  return 'unknown';
}

function decode(payload: temporal.api.common.v1.IPayload | null | undefined): unknown {
  if (!payload) return undefined;
  try {
    return defaultPayloadConverter.fromPayload(payload);
  } catch {
    return undefined;
  }
}

const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

/** Events that wake the workflow: what a workflow task reacted to. */
const TRIGGERS = new Set([
  'workflowExecutionStarted',
  'activityTaskCompleted',
  'activityTaskFailed',
  'activityTaskTimedOut',
  'activityTaskCanceled',
  'timerFired',
  'childWorkflowExecutionStarted',
  'childWorkflowExecutionCompleted',
  'childWorkflowExecutionFailed',
  'childWorkflowExecutionCanceled',
  'childWorkflowExecutionTimedOut',
  'childWorkflowExecutionTerminated',
  'startChildWorkflowExecutionFailed',
  'workflowExecutionSignaled',
  'workflowExecutionCancelRequested',
  'workflowExecutionUpdateAccepted',
]);

const CLOSE: Record<string, Review['closedAs']> = {
  workflowExecutionCompleted: 'completed',
  workflowExecutionCanceled: 'cancelled',
  workflowExecutionFailed: 'failed',
  workflowExecutionTerminated: 'terminated',
  workflowExecutionTimedOut: 'timed_out',
  workflowExecutionContinuedAsNew: 'continued_as_new',
};

interface UpdateSent {
  event: HistoryEvent;
  name: string;
  step: string;
  named: string;
  identity: string;
  fingerprint?: string;
}

/** The key that signed an accepted decision (the validator verified it before accepting). */
function signingKey(signature: unknown): string | undefined {
  if (typeof signature !== 'string') return undefined;
  try {
    return parseSshSignature(signature).fingerprint;
  } catch {
    return undefined;
  }
}

/** What each person-sent update asked, from its accepted event. */
function updatesSent(events: readonly HistoryEvent[]): UpdateSent[] {
  return events.flatMap((event) => {
    const request = event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest;
    if (!request) return [];
    const args = asRecord(decode(request.input?.args?.payloads?.[0]));
    const name = request.input?.name ?? 'unknown';
    const named = str(args.approver) ?? str(args.confirmedBy) ?? str(args.requester) ?? str(args.resolvedBy) ?? str(args.providedBy) ?? str(args.cancelledBy) ?? str(args.completedBy) ?? str(args.finalizedBy) ?? '';
    const fingerprint = signingKey(args.signature);
    return [{ event, name, step: str(args.step) ?? (name === 'resolve' ? 'resolve' : name === 'requestCancel' ? 'cancel' : name === 'completeReview' || name === 'finalizeReview' ? 'review' : ''), named, identity: request.meta?.identity ?? '', ...(fingerprint ? { fingerprint } : {}) }];
  });
}

/**
 * The workflow tasks, by the time of their WorkflowTaskStarted event: workflow code's clock reads
 * that time, so a timeline entry's `time` names the task that recorded it. Each task lists the
 * events it reacted to: those since the previous task completed, and the updates it accepted.
 */
interface WorkflowTask {
  triggers: HistoryEvent[];
  /** The next task's WorkflowTaskStarted event id: what this task did comes before it. */
  endId: number;
}

function workflowTasks(events: readonly HistoryEvent[]): Map<number, WorkflowTask> {
  const tasks = new Map<number, WorkflowTask>();
  let waiting: HistoryEvent[] = [];
  let current: WorkflowTask | undefined;
  for (const e of events) {
    const kind = eventKind(e);
    if (kind === 'workflowTaskStarted') {
      if (current) current.endId = eventId(e);
      current = { triggers: waiting, endId: Number.MAX_SAFE_INTEGER };
      waiting = [];
      if (!tasks.has(eventMs(e))) tasks.set(eventMs(e), current);
    } else if (kind === 'workflowExecutionUpdateAccepted' && current) {
      current.triggers.push(e); // accepted by the task that just completed
    } else if (TRIGGERS.has(kind)) {
      waiting.push(e);
    }
  }
  return tasks;
}

/** Activity and timer summaries (set when scheduled), to tell which trigger a timeline entry is about. */
function summaries(events: readonly HistoryEvent[]): Map<number, string> {
  const byScheduled = new Map<number, string>();
  const timers = new Map<string, string>();
  const out = new Map<number, string>();
  for (const e of events) {
    const summary = str(decode(e.userMetadata?.summary));
    const kind = eventKind(e);
    if (kind === 'activityTaskScheduled' && summary) byScheduled.set(eventId(e), summary);
    if (kind === 'timerStarted' && summary) timers.set(e.timerStartedEventAttributes?.timerId ?? '', summary);
    const scheduled = Number(
      e.activityTaskCompletedEventAttributes?.scheduledEventId ?? e.activityTaskFailedEventAttributes?.scheduledEventId ?? e.activityTaskTimedOutEventAttributes?.scheduledEventId ?? 0,
    );
    if (scheduled && byScheduled.has(scheduled)) out.set(eventId(e), byScheduled.get(scheduled) as string);
    const fired = e.timerFiredEventAttributes?.timerId;
    if (fired && timers.has(fired)) out.set(eventId(e), timers.get(fired) as string);
  }
  return out;
}

/** How activity and timer summaries name the step they work for (`notify: <step>: …` only tells about it). */
const ABOUT = ['', 'approval of ', 'confirmation of ', 'optional '];

/**
 * The history event a timeline entry stands for, and whether it names it (`specific`) or only
 * woke the task that recorded it; undefined when no task matches (then the state's time is used).
 */
function sourceEvent(
  entry: IncidentState['timeline'][number],
  ctx: { tasks: Map<number, WorkflowTask>; summaryOf: Map<number, string>; updates: UpdateSent[]; started?: HistoryEvent },
): { event: HistoryEvent; specific: boolean } | undefined {
  if (entry.step === 'report') return ctx.started && { event: ctx.started, specific: true };
  const task = ctx.tasks.get(Date.parse(entry.time));
  if (!task?.triggers.length) return undefined;
  const child = str(asRecord(entry.details).childWorkflowId);
  const specific =
    // a person's own request: their latest update on this step up to this task
    ctx.updates.filter((u) => u.named === entry.actor && [entry.step, ''].includes(u.step) && eventId(u.event) < task.endId).at(-1)?.event ??
    // the activity, timer or child the entry is about
    task.triggers.find((e) => ABOUT.some((prefix) => (ctx.summaryOf.get(eventId(e)) ?? '').startsWith(`${prefix}${entry.step}:`))) ??
    task.triggers.find((e) => child !== undefined && e.childWorkflowExecutionCompletedEventAttributes?.workflowExecution?.workflowId === child);
  if (specific) return { event: specific, specific: true };
  // else what woke the task: an update it accepted, or the last event before it
  const woke = task.triggers.find((e) => e.workflowExecutionUpdateAcceptedEventAttributes) ?? task.triggers.at(-1);
  return woke && { event: woke, specific: false };
}

/** A decision of a gate: approve or reject. */
const GATE_UPDATES = new Set(['approveStep', 'rejectStep']);

/**
 * With a roster: each row's roster person; and decisions of one gate by two people from one
 * client identity flagged (one client speaking for two names is what the two-person rule forbids).
 */
function withRoster(rows: DecisionRow[], state: IncidentState): DecisionRow[] {
  const roster = state.roster?.roster;
  const personOf = (named: string) => {
    if (!roster || !named) return undefined;
    const found = resolvePerson(roster, named);
    return found.ok ? found.person.id : undefined;
  };
  const out = rows.map((r) => {
    const person = personOf(r.named);
    return person ? { ...r, person } : r;
  });
  for (const row of out) {
    if (!GATE_UPDATES.has(row.update) || !row.identity) continue;
    const who = row.person ?? row.named;
    const other = out.find((o) => o !== row && GATE_UPDATES.has(o.update) && o.step === row.step && o.identity === row.identity && (o.person ?? o.named) !== who && o.eventId < row.eventId);
    if (other) row.sharedIdentity = `${who} and ${other.person ?? other.named} decided ${row.step} from the same client identity ${row.identity}`;
  }
  return out;
}

function decisionRows(events: readonly HistoryEvent[], updates: UpdateSent[], mapping?: IdentityMapping): DecisionRow[] {
  const results = new Map<string, string>();
  for (const e of events) {
    const done = e.workflowExecutionUpdateCompletedEventAttributes;
    if (!done) continue;
    const answer = asRecord(decode(done.outcome?.success?.payloads?.[0]));
    results.set(done.meta?.updateId ?? '', str(answer.message) ?? done.outcome?.failure?.message ?? '');
  }
  const rows: DecisionRow[] = updates.map((u) => {
    const mismatch = identityMismatch(u, mapping);
    return {
      time: iso(eventMs(u.event)),
      eventId: eventId(u.event),
      update: u.name,
      step: u.step,
      named: u.named,
      identity: u.identity,
      result: results.get(u.event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId ?? '') ?? '',
      ...(mismatch ? { mismatch } : {}),
      ...(u.fingerprint ? { fingerprint: u.fingerprint } : {}),
    };
  });
  for (const e of events) {
    const cancel = e.workflowExecutionCancelRequestedEventAttributes;
    if (cancel) rows.push({ time: iso(eventMs(e)), eventId: eventId(e), update: 'cancel', step: '', named: '', identity: cancel.identity ?? '', result: cancel.cause ?? '' });
  }
  return rows.sort((a, b) => a.eventId - b.eventId);
}

function revocations(state: IncidentState): RevocationImpact[] {
  return state.timeline.flatMap((t) => {
    const d = asRecord(t.details);
    if (!d.totals) return [];
    const totals = asRecord(d.totals);
    return [
      {
        step: t.step,
        dryRun: d.dryRun === true,
        sessionsRevoked: num(totals.sessionsRevoked),
        sessionsFound: num(totals.sessionsFound),
        usersChecked: num(totals.usersChecked),
        usersNotFound: num(totals.usersNotFound),
        failures: num(totals.failures),
      },
    ];
  });
}

/** The rotation's exposure audit, when one ran (incident-rotation.ts). */
function keyExposure(state: IncidentState): { keyExposure?: string } {
  const audit = [...state.steps].reverse().find((s) => s.step === 'exposure_audit');
  return audit ? { keyExposure: `${audit.outcome}: ${audit.note}` } : {};
}

/** Events the user reconciliation replayed (its step's `reconcileTotals.applied`, dry runs excluded). */
function webhookEventsReplayed(state: IncidentState): { webhookEventsReplayed?: number } {
  const runs = state.timeline.map((t) => asRecord(t.details)).filter((d) => d.reconcileTotals);
  if (!runs.length) return {};
  return { webhookEventsReplayed: runs.filter((d) => d.dryRun !== true).reduce((n, d) => n + num(asRecord(d.reconcileTotals).applied), 0) };
}

function actionItems(state: IncidentState): ActionItem[] {
  const items: ActionItem[] = [];
  const once = (item: ActionItem) => void (items.some((i) => i.text === item.text) || items.push(item));
  for (const g of state.gates.filter((g) => g.outcome === 'timed_out')) {
    once({ kind: 'second_approver', text: `add a second on-call approver for ${g.step}`, why: `nobody decided ${g.step} by ${g.decideBy} (asked of ${state.approvers.join(', ')})` });
  }
  for (const m of state.manualSteps.filter((m) => m.outcome === 'timed_out')) {
    once({ kind: 'second_approver', text: `add a second on-call approver for ${m.step}`, why: `nobody confirmed ${m.step} by ${m.confirmBy}` });
  }
  for (const t of state.timeline.filter((t) => t.step === 'notify')) {
    once({ kind: 'fix_webhook', text: 'fix the chat webhook', why: t.description });
  }
  if (state.triage?.agreement === 'disagreed') once({ kind: 'probe_or_rule', text: 'add a probe or rule so triage sees this incident', why: state.triage.note });
  for (const m of state.manualSteps.filter((m) => m.outcome === 'done_by_hand')) {
    once({ kind: 'automate', text: `automate ${m.step}`, why: `done by hand by ${m.confirmedBy ?? 'someone'}${m.note ? `: ${m.note}` : ''}` });
  }
  const rollback = rollbackRecord(state);
  if (rollback) {
    once({
      kind: 'fix_forward',
      text: rollback.autoPromoteOff
        ? `fix forward: fix what broke in ${rollback.fromDeploymentId}, deploy it and promote it (${promoteCommand('<deployment-id or url>')})`
        : `fix forward: fix what broke in ${rollback.fromDeploymentId} and deploy it`,
      why: rollback.rebuiltFrom
        ? `production was moved to ${rollback.toDeploymentId}, a new build of ${rollback.rebuiltFrom}'s source with today's env, at ${rollback.at}`
        : `production was rolled back to ${rollback.toDeploymentId} at ${rollback.at}${rollback.autoPromoteOff ? '; auto-promote stays off until a promote' : ''}`,
    });
  }
  for (const s of state.steps.filter((s) => s.outcome === 'failed' || s.outcome === 'partial')) {
    once({ kind: 'follow_up', text: `follow up ${s.step}: ${s.note}`, why: `${s.step} ${s.outcome} at ${s.at}` });
  }
  return items;
}

type Resolution = NonNullable<IncidentState['resolution']>;

const DETECTION: Record<string, string> = { monitoring_alert: 'a monitoring alert', user_report: 'a user report', manual: 'found by hand' };

function dataLoss(r: Resolution | undefined): string {
  if (!r?.dataLoss) return NOT_GIVEN;
  return r.dataLoss === 'none' ? 'none' : `partial: ${r.dataLossDetails ?? 'not described'}`;
}

/** Describe a field the commander may give (`resolve`): text as given, else "not given". */
const given = (v: unknown): string => (typeof v === 'string' && v.trim() ? v : v && typeof v === 'object' ? JSON.stringify(v) : NOT_GIVEN);

/** `identities`: the configured mapping of people to client identities; decisions that do not match it are flagged. */
export function buildReview(history: temporal.api.history.v1.IHistory, state: IncidentState, identities?: IdentityMapping): Review {
  const events = history.events ?? [];
  const first = events[0];
  const startedMs = first ? eventMs(first) : Date.parse(state.timeline[0]?.time ?? '');
  const closeEvent = events.find((e) => CLOSE[eventKind(e)]);
  const endMs = closeEvent ? eventMs(closeEvent) : events.length ? eventMs(events[events.length - 1] as HistoryEvent) : startedMs;
  const updates = updatesSent(events);
  const ctx = { tasks: workflowTasks(events), summaryOf: summaries(events), updates, started: events.find((e) => e.workflowExecutionStartedEventAttributes) };

  // Lines one task recorded after a line that names its event share that event (its consequences).
  let previous: { time: string; event: HistoryEvent } | undefined;
  const timeline: ReviewTimelineRow[] = state.timeline.map((entry) => {
    const found = sourceEvent(entry, ctx);
    const e = found && !found.specific && previous?.time === entry.time ? previous.event : found?.event;
    previous = e && found?.specific ? { time: entry.time, event: e } : previous?.time === entry.time ? previous : undefined;
    return {
      time: e ? iso(eventMs(e)) : entry.time,
      source: e ? { eventId: eventId(e), eventType: eventKind(e) } : 'state',
      step: entry.step,
      actor: entry.actor,
      description: entry.description,
    };
  });
  // One event, one row: a short line ("approved") followed at the same moment by its full form ("approved: … by bob") is the same event.
  for (let i = timeline.length - 2; i >= 0; i--) {
    const [a, b] = [timeline[i]!, timeline[i + 1]!];
    if (a.time === b.time && a.step === b.step && a.actor === b.actor && b.description.startsWith(`${a.description}: `)) timeline.splice(i, 1);
  }
  // The detection happened before the incident existed: its line comes first, at the detection's time.
  const detection = reviewDetection(state);
  if (detection && detection.by !== 'manual') {
    timeline.unshift({ time: detection.at, source: 'state', step: 'detected', actor: detection.by, description: `first seen by ${detection.by} (the incident opened ${detection.mttd} later)` });
  }
  if (closeEvent) {
    const kind = eventKind(closeEvent);
    timeline.push({ time: iso(eventMs(closeEvent)), source: { eventId: eventId(closeEvent), eventType: kind }, step: 'closed', actor: 'temporal', description: `workflow ${CLOSE[kind]} (status ${state.status})` });
  }

  // The commander's findings: those of `resolve`, overridden field by field by the post-incident phase's completeReview.
  const phase = state.postIncident;
  const { by: findingsBy, at: _at, ...findings } = phase?.findings ?? { by: undefined, at: undefined };
  const resolution = (state.resolution || phase?.findings ? { ...state.resolution, ...findings } : undefined) as Resolution | undefined;
  const commanderItems = phase?.actionItems?.map(
    (a): ActionItem => ({ kind: 'commander', text: a.title, why: a.body ?? `kept by ${findingsBy ?? 'the commander'} in the post-incident review`, owner: a.owner, due: a.due, state: a.state }),
  );
  const revoked = revocations(state);
  return {
    incidentId: state.incidentId,
    summary: state.summary,
    reporter: state.reporter,
    date: iso(startedMs).slice(0, 10),
    startedAt: iso(startedMs),
    ...(closeEvent ? { closedAt: iso(endMs) } : {}),
    closedAs: closeEvent ? (CLOSE[eventKind(closeEvent)] as Review['closedAs']) : 'running',
    durationMs: endMs - startedMs,
    duration: formatDuration(endMs - startedMs),
    status: state.status,
    severity: state.severity ?? 'unknown',
    category: state.category ?? 'unknown',
    triage: state.triage ? { agreement: state.triage.agreement, note: state.triage.note } : 'not run',
    dryRun: state.dryRun,
    timeline,
    cause: {
      rootCause: given(resolution?.rootCause),
      trigger: given(resolution?.trigger),
      detection: resolution?.detection
        ? (DETECTION[resolution.detection] ?? resolution.detection)
        : detection && detection.by !== 'manual'
          ? `${detectedByText(detection.by)}, time to detect ${detection.mttd}`
          : NOT_GIVEN,
      resolution: state.resolution ? `${state.resolution.summary} (resolved by ${state.resolution.resolvedBy})` : state.status === 'resolved' ? 'verified by the runbook (no resolve needed)' : NOT_GIVEN,
    },
    ...(detection ? { detection } : {}),
    impact: {
      sessionsRevoked: revoked.filter((r) => !r.dryRun).reduce((n, r) => n + r.sessionsRevoked, 0),
      usersAffected: revoked.filter((r) => !r.dryRun && r.sessionsRevoked > 0).reduce((n, r) => n + r.usersChecked, 0),
      revocations: revoked,
      stepsByHand: state.manualSteps.map((m) => ({
        step: m.step,
        outcome: m.outcome ?? 'waiting',
        ...(m.confirmedBy ? { by: m.confirmedBy } : {}),
        ...(m.note ? { note: m.note } : {}),
      })),
      openItems: state.openItems,
      dataLoss: dataLoss(resolution),
      usersReportedAffected: resolution?.usersAffected === undefined ? NOT_GIVEN : String(resolution.usersAffected),
      ...keyExposure(state),
      ...authBypassImpact(state),
      ...webhookEventsReplayed(state),
      ...rollbackImpact(state),
    },
    // Once the commander sent them, the action items are theirs (the derived ones kept, edited or dropped); before, the derived ones are proposed.
    actionItems: commanderItems ?? [
      ...actionItems(state),
      ...(resolution?.actionItems ?? []).map((text): ActionItem => ({ kind: 'commander', text, why: `given by ${resolution?.resolvedBy} when resolving` })),
    ],
    trackerItems: (commanderItems ?? [])
      .filter((a) => a.state === 'open')
      .map((a) => ({ title: a.text, body: `${a.why}\n\nIncident ${state.incidentId}: ${state.summary}`, owner: a.owner ?? '', due: a.due ?? '' })),
    reviewState: phase && !phase.final ? { state: 'draft', until: phase.until } : { state: 'final', ...(phase?.final ? { how: phase.final.how, ...(phase.final.by ? { by: phase.final.by } : {}), at: phase.final.at } : {}) },
    lessons: { wentWell: resolution?.lessons?.wentWell ?? [], wentWrong: resolution?.lessons?.wentWrong ?? [], gotLucky: resolution?.lessons?.gotLucky ?? [] },
    whoDecided: withRoster(decisionRows(events, updates, identities), state),
    attention: state.attention,
  };
}

export interface AuthBypassImpact {
  /** Minutes auth was bypassed (a started minute counts); up to the last event when it never went off. */
  minutes: number;
  onSince: string;
  offAt: string | null;
  state: string;
}

/** The rollback, when production was rolled back and not undone (absent otherwise, so other reviews do not change). */
function rollbackImpact(state: IncidentState): { rollback?: RollbackRecord } {
  const r = rollbackRecord(state);
  return r ? { rollback: r } : {};
}

/** Minutes of auth bypass, when there was one (absent otherwise, so reviews without it do not change). */
function authBypassImpact(state: IncidentState): { authBypass?: AuthBypassImpact } {
  const b = state.bypass;
  if (!b) return {};
  const lastEvent = Date.parse(state.timeline.at(-1)?.time ?? b.onSince);
  return { authBypass: { minutes: bypassMinutes(b, lastEvent), onSince: b.onSince, offAt: b.offAt ?? null, state: b.state } };
}

