/** A Slack-compatible incoming webhook on loopback: records every message, answers as told. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a reader sees in Slack: the three entities Slack requires decoded (messages[] keeps the payload as posted). */
export const shownInSlack = (text: string) => text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

export interface ChatMessage {
  text: string;
  blocks?: unknown[];
}

export interface ChatReceiver {
  url: string;
  messages: ChatMessage[];
  /** Status to answer a message with (default 200); e.g. fail withdrawals with 400. */
  respond: (message: ChatMessage) => number;
  /** Hold every answer this long (to provoke client timeouts). */
  delayMs: number;
  /** Each message's text as Slack shows it (entities decoded). */
  texts(): string[];
  close(): Promise<void>;
}

export async function startChatReceiver(): Promise<ChatReceiver> {
  const receiver: ChatReceiver = {
    url: '',
    messages: [],
    respond: () => 200,
    delayMs: 0,
    texts: () => receiver.messages.map((m) => shownInSlack(m.text)),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const message = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatMessage;
      const status = receiver.respond(message);
      if (status < 300) receiver.messages.push(message);
      setTimeout(() => {
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'invalid_payload');
      }, receiver.delayMs).unref();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/XXXX`;
  return receiver;
}
