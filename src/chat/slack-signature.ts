/**
 * Slack's request signing (https://api.slack.com/authentication/verifying-requests-from-slack):
 * `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:" + X-Slack-Request-Timestamp + ":" + raw body)>`,
 * the timestamp within 5 minutes of now (a replayed request is refused), compared in constant time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a request's timestamp may be from our clock, either way. */
export const SLACK_MAX_SKEW_SECONDS = 300;

export class SlackSignatureError extends Error {
  override readonly name = 'SlackSignatureError';
}

export function slackSignature(secret: string, timestamp: string, rawBody: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${rawBody}`).digest('hex')}`;
}

/** Throws a `SlackSignatureError` naming the header that is wrong; returns when the request is Slack's. */
export function verifySlackRequest(secret: string, headers: { timestamp?: string | string[]; signature?: string | string[] }, rawBody: string, nowMs = Date.now()): void {
  const timestamp = typeof headers.timestamp === 'string' ? headers.timestamp : undefined;
  const signature = typeof headers.signature === 'string' ? headers.signature : undefined;
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) throw new SlackSignatureError('X-Slack-Request-Timestamp: missing or not a number of seconds');
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > SLACK_MAX_SKEW_SECONDS) throw new SlackSignatureError(`X-Slack-Request-Timestamp: more than ${SLACK_MAX_SKEW_SECONDS / 60} minutes from now (a replayed or delayed request)`);
  if (!signature || !/^v0=[0-9a-f]{64}$/.test(signature)) throw new SlackSignatureError('X-Slack-Signature: missing or not v0=<64 hex digits>');
  const expected = Buffer.from(slackSignature(secret, timestamp, rawBody).slice(3), 'hex');
  if (!timingSafeEqual(expected, Buffer.from(signature.slice(3), 'hex'))) throw new SlackSignatureError('X-Slack-Signature: does not match the body (wrong signing secret, or the body was changed)');
}
