/** The emulated Slack: the real WebClient against its Web API, and the people's clicks, submissions and commands delivered signed to a receiver. */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, LogLevel, WebClient, type Logger, type WebAPIPlatformError, type WebAPIRateLimitedError } from '@slack/web-api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '../src';
import { SandboxAdminClient, SandboxAdminHttpError } from '../src/admin-client';

const TOKEN = 'xoxb-1111-2222-sandboxtesttoken';
const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const CHANNEL = 'C0SANDBOXINC';
const ALICE = 'U0SANDBOXALICE';
const BOB = 'U0SANDBOXBOB';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
}
type Answer = { status?: number; body?: string; contentType?: string; delayMs?: number };

/** The app's side: records every request and answers as the test says. */
let receiver: { url: string; requests: Received[]; answer: (r: Received) => Answer | Promise<Answer>; server: Server };
let sandbox: RunningSandbox;
let admin: SandboxAdminClient;
let web: WebClient;
/** The refusals are the point of these tests: the client need not log them. */
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, setLevel() {}, getLevel: () => LogLevel.ERROR, setName() {} };
const client = (token: string | undefined, options: Record<string, unknown> = {}) => new WebClient(token, { slackApiUrl: `${sandbox.url}/slack/api/`, retryConfig: { retries: 0 }, logger: quiet, ...options });

beforeAll(async () => {
  sandbox = await startSandbox({ users: 1, rateLimit: 'off' });
  admin = new SandboxAdminClient(sandbox.url);
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString('utf8')));
    req.on('end', () => {
      const r: Received = { path: req.url ?? '', headers: req.headers, raw };
      receiver.requests.push(r);
      void (async () => {
        const a = await receiver.answer(r);
        if (a.delayMs) await sleep(a.delayMs);
        if (res.destroyed) return;
        res.writeHead(a.status ?? 200, { 'content-type': a.contentType ?? 'application/json' }).end(a.body ?? '');
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('receiver has no port');
  receiver = { url: `http://127.0.0.1:${address.port}`, requests: [], answer: () => ({}), server };
  web = client(TOKEN);
});
afterAll(async () => {
  receiver.server.closeAllConnections();
  await new Promise((resolve) => receiver.server.close(resolve));
  await sandbox.close();
});
beforeEach(async () => {
  await admin.resetSlack();
  await admin.slackSettings({ botToken: TOKEN, signingSecret: SECRET, interactivityUrl: `${receiver.url}/slack/interactivity`, commandUrl: `${receiver.url}/slack/commands`, rateLimit: null });
  receiver.requests = [];
  receiver.answer = () => ({});
});

/** Slack's check, written from its docs ("Verifying requests from Slack") independently of the sandbox. */
function verify(r: Received, secret = SECRET, nowSeconds = Math.floor(Date.now() / 1000)): 'ok' | 'bad_signature' | 'stale' {
  const ts = String(r.headers['x-slack-request-timestamp']);
  if (Math.abs(nowSeconds - Number(ts)) > 300) return 'stale';
  const expected = Buffer.from(`v0=${createHmac('sha256', secret).update(`v0:${ts}:${r.raw}`).digest('hex')}`);
  const got = Buffer.from(String(r.headers['x-slack-signature']));
  return got.length === expected.length && timingSafeEqual(got, expected) ? 'ok' : 'bad_signature';
}
/** The fields of an interaction payload the tests read (the rest is matched with toMatchObject). */
interface Payload {
  type: string;
  trigger_id: string;
  user: { id: string };
  container: { message_ts: string };
  actions: { block_id: string }[];
  message: { blocks: unknown[] };
  view: { state: { values: Record<string, Record<string, { value: string | null }>> } };
}
const payloadOf = (r: Received) => JSON.parse(new URLSearchParams(r.raw).get('payload') ?? 'null') as Payload;

async function platformError(p: Promise<unknown>): Promise<WebAPIPlatformError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toMatchObject({ code: ErrorCode.PlatformError });
  return err as WebAPIPlatformError;
}

const approvalBlocks = [
  { type: 'header', text: { type: 'plain_text', text: 'Approval needed: revoke_all_sessions' } },
  { type: 'section', block_id: 'why', text: { type: 'mrkdwn', text: '*inc-1*: a leaked key' } },
  {
    type: 'actions',
    block_id: 'decide',
    elements: [
      { type: 'button', action_id: 'approve', text: { type: 'plain_text', text: 'Approve' }, value: 'inc-1/revoke_all_sessions', style: 'primary' },
      { type: 'button', action_id: 'reject', text: { type: 'plain_text', text: 'Reject' }, value: 'inc-1/revoke_all_sessions', style: 'danger' },
    ],
  },
];
const postApproval = () => web.chat.postMessage({ channel: CHANNEL, text: 'Approval needed', blocks: approvalBlocks });

describe('emulated Slack Web API, driven by the real WebClient', () => {
  it('answers auth.test with the bot identity', async () => {
    const me = await web.auth.test();
    expect(me).toMatchObject({ ok: true, team_id: 'T0SANDBOX', user_id: 'U0SANDBOXBOT', bot_id: 'B0SANDBOXBOT', url: 'https://sandbox.slack.com/' });
  });

  it('posts, replies in a thread, updates (keeping the history) and posts an ephemeral', async () => {
    const posted = await postApproval();
    expect(posted).toMatchObject({ ok: true, channel: CHANNEL, message: { text: 'Approval needed', bot_id: 'B0SANDBOXBOT' } });
    expect(posted.ts).toMatch(/^\d{10}\.\d{6}$/);
    const reply = await web.chat.postMessage({ channel: CHANNEL, text: 'Timeline: opened', thread_ts: posted.ts as string });
    expect(Number(reply.ts)).toBeGreaterThan(Number(posted.ts));
    const updated = await web.chat.update({ channel: CHANNEL, ts: posted.ts as string, text: 'Approved by alice', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'Approved by *alice*' } }] });
    expect(updated).toMatchObject({ ok: true, channel: CHANNEL, ts: posted.ts, text: 'Approved by alice' });
    const eph = await web.chat.postEphemeral({ channel: CHANNEL, user: BOB, text: 'Only you can see this' });
    expect(eph.message_ts).toMatch(/^\d{10}\.\d{6}$/);

    const o = await admin.slack();
    const [top] = o.channels[0]?.messages ?? [];
    expect(top).toMatchObject({ ts: posted.ts, text: 'Approved by alice', edits: 1, history: [{ text: 'Approval needed', by: 'chat.update' }], user: 'U0SANDBOXBOT' });
    expect(top?.history[0]?.blocks?.[2]).toMatchObject({ type: 'actions', block_id: 'decide' });
    expect(top?.replies).toEqual([expect.objectContaining({ ts: reply.ts, thread_ts: posted.ts, text: 'Timeline: opened' })]);
    expect(o.ephemerals).toEqual([expect.objectContaining({ message_ts: eph.message_ts, user: BOB, text: 'Only you can see this' })]);
    expect(o.settings).toMatchObject({ botTokenSet: true, signingSecretSet: true });
    expect(JSON.stringify(o)).not.toContain(TOKEN);
    expect(JSON.stringify(o)).not.toContain(SECRET);
    expect(o.calls.map((c) => c.method)).toEqual(['chat.postMessage', 'chat.postMessage', 'chat.update', 'chat.postEphemeral']);
  });

  it('refuses as Slack does: invalid_auth, not_authed, channel_not_found, thread_not_found, message_not_found, no_text, msg_too_long', async () => {
    const wrong = client('xoxb-not-the-token');
    expect((await platformError(wrong.chat.postMessage({ channel: CHANNEL, text: 'x' }))).data.error).toBe('invalid_auth');
    const none = client(undefined);
    expect((await platformError(none.auth.test())).data.error).toBe('not_authed');
    expect((await platformError(web.chat.postMessage({ channel: 'C0NOSUCH', text: 'x' }))).data.error).toBe('channel_not_found');
    expect((await platformError(web.chat.postMessage({ channel: CHANNEL, text: 'x', thread_ts: '1700000000.000001' }))).data.error).toBe('thread_not_found');
    expect((await platformError(web.chat.update({ channel: CHANNEL, ts: '1700000000.000001', text: 'x' }))).data.error).toBe('message_not_found');
    expect((await platformError(web.chat.postMessage({ channel: CHANNEL, text: '' }))).data.error).toBe('no_text');
    expect((await platformError(web.chat.postMessage({ channel: CHANNEL, text: 'x'.repeat(40_001) }))).data.error).toBe('msg_too_long');
    expect((await platformError(web.apiCall('chat.nosuch', {}))).data.error).toBe('unknown_method');
    // By name too, as Slack takes it.
    expect((await web.chat.postMessage({ channel: '#incidents', text: 'by name' })).channel).toBe(CHANNEL);
  });

  it('refuses invalid blocks with invalid_blocks and Slack-style messages naming the place', async () => {
    const cases: [unknown[], string][] = [
      [[{ type: 'section', text: { type: 'mrkdwn', text: 'x'.repeat(3001) } }], '[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]'],
      [[{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }], '[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]'],
      [[{ type: 'actions', elements: [{ type: 'button', action_id: 'a', text: { type: 'plain_text', text: 'b'.repeat(76) } }] }], 'json-pointer:/blocks/0/elements/0/text/text'],
      [[{ type: 'actions', elements: [{ type: 'button', action_id: 'a'.repeat(256), text: { type: 'plain_text', text: 'ok' } }] }], 'json-pointer:/blocks/0/elements/0/action_id'],
      [[{ type: 'actions', elements: [{ type: 'button', action_id: 'a', value: 'v'.repeat(2001), text: { type: 'plain_text', text: 'ok' } }] }], 'json-pointer:/blocks/0/elements/0/value'],
      [Array.from({ length: 51 }, () => ({ type: 'divider' })), '[ERROR] must be less than 51 items [json-pointer:/blocks]'],
      [[{ type: 'nonsense' }], 'json-pointer:/blocks/0/type'],
    ];
    for (const [blocks, message] of cases) {
      const err = await platformError(web.chat.postMessage({ channel: CHANNEL, text: 'x', blocks: blocks as never }));
      expect(err.data.error).toBe('invalid_blocks');
      expect(err.data.response_metadata?.messages?.join(' ')).toContain(message);
    }
    const raw = await fetch(`${sandbox.url}/slack/api/chat.postMessage`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'channel=C0SANDBOXINC&blocks=%5Bnot%20json' });
    expect(await raw.json()).toEqual({ ok: false, error: 'invalid_blocks_format' });
  });

  it('takes application/json bodies too', async () => {
    const res = await fetch(`${sandbox.url}/slack/api/chat.postMessage`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ channel: CHANNEL, text: 'json', blocks: approvalBlocks }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, channel: CHANNEL, message: { text: 'json' } });
  });

  it('rate limits with HTTP 429 and Retry-After, and injects failNext errors', async () => {
    await admin.slackSettings({ rateLimit: { perMinute: 1, method: 'chat.postMessage' } });
    await web.chat.postMessage({ channel: CHANNEL, text: 'first' });
    const strict = client(TOKEN, { rejectRateLimitedCalls: true });
    const err = (await strict.chat.postMessage({ channel: CHANNEL, text: 'second' }).catch((e: unknown) => e)) as WebAPIRateLimitedError;
    expect(err.code).toBe(ErrorCode.RateLimitedError);
    expect(err.retryAfter).toBeGreaterThanOrEqual(59);
    const raw = await fetch(`${sandbox.url}/slack/api/chat.postMessage`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ channel: CHANNEL, text: 'third' }) });
    expect(raw.status).toBe(429);
    expect(Number(raw.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await raw.json()).toEqual({ ok: false, error: 'ratelimited' });
    expect((await web.auth.test()).ok).toBe(true); // other methods are not limited

    await admin.slackSettings({ rateLimit: null, failNext: [{ method: 'chat.update', error: 'internal_error' }, { error: 'ratelimited', count: 1, retryAfterSeconds: 7 }] });
    const posted = await strict.chat.postMessage({ channel: CHANNEL, text: 'x' }).catch((e: unknown) => e);
    expect(posted).toMatchObject({ code: ErrorCode.RateLimitedError, retryAfter: 7 });
    const ok = await web.chat.postMessage({ channel: CHANNEL, text: 'x' });
    expect((await platformError(web.chat.update({ channel: CHANNEL, ts: ok.ts as string, text: 'y' }))).data.error).toBe('internal_error');
    expect((await web.chat.update({ channel: CHANNEL, ts: ok.ts as string, text: 'y' })).ok).toBe(true);
  });

  it('opens a modal with a fresh trigger_id once; a reused, expired or unknown one is refused', async () => {
    const posted = await postApproval();
    const click = await admin.slackClick({ ts: posted.ts as string, actionId: 'reject', userId: ALICE });
    const view = { type: 'modal' as const, callback_id: 'reject_reason', private_metadata: 'inc-1', title: { type: 'plain_text' as const, text: 'Reject' }, submit: { type: 'plain_text' as const, text: 'Reject' }, blocks: [{ type: 'input', block_id: 'reason', label: { type: 'plain_text', text: 'Why?' }, element: { type: 'plain_text_input', action_id: 'text' } }] };
    const opened = await web.views.open({ trigger_id: click.triggerId, view });
    expect(opened.view).toMatchObject({ id: expect.stringMatching(/^V[A-Z0-9]+$/), callback_id: 'reject_reason', private_metadata: 'inc-1', state: { values: {} }, title: { text: 'Reject' } });
    expect((await platformError(web.views.open({ trigger_id: click.triggerId, view }))).data.error).toBe('exchanged_trigger_id');
    const viewId = opened.view?.id as string;
    expect((await platformError(web.views.update({ view_id: viewId, hash: '1.stale', view }))).data.error).toBe('hash_conflict');
    const updated = await web.views.update({ view_id: viewId, hash: opened.view?.hash as string, view: { ...view, title: { type: 'plain_text', text: 'Reject, really?' } } });
    expect(updated.view).toMatchObject({ id: viewId, title: { text: 'Reject, really?' } });
    expect(updated.view?.hash).not.toBe(opened.view?.hash);
    expect((await platformError(web.views.open({ trigger_id: '123.456.abc', view }))).data.error).toBe('invalid_trigger_id');
    const late = await admin.slackClick({ ts: posted.ts as string, actionId: 'reject', userId: ALICE });
    await sleep(3100);
    expect((await platformError(web.views.open({ trigger_id: late.triggerId, view }))).data.error).toBe('expired_trigger_id');
    const bad = await admin.slackClick({ ts: posted.ts as string, actionId: 'reject', userId: ALICE });
    const invalid = await platformError(web.views.open({ trigger_id: bad.triggerId, view: { ...view, title: { type: 'plain_text', text: 't'.repeat(25) } } }));
    expect(invalid.data).toMatchObject({ error: 'invalid_arguments', response_metadata: { messages: ['[ERROR] must be less than 25 characters [json-pointer:/view/title/text]'] } });
    expect((await admin.slack()).views.map((v) => [v.user, v.status])).toEqual([[ALICE, 'open']]);
  });
});

describe('acting as a Slack user: deliveries to the app', () => {
  it('delivers a click as a signed block_actions payload the app can verify', async () => {
    const posted = await postApproval();
    receiver.answer = () => ({ status: 200, body: '' });
    const click = await admin.slackClick({ ts: posted.ts as string, actionId: 'approve', userId: ALICE });
    expect(click).toMatchObject({ status: 200, body: '', triggerId: expect.stringMatching(/^\d+\.\d+\.[0-9a-f]+$/), responseUrl: expect.stringMatching(new RegExp(`^${sandbox.url}/slack/response/`)) });
    expect(receiver.requests).toHaveLength(1);
    const [r] = receiver.requests as [Received];
    expect(r.path).toBe('/slack/interactivity');
    expect(r.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(r.headers['x-slack-retry-num']).toBeUndefined();
    expect(verify(r)).toBe('ok');
    const p = payloadOf(r);
    expect(p).toMatchObject({
      type: 'block_actions',
      user: { id: ALICE, username: 'alice', name: 'alice', team_id: 'T0SANDBOX' },
      api_app_id: 'A0SANDBOXAPP',
      container: { type: 'message', message_ts: posted.ts, channel_id: CHANNEL, is_ephemeral: false },
      trigger_id: click.triggerId,
      team: { id: 'T0SANDBOX', domain: 'sandbox' },
      enterprise: null,
      is_enterprise_install: false,
      channel: { id: CHANNEL, name: 'incidents' },
      message: { ts: posted.ts, text: 'Approval needed', bot_id: 'B0SANDBOXBOT' },
      state: { values: {} },
      response_url: click.responseUrl,
      actions: [{ action_id: 'approve', block_id: 'decide', value: 'inc-1/revoke_all_sessions', style: 'primary', type: 'button', text: { type: 'plain_text', text: 'Approve' }, action_ts: click.actionTs }],
    });
    expect(p.message.blocks).toHaveLength(3);
    expect((await admin.slack()).deliveries).toEqual([expect.objectContaining({ kind: 'block_actions', retryNum: 0, status: 200, signing: 'valid', url: `${receiver.url}/slack/interactivity` })]);
  });

  it('finds buttons in thread replies and ephemerals (only for their viewer), fills in Slack-generated block ids', async () => {
    const parent = await web.chat.postMessage({ channel: CHANNEL, text: 'parent' });
    const reply = await web.chat.postMessage({ channel: CHANNEL, thread_ts: parent.ts as string, text: 'x', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'ack?' }, accessory: { type: 'button', action_id: 'ack', text: { type: 'plain_text', text: 'Ack' } } }] });
    await admin.slackClick({ ts: reply.ts as string, actionId: 'ack', userId: BOB });
    const fromReply = payloadOf(receiver.requests[0] as Received);
    expect(fromReply.container).toMatchObject({ message_ts: reply.ts, thread_ts: parent.ts, is_ephemeral: false });
    expect(fromReply.actions[0]?.block_id).toMatch(/^[A-Za-z0-9_-]{5}$/);
    expect(fromReply.actions[0]).not.toHaveProperty('value');

    const eph = await web.chat.postEphemeral({ channel: CHANNEL, user: BOB, text: 'x', blocks: approvalBlocks });
    await admin.slackClick({ ts: eph.message_ts as string, actionId: 'approve', userId: BOB });
    const fromEphemeral = payloadOf(receiver.requests[1] as Received);
    expect(fromEphemeral.container).toMatchObject({ message_ts: eph.message_ts, is_ephemeral: true });
    expect(fromEphemeral).not.toHaveProperty('message');
    const notShown = await admin.slackClick({ ts: eph.message_ts as string, actionId: 'approve', userId: ALICE }).catch((e: unknown) => e);
    expect(notShown).toBeInstanceOf(SandboxAdminHttpError);
    expect(notShown).toMatchObject({ status: 409, body: { message: expect.stringContaining('shown only to bob') } });
  });

  it('refuses a click on a button that is not shown (409 naming the buttons there) and on a message that does not exist (404)', async () => {
    const posted = await postApproval();
    const missing = (await admin.slackClick({ ts: posted.ts as string, actionId: 'escalate', userId: ALICE }).catch((e: unknown) => e)) as SandboxAdminHttpError;
    expect(missing.status).toBe(409);
    expect(missing.message).toContain('no button with action_id escalate');
    expect(missing.message).toContain('approve (block decide, "Approve"), reject (block decide, "Reject")');
    const plain = await web.chat.postMessage({ channel: CHANNEL, text: 'no buttons' });
    expect(await admin.slackClick({ ts: plain.ts as string, actionId: 'approve', userId: ALICE }).catch((e: SandboxAdminHttpError) => e.message)).toContain('it shows no buttons');
    expect(await admin.slackClick({ ts: '1700000000.000001', actionId: 'approve', userId: ALICE }).catch((e: SandboxAdminHttpError) => e.status)).toBe(404);
    expect(await admin.slackClick({ ts: posted.ts as string, actionId: 'approve', userId: 'U0NOBODY' }).catch((e: SandboxAdminHttpError) => e.status)).toBe(400);
    expect(receiver.requests).toHaveLength(0);
  });

  it('retries send the identical body with X-Slack-Retry-Num, each newly signed', async () => {
    const posted = await postApproval();
    const click = await admin.slackClick({ ts: posted.ts as string, actionId: 'approve', userId: ALICE, retries: 2 });
    expect(click.deliveries.map((d) => d.retryNum)).toEqual([0, 1, 2]);
    expect(receiver.requests).toHaveLength(3);
    const [first, ...retries] = receiver.requests as [Received, ...Received[]];
    for (const [i, r] of retries.entries()) {
      expect(r.raw).toBe(first.raw);
      expect(r.headers['x-slack-retry-num']).toBe(String(i + 1));
      expect(r.headers['x-slack-retry-reason']).toBe('http_timeout');
      expect(verify(r)).toBe('ok');
    }
  });

  it('tamper, another secret and a stale timestamp fail the app’s verification', async () => {
    const posted = await postApproval();
    const ts = posted.ts as string;
    await admin.slackClick({ ts, actionId: 'approve', userId: ALICE, tamper: true });
    await admin.slackClick({ ts, actionId: 'approve', userId: ALICE, signingSecret: 'not-the-signing-secret' });
    await admin.slackClick({ ts, actionId: 'approve', userId: ALICE, timestampOffsetSeconds: -600 });
    const [tampered, otherSecret, stale] = receiver.requests as [Received, Received, Received];
    expect(verify(tampered)).toBe('bad_signature');
    expect(payloadOf(tampered).user.id).not.toBe(ALICE);
    expect(verify(otherSecret)).toBe('bad_signature');
    expect(verify(otherSecret, 'not-the-signing-secret')).toBe('ok');
    expect(verify(stale)).toBe('stale');
    expect(verify(stale, SECRET, Number(stale.headers['x-slack-request-timestamp']))).toBe('ok');
    expect((await admin.slack()).deliveries.map((d) => d.signing)).toEqual(['tampered', 'other_secret', 'valid']);
  });

  it('response_url: replace_original edits the message, a new ephemeral by default, and the 6th use is refused', async () => {
    const posted = await postApproval();
    const { responseUrl } = await admin.slackClick({ ts: posted.ts as string, actionId: 'approve', userId: ALICE });
    const respond = (body: unknown) => fetch(responseUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const replaced = await respond({ replace_original: true, text: 'Approved by alice', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'Approved by *alice*' } }] });
    expect(replaced.status).toBe(200);
    expect(await replaced.json()).toEqual({ ok: true });
    expect((await respond({ text: 'Thanks, noted' })).status).toBe(200);
    expect((await respond({ response_type: 'in_channel', text: 'alice approved', thread_ts: posted.ts })).status).toBe(200);
    expect((await respond({ text: 'x', blocks: [{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }] })).status).toBe(400);
    expect((await respond({ text: 'four' })).status).toBe(200);
    expect((await respond({ text: 'five' })).status).toBe(200);
    const sixth = await respond({ text: 'six' });
    expect(sixth.status).toBe(404);
    expect(await sixth.json()).toEqual({ ok: false, error: 'used_url' });

    const o = await admin.slack();
    const [top] = o.channels[0]?.messages ?? [];
    expect(top).toMatchObject({ text: 'Approved by alice', edits: 1, history: [{ text: 'Approval needed', by: 'response_url' }] });
    expect(top?.replies).toEqual([expect.objectContaining({ text: 'alice approved', via: 'response_url' })]);
    expect(o.ephemerals.map((e) => [e.user, e.text])).toEqual([[ALICE, 'Thanks, noted'], [ALICE, 'four'], [ALICE, 'five']]);
    const deleted = await admin.slackClick({ ts: posted.ts as string, actionId: 'approve', userId: ALICE }).catch((e: SandboxAdminHttpError) => e.status);
    expect(deleted).toBe(409); // the replacement shows no buttons
  });

  it('submits an open modal: errors keep it open, an empty 200 closes it', async () => {
    const posted = await postApproval();
    receiver.answer = async (r) => {
      const p = payloadOf(r);
      if (p.type === 'block_actions') {
        await web.views.open({ trigger_id: p.trigger_id, view: { type: 'modal', callback_id: 'reject_reason', private_metadata: p.container.message_ts, title: { type: 'plain_text', text: 'Reject' }, submit: { type: 'plain_text', text: 'Reject' }, blocks: [{ type: 'input', block_id: 'reason', label: { type: 'plain_text', text: 'Why?' }, element: { type: 'plain_text_input', action_id: 'text', multiline: true } }, { type: 'input', block_id: 'ticket', optional: true, label: { type: 'plain_text', text: 'Ticket' }, element: { type: 'plain_text_input', action_id: 'id' } }] } });
        return {};
      }
      const reason = p.view.state.values.reason?.text?.value ?? '';
      return reason.length < 10 ? { body: JSON.stringify({ response_action: 'errors', errors: { reason: 'Say a little more (10 characters)' } }) } : {};
    };
    await admin.slackClick({ ts: posted.ts as string, actionId: 'reject', userId: BOB });
    const [view] = (await admin.slack()).views;
    expect(view).toMatchObject({ user: BOB, status: 'open' });
    const viewId = view?.id as string;

    expect((await admin.slackSubmit({ viewId, userId: BOB, values: { reason: { text: '' } } }).catch((e: SandboxAdminHttpError) => e)).status).toBe(409);
    expect((await admin.slackSubmit({ viewId, userId: ALICE, values: { reason: { text: 'x' } } }).catch((e: SandboxAdminHttpError) => e)).status).toBe(409);
    const short = await admin.slackSubmit({ viewId, userId: BOB, values: { reason: { text: 'no' } } });
    expect(short).toMatchObject({ status: 200, closed: false, errors: { reason: 'Say a little more (10 characters)' } });
    const p = payloadOf(receiver.requests.at(-1) as Received);
    expect(verify(receiver.requests.at(-1) as Received)).toBe('ok');
    expect(p).toMatchObject({
      type: 'view_submission',
      user: { id: BOB, username: 'bob' },
      team: { id: 'T0SANDBOX' },
      api_app_id: 'A0SANDBOXAPP',
      trigger_id: expect.stringMatching(/^\d+\.\d+\.[0-9a-f]+$/),
      view: { id: viewId, type: 'modal', callback_id: 'reject_reason', private_metadata: posted.ts, hash: expect.any(String), state: { values: { reason: { text: { type: 'plain_text_input', value: 'no' } }, ticket: { id: { type: 'plain_text_input', value: null } } } } },
      response_urls: [],
    });
    const done = await admin.slackSubmit({ viewId, userId: BOB, values: { reason: { text: 'the key was never leaked' }, ticket: { id: 'SEC-12' } } });
    expect(done).toMatchObject({ status: 200, closed: true });
    expect((await admin.slack()).views[0]).toMatchObject({ status: 'submitted', submissions: [expect.objectContaining({ errors: { reason: expect.any(String) } }), expect.objectContaining({ values: { reason: { text: 'the key was never leaked' }, ticket: { id: 'SEC-12' } } })] });
    expect((await admin.slackSubmit({ viewId, userId: BOB, values: { reason: { text: 'again' } } }).catch((e: SandboxAdminHttpError) => e)).status).toBe(409);
  });

  it('delivers a slash command with Slack’s form fields and shows its answer', async () => {
    receiver.answer = (r) => {
      const text = new URLSearchParams(r.raw).get('text');
      return text === 'open' ? { body: JSON.stringify({ response_type: 'in_channel', text: 'Incident inc-7 opened' }) } : { contentType: 'text/plain', body: `Usage: /incident open <summary> (you said ${text})` };
    };
    const opened = await admin.slackCommand({ command: '/incident', text: 'open', userId: ALICE });
    expect(opened).toMatchObject({ status: 200, responseUrl: expect.stringContaining('/slack/response/'), triggerId: expect.any(String) });
    const [r] = receiver.requests as [Received];
    expect(r.path).toBe('/slack/commands');
    expect(verify(r)).toBe('ok');
    expect(Object.fromEntries(new URLSearchParams(r.raw))).toEqual({
      token: expect.any(String),
      team_id: 'T0SANDBOX',
      team_domain: 'sandbox',
      channel_id: CHANNEL,
      channel_name: 'incidents',
      user_id: ALICE,
      user_name: 'alice',
      command: '/incident',
      text: 'open',
      api_app_id: 'A0SANDBOXAPP',
      is_enterprise_install: 'false',
      response_url: opened.responseUrl,
      trigger_id: opened.triggerId,
    });
    await admin.slackCommand({ command: '/incident', text: 'help', userId: BOB, channel: 'incidents' });
    const o = await admin.slack();
    expect(o.channels[0]?.messages.map((m) => [m.text, m.via])).toEqual([['Incident inc-7 opened', 'slash_command']]);
    expect(o.ephemerals.map((e) => [e.user, e.text])).toEqual([[BOB, 'Usage: /incident open <summary> (you said help)']]);
    expect(o.deliveries.map((d) => d.kind)).toEqual(['slash_command', 'slash_command']);
  });

  it('records a delivery the app does not answer within 3 s as a timeout', async () => {
    const posted = await postApproval();
    receiver.answer = () => ({ delayMs: 3500 });
    const click = await admin.slackClick({ ts: posted.ts as string, actionId: 'approve', userId: ALICE });
    expect(click.status).toBe('timeout');
    expect(click.ms).toBeGreaterThanOrEqual(2900);
    expect(click.ms).toBeLessThan(3500);
    expect((await admin.slack()).deliveries).toEqual([expect.objectContaining({ status: 'timeout', kind: 'block_actions' })]);
  });

  it('refuses to deliver while the app has no URL', async () => {
    await admin.slackSettings({ interactivityUrl: null });
    const posted = await postApproval();
    const err = (await admin.slackClick({ ts: posted.ts as string, actionId: 'approve', userId: ALICE }).catch((e: unknown) => e)) as SandboxAdminHttpError;
    expect(err.status).toBe(409);
    expect(err.message).toContain('interactivityUrl is not set');
  });
});

describe('admin and the page for people', () => {
  it('validates settings and names the bad field', async () => {
    const err = (await admin.slackSettings({ channels: [{ id: 'bad', name: 'x' }] }).catch((e: unknown) => e)) as SandboxAdminHttpError;
    expect(err.status).toBe(400);
    expect(err.body).toMatchObject({ field: 'channels.0.id' });
    const o = await admin.slackSettings({ channels: [{ id: 'C0SANDBOXINC', name: 'incidents' }, { id: 'C0SANDBOXOPS', name: 'ops' }] });
    expect(o.settings.channels).toHaveLength(2);
    expect(o.settings.users.map((u) => u.id)).toEqual(['U0SANDBOXALICE', 'U0SANDBOXBOB', 'U0SANDBOXCAROL', 'U0SANDBOXDAVE', 'U0SANDBOXMALLORY']);
    await admin.slackSettings({ channels: [{ id: 'C0SANDBOXINC', name: 'incidents' }] });
  });

  it('renders the channels with every message string escaped, and clicks from a form as the chosen user', async () => {
    const hostile = '<script>alert(1)</script><img src=x onerror=alert(2)>';
    const posted = await web.chat.postMessage({ channel: CHANNEL, text: hostile, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: hostile } }, { type: 'actions', block_id: 'd', elements: [{ type: 'button', action_id: 'approve', value: '"><script>', text: { type: 'plain_text', text: `Approve ${hostile}` } }] }] });
    const page = await (await fetch(`${sandbox.url}/slack`)).text();
    expect(page).not.toContain('<script>');
    expect(page).not.toContain('<img');
    expect(page).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(page).toContain('<form method="post" action="/slack/ui/click"');
    expect(page).toContain('<option value="U0SANDBOXMALLORY">mallory</option>');

    const form = new URLSearchParams({ ts: posted.ts as string, channel: CHANNEL, actionId: 'approve', blockId: 'd', userId: 'U0SANDBOXCAROL' });
    const res = await fetch(`${sandbox.url}/slack/ui/click`, { method: 'POST', body: form, redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toMatch(/^\/slack\?as=U0SANDBOXCAROL&notice=/);
    expect(payloadOf(receiver.requests[0] as Received).user.id).toBe('U0SANDBOXCAROL');
  });
});
