/** The notification module against a Slack-compatible receiver on loopback. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { notify, NotifyHttpError, NotifyNetworkError, NotifyTimeoutError, type Notification, type NotifyContext } from '../src/activities/notify';
import { shownInSlack, startChatReceiver, type ChatReceiver } from './helpers/chat-receiver';

let chat: ChatReceiver;
beforeEach(async () => {
  chat = await startChatReceiver();
});
afterEach(async () => {
  await chat.close();
});

const approval: Notification = {
  kind: 'approval_requested',
  incidentId: 'incident-42',
  title: 'Approval needed: emergency_bypass',
  text: 'alice asks to turn on the emergency auth bypass.',
  step: 'emergency_bypass',
};
const ctx = (over: Partial<NotifyContext> = {}): NotifyContext => ({
  webhookUrl: chat.url,
  timeoutMs: 2000,
  namespace: 'default',
  uiUrl: 'http://localhost:8233',
  console: () => undefined,
  ...over,
});

describe('notify', () => {
  it('posts Slack-compatible JSON with the exact commands and UI path to approve', async () => {
    const result = await notify(approval, ctx());
    expect(result).toEqual({ delivered: 'webhook', status: 200 });
    expect(chat.messages).toHaveLength(1);
    const [message] = chat.messages;
    expect(message?.text).toContain('[incident-42] Approval needed: emergency_bypass');
    expect(shownInSlack(message!.text)).toContain('npm run incident -- approve incident-42 --step emergency_bypass --approver <you>');
    expect(shownInSlack(message!.text)).toContain(
      `npm run temporal -- workflow update execute --workflow-id incident-42 --name approveStep --input '{"step":"emergency_bypass","approver":"<you>"}'`,
    );
    expect(message?.text).toContain('http://localhost:8233/namespaces/default/workflows/incident-42 → More Actions → Send an Update → approveStep');
    expect(message?.blocks).toEqual([
      { type: 'header', text: { type: 'plain_text', text: '[incident-42] Approval needed: emergency_bypass' } },
      { type: 'section', text: { type: 'mrkdwn', text: expect.stringContaining('alice asks') } },
    ]);
  });

  it('prints one console line instead of posting when no webhook is configured, and says so', async () => {
    const printed: string[] = [];
    const result = await notify(approval, ctx({ webhookUrl: undefined, console: (l: string) => printed.push(l) }));
    expect(result).toEqual({ delivered: 'console' });
    expect(printed).toHaveLength(1);
    expect(printed[0]).not.toContain('\n');
    expect(printed[0]).toMatch(/^\[notification, no CHAT_WEBHOOK_URL\] \[incident-42\] Approval needed: emergency_bypass \| alice asks/);
    expect(printed[0]).toContain('approveStep');
    expect(chat.messages).toHaveLength(0);
  });

  it('fails with a non-retryable NotifyHttpError on a 4xx and a retryable one on a 5xx', async () => {
    chat.respond = () => 400;
    const bad = await notify(approval, ctx()).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(NotifyHttpError);
    expect((bad as NotifyHttpError).status).toBe(400);
    expect((bad as NotifyHttpError).retryable).toBe(false);
    expect((bad as NotifyHttpError).body).toBe('invalid_payload');
    chat.respond = () => 503;
    const down = await notify(approval, ctx()).catch((e: unknown) => e);
    expect((down as NotifyHttpError).name).toBe('NotifyHttpError');
    expect((down as NotifyHttpError).retryable).toBe(true);
  });

  it('gives up after its timeout with NotifyTimeoutError, and names an unreachable webhook', async () => {
    chat.delayMs = 1000;
    const slow = await notify(approval, ctx({ timeoutMs: 100 })).catch((e: unknown) => e);
    expect(slow).toBeInstanceOf(NotifyTimeoutError);
    expect((slow as Error).message).toContain('100 ms');
    const unreachable = await notify(approval, ctx({ webhookUrl: 'http://127.0.0.1:1/hook' })).catch((e: unknown) => e);
    expect(unreachable).toBeInstanceOf(NotifyNetworkError);
  });
});

describe('steps done by hand', () => {
  it('tells how to confirm a manual step from the CLI, the Temporal CLI and the UI', async () => {
    await notify({ kind: 'action_needed', incidentId: 'incident-7', title: 'Do by hand: bypass_off', text: 'turn the emergency auth bypass off.', step: 'bypass_off' }, ctx());
    const text = chat.texts()[0] ?? '';
    expect(text).toContain('npm run incident -- confirm incident-7 --step bypass_off --by <you> --note "<what you did>"');
    expect(text).toContain(`--name confirmStep --input '{"step":"bypass_off","confirmedBy":"<you>","note":"<what you did>"}'`);
    expect(text).not.toContain('approveStep');
  });
});

describe('the review notification', () => {
  it('links the review from the CLI and the incident page in the UI', async () => {
    await notify({ kind: 'review_written', incidentId: 'incident-9', title: 'Post-incident review', text: 'Status resolved.' }, ctx());
    const text = chat.messages[0]?.text ?? '';
    expect(text).toContain('npm run incident -- review incident-9 --out review.md');
    expect(text).toContain('http://localhost:8233/namespaces/default/workflows/incident-9 (its event history is the timeline the review cites)');
  });
});
