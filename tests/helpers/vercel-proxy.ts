/**
 * The emulated Vercel behind a proxy: every request handed on to the sandbox as it is, and the
 * answer of `GET /v6/deployments` changed by `change.current` on the way back (a platform that
 * answers a malformed list). Real HTTP both ways; `change` may be swapped between calls.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One deployment of the list as Vercel answers it. */
export type Listed = Record<string, unknown>;
/** The list's deployments in, the body out (a string is sent as it is). */
export type ListChange = (deployments: Listed[]) => unknown;

export async function vercelAnswering(sandboxUrl: string, change: { current: ListChange }): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).filter((e): e is [string, string] => typeof e[1] === 'string' && !['host', 'content-length', 'connection'].includes(e[0])));
      void fetch(`${sandboxUrl}${req.url ?? '/'}`, { method: req.method ?? 'GET', headers, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) }).then(
        async (answer) => {
          let body = await answer.text();
          if (answer.ok && req.url?.startsWith('/v6/deployments')) {
            const changed = change.current((JSON.parse(body) as { deployments: Listed[] }).deployments);
            body = typeof changed === 'string' ? changed : JSON.stringify(changed);
          }
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(body);
        },
        () => res.writeHead(502).end(),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}
