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

export function slackWebClient(s: Pick<SlackAppSettings, 'botToken' | 'apiUrl'>, timeoutMs = 10_000): WebClient {
  return new WebClient(s.botToken, { slackApiUrl: s.apiUrl, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true, timeout: timeoutMs, logLevel: LogLevel.ERROR });
}

/** Slack's own error codes that a later attempt may pass (everything else: the message, the token or the channel is wrong). */
const TRANSIENT = new Set(['ratelimited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);

export class SlackApiError extends Error {
  override readonly name = 'SlackApiError';
  constructor(readonly method: string, readonly error: string, readonly retryable: boolean) {
    super(`Slack ${method}: ${error}`);
  }
}

/** The Web API's failure as one typed error: Slack's error code, and whether a retry may pass. */
export function slackFailure(method: string, err: unknown): SlackApiError {
  if (err instanceof WebAPIPlatformError) return new SlackApiError(method, err.data.error, TRANSIENT.has(err.data.error));
  if (err instanceof WebAPIRateLimitedError) return new SlackApiError(method, `rate limited (retry after ${err.retryAfter} s)`, true);
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

/**
 * Post `post` as a reply in the incident's thread; without a thread, open it first with the status
 * message. With a thread, its first message is updated to `status` after the reply is posted, so a
 * failed update never loses the reply (nor, retried, posts it twice).
 */
export async function postToThread(client: WebClient, channel: string, post: ThreadPost, thread: ThreadRef | undefined, status: readonly string[], log: (line: string) => void): Promise<PostedToThread> {
  const now = new Date().toISOString();
  let root = thread;
  if (!root) {
    const opened = await call('chat.postMessage', () => client.chat.postMessage({ channel, ...statusMessage(post.incidentId, status, now), unfurl_links: false, unfurl_media: false }));
    if (!opened.ts || !opened.channel) throw new SlackApiError('chat.postMessage', 'the answer named no channel or ts', false);
    root = { channel: opened.channel, ts: opened.ts };
  }
  const reply = await call('chat.postMessage', () => client.chat.postMessage({ channel: root.channel, thread_ts: root.ts, ...threadMessage(post), unfurl_links: false, unfurl_media: false }));
  let statusUpdated = true;
  if (thread && status.length) {
    try {
      await call('chat.update', () => client.chat.update({ channel: root.channel, ts: root.ts, ...statusMessage(post.incidentId, status, now) }));
    } catch (err) {
      statusUpdated = false;
      log(`[slack] the status message of ${post.incidentId} could not be updated: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { thread: root, ts: reply.ts ?? '', statusUpdated };
}
