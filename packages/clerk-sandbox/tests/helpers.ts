/** Shared helpers of the sandbox tests: a sandbox per file, an SDK client pointed at it. */
import { createClerkClient, type ClerkClient } from '@clerk/backend';
import { isClerkAPIResponseError } from '@clerk/backend/errors';
import { startSandbox, type RunningSandbox, type SandboxOptions } from '../src';

export async function sandboxWithClient(options: SandboxOptions = {}): Promise<{ sandbox: RunningSandbox; clerk: ClerkClient }> {
  const sandbox = await startSandbox({ rateLimit: 'off', ...options });
  return { sandbox, clerk: createClerkClient({ secretKey: sandbox.secretKey, apiUrl: sandbox.url }) };
}

export function clientFor(sandbox: RunningSandbox, secretKey: string): ClerkClient {
  return createClerkClient({ secretKey, apiUrl: sandbox.url });
}

/** The `ClerkAPIResponseError` a call rejected with (fails the test if it resolved or threw something else). */
export async function clerkError(p: Promise<unknown>) {
  try {
    await p;
  } catch (err) {
    if (isClerkAPIResponseError(err)) return err;
    throw err;
  }
  throw new Error('expected the call to fail with ClerkAPIResponseError');
}

export const DAY = 86_400_000;
