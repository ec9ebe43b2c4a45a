/**
 * The emergency auth bypass as the incident state shows it (query, UI details, review). Pure
 * types and wording, shared by the workflow (incident-bypass.ts), the tracker and the review.
 */
import { formatDuration } from '../domain';

export interface BypassExtension {
  approver: string;
  extendByMs: number;
  reason: string;
  at: string;
  expiresAt: string;
}

export interface BypassRecord {
  /** `on`: applied (users reach the app without sign-in); `off`: removed and verified; `off_failed`: a human must remove it. */
  state: 'on' | 'off' | 'off_failed';
  adapter: string;
  flagKey: string;
  onSince: string;
  expiresAt: string;
  /** What the probes saw when the bypass was verified on (one line per URL). */
  verified: string[];
  /** The production deployment that carries the flag (Vercel project env). */
  deployment?: { id: string; url: string | null };
  extensions: BypassExtension[];
  offAt?: string;
  offReason?: string;
  /** From on to verified off. */
  bypassedForMs?: number;
}

/** One line for the UI's current details. */
export function bypassLine(b: BypassRecord): string {
  if (b.state === 'on') return `ON since ${b.onSince}, expires at ${b.expiresAt} (${b.adapter}, ${b.flagKey})${b.verified.length ? `; verified: ${b.verified.join(', ')}` : ''}`;
  if (b.state === 'off') return `off at ${b.offAt} (${b.offReason}); auth was bypassed for ${formatDuration(b.bypassedForMs ?? 0)}`;
  return `COULD NOT BE TURNED OFF (on since ${b.onSince}); a human must remove ${b.flagKey}`;
}

/** Minutes of auth bypass, for the review's impact (rounded up: a started minute counts). */
export function bypassMinutes(b: BypassRecord | undefined, now: number): number {
  if (!b) return 0;
  const end = b.bypassedForMs !== undefined ? Date.parse(b.onSince) + b.bypassedForMs : now;
  return Math.max(0, Math.ceil((end - Date.parse(b.onSince)) / 60_000));
}
