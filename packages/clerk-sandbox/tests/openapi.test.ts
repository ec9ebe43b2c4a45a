/**
 * The sandbox's responses and webhook payloads validated against Clerk's own OpenAPI specs
 * (vendored in tests/fixtures/clerk-openapi of this package), converted from OpenAPI 3.0 to JSON Schema for ajv.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '../src';

// Vendored copies of Clerk's specs (see tests/fixtures/clerk-openapi/README.md).
const REFERENCE = path.resolve(__dirname, 'fixtures/clerk-openapi');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** OpenAPI 3.0 → JSON Schema: `nullable`, component `$ref`s, and drop what ajv does not know. */
function toJsonSchema(node: Json, refBase: string): Json {
  if (Array.isArray(node)) return node.map((n) => toJsonSchema(n, refBase));
  if (node === null || typeof node !== 'object') return node;
  const out: { [k: string]: Json } = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'discriminator' || k === 'example' || k === 'examples' || k === 'nullable' || k === 'deprecated' || k.startsWith('x-')) continue;
    if (k === '$ref' && typeof v === 'string') out.$ref = v.replace('#/components/schemas/', `${refBase}#/definitions/`);
    else out[k] = toJsonSchema(v, refBase);
  }
  if (node.nullable === true) {
    if (typeof out.type === 'string') {
      out.type = [out.type, 'null'];
      if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
      return out;
    }
    return { anyOf: [out, { type: 'null' }] };
  }
  return out;
}

interface Spec {
  components: { schemas: { [k: string]: Json } };
  paths: { [p: string]: { [method: string]: { responses: { [status: string]: { content?: { 'application/json': { schema: Json } } } } } } };
}

function loadSpec(ajv: Ajv, file: string, id: string): Spec {
  const spec = yaml.load(readFileSync(path.join(REFERENCE, file), 'utf8')) as Spec;
  ajv.addSchema({ $id: id, definitions: toJsonSchema(spec.components.schemas, id) } as object);
  return spec;
}

const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
const bapiSpec = loadSpec(ajv, 'clerk-bapi-2026-05-12.yml', 'bapi');
const tokenResponseSchema = toJsonSchema(
  bapiSpec.paths['/sessions/{session_id}/tokens']!.post!.responses['200']!.content!['application/json'].schema,
  'bapi',
) as object;
loadSpec(ajv, 'clerk-webhooks-2025-04-15.yml', 'hooks');
const validators = new Map<string, ValidateFunction>();
function schema(ref: string): ValidateFunction {
  let v = validators.get(ref);
  if (!v) validators.set(ref, (v = ajv.compile({ $ref: ref })));
  return v;
}

function expectValid(ref: string, value: unknown): void {
  const validate = schema(ref);
  const ok = validate(value);
  expect(ok ? [] : validate.errors, `${ref} ${JSON.stringify(value).slice(0, 300)}`).toEqual([]);
}

let sandbox: RunningSandbox;
let receiver: Server;
const payloads: { type: string; data: Record<string, unknown> }[] = [];

async function bapi(method: string, url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${sandbox.url}${url}`, { method, headers: { authorization: `Bearer ${sandbox.secretKey}` } });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      payloads.push(JSON.parse(body) as { type: string; data: Record<string, unknown> });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  sandbox = await startSandbox({
    users: 300,
    seed: 'openapi',
    rateLimit: { requests: 20, windowMs: 60_000 },
    webhookUrl: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`,
  });
});
afterAll(async () => {
  await sandbox.close();
  await new Promise((r) => receiver.close(r));
});

describe('responses match Clerk\'s Backend API spec', () => {
  it('the converted schemas are not vacuous', () => {
    expect(schema('bapi#/definitions/User')({ id: 'user_1', object: 'user' })).toBe(false);
    expect(schema('bapi#/definitions/TotalCount')({ object: 'total_count', total_count: 'many' })).toBe(false);
    expect(schema('bapi#/definitions/ClerkErrors')({ errors: [{ code: 'x' }] })).toBe(false);
  });

  it('users, counts, sessions, revoke, delete, svix url', async () => {
    const users = await bapi('GET', '/v1/users?limit=50&order_by=-last_active_at');
    expect(users.status).toBe(200);
    for (const u of users.body as unknown[]) expectValid('bapi#/definitions/User', u);
    expectValid('bapi#/definitions/TotalCount', (await bapi('GET', '/v1/users/count')).body);
    const first = (users.body as { id: string }[])[0]!;
    expectValid('bapi#/definitions/User', (await bapi('GET', `/v1/users/${first.id}`)).body);

    const listed = await bapi('GET', `/v1/sessions?user_id=${first.id}`);
    for (const s of listed.body as unknown[]) expectValid('bapi#/definitions/Session', s);
    const paginated = (await bapi('GET', `/v1/sessions?user_id=${first.id}&paginated=true&status=active`)).body as { data: { id: string }[]; total_count: number };
    expect(paginated.total_count).toBe(paginated.data.length);
    for (const s of paginated.data) expectValid('bapi#/definitions/Session', s);
    const revoked = await bapi('POST', `/v1/sessions/${paginated.data[0]!.id}/revoke`);
    expect(revoked.status).toBe(200);
    expectValid('bapi#/definitions/Session', revoked.body);

    const deleted = await bapi('DELETE', `/v1/users/${first.id}`);
    expectValid('bapi#/definitions/DeletedObject', deleted.body);
    expectValid('bapi#/definitions/SvixURL', (await bapi('POST', '/v1/webhooks/svix_url')).body);
  });

  it('instance, domains, jwks, session token', async () => {
    const instance = await bapi('GET', '/v1/instance');
    expect(instance.status).toBe(200);
    expectValid('bapi#/definitions/Instance', instance.body);
    const domains = await bapi('GET', '/v1/domains');
    expectValid('bapi#/definitions/Domains', domains.body);
    for (const d of (domains.body as { data: unknown[] }).data) expectValid('bapi#/definitions/Domain', d);
    const jwks = await bapi('GET', '/v1/jwks');
    expectValid('bapi#/definitions/JWKS', jwks.body);
    expectValid('bapi#/definitions/JWKS.rsa.PublicKey', (jwks.body as { keys: unknown[] }).keys[0]);

    const [active] = sandbox.admin.sessionIds('active');
    const res = await fetch(`${sandbox.url}/v1/sessions/${active}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${sandbox.secretKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ expires_in_seconds: 120 }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    // The response schema is inline in the path: check it from the spec itself.
    const token = ajv.compile(tokenResponseSchema)(await res.json());
    expect(token).toBe(true);
    const missing = await bapi('POST', '/v1/sessions/sess_nope/tokens');
    expect(missing.status).toBe(404);
    expectValid('bapi#/definitions/ClerkErrors', missing.body);
  });

  it('errors: 401, 404, 422, 429', async () => {
    const unauth = await fetch(`${sandbox.url}/v1/users`, { headers: { authorization: 'Bearer sk_test_wrongwrongwrongwrong' } });
    expect(unauth.status).toBe(401);
    expectValid('bapi#/definitions/ClerkErrors', await unauth.json());
    const notFound = await bapi('GET', '/v1/sessions/sess_nope');
    expect(notFound.status).toBe(404);
    expectValid('bapi#/definitions/ClerkErrors', notFound.body);
    const invalid = await bapi('GET', '/v1/users?limit=9999');
    expect(invalid.status).toBe(422);
    expectValid('bapi#/definitions/ClerkErrors', invalid.body);
    let limited: { status: number; body: unknown } | undefined;
    for (let i = 0; i < 25 && limited?.status !== 429; i++) limited = await bapi('GET', '/v1/users/count');
    expect(limited?.status).toBe(429);
    expectValid('bapi#/definitions/ClerkErrors', limited?.body);
  });
});

describe('webhook payloads match Clerk\'s webhook spec', () => {
  it('user.created, session.created, session.revoked, user.deleted', async () => {
    payloads.length = 0;
    const [user] = sandbox.admin.createUsers({ count: 1 });
    const [sessionRow] = sandbox.admin.sessionIds('active').filter((id) => sandbox.admin.store.sessionJson(sandbox.admin.store.findSession(id)).user_id === user!.id);
    sandbox.admin.revokeSession(sandbox.admin.store.findSession(sessionRow!));
    sandbox.admin.deleteUser(user!.id);
    await sandbox.admin.webhooksIdle();
    expect(payloads.map((p) => p.type).sort()).toEqual(['session.created', 'session.revoked', 'user.created', 'user.deleted']);
    for (const p of payloads) {
      expectValid('hooks#/definitions/WebhookEventPayload', p);
      if (p.type === 'user.created') expectValid('hooks#/definitions/User', p.data);
      if (p.type === 'user.deleted') expectValid('hooks#/definitions/DeletedObject', p.data);
      if (p.type.startsWith('session.')) {
        // SessionEventPayload is allOf[Session (additionalProperties: false), {user}]: unsatisfiable
        // as written, so check its two parts separately.
        const { user: embedded, ...session } = p.data;
        expectValid('hooks#/definitions/Session', session);
        expectValid('hooks#/definitions/User', embedded);
      }
    }
  });
});
