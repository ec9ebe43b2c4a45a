/** The diagnostics rule table, from healthy and broken evidence (no I/O). */
import { describe, expect, it } from 'vitest';
import { diagnosticsConfig, loadEnv } from '../src/config';
import {
  cookieCovers,
  evaluateChecks,
  summarize,
  versionBelow,
  type CheckId,
  type DiagnosticsEvidence,
  type SessionEvidence,
  type Verdict,
} from '../src/diagnostics/rules';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 27, 12);

function session(status: string, lastedMs: number, grantedMs = 7 * DAY, endedAgoMs = 0): SessionEvidence {
  const updatedAt = NOW - endedAgoMs;
  const createdAt = updatedAt - lastedMs;
  return { id: `sess_${status}${lastedMs}`, status, createdAt, updatedAt, lastActiveAt: updatedAt - 1000, expireAt: createdAt + grantedMs };
}

function healthy(): DiagnosticsEvidence {
  return {
    kind: 'session_issues',
    settings: { authorizedParties: ['https://app.example.com'], minSdkVersion: '3.0.0', maxSessionLifetimeMs: 7 * DAY, appUrl: 'https://app.example.com', configuredKeyHost: 'clerk.example.com' },
    clerkClock: { kind: 'ok', value: { skewMs: 300, uncertaintyMs: 520 } },
    instance: {
      kind: 'ok',
      value: {
        instanceId: 'ins_1',
        environmentType: 'production',
        allowedOrigins: ['https://partner.test'],
        domains: [
          { name: 'example.com', isSatellite: false, frontendApiUrl: 'https://clerk.example.com', developmentOrigin: '' },
          { name: 'example-sat.com', isSatellite: true, frontendApiUrl: 'https://clerk.example-sat.com', developmentOrigin: '' },
        ],
      },
    },
    health: {
      kind: 'ok',
      value: {
        url: 'https://app.example.com/api/clerk-health',
        status: 200,
        middleware: 'ok',
        sdk: { name: '@clerk/backend', version: '3.25.0' },
        origin: 'https://app.example.com',
        cookieDomain: 'example.com',
        publishableKeyHost: 'clerk.example.com',
        clock: { skewMs: -200, uncertaintyMs: 510 },
      },
    },
    routes: { kind: 'ok', value: [{ url: 'https://app.example.com/a', status: 200 }, { url: 'https://app.example.com/b', status: 200 }] },
    token: { kind: 'ok', value: { azp: 'https://app.example.com', sessionId: 'sess_1', kid: 'ins_k', signature: 'valid', expiredForSeconds: 120 } },
    sessions: { kind: 'ok', value: [{ userId: 'user_1', sessions: [session('active', 2 * DAY), session('ended', DAY), session('expired', 7 * DAY, 7 * DAY, 10 * DAY)] }] },
  };
}

type Patch = (e: DiagnosticsEvidence) => void;
const verdictOf = (e: DiagnosticsEvidence, id: CheckId) => evaluateChecks(e).find((c) => c.id === id)!;

it('healthy evidence: every check ok, summary names no cause', () => {
  const checks = evaluateChecks(healthy());
  expect(checks.map((c) => [c.id, c.verdict])).toEqual([
    ['clock_skew', 'ok'],
    ['keys_match', 'ok'],
    ['domains_origins', 'ok'],
    ['authorized_parties', 'ok'],
    ['session_lifetime', 'ok'],
    ['middleware_sdk', 'ok'],
  ]);
  for (const c of checks) expect(c.fix).toBe('');
  expect(summarize('session_issues', checks)).toMatchObject({ verdict: 'ok', cause: null });
});

const cases: [string, CheckId, Verdict, Patch, RegExp][] = [
  ['Clerk 3 s ahead', 'clock_skew', 'warn', (e) => void (e.clerkClock = { kind: 'ok', value: { skewMs: 3000, uncertaintyMs: 500 } }), /\+3\.0 s.*60 s/],
  ['Clerk 30 s ahead', 'clock_skew', 'fail', (e) => void (e.clerkClock = { kind: 'ok', value: { skewMs: 30_000, uncertaintyMs: 500 } }), /not yet valid/],
  ['app 6 s behind', 'clock_skew', 'fail', (e) => void (e.health.kind === 'ok' && (e.health.value.clock = { skewMs: -6000, uncertaintyMs: 500 })), /app's clock −6\.0 s/],
  ['Clerk clock unreadable (timeout)', 'clock_skew', 'ok', (e) => void (e.clerkClock = { kind: 'error', message: 'no answer within 100 ms', timedOut: true }), /app's clock/],
  ['no clock at all (timeout)', 'clock_skew', 'warn', (e) => {
    e.clerkClock = { kind: 'error', message: 'no answer within 100 ms', timedOut: true };
    e.health = { kind: 'skipped', reason: 'no health route' };
  }, /cut at its timeout/],
  ['app reports a foreign publishable key', 'keys_match', 'fail', (e) => void (e.health.kind === 'ok' && (e.health.value.publishableKeyHost = 'other.clerk.accounts.dev')), /other\.clerk\.accounts\.dev.*different instances/],
  ['configured key does not decode', 'keys_match', 'fail', (e) => void (e.settings.configuredKeyHost = null), /not a valid publishable key/],
  ['satellite frontend API counts', 'keys_match', 'ok', (e) => void (e.settings.configuredKeyHost = 'clerk.example-sat.com'), /clerk\.example-sat\.com/],
  ['no key anywhere', 'keys_match', 'skipped', (e) => {
    delete e.settings.configuredKeyHost;
    if (e.health.kind === 'ok') delete e.health.value.publishableKeyHost;
  }, /CLERK_PUBLISHABLE_KEY/],
  ['instance unreadable', 'keys_match', 'warn', (e) => void (e.instance = { kind: 'error', message: 'ClerkUnavailable: 503', timedOut: false }), /could not be checked/],
  ['origin outside the domains', 'domains_origins', 'fail', (e) => void (e.settings.appUrl = 'https://app.elsewhere.test'), /none of the instance's domains/],
  ['origin is a satellite', 'domains_origins', 'fail', (e) => void (e.settings.appUrl = 'https://www.example-sat.com'), /satellite example-sat\.com.*does not cover/],
  ['origin in allowed_origins, cookie elsewhere', 'domains_origins', 'fail', (e) => void (e.settings.appUrl = 'https://partner.test'), /allowed origin/],
  ['cookie domain does not cover the origin', 'domains_origins', 'fail', (e) => void (e.health.kind === 'ok' && (e.health.value.cookieDomain = 'other.example.com')), /does not cover app\.example\.com/],
  ['origin unknown', 'domains_origins', 'skipped', (e) => {
    delete e.settings.appUrl;
    if (e.health.kind === 'ok') delete e.health.value.origin;
  }, /APP_URL/],
  ['azp not authorized', 'authorized_parties', 'fail', (e) => void (e.token.kind === 'ok' && (e.token.value.azp = 'https://evil.example.net')), /evil\.example\.net.*rejects/],
  ['no parties configured', 'authorized_parties', 'warn', (e) => void (e.settings.authorizedParties = []), /not checked/],
  ['token from another instance', 'authorized_parties', 'fail', (e) => void (e.token.kind === 'ok' && (e.token.value.signature = 'no_matching_key')), /not this instance's/],
  ['no token', 'authorized_parties', 'skipped', (e) => void (e.token = { kind: 'skipped', reason: 'no session token given' }), /no session token/],
  ['many short expired sessions', 'session_lifetime', 'fail', (e) => {
    e.sessions = { kind: 'ok', value: [{ userId: 'user_2', sessions: [session('active', 60_000, 600_000), ...[1, 2, 3, 4].map((k) => session('expired', 600_000, 600_000, k * 600_000))] }] };
  }, /user_2: 5 sessions \(1 active, 4 expired\); expired after median 10m; granted 10m; configured max lifetime 7d/],
  ['one short expired session', 'session_lifetime', 'warn', (e) => {
    e.sessions = { kind: 'ok', value: [{ userId: 'user_3', sessions: [session('expired', 3_600_000, 7 * DAY)] }] };
  }, /user_3/],
  ['short expiry explained by the inactivity timeout', 'session_lifetime', 'ok', (e) => {
    e.settings.inactivityTimeoutMs = 2 * 3_600_000;
    e.sessions = { kind: 'ok', value: [{ userId: 'user_4', sessions: [session('expired', 2 * 3_600_000, 7 * DAY)] }] };
  }, /inactivity timeout 2h/],
  ['no users', 'session_lifetime', 'skipped', (e) => void (e.sessions = { kind: 'skipped', reason: 'no user ids given' }), /no user ids/],
  ['middleware failing, all routes 500', 'middleware_sdk', 'fail', (e) => {
    if (e.health.kind === 'ok') e.health.value.middleware = 'failing';
    e.routes = { kind: 'ok', value: [{ url: 'https://app.example.com/a', status: 500 }, { url: 'https://app.example.com/b', status: 500 }] };
  }, /all 2 app routes answer 5xx/],
  ['some routes 500', 'middleware_sdk', 'warn', (e) => void (e.routes = { kind: 'ok', value: [{ url: 'https://app.example.com/a', status: 500 }, { url: 'https://app.example.com/b', status: 200 }] }), /1 of 2.*not the middleware/],
  ['old SDK', 'middleware_sdk', 'warn', (e) => void (e.health.kind === 'ok' && (e.health.value.sdk = { name: '@clerk/backend', version: '0.9.1' })), /0\.9\.1 is older than the minimum 3\.0\.0/],
  ['health route hangs', 'middleware_sdk', 'warn', (e) => void (e.health = { kind: 'error', message: 'no answer within 100 ms', timedOut: true }), /cut at its timeout/],
];

describe('each rule from broken evidence', () => {
  it.each(cases)('%s → %s %s', (_name, id, verdict, patch, evidence) => {
    const e = healthy();
    patch(e);
    const check = verdictOf(e, id);
    expect(check.verdict).toBe(verdict);
    expect(check.evidence).toMatch(evidence);
    if (verdict === 'warn' || verdict === 'fail') expect(check.fix).toMatch(/\.$/);
    if (id === 'session_lifetime' && verdict === 'fail') expect(check.fix).toMatch(/back to max lifetime 7d \(the instance grants 10m\)/);
    // One broken input breaks its own check only (an unreadable instance also leaves the domains unchecked).
    const others = evaluateChecks(e).filter((c) => c.id !== id && c.verdict !== 'ok' && c.verdict !== 'skipped');
    expect(others.map((c) => c.id)).toEqual(e.instance.kind === 'error' ? ['domains_origins'] : []);
  });
});

/** The remedy column: the kind each broken check gets, and what it names. */
const remedies: [string, CheckId, Patch, string, RegExp][] = [
  ['origin outside the domains, its cookie on its own domain', 'domains_origins', (e) => {
    e.settings.appUrl = 'https://app.elsewhere.test';
    if (e.health.kind === 'ok') e.health.value.cookieDomain = 'elsewhere.test';
  }, 'allowed_origins', /add https:\/\/app\.elsewhere\.test to the instance's allowed_origins \(PATCH \/v1\/instance; now https:\/\/partner\.test/],
  ['origin outside the domains, cookie elsewhere too', 'domains_origins', (e) => {
    e.settings.appUrl = 'https://app.elsewhere.test';
    if (e.health.kind === 'ok') e.health.value.cookieDomain = 'example.com';
  }, 'by_hand', /by hand: Serve the app from the instance's domain, or add https:\/\/app\.elsewhere\.test as a satellite domain/],
  ['cookie domain does not cover the origin', 'domains_origins', (e) => void (e.health.kind === 'ok' && (e.health.value.cookieDomain = 'other.example.com')), 'by_hand', /by hand: Set the session cookie on a domain covering app\.example\.com/],
  ['the instance grants 10 min', 'session_lifetime', (e) => {
    e.sessions = { kind: 'ok', value: [{ userId: 'user_2', sessions: [1, 2, 3, 4].map((k) => session('expired', 600_000, 600_000, k * 600_000)) }] };
  }, 'session_lifetime', /set the instance's maximum session lifetime to 7d \(the instance grants 10m\)/],
  ['the instance grants 7 d, sessions still end early', 'session_lifetime', (e) => {
    e.sessions = { kind: 'ok', value: [{ userId: 'user_5', sessions: [1, 2, 3].map((k) => session('expired', 600_000, 7 * DAY, k * 600_000)) }] };
  }, 'targeted_revocation', /end the sessions of user_5: the instance grants the right lifetime/],
  ['Clerk 30 s ahead', 'clock_skew', (e) => void (e.clerkClock = { kind: 'ok', value: { skewMs: 30_000, uncertaintyMs: 500 } }), 'by_hand', /by hand: Synchronise the clock of .* with NTP/],
  ['a foreign publishable key', 'keys_match', (e) => void (e.health.kind === 'ok' && (e.health.value.publishableKeyHost = 'other.clerk.accounts.dev')), 'by_hand', /by hand: Deploy the app with the publishable key and the secret key of the same Clerk instance/],
  ['a foreign publishable key deployed, the worker\'s own key names the instance, the app\'s env var known', 'keys_match', (e) => {
    if (e.health.kind === 'ok') e.health.value.publishableKeyHost = 'other.clerk.accounts.dev';
    e.settings.publishableKeyEnv = 'NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY';
  }, 'deployed_publishable_key', /^set the app's NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY to the worker's CLERK_PUBLISHABLE_KEY \(names clerk\.example\.com; the app's names other\.clerk\.accounts\.dev\) through the deploy adapter, and redeploy$/],
  ['a foreign publishable key deployed and the worker\'s own key foreign too: by hand', 'keys_match', (e) => {
    if (e.health.kind === 'ok') e.health.value.publishableKeyHost = 'other.clerk.accounts.dev';
    e.settings.configuredKeyHost = 'third.clerk.accounts.dev';
    e.settings.publishableKeyEnv = 'NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY';
  }, 'by_hand', /by hand: Deploy the app with the publishable key/],
  ['azp not authorized', 'authorized_parties', (e) => void (e.token.kind === 'ok' && (e.token.value.azp = 'https://evil.example.net')), 'by_hand', /CLERK_AUTHORIZED_PARTIES/],
];

describe('the remedy of each broken check', () => {
  it.each(remedies)('%s → a remedy for %s', (_name, id, patch, kind, changes) => {
    const e = healthy();
    patch(e);
    const check = verdictOf(e, id);
    expect(check.remedy).toMatchObject({ check: id, kind, gated: kind !== 'by_hand' });
    expect(check.remedy?.changes).toMatch(changes);
    expect(check.remedy?.verifiedBy).toContain(`runs ${id} again`);
  });

  it('a check that passes has no remedy', () => {
    for (const c of evaluateChecks(healthy())) expect(c.remedy).toBeUndefined();
  });
});

describe('summary', () => {
  it('names the most likely cause for the kind, and its fix', () => {
    const e = healthy();
    e.clerkClock = { kind: 'ok', value: { skewMs: 30_000, uncertaintyMs: 500 } };
    if (e.health.kind === 'ok') e.health.value.publishableKeyHost = 'other.clerk.accounts.dev';
    const checks = evaluateChecks(e);
    const sessions = summarize('session_issues', checks);
    expect(sessions).toMatchObject({ verdict: 'fail', cause: 'clock_skew' });
    expect(sessions.text).toMatch(/^Most likely cause: clock skew \(1 more failing: keys_match\)\. Synchronise/);
    expect(summarize('middleware_failure', checks)).toMatchObject({ verdict: 'fail', cause: 'keys_match' });
  });

  it('a warn is named when nothing fails', () => {
    const e = healthy();
    if (e.health.kind === 'ok') e.health.value.sdk = { name: '@clerk/backend', version: '2.1.0' };
    expect(summarize('middleware_failure', evaluateChecks(e))).toMatchObject({ verdict: 'warn', cause: 'middleware_sdk' });
  });
});

describe('helpers', () => {
  it('versions, cookie domains', () => {
    expect(versionBelow('2.9.9', '3.0.0')).toBe(true);
    expect(versionBelow('3.0.0-beta.1', '3.0.0')).toBe(false);
    expect(versionBelow('10.0.0', '3.0.0')).toBe(false);
    expect(versionBelow('latest', '3.0.0')).toBeNull();
    expect(cookieCovers('.example.com', 'app.example.com')).toBe(true);
    expect(cookieCovers('example.com', 'badexample.com')).toBe(false);
  });
});

describe("the app's publishable key env var (APP_PUBLISHABLE_KEY_ENV)", () => {
  it('defaults to the Next.js name, takes another, and refuses what is not an env var name', () => {
    expect(diagnosticsConfig(loadEnv({})).publishableKeyEnv).toBe('NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY');
    expect(diagnosticsConfig(loadEnv({ APP_PUBLISHABLE_KEY_ENV: 'VITE_CLERK_PUBLISHABLE_KEY' })).publishableKeyEnv).toBe('VITE_CLERK_PUBLISHABLE_KEY');
    for (const bad of ['lower_case', 'A B', 'KEY;rm -rf', '']) expect(() => loadEnv({ APP_PUBLISHABLE_KEY_ENV: bad })).toThrow(/APP_PUBLISHABLE_KEY_ENV: must be an env var name/);
  });
});
