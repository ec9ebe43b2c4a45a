/**
 * Key rotation tests: a worker whose Clerk key is a `file:` reference, the sandbox's Vercel as
 * deployment platform, its Vault and (optionally) its Platform API; the same deps in a child
 * process (rotation-worker.ts) for the kill test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ActivityDeps } from '../../src/activities';
import { createClerkGateway } from '../../src/activities/clerk';
import { sandboxDeployAdapter } from '../../src/activities/deploy';
import { keyRotationDeps } from '../../src/keys/rotation';
import { createKeyResolver, createKeySource } from '../../src/keys/resolve';
import type { RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';

/** What a rotation worker needs to know of the sandbox: plain JSON, so a child process can take it. */
export interface RotationWorkerSetup {
  url: string;
  initialKey: string;
  keyFile: string;
  vault: { addr: string; token: string };
  vercel: RunningSandbox['vercel'];
  platform?: RunningSandbox['platform'];
}

export function rotationSetup(sandbox: RunningSandbox, keyFile: string, platform = false): RotationWorkerSetup {
  writeFileSync(keyFile, `${sandbox.secretKey}\n`, { mode: 0o600 });
  return { url: sandbox.url, initialKey: sandbox.secretKey, keyFile, vault: sandbox.vault, vercel: sandbox.vercel, ...(platform ? { platform: sandbox.platform } : {}) };
}

export function rotationDeps(s: RotationWorkerSetup): ActivityDeps {
  const resolver = createKeyResolver({ vault: s.vault });
  const workerKey = createKeySource(`file:${s.keyFile}`, resolver);
  const p = s.platform;
  return {
    statusPageUrl: s.url,
    sandbox: true,
    clerk: createClerkGateway({ secretKey: s.initialKey, keySource: workerKey, apiUrl: s.url, retry: { maxUnavailableAttempts: 2 }, requestTimeoutMs: 5000 }),
    appHealthUrl: `${s.url}/api/clerk-health`,
    appRoutes: [`${s.url}/app/dashboard`],
    deploy: sandboxDeployAdapter(s.vercel),
    keys: keyRotationDeps({
      workerKey,
      resolver,
      apiUrl: s.url,
      // New keys are written next to the worker's (the test's own temporary directory).
      refPolicy: { envNames: ['CLERK_SECRET_KEY_NEXT*'], dirs: [dirname(s.keyFile)], vault: ['secret/clerk'] },
      ...(p ? { platform: { url: p.url, token: p.token, applicationId: p.applicationId, instance: p.instanceId, storeRef: 'vault:secret/clerk#next_secret_key', delayHours: 0 } } : {}),
    }),
  };
}

export interface ChildRotationWorker {
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts rotation-worker.ts in a process of its own; resolves once it polls. */
export async function startRotationWorker(config: { temporalAddress: string; taskQueue: string; workflowBundlePath: string; setup: RotationWorkerSetup }): Promise<ChildRotationWorker> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'rotation-worker.ts'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`rotation worker exited with ${code} before it was ready`)));
    lines.on('line', (line) => {
      if (line === 'ready') resolve();
    });
  });
  return {
    exited,
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
