/**
 * The emergency auth bypass of a Clerk outage, end to end: on (time-boxed, through the deploy
 * adapter, redeployed when the platform needs it), verified on the app's own routes, a recovery
 * watch on durable timers while it is on, extensions asked of the approvers before it expires,
 * and off (on recovery, at expiry, on cancel, when anything later fails), verified too. A failed
 * off is escalated on every attempt and retried; it is never swallowed.
 *
 * The flag itself belongs to the target's bypass lease (bypass-lease.ts): this incident acquires,
 * extends and releases its hold through it, and the lease removes the flag when its last holder
 * releases or stops running. The undo (release) is registered before the set is asked for.
 *
 * Workflow code: the I/O is in the `*BypassLease`, `probe*` and `bypassSettings` activities; the
 * token stays in the worker; the flag only carries its expiry and the incident id.
 */
import { ApplicationFailure, isCancellation, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { BypassActivities } from '../activities';
import type { BypassSettings } from '../activities/bypass';
import type { BypassLeaseActivities } from '../activities/bypass-lease';
import { formatDuration, type ValidIncidentInput } from '../domain';
import { NON_RETRYABLE_ERROR_TYPES } from '../shared';
import type { LeaseAnswer, LeaseTarget } from './bypass-lease-messages';
import type { BypassRecord } from './bypass-record';
import { parseRequest, UpdateRefused, waitForApproval } from './incident-approvals';
import { actedAs } from './incident-requests';
import { actingPerson, spendNonce, type Acting } from './incident-roster';
import { actionText } from '../roster/policy';
import { errorMessage, type IncidentTracker } from './incident-state';
import type { IncidentContext } from './incident-steps';
import type { VerificationStep } from './incident-verification';
import { extendBypassRequestSchema, type ExtendBypassAnswer } from './incident-types';
import type { BypassWatch } from './incident-continue';

type ExtendRequestParsed = Omit<ReturnType<typeof extendBypassRequestSchema.parse>, 'signature' | 'nonce'> & { acting: Acting; sentAs: string };

export const DEFAULT_BYPASS_MS = 60 * 60_000;
const MAX_EXTENSIONS = 5;
/** Retries of a failed off, each escalated: about 1 h 40 min in all before it is left to a human. */
const OFF_RETRY_DELAYS_MS = [10_000, 60_000, 120_000, 300_000, 600_000, 600_000, 600_000, 600_000, 600_000, 600_000, 600_000, 600_000];
const VERIFY_EVERY_MS = 2000;
/** While the bypass is on, Clerk is checked at least this often when the worker's settings do not say. */
const DEFAULT_BYPASS_CHECK_EVERY_MS = 20_000;

const acts = proxyActivities<BypassActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 6, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});
/** The lease answers once it applied the change: a set with a redeploy can take minutes (heartbeats say it is alive). */
const lease = proxyActivities<BypassLeaseActivities>({
  startToCloseTimeout: '20 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 6 },
});

export interface BypassStep {
  /** The bypass on, time-boxed and verified. Undefined when the worker has no deploy adapter: do it by hand. */
  on(): Promise<boolean | undefined>;
  /** Whether `on` ran the automated bypass (then its off is automated too). */
  readonly automated: boolean;
  /** With the automated bypass: watch for recovery while it is on, turn it off (always), keep watching if it expired first. */
  watchWhileOn(): Promise<void>;
}

export class EmergencyBypass implements BypassStep {
  automated = false;
  private readonly tracker: IncidentTracker;
  private readonly input: ValidIncidentInput;
  private settings?: BypassSettings;
  /** The lease this incident asked for the flag (set before the set is attempted). */
  private target?: LeaseTarget;
  /** This incident's hold was released (the lease removes the flag unless another incident holds it). */
  private released = false;
  private expiresAtMs = 0;
  /** Extensions accepted and not yet applied by the lease: the limit counts them. */
  private inFlight = { count: 0, ms: 0 };
  /** Bumped when an extension moved the expiry: wakes the watch. */
  private extended = 0;
  private leaseRequests = 0;
  private offRun?: Promise<boolean>;
  private lastSeen = '';
  /** Set before the flag is asked for: releases this incident's hold (the playbook's compensation list holds this too). */
  undo?: () => Promise<void>;
  /** The recovery watch while on (`watchThenOff`); a continue-as-new carries it. */
  watch?: BypassWatch;

  constructor(
    private readonly ctx: IncidentContext,
    private readonly verification: VerificationStep,
  ) {
    this.tracker = ctx.tracker;
    this.input = ctx.input;
  }

  async on(): Promise<boolean | undefined> {
    const on = await this.turnOn((title, run) => this.ctx.compensations.push('emergency_bypass', title, run));
    this.automated = on !== undefined;
    // Not on, and the hold already released: nothing is left for a cancellation to undo.
    if (on === false && this.released) this.ctx.compensations.drop('emergency_bypass');
    return on;
  }

  async watchWhileOn(): Promise<void> {
    // A continued run whose bypass went off before it: whether Clerk had recovered is carried.
    const recovered = this.active ? await this.watchThenOff() : (this.watch?.recovered ?? false);
    // Off and verified: nothing left for a cancellation to undo.
    if (this.record?.state === 'off') this.ctx.compensations.drop('emergency_bypass');
    if (!recovered) await this.verification.watchRecovery();
  }

  get record(): BypassRecord | undefined {
    return this.tracker.state.bypass;
  }

  get active(): boolean {
    return this.record?.state === 'on';
  }

  // -- continued as new ------------------------------------------------------------------------------

  /**
   * A run continued as new with the bypass record (in the carried state): the worker's settings
   * again, the carried expiry and watch, and, while on, its undo registered again.
   */
  async restore(record: BypassRecord, watch: BypassWatch | undefined): Promise<void> {
    this.automated = true;
    this.expiresAtMs = Date.parse(record.expiresAt);
    if (watch) this.watch = watch;
    if (record.state === 'on') {
      // Registered before anything is awaited: a cancellation from the first moment turns it off.
      const flagKey = record.flagKey;
      this.undo = async () => {
        await this.restoreSettings();
        if (!(await this.turnOff('incident cancelled'))) throw new Error(`the bypass could not be turned off: a human must remove ${flagKey}`);
      };
      this.ctx.compensations.push('emergency_bypass', 'turn the emergency auth bypass off', this.undo);
    }
    await this.restoreSettings();
  }

  /** The worker's settings again and, from them, the lease this incident holds (a release goes to it). */
  private async restoreSettings(): Promise<void> {
    this.settings ??= await acts.bypassSettings.executeWithOptions({ summary: 'emergency_bypass: deploy adapter and bypass settings (continued run)' }, []);
    const { adapter, flagKey, maxDurationMs } = this.settings;
    if (adapter && !this.target) this.target = { target: adapter.target, adapter: adapter.name, needsRedeploy: adapter.needsRedeploy, flagKey, maxDurationMs };
  }

  // -- on ------------------------------------------------------------------------------------------

  /**
   * Turn the bypass on, time-boxed, and verify it on the app. Undefined when the worker has no
   * deploy adapter: a human does it. False when
   * it could not be turned on (recorded; off has already run if anything was applied).
   */
  async turnOn(pushUndo: (title: string, run: () => Promise<void>) => void): Promise<boolean | undefined> {
    const step = 'emergency_bypass';
    const settings = await acts.bypassSettings.executeWithOptions({ summary: `${step}: deploy adapter and bypass settings` }, []);
    if (!settings.adapter) {
      this.tracker.record(step, 'runbook', 'no deploy adapter is configured (DEPLOY_ADAPTER, docs/bypass.md): the bypass is done by hand');
      return undefined;
    }
    this.settings = settings;
    const { adapter, flagKey } = settings;
    const asked = this.input.bypass?.duration ?? DEFAULT_BYPASS_MS;
    const durationMs = Math.min(asked, settings.maxDurationMs);
    const capped = asked > durationMs ? ` (asked ${formatDuration(asked)}, capped by BYPASS_MAX_DURATION)` : '';
    const how = `${flagKey} via ${adapter.name}${adapter.needsRedeploy ? ' + redeploy' : ''}`;
    if (this.input.dryRun) {
      this.tracker.stepDone(step, 'not_needed', 'runbook', `dry run: would turn the bypass on (${how}) for ${formatDuration(durationMs)}${capped}`);
      return false;
    }
    const onSince = Date.now();
    this.expiresAtMs = onSince + durationMs;
    const expiresAt = new Date(this.expiresAtMs).toISOString();
    this.target = { target: adapter.target, adapter: adapter.name, needsRedeploy: adapter.needsRedeploy, flagKey, maxDurationMs: settings.maxDurationMs };
    // Registered before the set is asked for: a cancel while the lease sets it releases this hold,
    // and the lease, which finishes the set first, then removes the flag.
    this.undo = async () => {
      if (!(await this.turnOff('incident cancelled'))) throw new Error(`the bypass could not be turned off: a human must remove ${flagKey}`);
    };
    pushUndo('turn the emergency auth bypass off', this.undo);
    this.tracker.waitFor(`${step}: setting ${how}, until ${expiresAt}`);
    let held: LeaseAnswer;
    try {
      held = await lease.acquireBypassLease.executeWithOptions({ summary: `${step}: set ${flagKey} until ${expiresAt} (${adapter.name}${adapter.needsRedeploy ? ' + redeploy' : ''}, through the bypass lease)` }, [
        { target: this.target, incidentId: this.tracker.state.incidentId, until: expiresAt, updateId: this.leaseUpdateId('acquire') },
      ]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      const note = `could not set ${how}: ${errorMessage(err)}; check on the platform that ${flagKey} is not set`;
      this.tracker.stepFailed(step, note);
      await this.tracker.notify('needs_attention', 'Emergency bypass could not be turned on', note);
      // Drop this hold: the lease removes whatever of the set may have landed.
      await this.turnOff(`${step} failed`);
      return false;
    }
    const holds = held.holderUntil ?? expiresAt;
    this.expiresAtMs = Date.parse(holds);
    const d = held.flag.deployment;
    this.tracker.state.bypass = { state: 'on', adapter: adapter.name, flagKey, onSince: new Date(onSince).toISOString(), expiresAt: holds, verified: [], extensions: [], ...(d ? { deployment: { id: d.id, url: d.url } } : {}) };
    const shared = held.heldBy.length > 1 ? `; held with ${held.heldBy.length - 1} other incident(s), the flag says until ${held.flag.until}` : '';
    this.tracker.record(step, 'runbook', `${flagKey} set until ${holds} (${formatDuration(this.expiresAtMs - onSince)}${capped}) via ${adapter.name}${shared}`, { until: holds, adapter: adapter.name, flagUntil: held.flag.until });
    if (d) this.tracker.record(step, 'runbook', `deployment ${d.id} (${d.url ?? 'no URL'}) READY after ${formatDuration(d.waitedMs)}`, { deploymentId: d.id, url: d.url, state: d.state });

    const failed = async (why: string) => {
      this.tracker.stepDone(step, 'failed', 'runbook', why);
      this.tracker.attention(`${step} failed: ${why}`);
      await this.tracker.notify('needs_attention', 'Emergency bypass failed', `${why}. Turning it off again.`);
      await this.turnOff(`${step} failed`);
      return false;
    };
    const verified = await this.verify('on', step);
    if (!verified.ok) return failed(`the app does not show X-Auth-Bypass: true within ${formatDuration(this.input.bypass?.verifyWithin ?? 60_000)}: ${verified.seen.join('; ')}`);
    this.tracker.state.bypass.verified = verified.seen;
    this.tracker.stepDone(step, 'succeeded', 'runbook', `auth bypass on until ${holds} (${how}); verified: ${verified.seen.join('; ')}`, {
      until: holds,
      adapter: adapter.name,
      deployment: this.tracker.state.bypass.deployment ?? null,
      verified: verified.seen,
    });
    await this.tracker.notify(
      'action_needed',
      'Emergency auth bypass is ON',
      `Users reach the app without sign-in until ${holds} (admin, billing and API keys stay closed). It goes off by itself when Clerk recovers or at that time. ` +
        `To keep it on longer, an approver sends the extendBypass update: {"approver":"<you>","extendBy":"30m","reason":"<why>"}.`,
    );
    return true;
  }

  /** Probe the app until it shows `expect` or `verifyWithin` runs out (durable timers). */
  private async verify(expect: 'on' | 'off', step: string): Promise<{ ok: boolean; seen: string[] }> {
    const within = this.input.bypass?.verifyWithin ?? 60_000;
    const timeoutMs = this.input.timeouts.probe;
    const deadline = Date.now() + within;
    let seen: string[] = [];
    for (let check = 1; ; check++) {
      try {
        const p = await acts.probeBypass.executeWithOptions(
          { summary: `${step}: does the app show the bypass ${expect}? (check ${check})`, startToCloseTimeout: timeoutMs * 2 + 10_000, retry: { maximumAttempts: 2 } },
          [{ expect, timeoutMs }],
        );
        seen = p.seen;
        if (p.verified) return { ok: true, seen };
      } catch (err) {
        if (isCancellation(err)) throw err;
        seen = [`probe failed: ${errorMessage(err)}`];
      }
      if (Date.now() + VERIFY_EVERY_MS > deadline) return { ok: false, seen };
      await sleep(VERIFY_EVERY_MS, { summary: `${step}: verify the bypass ${expect} again` });
    }
  }

  // -- while on --------------------------------------------------------------------------------------

  /**
   * While the bypass is on: check Clerk every `recoveryCheckEvery` (status page `none` and the
   * Backend API 200, N checks in a row), ask for an extension before it expires, then turn it
   * off. True when Clerk recovered meanwhile (`recovery_watch` is recorded as succeeded).
   */
  async watchThenOff(): Promise<boolean> {
    const settings = this.settings as BypassSettings;
    // While auth is off, Clerk is checked at least every BYPASS_RECOVERY_CHECK_EVERY (default 20 s), whatever the incident's slower default.
    const every = Math.min(this.input.timeouts.recoveryCheckEvery, settings.recoveryCheckEveryMs ?? DEFAULT_BYPASS_CHECK_EVERY_MS);
    const needed = settings.recoveryProbes;
    this.tracker.setStatus('bypass_active', `auth bypassed until ${this.record?.expiresAt}`);
    // Where the watch is, in one object a continue-as-new carries (a continued run resumes it).
    const w: BypassWatch = (this.watch ??= { streak: 0, checks: 0, lastCheck: Date.now(), warnedFor: 0, recovered: false });
    let offReason = '';
    // Wakes early when an extension moved the expiry (or the server suggests continue-as-new).
    const wakeOn = (seen: number, until: number, summary: string) => this.ctx.guard.wait(() => this.extended !== seen, Math.max(1, until - Date.now()), summary);
    try {
      // Continued while asking to turn it off after recovery: ask on (the same gate).
      if (w.recovered && this.tracker.state.gates.some((g) => g.step === 'bypass_off' && !g.outcome) && (await this.offApproved())) offReason = 'Clerk recovered';
      while (!offReason) {
        const seenExtensions = this.extended;
        const now = Date.now();
        if (now >= this.expiresAtMs) {
          offReason = `it expired at ${new Date(this.expiresAtMs).toISOString()} and nobody extended it`;
          this.tracker.record('emergency_bypass', 'runbook', `the bypass expired: ${offReason}`);
          break;
        }
        const warnAt = this.expiresAtMs - this.warnBefore();
        if (w.warnedFor !== this.expiresAtMs && now >= warnAt) {
          w.warnedFor = this.expiresAtMs;
          await this.askToExtend();
        }
        if (w.recovered) {
          // Off waits for an approval that was refused: hold until expiry (extensions still apply).
          await wakeOn(seenExtensions, w.warnedFor === this.expiresAtMs ? this.expiresAtMs : warnAt, 'emergency_bypass: on until it expires (turning it off was refused)');
          continue;
        }
        if (now - w.lastCheck >= every) {
          w.lastCheck = now;
          w.checks += 1;
          const healthy = await this.checkRecovery(w.checks);
          w.streak = healthy ? w.streak + 1 : 0;
          if (w.streak >= needed) {
            w.recovered = true;
            this.tracker.stepDone('recovery_watch', 'succeeded', 'runbook', `Clerk recovered: status page none and Backend API 200 on ${needed} check(s) in a row (${w.checks} check(s) while auth was bypassed)`, { checks: w.checks, needed });
            if (await this.offApproved()) {
              offReason = 'Clerk recovered';
              break;
            }
            continue;
          }
        }
        this.tracker.waitFor(
          `Clerk to recover (${w.streak}/${needed} healthy checks in a row) while auth is bypassed until ${new Date(this.expiresAtMs).toISOString()}; next check in ${formatDuration(Math.max(0, w.lastCheck + every - Date.now()))}`,
        );
        await wakeOn(seenExtensions, Math.min(w.lastCheck + every, this.expiresAtMs, w.warnedFor === this.expiresAtMs ? Infinity : warnAt), 'emergency_bypass: next recovery check');
      }
    } catch (err) {
      if (isCancellation(err)) throw err;
      // Whatever failed while on: the bypass still goes off.
      offReason = `the recovery watch failed: ${errorMessage(err)}`;
      this.tracker.attention(`recovery watch failed while the bypass was on: ${errorMessage(err)}`);
    }
    await this.turnOff(offReason);
    return w.recovered;
  }

  private warnBefore(): number {
    const total = this.expiresAtMs - Date.parse(this.record?.onSince ?? new Date().toISOString());
    return Math.min(10 * 60_000, Math.max(1000, Math.floor(total / 4)));
  }

  private async checkRecovery(n: number): Promise<boolean> {
    try {
      const p = await acts.probeRecovery.executeWithOptions(
        { summary: `monitoring: Clerk status page and Backend API (check ${n}, bypass on)`, startToCloseTimeout: this.input.timeouts.probe * 2 + 10_000, retry: { maximumAttempts: 2 } },
        [{ timeoutMs: this.input.timeouts.probe }],
      );
      const seen = `status page ${p.indicator}, Backend API ${p.backendStatus ?? p.backendApi}${p.healthy ? ' (healthy)' : ''}`;
      // The timeline gets a line when what Clerk shows changes (and every healthy check), not every check.
      if (seen !== this.lastSeen || p.healthy) this.tracker.record('recovery_watch', 'runbook', `check ${n}: ${seen}`);
      this.lastSeen = seen;
      return p.healthy;
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.tracker.record('recovery_watch', 'runbook', `check ${n} could not run: ${errorMessage(err)}`);
      this.lastSeen = '';
      return false;
    }
  }

  /** BYPASS_OFF_NEEDS_APPROVAL: one approver confirms turning it off; nobody deciding in time turns it off too. */
  private async offApproved(): Promise<boolean> {
    if (!this.settings?.offNeedsApproval) return true;
    const left = Math.max(1000, this.expiresAtMs - Date.now());
    const own = this.input.timeouts.steps.bypass_off;
    const decideWithin = Math.min(own?.decideWithin ?? this.input.timeouts.decideWithin, left);
    const escalateAfter = Math.min(own?.escalateAfter ?? this.input.timeouts.escalateAfter, Math.max(1, decideWithin - 1));
    const outcome = await waitForApproval(this.tracker, { step: 'bypass_off', title: 'Clerk has recovered: turn the emergency auth bypass off', requestedBy: 'runbook', escalateAfter, decideWithin, guard: this.ctx.guard });
    if (outcome === 'rejected') {
      this.tracker.record('bypass_off', 'runbook', `turning the bypass off was rejected: it stays on until ${new Date(this.expiresAtMs).toISOString()} (or an extension)`);
      return false;
    }
    if (outcome === 'timed_out') this.tracker.record('bypass_off', 'runbook', 'nobody decided on turning the bypass off: off anyway (the safe side of a bypass)');
    return true;
  }

  private async askToExtend(): Promise<void> {
    const at = new Date(this.expiresAtMs).toISOString();
    const text =
      `The emergency auth bypass expires at ${at}; then it goes off and users must sign in through Clerk again. ` +
      `To keep it on, an approver sends the extendBypass update before then: {"approver":"<you>","extendBy":"30m","reason":"<why>"} ` +
      `(Temporal UI: More Actions → Send an Update → extendBypass).`;
    this.tracker.record('emergency_bypass', 'runbook', `expires at ${at}: approvers asked to extend it (extendBypass) or let it go off`);
    await this.tracker.notify('action_needed', 'Emergency bypass expires soon', text);
  }

  validateExtend(raw: unknown): ExtendRequestParsed {
    const req = parseRequest(extendBypassRequestSchema, raw);
    const b = this.record;
    if (!b || b.state !== 'on') throw new UpdateRefused(`update: the emergency auth bypass is not on${b ? ` (it is ${b.state})` : ''}; nothing to extend`);
    if (this.offRun) throw new UpdateRefused('update: the emergency auth bypass is being turned off; too late to extend it');
    const { approvers } = this.tracker.state;
    // With a roster its policy decides who may extend (incident-roster.ts); without, a listed approver.
    const acting = this.tracker.state.roster
      ? actingPerson(this.tracker, { action: 'extend', step: 'emergency_bypass', field: 'approver', who: req.approver, text: actionText(req), signature: req.signature, nonce: req.nonce })
      : { person: req.approver };
    if (!this.tracker.state.roster && !approvers.includes(req.approver)) throw new UpdateRefused(`update.approver: ${req.approver} is not on the approver list (${approvers.join(', ') || 'empty'})`);
    // Applied and in flight both count: two extensions sent together cannot both pass the limit.
    const count = b.extensions.length + this.inFlight.count;
    if (count >= MAX_EXTENSIONS) throw new UpdateRefused(`update: the bypass was already extended ${count} times (at most ${MAX_EXTENSIONS})`);
    const max = this.settings?.maxDurationMs ?? 0;
    const total = this.expiresAtMs + this.inFlight.ms + req.extendBy - Date.parse(b.onSince);
    if (total > max) {
      throw new UpdateRefused(`update.extendBy: the bypass would stay on ${formatDuration(total)} in all; at most ${formatDuration(max)} (BYPASS_MAX_DURATION)`);
    }
    const { signature: _s, nonce: _n, ...rest } = req;
    return { ...rest, approver: acting.person, acting, sentAs: req.approver };
  }

  /**
   * Extend this incident's hold through the lease; answers once the flag says so (and the redeploy
   * carrying it is live), with the expiry the flag carries. A failed extension fails the update.
   */
  async extend(raw: unknown): Promise<ExtendBypassAnswer> {
    const req = this.validateExtend(raw);
    spendNonce(this.tracker.state, req.acting);
    const b = this.record as BypassRecord;
    const target = this.target as LeaseTarget;
    this.inFlight = { count: this.inFlight.count + 1, ms: this.inFlight.ms + req.extendBy };
    this.tracker.record('emergency_bypass', req.approver, `extension by ${formatDuration(req.extendBy)} requested: ${req.reason}${actedAs(req.acting, req.sentAs)}`, req.acting.fingerprint ? { fingerprint: req.acting.fingerprint } : undefined);
    let answer: LeaseAnswer;
    try {
      answer = await lease.extendBypassLease.executeWithOptions({ summary: `emergency_bypass: extend ${b.flagKey} by ${formatDuration(req.extendBy)} (bypass lease)` }, [
        { target, extendByMs: req.extendBy, updateId: this.leaseUpdateId('extend') },
      ]);
    } catch (err) {
      this.inFlight = { count: this.inFlight.count - 1, ms: this.inFlight.ms - req.extendBy };
      if (isCancellation(err)) throw err;
      const note = `extending the bypass by ${formatDuration(req.extendBy)} failed: ${errorMessage(err)}; it still expires at ${b.expiresAt}`;
      this.tracker.record('emergency_bypass', 'runbook', note);
      this.tracker.attention(note);
      await this.tracker.notify('needs_attention', 'Emergency bypass extension failed', note);
      throw ApplicationFailure.create({ type: 'BypassExtensionFailed', message: note, nonRetryable: true });
    }
    // Applied: it leaves the in-flight sum as it joins the expiry, in one step.
    this.inFlight = { count: this.inFlight.count - 1, ms: this.inFlight.ms - req.extendBy };
    const holds = Math.max(this.expiresAtMs, Date.parse(answer.holderUntil ?? b.expiresAt));
    this.expiresAtMs = holds;
    const expiresAt = new Date(holds).toISOString();
    b.expiresAt = expiresAt;
    const d = answer.flag.deployment;
    if (d) b.deployment = { id: d.id, url: d.url };
    b.extensions.push({ approver: req.approver, extendByMs: req.extendBy, reason: req.reason, at: new Date().toISOString(), expiresAt: answer.holderUntil ?? expiresAt });
    this.tracker.record('emergency_bypass', req.approver, `bypass extended by ${formatDuration(req.extendBy)} until ${expiresAt}: ${req.reason}`, { expiresAt, flagUntil: answer.flag.until, deployment: b.deployment ?? null });
    this.extended += 1;
    this.tracker.publish();
    const flagUntil = answer.flag.until ?? expiresAt;
    const others = flagUntil !== expiresAt ? ` (the flag says until ${flagUntil}: another incident holds it longer)` : '';
    return { expiresAt, flagUntil, extensions: b.extensions.length, message: `the bypass stays on until ${expiresAt}${others}; the flag is updated` };
  }

  private leaseUpdateId(what: string): string {
    const { workflowId, runId } = workflowInfo();
    this.leaseRequests += 1;
    return `${workflowId}/${runId}/bypass-${what}-${this.leaseRequests}`;
  }

  // -- off -------------------------------------------------------------------------------------------

  /**
   * Release this incident's hold: the lease removes the flag (redeploy when needed) and verifies
   * the app no longer shows it, unless another incident still holds it. Runs once however many
   * callers ask (recovery, expiry, cancel, a failed step); retried and escalated until it works or
   * the retries run out (then `bypass_off` fails and a human must remove the flag).
   */
  turnOff(reason: string): Promise<boolean> {
    if (!this.target || this.released) return Promise.resolve(true);
    this.offRun ??= this.off(reason).catch((err: unknown) => {
      // A cancelled off (the incident was cancelled meanwhile) is started again by the compensation.
      this.offRun = undefined;
      throw err;
    });
    return this.offRun;
  }

  private async off(reason: string): Promise<boolean> {
    const b = this.record;
    const target = this.target as LeaseTarget;
    const { flagKey } = target;
    const step = 'bypass_off';
    for (let attempt = 1; ; attempt++) {
      this.tracker.waitFor(`${step}: ${reason}: releasing ${flagKey} (${target.adapter})${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
      try {
        const answer = await lease.releaseBypassLease.executeWithOptions({ summary: `${step}: release ${flagKey} (${target.adapter}, through the bypass lease)` }, [
          { target, reason, verifyWithinMs: this.input.bypass?.verifyWithin ?? 60_000, probeTimeoutMs: this.input.timeouts.probe, updateId: this.leaseUpdateId('release') },
        ]);
        this.released = true;
        const d = answer.flag.deployment;
        const others = answer.heldBy.map((h) => `${h.incidentId} (until ${h.until})`).join(', ');
        if (!b) {
          // Cancelled (or failed) while the set was in flight: nothing was on for this incident's record.
          this.tracker.record(step, 'runbook', others ? `hold released (${reason}); ${flagKey} stays on for ${others}` : `hold released (${reason}); the lease removed whatever of ${flagKey} had landed`, { flag: answer.flag.state });
          return true;
        }
        if (d && target.needsRedeploy && !others) {
          this.tracker.record(step, 'runbook', `deployment ${d.id} (${d.url ?? 'no URL'}) READY after ${formatDuration(d.waitedMs)}`, { deploymentId: d.id, url: d.url });
          b.deployment = { id: d.id, url: d.url };
        }
        const now = Date.now();
        b.state = 'off';
        b.offAt = new Date(now).toISOString();
        b.offReason = reason;
        b.bypassedForMs = now - Date.parse(b.onSince);
        const verified = answer.verified ?? [];
        const note = others
          ? `this incident released the auth bypass (${reason}) after ${formatDuration(b.bypassedForMs)}; ${flagKey} stays on for ${others}: the lease removes it when they release it or stop running`
          : `auth bypass off (${reason}); auth was bypassed for ${formatDuration(b.bypassedForMs)} (${b.onSince} → ${b.offAt}); verified: ${verified.join('; ')}`;
        this.tracker.stepDone(step, 'succeeded', 'runbook', note, { bypassedForMs: b.bypassedForMs, onSince: b.onSince, offAt: b.offAt, reason, verified, heldBy: answer.heldBy });
        if (this.tracker.state.status === 'bypass_active') this.tracker.setStatus('monitoring', others ? 'this incident released the emergency auth bypass' : 'the emergency auth bypass is off');
        await this.tracker.notify('status_changed', others ? 'Emergency auth bypass released (still held by another incident)' : 'Emergency auth bypass is OFF', note);
        return true;
      } catch (err) {
        if (isCancellation(err)) throw err;
        const delay = OFF_RETRY_DELAYS_MS[attempt - 1];
        const note = `turning the emergency auth bypass off failed (attempt ${attempt}): ${errorMessage(err)}`;
        const until = b?.expiresAt ?? new Date(this.expiresAtMs).toISOString();
        const text = `${note}. Users still reach the app without sign-in until the flag's own expiry (${until}); the bypass lease keeps retrying. ${delay !== undefined ? `Retrying in ${formatDuration(delay)}; ` : ''}to end it now, remove ${flagKey} on the platform${target.needsRedeploy ? ' and redeploy production' : ''}.`;
        if (attempt === 1) this.tracker.attention(`bypass_off failing: ${errorMessage(err)}; remove ${flagKey} by hand if it keeps failing`);
        this.tracker.record(step, 'runbook', note);
        await this.tracker.notify('needs_attention', delay !== undefined ? 'Emergency bypass could NOT be turned off (retrying)' : 'Emergency bypass could NOT be turned off: a human must', text);
        if (delay === undefined) {
          if (b) b.state = 'off_failed';
          this.tracker.stepDone(step, 'failed', 'runbook', `${note}; gave up after ${attempt} attempts: a human must remove ${flagKey}`);
          this.tracker.attention(`bypass_off failed: a human must remove ${flagKey}`);
          return false;
        }
        await sleep(delay, { summary: `${step}: retry ${attempt + 1} in ${formatDuration(delay)}` });
      }
    }
  }
}
