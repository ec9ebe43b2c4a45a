/**
 * Which deployment to roll back to: a pure, deterministic choice (no I/O, no clock; `now` is an
 * input), so the workflow can run it and a test can table it.
 *
 * An instant rollback serves the old build with the env it captured when it was built, so a
 * candidate is refused when that env holds something the runbook has since changed: a secret key
 * the last rotation retired (built before the rotation's push), or the emergency bypass flag
 * (built while the flag was in the project env). Among the rest, the deployment the runbook saw
 * healthy (triage, watch, its own bypass or rotation builds) is preferred, else the newest one
 * before the current. A refused candidate whose only fault is its env can be rebuilt from its
 * source with today's env, when the platform redeploys.
 */
import { terminalLine } from '../render-safe';

/** A production deployment as the platform lists it (a subset of the deploy adapter's `ProductionDeployment`). */
export interface CandidateDeployment {
  id: string;
  url: string | null;
  state: string;
  /** ms since epoch. */
  createdAt: number;
  /** Has served production (Vercel's `isRollbackCandidate`); unknown counts as yes. */
  rollbackCandidate?: boolean;
  commit?: { sha: string | null; ref: string | null; message: string | null };
  /** The env keys the build captured, when the platform reports them (Vercel does not). */
  envKeys?: string[];
}

/** A deployment the runbook saw serving production with its probes passing. */
export interface HealthyObservation {
  deploymentId: string;
  at: number;
  source: 'triage' | 'watch' | 'bypass' | 'rotation' | 'verification' | 'other';
}

/** A key rotation's push of the new secret key into the project env (its marker: `clerk-incident-runbook key <fingerprint>`). */
export interface RotationWrite {
  key: string;
  pushedAt: number;
  /** The old key was deleted (a build from before the push then carries a dead key). Unknown: assume retired. */
  oldKeyRetired?: boolean;
}

/** The bypass flag in the project env from `onAt` until `offAt` (null: still there). Edge Config bypasses do not reach builds: leave them out. */
export interface BypassWrite {
  key: string;
  onAt: number;
  offAt: number | null;
}

export interface CandidateInput {
  /** The deployment serving production now (the one being rolled back from). */
  currentDeploymentId: string;
  /** Production deployments, any order. */
  deployments: CandidateDeployment[];
  /** When the failure started (ms), or null when unknown. */
  failureStartedAt: number | null;
  healthy: HealthyObservation[];
  rotations: RotationWrite[];
  bypasses: BypassWrite[];
  /** The bypass flag's key (BYPASS_FLAG_KEY), to spot it in `envKeys`. */
  flagKey: string;
  /** The platform can build a deployment's source again with today's env (Vercel: `POST /v13/deployments` with `deploymentId`). */
  canRedeploy: boolean;
  /** For ages in the descriptions. */
  now: number;
}

export const REFUSAL_CODES = ['current', 'not_ready', 'not_rollback_candidate', 'built_after_failure', 'dead_key', 'bypass_flag'] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];
/** Refusals a rebuild of the same source with today's env cures. */
const ENV_ONLY: readonly RefusalCode[] = ['dead_key', 'bypass_flag'];

export interface Refusal {
  code: RefusalCode;
  reason: string;
}

export interface RefusedCandidate {
  deployment: CandidateDeployment;
  refusals: Refusal[];
}

export interface CandidateChoice {
  chosen: { deployment: CandidateDeployment; basis: 'seen_healthy' | 'previous'; why: string } | null;
  /** Why there is no choice (null when there is one). */
  none: string | null;
  /** Every other deployment considered, newest first, with its reasons. */
  refused: RefusedCandidate[];
  /** Offered when the best candidate was refused for its env only and the platform redeploys. */
  redeploy: { from: CandidateDeployment; why: string } | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * `dpl_… (url, 3 h old, abc1234 on main: "message")`: what an approval shows of a deployment.
 * The commit's message, branch and sha (and the url) are anyone's who can push: each is one line
 * of visible text (terminalLine: no line break, control, bidi or zero-width character survives),
 * bounded, and quoted (JSON) where it could hold a `"` or a space, so it cannot close its quotes
 * and pass for the runbook's words (`"), approved by …`). A branch or a sha of the usual shape
 * reads as before.
 */
export function describeDeployment(d: CandidateDeployment, now: number): string {
  const parts = [d.url ? plainOrQuoted(d.url, PLAIN_URL, URL_MAX) : 'no url', `${formatAge(now - d.createdAt)} old`];
  const c = d.commit;
  if (c?.sha || c?.ref) parts.push(`${shortSha(c.sha)}${c.ref ? ` on ${plainOrQuoted(c.ref, PLAIN_REF, REF_MAX)}` : ''}${c.message ? `: ${quoted(c.message.split('\n')[0] ?? '', SUBJECT_MAX)}` : ''}`);
  return `${d.id} (${parts.join(', ')})`;
}

/** A commit subject as git shows it in one line; a branch name; a url (Vercel's are < 100). */
const SUBJECT_MAX = 72;
const REF_MAX = 64;
const URL_MAX = 120;
const PLAIN_REF = /^[\w./-]{1,64}$/;
const PLAIN_URL = /^[\w.:/-]{1,120}$/;
const HEX_SHA = /^[0-9a-f]{7,40}$/i;
const quoted = (text: string, max: number) => JSON.stringify(terminalLine(text, max));
const plainOrQuoted = (text: string, plain: RegExp, max: number) => (plain.test(text) ? text : quoted(text, max));
/** The short sha; a sha that is not hex is shown (quoted) and said to be none. */
const shortSha = (sha: string | null) => (!sha ? '?' : HEX_SHA.test(sha) ? sha.slice(0, 7) : `${quoted(sha, 16)} (not a hex sha)`);

function formatAge(ms: number): string {
  const m = Math.max(0, Math.round(ms / 60_000));
  if (m < 60) return `${m} min`;
  const h = Math.round(m / 60);
  return h < 48 ? `${h} h` : `${Math.round(h / 24)} d`;
}

function refusalsOf(d: CandidateDeployment, input: CandidateInput): Refusal[] {
  const out: Refusal[] = [];
  if (d.id === input.currentDeploymentId) out.push({ code: 'current', reason: 'it is the deployment serving production now' });
  if (d.state !== 'READY') out.push({ code: 'not_ready', reason: `its state is ${d.state}, not READY` });
  if (d.rollbackCandidate === false) out.push({ code: 'not_rollback_candidate', reason: 'it never served production (the platform does not offer it as a rollback candidate)' });
  if (input.failureStartedAt !== null && d.createdAt >= input.failureStartedAt) {
    out.push({ code: 'built_after_failure', reason: `it was built at ${iso(d.createdAt)}, after the failure started (${iso(input.failureStartedAt)})` });
  }
  const rotation = input.rotations.filter((r) => r.oldKeyRetired !== false && d.createdAt < r.pushedAt).sort((a, b) => b.pushedAt - a.pushedAt)[0];
  if (rotation) out.push({ code: 'dead_key', reason: `it was built at ${iso(d.createdAt)}, before the key rotation pushed a new ${rotation.key} (${iso(rotation.pushedAt)}): it carries the retired key` });
  const bypass = input.bypasses.find((b) => b.onAt <= d.createdAt && (b.offAt === null || d.createdAt < b.offAt));
  if (bypass) {
    out.push({ code: 'bypass_flag', reason: `it was built at ${iso(d.createdAt)} while the bypass flag ${bypass.key} was in the project env (${iso(bypass.onAt)}–${bypass.offAt === null ? 'now' : iso(bypass.offAt)}): it would switch auth off again` });
  } else if (d.envKeys?.includes(input.flagKey)) {
    out.push({ code: 'bypass_flag', reason: `its env carries the bypass flag ${input.flagKey}` });
  }
  return out;
}

/** The newest healthy observation of each deployment from before the failure. */
function lastSeenHealthy(input: CandidateInput): Map<string, HealthyObservation> {
  const seen = new Map<string, HealthyObservation>();
  for (const h of input.healthy) {
    if (input.failureStartedAt !== null && h.at >= input.failureStartedAt) continue;
    const prev = seen.get(h.deploymentId);
    if (!prev || h.at > prev.at) seen.set(h.deploymentId, h);
  }
  return seen;
}

export function chooseRollbackCandidate(input: CandidateInput): CandidateChoice {
  const seen = lastSeenHealthy(input);
  // Preference order: seen healthy (latest observation first), then the rest newest first; ties by id for determinism.
  const ranked = [...input.deployments]
    .filter((d, i, all) => all.findIndex((x) => x.id === d.id) === i)
    .sort((a, b) => {
      const ha = seen.get(a.id)?.at ?? -1;
      const hb = seen.get(b.id)?.at ?? -1;
      if (ha !== hb) return hb - ha;
      if (a.createdAt !== b.createdAt) return b.createdAt - a.createdAt;
      return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    });
  const refused: RefusedCandidate[] = [];
  let chosen: CandidateChoice['chosen'] = null;
  for (const d of ranked) {
    const refusals = refusalsOf(d, input);
    if (refusals.length > 0) {
      refused.push({ deployment: d, refusals });
      continue;
    }
    if (chosen) continue;
    const h = seen.get(d.id);
    chosen = h
      ? { deployment: d, basis: 'seen_healthy', why: `it served production when the runbook's probes last passed (${h.source} at ${iso(h.at)})` }
      : { deployment: d, basis: 'previous', why: `the newest deployment before the current one that is READY and carries nothing the runbook changed; the runbook has no record of it healthy` };
  }
  // Only the deployments ranked above the choice (or all, without one) matter to the approver; the current one is not a candidate.
  const shown = refused.filter((r) => !r.refusals.some((x) => x.code === 'current'));
  const best = shown.find((r) => ranked.indexOf(r.deployment) < (chosen ? ranked.indexOf(chosen.deployment) : Infinity));
  const envOnly = best && best.refusals.every((x) => ENV_ONLY.includes(x.code)) ? best : undefined;
  const redeploy =
    envOnly && input.canRedeploy
      ? { from: envOnly.deployment, why: `a new build of ${envOnly.deployment.id}'s source with today's env (${envOnly.refusals.map((x) => x.code).join(', ')} fixed), promoted once READY` }
      : null;
  const none = chosen
    ? null
    : input.deployments.filter((d) => d.id !== input.currentDeploymentId).length === 0
      ? 'the platform lists no production deployment other than the current one'
      : `every earlier deployment was refused: ${shown.map((r) => `${r.deployment.id}: ${r.refusals.map((x) => x.reason).join('; ')}`).join(' | ')}`;
  return { chosen, none, refused: shown, redeploy };
}

/** Markers the runbook writes on env vars (Vercel `comment`): the key rotation's push and the bypass flag. */
export const RUNBOOK_MARKERS = {
  rotation: /^clerk-incident-runbook key \S+/,
  bypass: /^clerk-incident-runbook \S+ bypass until \S+/,
} as const;

/**
 * The runbook's own writes that are still in the project env, from their markers: the last rotation
 * push (`updatedAt` of the secret key's var) and a bypass flag still set. Past bypasses (the flag
 * removed) are gone from the env: the workflow adds them from its own record.
 */
export function writesFromMarkers(
  envWrites: { key: string; comment: string | null; createdAt: number | null; updatedAt: number | null }[],
  keys: { flagKey: string; secretKeyName: string },
): { rotations: RotationWrite[]; bypasses: BypassWrite[] } {
  const rotations: RotationWrite[] = [];
  const bypasses: BypassWrite[] = [];
  for (const w of envWrites) {
    const at = w.updatedAt ?? w.createdAt;
    if (at === null || !w.comment) continue;
    if (w.key === keys.secretKeyName && RUNBOOK_MARKERS.rotation.test(w.comment)) rotations.push({ key: w.key, pushedAt: at });
    if (w.key === keys.flagKey && RUNBOOK_MARKERS.bypass.test(w.comment)) bypasses.push({ key: w.key, onAt: w.createdAt ?? at, offAt: null });
  }
  return { rotations, bypasses };
}
