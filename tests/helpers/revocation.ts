/** Helpers of the revocation tests: a sandbox's ground truth, and worker deps pointed at it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ActivityDeps } from '../../src/activities';
import { createClerkGateway, type ClerkGatewayOptions } from '../../src/activities/clerk';
import type { RevokeSessionsInput } from '../../src/workflows/revoke-sessions';
import type { RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import type { RevocationWorkerConfig } from './revocation-worker';

/** Active sessions right now, as session id → user id (read in-process: no request, no audit entry). */
export function activeSessions(sandbox: RunningSandbox): Map<string, string> {
  const store = sandbox.admin.store;
  const out = new Map<string, string>();
  for (const id of sandbox.admin.sessionIds('active')) out.set(id, store.userId(store.sessionUser(store.findSession(id))));
  return out;
}

/** Users whose last activity is after `cutoff` (ms), with their active session ids. */
export function usersWithActiveSessions(sandbox: RunningSandbox): string[] {
  return [...new Set(activeSessions(sandbox).values())];
}

export function gatewayOptions(sandbox: RunningSandbox, overrides: Partial<ClerkGatewayOptions> = {}): ClerkGatewayOptions {
  return {
    secretKey: sandbox.secretKey,
    apiUrl: sandbox.url,
    limit: { requests: 2000, windowMs: 1000, headroom: 0.05 },
    concurrency: 16,
    retry: { initialBackoffMs: 20, maxBackoffMs: 200 },
    ...overrides,
  };
}

export function revocationDeps(sandbox: RunningSandbox, overrides: Partial<ClerkGatewayOptions> = {}): ActivityDeps {
  return { statusPageUrl: sandbox.url, sandbox: true, clerk: createClerkGateway(gatewayOptions(sandbox, overrides)) };
}

export const baseInput = {
  requestedBy: 'alice@example.com',
  reason: 'test: secret key compromised',
} satisfies Partial<RevokeSessionsInput>;

/** Checks the audit: each expected session got exactly one revoke call, and nothing else was revoked. */
export function revokeAudit(sandbox: RunningSandbox, expected: Iterable<string>) {
  const revokes = sandbox.admin.revokes();
  const expectedSet = new Set(expected);
  const missed: string[] = [];
  const repeated: string[] = [];
  for (const id of expectedSet) {
    const r = revokes[id];
    if (!r || r.revoked !== 1) missed.push(id);
    else if (r.calls > 1) repeated.push(id);
  }
  const unexpected = Object.keys(revokes).filter((id) => !expectedSet.has(id));
  const calls = Object.values(revokes).reduce((n, r) => n + r.calls, 0);
  return { missed, repeated, unexpected, calls };
}

export interface ChildWorker {
  process: ChildProcess;
  peakRss: number;
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts `revocation-worker.ts` in a child process; resolves once it polls. */
export async function startChildWorker(config: RevocationWorkerConfig, nodeOptions: string[] = []): Promise<ChildWorker> {
  const child = spawn(process.execPath, [...nodeOptions, '--import', 'tsx', join(__dirname, 'revocation-worker.ts'), JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const worker: ChildWorker = {
    process: child,
    peakRss: 0,
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready`)));
    lines.on('line', (line) => {
      if (line === 'ready') resolve();
      const m = /^rss (\d+)$/.exec(line);
      if (m?.[1]) worker.peakRss = Math.max(worker.peakRss, Number(m[1]));
    });
  });
  return worker;
}
