/**
 * The approver registry activity: reads the worker's allowed_signers file when an incident starts,
 * so a key added or removed there applies to the next incident and each incident's history
 * records the keys it trusted. Unreadable files fail the activity (the workflow then fails closed).
 */
import { readFile } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/activity';
import type { GatedStep } from '../domain';
import type { ApproverRegistry } from '../signing/policy';
import { parseAllowedSigners, SIGNATURE_NAMESPACE } from '../signing/sshsig';

export interface SigningDeps {
  /** APPROVER_ALLOWED_SIGNERS. */
  allowedSignersPath: string;
  /** SIGNED_STEPS, resolved. */
  steps: GatedStep[];
}

/** Largest allowed_signers file read: a team's keys fit in a few kilobytes. */
const MAX_FILE_BYTES = 1024 * 1024;

export async function readApproverRegistry(deps: SigningDeps): Promise<ApproverRegistry> {
  let text: string;
  try {
    text = await readFile(deps.allowedSignersPath, 'utf8');
  } catch (err) {
    throw ApplicationFailure.create({
      type: 'ApproverRegistryUnreadable',
      message: `cannot read the approver registry ${deps.allowedSignersPath} (APPROVER_ALLOWED_SIGNERS): ${err instanceof Error ? err.message : String(err)}`,
      nonRetryable: true,
    });
  }
  if (text.length > MAX_FILE_BYTES) {
    throw ApplicationFailure.create({ type: 'ApproverRegistryUnreadable', message: `the approver registry ${deps.allowedSignersPath} is over ${MAX_FILE_BYTES} bytes`, nonRetryable: true });
  }
  const { signers, problems } = parseAllowedSigners(text);
  return { source: deps.allowedSignersPath, namespace: SIGNATURE_NAMESPACE, steps: deps.steps, signers, problems };
}

export function createSigningActivities(deps: () => SigningDeps | undefined) {
  return {
    /** The approver registry for a starting incident; null when the worker has none (signing off). */
    async loadApproverRegistry(): Promise<ApproverRegistry | null> {
      const d = deps();
      return d ? readApproverRegistry(d) : null;
    },
  };
}

/**
 * The signing configuration from the environment, checked once at start-up so a missing or
 * unreadable registry stops the worker instead of the first incident. Undefined: signing is off.
 */
export async function signingFromEnv(env: { APPROVER_ALLOWED_SIGNERS?: string; SIGNED_STEPS: GatedStep[] }, say: (line: string) => void): Promise<SigningDeps | undefined> {
  if (!env.APPROVER_ALLOWED_SIGNERS) return undefined;
  const deps = { allowedSignersPath: env.APPROVER_ALLOWED_SIGNERS, steps: env.SIGNED_STEPS };
  const registry = await readApproverRegistry(deps).catch((err: unknown) => {
    throw new Error(err instanceof Error ? err.message : String(err));
  });
  const steps = deps.steps.length ? deps.steps.join(', ') : 'none (SIGNED_STEPS=none)';
  say(`Signed approvals: ${registry.signers.length} key(s) from ${deps.allowedSignersPath}; signatures required for ${steps}`);
  for (const problem of registry.problems) say(`  ${deps.allowedSignersPath} ${problem}`);
  return deps;
}
