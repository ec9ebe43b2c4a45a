/**
 * May this person do this to this incident? The roster's policy, applied to one decision: a pure
 * function of the roster, the step's context, who requested it and the decisions it already has.
 * Everyone is resolved to one roster person first, so spellings never count twice.
 */
import { approvalsNeeded, CRITICAL_STEPS, GATED_STEPS, type GatedStep, type IncidentCategory, type Severity } from '../domain';
import { expandRefs, normalizeName, resolvePerson } from './resolve';
import type { PolicyAction, PolicyRule, PolicyStep, Roster, RosterPerson, WhoRef } from './schema';

export interface PolicyContext {
  category?: IncidentCategory;
  severity: Severity;
  step: PolicyStep;
  action: PolicyAction;
  /**
   * The incident's own `approvers` (people and `@rotation`s, resolved with the same roster): when
   * given, an approval or rejection must also come from one of them.
   */
  approvers?: readonly string[];
}

/** A decision already recorded on this gate. `person`: any spelling (normally the roster id). */
export interface RecordedDecision {
  person: string;
  action: PolicyAction;
  keyFingerprint?: string;
  clientIdentity?: string;
}

export interface NewDecision {
  /** As the update names them: any spelling. */
  person: string;
  /** The key whose signature verified (signing/sshsig.ts); absent when unsigned. */
  keyFingerprint?: string;
  /** The Temporal client identity that sent the update. */
  clientIdentity?: string;
}

export interface RuleRef {
  index: number;
  name?: string;
  /** `file:line` of the rule. */
  where: string;
  /** How messages name it: `rule critical-steps (policy.rules[0], roster.yaml:61)`. */
  label: string;
}

export type DecisionFlag = { kind: 'shared_client_identity'; clientIdentity: string; with: string; message: string };

export type RefusalCode =
  | 'unknown_person'
  | 'ambiguous_person'
  | 'no_rule'
  | 'not_permitted'
  | 'not_listed'
  | 'own_request'
  | 'already_decided'
  | 'signature_required'
  | 'key_not_theirs'
  | 'key_reused';

export type DecisionCheck =
  | {
      allowed: true;
      person: RosterPerson;
      rule: RuleRef;
      signatureRequired: boolean;
      /** Approvals the step needs (approve only; 1 otherwise), each from a different person. */
      approvalsNeeded: number;
      /** Different people who approved, this decision included (approve only). */
      approvedBy: string[];
      /** Whether this decision completes the step (an approval that reaches approvalsNeeded, or any other action). */
      complete: boolean;
      flags: DecisionFlag[];
    }
  | { allowed: false; code: RefusalCode; reason: string; person?: RosterPerson; rule?: RuleRef; flags: DecisionFlag[] };

const matches = <T>(filter: readonly T[] | undefined, value: T | undefined) => !filter || (value !== undefined && filter.includes(value));

/** The first rule of the policy that covers the context (top to bottom), if any. */
export function ruleFor(roster: Roster, ctx: Pick<PolicyContext, 'category' | 'severity' | 'step' | 'action'>): PolicyRule | undefined {
  return roster.policy.rules.find((r) => matches(r.actions, ctx.action) && matches(r.steps, ctx.step) && matches(r.categories, ctx.category) && matches(r.severities, ctx.severity));
}

export function ruleRef(roster: Roster, rule: PolicyRule): RuleRef {
  const where = roster.where[`rule:${rule.index}`] ?? roster.source;
  return { index: rule.index, ...(rule.name ? { name: rule.name } : {}), where, label: `rule ${rule.name ?? `#${rule.index + 1}`} (policy.rules[${rule.index}], ${where})` };
}

const describeWho = (who: readonly WhoRef[]) =>
  who.length ? who.map((w) => ('person' in w ? w.person : 'rotation' in w ? `@${w.rotation}` : 'requester' in w ? 'the requester' : 'anyone in the roster')).join(', ') : 'nobody';

/** Whether `person` is among the rule's `who`. */
export function isPermitted(roster: Roster, who: readonly WhoRef[], person: RosterPerson, requester?: RosterPerson): boolean {
  return who.some((w) => {
    if ('anyone' in w) return true;
    if ('requester' in w) return requester?.id === person.id;
    if ('person' in w) return w.person === person.id;
    return roster.rotations[w.rotation]?.members.includes(person.id) ?? false;
  });
}

const isCritical = (step: PolicyStep) => (CRITICAL_STEPS as readonly string[]).includes(step);
const isGated = (step: PolicyStep): step is GatedStep => (GATED_STEPS as readonly string[]).includes(step);

/** A recorded decision's person id; an unresolvable one (a name from before the roster) stands for itself. */
const identityOf = (roster: Roster, spelling: string) => {
  const found = resolvePerson(roster, spelling);
  return found.ok ? found.person.id : `unresolved:${normalizeName(spelling)}`;
};

/**
 * Allowed or refused, with the reason naming the rule. Checks, in order: the person resolves to
 * one roster person; a rule covers the context and names them; they are among the incident's
 * approvers; an approval is not the requester's own on a critical step (nor on any step unless the
 * rule allows it), nor a second one by the same person; a signed rule has a key of theirs not used
 * by an earlier approval. A decision from the client identity of an earlier one is flagged.
 */
export function checkDecision(roster: Roster, ctx: PolicyContext, requester: string | undefined, decisions: readonly RecordedDecision[], decision: NewDecision): DecisionCheck {
  const flags: DecisionFlag[] = [];
  const found = resolvePerson(roster, decision.person);
  if (!found.ok) {
    const code = found.error.name === 'PersonAmbiguous' ? 'ambiguous_person' : 'unknown_person';
    return { allowed: false, code, reason: found.error.message, flags };
  }
  const person = found.person;
  const requesterFound = requester === undefined ? undefined : resolvePerson(roster, requester);
  const requesterPerson = requesterFound?.ok ? requesterFound.person : undefined;
  const requesterId = requester === undefined ? undefined : (requesterPerson?.id ?? identityOf(roster, requester));

  if (decision.clientIdentity) {
    for (const earlier of decisions) {
      if (earlier.clientIdentity !== decision.clientIdentity) continue;
      const other = identityOf(roster, earlier.person);
      if (other === person.id || flags.some((f) => f.with === other)) continue;
      flags.push({
        kind: 'shared_client_identity',
        clientIdentity: decision.clientIdentity,
        with: other,
        message: `${person.id} and ${other} decided ${ctx.step} from the same client identity ${decision.clientIdentity}`,
      });
    }
  }
  const refuse = (code: RefusalCode, reason: string, rule?: RuleRef): DecisionCheck => ({ allowed: false, code, reason, person, ...(rule ? { rule } : {}), flags });
  const what = `${ctx.action} ${ctx.step}${ctx.category ? ` (${ctx.category}, ${ctx.severity})` : ` (${ctx.severity})`}`;

  const rule = ruleFor(roster, ctx);
  if (!rule) return refuse('no_rule', `no rule of the roster's policy covers ${what}: refused`);
  const ref = ruleRef(roster, rule);
  if (!isPermitted(roster, rule.who, person, requesterPerson)) return refuse('not_permitted', `${person.id} may not ${what}: ${ref.label} allows ${describeWho(rule.who)}`, ref);

  if (ctx.approvers && (ctx.action === 'approve' || ctx.action === 'reject')) {
    const listed = expandRefs(roster, ctx.approvers);
    const ids = listed.ok ? listed.people.map((p) => p.id) : [];
    if (!ids.includes(person.id)) return refuse('not_listed', `${person.id} is not among this incident's approvers (${ctx.approvers.join(', ') || 'none'})`, ref);
  }

  const approvals = ctx.action === 'approve' ? decisions.filter((d) => d.action === 'approve') : [];
  if (ctx.action === 'approve') {
    if (requesterId === person.id && (isCritical(ctx.step) || !rule.requesterMayApprove)) {
      return refuse('own_request', `${person.id} requested ${ctx.step} and cannot approve their own request${isCritical(ctx.step) ? ' (a critical step)' : ''} (${ref.label})`, ref);
    }
    const earlier = approvals.find((d) => identityOf(roster, d.person) === person.id);
    if (earlier) return refuse('already_decided', `${person.id} already approved ${ctx.step}${normalizeName(earlier.person) === normalizeName(decision.person) ? '' : ` (as "${earlier.person}")`}; each approval must come from a different person`, ref);
  }

  if (rule.signed) {
    if (!decision.keyFingerprint) return refuse('signature_required', `${what} must be signed with one of ${person.id}'s SSH keys (${ref.label})`, ref);
    if (!person.keys.some((k) => k.fingerprint === decision.keyFingerprint)) {
      return refuse('key_not_theirs', `the key ${decision.keyFingerprint} is not one of ${person.id}'s keys in the roster (${person.keys.map((k) => k.fingerprint).join(', ') || 'none'})`, ref);
    }
    const reused = approvals.find((d) => d.keyFingerprint === decision.keyFingerprint);
    if (reused) return refuse('key_reused', `the key ${decision.keyFingerprint} already signed ${identityOf(roster, reused.person)}'s approval of ${ctx.step}; two approvals need two different keys`, ref);
  }

  const needed = ctx.action === 'approve' ? Math.max(rule.approvals ?? 1, isGated(ctx.step) ? approvalsNeeded(ctx.step) : 1) : 1;
  const approvedBy = ctx.action === 'approve' ? [...new Set([...approvals.map((d) => identityOf(roster, d.person)), person.id])] : [];
  return {
    allowed: true,
    person,
    rule: ref,
    signatureRequired: rule.signed,
    approvalsNeeded: needed,
    approvedBy,
    complete: ctx.action !== 'approve' || approvedBy.length >= needed,
    flags,
  };
}

/** Whether the policy asks a signature for this context (the CLI asks for a key before sending). */
export function signatureRequired(roster: Roster, ctx: Pick<PolicyContext, 'category' | 'severity' | 'step' | 'action'>): boolean {
  return ruleFor(roster, ctx)?.signed ?? false;
}

/**
 * What a signature of an update other than a gate decision covers besides its action: the request
 * as the workflow parsed it, without its signature and nonce, as JSON with sorted keys.
 */
export function actionText(request: object): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(sorted) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])])) : v;
  const { signature: _s, nonce: _n, ...rest } = request as Record<string, unknown>;
  return JSON.stringify(sorted(rest));
}
