/**
 * Continue-as-new of the incident before its history grows dangerous (a flood of large signals, a
 * long recovery watch): the `HistoryGuard` decides when and parks the incident at a safe point (a
 * wait for people or for a timer, never inside an atomic step such as a rotation), the `Journal`
 * holds the outcome of every step already done, and `CarriedIncident` is what the next run gets
 * as its second argument: zod-checked, and refused unless the server says the run is a
 * continuation. The next run re-runs the playbook: journaled steps return their outcome without
 * running again, the step that was waiting resumes its wait.
 */
import type { RecordedRoster } from '../roster/schema';
import { CancelledFailure, allHandlersFinished, condition, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import {
  gatedStepSchema,
  INCIDENT_CATEGORIES,
  INCIDENT_STATUSES,
  manualStepSchema,
  SEVERITIES,
  STEP_OUTCOMES,
  type TimelineEvent,
} from '../domain';
import { MAX_DETECTION_KEYS, resolveRequestSchema, stepRequestSchema, type IncidentState, type PostIncidentRecord } from './incident-types';

/**
 * When to continue as new: the server's own hint (`continueAsNewSuggested`: 4 MiB or 4,096 events
 * by default), or, should the server not say, 8 MiB or 8,000 events: below its warnings (10 MiB,
 * 10,240 events) and far below the limits at which it terminates the run (50 MiB, 51,200 events).
 */
const CONTINUE_AS_NEW_AT = { historyBytes: 8 * 1024 * 1024, historyEvents: 8_000 } as const;
/** What a run carries at most: older timeline lines are left in the history of the run that had them. */
const CARRIED_TIMELINE_LINES = 1_000;
const CARRIED_TIMELINE_HEAD = 100;
const CARRIED_ATTENTION_ITEMS = 200;

/** Thrown from a wait to unwind the playbook for continue-as-new; a cancellation, so no step records it as a failure. */
export class ContinueAsNewRequested extends CancelledFailure {
  constructor() {
    super('continue-as-new: the history is large; the incident goes on in a new run with its state');
  }
}

/** Decides when the incident continues as new, and lets it happen only at safe points. */
export class HistoryGuard {
  private atomicDepth = 0;

  /** `beforePark`: let what runs in the background finish (notifications) before the run ends. */
  constructor(private readonly beforePark: () => Promise<void>) {}

  /** The history is large enough to continue as new. */
  get due(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historySize >= CONTINUE_AS_NEW_AT.historyBytes || info.historyLength >= CONTINUE_AS_NEW_AT.historyEvents;
  }

  /** Run a step that must not be cut by a continue-as-new (a rotation, a revocation, the bypass set). */
  async atomic<T>(run: () => Promise<T>): Promise<T> {
    this.atomicDepth += 1;
    try {
      return await run();
    } finally {
      this.atomicDepth -= 1;
    }
  }

  /**
   * `condition(done, timeoutMs)` that, at a safe point, also wakes when the history is large and
   * then throws `ContinueAsNewRequested` (after the background work, if `done` still is not).
   */
  async wait(done: () => boolean, timeoutMs: number | undefined, summary: string): Promise<boolean> {
    if (this.atomicDepth > 0) return timeoutMs === undefined ? condition(done).then(() => true) : condition(done, timeoutMs, { summary });
    const woke = timeoutMs === undefined ? await condition(() => done() || this.due).then(() => true) : await condition(() => done() || this.due, timeoutMs, { summary });
    if (done()) return true;
    if (!woke) return false;
    await this.beforePark();
    await condition(allHandlersFinished);
    if (done()) return true;
    throw new ContinueAsNewRequested();
  }
}

// -- the journal -----------------------------------------------------------------------------------

type Entry = { v?: unknown };

/**
 * Outcomes of the steps done, by call: the n-th call of a step in a run is `step#n`. A continued
 * run calls the steps in the same order (the playbooks are deterministic), so it finds them here.
 */
export class Journal {
  private readonly calls = new Map<string, number>();

  constructor(readonly done: Record<string, Entry> = {}) {}

  private key(name: string): string {
    const n = (this.calls.get(name) ?? 0) + 1;
    this.calls.set(name, n);
    return `${name}#${n}`;
  }

  /** Run `step` unless a previous run did: then its carried outcome. */
  async once<T>(name: string, step: () => Promise<T>): Promise<T> {
    const key = this.key(name);
    if (key in this.done) return this.done[key]?.v as T;
    const v = await step();
    this.done[key] = v === undefined ? {} : { v };
    return v;
  }

  /** `once` for a step that only records (no I/O). */
  onceSync(name: string, step: () => void): void {
    const key = this.key(name);
    if (key in this.done) return;
    step();
    this.done[key] = {};
  }

}

// -- what a run carries ----------------------------------------------------------------------------

const iso = z.iso.datetime({ offset: true });
const line = (max = 20_000) => z.string().max(max);
const person = z.string().min(1).max(200);
const stepOutcome = z.enum([...STEP_OUTCOMES, 'not_automated', 'done_by_hand', 'skipped', 'not_needed', 'not_requested']);

const timelineEventSchema = z.strictObject({ time: iso, step: line(100), actor: person, description: line(), details: z.record(z.string(), z.unknown()).optional() });

const gateSchema = z.strictObject({
  step: gatedStepSchema,
  title: line(2000),
  critical: z.boolean(),
  approvalsNeeded: z.number().int().min(1).max(5),
  requestedBy: person,
  requestedAt: iso,
  escalateAt: iso,
  decideBy: iso,
  escalated: z.boolean(),
  approvals: z.array(z.strictObject({ approver: person, at: iso, comment: line(2000).optional(), fingerprint: line(200).optional() })).max(5),
  rejection: z.strictObject({ approver: person, at: iso, reason: line(2000), fingerprint: line(200).optional() }).optional(),
  outcome: z.enum(['approved', 'rejected', 'timed_out']).optional(),
  decidedAt: iso.optional(),
  nonce: line(100).optional(),
  signatureRequired: z.boolean().optional(),
});

const manualStepRecordSchema = z.strictObject({
  step: manualStepSchema,
  instructions: line(2000),
  requestedAt: iso,
  escalateAt: iso,
  confirmBy: iso,
  escalated: z.boolean(),
  outcome: z.enum(['done_by_hand', 'timed_out']).optional(),
  confirmedBy: person.optional(),
  note: line(2000).optional(),
});

const bypassRecordSchema = z.strictObject({
  state: z.enum(['on', 'off', 'off_failed']),
  adapter: line(100),
  flagKey: line(200),
  onSince: iso,
  expiresAt: iso,
  verified: z.array(line(2000)).max(50),
  deployment: z.strictObject({ id: line(200), url: line(2000).nullable() }).optional(),
  extensions: z.array(z.strictObject({ approver: person, extendByMs: z.number().int().min(0), reason: line(500), at: iso, expiresAt: iso })).max(10),
  offAt: iso.optional(),
  offReason: line(2000).optional(),
  bypassedForMs: z.number().min(0).optional(),
});

const signingSchema = z.strictObject({
  source: line(2000),
  namespace: line(200),
  steps: z.array(gatedStepSchema),
  signers: z
    .array(z.strictObject({ principals: z.array(line(200)).max(50), keyType: line(100), publicKey: line(10_000), fingerprint: line(200), namespaces: z.array(line(200)).optional(), line: z.number().int() }))
    .max(500),
  problems: z.array(line(2000)).max(500),
});

const incidentStateSchema = z.strictObject({
  incidentId: line(1000),
  status: z.enum(INCIDENT_STATUSES),
  category: z.enum(INCIDENT_CATEGORIES).optional(),
  severity: z.enum(SEVERITIES).optional(),
  reporter: person,
  summary: line(2000),
  approvers: z.array(person).max(50),
  dryRun: z.boolean(),
  waitingFor: line(),
  triage: z
    .strictObject({ agreement: z.enum(['classified', 'confirmed', 'not_visible', 'disagreed', 'unclassified']), rule: line(200), note: line(), probes: z.array(line(2000)).max(50) })
    .optional(),
  steps: z.array(z.strictObject({ step: line(100), outcome: stepOutcome, at: iso, actor: person, note: line() })).max(2_000),
  gates: z.array(gateSchema).max(100),
  /** Recomputed from the gates by every snapshot: whatever was carried is replaced. */
  pendingApprovals: z.array(z.unknown()).max(100),
  manualSteps: z.array(manualStepRecordSchema).max(100),
  openItems: z.array(line(2000)).max(100),
  review: line(1_000_000).optional(),
  resolution: resolveRequestSchema.and(z.strictObject({ at: iso })).optional(),
  attention: z.array(line()).max(CARRIED_ATTENTION_ITEMS + 1),
  bypass: bypassRecordSchema.optional(),
  timeline: z.array(timelineEventSchema).max(CARRIED_TIMELINE_LINES + 1),
  signing: signingSchema.optional(),
  // The roster's shape was checked by the worker that read it (src/roster/parse.ts); here: that it is one.
  roster: z
    .strictObject({
      roster: z.custom<RecordedRoster>((v) => typeof v === 'object' && v !== null && Array.isArray((v as RecordedRoster).people) && typeof (v as RecordedRoster).version === 'string', 'must be a recorded roster'),
      nonce: line(100),
    })
    .optional(),
  chat: z.strictObject({ channel: line(100), ts: line(100) }).optional(),
  detection: z
    .strictObject({
      detectedBy: line(200),
      detectedAt: iso,
      openedAt: iso,
      reports: z.number().int().min(0),
      lines: z.number().int().min(0),
      last: z.record(line(1000), z.enum(['firing', 'cleared'])).refine((l) => Object.keys(l).length <= MAX_DETECTION_KEYS, `at most ${MAX_DETECTION_KEYS} sources`),
      clearedAt: iso.optional(),
    })
    .optional(),
  // Carried only if a run continued during the post-incident phase (it does not: the phase has no safe point); checked to be a record.
  postIncident: z.custom<PostIncidentRecord>((v) => typeof v === 'object' && v !== null && typeof (v as PostIncidentRecord).until === 'string', 'must be a post-incident record').optional(),
  cancelRequest: z.strictObject({ by: person, reason: line(1000).optional(), at: iso, fingerprint: line(200).optional() }).optional(),
  pages: z
    .array(
      z.strictObject({
        step: line(100),
        target: line(200),
        person: person.optional(),
        level: z.enum(['primary', 'secondary', 'escalation', 'change']),
        action: z.enum(['trigger', 'acknowledge', 'resolve', 'change']),
        at: iso,
        outcome: z.enum(['sending', 'delivered', 'not_configured', 'failed']),
        note: line(2000).optional(),
      }),
    )
    .max(500)
    .optional(),
});

/** Where the bypass's recovery watch was (incident-bypass.ts). */
const bypassWatchSchema = z.strictObject({
  streak: z.number().int().min(0),
  checks: z.number().int().min(0),
  lastCheck: z.number(),
  warnedFor: z.number(),
  recovered: z.boolean(),
});
export type BypassWatch = z.output<typeof bypassWatchSchema>;

export const carriedIncidentSchema = z.strictObject({
  /** How many runs came before this one. */
  runs: z.number().int().min(1).max(100_000),
  state: incidentStateSchema,
  journal: z.record(z.string().max(200), z.strictObject({ v: z.unknown().optional() })).refine((j) => Object.keys(j).length <= 500, 'at most 500 journaled steps'),
  /** Optional requests (`requestStep`): those made, the windows closed, and when each open one closes. */
  optional: z.strictObject({
    requests: z.array(stepRequestSchema).max(10),
    closed: z.array(gatedStepSchema).max(10),
    until: z.partialRecord(gatedStepSchema, z.number()),
  }),
  /** The commander's `resolve` wait: since when, escalated, and the resolve if it came. */
  resolution: z.strictObject({ since: z.number(), escalated: z.boolean(), accepted: resolveRequestSchema.and(z.strictObject({ at: iso })).optional() }).optional(),
  /** The status-page recovery watch: the checks done. */
  recoveryChecks: z.number().int().min(0).optional(),
  bypassWatch: bypassWatchSchema.optional(),
  /** Unknown signals dropped so far, and when the timeline last said so. */
  dropped: z.strictObject({ count: z.number().int().min(0), lastRecordedAt: z.number() }),
});
export type CarriedIncident = z.output<typeof carriedIncidentSchema>;

/** The carried state's own check: the incident's state as the type says it is (pending approvals are recomputed). */
export function carriedState(c: CarriedIncident): IncidentState {
  const { pendingApprovals: _recomputed, ...rest } = c.state;
  return { ...rest, pendingApprovals: [] };
}

/** The timeline a run carries: the first lines (the report, triage) and the newest, with a line for what is left out. */
export function boundedTimeline(timeline: readonly TimelineEvent[], runId: string): TimelineEvent[] {
  if (timeline.length <= CARRIED_TIMELINE_LINES) return [...timeline];
  const tail = CARRIED_TIMELINE_LINES - CARRIED_TIMELINE_HEAD - 1;
  const left = timeline.length - CARRIED_TIMELINE_HEAD - tail;
  const gap: TimelineEvent = {
    time: timeline[CARRIED_TIMELINE_HEAD + left - 1]?.time ?? new Date().toISOString(),
    step: 'continue_as_new',
    actor: 'runbook',
    description: `${left} timeline line(s) left out of the carried state; they are in the history of run ${runId} and earlier`,
  };
  return [...timeline.slice(0, CARRIED_TIMELINE_HEAD), gap, ...timeline.slice(-tail)];
}

/** The attention list a run carries: each item once, the newest kept, with a count of those left out. */
export function boundedAttention(attention: readonly string[]): string[] {
  const unique = [...new Set(attention)];
  if (unique.length <= CARRIED_ATTENTION_ITEMS) return unique;
  const kept = unique.slice(-(CARRIED_ATTENTION_ITEMS - 1));
  return [`${unique.length - kept.length} older attention item(s) left out of the carried state (in the timeline of earlier runs)`, ...kept];
}
