/**
 * Which decisions must be signed, and the approver registry as the workflow records it. Pure (the
 * workflow and the worker's configuration share it).
 */
import { z } from 'zod';
import { CRITICAL_STEPS, GATED_STEPS, personKey, type GatedStep } from '../domain';
import type { AllowedSigner } from './sshsig';

/**
 * `SIGNED_STEPS`: `critical` (the default: emergency_bypass, rotate_secret_key,
 * revoke_all_sessions), `all`, `none`, or a comma-separated list of gated steps.
 */
export const signedStepsSchema = z
  .string()
  .optional()
  .transform((v, ctx): GatedStep[] => {
    const text = (v ?? '').trim() || 'critical';
    if (text === 'critical') return [...CRITICAL_STEPS];
    if (text === 'all') return [...GATED_STEPS];
    if (text === 'none') return [];
    const steps = text.split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = steps.filter((s) => !(GATED_STEPS as readonly string[]).includes(s));
    if (unknown.length) {
      ctx.addIssue({ code: 'custom', message: `must be critical, all, none or a comma-separated list of ${GATED_STEPS.join(', ')}; ${unknown.join(', ')} is not a step` });
      return z.NEVER;
    }
    return steps as GatedStep[];
  });

/** The approver registry one incident uses, read when it started and recorded in its history (public keys only). */
export interface ApproverRegistry {
  /** Where it was read from (the worker's APPROVER_ALLOWED_SIGNERS). */
  source: string;
  /** The SSH signature namespace decisions are signed in. */
  namespace: string;
  /** Steps whose decisions must be signed (SIGNED_STEPS). */
  steps: GatedStep[];
  signers: AllowedSigner[];
  /** Lines of the file that could not be used. */
  problems: string[];
}

/**
 * Why a registry cannot be trusted for the two-person rule: each key must belong to exactly one
 * person, so a line naming two principals, or one key on two lines under different names, is
 * refused (one sentence per offending line). Names compare as people do (`personKey`).
 */
export function keyOwnershipProblems(signers: readonly AllowedSigner[]): string[] {
  const problems: string[] = [];
  const owners = new Map<string, AllowedSigner>();
  for (const signer of signers) {
    const people = [...new Set(signer.principals.map(personKey))];
    if (people.length > 1) {
      problems.push(`line ${signer.line}: key ${signer.fingerprint} names ${signer.principals.join(', ')}; a key belongs to one person (one principal per line)`);
      continue;
    }
    const first = owners.get(signer.fingerprint);
    if (first && personKey(first.principals[0] ?? '') !== people[0]) {
      problems.push(`line ${signer.line}: key ${signer.fingerprint} is already ${first.principals.join(', ')}'s (line ${first.line}); a key belongs to one person`);
    } else if (!first) owners.set(signer.fingerprint, signer);
  }
  return problems;
}
