/**
 * The auth-bypass flag as a lease: one `bypassLeaseWorkflow` per deployment target and flag is the
 * only writer of the flag. It keeps the incidents that rely on it (holders, each with its own
 * expiry); the flag's expiry is the latest of theirs, and when the last holder releases it (or
 * stops running, for any reason) the lease removes the flag, redeploys when the platform needs it,
 * and verifies on the app that the bypass is off. Incidents talk to it through updates, sent by
 * activities with update-with-start (workflow code cannot send updates: see activities/bypass-lease.ts).
 *
 * `bypassSweepWorkflow`, run every minute by a Schedule, is the backstop outside the lease: a flag
 * the platform shows that no running holder owns is removed through the lease.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { BypassActivities } from '../activities';
import type { BypassLeaseActivities, HolderLiveness } from '../activities/bypass-lease';
import { z } from 'zod';
import { describeIssues, formatDuration, plainLine } from '../domain';
import { NON_RETRYABLE_ERROR_TYPES } from '../shared';
import {
  acquireBypass,
  extendBypassLease,
  getBypassLease,
  reconcileBypass,
  releaseBypass,
  type AcquireRequest,
  type ExtendRequest,
  type LeaseAnswer,
  type LeaseFlag,
  type LeaseHolder,
  type LeaseTarget,
  type LeaseView,
  type ReconcileRequest,
  type ReleaseRequest,
} from './bypass-lease-messages';
import { redeployAndWait } from './deploy-wait';

export interface BypassLeaseInput {
  target: LeaseTarget;
  /** Carried over continue-as-new. */
  holders?: LeaseHolder[];
  /** What the platform has; unset: `absent` for a lease an acquire starts, `unknown` for one a release or the sweep starts. */
  flag?: LeaseFlag;
  /** Runs that released it (`workflowId/runId`): a late acquire of theirs is refused. */
  released?: string[];
  log?: LeaseView['log'];
}

/** Holders are checked this often: a holder that stopped running loses the flag within this plus the clear. */
const LEASE_CHECK_EVERY_MS = 30_000;
/** A holder past its own expiry by this much is dropped even if its run still runs (it should have released). */
const EXPIRED_GRACE_MS = 60_000;
/** Retries of a failed clear (the flag must go): then every 5 minutes until it works. */
const CLEAR_RETRY_MS = [10_000, 30_000, 60_000, 120_000, 300_000];
const HISTORY_EVENTS_BEFORE_NEW_RUN = 5000;
const DEPLOY_POLL_MS = 2000;
const DEPLOY_READY_WITHIN_MS = 15 * 60_000;
const VERIFY_EVERY_MS = 2000;
const DEFAULT_VERIFY = { verifyWithinMs: 60_000, probeTimeoutMs: 5000 };
const RELEASED_KEPT = 200;
const LOG_KEPT = 50;

const acts = proxyActivities<BypassActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 6, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});
const liveness = proxyActivities<BypassLeaseActivities>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3 } });

type Outcome = Pick<LeaseAnswer, 'ok' | 'error' | 'verified'>;

// Any client with namespace access can send these: each request is checked before it reaches history.
const id = plainLine(z.string().trim().min(1).max(1000));
const holderRef = { workflowId: id, runId: plainLine(z.string().trim().min(1).max(100)) };
const REQUESTS = {
  acquire: z.strictObject({ ...holderRef, incidentId: id, until: z.iso.datetime({ offset: true }) }),
  extend: z.strictObject({ ...holderRef, extendByMs: z.number().int().min(1000).max(86_400_000) }),
  release: z.strictObject({
    ...holderRef,
    reason: plainLine(z.string().trim().min(1).max(500)),
    verifyWithinMs: z.number().int().min(1000).max(15 * 60_000),
    probeTimeoutMs: z.number().int().min(100).max(60_000),
  }),
  reconcile: z.strictObject({ flagSeen: z.union([z.boolean(), z.literal('unknown')]), by: plainLine(z.string().trim().min(1).max(200)) }),
};

function checked<T>(schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new Error(describeIssues(parsed.error, 'update'));
  return parsed.data;
}

function failureOf(err: unknown): { type: string; message: string } {
  const inner = err instanceof ActivityFailure && err.cause ? err.cause : err;
  const type = inner instanceof ApplicationFailure && inner.type ? inner.type : 'BypassLeaseFailed';
  return { type, message: inner instanceof Error ? inner.message : String(inner) };
}

class Lease {
  readonly target: LeaseTarget;
  private readonly holders = new Map<string, LeaseHolder>();
  private flag: LeaseFlag;
  private readonly released: string[];
  private readonly log: LeaseView['log'];
  /** Changes asked for, and the last one the platform reflects (or failed to). */
  private requested = 0;
  private done = 0;
  private outcome: Outcome = { ok: true };
  private verifyWith = DEFAULT_VERIFY;
  private clearRetry?: { at: number; attempt: number };
  private nextCheckAt = 0;

  constructor(input: BypassLeaseInput) {
    this.target = input.target;
    for (const h of input.holders ?? []) this.holders.set(h.workflowId, h);
    this.flag = input.flag ?? { state: 'absent', until: null };
    this.released = [...(input.released ?? [])];
    this.log = [...(input.log ?? [])];
    // A lease that starts with the flag in doubt and nobody holding it removes it at once.
    if (this.flag.state !== 'absent' || this.holders.size) this.requested = 1;
  }

  view(): LeaseView {
    return { target: this.target, flag: this.flag, holders: [...this.holders.values()], log: this.log };
  }

  private note(line: string): void {
    this.log.push({ at: new Date().toISOString(), line });
    this.log.splice(0, Math.max(0, this.log.length - LOG_KEPT));
  }

  private answer(holderId?: string): LeaseAnswer {
    const h = holderId ? this.holders.get(holderId) : undefined;
    return {
      ...this.outcome,
      flag: this.flag,
      holderUntil: h?.until ?? null,
      heldBy: [...this.holders.values()].map((x) => ({ incidentId: x.incidentId, until: x.until })),
    };
  }

  /** Ask for the platform to reflect the holders now; resolves when the lease has tried. */
  private async applied(): Promise<void> {
    const mine = ++this.requested;
    await condition(() => this.done >= mine);
  }

  private wasReleased(workflowId: string, runId: string): boolean {
    return this.released.includes(`${workflowId}/${runId}`);
  }

  private markReleased(workflowId: string, runId: string): void {
    this.released.push(`${workflowId}/${runId}`);
    this.released.splice(0, Math.max(0, this.released.length - RELEASED_KEPT));
  }

  // -- updates ---------------------------------------------------------------------------------------

  validateAcquire(raw: AcquireRequest): void {
    const req = checked(REQUESTS.acquire, raw);
    if (this.wasReleased(req.workflowId, req.runId)) throw new Error(`${req.workflowId} (run ${req.runId}) already released the bypass; it cannot take it again`);
    if (!(Date.parse(req.until) > Date.now())) throw new Error(`acquire.until: ${req.until} is not in the future`);
  }

  async acquire(req: AcquireRequest): Promise<LeaseAnswer> {
    const now = Date.now();
    const had = this.holders.get(req.workflowId);
    const since = had?.since ?? new Date(now).toISOString();
    const bound = Date.parse(since) + this.target.maxDurationMs;
    const until = new Date(Math.min(Date.parse(req.until), bound)).toISOString();
    this.holders.set(req.workflowId, { workflowId: req.workflowId, runId: req.runId, incidentId: req.incidentId, since, until, extensions: had?.extensions ?? 0 });
    this.note(`${req.incidentId} holds the bypass until ${until}`);
    if (this.holders.size === 1) this.nextCheckAt = now + LEASE_CHECK_EVERY_MS;
    await this.applied();
    return this.answer(req.workflowId);
  }

  validateExtend(raw: ExtendRequest): void {
    const req = checked(REQUESTS.extend, raw);
    const h = this.holders.get(req.workflowId);
    if (!h || this.wasReleased(req.workflowId, req.runId)) throw new Error(`${req.workflowId} does not hold the bypass; nothing to extend`);
    const total = Date.parse(h.until) + req.extendByMs - Date.parse(h.since);
    if (total > this.target.maxDurationMs) {
      throw new Error(`extendBy: the bypass would stay on ${formatDuration(total)} in all; at most ${formatDuration(this.target.maxDurationMs)} (BYPASS_MAX_DURATION)`);
    }
  }

  async extend(req: ExtendRequest): Promise<LeaseAnswer> {
    // Counted at once, before the flag is written: a second extension validated meanwhile sees this one.
    const h = this.holders.get(req.workflowId) as LeaseHolder;
    h.until = new Date(Date.parse(h.until) + req.extendByMs).toISOString();
    h.extensions += 1;
    this.note(`${h.incidentId} extended its hold by ${formatDuration(req.extendByMs)} until ${h.until}`);
    await this.applied();
    return this.answer(req.workflowId);
  }

  async release(req: ReleaseRequest): Promise<LeaseAnswer> {
    const h = this.holders.get(req.workflowId);
    this.markReleased(req.workflowId, req.runId);
    if (h) {
      this.markReleased(h.workflowId, h.runId);
      this.holders.delete(req.workflowId);
      this.note(`${h.incidentId} released the bypass (${req.reason})`);
    }
    this.verifyWith = { verifyWithinMs: req.verifyWithinMs, probeTimeoutMs: req.probeTimeoutMs };
    await this.applied();
    return this.answer();
  }

  async reconcile(req: ReconcileRequest): Promise<LeaseAnswer> {
    if (req.flagSeen === true && this.flag.state === 'absent') {
      this.flag = { ...this.flag, state: 'unknown' };
      this.note(`${req.by}: the platform shows the flag set while the lease thought it absent`);
    }
    await this.checkHolders(req.by);
    await this.applied();
    return this.answer();
  }

  // -- the loop --------------------------------------------------------------------------------------

  private desired(): { until: string; incidentId: string } | null {
    let top: LeaseHolder | undefined;
    for (const h of this.holders.values()) if (!top || h.until > top.until) top = h;
    return top ? { until: top.until, incidentId: top.incidentId } : null;
  }

  private clearDue(): boolean {
    return this.clearRetry !== undefined && Date.now() >= this.clearRetry.at;
  }

  private newRunDue(): boolean {
    const info = workflowInfo();
    return info.continueAsNewSuggested || info.historyLength > HISTORY_EVENTS_BEFORE_NEW_RUN;
  }

  async run(): Promise<never> {
    for (;;) {
      if (this.requested > this.done || this.clearDue()) {
        const gen = this.requested;
        this.outcome = await this.apply();
        this.done = gen;
        continue;
      }
      if (this.holders.size && Date.now() >= this.nextCheckAt) {
        await this.checkHolders('liveness check');
        this.nextCheckAt = Date.now() + LEASE_CHECK_EVERY_MS;
        continue;
      }
      if (this.newRunDue() && allHandlersFinished()) {
        await continueAsNew<typeof bypassLeaseWorkflow>({ target: this.target, holders: [...this.holders.values()], flag: this.flag, released: this.released, log: this.log });
      }
      const wakeAt = Math.min(this.holders.size ? this.nextCheckAt : Infinity, this.clearRetry?.at ?? Infinity);
      const woken = () => this.requested > this.done || (this.newRunDue() && allHandlersFinished());
      if (wakeAt === Infinity) await condition(woken);
      else await condition(woken, Math.max(1, wakeAt - Date.now()));
    }
  }

  /** Make the platform reflect the holders: set the latest expiry, or remove the flag and verify it off. */
  private async apply(): Promise<Outcome> {
    const want = this.desired();
    if (want) {
      this.clearRetry = undefined;
      if (this.flag.state === 'set' && this.flag.until === want.until) return { ok: true };
      return this.set(want);
    }
    if (this.flag.state === 'absent') {
      this.clearRetry = undefined;
      return { ok: true };
    }
    return this.clear();
  }

  private async set(want: { until: string; incidentId: string }): Promise<Outcome> {
    const { flagKey, adapter } = this.target;
    try {
      await acts.bypassSet.executeWithOptions({ summary: `bypass lease: set ${flagKey} until ${want.until} (${adapter})` }, [want]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      const failure = failureOf(err);
      // A refusal wrote nothing; anything else may have landed.
      if (!(NON_RETRYABLE_ERROR_TYPES as readonly string[]).includes(failure.type)) this.flag = { ...this.flag, state: 'unknown' };
      this.note(`setting ${flagKey} until ${want.until} failed: ${failure.message}`);
      return { ok: false, error: failure };
    }
    this.flag = { state: 'set', until: want.until };
    this.note(`${flagKey} set until ${want.until}`);
    if (!this.target.needsRedeploy) return { ok: true };
    try {
      const r = await redeployAndWait({ step: 'bypass lease', pollEvery: DEPLOY_POLL_MS, readyWithin: DEPLOY_READY_WITHIN_MS });
      this.flag.deployment = { ...r.deployment, waitedMs: r.waitedMs };
      if (r.outcome !== 'ready') return { ok: false, error: { type: 'DeployNotLive', message: `the redeploy carrying the flag is not live: ${r.reason}` } };
      return { ok: true };
    } catch (err) {
      if (isCancellation(err)) throw err;
      const failure = failureOf(err);
      return { ok: false, error: { type: failure.type, message: `the redeploy carrying the flag could not start: ${failure.message}` } };
    }
  }

  private async clear(): Promise<Outcome> {
    const { flagKey, adapter } = this.target;
    const attempt = (this.clearRetry?.attempt ?? 0) + 1;
    try {
      await acts.bypassClear.executeWithOptions({ summary: `bypass lease: remove ${flagKey} (${adapter})${attempt > 1 ? `, attempt ${attempt}` : ''}` }, []);
      this.flag = { state: 'unknown', until: null };
      if (this.target.needsRedeploy) {
        const r = await redeployAndWait({ step: 'bypass lease', pollEvery: DEPLOY_POLL_MS, readyWithin: DEPLOY_READY_WITHIN_MS });
        this.flag.deployment = { ...r.deployment, waitedMs: r.waitedMs };
        if (r.outcome !== 'ready') throw ApplicationFailure.create({ type: 'DeployNotLive', message: `the redeploy without the flag is not live: ${r.reason}` });
      }
      const verified = await this.verifyOff();
      if (!verified.ok) throw ApplicationFailure.create({ type: 'BypassStillServed', message: `the app still shows the bypass: ${verified.seen.join('; ')}` });
      this.flag = { ...this.flag, state: 'absent' };
      this.clearRetry = undefined;
      this.note(`${flagKey} removed; verified: ${verified.seen.join('; ')}`);
      return { ok: true, verified: verified.seen };
    } catch (err) {
      if (isCancellation(err)) throw err;
      const failure = failureOf(err);
      if (this.flag.state === 'absent') this.flag = { ...this.flag, state: 'unknown' };
      const delay = CLEAR_RETRY_MS[Math.min(attempt - 1, CLEAR_RETRY_MS.length - 1)] as number;
      this.clearRetry = { at: Date.now() + delay, attempt };
      this.note(`removing ${flagKey} failed (attempt ${attempt}): ${failure.message}; retrying in ${formatDuration(delay)}`);
      return { ok: false, error: failure };
    }
  }

  private async verifyOff(): Promise<{ ok: boolean; seen: string[] }> {
    const { verifyWithinMs, probeTimeoutMs } = this.verifyWith;
    const deadline = Date.now() + verifyWithinMs;
    let seen: string[] = [];
    for (let check = 1; ; check++) {
      try {
        const p = await acts.probeBypass.executeWithOptions(
          { summary: `bypass lease: does the app show the bypass off? (check ${check})`, startToCloseTimeout: probeTimeoutMs * 2 + 10_000, retry: { maximumAttempts: 2 } },
          [{ expect: 'off', timeoutMs: probeTimeoutMs }],
        );
        seen = p.seen;
        if (p.verified) return { ok: true, seen };
      } catch (err) {
        if (isCancellation(err)) throw err;
        seen = [`probe failed: ${failureOf(err).message}`];
      }
      if (Date.now() + VERIFY_EVERY_MS > deadline) return { ok: false, seen };
      await sleep(VERIFY_EVERY_MS, { summary: 'bypass lease: verify the bypass off again' });
    }
  }

  /**
   * Drop every holder whose run no longer runs (terminated, reset, timed out, failed, history limit,
   * replaced by a new run) or that is well past its own expiry. A run that continued-as-new lives on
   * in its latest run. A check that cannot run keeps the holders (the next one tries again).
   */
  private async checkHolders(why: string): Promise<void> {
    const holders = [...this.holders.values()];
    if (!holders.length) return;
    let seen: HolderLiveness[];
    try {
      seen = await liveness.describeBypassHolders.executeWithOptions({ summary: `bypass lease: are the ${holders.length} holder(s) still running? (${why})` }, [
        { holders: holders.map((h) => ({ workflowId: h.workflowId, runId: h.runId })) },
      ]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      this.note(`${why}: could not check the holders: ${failureOf(err).message}`);
      return;
    }
    let dropped = false;
    for (const s of seen) {
      const h = this.holders.get(s.workflowId);
      if (!h) continue;
      const expired = Date.now() > Date.parse(h.until) + EXPIRED_GRACE_MS;
      if (s.alive && !expired) {
        if (s.runId !== h.runId) this.note(`${h.incidentId} continued as new: run ${s.runId} holds the bypass now`);
        h.runId = s.runId;
        continue;
      }
      this.holders.delete(h.workflowId);
      this.markReleased(h.workflowId, h.runId);
      this.note(`${h.incidentId} dropped (${why}): ${s.alive ? `past its expiry ${h.until}` : s.why}`);
      dropped = true;
    }
    if (dropped) this.requested += 1;
  }
}

const refusing =
  <T>(check: (req: T) => void) =>
  (req: T): void => {
    try {
      check(req);
    } catch (err) {
      throw ApplicationFailure.create({ type: 'UpdateRefused', message: err instanceof Error ? err.message : String(err), nonRetryable: true });
    }
  };

export async function bypassLeaseWorkflow(input: BypassLeaseInput): Promise<void> {
  const lease = new Lease(input);
  setHandler(getBypassLease, () => lease.view());
  setHandler(acquireBypass, (req) => lease.acquire(req), { validator: refusing<AcquireRequest>((req) => lease.validateAcquire(req)) });
  setHandler(extendBypassLease, (req) => lease.extend(req), { validator: refusing<ExtendRequest>((req) => lease.validateExtend(req)) });
  setHandler(releaseBypass, (req) => lease.release(req), { validator: refusing<ReleaseRequest>((req) => void checked(REQUESTS.release, req)) });
  setHandler(reconcileBypass, (req) => lease.reconcile(req), { validator: refusing<ReconcileRequest>((req) => void checked(REQUESTS.reconcile, req)) });
  await lease.run();
}

export interface SweepResult {
  outcome: 'no_adapter' | 'absent' | 'held' | 'removed' | 'failed';
  detail: string;
}

/** The backstop (a Schedule, every minute): a flag the platform shows that no running holder owns is removed. */
export async function bypassSweepWorkflow(): Promise<SweepResult> {
  const settings = await acts.bypassSettings.executeWithOptions({ summary: 'bypass sweep: deploy adapter and flag' }, []);
  if (!settings.adapter) return { outcome: 'no_adapter', detail: 'no deploy adapter is configured' };
  const seen = await acts.bypassFlagSeen.executeWithOptions({ summary: `bypass sweep: is ${settings.flagKey} set?` }, []);
  if (seen.present === false) return { outcome: 'absent', detail: `${settings.flagKey} is not set` };
  const target: LeaseTarget = { target: settings.adapter.target, adapter: settings.adapter.name, needsRedeploy: settings.adapter.needsRedeploy, flagKey: settings.flagKey, maxDurationMs: settings.maxDurationMs };
  const answer = await liveness.reconcileBypassLease.executeWithOptions(
    { summary: `bypass sweep: does a running incident hold ${settings.flagKey}?`, startToCloseTimeout: '20 minutes', heartbeatTimeout: '30 seconds' },
    [{ target, flagSeen: seen.present, by: `sweep ${workflowInfo().workflowId}` }],
  );
  if (answer.heldBy.length) return { outcome: 'held', detail: `held by ${answer.heldBy.map((h) => `${h.incidentId} until ${h.until}`).join(', ')}` };
  if (!answer.ok) return { outcome: 'failed', detail: answer.error?.message ?? 'the lease could not remove the flag' };
  return { outcome: 'removed', detail: `${settings.flagKey} is not held: ${answer.flag.state === 'absent' ? 'removed (or already absent) and verified off' : answer.flag.state}` };
}
