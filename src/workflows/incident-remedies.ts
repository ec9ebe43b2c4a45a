/**
 * The remedies of a diagnosis (docs/diagnostics.md "Remedies"): the rule table gives each failing
 * check its remedy (src/diagnostics/rules.ts); this module picks the most likely cause's, says on
 * the timeline which check failed, which remedy and why, applies the automated ones (after their
 * approval, their undo registered) and verifies every remedy by running the check that failed
 * again (on sessions created after the remedy for the session checks), then the triage probes.
 * Workflow code: the I/O is in the remedy activities (Backend API, Platform API, deploy adapter),
 * `runDiagnostics` and `runTriageProbes`.
 */
import { ActivityFailure, ApplicationFailure, isCancellation, proxyActivities, sleep } from '@temporalio/workflow';
import type { RemedyActivities } from '../activities';
import type { Check, CheckId, DiagnosticKind, DiagnosticsSummary, Remedy } from '../diagnostics/rules';
import { formatDuration } from '../domain';
import { NON_RETRYABLE_ERROR_TYPES } from '../shared';
import { redeployAndWait } from './deploy-wait';
import type { Diagnostics } from './incident-diagnostics';
import { errorMessage } from './incident-state';
import type { IncidentContext } from './incident-steps';
import type { Verification } from './incident-verification';

const acts = proxyActivities<RemedyActivities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '10 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES, 'PlatformApiRejected', 'PlatformApiNotConfigured', 'InstanceConfigVersionMismatch', 'DeployRequestRejected'],
  },
});

/** The step that deploys the app's publishable key (the keys remedy). */
export const DEPLOYED_ENV_STEP = 'update_deployed_env';
/** The redeploy after it: read every 3 s, for up to 10 min (a build). */
const DEPLOYED_ENV_POLL_MS = 3_000;
const DEPLOYED_ENV_READY_WITHIN_MS = 10 * 60_000;

/** The step whose success means the remedy worked (session_issues' `fixedWhen`). */
export const VERIFY_REMEDY = 'verify_remedy';
/** Checks judged on sessions: verified only by sessions created after the remedy, which may take users a while to make. */
const SESSION_CHECKS: readonly CheckId[] = ['session_lifetime'];
/** At most: look every 30 s, for 15 min (the incident's recoveryCheckEvery / recoveryWatchFor when shorter). */
const SESSION_VERIFY_EVERY_MS = 30_000;
const SESSION_VERIFY_WITHIN_MS = 15 * 60_000;

/** The type of the ApplicationFailure an activity failed with (undefined for anything else: a cancellation among them). */
const failureType = (err: unknown): string | undefined => (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause.type ?? undefined : undefined);

export type Diagnosed = { summary: DiagnosticsSummary; checks: Check[] } | undefined;

export interface RemedyStep {
  /** The remedy of the most likely failing cause (recorded on the timeline), or null when no check fails. */
  propose(diagnosed: Diagnosed): Promise<Remedy | null>;
  /** What `propose` chose (undefined before it ran). */
  readonly chosen: Remedy | null | undefined;
  /** A targeted revocation as the remedy: `verify_remedy` from its own verified outcome (nothing recorded when none ran). */
  verifyRevocation(): void;
  /** After approval: the instance's allowed_origins changed (compare-and-set), its undo registered; true when read back. */
  applyAllowedOrigins(remedy: Extract<Remedy, { kind: 'allowed_origins' }>): Promise<boolean>;
  /** The session lifetime can be changed by this worker (a Platform API token), not only by hand. */
  sessionSettingsAutomated(): Promise<boolean>;
  /** After approval: the instance's session settings changed through the Platform API (dry run, then If-Match on the version read), read back. */
  applySessionLifetime(remedy: Extract<Remedy, { kind: 'session_lifetime' }>): Promise<boolean>;
  /** The app's publishable key can be deployed by this worker (a deploy adapter and CLERK_PUBLISHABLE_KEY), not only by hand. */
  deployedEnvAutomated(): Promise<boolean>;
  /** After approval: the app's publishable key env var set through the deploy adapter, then a redeploy waited for; true when the new build is READY. */
  applyDeployedPublishableKey(remedy: Extract<Remedy, { kind: 'deployed_publishable_key' }>): Promise<boolean>;
  /**
   * The check that failed run again (after `since`), then the triage probes; `verify_remedy`
   * succeeded only when the check passes and the probes see nothing wrong (gaps are said, not failed).
   */
  verify(kind: DiagnosticKind, remedy: Remedy, opts: VerifyOptions): Promise<boolean>;
}

export interface VerifyOptions {
  userIds: string[];
  /** Judge sessions created after this (ms), for the session checks. */
  since: number;
  /** The probes already ran right before (the playbook's `verify_fix`): not run again. */
  probed?: boolean;
}

/** The approval request of a remedy: the check, what it saw, what changes, how it is verified. */
export function remedyRequest(check: Check, remedy: Remedy): string {
  return `${remedy.changes}: check ${check.id} failed (${check.evidence}); verified when the runbook ${remedy.verifiedBy}`;
}

export class Remedies implements RemedyStep {
  /** What `propose` chose (set again from the journal in a continued run). */
  chosen: Remedy | null | undefined;

  constructor(
    private readonly ctx: IncidentContext,
    private readonly diagnostics: Diagnostics,
    private readonly verification: Pick<Verification, 'probeOnce'>,
  ) {}

  private get tracker() {
    return this.ctx.tracker;
  }

  async propose(diagnosed: Diagnosed): Promise<Remedy | null> {
    const cause = diagnosed?.summary.verdict === 'fail' ? diagnosed.summary.cause : null;
    const check = diagnosed?.checks.find((c) => c.id === cause);
    const remedy = check?.remedy ?? null;
    if (check && remedy) {
      const others = diagnosed?.checks.filter((c) => c.verdict === 'fail' && c.id !== check.id).map((c) => c.id) ?? [];
      this.tracker.record('remedy', 'runbook', `${check.id} failed, the most likely cause: remedy ${remedy.kind} (${remedy.changes}); verified when the runbook ${remedy.verifiedBy}${others.length ? `; also failing, after it: ${others.join(', ')}` : ''}`, {
        check: check.id,
        remedy: remedy.kind,
        gated: remedy.gated,
      });
    }
    this.chosen = remedy;
    return remedy;
  }

  /** A continued run: the undo of an allowed_origins change not yet verified, as the run before had it. */
  restore(): void {
    const changed = [...this.tracker.state.timeline].reverse().find((e) => e.step === 'update_allowed_origins' && e.details?.outcome !== undefined);
    const verified = this.tracker.state.steps.some((s) => s.step === VERIFY_REMEDY && s.outcome === 'succeeded');
    const before = changed?.details?.before;
    const after = changed?.details?.after;
    if (verified || changed?.details?.outcome !== 'succeeded' || !Array.isArray(before) || !Array.isArray(after)) return;
    const list = (v: unknown[]) => v.filter((x): x is string => typeof x === 'string');
    this.registerOriginsUndo(list(before), list(after));
  }

  /** The undo of an allowed_origins change: the list put back, if it still is the one the change left. */
  private registerOriginsUndo(before: string[], after: string[]): void {
    const step = 'update_allowed_origins';
    this.ctx.compensations.push(step, `put allowed_origins back to ${before.join(', ') || 'none'}`, () => acts.applyAllowedOrigins.executeWithOptions({ summary: `${step}: undo` }, [{ origins: before, expected: after }]));
  }

  verifyRevocation(): void {
    const last = this.tracker.state.steps.filter((s) => s.step === 'targeted_revocation').at(-1);
    if (!last || !['succeeded', 'partial', 'failed'].includes(last.outcome)) return;
    if (last.outcome === 'succeeded') {
      this.tracker.stepDone(VERIFY_REMEDY, 'succeeded', 'runbook', `the affected users' sessions are revoked, each confirmed by the revocation (${last.note})`, { remedy: 'targeted_revocation' });
    } else {
      this.tracker.stepDone(VERIFY_REMEDY, 'failed', 'runbook', `the revocation did not end every session (${last.outcome}: ${last.note})`, { remedy: 'targeted_revocation' });
    }
  }

  async applyAllowedOrigins(remedy: Extract<Remedy, { kind: 'allowed_origins' }>): Promise<boolean> {
    const step = 'update_allowed_origins';
    const origins = [...remedy.current, remedy.add];
    // Registered first: a cancel while the change is in flight puts the list back (if it is still ours).
    this.registerOriginsUndo(remedy.current, origins);
    this.tracker.waitFor(`${step}: add ${remedy.add} (PATCH /v1/instance)`);
    try {
      const change = await acts.applyAllowedOrigins.executeWithOptions({ summary: `${step}: add ${remedy.add}` }, [{ origins, expected: remedy.current }]);
      this.tracker.stepDone(step, 'succeeded', 'runbook', `allowed_origins ${change.alreadyDone ? 'already was' : 'is now'} ${change.after.join(', ')} (read back with GET /v1/instance; was ${change.before.join(', ') || 'none'})`, {
        before: change.before,
        after: change.after,
      });
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.ctx.compensations.drop(step);
      const note = `allowed_origins not changed: ${errorMessage(err)}`;
      this.tracker.stepFailed(step, note);
      return false;
    }
  }

  async sessionSettingsAutomated(): Promise<boolean> {
    return (await acts.sessionSettingsSupport.executeWithOptions({ summary: 'update_session_lifetime: can this worker change it' }, [])).automated;
  }

  async applySessionLifetime(remedy: Extract<Remedy, { kind: 'session_lifetime' }>): Promise<boolean> {
    const step = 'update_session_lifetime';
    const change = { maxLifetimeMs: remedy.maxLifetimeMs, ...(remedy.inactivityTimeoutMs !== null ? { inactivityTimeoutMs: remedy.inactivityTimeoutMs } : {}) };
    const same = (v: { maxLifetimeMs: number | null; inactivityTimeoutMs: number | null }) =>
      v.maxLifetimeMs === change.maxLifetimeMs && (change.inactivityTimeoutMs === undefined || v.inactivityTimeoutMs === change.inactivityTimeoutMs);
    const show = (v: { maxLifetimeMs: number | null; inactivityTimeoutMs: number | null }) =>
      `max lifetime ${v.maxLifetimeMs === null ? 'off' : formatDuration(v.maxLifetimeMs)}, inactivity timeout ${v.inactivityTimeoutMs === null ? 'off' : formatDuration(v.inactivityTimeoutMs)}`;
    this.tracker.waitFor(`${step}: ${remedy.changes} (Platform API instance config)`);
    try {
      const before = await acts.readSessionSettings.executeWithOptions({ summary: `${step}: read the session settings` }, []);
      let after = before;
      if (!same(before)) {
        // The dry run first: Clerk validates the change without applying it.
        await acts.patchSessionSettings.executeWithOptions({ summary: `${step}: dry run` }, [change, { dryRun: true, version: before.version }]);
        try {
          await acts.patchSessionSettings.executeWithOptions({ summary: `${step}: apply (If-Match ${before.version})` }, [change, { dryRun: false, version: before.version }]);
        } catch (err) {
          // A retry after a crash finds its own change applied (the version moved on): read back decides.
          if (failureType(err) !== 'InstanceConfigVersionMismatch') throw err;
        }
        after = await acts.readSessionSettings.executeWithOptions({ summary: `${step}: read back` }, []);
      }
      if (!same(after)) throw new Error(`the settings read back as ${show(after)}, not as asked (someone changed them meanwhile?)`);
      // No undo on cancel: putting a lifetime back that signs users out would not help anyone. The old value is on the timeline.
      this.tracker.stepDone(step, 'succeeded', 'runbook', `${show(after)} (read back, config version ${after.version}; was ${show(before)})`, { before: { ...before }, after: { ...after } });
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      const note = `the session settings were not changed: ${errorMessage(err)}`;
      this.tracker.stepFailed(step, note);
      return false;
    }
  }

  async deployedEnvAutomated(): Promise<boolean> {
    return (await acts.deployedEnvSupport.executeWithOptions({ summary: `${DEPLOYED_ENV_STEP}: can this worker deploy it` }, [])).automated;
  }

  async applyDeployedPublishableKey(remedy: Extract<Remedy, { kind: 'deployed_publishable_key' }>): Promise<boolean> {
    const step = DEPLOYED_ENV_STEP;
    this.tracker.waitFor(`${step}: ${remedy.changes}`);
    try {
      // The key is read inside the activity from the worker's CLERK_PUBLISHABLE_KEY: only its host is in the history.
      const change = await acts.applyDeployedPublishableKey.executeWithOptions({ summary: `${step}: set ${remedy.env}` }, [
        { env: remedy.env, host: remedy.host, marker: `clerk-incident-runbook ${this.tracker.state.incidentId} publishable key ${remedy.host}` },
      ]);
      const set = `${remedy.env} ${change.already ? 'already was' : 'is now'} the key of ${change.host} (${change.adapter})`;
      if (!change.needsRedeploy) {
        this.tracker.stepDone(step, 'succeeded', 'runbook', `${set}; live without a redeploy`, { env: remedy.env, host: change.host, adapter: change.adapter });
        return true;
      }
      // No undo on cancel: the value it replaced named another instance, which is what broke sign-in.
      const built = await redeployAndWait({ step, pollEvery: DEPLOYED_ENV_POLL_MS, readyWithin: DEPLOYED_ENV_READY_WITHIN_MS });
      if (built.outcome !== 'ready') throw new Error(`${set}, but the redeploy did not finish: ${built.reason}`);
      this.tracker.stepDone(step, 'succeeded', 'runbook', `${set}; deployment ${built.deployment.id} READY after ${formatDuration(built.waitedMs)}`, {
        env: remedy.env,
        host: change.host,
        adapter: change.adapter,
        deploymentId: built.deployment.id,
      });
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      const note = `the app's publishable key was not deployed: ${errorMessage(err)}`;
      this.tracker.stepFailed(step, note);
      return false;
    }
  }

  async verify(kind: DiagnosticKind, remedy: Remedy, opts: VerifyOptions): Promise<boolean> {
    const about = { check: remedy.check, remedy: remedy.kind };
    const unverified = (outcome: 'failed' | 'partial', note: string, details: Record<string, unknown> = about) => {
      this.tracker.stepDone(VERIFY_REMEDY, outcome, 'runbook', note, details);
      this.tracker.attention(`${VERIFY_REMEDY}: ${note}`);
      return false;
    };
    // An automated remedy that failed changed nothing: there is nothing to verify.
    const applyStep = { allowed_origins: 'update_allowed_origins', session_lifetime: 'update_session_lifetime', deployed_publishable_key: DEPLOYED_ENV_STEP, targeted_revocation: undefined, by_hand: undefined }[remedy.kind];
    const applied = applyStep ? this.tracker.state.steps.filter((s) => s.step === applyStep).at(-1) : undefined;
    if (applied?.outcome === 'failed') {
      const why = `the remedy was not applied (${applied.note})`;
      this.tracker.stepDone(VERIFY_REMEDY, 'skipped', 'runbook', why);
      this.tracker.attention(`${VERIFY_REMEDY} skipped: ${why}`);
      return false;
    }
    const sessions = SESSION_CHECKS.includes(remedy.check);
    const every = Math.min(SESSION_VERIFY_EVERY_MS, this.ctx.input.timeouts.recoveryCheckEvery);
    const within = Math.min(SESSION_VERIFY_WITHIN_MS, this.ctx.input.timeouts.recoveryWatchFor);
    const until = Date.now() + (sessions ? within : 0);
    this.tracker.waitFor(`${VERIFY_REMEDY}: ${remedy.check} again${sessions ? ` on sessions created after ${new Date(opts.since).toISOString()} (for up to ${formatDuration(within)}, as users sign in again)` : ''}`);
    for (let attempt = 1; ; attempt++) {
      const again = await this.diagnostics.run(kind, opts.userIds, sessions ? { sessionsCreatedAfter: opts.since } : {});
      const check = again?.checks.find((c) => c.id === remedy.check);
      if (check?.verdict === 'ok') {
        const probes = opts.probed ? undefined : await this.verification.probeOnce(VERIFY_REMEDY);
        const details = { ...about, ...(probes ? { probes: probes.probes } : {}) };
        // The check passes, yet the app is broken another way: the users' trouble may not be over.
        if (probes?.sees) return unverified('failed', `${remedy.check} passes after the remedy (${remedy.kind}), but the triage probes see ${probes.sees} (${probes.line}): ${check.evidence}`, details);
        this.ctx.compensations.drop('update_allowed_origins');
        const seen = !probes ? 'the triage probes ran just before (verify_fix)' : probes.clear ? 'the triage probes pass' : `the triage probes see nothing wrong but not everything (${probes.line})`;
        this.tracker.stepDone(VERIFY_REMEDY, 'succeeded', 'runbook', `${remedy.check} passes after the remedy (${remedy.kind}): ${check.evidence}; ${seen}`, details);
        return true;
      }
      // No session to judge by yet: wait for users to make some, within the bound.
      if (check?.verdict === 'skipped' && sessions && Date.now() + every <= until) {
        await sleep(every, { summary: `${VERIFY_REMEDY}: no session since the remedy yet; check ${attempt}` });
        continue;
      }
      if (check?.verdict === 'skipped') {
        return unverified('partial', `not verified: ${remedy.check} had nothing to judge by within ${formatDuration(within)} (${check.evidence}); the change stands, check it when users sign in again`);
      }
      const seen = check ? `${check.verdict}: ${check.evidence}` : 'the diagnostics could not run';
      return unverified('failed', `${remedy.check} still does not pass after the remedy (${remedy.kind}): ${seen}`);
    }
  }
}
