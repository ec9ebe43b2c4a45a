/**
 * The approver registry activity: reads the worker's allowed_signers file when an incident starts,
 * so a key added or removed there applies to the next incident and each incident's history
 * records the keys it trusted. Unreadable files fail the activity (the workflow then fails closed).
 */
import { execFile } from 'node:child_process';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/activity';
import type { GatedStep } from '../domain';
import { keyOwnershipProblems, type ApproverRegistry } from '../signing/policy';
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
  const shared = keyOwnershipProblems(signers);
  if (shared.length) {
    // One person holding a key listed under two names would pass the two-person rule alone.
    throw ApplicationFailure.create({ type: 'ApproverRegistryUnreadable', message: `the approver registry ${deps.allowedSignersPath} is refused: ${shared.join('; ')}`, nonRetryable: true });
  }
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

/** The approvers of the sample input `npm start` prints: each gets a demo key in sandbox mode. */
export const DEMO_APPROVERS = ['bob@example.com', 'carol@example.com'] as const;

/**
 * Sandbox mode with SIGNED_APPROVALS_DEMO=1: an ed25519 key pair per demo approver (made once by
 * ssh-keygen, kept in `dir`) and an allowed_signers file listing them; says where they are.
 */
export async function demoSigning(dir: string, steps: GatedStep[], say: (line: string) => void): Promise<SigningDeps | undefined> {
  await mkdir(dir, { recursive: true });
  const lines: string[] = [];
  const shown = (file: string) => relative(process.cwd(), file) || file;
  for (const approver of DEMO_APPROVERS) {
    const file = join(dir, approver.split('@')[0] as string);
    const exists = await access(file).then(() => true, () => false);
    if (!exists) {
      try {
        await promisify(execFile)('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${approver} (demo)`, '-f', file]);
      } catch (err) {
        say(`Signed approvals demo: cannot make demo keys with ssh-keygen (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); signing stays off`);
        return undefined;
      }
    }
    lines.push(`${approver} ${(await readFile(`${file}.pub`, 'utf8')).trim()}`);
  }
  const registry = join(dir, 'allowed_signers');
  await writeFile(registry, `# demo approvers of npm start (SIGNED_APPROVALS_DEMO=1); keys made by ssh-keygen\n${lines.join('\n')}\n`);
  say(`Signed approvals demo: keys of ${DEMO_APPROVERS.join(' and ')} in ${shown(dir)}/ (${DEMO_APPROVERS.map((a) => a.split('@')[0]).join(', ')}), registry ${shown(registry)}`);
  say(`  sign a decision: npm run incident -- approve <id> --step emergency_bypass --approver bob@example.com --sign ${shown(join(dir, 'bob'))}`);
  return signingFromEnv({ APPROVER_ALLOWED_SIGNERS: registry, SIGNED_STEPS: steps }, say);
}
