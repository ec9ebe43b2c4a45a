/**
 * The secret-key rotation of `key_compromise`, as the runbook does it (docs/key-rotation.md):
 * a new key (the operator's reference via `provideNewKey`, or Clerk's Platform API) → verify it
 * (200, same instance as the old) → push it to the deployment and check the app on the new
 * deployment → the worker's own reference now gives it → retire the old key (the operator deletes
 * it and says so with `confirmOldKeyDeleted`, or the Platform API's delay runs out) → prove it
 * dead (401 `clerk_key_invalid`) → the exposure audit. Keys appear only as fingerprints and
 * references; the values stay inside the activities. Deterministic: all I/O is in activities.
 */
import { ApplicationFailure, CancellationScope, isCancellation, proxyActivities, sleep } from '@temporalio/workflow';
import { z } from 'zod';
import type { KeyRotationActivities } from '../activities';
import type { ExposureAudit, KeyProof } from '../activities/key-rotation';
import { formatDuration } from '../domain';
import { NON_RETRYABLE_ERROR_TYPES } from '../shared';
import { redeployAndWait } from './deploy-wait';
import { awaitHuman, parseRequest, UpdateRefused } from './incident-approvals';
import { actedAs, personOnIncident } from './incident-requests';
import { spendNonce, type Acting } from './incident-roster';
import { actionText } from '../roster/policy';
import { errorMessage, type IncidentTracker } from './incident-state';
import type { Compensations, IncidentContext } from './incident-steps';
import { confirmOldKeyDeletedRequestSchema, provideNewKeyRequestSchema, type KeyRotationAnswer } from './incident-types';

const keys = proxyActivities<KeyRotationActivities>({
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    maximumAttempts: 5,
    nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES, 'NewKeyInvalid', 'NewKeyWrongInstance', 'KeyRefUnresolved', 'KeyRefRefused', 'KeyChanged', 'KeyRotationNotConfigured', 'PlatformApiRejected'],
  },
});

// -- messages ------------------------------------------------------------------------------------


type Awaiting = 'new_key' | 'old_key_deleted' | null;

/** What people send the rotation; accepted only while the rotation waits for it. */
export class KeyRotationInbox {
  awaiting: Awaiting = null;
  newKey?: z.output<typeof provideNewKeyRequestSchema>;
  deleted?: z.output<typeof confirmOldKeyDeletedRequestSchema>;

  constructor(private readonly tracker: IncidentTracker) {}

  validateNewKey(raw: unknown): z.output<typeof provideNewKeyRequestSchema> & { acting: Acting } {
    const req = parseRequest(provideNewKeyRequestSchema, raw);
    if (this.awaiting !== 'new_key') throw new UpdateRefused(`update: the rotation is not waiting for a new key (${this.awaiting ? `it waits for ${this.awaiting}` : 'no rotation is waiting'})`);
    const acting = personOnIncident(this.tracker, { action: 'provide_key', step: 'rotate_secret_key', field: 'providedBy', who: req.providedBy, text: actionText(req), signature: req.signature, nonce: req.nonce });
    return { ...req, acting };
  }

  provideNewKey(raw: unknown): KeyRotationAnswer {
    const { acting, signature: _s, nonce: _n, ...sent } = this.validateNewKey(raw);
    spendNonce(this.tracker.state, acting);
    const req = { ...sent, providedBy: acting.person };
    this.newKey = req;
    this.tracker.record('new_key', req.providedBy, `new key provided at ${req.ref}${req.note ? `: ${req.note}` : ''}${actedAs(acting, sent.providedBy)}`, { ref: req.ref, ...(acting.fingerprint ? { fingerprint: acting.fingerprint } : {}) });
    this.tracker.publish();
    return { message: `new key reference ${req.ref} received; the runbook verifies it against the Backend API before pushing it` };
  }

  validateDeleted(raw: unknown): z.output<typeof confirmOldKeyDeletedRequestSchema> & { acting: Acting } {
    const req = parseRequest(confirmOldKeyDeletedRequestSchema, raw);
    if (this.awaiting !== 'old_key_deleted') throw new UpdateRefused(`update: the rotation is not waiting for the old key's deletion (${this.awaiting ? `it waits for ${this.awaiting}` : 'no rotation is waiting'})`);
    const acting = personOnIncident(this.tracker, { action: 'confirm_deletion', step: 'rotate_secret_key', field: 'confirmedBy', who: req.confirmedBy, text: actionText(req), signature: req.signature, nonce: req.nonce });
    return { ...req, acting };
  }

  confirmDeleted(raw: unknown): KeyRotationAnswer {
    const { acting, signature: _s, nonce: _n, ...sent } = this.validateDeleted(raw);
    spendNonce(this.tracker.state, acting);
    const req = { ...sent, confirmedBy: acting.person };
    this.deleted = req;
    this.tracker.record('retire_old_key', req.confirmedBy, `says the old key is deleted${req.note ? `: ${req.note}` : ''}${actedAs(acting, sent.confirmedBy)}`, acting.fingerprint ? { fingerprint: acting.fingerprint } : undefined);
    this.tracker.publish();
    return { message: 'received; the runbook now proves the old key dead (a request with it must get 401 clerk_key_invalid)' };
  }
}

// -- the rotation ----------------------------------------------------------------------------------

export interface RotationContext {
  tracker: IncidentTracker;
  inbox: KeyRotationInbox;
  escalateAfter: number;
  decideWithin: number;
  /** Start of the exposure window (the input's `exposedAt`); null: unknown, the audit covers the worker's configured lookback. */
  exposedAt: number | null;
  /** The rotation by hand, for a worker without key references (no CLERK_SECRET_KEY_REF / CLERK_SECRET_KEY). */
  byHand: () => Promise<boolean>;
  /** Dry run: read the current key and say what would happen; change nothing. */
  dryRun: boolean;
  /** The incident's undo list: a cancelled Platform API rotation still hands the worker the new key. */
  compensations?: Compensations;
}

const DEPLOY_POLL = 2_000;
const DEPLOY_READY_WITHIN = 15 * 60_000;

/** The activity's failure message (an `ApplicationFailure`'s own, not the wrapper's). */
function why(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof ApplicationFailure ? cause.message : errorMessage(err);
}

/** Wait (escalating once) for a person to send `what`; false when nobody did in time. */
async function waitFor(ctx: RotationContext, awaiting: Exclude<Awaiting, null>, label: string, instructions: string, answered: () => boolean): Promise<boolean> {
  const { tracker, inbox } = ctx;
  inbox.awaiting = awaiting;
  const since = Date.now();
  const decideBy = new Date(since + ctx.decideWithin).toISOString();
  tracker.waitFor(`${label}: ${instructions} (by ${decideBy})`);
  await tracker.notify('action_needed', `Key rotation: ${label}`, instructions);
  const ok = await awaitHuman(tracker, {
    step: 'rotate_secret_key',
    label,
    who: 'the reporter or an approver',
    since,
    escalateAfter: ctx.escalateAfter,
    decideWithin: ctx.decideWithin,
    decideBy,
    answered,
    escalation: { kind: 'escalation', title: `Key rotation still waits: ${label}`, text: instructions },
    onEscalate: () => undefined,
    otherwise: 'the rotation stops',
  });
  inbox.awaiting = null;
  return ok;
}

/** Runs the whole rotation; true only when the new key is live everywhere and the old key is proven dead. */
export async function rotateSecretKey(ctx: RotationContext): Promise<boolean> {
  const { tracker, inbox } = ctx;
  const failed = (step: string, note: string, details?: Record<string, unknown>) => {
    tracker.stepDone(step, 'failed', 'runbook', note, details);
    tracker.attention(`${step}: ${note}`);
    return false;
  };

  tracker.waitFor('rotate_secret_key: reading the current key (fingerprint and instance)');
  let begin;
  try {
    begin = await keys.keyRotationBegin.executeWithOptions({ summary: 'rotate_secret_key: the current key and its instance' }, []);
  } catch (err) {
    if (isCancellation(err)) throw err;
    return failed('rotate_secret_key', `cannot start the rotation: ${why(err)}`);
  }
  // No key reference on this worker (no CLERK_SECRET_KEY_REF / CLERK_SECRET_KEY): done by hand.
  if (!begin) return ctx.byHand();
  const old = begin.fingerprint;
  tracker.record('rotate_secret_key', 'runbook', `current key ${old} of instance ${begin.instanceId} (worker reference ${begin.workerRef})`, { oldKey: old, instanceId: begin.instanceId });
  if (ctx.dryRun) {
    const how = begin.platform ? 'through the Platform API' : 'with a key from the Dashboard (provideNewKey)';
    tracker.stepDone('rotate_secret_key', 'not_needed', 'runbook', `dry run: key ${old} would be rotated ${how}, pushed, retired and proven dead; nothing was changed`);
    return true;
  }

  // 1-2. A new key, verified against the Backend API: same instance, 200.
  let fresh: { ref: string; fingerprint: string; oldKeysExpireAt: string | null } | undefined;
  while (!fresh) {
    let candidate: { ref: string; oldKeysExpireAt: string | null };
    if (begin.platform) {
      tracker.waitFor('new_key: Clerk Platform API rotate_secret_keys');
      try {
        // Not cancellable: a cancel while Clerk rotates must still learn the new key, or the
        // compensation below is never registered and the worker keeps a key that is expiring.
        const made = await CancellationScope.nonCancellable(() => keys.platformRotateKey.executeWithOptions({ summary: 'new_key: Platform API rotate_secret_keys, store the new key' }, []));
        candidate = made;
        tracker.stepDone('new_key', 'succeeded', 'runbook', `Platform API made key ${made.fingerprint}, stored at ${made.ref}; old keys expire ${made.oldKeysExpireAt ?? 'at once'}`, { newKey: made.fingerprint, ref: made.ref });
        // From here the old key is going away whatever happens: a cancellation completes the swap
        // for the worker, or its key file would hold a deleted key and its next incident get 401.
        ctx.compensations?.push('promote_worker_key', `the worker takes the new key ${made.fingerprint} (the Platform API expires the old key ${old})`, () =>
          keys.promoteWorkerKey.executeWithOptions({ summary: `cancellation: the worker takes key ${made.fingerprint}` }, [{ ref: made.ref, fingerprint: made.fingerprint }]),
        );
      } catch (err) {
        if (isCancellation(err)) throw err;
        return failed('new_key', `Platform API rotation failed: ${why(err)}`);
      }
    } else {
      inbox.newKey = undefined;
      const instructions = `create a new secret key in the Clerk Dashboard (API keys → Add new key; several can be active), store it where the worker can read it and send its reference: update provideNewKey { "ref": "file:/run/secrets/clerk-new" | "vault:secret/clerk#next" | "env:CLERK_SECRET_KEY_NEXT", "providedBy": "<you>" } (a reference this worker allows: KEY_REF_ALLOWED_ENV, _DIRS, _VAULT)`;
      if (!(await waitFor(ctx, 'new_key', 'a new key', instructions, () => inbox.newKey !== undefined))) {
        tracker.stepDone('new_key', 'timed_out', 'runbook', `nobody sent provideNewKey within ${formatDuration(ctx.decideWithin)}`);
        tracker.attention('rotate_secret_key: no new key was provided');
        return false;
      }
      candidate = { ref: inbox.newKey!.ref, oldKeysExpireAt: null };
    }
    tracker.waitFor(`verify_new_key: ${candidate.ref} against the Backend API`);
    try {
      const v = await keys.verifyNewKey.executeWithOptions({ summary: `verify_new_key: ${candidate.ref}` }, [{ ref: candidate.ref, instanceId: begin.instanceId, oldFingerprint: old }]);
      tracker.stepDone('verify_new_key', 'succeeded', 'runbook', `key ${v.fingerprint} answers 200 for instance ${v.instanceId}, the old key's`, { newKey: v.fingerprint, instanceId: v.instanceId });
      fresh = { ref: candidate.ref, fingerprint: v.fingerprint, oldKeysExpireAt: candidate.oldKeysExpireAt };
    } catch (err) {
      if (isCancellation(err)) throw err;
      const note = `${why(err)}; nothing was pushed`;
      if (begin.platform) return failed('verify_new_key', note);
      // Not a failed step yet: the operator sends another reference (the wait above has its own timeout).
      tracker.record('verify_new_key', 'runbook', `${note}. Send provideNewKey again with a working key`);
      await tracker.notify('needs_attention', 'New key refused', `${note}. Send provideNewKey again with a working key.`);
    }
  }

  // 3. Push to the deployment; the app must be healthy on the new deployment.
  tracker.waitFor(`push_new_key: key ${fresh.fingerprint} to the deployment`);
  try {
    const pushed = await keys.pushSecretKey.executeWithOptions({ summary: `push_new_key: key ${fresh.fingerprint} to the deployment` }, [{ ref: fresh.ref, fingerprint: fresh.fingerprint }]);
    tracker.record('push_new_key', 'runbook', `${pushed.key} set to key ${fresh.fingerprint} (${pushed.adapter})`, { adapter: pushed.adapter, newKey: fresh.fingerprint });
    let deploymentId: string | null = null;
    if (pushed.needsRedeploy) {
      const r = await redeployAndWait({ pollEvery: DEPLOY_POLL, readyWithin: DEPLOY_READY_WITHIN, step: 'push_new_key' });
      if (r.outcome !== 'ready') return failed('push_new_key', `the redeploy with key ${fresh.fingerprint} did not become READY: ${r.reason}`, { deploymentId: r.deployment.id });
      deploymentId = r.deployment.id;
    }
    const health = await keys.appHealth.executeWithOptions({ summary: 'push_new_key: the app health route' }, []);
    const onNew = deploymentId === null || health.deploymentId === null || health.deploymentId === deploymentId;
    if (!health.ok || !onNew) {
      return failed('push_new_key', `the app is not healthy on the new deployment${deploymentId ? ` ${deploymentId}` : ''}: ${health.detail}${onNew ? '' : ` (it reports deployment ${health.deploymentId})`}`);
    }
    tracker.stepDone('push_new_key', 'succeeded', 'runbook', `key ${fresh.fingerprint} deployed${deploymentId ? ` (deployment ${deploymentId} READY)` : ''}; app healthy (${health.detail})`, { newKey: fresh.fingerprint, deploymentId });
  } catch (err) {
    if (isCancellation(err)) throw err;
    return failed('push_new_key', `${why(err)}; the old key stays in use, nothing was retired`);
  }

  // The worker's own reference now gives the new key (revocation runs on it).
  let retiredRef: string | null = null;
  try {
    const p = await keys.promoteWorkerKey.executeWithOptions({ summary: `promote_worker_key: the worker uses key ${fresh.fingerprint}` }, [{ ref: fresh.ref, fingerprint: fresh.fingerprint }]);
    retiredRef = p.retiredRef;
    const how = { already: 'already gives it', written: 'was rewritten', followed: 'cannot be written (env:); this worker follows the new reference until it restarts: update its environment' }[p.how];
    tracker.record('promote_worker_key', 'runbook', `the worker's reference ${p.workerRef} ${how}; key ${fresh.fingerprint} in use`, { workerRef: p.workerRef, how: p.how, retiredRef });
    if (p.how === 'followed') tracker.attention(`set the worker's ${p.workerRef} to the new key before it restarts`);
    ctx.compensations?.drop('promote_worker_key');
  } catch (err) {
    if (isCancellation(err)) throw err;
    return failed('promote_worker_key', `the worker could not take the new key: ${why(err)}; the old key is not retired`);
  }

  // 4. Retire the old key and prove it dead; still accepted → say so and ask again.
  let proof: KeyProof | undefined;
  let platformWait = fresh.oldKeysExpireAt !== null;
  for (;;) {
    if (platformWait) {
      const wait = Date.parse(fresh.oldKeysExpireAt!) - Date.now();
      if (wait > 0) {
        tracker.waitFor(`retire_old_key: the Platform API expires key ${old} at ${fresh.oldKeysExpireAt}`);
        await sleep(wait, { summary: `retire_old_key: key ${old} expires in ${formatDuration(wait)}` });
      }
      platformWait = false;
    } else {
      inbox.deleted = undefined;
      const instructions = `delete the old key ${old} in the Clerk Dashboard (API keys), then send update confirmOldKeyDeleted { "confirmedBy": "<you>" }; the runbook then proves it dead`;
      if (!(await waitFor(ctx, 'old_key_deleted', `deletion of the old key ${old}`, instructions, () => inbox.deleted !== undefined))) {
        tracker.stepDone('retire_old_key', 'timed_out', 'runbook', `nobody confirmed the deletion of key ${old} within ${formatDuration(ctx.decideWithin)}`);
        tracker.attention(`the old key ${old} may still work: delete it in the Clerk Dashboard`);
        return false;
      }
    }
    tracker.waitFor(`retire_old_key: proving key ${old} dead`);
    proof = await keys.proveKeyDead.executeWithOptions({ summary: `retire_old_key: a request with key ${old} must get 401` }, [{ fingerprint: old, retiredRef }]);
    if (proof.state === 'dead') break;
    if (proof.state === 'unknown') return failed('retire_old_key', proof.reason);
    tracker.record('retire_old_key', 'runbook', `key ${old} is still accepted (${proof.status}): it is not deleted, the step does not pass; delete it in the Clerk Dashboard and confirm again`, { oldKey: old, status: proof.status });
    await tracker.notify('needs_attention', `Old key ${old} still works`, `A request with key ${old} was answered ${proof.status}. Delete it in the Clerk Dashboard, then send confirmOldKeyDeleted again.`);
  }
  const diedAt = Date.now();
  const after = await keys.appHealth.executeWithOptions({ summary: 'retire_old_key: the app health route, old key dead' }, []);
  tracker.stepDone('retire_old_key', 'succeeded', 'runbook', `key ${old} is dead (401 ${proof.code}); the app ${after.ok ? 'is healthy' : 'is NOT healthy'} on key ${fresh.fingerprint} (${after.detail})`, { oldKey: old, newKey: fresh.fingerprint, diedAt: new Date(diedAt).toISOString(), appHealthy: after.ok });
  if (!after.ok) tracker.attention(`the app is not healthy after the old key died: ${after.detail}`);

  // 5. The exposure audit: what the Backend API lists as created while the key was out.
  await exposureAudit(ctx, diedAt);
  tracker.stepDone('rotate_secret_key', after.ok ? 'succeeded' : 'failed', 'runbook', `key ${old} replaced by ${fresh.fingerprint} and proven dead`, { oldKey: old, newKey: fresh.fingerprint });
  return after.ok;
}

async function exposureAudit(ctx: RotationContext, diedAt: number): Promise<ExposureAudit | undefined> {
  const { tracker } = ctx;
  const from = ctx.exposedAt === null ? null : Math.min(ctx.exposedAt, diedAt);
  tracker.waitFor(`exposure_audit: ${from === null ? 'the configured lookback (no exposedAt given)' : new Date(from).toISOString()} → ${new Date(diedAt).toISOString()}`);
  try {
    const a = await keys.exposureAudit.executeWithOptions({ summary: 'exposure_audit: users and sessions created in the exposure window', startToCloseTimeout: '10 minutes', heartbeatTimeout: '30 seconds' }, [{ from, to: diedAt }]);
    // Without exposedAt the window is a lookback, which may miss an earlier leak: the note says so.
    const span = typeof a.lookbackMs !== 'number' ? `${formatDuration(diedAt - Date.parse(a.from))} window` : `${formatDuration(a.lookbackMs)} lookback (no exposedAt given: KEY_EXPOSURE_LOOKBACK, not the exposure window)`;
    const text = `${span}: ${a.usersCreated} user(s) created${a.usersCreatedIds.length ? ` (${a.usersCreatedIds.join(', ')}${a.usersCreated > a.usersCreatedIds.length ? ', …' : ''})` : ''}, ${a.sessionsCreated} session(s) created among ${a.usersScanned} active user(s)${a.complete ? '' : ` of ${a.usersActive} (incomplete)`}`;
    tracker.stepDone('exposure_audit', a.complete ? 'succeeded' : 'partial', 'runbook', text, { audit: a });
    return a;
  } catch (err) {
    if (isCancellation(err)) throw err;
    tracker.stepDone('exposure_audit', 'failed', 'runbook', `the exposure audit could not run: ${why(err)}`);
    tracker.attention(`exposure_audit failed: ${why(err)}`);
    return undefined;
  }
}

export interface RotationStep {
  /**
   * Rotate the Clerk secret key: new key, verify, push, retire, prove the old key dead, exposure
   * audit. True when the old key is proven dead (by hand on a worker without key references: confirmed).
   */
  rotateSecretKey(): Promise<boolean>;
}

/** The rotation of an incident; `inbox` takes `provideNewKey` and `confirmOldKeyDeleted`. */
export class SecretKeyRotation implements RotationStep {
  readonly inbox: KeyRotationInbox;

  constructor(private readonly ctx: IncidentContext) {
    this.inbox = new KeyRotationInbox(ctx.tracker);
  }

  rotateSecretKey(): Promise<boolean> {
    const { tracker, input } = this.ctx;
    const byHand = () => this.ctx.byHand('rotate_secret_key', 'add a new secret key in the Clerk dashboard, redeploy with it, verify, delete the old key');
    const { escalateAfter, decideWithin } = this.ctx.gateTimeouts('rotate_secret_key');
    const exposedAt = input.exposedAt ? Date.parse(input.exposedAt) : null;
    return rotateSecretKey({ tracker, inbox: this.inbox, escalateAfter, decideWithin, exposedAt, byHand, dryRun: input.dryRun, compensations: this.ctx.compensations });
  }
}
