/**
 * The Slack app's Web API side (docs/slack.md): one `WebClient` per process, and posting an
 * incident's notification into its thread (`chat.postMessage`), opening the thread with the status
 * message when there is none yet and updating that message in place (`chat.update`) otherwise.
 * Retries are Temporal's (the activity's retry policy), so the client itself never retries or
 * waits out a rate limit: a 429 is a retryable failure like a 5xx.
 */
import { LogLevel, SlackError, WebAPIHTTPError, WebAPIPlatformError, WebAPIRateLimitedError, WebClient } from '@slack/web-api';
import { statusMessage, threadMessage, type ThreadPost } from './slack-messages';

export interface SlackAppSettings {
  botToken: string;
  /** The incidents channel's id (`C…`): every incident gets one thread there. */
  channel: string;
  /** The Web API's base URL: https://slack.com/api/ (or the sandbox's `/slack/api/`). */
  apiUrl: string;
}

/** Per call: a notification makes at most four calls within its activity's 15 s. */
export function slackWebClient(s: Pick<SlackAppSettings, 'botToken' | 'apiUrl'>, timeoutMs = 3_000): WebClient {
  return new WebClient(s.botToken, { slackApiUrl: s.apiUrl, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true, timeout: timeoutMs, logLevel: LogLevel.ERROR });
}

/** Slack's own error codes that a later attempt may pass (everything else: the message, the token or the channel is wrong). */
const TRANSIENT = new Set(['ratelimited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);

export class SlackApiError extends Error {
  override readonly name = 'SlackApiError';
  /** `retryAfterSeconds`: Slack's Retry-After on a 429, for the next attempt's delay. */
  constructor(readonly method: string, readonly error: string, readonly retryable: boolean, readonly retryAfterSeconds?: number) {
    super(`Slack ${method}: ${error}`);
  }
}

/** The Web API's failure as one typed error: Slack's error code, and whether a retry may pass. */
export function slackFailure(method: string, err: unknown): SlackApiError {
  if (err instanceof WebAPIPlatformError) return new SlackApiError(method, err.data.error, TRANSIENT.has(err.data.error));
  if (err instanceof WebAPIRateLimitedError) return new SlackApiError(method, `rate limited (retry after ${err.retryAfter} s)`, true, err.retryAfter);
  if (err instanceof WebAPIHTTPError) return new SlackApiError(method, `HTTP ${err.statusCode}`, err.statusCode === 429 || err.statusCode >= 500);
  if (err instanceof SlackError) return new SlackApiError(method, err.message, true);
  return new SlackApiError(method, err instanceof Error ? err.message : String(err), true);
}

async function call<T>(method: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw slackFailure(method, err);
  }
}

export interface ThreadRef {
  channel: string;
  ts: string;
}

export interface PostedToThread {
  thread: ThreadRef;
  ts: string;
  /** False when the status message could not be updated (said in the log; the next notification tries again). */
  statusUpdated: boolean;
}

/** Message metadata: what marks an incident's first message, and each notification by its key. */
const THREAD_EVENT = 'incident_thread';
const NOTIFICATION_EVENT = 'runbook_notification';
type Listed = { ts?: string; metadata?: { event_type?: string; event_payload?: Record<string, unknown> } };

/** The incident's thread if one is in the channel's last 200 messages (a first message posted by an attempt that failed after it). */
async function findThread(client: WebClient, channel: string, incidentId: string, log: (line: string) => void): Promise<ThreadRef | undefined> {
  try {
    const r = await client.conversations.history({ channel, limit: 200, include_all_metadata: true });
    const root = (r.messages as Listed[] | undefined)?.find((m) => m.metadata?.event_type === THREAD_EVENT && m.metadata.event_payload?.incident_id === incidentId);
    return root?.ts ? { channel, ts: root.ts } : undefined;
  } catch (err) {
    // Without channels:history the lookup is skipped: a retry may then open a second thread.
    log(`[slack] could not look for the thread of ${incidentId}: ${slackFailure('conversations.history', err).message}`);
    return undefined;
  }
}

/** A reply an earlier attempt of this notification already posted (its key in the metadata). */
async function findReply(client: WebClient, thread: ThreadRef, key: string, log: (line: string) => void): Promise<string | undefined> {
  try {
    const r = await client.conversations.replies({ channel: thread.channel, ts: thread.ts, limit: 1000, include_all_metadata: true });
    return (r.messages as Listed[] | undefined)?.find((m) => m.metadata?.event_type === NOTIFICATION_EVENT && m.metadata.event_payload?.key === key)?.ts;
  } catch (err) {
    log(`[slack] could not look for an earlier attempt's reply: ${slackFailure('conversations.replies', err).message}`);
    return undefined;
  }
}

/**
 * Post `post` as a reply in the incident's thread; without a thread, find the one an earlier
 * attempt opened (by its metadata) or open it with the status message. `once.key` names this
 * notification: on a retry (`once.retry`) a reply an earlier attempt posted is found and not posted
 * again. With a thread, its first message is updated to `status` after the reply is posted, so a
 * failed update never loses the reply.
 */
export async function postToThread(
  client: WebClient,
  channel: string,
  post: ThreadPost,
  thread: ThreadRef | undefined,
  status: readonly string[],
  log: (line: string) => void,
  once?: { key: string; retry: boolean },
): Promise<PostedToThread> {
  const now = new Date().toISOString();
  let root = thread ?? (await findThread(client, channel, post.incidentId, log));
  const opened = root === undefined;
  if (!root) {
    const r = await call('chat.postMessage', () =>
      client.chat.postMessage({ channel, ...statusMessage(post.incidentId, status, now), metadata: { event_type: THREAD_EVENT, event_payload: { incident_id: post.incidentId } }, unfurl_links: false, unfurl_media: false }),
    );
    if (!r.ts || !r.channel) throw new SlackApiError('chat.postMessage', 'the answer named no channel or ts', false);
    root = { channel: r.channel, ts: r.ts };
  }
  const thread_ = root;
  const earlier = once?.retry ? await findReply(client, thread_, once.key, log) : undefined;
  const ts =
    earlier ??
    (
      await call('chat.postMessage', () =>
        client.chat.postMessage({
          channel: thread_.channel,
          thread_ts: thread_.ts,
          ...threadMessage(post),
          ...(once ? { metadata: { event_type: NOTIFICATION_EVENT, event_payload: { incident_id: post.incidentId, key: once.key } } } : {}),
          unfurl_links: false,
          unfurl_media: false,
        }),
      )
    ).ts ??
    '';
  let statusUpdated = true;
  if (!opened && status.length) {
    try {
      await call('chat.update', () => client.chat.update({ channel: thread_.channel, ts: thread_.ts, ...statusMessage(post.incidentId, status, now) }));
    } catch (err) {
      statusUpdated = false;
      log(`[slack] the status message of ${post.incidentId} could not be updated: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { thread: thread_, ts, statusUpdated };
}
