/**
 * The load guarantee: 200 concurrent incidents on one worker (a process of its own), every
 * category mixed in, all complete with their expected outcomes, and the sandbox's own records
 * agree (targeted sessions revoked once, nothing else revoked). It runs `npm run bench:load`'s own
 * function on the suite's Temporal server and bundle; timings are the bench's business
 * (docs/load.md), never asserted here.
 *
 * Also the bug the load found: a 429 while the rotation checks the worker's current key was
 * reported as a dead key (ClerkKeyInvalid, never retried), failing the rotation.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_HEADROOM, runLoadBench } from '../bench/load';
import { createActivities } from '../src/activities';
import { INCIDENT_CATEGORIES } from '../src/domain';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { rotationDeps, rotationSetup } from './helpers/rotation';

describe('load: 200 concurrent incidents on one worker, mixed categories', () => {
  it('every incident completes with its expected outcomes', { timeout: 20 * 60_000 }, async () => {
    const log: string[] = [];
    const report = await runLoadBench({
      incidents: 200,
      users: 100,
      temporalAddress: inject('temporalAddress'),
      workflowBundle: inject('workflowBundlePath'),
      clerkHeadroom: DEFAULT_HEADROOM,
      phaseTimeoutMs: 15 * 60_000,
      log: (line) => log.push(line),
    });
    expect(Object.fromEntries(Object.entries(report.mix).map(([c, m]) => [c, m.count]))).toEqual(Object.fromEntries(INCIDENT_CATEGORIES.map((c) => [c, 40])));
    expect(report.load.failures, log.join('\n')).toEqual([]);
    expect(report.load.sandboxProblems).toEqual([]);
    expect(report.load.completed).toBe(200);
    // Every incident was measured from its history: 200 triages; gates: 40 bypasses, 80 key_compromise gates, 40 operator actions, 40 revocations.
    expect(report.load.triageMs.n).toBe(200);
    expect(report.load.approvalToAppliedMs.n).toBe(200);
    expect(report.baseline.completed).toBe(INCIDENT_CATEGORIES.length);
    expect(report.allCompleted).toBe(true);
    expect(report.load.workerCpuSeconds).toBeGreaterThan(0);
    expect(report.load.workerPeakRssBytes).toBeGreaterThan(0);
  });
});

describe('keyRotationBegin under Clerk rate limiting', () => {
  let sandbox: RunningSandbox;
  let dir: string;
  beforeAll(async () => {
    sandbox = await startSandbox({ users: 5, seed: 'load-key-check', rateLimit: { requests: 1, windowMs: 60_000 } });
    dir = mkdtempSync(join(tmpdir(), 'load-key-check-'));
  });
  afterAll(async () => {
    await sandbox.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('retries a 429 as ClerkUnavailable; only a refused key is ClerkKeyInvalid', async () => {
    const begin = createActivities(rotationDeps(rotationSetup(sandbox, join(dir, 'key')))).keyRotationBegin;
    const env = new MockActivityEnvironment();
    const first = (await env.run(begin)) as { instanceId: string } | null;
    expect(first?.instanceId).toMatch(/^ins_/);

    // The window's one request is spent: Clerk answers 429, which says nothing about the key.
    const limited = await env.run(begin).catch((err: unknown) => err);
    expect(limited).toBeInstanceOf(ApplicationFailure);
    expect((limited as ApplicationFailure).type).toBe('ClerkUnavailable');
    expect((limited as ApplicationFailure).nonRetryable).toBe(false);
    // Retried when Clerk's Retry-After says (the sandbox's window is a minute).
    expect((limited as ApplicationFailure).nextRetryDelay).toBe(60_000);
    expect(sandbox.admin.auditSummary().byStatus['429']).toBeGreaterThan(0);

    sandbox.admin.setRateLimit('off');
    for (const key of sandbox.admin.listKeys()) sandbox.admin.deleteKey(key.id);
    const refused = await env.run(begin).catch((err: unknown) => err);
    expect((refused as ApplicationFailure).type).toBe('ClerkKeyInvalid');
    expect((refused as ApplicationFailure).nonRetryable).toBe(true);
  });
});
