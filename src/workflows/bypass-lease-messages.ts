/**
 * The messages of the bypass lease (`bypassLeaseWorkflow`, bypass-lease.ts), defined once for the
 * lease, the incident's activities that call it and the tests. Types and definitions only, so an
 * activity never pulls in workflow code.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { AdapterName, Deployment } from '../activities/deploy/types';

/** One deployment target and flag: what the lease owns. */
export interface LeaseTarget {
  /** The adapter's `target` (`vercel:<api host>/<project>`): no secrets. */
  target: string;
  adapter: AdapterName;
  needsRedeploy: boolean;
  flagKey: string;
  /** BYPASS_MAX_DURATION: no holder keeps the flag longer than this after it first acquired it. */
  maxDurationMs: number;
}

/** An incident run that relies on the flag. */
export interface LeaseHolder {
  workflowId: string;
  /** The run that acquired it, or the latest run of its chain of continue-as-new. */
  runId: string;
  incidentId: string;
  /** When it first acquired the lease (BYPASS_MAX_DURATION counts from here). */
  since: string;
  /** Its own expiry, extensions applied or in flight included. */
  until: string;
  extensions: number;
}

interface HolderRef {
  workflowId: string;
  runId: string;
}

export interface AcquireRequest extends HolderRef {
  incidentId: string;
  until: string;
}

export interface ExtendRequest extends HolderRef {
  extendByMs: number;
}

export interface ReleaseRequest extends HolderRef {
  reason: string;
  /** How long the app may take to stop showing the bypass, and each probe's bound. */
  verifyWithinMs: number;
  probeTimeoutMs: number;
}

/** From the sweep (the schedule): what the platform shows, so a flag nobody holds is removed. */
export interface ReconcileRequest {
  flagSeen: boolean | 'unknown';
  by: string;
}

/** What the platform has, as the lease last applied it. */
export interface LeaseFlag {
  /** `unknown`: a write may have landed (a failed clear, a fresh lease that saw it set): removed when nobody holds it. */
  state: 'set' | 'absent' | 'unknown';
  until: string | null;
  /** The production deployment that carries the last change (adapters that redeploy). */
  deployment?: Deployment & { waitedMs: number };
}

/**
 * What every lease update answers once the lease has applied the change it asked for (or failed
 * to). `holderUntil` is the caller's own expiry; `flag.until` is what the platform says.
 */
export interface LeaseAnswer {
  ok: boolean;
  error?: { type: string; message: string };
  flag: LeaseFlag;
  holderUntil: string | null;
  /** The incidents still holding it (after a release: the others). */
  heldBy: { incidentId: string; until: string }[];
  /** What the probes saw when the lease verified the bypass off. */
  verified?: string[];
}

export interface LeaseView {
  target: LeaseTarget;
  flag: LeaseFlag;
  holders: LeaseHolder[];
  /** The lease's own log of what it did and why (the last 50 lines). */
  log: { at: string; line: string }[];
}

export const acquireBypass = defineUpdate<LeaseAnswer, [AcquireRequest]>('acquireBypass');
export const extendBypassLease = defineUpdate<LeaseAnswer, [ExtendRequest]>('extendBypassLease');
export const releaseBypass = defineUpdate<LeaseAnswer, [ReleaseRequest]>('releaseBypass');
export const reconcileBypass = defineUpdate<LeaseAnswer, [ReconcileRequest]>('reconcileBypass');
export const getBypassLease = defineQuery<LeaseView>('getBypassLease');

/** One lease per target and flag. */
export function leaseWorkflowId(target: Pick<LeaseTarget, 'target' | 'flagKey'>): string {
  return `bypass-lease:${target.target}:${target.flagKey}`;
}

/** The id of the backstop schedule that runs `bypassSweepWorkflow` every minute. */
export const BYPASS_SWEEP_SCHEDULE_ID = 'bypass-sweep';
