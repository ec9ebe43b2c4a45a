/**
 * The on-call roster (docs/roster.md): the file's format as zod schemas, and the parsed roster the
 * worker hands to incidents. Pure data, JSON-serialisable, so an incident can record the roster it
 * decides by; no Node APIs (workflow validators import the rules that read it).
 */
import { z } from 'zod';
import { GATED_STEPS, incidentCategorySchema, MANUAL_STEPS, plainLine, SEVERITIES, type IncidentCategory, type Severity } from '../domain';

/**
 * What a person does to an incident, one per state-changing update: `approveStep` → approve,
 * `rejectStep` → reject, `requestStep` → request, `confirmStep` → confirm, `provideNewKey` →
 * provide_key, `confirmOldKeyDeleted` → confirm_deletion, `extendBypass` → extend, `resolve` →
 * resolve, and the CLI's `cancel`.
 */
export const POLICY_ACTIONS = ['approve', 'reject', 'request', 'confirm', 'provide_key', 'confirm_deletion', 'extend', 'resolve', 'cancel'] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];


/**
 * What an action is about: a gated or manual step, or `incident` for resolve and cancel.
 * provide_key and confirm_deletion are about rotate_secret_key; extend is about emergency_bypass.
 */
export const POLICY_STEPS = [...new Set([...GATED_STEPS, ...MANUAL_STEPS]), 'incident'] as const;
export type PolicyStep = (typeof GATED_STEPS)[number] | (typeof MANUAL_STEPS)[number] | 'incident';

export const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

// -- the file --------------------------------------------------------------------------------------

const SLUG = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const slug = (what: string) => z.string().regex(SLUG, `${what} must be lower-case letters, digits, ".", "_" or "-" (at most 64), starting with a letter or digit`);
const line = (max: number) => plainLine(z.string().trim().min(1).max(max));

/** A person (id, email, alias, name) or, with `@`, a rotation's members: `@auth-oncall`. */
const refSchema = line(200);

const timezoneSchema = z
  .string()
  .trim()
  .min(1)
  .max(64)
  .refine((tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'must be an IANA time zone like "Europe/Berlin", or "UTC"');

/** PagerDuty Events API v2: the integration (routing) key of the service that pages this person or rotation. */
const pagingSchema = z.strictObject({
  pagerduty: z.strictObject({ routingKey: z.string().trim().regex(/^[A-Za-z0-9]{20,64}$/, 'must be a PagerDuty integration key (20 to 64 letters and digits)') }),
});
export type PagingTarget = z.infer<typeof pagingSchema>;

const personFileSchema = z.strictObject({
  /** Stable: decisions and history name people by it. */
  id: slug('an id'),
  name: line(200),
  email: z.email('must be an email address').max(254),
  aliases: z.array(line(200)).max(20).default([]),
  /** SSH public keys (`ssh-ed25519 AAAA… comment`), as in a `.pub` file. */
  keys: z.array(line(2000)).max(20).default([]),
  chatUserId: line(100).optional(),
  paging: pagingSchema.optional(),
});

const isoInstant = z.iso.datetime({ offset: true, message: 'must be an ISO date-time with a zone, like "2026-12-24T09:00:00Z"' });

const rotationFileSchema = z.strictObject({
  name: line(200).optional(),
  /** In rotation order: the first is primary in the week that starts at the first handoff on or after `start`. */
  members: z.array(refSchema).min(1).max(50),
  handoff: z.strictObject({
    day: z.enum(WEEKDAYS),
    time: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time like "09:00" (24-hour)'),
    timezone: timezoneSchema.default('UTC'),
  }),
  start: z.iso.date({ message: 'must be a date like "2026-11-30"' }),
  /** Who is paged when neither the primary nor the secondary answers: a person, or `@rotation` (its primary). */
  escalation: refSchema.optional(),
  overrides: z
    .array(
      z.strictObject({
        person: refSchema,
        from: isoInstant,
        until: isoInstant,
        as: z.enum(['primary', 'secondary']).default('primary'),
        reason: line(500).optional(),
      }),
    )
    .max(500)
    .default([]),
  paging: pagingSchema.optional(),
});

const ruleFileSchema = z.strictObject({
  name: slug('a rule name').optional(),
  /** Each filter, when given, must contain the decision's value; absent means any. */
  actions: z.array(z.enum(POLICY_ACTIONS)).min(1).optional(),
  steps: z.array(z.enum(POLICY_STEPS)).min(1).optional(),
  categories: z.array(incidentCategorySchema).min(1).optional(),
  severities: z.array(z.enum(SEVERITIES)).min(1).optional(),
  /** People and `@rotation`s allowed; `requester`: the person who requested the step (or reported the incident); `*`: anyone in the roster; `[]`: nobody. */
  who: z.array(refSchema).max(100),
  /** Approvals needed, each from a different person: never fewer than the step's own (two for critical steps). */
  approvals: z.number().int().min(1).max(5).optional(),
  /** Whether the requester may approve their own request (never for a critical step). */
  requesterMayApprove: z.boolean().default(false),
  /** Whether the decision must be signed with one of the person's SSH keys. */
  signed: z.boolean().default(false),
});

export const rosterFileSchema = z.strictObject({
  version: z.literal(1, 'must be 1 (the roster format version)'),
  /** git's allowed_signers file, relative to the roster file: more keys, matched to people by email. */
  allowedSigners: line(500).optional(),
  people: z.array(personFileSchema).min(1).max(500),
  rotations: z.record(slug('a rotation name'), rotationFileSchema).default({}),
  policy: z.strictObject({
    /** Read top to bottom: the first rule that matches a decision decides it; none matching refuses it. */
    rules: z.array(ruleFileSchema).min(1).max(200),
  }),
});
export type RosterFile = z.output<typeof rosterFileSchema>;

// -- the parsed roster -----------------------------------------------------------------------------

export interface RosterKey {
  keyType: string;
  /** The key blob, base64. */
  publicKey: string;
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

export interface RosterPerson {
  id: string;
  name: string;
  email: string;
  aliases: string[];
  keys: RosterKey[];
  chatUserId?: string;
  paging?: PagingTarget;
}

export interface RosterOverride {
  /** A person id. */
  person: string;
  from: string;
  until: string;
  as: 'primary' | 'secondary';
  reason?: string;
}

/** A person id, or a rotation whose primary is meant. */
export type EscalationRef = { person: string } | { rotation: string };

export interface Rotation {
  id: string;
  name: string;
  /** Person ids, in rotation order. */
  members: string[];
  handoff: { day: Weekday; time: string; timezone: string };
  start: string;
  escalation?: EscalationRef;
  overrides: RosterOverride[];
  paging?: PagingTarget;
}

export type WhoRef = { person: string } | { rotation: string } | { requester: true } | { anyone: true };

export interface PolicyRule {
  /** Its place in policy.rules, 0-based. */
  index: number;
  name?: string;
  actions?: PolicyAction[];
  steps?: PolicyStep[];
  categories?: IncidentCategory[];
  severities?: Severity[];
  who: WhoRef[];
  approvals?: number;
  requesterMayApprove: boolean;
  signed: boolean;
}

export interface Roster {
  /** `sha256:…` of the canonical JSON of people, rotations and policy: what an incident records. */
  version: string;
  /** Sorted by id. */
  people: RosterPerson[];
  rotations: Record<string, Rotation>;
  policy: { rules: PolicyRule[] };
  /** Where it came from (file names), for messages. */
  source: string;
  /** `file:line` of things messages name: `person:alice`, `rule:0`, `rotation:security`, `key:SHA256:…`. */
  where: Record<string, string>;
  /** Usable but worth a look (allowed_signers lines that name nobody in the roster, unusable keys). */
  warnings: string[];
}

/**
 * The roster as an incident records it (in its state, so in history): every routing key left out
 * (they stay in the worker), `pageable` names the paging targets that have one: `person:<id>`,
 * `rotation:<id>`.
 */
export interface RecordedRoster extends Roster {
  pageable: string[];
}
