/**
 * The incident vocabulary (see DESIGN.md) and the zod schemas of everything that crosses a
 * boundary into a workflow. Imported by workflow code, so: no Node APIs, no I/O.
 */
import { msToNumber, type Duration } from '@temporalio/common';
import { z } from 'zod';
import { refuseSecrets } from './secret-patterns';

export const INCIDENT_CATEGORIES = [
  'clerk_outage',
  'key_compromise',
  'middleware_failure',
  'session_issues',
  'webhook_backlog',
] as const;
export const incidentCategorySchema = z.enum(INCIDENT_CATEGORIES);
export type IncidentCategory = z.infer<typeof incidentCategorySchema>;

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof SEVERITIES)[number];

/**
 * `needs_human`: the playbook is over but the incident is not fixed by the runbook's own checks
 * (a step failed, timed out, was left to a human or could not be verified); it stays open until
 * the incident commander sends `resolve`. `bypass_active`: monitoring while the emergency auth bypass
 * is on (users reach the app without sign-in), so the UI's list can filter on it.
 */
export const INCIDENT_STATUSES = ['triage', 'mitigating', 'monitoring', 'bypass_active', 'needs_human', 'resolved', 'cancelled'] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

/** `partial`: the step ran but did not do all it was asked (users not found, failures, skipped work). */
export const STEP_OUTCOMES = ['approved', 'rejected', 'timed_out', 'succeeded', 'partial', 'failed', 'compensated'] as const;
export type StepOutcome = (typeof STEP_OUTCOMES)[number];

/** One line of the incident timeline: time, step, actor, what happened, details. */
export interface TimelineEvent {
  time: string;
  step: string;
  actor: string;
  description: string;
  details?: Record<string, unknown>;
}

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex -- as above, but tab and line breaks are text
const CONTROL_CHARS_IN_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
/** Half of a UTF-16 pair alone: not a character, and not encodable as UTF-8. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * A one-line value (a name, an id): no control characters, since a newline or an ANSI escape in
 * it would forge lines in the worker log, chat notices, the terminal and the review.
 */
export const plainLine = <T extends z.ZodString>(schema: T): T =>
  schema.refine((s) => !CONTROL_CHARS.test(s) && !LONE_SURROGATE.test(s), 'must be one line of plain text: no control characters (newline, escape, NUL) or broken Unicode');
/** Free text (a summary, a reason): line breaks and tabs allowed, other control characters not. */
export const plainText = <T extends z.ZodString>(schema: T): T =>
  schema.refine((s) => !CONTROL_CHARS_IN_TEXT.test(s) && !LONE_SURROGATE.test(s), 'must be plain text: no control characters (escape, NUL) or broken Unicode');

/**
 * Free text of an input, signal or update (`summary`, `comment`, `reason`, `note`…): plain text
 * that refuses anything shaped like a known secret, since it goes to the history, chat and review.
 */
export const freeText = <T extends z.ZodString>(schema: T): T => refuseSecrets(plainText(schema));

/** Who asked, approved or reported: an email or a name. */
export const personSchema = refuseSecrets(plainLine(z.string().trim().min(1).max(200)));

/**
 * The identity of a person's name for "two different people": NFKC, case-folded, trimmed, so
 * `alice`, `Alice` and `ａｌｉｃｅ` are one person. (Lower, upper, lower again folds `ß` and `ẞ` to `ss` as full case folding does.)
 */
export const personKey = (name: string): string => name.normalize('NFKC').toLowerCase().toUpperCase().toLowerCase().normalize('NFKC').trim();
export const samePerson = (a: string, b: string): boolean => personKey(a) === personKey(b);

/**
 * Playbook steps a human decides (approval gates). Critical ones need two different approvers.
 * `operator_action` is the operator confirming a manual fix; `rollback` puts the last good deployment
 * back (middleware_failure, on a worker that can roll back), and `undo_rollback`, optional once it
 * is verified, promotes the deployment that was live back; `targeted_revocation` is optional;
 * `bypass_off` is asked only when BYPASS_OFF_NEEDS_APPROVAL is set; `update_allowed_origins` and
 * `update_session_lifetime` are the diagnosis's remedies that change Clerk, `update_deployed_env` the one
 * that deploys the app's publishable key (src/diagnostics/rules.ts).
 */
export const GATED_STEPS = [
  'emergency_bypass',
  'rotate_secret_key',
  'revoke_all_sessions',
  'operator_action',
  'rollback',
  'undo_rollback',
  'targeted_revocation',
  'update_allowed_origins',
  'update_session_lifetime',
  'update_deployed_env',
  'bypass_off',
] as const;
export const gatedStepSchema = z.enum(GATED_STEPS);
export type GatedStep = z.infer<typeof gatedStepSchema>;
export const CRITICAL_STEPS: readonly GatedStep[] = ['emergency_bypass', 'rotate_secret_key', 'revoke_all_sessions'];

/** Approvals a step needs, each from a different person who is not the requester. */
export const approvalsNeeded = (step: GatedStep): 1 | 2 => (CRITICAL_STEPS.includes(step) ? 2 : 1);

/**
 * Steps a person may be asked to do by hand and confirm with `confirmStep` before the steps that
 * depend on them run: the automated bypass, rotation and reconciliation fall back to them on a
 * worker without a deploy adapter, key references or a user store.
 */
export const MANUAL_STEPS = ['emergency_bypass', 'bypass_off', 'rotate_secret_key', 'reconcile_webhooks', 'update_session_lifetime', 'update_deployed_env', 'remedy_by_hand'] as const;
export const manualStepSchema = z.enum(MANUAL_STEPS);
export type ManualStep = z.infer<typeof manualStepSchema>;

/** Input fields that only one category takes (`incidentInputSchema` refuses them for another). */
export const CATEGORY_FIELDS = ['targetedRevocation', 'affectedUserIds', 'exposedAt', 'excludeUserIds', 'bypass', 'rollback'] as const;
export type CategoryField = (typeof CATEGORY_FIELDS)[number];

export interface CategoryProfile {
  /** Default severity, from the runbook's table. */
  severity: Severity;
  /** The gates its playbook always opens. */
  gates: readonly GatedStep[];
  /** Gates its playbook opens only when someone asks for the step (`requestStep` or the input). */
  optionalSteps: readonly GatedStep[];
  /**
   * The steps whose success means the incident is fixed (`succeeded`, or `done_by_hand` and
   * confirmed). Only then, and with nothing failed or left unconfirmed, does it end `resolved`.
   */
  fixedWhen: readonly string[];
  /** Whether triage's probes can see it; when they cannot, the reporter's word stands. */
  visibleFromOutside: boolean;
  /** The input fields only this category takes. */
  fields: readonly CategoryField[];
}

/** Each category as the runbook defines it (DESIGN.md's table); the playbooks are incident-playbooks.ts. */
export const CATEGORIES: Record<IncidentCategory, CategoryProfile> = {
  clerk_outage: { severity: 'critical', gates: ['emergency_bypass'], optionalSteps: [], fixedWhen: ['recovery_watch'], visibleFromOutside: true, fields: ['bypass'] },
  key_compromise: {
    severity: 'critical',
    gates: ['rotate_secret_key', 'revoke_all_sessions'],
    optionalSteps: [],
    fixedWhen: ['rotate_secret_key', 'revoke_all_sessions'],
    visibleFromOutside: false,
    fields: ['exposedAt', 'excludeUserIds'],
  },
  middleware_failure: { severity: 'high', gates: ['operator_action'], optionalSteps: ['undo_rollback'], fixedWhen: ['verify_fix'], visibleFromOutside: true, fields: ['rollback'] },
  session_issues: {
    severity: 'medium',
    gates: [],
    optionalSteps: ['targeted_revocation'],
    // Whatever the remedy (an instance setting, a step by hand, a revocation), the check that failed must pass again.
    fixedWhen: ['verify_remedy'],
    visibleFromOutside: false,
    fields: ['targetedRevocation', 'affectedUserIds'],
  },
  webhook_backlog: { severity: 'low', gates: [], optionalSteps: [], fixedWhen: ['reconcile_webhooks'], visibleFromOutside: false, fields: [] },
};

export const categorySeverity = (category: IncidentCategory): Severity => CATEGORIES[category].severity;

/** The category that owns a category-only input field. */
const fieldOwner = (field: CategoryField): IncidentCategory => INCIDENT_CATEGORIES.find((c) => CATEGORIES[c].fields.includes(field)) as IncidentCategory;

/**
 * A duration a human can type: `"30s"`, `"15 minutes"`, `"2h"`, `"500ms"`; parsed to milliseconds
 * by the `ms` format Temporal itself uses. A unit is required: a bare `"30"` is refused.
 */
export function durationSchema(min: number, max: number) {
  return z
    .string()
    .trim()
    .transform((text, ctx) => {
      let ms = Number.NaN;
      if (/^\d+(?:\.\d+)?\s*[a-z]+$/i.test(text)) {
        try {
          ms = Math.round(msToNumber(text as Duration));
        } catch {
          // not a duration: reported below
        }
      }
      if (!Number.isFinite(ms)) {
        ctx.addIssue({ code: 'custom', message: 'must be a duration like "30s", "15 minutes" or "2h"' });
        return z.NEVER;
      }
      if (ms < min || ms > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${formatDuration(min)} and ${formatDuration(max)}` });
        return z.NEVER;
      }
      return ms;
    });
}

/** `90000` → `"1m 30s"`, `3725000` → `"1h 2m 5s"`: for summaries, messages and ETAs. */
export function formatDuration(ms: number): string {
  const rounded = Math.max(0, Math.round(ms));
  if (rounded < 1000) return `${rounded}ms`;
  const parts: string[] = [];
  let rest = Math.round(rounded / 1000);
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join(' ');
}

/** A Clerk user id, e.g. `user_2abc…`. */
/** A deployment or release id as a platform names it (`dpl_…`, `release-41`, `v2026.12.03-1`): one token, no spaces or markup. */
export const deploymentIdSchema = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be a deployment id: letters, digits and . _ : - (at most 128), like "dpl_8Jk2…" or "release-41"');

export const clerkUserIdSchema = z.string().trim().regex(/^user_[A-Za-z0-9]{1,64}$/, 'must be a Clerk user id like "user_2abc…"');

const SECOND = 1000;
const DAY = 86_400_000;
const gateTimeoutsSchema = z.strictObject({
  /** No decision by then: notify again (escalation). */
  escalateAfter: durationSchema(SECOND, 7 * DAY).optional(),
  /** No decision by then: take the safe default (nothing dangerous happens), outcome `timed_out`. */
  decideWithin: durationSchema(SECOND, 7 * DAY).optional(),
});

/** How far in the future an `exposedAt` may be (clocks disagree); beyond it the audit would cover nothing. */
export const EXPOSED_AT_CLOCK_SKEW = 5 * 60_000;

const DEFAULT_ESCALATE_AFTER = 15 * 60_000;
const DEFAULT_DECIDE_WITHIN = 60 * 60_000;

/**
 * Who noticed an incident first: the runbook's watch (a Temporal Schedule of the triage probes),
 * an alert receiver (`alert:<receiver>`, from Alertmanager or Grafana), or a person (`manual`).
 */
export const detectedBySchema = plainLine(z.string().max(110)).refine(
  (s) => s === 'watch' || s === 'manual' || /^alert:[^\s].{0,99}$/u.test(s),
  'must be "watch", "manual" or "alert:<receiver>" (at most 100 characters of receiver)',
);

/** At most this many evidence lines per detection, each one line of at most DETECTION_EVIDENCE_CHARS. */
export const DETECTION_EVIDENCE_LINES = 20;
export const DETECTION_EVIDENCE_CHARS = 300;

const isoTime = (what: string) => z.iso.datetime({ offset: true, message: `must be an ISO date-time like "2026-12-02T03:00:00Z" (${what})` });

/** The detection an incident was opened for: the first failing probe run or the alert's `startsAt` (MTTD starts there). */
export const detectionSchema = z.strictObject({
  detectedBy: detectedBySchema,
  detectedAt: isoTime('when the first failing probe ran or the alert started firing').refine(
    (t) => Date.parse(t) <= Date.now() + EXPOSED_AT_CLOCK_SKEW,
    `must not be in the future (more than ${EXPOSED_AT_CLOCK_SKEW / 60_000} minutes of clock skew)`,
  ),
  /** What grouped it: `<groupKey>|<category>` for an alert, `watch|<category>` for the watch. Later reports of the same key are counted, not listed again. */
  dedupKey: plainLine(z.string().min(1).max(1000)).optional(),
  evidence: z.array(freeText(z.string().max(DETECTION_EVIDENCE_CHARS)).refine((l) => !/[\r\n]/.test(l), 'must be one line')).max(DETECTION_EVIDENCE_LINES).default([]),
});

/** Input of `incidentWorkflow`: one JSON object, pasteable into the UI's Start Workflow form. */
export const incidentInputSchema = z
  .strictObject({
    category: incidentCategorySchema.optional(),
    reporter: personSchema,
    summary: freeText(z.string().trim().min(1).max(2000)),
    approvers: z.array(personSchema).max(50).default([]),
    timeouts: z
      .strictObject({
        escalateAfter: durationSchema(SECOND, 7 * DAY).default(DEFAULT_ESCALATE_AFTER),
        decideWithin: durationSchema(SECOND, 7 * DAY).default(DEFAULT_DECIDE_WITHIN),
        /** Each triage probe (status page, Backend API, health route, app routes). */
        probe: durationSchema(100, 60 * SECOND).default(5 * SECOND),
        recoveryCheckEvery: durationSchema(SECOND, DAY).default(5 * 60_000),
        recoveryWatchFor: durationSchema(SECOND, 7 * DAY).default(2 * 3_600_000),
        /** After the playbook, an incident that needs a human waits this long for `resolve`, then closes unresolved. */
        resolveWithin: durationSchema(SECOND, 30 * DAY).default(7 * DAY),
        /** Overrides of the two gate timeouts for one step, e.g. `{ "revoke_all_sessions": { "decideWithin": "30m" } }`. */
        steps: z.partialRecord(gatedStepSchema, gateTimeoutsSchema).default({}),
      })
      .prefault({}),
    /** session_issues only: users who report the trouble; diagnostics look at their sessions. */
    affectedUserIds: z.array(clerkUserIdSchema).max(100).default([]),
    /** session_issues only: end the sessions of these users (after an approval). */
    targetedRevocation: z.strictObject({ userIds: z.array(clerkUserIdSchema).min(1).max(1000) }).optional(),
    dryRun: z.boolean().default(false),
    /** key_compromise only: when the key may have leaked (ISO time, not in the future); the exposure audit starts there (default: the worker's KEY_EXPOSURE_LOOKBACK). */
    exposedAt: z.iso
      .datetime({ offset: true, message: 'must be an ISO date-time like "2026-11-27T05:00:00Z"' })
      .refine((t) => Date.parse(t) <= Date.now() + EXPOSED_AT_CLOCK_SKEW, `must not be in the future (more than ${EXPOSED_AT_CLOCK_SKEW / 60_000} minutes of clock skew): when the key may have leaked, at the latest now`)
      .optional(),
    /** key_compromise only: break-glass users whose sessions the revocation keeps. */
    excludeUserIds: z.array(clerkUserIdSchema).max(1000).default([]),
    /**
     * middleware_failure only: the deployment serving production now and the last good one, for a
     * deploy adapter that cannot list deployments (the signed webhook): the runbook rolls back to
     * `to` through it after approval, and promotes `from` back as the undo. On Vercel, `to` limits
     * the candidates to that one (still checked for a retired key or the bypass flag).
     */
    rollback: z
      .strictObject({
        from: deploymentIdSchema,
        to: deploymentIdSchema,
        /** Through an adapter that confirms nothing: how long the probes may take to see the app answer again. */
        confirmWithin: durationSchema(SECOND, 30 * 60_000).default(3 * 60_000),
      })
      .refine((r) => r.from !== r.to, { message: 'from and to must be different deployments', path: ['to'] })
      .optional(),
    /** Opened by detection (the watch, an alert): who noticed and when, for the timeline and MTTD. Absent: a person reported it. */
    detection: detectionSchema.optional(),
    /** clerk_outage only: the emergency auth bypass (docs/bypass.md). */
    bypass: z
      .strictObject({
        /** How long it stays on (default 60 minutes; never more than the worker's BYPASS_MAX_DURATION). */
        duration: durationSchema(10 * SECOND, DAY).optional(),
        /** How long the app may take to show (or stop showing) `X-Auth-Bypass: true` before the step fails. */
        verifyWithin: durationSchema(SECOND, 15 * 60_000).default(60 * SECOND),
      })
      .optional(),
  })
  .superRefine((input, ctx) => {
    // The message names both values and where each comes from: often only one of them was typed.
    type Timed = { ms: number; note?: string };
    const check = (path: (string | number)[], escalateAfter: Timed, decideWithin: Timed) => {
      if (escalateAfter.ms < decideWithin.ms) return;
      const decide = `${formatDuration(decideWithin.ms)}${decideWithin.note ? `, ${decideWithin.note}` : ''}`;
      const escalate = `${formatDuration(escalateAfter.ms)}${escalateAfter.note ? ` (${escalateAfter.note})` : ''}`;
      ctx.addIssue({ code: 'custom', path: [...path, 'escalateAfter'], message: `must be shorter than decideWithin (${decide}); it is ${escalate}` });
    };
    const top = input.timeouts;
    const timed = (ms: number, def: number): Timed => (ms === def ? { ms, note: 'the default' } : { ms });
    const escalateTop = timed(top.escalateAfter, DEFAULT_ESCALATE_AFTER);
    const decideTop = timed(top.decideWithin, DEFAULT_DECIDE_WITHIN);
    check(['timeouts'], escalateTop, decideTop);
    const inherited = (t: Timed, field: string): Timed => ({ ms: t.ms, note: `from timeouts.${field}${t.note ? `, ${t.note}` : ''}` });
    for (const [step, t] of Object.entries(top.steps)) {
      if (!t) continue;
      check(
        ['timeouts', 'steps', step],
        t.escalateAfter !== undefined ? { ms: t.escalateAfter } : inherited(escalateTop, 'escalateAfter'),
        t.decideWithin !== undefined ? { ms: t.decideWithin } : inherited(decideTop, 'decideWithin'),
      );
    }
    for (const field of CATEGORY_FIELDS) {
      const value = input[field];
      const given = Array.isArray(value) ? value.length > 0 : value !== undefined;
      const owner = fieldOwner(field);
      if (given && input.category !== undefined && input.category !== owner) ctx.addIssue({ code: 'custom', path: [field], message: `only for category ${owner}` });
    }
    const seen = new Map<string, string>();
    input.approvers.forEach((name, i) => {
      const earlier = seen.get(personKey(name));
      if (earlier !== undefined) ctx.addIssue({ code: 'custom', path: ['approvers', i], message: `${name} is the same person as ${earlier} (names compare case- and width-insensitively); list each approver once` });
      else seen.set(personKey(name), name);
    });
    const shortage = approverShortage(input);
    if (shortage) ctx.addIssue({ code: 'custom', path: ['approvers'], message: shortage });
  });

/**
 * Refuse at start what can only time out: a gate of the playbook that needs more approvers (other
 * than the reporter, who requests it) than the incident lists. Undefined when there are enough.
 */
export function approverShortage(input: { category?: IncidentCategory; reporter: string; approvers: readonly string[]; targetedRevocation?: unknown }): string | undefined {
  if (!input.category) return undefined;
  // A rotation (`@auth-oncall`) is counted when the roster expands it, at the incident's start.
  if (input.approvers.some((a) => a.trim().startsWith('@'))) return undefined;
  const gates: GatedStep[] = [...CATEGORIES[input.category].gates, ...(input.targetedRevocation ? (['targeted_revocation'] as const) : [])];
  const eligible = new Set(input.approvers.filter((a) => !samePerson(a, input.reporter)).map(personKey)).size;
  const needy = gates.find((g) => approvalsNeeded(g) > eligible);
  if (!needy) return undefined;
  const need = approvalsNeeded(needy);
  return (
    `${input.category} asks for approval of ${needy}, which needs ${need === 2 ? 'two different approvers' : 'one approver'} other than the reporter ${input.reporter}; ` +
    `the incident lists ${eligible} (${input.approvers.join(', ') || 'none'}). Add ${need === 2 ? 'two' : 'one'} (CLI: --approver <name>, repeated)`
  );
}
export type IncidentInput = z.input<typeof incidentInputSchema>;
export type ValidIncidentInput = z.output<typeof incidentInputSchema>;

/** Status page probe result (Statuspage v2 `status.indicator`). */
export const STATUS_INDICATORS = ['none', 'minor', 'major', 'critical'] as const;
export type StatusIndicator = (typeof STATUS_INDICATORS)[number];

/**
 * zod's issues as one sentence that names each field, e.g.
 * `input.category: Invalid option: expected one of "clerk_outage"|…`.
 */
export function describeIssues(error: z.ZodError, root = 'input'): string {
  return error.issues
    .map((issue) => {
      const path = [root, ...issue.path.map(String)].join('.');
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `${path}.${k}: unknown field`).join('; ');
      }
      return `${path}: ${issue.message}`;
    })
    .join('; ');
}
