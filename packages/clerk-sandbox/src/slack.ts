/**
 * The sandbox's Slack (routes/slack.ts): the Web API methods the runbook calls (auth.test,
 * chat.postMessage / update / postEphemeral, views.open / update), the workspace's channels with
 * every message and its edits, ephemerals and modals, and the people in it: a click, a modal
 * submission or a slash command is built as Slack builds it, signed as Slack signs it ("Verifying
 * requests from Slack"), POSTed to the app with Slack's 3 s patience, and recorded.
 * Shapes, codes and limits from docs.slack.dev (chat.postMessage, views.open / push, Block Kit,
 * "Handling user interaction"); where Slack documents no answer (a thread_ts that names no thread,
 * a spent response_url) the code is the sandbox's choice, said so where it is made.
 */
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { z } from 'zod';
import { SandboxInputError } from './schemas';
import { buttonsOf, messageBlocksSchema, modalViewSchema, slackMessages, withIds, type ModalView, type SlackBlock } from './slack-blocks';

export const SLACK_LIMITS = {
  /** chat.postMessage: more is `msg_too_long`. */
  textMax: 40_000,
  /** A trigger_id opens a modal within 3 s of the interaction, once. */
  triggerTtlMs: 3000,
  /** A response_url takes 5 messages within 30 min. */
  responseUrlUses: 5,
  responseUrlTtlMs: 30 * 60_000,
  /** Slack waits 3 s for the app's answer to an interaction or a command. */
  deliveryTimeoutMs: 3000,
} as const;

export const SLACK_DEFAULT_CHANNELS = [{ id: 'C0SANDBOXINC', name: 'incidents' }];
/** The ids config/roster.sample.yaml gives its people as `chatUserId`. */
export const SLACK_DEFAULT_USERS = ['alice', 'bob', 'carol', 'dave', 'mallory'].map((name) => ({ id: `U0SANDBOX${name.toUpperCase()}`, name }));
/** The app's own bot in the emulated workspace. */
export const SLACK_BOT = { userId: 'U0SANDBOXBOT', botId: 'B0SANDBOXBOT', appId: 'A0SANDBOXAPP', name: 'incident-runbook' } as const;

const slackId = (first: string) => z.string().regex(new RegExp(`^[${first}][A-Z0-9]{2,20}$`), `must be a Slack id (${first.split('').join(' or ')}, then capital letters and digits)`);
const named = (first: string) => z.object({ id: slackId(first), name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,79}$/, 'must be lowercase letters, digits, . _ or -') }).strict();
const uniqueIds = (list: { id: string }[], ctx: z.RefinementCtx) => {
  const ids = list.map((x) => x.id);
  ids.forEach((id, i) => ids.indexOf(id) !== i && ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `${id} is listed twice` }));
};
const methodName = z.string().regex(/^[a-z]+(\.[a-zA-Z]+)+$/, 'must be a Web API method, e.g. chat.postMessage');
const failRule = z
  .object({
    /** The method that fails; any method when absent. */
    method: methodName.optional(),
    /** The Slack error code answered (`{ok:false, error}`); `ratelimited` answers HTTP 429 with Retry-After. */
    error: z.string().regex(/^[a-z_]+$/, 'must be a Slack error code, e.g. internal_error'),
    count: z.number().int().min(1).max(1000).default(1),
    /** Calls of the method answered normally before the failures start (e.g. 1: a thread's first message posts, its first reply fails). */
    after: z.number().int().min(0).max(1000).default(0),
    retryAfterSeconds: z.number().int().min(0).max(3600).optional(),
  })
  .strict();
type FailRule = z.output<typeof failRule>;
const rateLimit = z.object({ perMinute: z.number().int().min(1).max(100_000), method: methodName.optional() }).strict();
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

export const slackSettingsSchema = z
  .object({
    /** The token the app calls with (`Authorization: Bearer`); null: every call is `invalid_auth`. */
    botToken: z.string().regex(/^xoxb-[A-Za-z0-9-]{8,200}$/, 'must be a bot token (xoxb-…)').nullable().optional(),
    /** Signs what the sandbox sends the app; null: sent unsigned. */
    signingSecret: z.string().min(8).max(200).nullable().optional(),
    /** The app's Interactivity Request URL (clicks, modal submissions). */
    interactivityUrl: httpUrl.nullable().optional(),
    /** The app's slash command Request URL. */
    commandUrl: httpUrl.nullable().optional(),
    channels: z.array(named('CG')).min(1).max(100).superRefine(uniqueIds).optional(),
    users: z.array(named('UW')).min(1).max(100).superRefine(uniqueIds).optional(),
    team: z.object({ id: slackId('T'), domain: z.string().regex(/^[a-z0-9-]{1,80}$/, 'must be lowercase letters, digits or -') }).strict().optional(),
    /** The next `count` calls (of `method`, or any) answer `error`; a list applies each rule in turn. */
    failNext: z.union([failRule, z.array(failRule).max(20)]).nullable().optional(),
    /** Calls per method per 60 s before HTTP 429 (Slack's tiers: 1 to 100+ a minute); null: no limit. */
    rateLimit: rateLimit.nullable().optional(),
  })
  .strict();
export type SlackSettings = z.input<typeof slackSettingsSchema>;

const deliveryOptions = {
  /** Sends the identical body this many more times, with X-Slack-Retry-Num 1..n (as Slack retries an event). */
  retries: z.number().int().min(0).max(5).default(0),
  /** Changes the body after signing it (the acting user's id swapped for another's). */
  tamper: z.boolean().default(false),
  /** Signs with this secret instead of the configured one. */
  signingSecret: z.string().min(1).max(200).optional(),
  /** Shifts X-Slack-Request-Timestamp (a replayed, stale request: -600). */
  timestampOffsetSeconds: z.number().int().min(-2_592_000).max(2_592_000).default(0),
};
const userId = slackId('UW');
export const slackClickSchema = z
  .object({ ts: z.string().regex(/^\d+\.\d{6}$/, 'must be a message ts, e.g. 1733250000.000100'), channel: z.string().min(1).optional(), actionId: z.string().min(1).max(255), userId, blockId: z.string().min(1).max(255).optional(), ...deliveryOptions })
  .strict();
export type SlackClickBody = z.input<typeof slackClickSchema>;
export const slackSubmitSchema = z
  .object({ viewId: z.string().regex(/^V[A-Z0-9]+$/, 'must be a view id (V…)'), userId, values: z.record(z.string(), z.record(z.string(), z.string().max(3000))).default({}), ...deliveryOptions })
  .strict();
export type SlackSubmitBody = z.input<typeof slackSubmitSchema>;
export const slackCommandSchema = z
  .object({ command: z.string().regex(/^\/[a-z0-9_-]{1,31}$/, 'must be a slash command, e.g. /incident'), text: z.string().max(4000).default(''), userId, channel: z.string().min(1).optional(), ...deliveryOptions })
  .strict();
export type SlackCommandBody = z.input<typeof slackCommandSchema>;
type DeliveryOptions = Pick<z.output<typeof slackClickSchema>, 'retries' | 'tamper' | 'signingSecret' | 'timestampOffsetSeconds'>;

/** What an app's `response_url` POST may carry. */
const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);
const responseBodySchema = z.looseObject({
  text: z.string().optional(),
  blocks: z.unknown().optional(),
  replace_original: bool.optional(),
  delete_original: bool.optional(),
  response_type: z.enum(['ephemeral', 'in_channel']).optional(),
  thread_ts: z.string().optional(),
});

// -- records ----------------------------------------------------------------------------------

export interface SlackUser {
  id: string;
  name: string;
}
export type SlackChannel = SlackUser;

/** A message's earlier content, kept at each edit. */
export interface SlackMessageVersion {
  text: string;
  blocks: SlackBlock[] | null;
  /** When it was replaced, and by what. */
  replacedAt: string;
  by: 'chat.update' | 'response_url';
}

export interface SlackMessage {
  channel: string;
  ts: string;
  /** The thread's parent ts for a reply; null for a top-level message. */
  thread_ts: string | null;
  /** The bot user (every message here is the app's). */
  user: string;
  text: string;
  blocks: SlackBlock[] | null;
  metadata: unknown;
  postedAt: string;
  via: 'chat.postMessage' | 'response_url' | 'slash_command';
  edits: number;
  history: SlackMessageVersion[];
  deleted: boolean;
}

export interface SlackEphemeral extends Omit<SlackMessage, 'user' | 'ts' | 'via' | 'metadata'> {
  message_ts: string;
  /** The only person who sees it. */
  user: string;
  via: 'chat.postEphemeral' | 'response_url' | 'slash_command';
}

export interface SlackViewRecord {
  id: string;
  /** Whose screen the modal is on. */
  user: string;
  /** open; submitted (an answer closed it); closed (`response_action: clear`). */
  status: 'open' | 'submitted' | 'closed';
  view: ModalView;
  hash: string;
  triggerId: string;
  openedAt: string;
  submissions: { at: string; values: Record<string, Record<string, string>>; status: DeliveryStatus; errors?: Record<string, string> }[];
}

type DeliveryKind = 'block_actions' | 'view_submission' | 'slash_command';
type DeliveryStatus = number | 'timeout' | 'unreachable';
export interface SlackDelivery {
  seq: number;
  kind: DeliveryKind;
  url: string;
  /** 0 for the first send; X-Slack-Retry-Num of a retry. */
  retryNum: number;
  /** The app's HTTP status, `timeout` past 3 s (Slack shows the user an error), `unreachable` when nothing listened. */
  status: DeliveryStatus;
  ms: number;
  /** The app's answer (first 2000 characters). */
  body: string;
  at: string;
  /** How it was signed: as Slack would, tampered after signing, with another secret, or not at all. */
  signing: 'valid' | 'tampered' | 'other_secret' | 'unsigned';
  timestamp: number;
}

export interface SlackCallRecord {
  seq: number;
  at: string;
  method: string;
  ok: boolean;
  error?: string;
  status: 200 | 429;
}

export interface SlackOverview {
  settings: {
    botTokenSet: boolean;
    signingSecretSet: boolean;
    interactivityUrl: string | null;
    commandUrl: string | null;
    channels: SlackChannel[];
    users: SlackUser[];
    team: { id: string; domain: string };
    bot: typeof SLACK_BOT;
    failNext: FailRule[];
    rateLimit: z.output<typeof rateLimit> | null;
  };
  channels: (SlackChannel & { messages: (SlackMessage & { replies: SlackMessage[] })[] })[];
  ephemerals: SlackEphemeral[];
  views: SlackViewRecord[];
  deliveries: SlackDelivery[];
  /** Every Web API call, answered or refused. */
  calls: SlackCallRecord[];
}

interface DeliveryResult {
  status: DeliveryStatus;
  /** The app's answer, whole. */
  body: string;
  ms: number;
  deliveries: SlackDelivery[];
}
export interface SlackClickResult extends DeliveryResult {
  triggerId: string;
  responseUrl: string;
  actionTs: string;
}
export interface SlackSubmitResult extends DeliveryResult {
  /** The modal closed (an empty 200, `response_action: clear` or `update` excepted). */
  closed: boolean;
  errors?: Record<string, string>;
}
export interface SlackCommandResult extends DeliveryResult {
  triggerId: string;
  responseUrl: string;
}

export type SlackApiAnswer = { status: 200 | 429; body: { ok: boolean } & Record<string, unknown>; retryAfterSeconds?: number };
export type SlackResponseUrlAnswer = { status: 200 | 400 | 404; body: { ok: boolean; error?: string } };

/** A Web API refusal: `{ok: false, error: code}` (with Slack's `response_metadata.messages` when it gives them). */
class SlackApiError extends Error {
  override readonly name = 'SlackApiError';
  constructor(readonly code: string, readonly messages?: string[]) {
    super(code);
  }
}

/** An admin request the emulated people cannot do (no such message, a button that is not shown): 404 or 409. */
export class SlackRefusal extends Error {
  override readonly name = 'SlackRefusal';
  constructor(readonly status: 404 | 409, message: string) {
    super(message);
  }
}

/** `X-Slack-Signature` of a request body: `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<body>`. */
export function signSlack(secret: string, timestamp: number | string, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const iso = (ms: number) => new Date(ms).toISOString();
const upperId = (prefix: string) => `${prefix}${randomBytes(8).toString('hex').toUpperCase().slice(0, 10)}`;
/** Form fields carry nested values JSON-encoded (the Web API's convention); a JSON body carries them as they are. */
function jsonArg(value: unknown, error: string): unknown {
  if (typeof value !== 'string') return value;
  if (value.trim() === '') return undefined;
  try {
    return JSON.parse(value);
  } catch {
    throw new SlackApiError(error);
  }
}
function args<S extends z.ZodType>(schema: S, value: Record<string, unknown>): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new SlackApiError('invalid_arguments', slackMessages(result.error, ''));
  return result.data;
}
const channelArg = z.looseObject({ channel: z.string().default('') });
const threadArg = z.string().optional().transform((v) => (v ? v : null));

interface ResponseUrl {
  createdAt: number;
  uses: number;
  user: string;
  channel: string;
  threadTs: string | null;
  /** The message an interaction came from: what `replace_original` / `delete_original` act on. */
  origin: { ephemeral: boolean; ts: string } | null;
}

export class SlackSandbox {
  botToken: string | null = `xoxb-${randomInt(1e11, 1e12)}-${randomInt(1e11, 1e12)}-${randomBytes(12).toString('base64url')}`;
  signingSecret: string | null = randomBytes(16).toString('hex');
  /** The legacy verification token Slack still puts in payloads (`token`); the signature is what counts. */
  readonly verificationToken = randomBytes(12).toString('base64url');
  interactivityUrl: string | null = null;
  commandUrl: string | null = null;
  channels: SlackChannel[] = SLACK_DEFAULT_CHANNELS.map((c) => ({ ...c }));
  users: SlackUser[] = SLACK_DEFAULT_USERS.map((u) => ({ ...u }));
  team = { id: 'T0SANDBOX', domain: 'sandbox' };
  failNext: FailRule[] = [];
  rateLimit: z.output<typeof rateLimit> | null = null;

  private messages: SlackMessage[] = [];
  private ephemerals: SlackEphemeral[] = [];
  private views = new Map<string, SlackViewRecord>();
  private deliveries: SlackDelivery[] = [];
  private calls: SlackCallRecord[] = [];
  private triggers = new Map<string, { issuedAt: number; user: string; exchanged: boolean }>();
  private responseUrls = new Map<string, ResponseUrl>();
  private readonly recent = new Map<string, number[]>();
  private lastTsMicros = 0;
  private seq = 0;

  /** Empties messages, ephemerals, views, deliveries, the call log, issued triggers and response URLs, and `failNext`; settings stay. */
  reset(): void {
    this.messages = [];
    this.ephemerals = [];
    this.views.clear();
    this.deliveries = [];
    this.calls = [];
    this.triggers.clear();
    this.responseUrls.clear();
    this.recent.clear();
    this.failNext = [];
  }

  settings(body: z.output<typeof slackSettingsSchema>): void {
    if (body.botToken !== undefined) this.botToken = body.botToken;
    if (body.signingSecret !== undefined) this.signingSecret = body.signingSecret;
    if (body.interactivityUrl !== undefined) this.interactivityUrl = body.interactivityUrl;
    if (body.commandUrl !== undefined) this.commandUrl = body.commandUrl;
    if (body.channels !== undefined) this.channels = body.channels.map((c) => ({ ...c }));
    if (body.users !== undefined) this.users = body.users.map((u) => ({ ...u }));
    if (body.team !== undefined) this.team = { ...body.team };
    if (body.failNext !== undefined) this.failNext = body.failNext === null ? [] : (Array.isArray(body.failNext) ? body.failNext : [body.failNext]).map((r) => ({ ...r }));
    if (body.rateLimit !== undefined) this.rateLimit = body.rateLimit;
  }

  // -- Web API --------------------------------------------------------------------------------

  /** One Web API call (`POST /slack/api/<method>`), answered as Slack answers it, and logged. */
  call(method: string, authorization: string | undefined, body: unknown, now = Date.now()): SlackApiAnswer {
    const answer = this.answer(method, authorization, isObject(body) ? body : {}, now);
    this.seq += 1;
    this.calls.push({ seq: this.seq, at: iso(now), method, ok: answer.body.ok, status: answer.status, ...(typeof answer.body.error === 'string' ? { error: answer.body.error } : {}) });
    if (this.calls.length > 1000) this.calls.shift();
    return answer;
  }

  private answer(method: string, authorization: string | undefined, params: Record<string, unknown>, now: number): SlackApiAnswer {
    const injected = this.takeFailure(method);
    if (injected) return injected.error === 'ratelimited' ? limited(injected.retryAfterSeconds ?? 1) : { status: 200, body: { ok: false, error: injected.error } };
    const bearer = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    const token = bearer ?? (typeof params.token === 'string' && params.token !== '' ? params.token : undefined);
    if (token === undefined) return { status: 200, body: { ok: false, error: 'not_authed' } };
    if (token !== this.botToken) return { status: 200, body: { ok: false, error: 'invalid_auth' } };
    const wait = this.throttle(method, now);
    if (wait !== null) return limited(wait);
    try {
      return { status: 200, body: { ok: true, ...this.run(method, params, now) } };
    } catch (err) {
      if (!(err instanceof SlackApiError)) throw err;
      return { status: 200, body: { ok: false, error: err.code, ...(err.messages ? { response_metadata: { messages: err.messages } } : {}) } };
    }
  }

  private run(method: string, params: Record<string, unknown>, now: number): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return { url: `https://${this.team.domain}.slack.com/`, team: this.team.domain, team_id: this.team.id, user: SLACK_BOT.name, user_id: SLACK_BOT.userId, bot_id: SLACK_BOT.botId, is_enterprise_install: false };
      case 'chat.postMessage':
        return this.postMessage(params, now);
      case 'chat.update':
        return this.update(params, now);
      case 'chat.postEphemeral':
        return this.postEphemeral(params, now);
      case 'views.open':
        return this.openView(params, now);
      case 'views.update':
        return this.updateView(params, now);
      case 'conversations.history':
        return this.history(params);
      case 'conversations.replies':
        return this.replies(params);
      default:
        throw new SlackApiError('unknown_method');
    }
  }

  private postMessage(params: Record<string, unknown>, now: number) {
    const a = args(channelArg.extend({ thread_ts: threadArg }), params);
    const channel = this.channel(a.channel);
    if (a.thread_ts !== null) this.requireThread(channel.id, a.thread_ts);
    const content = this.content(params);
    const metadata = jsonArg(params.metadata, 'invalid_metadata_format');
    if (metadata !== undefined && !(isObject(metadata) && typeof metadata.event_type === 'string' && isObject(metadata.event_payload))) throw new SlackApiError('invalid_metadata_format');
    const m = this.addMessage(channel.id, a.thread_ts, content, 'chat.postMessage', now, metadata ?? null);
    return { channel: channel.id, ts: m.ts, message: this.asSlack(m) };
  }

  private update(params: Record<string, unknown>, now: number) {
    const a = args(channelArg.extend({ ts: z.string().default('') }), params);
    const channel = this.channel(a.channel);
    const m = this.messages.find((x) => x.channel === channel.id && x.ts === a.ts && !x.deleted);
    if (!m) throw new SlackApiError('message_not_found');
    // Slack keeps what the update leaves out (docs: "the message's previous blocks will be retained").
    const content = this.content({ text: params.text ?? (params.blocks === undefined ? undefined : m.text), blocks: params.blocks ?? m.blocks ?? undefined });
    edit(m, content, 'chat.update', now);
    return { channel: channel.id, ts: m.ts, text: m.text, message: this.asSlack(m) };
  }

  /** A channel's top-level messages, newest first; `metadata` only with `include_all_metadata`, as Slack does. */
  private history(params: Record<string, unknown>) {
    const a = args(channelArg.extend({ limit: z.coerce.number().int().min(1).max(999).default(100), include_all_metadata: z.union([z.boolean(), z.enum(['true', 'false'])]).optional() }), params);
    const channel = this.channel(a.channel);
    const top = this.messages.filter((m) => m.channel === channel.id && m.thread_ts === null && !m.deleted).reverse();
    const withMeta = a.include_all_metadata === true || a.include_all_metadata === 'true';
    return { messages: top.slice(0, a.limit).map((m) => this.listed(m, withMeta)), has_more: top.length > a.limit };
  }

  /** A thread: its parent first, then the replies oldest first (`thread_not_found` for a ts that starts none). */
  private replies(params: Record<string, unknown>) {
    const a = args(channelArg.extend({ ts: z.string().default(''), limit: z.coerce.number().int().min(1).max(1000).default(1000), include_all_metadata: z.union([z.boolean(), z.enum(['true', 'false'])]).optional() }), params);
    const channel = this.channel(a.channel);
    this.requireThread(channel.id, a.ts);
    const withMeta = a.include_all_metadata === true || a.include_all_metadata === 'true';
    const thread = this.messages.filter((m) => m.channel === channel.id && !m.deleted && (m.ts === a.ts || m.thread_ts === a.ts));
    return { messages: thread.slice(0, a.limit).map((m) => this.listed(m, withMeta)), has_more: thread.length > a.limit };
  }

  private listed(m: SlackMessage, withMetadata: boolean): Record<string, unknown> {
    const { metadata: _m, ...rest } = this.asSlack(m);
    return withMetadata && m.metadata !== null ? { ...rest, metadata: m.metadata } : rest;
  }

  private postEphemeral(params: Record<string, unknown>, now: number) {
    const a = args(channelArg.extend({ user: z.string().default(''), thread_ts: threadArg }), params);
    const channel = this.channel(a.channel);
    if (!this.users.some((u) => u.id === a.user)) throw new SlackApiError('user_not_in_channel');
    if (a.thread_ts !== null) this.requireThread(channel.id, a.thread_ts);
    const e = this.addEphemeral(channel.id, a.user, a.thread_ts, this.content(params), 'chat.postEphemeral', now);
    return { message_ts: e.message_ts };
  }

  private openView(params: Record<string, unknown>, now: number) {
    const a = args(z.looseObject({ trigger_id: z.string() }), params);
    const view = this.viewArg(params);
    const trigger = this.exchange(a.trigger_id, now);
    const rec: SlackViewRecord = { id: upperId('V'), user: trigger.user, status: 'open', view, hash: viewHash(now), triggerId: a.trigger_id, openedAt: iso(now), submissions: [] };
    this.views.set(rec.id, rec);
    return { view: this.viewJson(rec) };
  }

  private updateView(params: Record<string, unknown>, now: number) {
    const a = args(z.looseObject({ view_id: z.string().optional(), external_id: z.string().optional(), hash: z.string().optional() }), params);
    const rec = [...this.views.values()].find((v) => v.status === 'open' && (a.view_id ? v.id === a.view_id : a.external_id !== undefined && v.view.external_id === a.external_id));
    if (!rec) throw new SlackApiError('not_found');
    if (a.hash !== undefined && a.hash !== rec.hash) throw new SlackApiError('hash_conflict');
    rec.view = this.viewArg(params);
    rec.hash = viewHash(now);
    return { view: this.viewJson(rec) };
  }

  private viewArg(params: Record<string, unknown>): ModalView {
    const raw = jsonArg(params.view, 'invalid_arguments');
    const result = modalViewSchema.safeParse(raw);
    if (!result.success) throw new SlackApiError('invalid_arguments', slackMessages(result.error, 'view'));
    return { ...result.data, blocks: withIds(result.data.blocks) };
  }

  /** A trigger is good once, for 3 s after the interaction that issued it. */
  private exchange(triggerId: string, now: number) {
    const t = this.triggers.get(triggerId);
    if (!/^\d+\.\d+\.[0-9a-f]+$/.test(triggerId) || !t) throw new SlackApiError('invalid_trigger_id');
    if (t.exchanged) throw new SlackApiError('exchanged_trigger_id');
    if (now - t.issuedAt > SLACK_LIMITS.triggerTtlMs) throw new SlackApiError('expired_trigger_id');
    t.exchanged = true;
    return t;
  }

  /** A message's text and blocks, checked as chat.postMessage checks them. */
  private content(params: Record<string, unknown>): { text: string; blocks: SlackBlock[] | null } {
    const text = params.text === undefined || params.text === null ? '' : String(params.text);
    const raw = jsonArg(params.blocks, 'invalid_blocks_format');
    let blocks: SlackBlock[] | null = null;
    if (raw !== undefined && raw !== null) {
      if (!Array.isArray(raw)) throw new SlackApiError('invalid_blocks_format');
      const result = messageBlocksSchema.safeParse(raw);
      if (!result.success) throw new SlackApiError('invalid_blocks', slackMessages(result.error, 'blocks'));
      blocks = withIds(result.data);
    }
    if (text.trim() === '' && !blocks?.length) throw new SlackApiError('no_text');
    if (text.length > SLACK_LIMITS.textMax) throw new SlackApiError('msg_too_long');
    return { text, blocks };
  }

  /** By id, or by name as Slack also takes it (`incidents`, `#incidents`). */
  private channel(idOrName: string): SlackChannel {
    const c = this.channels.find((x) => x.id === idOrName || x.name === idOrName.replace(/^#/, ''));
    if (!c) throw new SlackApiError('channel_not_found');
    return c;
  }

  // Slack lists no error for a thread_ts that names no message; the sandbox refuses it (with the
  // code conversations.replies uses) so a wrong ts shows in a test instead of an orphan reply.
  private requireThread(channel: string, threadTs: string): void {
    if (!this.messages.some((m) => m.channel === channel && m.ts === threadTs && m.thread_ts === null && !m.deleted)) throw new SlackApiError('thread_not_found');
  }

  private throttle(method: string, now: number): number | null {
    const rl = this.rateLimit;
    if (!rl || (rl.method !== undefined && rl.method !== method)) return null;
    const times = (this.recent.get(method) ?? []).filter((t) => t > now - 60_000);
    this.recent.set(method, times);
    if (times.length >= rl.perMinute) return Math.max(1, Math.ceil(((times[0] ?? now) + 60_000 - now) / 1000));
    times.push(now);
    return null;
  }

  private takeFailure(method: string): FailRule | null {
    const f = this.failNext.find((r) => r.method === undefined || r.method === method);
    if (!f) return null;
    if (f.after > 0) {
      f.after -= 1;
      return null;
    }
    f.count -= 1;
    if (f.count <= 0) this.failNext.splice(this.failNext.indexOf(f), 1);
    return f;
  }

  /** Slack's ts: seconds and microseconds, unique and increasing across the workspace. */
  private nextTs(now: number): string {
    this.lastTsMicros = Math.max(now * 1000, this.lastTsMicros + 1);
    return `${Math.floor(this.lastTsMicros / 1e6)}.${String(this.lastTsMicros % 1e6).padStart(6, '0')}`;
  }

  private addMessage(channel: string, threadTs: string | null, content: { text: string; blocks: SlackBlock[] | null }, via: SlackMessage['via'], now: number, metadata: unknown = null): SlackMessage {
    const m: SlackMessage = { channel, ts: this.nextTs(now), thread_ts: threadTs, user: SLACK_BOT.userId, ...content, metadata, postedAt: iso(now), via, edits: 0, history: [], deleted: false };
    this.messages.push(m);
    return m;
  }

  private addEphemeral(channel: string, user: string, threadTs: string | null, content: { text: string; blocks: SlackBlock[] | null }, via: SlackEphemeral['via'], now: number): SlackEphemeral {
    const e: SlackEphemeral = { channel, message_ts: this.nextTs(now), thread_ts: threadTs, user, ...content, postedAt: iso(now), via, edits: 0, history: [], deleted: false };
    this.ephemerals.push(e);
    return e;
  }

  /** A message as the Web API and interaction payloads show it. */
  private asSlack(m: SlackMessage): Record<string, unknown> {
    const last = m.history.at(-1);
    return {
      type: 'message',
      user: m.user,
      bot_id: SLACK_BOT.botId,
      app_id: SLACK_BOT.appId,
      text: m.text,
      team: this.team.id,
      ts: m.ts,
      ...(m.thread_ts !== null ? { thread_ts: m.thread_ts } : {}),
      ...(m.blocks ? { blocks: m.blocks } : {}),
      ...(m.metadata !== null ? { metadata: m.metadata } : {}),
      ...(last ? { edited: { user: SLACK_BOT.userId, ts: this.tsOf(last.replacedAt) } } : {}),
      bot_profile: { id: SLACK_BOT.botId, app_id: SLACK_BOT.appId, name: SLACK_BOT.name, team_id: this.team.id, deleted: false },
    };
  }

  private tsOf(isoTime: string): string {
    return (Date.parse(isoTime) / 1000).toFixed(6);
  }

  private viewJson(rec: SlackViewRecord, values: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      id: rec.id,
      team_id: this.team.id,
      private_metadata: '',
      callback_id: '',
      external_id: '',
      clear_on_close: false,
      notify_on_close: false,
      ...rec.view,
      state: { values },
      hash: rec.hash,
      root_view_id: rec.id,
      previous_view_id: null,
      app_id: SLACK_BOT.appId,
      app_installed_team_id: this.team.id,
      bot_id: SLACK_BOT.botId,
    };
  }

  // -- response_url ---------------------------------------------------------------------------

  /** A POST to a `response_url` the sandbox handed out (`/slack/response/<id>`). */
  respond(id: string, body: unknown, now = Date.now()): SlackResponseUrlAnswer {
    const r = this.responseUrls.get(id);
    // Slack documents the limits, not its answer past them; 404 with these codes is the sandbox's.
    if (!r) return { status: 404, body: { ok: false, error: 'no_service' } };
    if (now - r.createdAt > SLACK_LIMITS.responseUrlTtlMs) return { status: 404, body: { ok: false, error: 'expired_url' } };
    if (r.uses >= SLACK_LIMITS.responseUrlUses) return { status: 404, body: { ok: false, error: 'used_url' } };
    const parsed = responseBodySchema.safeParse(body ?? {});
    if (!parsed.success) return { status: 400, body: { ok: false, error: 'invalid_payload' } };
    const b = parsed.data;
    const original = r.origin && (r.origin.ephemeral ? this.ephemerals.find((e) => e.message_ts === r.origin?.ts && !e.deleted) : this.messages.find((m) => m.ts === r.origin?.ts && !m.deleted));
    try {
      if (b.delete_original === true) {
        if (!original) return { status: 404, body: { ok: false, error: 'message_not_found' } };
        original.deleted = true;
      } else {
        const content = this.content(b);
        if (b.replace_original === true && original) edit(original, content, 'response_url', now);
        else if (b.response_type === 'in_channel') this.addMessage(r.channel, b.thread_ts ?? r.threadTs, content, 'response_url', now);
        else this.addEphemeral(r.channel, r.user, b.thread_ts ?? r.threadTs, content, 'response_url', now);
      }
    } catch (err) {
      if (err instanceof SlackApiError) return { status: 400, body: { ok: false, error: err.code } };
      throw err;
    }
    r.uses += 1;
    return { status: 200, body: { ok: true } };
  }

  // -- the people: clicks, submissions, commands -------------------------------------------------

  /** A user clicks a button they can see; the app gets Slack's `block_actions` payload. */
  async click(input: z.output<typeof slackClickSchema>, baseUrl: string): Promise<SlackClickResult> {
    const url = this.requireUrl('interactivityUrl');
    const user = this.user(input.userId);
    const shown = this.shownMessage(input.ts, input.channel, user);
    const found = buttonsOf(shown.blocks).filter((b) => b.button.action_id === input.actionId && (input.blockId === undefined || b.blockId === input.blockId));
    const hit = found[0];
    if (!hit) {
      const there = buttonsOf(shown.blocks).map((b) => `${b.button.action_id ?? '?'} (block ${b.blockId}, "${b.button.text.text}")`);
      throw new SlackRefusal(409, `${shown.describe} has no button with action_id ${input.actionId}${input.blockId ? ` in block ${input.blockId}` : ''}: ${there.length ? `its buttons are ${there.join(', ')}` : 'it shows no buttons'}`);
    }
    const now = Date.now();
    const channel = this.channels.find((c) => c.id === shown.channel) ?? { id: shown.channel, name: shown.channel };
    const triggerId = this.issueTrigger(user.id, now);
    const responseUrl = this.issueResponseUrl(baseUrl, { createdAt: now, uses: 0, user: user.id, channel: channel.id, threadTs: shown.threadTs, origin: { ephemeral: shown.ephemeral, ts: input.ts } });
    const actionTs = (now / 1000).toFixed(6);
    const { button } = hit;
    const payload = {
      type: 'block_actions',
      user: { id: user.id, username: user.name, name: user.name, team_id: this.team.id },
      api_app_id: SLACK_BOT.appId,
      token: this.verificationToken,
      container: { type: 'message', message_ts: input.ts, channel_id: channel.id, is_ephemeral: shown.ephemeral, ...(shown.threadTs ? { thread_ts: shown.threadTs } : {}) },
      trigger_id: triggerId,
      team: { ...this.team },
      enterprise: null,
      is_enterprise_install: false,
      channel: { ...channel },
      // Slack sends no `message` for a click on an ephemeral: the app has only the container.
      ...(shown.message ? { message: this.asSlack(shown.message) } : {}),
      state: { values: {} },
      response_url: responseUrl,
      actions: [{ action_id: button.action_id, block_id: hit.blockId, text: button.text, ...(button.value !== undefined ? { value: button.value } : {}), ...(button.style ? { style: button.style } : {}), type: 'button', action_ts: actionTs }],
    };
    const sent = await this.deliver('block_actions', url, new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), input, user.id);
    return { ...sent, triggerId, responseUrl, actionTs };
  }

  /** A user submits an open modal; the app gets `view_submission` and its answer decides whether the modal closes. */
  async submit(input: z.output<typeof slackSubmitSchema>): Promise<SlackSubmitResult> {
    const url = this.requireUrl('interactivityUrl');
    const user = this.user(input.userId);
    const rec = this.views.get(input.viewId);
    if (!rec) throw new SlackRefusal(404, `no view ${input.viewId}`);
    if (rec.status !== 'open') throw new SlackRefusal(409, `view ${rec.id} is ${rec.status}; only an open modal can be submitted`);
    if (rec.user !== user.id) throw new SlackRefusal(409, `view ${rec.id} is open on ${this.nameOf(rec.user)}'s screen, not ${user.name}'s`);
    const inputs = inputsOf(rec.view);
    for (const [blockId, actions] of Object.entries(input.values)) {
      for (const actionId of Object.keys(actions)) {
        if (!inputs.some((i) => i.blockId === blockId && i.actionId === actionId)) {
          throw new SandboxInputError(`values.${blockId}.${actionId}`, `view ${rec.id} has no input ${blockId}/${actionId}; its inputs: ${inputs.map((i) => `${i.blockId}/${i.actionId}`).join(', ') || 'none'}`);
        }
      }
    }
    const values: Record<string, Record<string, { type: string; value: string | null }>> = {};
    for (const i of inputs) {
      const value = input.values[i.blockId]?.[i.actionId] ?? null;
      // Slack's client refuses an empty required input before anything is sent.
      if (!i.optional && (value === null || value === '')) throw new SlackRefusal(409, `input ${i.blockId}/${i.actionId} ("${i.label}") is required: Slack does not let ${user.name} submit without it`);
      values[i.blockId] = { ...values[i.blockId], [i.actionId]: { type: i.type, value } };
    }
    const now = Date.now();
    const payload = {
      type: 'view_submission',
      team: { ...this.team },
      user: { id: user.id, username: user.name, name: user.name, team_id: this.team.id },
      api_app_id: SLACK_BOT.appId,
      token: this.verificationToken,
      trigger_id: this.issueTrigger(user.id, now),
      view: this.viewJson(rec, values),
      response_urls: [],
      is_enterprise_install: false,
      enterprise: null,
    };
    const sent = await this.deliver('view_submission', url, new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), input, user.id);
    const outcome = this.submissionOutcome(rec, sent.status, sent.body, now);
    rec.submissions.push({ at: iso(now), values: input.values, status: sent.status, ...(outcome.errors ? { errors: outcome.errors } : {}) });
    return { ...sent, ...outcome };
  }

  /** What the app's answer to a submission does to the modal (Slack: "Responding to view submissions"). */
  private submissionOutcome(rec: SlackViewRecord, status: DeliveryStatus, body: string, now: number): { closed: boolean; errors?: Record<string, string> } {
    // No answer in time, an error status or a body Slack cannot read: the modal stays, showing an error.
    if (status !== 200) return { closed: false };
    if (body.trim() === '') return close(rec, 'submitted');
    let answer: unknown;
    try {
      answer = JSON.parse(body);
    } catch {
      return { closed: false };
    }
    if (!isObject(answer) || answer.response_action === undefined) return close(rec, 'submitted');
    if (answer.response_action === 'errors' && isObject(answer.errors)) return { closed: false, errors: Object.fromEntries(Object.entries(answer.errors).map(([k, v]) => [k, String(v)])) };
    if (answer.response_action === 'clear') return close(rec, 'closed');
    if (answer.response_action === 'update' || answer.response_action === 'push') {
      const next = modalViewSchema.safeParse(answer.view);
      if (!next.success) return { closed: false };
      rec.view = { ...next.data, blocks: withIds(next.data.blocks) };
      rec.hash = viewHash(now);
      return { closed: false };
    }
    return { closed: false };
  }

  /** A user runs a slash command in a channel; the app's immediate answer shows as Slack shows it. */
  async command(input: z.output<typeof slackCommandSchema>, baseUrl: string): Promise<SlackCommandResult> {
    const url = this.requireUrl('commandUrl');
    const user = this.user(input.userId);
    let channel: SlackChannel;
    try {
      channel = input.channel ? this.channel(input.channel) : (this.channels[0] as SlackChannel);
    } catch {
      throw new SandboxInputError('channel', `${input.channel} is not a channel of the workspace; its channels: ${this.channels.map((c) => `${c.id} (#${c.name})`).join(', ')}`);
    }
    const now = Date.now();
    const triggerId = this.issueTrigger(user.id, now);
    const responseUrl = this.issueResponseUrl(baseUrl, { createdAt: now, uses: 0, user: user.id, channel: channel.id, threadTs: null, origin: null });
    const fields = {
      token: this.verificationToken,
      team_id: this.team.id,
      team_domain: this.team.domain,
      channel_id: channel.id,
      channel_name: channel.name,
      user_id: user.id,
      user_name: user.name,
      command: input.command,
      text: input.text,
      api_app_id: SLACK_BOT.appId,
      is_enterprise_install: 'false',
      response_url: responseUrl,
      trigger_id: triggerId,
    };
    const sent = await this.deliver('slash_command', url, new URLSearchParams(fields).toString(), input, user.id);
    if (sent.status === 200 && sent.body.trim() !== '') this.showCommandAnswer(sent.body, channel.id, user.id, now);
    return { ...sent, triggerId, responseUrl };
  }

  /** A JSON answer is a message (ephemeral unless `response_type: in_channel`); any other text is shown to the user as it is. */
  private showCommandAnswer(body: string, channel: string, user: string, now: number): void {
    let answer: unknown = null;
    try {
      answer = JSON.parse(body);
    } catch {
      answer = null;
    }
    try {
      const params = isObject(answer) ? answer : { text: body };
      const content = this.content(params);
      if (isObject(answer) && answer.response_type === 'in_channel') this.addMessage(channel, null, content, 'slash_command', now);
      else this.addEphemeral(channel, user, null, content, 'slash_command', now);
    } catch (err) {
      // An answer Slack cannot show (no text, bad blocks) shows the user an error instead: nothing is recorded.
      if (!(err instanceof SlackApiError)) throw err;
    }
  }

  private requireUrl(which: 'interactivityUrl' | 'commandUrl'): string {
    const url = this[which];
    if (url === null) throw new SlackRefusal(409, `${which} is not set: PUT /__sandbox/slack {"${which}": "<the app's endpoint>"}`);
    return url;
  }

  private user(id: string): SlackUser {
    const u = this.users.find((x) => x.id === id);
    if (!u) throw new SandboxInputError('userId', `${id} is not a user of the workspace; its users: ${this.users.map((x) => `${x.id} (${x.name})`).join(', ')}`);
    return u;
  }

  private nameOf(id: string): string {
    return this.users.find((u) => u.id === id)?.name ?? id;
  }

  /** The message (or an ephemeral shown to `user`) with this ts, as the user sees it. */
  private shownMessage(ts: string, channelArgument: string | undefined, user: SlackUser) {
    let channelId: string | undefined;
    if (channelArgument !== undefined) {
      channelId = this.channels.find((c) => c.id === channelArgument || c.name === channelArgument.replace(/^#/, ''))?.id;
      if (!channelId) throw new SlackRefusal(404, `no channel ${channelArgument}`);
    }
    const where = (c: string) => `#${this.channels.find((x) => x.id === c)?.name ?? c}`;
    const m = this.messages.find((x) => x.ts === ts && !x.deleted && (channelId === undefined || x.channel === channelId));
    if (m) return { channel: m.channel, blocks: m.blocks, threadTs: m.thread_ts, ephemeral: false, message: m, describe: `message ${ts} in ${where(m.channel)}` };
    const e = this.ephemerals.find((x) => x.message_ts === ts && !x.deleted && (channelId === undefined || x.channel === channelId));
    if (!e) throw new SlackRefusal(404, `no message with ts ${ts}${channelId ? ` in ${where(channelId)}` : ''}`);
    if (e.user !== user.id) throw new SlackRefusal(409, `ephemeral ${ts} in ${where(e.channel)} is shown only to ${this.nameOf(e.user)}; ${user.name} cannot see it`);
    return { channel: e.channel, blocks: e.blocks, threadTs: e.thread_ts, ephemeral: true, message: null, describe: `ephemeral ${ts} in ${where(e.channel)}` };
  }

  private issueTrigger(user: string, now: number): string {
    const id = `${randomInt(1e12, 1e13)}.${randomInt(1e12, 1e13)}.${randomBytes(16).toString('hex')}`;
    this.triggers.set(id, { issuedAt: now, user, exchanged: false });
    return id;
  }

  private issueResponseUrl(baseUrl: string, r: ResponseUrl): string {
    const id = randomBytes(18).toString('base64url');
    this.responseUrls.set(id, r);
    return `${baseUrl}/slack/response/${id}`;
  }

  /** Sends a signed request to the app (and its retries, one after the other), recording each. */
  private async deliver(kind: DeliveryKind, url: string, body: string, opts: DeliveryOptions, actingUser: string): Promise<DeliveryResult> {
    const deliveries: SlackDelivery[] = [];
    let first: { delivery: SlackDelivery; text: string } | null = null;
    for (let retryNum = 0; retryNum <= opts.retries; retryNum += 1) {
      const sent = await this.send(kind, url, body, opts, retryNum, actingUser);
      deliveries.push(sent.delivery);
      first ??= sent;
    }
    const answered = first as { delivery: SlackDelivery; text: string };
    return { status: answered.delivery.status, body: answered.text, ms: answered.delivery.ms, deliveries };
  }

  private async send(kind: DeliveryKind, url: string, body: string, opts: DeliveryOptions, retryNum: number, actingUser: string): Promise<{ delivery: SlackDelivery; text: string }> {
    const timestamp = Math.floor(Date.now() / 1000) + opts.timestampOffsetSeconds;
    const secret = opts.signingSecret ?? this.signingSecret;
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
      'x-slack-request-timestamp': String(timestamp),
    };
    if (secret !== null) headers['x-slack-signature'] = signSlack(secret, timestamp, body);
    if (retryNum > 0) {
      headers['x-slack-retry-num'] = String(retryNum);
      headers['x-slack-retry-reason'] = 'http_timeout';
    }
    const t0 = performance.now();
    let status: DeliveryStatus;
    let text = '';
    try {
      const res = await fetch(url, { method: 'POST', headers, body: opts.tamper ? this.tampered(body, actingUser) : body, redirect: 'manual', signal: AbortSignal.timeout(SLACK_LIMITS.deliveryTimeoutMs) });
      text = await res.text();
      status = res.status;
    } catch (err) {
      status = err instanceof Error && err.name === 'TimeoutError' ? 'timeout' : 'unreachable';
    }
    const signing = secret === null ? 'unsigned' : opts.tamper ? 'tampered' : opts.signingSecret !== undefined && opts.signingSecret !== this.signingSecret ? 'other_secret' : 'valid';
    this.seq += 1;
    const delivery: SlackDelivery = { seq: this.seq, kind, url, retryNum, status, ms: Math.round(performance.now() - t0), body: text.slice(0, 2000), at: iso(Date.now()), signing, timestamp };
    this.deliveries.push(delivery);
    if (this.deliveries.length > 1000) this.deliveries.shift();
    return { delivery, text };
  }

  /** The signed body with the acting user's id swapped for another user's: someone claiming to be who they are not. */
  private tampered(body: string, actingUser: string): string {
    const other = this.users.find((u) => u.id !== actingUser)?.id;
    return other && body.includes(actingUser) ? body.split(actingUser).join(other) : `${body}&tampered=1`;
  }

  // -- reading --------------------------------------------------------------------------------

  /** What `GET /__sandbox/slack` shows: settings without secrets, channels with threads, ephemerals, views, deliveries, calls. */
  overview(): SlackOverview {
    const copy = (m: SlackMessage): SlackMessage => ({ ...m, history: [...m.history] });
    return {
      settings: {
        botTokenSet: this.botToken !== null,
        signingSecretSet: this.signingSecret !== null,
        interactivityUrl: this.interactivityUrl,
        commandUrl: this.commandUrl,
        channels: this.channels.map((c) => ({ ...c })),
        users: this.users.map((u) => ({ ...u })),
        team: { ...this.team },
        bot: SLACK_BOT,
        failNext: this.failNext.map((r) => ({ ...r })),
        rateLimit: this.rateLimit,
      },
      channels: this.channels.map((c) => ({
        ...c,
        messages: this.messages
          .filter((m) => m.channel === c.id && m.thread_ts === null)
          .map((m) => ({ ...copy(m), replies: this.messages.filter((r) => r.channel === c.id && r.thread_ts === m.ts).map(copy) })),
      })),
      ephemerals: this.ephemerals.map((e) => ({ ...e, history: [...e.history] })),
      views: [...this.views.values()].map((v) => ({ ...v, submissions: [...v.submissions] })),
      deliveries: [...this.deliveries],
      calls: [...this.calls],
    };
  }
}

function limited(retryAfterSeconds: number): SlackApiAnswer {
  return { status: 429, body: { ok: false, error: 'ratelimited' }, retryAfterSeconds };
}

function edit(m: SlackMessage | SlackEphemeral, content: { text: string; blocks: SlackBlock[] | null }, by: SlackMessageVersion['by'], now: number): void {
  m.history.push({ text: m.text, blocks: m.blocks, replacedAt: iso(now), by });
  m.edits += 1;
  m.text = content.text;
  m.blocks = content.blocks;
}

function close(rec: SlackViewRecord, status: 'submitted' | 'closed'): { closed: true } {
  rec.status = status;
  return { closed: true };
}

function viewHash(now: number): string {
  return `${Math.floor(now / 1000)}.${randomBytes(4).toString('hex')}`;
}

/** The view's input blocks a person can type into, in order. */
export function inputsOf(view: ModalView): { blockId: string; actionId: string; type: string; label: string; optional: boolean; multiline: boolean }[] {
  return view.blocks.flatMap((b) =>
    b.type === 'input' && b.block_id && b.element.action_id
      ? [{ blockId: b.block_id, actionId: b.element.action_id, type: b.element.type, label: b.label.text, optional: b.optional === true, multiline: b.element.type === 'plain_text_input' && b.element.multiline === true }]
      : [],
  );
}
