/**
 * Secret shapes and innocent look-alikes (tests/secret-patterns.test.ts, the bad-input tables,
 * tests/secret-handling.test.ts). Built from pieces so that no scanner takes this file for a leak.
 */
const r = (n: number, alphabet = 'AbCdEfGhJkMnPqRsTuVwXyZ23456789') => Array.from({ length: n }, (_, i) => alphabet[(i * 7 + 3) % alphabet.length]).join('');

/** what it is, a text that carries it (inside a sentence, as people paste them). */
export const SECRET_SAMPLES: [kind: string, text: string][] = [
  ['Clerk live secret key', `the key is ${'sk_' + 'live_'}${r(40)} sorry`],
  ['Clerk test secret key', `${'sk_' + 'test_'}${r(40)}`],
  ['Clerk restricted key', `rk_${'live_'}${r(30)}`],
  ['Clerk/Svix webhook secret', `signing secret: ${'wh' + 'sec_'}${r(32)}=`],
  ['Svix-style API token', `svix token ${'test' + 'sk_'}${r(32)}`],
  ['Vercel token (prefixed)', `${'vc' + 'p_'}${r(40)}`],
  ['Vercel token (assigned)', `VERCEL_${'TOKEN'}=${r(24)}`],
  ['GitHub personal token', `${'gh' + 'p_'}${r(36)}`],
  ['GitHub fine-grained token', `${'github' + '_pat_'}${r(22)}_${r(59)}`],
  ['AWS access key id', `aws key ${'AK' + 'IA'}${r(16, 'ABCDEFGHJKLMNPQRSTUVWXYZ234567')}`],
  ['AWS secret (assigned)', `AWS_SECRET_ACCESS_KEY: ${r(40)}`],
  ['Slack bot token', `${'xo' + 'xb-'}1234567890-${r(24)}`],
  ['Slack webhook', `https://hooks.slack.com/services/T${r(8)}/B${r(8)}/${r(24)}`],
  ['Vault token', `${'hv' + 's.'}${r(90)}`],
  ['bearer token', `curl -H "Authorization: ${'Bea' + 'rer'} ${r(32)}"`],
  ['JWT', `${'ey' + 'J'}hbGciOiJSUzI1NiJ9.${'ey' + 'J'}zdWIiOiJ1c2VyXzEifQ.${r(40)}`],
  ['private key (PEM)', `-----BEGIN ${'OPENSSH PRIVATE'} KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----`],
  ['RSA private key (PEM)', `-----BEGIN ${'RSA PRIVATE'} KEY-----`],
  ['payload encryption key', `k1:${r(43, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')}=`],
  ['LLM API key', `${'sk-' + 'proj-'}${r(40)}`],
  ['database password (assigned)', `DB_${'PASSWORD'}="${r(16)}"`],
];

/** Text that mentions secrets without carrying one: it must pass. */
export const INNOCENT_SAMPLES: [what: string, text: string][] = [
  ['a publishable key (public)', `pk_test_${'Y2xlcmsuZXhhbXBsZS5jb20k'}`],
  ['the prefix alone', 'sk_test_ keys are for development, sk_live_ for production'],
  ['an elided key', 'the key sk_live_… was pasted in a gist'],
  ['a fingerprint', 'old key 3505d842 replaced by 9c1e77ab'],
  ['Clerk ids', 'user_2abcDEF123 sess_2xyz ins_2abc dpl_abc123 prj_12345'],
  ['a key reference', 'stored at env:CLERK_SECRET_KEY_NEXT, file:/run/secrets/clerk-new and vault:secret/clerk#next_secret_key'],
  ['a variable named, no value', 'rotated VERCEL_TOKEN and CLERK_SECRET_KEY: done'],
  ['a short assignment', 'VERCEL_TOKEN=rotated'],
  ['a reference assigned', 'CLERK_SECRET_KEY_REF=env:CLERK_SECRET_KEY_NEXT_2026'],
  ['words ending in sk_', 'risk_test_plan_document and desk_live_schedule_for_everyone'],
  ['the word bearer', 'the Bearer token expired at 09:00'],
  ['a public key', '-----BEGIN PUBLIC KEY----- is fine to share'],
  ['an AWS prefix named', 'AKIA is how AWS access key ids start'],
  ['a URL', 'see https://dashboard.clerk.com/apps and https://hooks.slack.com/'],
  ['a sentence', 'Sign-ins fail with 401 since 08:40; the secret key was rotated by alice.'],
  ['a git commit', 'deployed 3f9c1d2e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d'],
];
