/** Candidate selection for a rollback (src/workflows/rollback-candidate.ts): a table of histories and what the choice must be, and why. */
import { describe, expect, it } from 'vitest';
import {
  chooseRollbackCandidate,
  describeDeployment,
  writesFromMarkers,
  type CandidateDeployment,
  type CandidateInput,
} from '../src/workflows/rollback-candidate';
import { FORGED_EVENT_LINE, HOSTILE_COMMIT_TEXTS, INVISIBLE } from './helpers/hostile-text';

const T = Date.parse('2026-12-02T14:00:00.000Z');
const H = 3_600_000;
const dep = (id: string, hoursAgo: number, extra: Partial<CandidateDeployment> = {}): CandidateDeployment => ({
  id,
  url: `example-app-${id.slice(4)}.vercel.app`,
  state: 'READY',
  createdAt: T - hoursAgo * H,
  rollbackCandidate: true,
  commit: { sha: `${id.slice(4)}0000000`.padEnd(40, '0'), ref: 'main', message: `build ${id}` },
  ...extra,
});

// Production history: a day-old build, three good ones, and the bad deploy at 13:58 (the failure from 14:00).
const base = [dep('dpl_day', 24), dep('dpl_a', 6), dep('dpl_b', 4), dep('dpl_c', 2), dep('dpl_bad', 2 / 60)];
const input = (over: Partial<CandidateInput> = {}): CandidateInput => ({
  currentDeploymentId: 'dpl_bad',
  deployments: base,
  failureStartedAt: T,
  healthy: [],
  rotations: [],
  bypasses: [],
  flagKey: 'CLERK_AUTH_BYPASS',
  canRedeploy: true,
  now: T + 10 * 60_000,
  ...over,
});
const codes = (c: ReturnType<typeof chooseRollbackCandidate>) => Object.fromEntries(c.refused.map((r) => [r.deployment.id, r.refusals.map((x) => x.code)]));

describe('chooseRollbackCandidate', () => {
  it('none known healthy: the newest deployment before the current, basis "previous"', () => {
    const c = chooseRollbackCandidate(input());
    expect(c.chosen?.deployment.id).toBe('dpl_c');
    expect(c.chosen?.basis).toBe('previous');
    expect(c.chosen?.why).toMatch(/no record of it healthy/);
    expect(c.none).toBeNull();
    expect(c.refused).toEqual([]);
    expect(c.redeploy).toBeNull();
  });

  it('healthy history: the deployment the probes last passed on wins over a newer unknown one; observations after the failure do not count', () => {
    const c = chooseRollbackCandidate(
      input({
        healthy: [
          { deploymentId: 'dpl_a', at: T - 5 * H, source: 'triage' },
          { deploymentId: 'dpl_b', at: T - 3 * H, source: 'watch' },
          { deploymentId: 'dpl_c', at: T + 60_000, source: 'watch' },
        ],
      }),
    );
    expect(c.chosen?.deployment.id).toBe('dpl_b');
    expect(c.chosen?.basis).toBe('seen_healthy');
    expect(c.chosen?.why).toContain('watch at 2026-12-02T11:00:00.000Z');
  });

  it('a candidate built before the last key rotation carries the dead key: refused, the next one offered, and a redeploy of its source', () => {
    const c = chooseRollbackCandidate(
      input({
        healthy: [{ deploymentId: 'dpl_b', at: T - 3 * H, source: 'rotation' }],
        // The rotation pushed the new key 3 h ago (its own redeploy is dpl_c, built after the push).
        rotations: [{ key: 'CLERK_SECRET_KEY', pushedAt: T - 3 * H }],
      }),
    );
    // Every build from before the push is refused (the older ones too), the healthy one first.
    expect(codes(c)).toEqual({ dpl_b: ['dead_key'], dpl_a: ['dead_key'], dpl_day: ['dead_key'] });
    expect(c.refused[0]?.deployment.id).toBe('dpl_b');
    expect(c.refused[0]?.refusals[0]?.reason).toMatch(/before the key rotation pushed a new CLERK_SECRET_KEY.*retired key/);
    expect(c.chosen?.deployment.id).toBe('dpl_c');
    expect(c.chosen?.basis).toBe('previous');
    expect(c.redeploy?.from.id).toBe('dpl_b');
    expect(c.redeploy?.why).toContain("today's env");
    // Without redeploys on the platform there is no such offer.
    expect(chooseRollbackCandidate(input({ healthy: [{ deploymentId: 'dpl_b', at: T - 3 * H, source: 'rotation' }], rotations: [{ key: 'CLERK_SECRET_KEY', pushedAt: T - 3 * H }], canRedeploy: false })).redeploy).toBeNull();
  });

  it('a rotation whose old key is still active does not refuse older builds', () => {
    const c = chooseRollbackCandidate(input({ rotations: [{ key: 'CLERK_SECRET_KEY', pushedAt: T - 1 * H, oldKeyRetired: false }] }));
    expect(c.chosen?.deployment.id).toBe('dpl_c');
    expect(c.refused).toEqual([]);
  });

  it('a candidate built while the bypass flag was in the project env carries it: refused; builds after the flag came out are fine', () => {
    const c = chooseRollbackCandidate(
      input({
        // Bypass on from 5 h to 3 h ago: dpl_b was built during it (the bypass's own deploy), dpl_c after it was removed.
        bypasses: [{ key: 'CLERK_AUTH_BYPASS', onAt: T - 5 * H, offAt: T - 3 * H }],
        healthy: [{ deploymentId: 'dpl_b', at: T - 4 * H, source: 'bypass' }],
      }),
    );
    expect(codes(c)).toEqual({ dpl_b: ['bypass_flag'] });
    expect(c.refused[0]?.refusals[0]?.reason).toMatch(/while the bypass flag CLERK_AUTH_BYPASS was in the project env.*switch auth off/);
    expect(c.chosen?.deployment.id).toBe('dpl_c');
    expect(c.redeploy?.from.id).toBe('dpl_b');
  });

  it('a bypass still on refuses every build since it started; a flag in reported envKeys refuses too', () => {
    const c = chooseRollbackCandidate(input({ bypasses: [{ key: 'CLERK_AUTH_BYPASS', onAt: T - 3 * H, offAt: null }] }));
    expect(codes(c)).toEqual({ dpl_c: ['bypass_flag'] });
    expect(c.chosen?.deployment.id).toBe('dpl_b');
    const byKeys = chooseRollbackCandidate(input({ deployments: [...base.slice(0, 3), dep('dpl_c', 2, { envKeys: ['CLERK_SECRET_KEY', 'CLERK_AUTH_BYPASS'] }), base[4]!] }));
    expect(codes(byKeys)).toEqual({ dpl_c: ['bypass_flag'] });
    expect(byKeys.chosen?.deployment.id).toBe('dpl_b');
  });

  it('not READY, never served production, built after the failure: each refused with its reason', () => {
    const c = chooseRollbackCandidate(
      input({
        deployments: [
          ...base.slice(0, 3),
          dep('dpl_c', 2, { state: 'ERROR' }),
          dep('dpl_staged', 1, { rollbackCandidate: false }),
          dep('dpl_later', -0.1),
          base[4]!,
        ],
      }),
    );
    expect(codes(c)).toEqual({ dpl_later: ['built_after_failure'], dpl_staged: ['not_rollback_candidate'], dpl_c: ['not_ready'] });
    expect(c.refused.map((r) => r.deployment.id)).toEqual(['dpl_later', 'dpl_staged', 'dpl_c']);
    expect(c.chosen?.deployment.id).toBe('dpl_b');
    // Not env faults: a rebuild would not help.
    expect(c.redeploy).toBeNull();
  });

  it('none at all: only the current deployment, or every earlier one refused, with why', () => {
    const alone = chooseRollbackCandidate(input({ deployments: [base[4]!] }));
    expect(alone.chosen).toBeNull();
    expect(alone.none).toBe('the platform lists no production deployment other than the current one');
    const empty = chooseRollbackCandidate(input({ deployments: [] }));
    expect(empty.chosen).toBeNull();
    expect(empty.none).toMatch(/no production deployment/);

    // A rotation just before the bad deploy: every earlier build carries the dead key.
    const dead = chooseRollbackCandidate(input({ rotations: [{ key: 'CLERK_SECRET_KEY', pushedAt: T - 0.5 * H }] }));
    expect(dead.chosen).toBeNull();
    expect(Object.values(codes(dead)).flat()).toEqual(['dead_key', 'dead_key', 'dead_key', 'dead_key']);
    expect(dead.none).toMatch(/^every earlier deployment was refused: dpl_c: .*retired key/);
    expect(dead.redeploy?.from.id).toBe('dpl_c');
  });

  it('the failure time unknown: no deployment is refused for its age; the current one is never a candidate', () => {
    const c = chooseRollbackCandidate(input({ failureStartedAt: null, healthy: [{ deploymentId: 'dpl_bad', at: T - 60_000, source: 'triage' }] }));
    expect(c.chosen?.deployment.id).toBe('dpl_c');
    expect(c.refused).toEqual([]);
  });

  it('is deterministic: the same input in any order gives the same choice', () => {
    const a = chooseRollbackCandidate(input());
    const b = chooseRollbackCandidate(input({ deployments: [...base].reverse() }));
    expect(b).toEqual(a);
  });
});

describe('describeDeployment and writesFromMarkers', () => {
  it('describes id, url, age, short commit, branch and the first line of the message', () => {
    const d = dep('dpl_c', 2, { commit: { sha: 'abcdef1234567890abcdef1234567890abcdef12', ref: 'main', message: 'Fix the header\n\nlong body' } });
    expect(describeDeployment(d, T)).toBe('dpl_c (example-app-c.vercel.app, 2 h old, abcdef1 on main: "Fix the header")');
    expect(describeDeployment(dep('dpl_x', 0.5, { commit: { sha: null, ref: null, message: null }, url: null }), T)).toBe('dpl_x (no url, 30 min old)');
  });

  it('a branch or url of the usual shape reads as is; any other is quoted', () => {
    const d = dep('dpl_c', 2, { commit: { sha: 'abcdef1', ref: 'feature/x-1', message: 'say "hi"' } });
    expect(describeDeployment(d, T)).toBe('dpl_c (example-app-c.vercel.app, 2 h old, abcdef1 on feature/x-1: "say \\"hi\\"")');
    expect(describeDeployment(dep('dpl_c', 2, { url: 'a b', commit: { sha: 'zz', ref: 'my branch', message: null } }), T)).toBe('dpl_c ("a b", 2 h old, "zz" (not a hex sha) on "my branch")');
  });

  /** A quoted field: a JSON string, which hostile text cannot close. */
  const Q = '"(?:[^"\\\\]|\\\\.)*"';
  const SHAPE = new RegExp(`^dpl_h \\((?:[\\w.:/-]+|${Q}), 2 h old, (?:[0-9a-f]{7}|${Q} \\(not a hex sha\\)) on (?:[\\w./-]+|${Q}): ${Q}\\)$`);
  const fields = ['message', 'ref', 'sha', 'url'] as const;
  it.each(HOSTILE_COMMIT_TEXTS.flatMap((h) => fields.map((field) => ({ ...h, field }))))('hostile commit text in the $field ($name): one line of visible text, bounded, inside its quotes', ({ text, field }) => {
    const commit = { sha: 'abcdef1234567890abcdef1234567890abcdef12', ref: 'main', message: 'Fix the header', ...(field === 'url' ? {} : { [field]: text }) };
    const shown = describeDeployment(dep('dpl_h', 2, { commit, ...(field === 'url' ? { url: text } : {}) }), T);
    expect(shown).not.toMatch(INVISIBLE);
    expect(shown).toMatch(SHAPE);
    expect(shown.length).toBeLessThan(600);
    // The hostile text is in the description, escaped (a forged line, if shown at all, is text inside a quote).
    if (text.includes(FORGED_EVENT_LINE) && shown.includes(FORGED_EVENT_LINE)) expect(shown).toMatch(/\\{1,2}[rnu]/);
    const parsed = [...shown.matchAll(new RegExp(Q, 'g'))].map((m) => JSON.parse(m[0]) as string);
    expect(parsed.length).toBeGreaterThan(0);
    for (const p of parsed) expect(p).not.toMatch(INVISIBLE);
  });

  it("reads the rotation's and the bypass's markers off the project env", () => {
    const writes = writesFromMarkers(
      [
        { key: 'CLERK_SECRET_KEY', comment: 'clerk-incident-runbook key fp_abc', createdAt: T - 10 * H, updatedAt: T - 3 * H },
        { key: 'CLERK_AUTH_BYPASS', comment: 'clerk-incident-runbook inc_1 bypass until 2026-12-02T18:00:00.000Z', createdAt: T - 1 * H, updatedAt: T - 1 * H },
        { key: 'CLERK_SECRET_KEY', comment: 'set by hand', createdAt: T, updatedAt: T },
        { key: 'OTHER', comment: 'clerk-incident-runbook key fp_x', createdAt: T, updatedAt: T },
      ],
      { flagKey: 'CLERK_AUTH_BYPASS', secretKeyName: 'CLERK_SECRET_KEY' },
    );
    expect(writes).toEqual({ rotations: [{ key: 'CLERK_SECRET_KEY', pushedAt: T - 3 * H }], bypasses: [{ key: 'CLERK_AUTH_BYPASS', onAt: T - 1 * H, offAt: null }] });
  });
});
