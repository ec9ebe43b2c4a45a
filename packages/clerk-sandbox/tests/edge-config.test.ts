/** The read side of the emulated Edge Config (what `@vercel/edge-config` in the app calls), against writes through the emulated Vercel API. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '../src';

let sandbox: RunningSandbox;
beforeAll(async () => {
  sandbox = await startSandbox({ users: 1, seed: 'edge-config', rateLimit: 'off' });
});
afterAll(() => sandbox.close());
beforeEach(() => {
  sandbox.admin.vercel.reset();
});

/** The connection string split as the SDK splits an external one: base URL (no query) and token. */
const connection = () => {
  const url = new URL(sandbox.vercel.edgeConfigConnection);
  const token = url.searchParams.get('token') ?? '';
  url.search = '';
  return { base: url.toString(), token };
};
const read = (path: string, token = connection().token) => fetch(`${connection().base}${path}?version=1`, { headers: { authorization: `Bearer ${token}` } });
const write = (items: unknown[]) =>
  fetch(`${sandbox.vercel.url}/v1/edge-config/${sandbox.vercel.edgeConfigId}/items`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${sandbox.vercel.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ items }),
  });

describe('emulated Edge Config reads', () => {
  it('the connection string names the sandbox Edge Config and a read token that is not the API token', () => {
    const { base, token } = connection();
    expect(base).toBe(`${sandbox.url}/edge-config/${sandbox.vercel.edgeConfigId}`);
    expect(token).toMatch(/^ecfg_read_/);
    expect(token).not.toBe(sandbox.vercel.token);
  });

  it('serves what the Vercel API wrote, with a digest that changes on every write', async () => {
    const missing = await read('/item/CLERK_AUTH_BYPASS');
    expect(missing.status).toBe(404);
    const before = missing.headers.get('x-edge-config-digest');
    expect(before).toBeTruthy();

    expect((await write([{ operation: 'upsert', key: 'CLERK_AUTH_BYPASS', value: '{"until":"2030-01-01T00:00:00.000Z"}' }])).status).toBe(200);
    const item = await read('/item/CLERK_AUTH_BYPASS');
    expect(item.status).toBe(200);
    expect(await item.json()).toBe('{"until":"2030-01-01T00:00:00.000Z"}');
    expect(item.headers.get('x-edge-config-digest')).not.toBe(before);
    expect(await (await read('/items')).json()).toEqual({ CLERK_AUTH_BYPASS: '{"until":"2030-01-01T00:00:00.000Z"}' });

    expect((await write([{ operation: 'delete', key: 'CLERK_AUTH_BYPASS' }])).status).toBe(200);
    expect((await read('/item/CLERK_AUTH_BYPASS')).status).toBe(404);
  });

  it('refuses the API token, a wrong token and no token with 401', async () => {
    for (const token of [sandbox.vercel.token, 'ecfg_read_wrong', '']) expect((await read('/item/CLERK_AUTH_BYPASS', token)).status).toBe(401);
    expect((await fetch(`${connection().base}/items`)).status).toBe(401);
  });

  it('answers an unknown Edge Config with 404 and no digest (the SDK reports it as not found)', async () => {
    const res = await fetch(`${sandbox.url}/edge-config/ecfg_other/item/CLERK_AUTH_BYPASS`, { headers: { authorization: `Bearer ${connection().token}` } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-edge-config-digest')).toBeNull();
  });

  it('meets injected failures like the other emulated routes', async () => {
    sandbox.admin.vercel.settings({ failNext: { route: 'GET /edge-config/{edgeConfigId}/item/{key}', status: 503, count: 1 } });
    expect((await read('/item/CLERK_AUTH_BYPASS')).status).toBe(503);
    expect((await read('/item/CLERK_AUTH_BYPASS')).status).toBe(404);
  });
});
