/**
 * Key references and the gateway that resolves them: env:, file: (re-read when it changes) and
 * vault: (the sandbox's Vault KV v2 over HTTP); raw keys refused with a message that says why;
 * the Clerk gateway follows a rotated key without a restart, behind one limiter per instance.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClerkGateway, createClerkRateLimiters } from '../src/activities/clerk';
import { keyRefSchema, parseKeyRef } from '../src/keys/ref';
import { createKeyResolver, createKeySource, fingerprint, KeyRefError } from '../src/keys/resolve';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { runCli } from './helpers/cli';

let sandbox: RunningSandbox;
beforeAll(async () => {
  sandbox = await startSandbox({ users: 5, seed: 'key-refs' });
});
afterAll(async () => {
  await sandbox?.close();
});

describe('key references', () => {
  it('parse the three forms and refuse raw keys and anything else, naming the rule', () => {
    expect(parseKeyRef('env:CLERK_SECRET_KEY')).toEqual({ kind: 'env', name: 'CLERK_SECRET_KEY' });
    expect(parseKeyRef('file:/run/secrets/clerk')).toEqual({ kind: 'file', path: '/run/secrets/clerk' });
    expect(parseKeyRef('vault:secret/clerk/prod#secret_key@3')).toEqual({ kind: 'vault', mount: 'secret', path: 'clerk/prod', field: 'secret_key', version: 3 });
    const raw = keyRefSchema.safeParse('sk_test_abcdefgh12345678');
    expect(raw.success).toBe(false);
    expect(raw.error?.issues[0]?.message).toMatch(/looks like a raw secret key; send a reference/);
    expect(keyRefSchema.safeParse('file:relative/path').error?.issues[0]?.message).toMatch(/must be a key reference \(env:NAME, file:\/absolute\/path or vault:mount\/path#field\)/);
  });

  it('the CLI refuses a raw key for provide-key before anything is sent (usage error, exit 2)', async () => {
    const run = await runCli('src/cli/incident.ts', ['provide-key', 'incident-x', '--ref', 'sk_test_abcdefgh12345678', '--by', 'bob'], { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:9' });
    expect(run.code).toBe(2);
    expect(run.firstError).toMatch(/--ref: this looks like a raw secret key; send a reference/);
  });

  it('env: and file: resolve; a file is re-read when it changes; errors name the reference, never a value', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'key-refs-'));
    const file = join(dir, 'key');
    const resolver = createKeyResolver({ env: { MY_KEY: 'sk_test_fromenv00000000' } });
    expect(await resolver.resolve('env:MY_KEY')).toBe('sk_test_fromenv00000000');
    writeFileSync(file, 'sk_test_first000000000000\n');
    expect(await resolver.resolve(`file:${file}`)).toBe('sk_test_first000000000000');
    writeFileSync(file, 'sk_test_second0000000000000\n');
    expect(await resolver.resolve(`file:${file}`)).toBe('sk_test_second0000000000000');
    const err = await resolver.resolve('env:NOT_SET').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyRefError);
    expect((err as Error).message).toBe('env:NOT_SET: environment variable NOT_SET is not set');
  });

  it('vault: reads and writes KV v2 versions; a write pins what was there before', async () => {
    const resolver = createKeyResolver({ vault: sandbox.vault });
    expect(await resolver.store('vault:secret/app#key', 'sk_test_v1aaaaaaaaaaaaaa')).toEqual({});
    const { previous } = await resolver.store('vault:secret/app#key', 'sk_test_v2bbbbbbbbbbbbbb');
    expect(previous).toBe('vault:secret/app#key@1');
    expect(await resolver.resolve('vault:secret/app#key', { fresh: true })).toBe('sk_test_v2bbbbbbbbbbbbbb');
    expect(await resolver.resolve(previous!)).toBe('sk_test_v1aaaaaaaaaaaaaa');
    const denied = createKeyResolver({ vault: { addr: sandbox.vault.addr, token: 'hvs.wrong' } });
    await expect(denied.resolve('vault:secret/app#key')).rejects.toThrow('vault:secret/app#key: Vault answered 403');
    // The admin view shows fingerprints, not values.
    const view = JSON.stringify(await (await fetch(`${sandbox.url}/__sandbox/vault`)).json());
    expect(view).toContain(fingerprint('sk_test_v2bbbbbbbbbbbbbb'));
    expect(view).not.toContain('sk_test_v2bbbbbbbbbbbbbb');
  });
});

describe('the Clerk gateway with a key reference', () => {
  it('follows a rotated key without a restart (re-resolves once on clerk_key_invalid) and keeps one limiter per instance', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'key-refs-'));
    const file = join(dir, 'worker-key');
    const oldKey = sandbox.admin.addKey({ file, label: 'old' });
    const source = createKeySource(`file:${file}`, createKeyResolver(), 60_000); // a long cache: only the 401 makes it look again
    const limiters = createClerkRateLimiters();
    const made: string[] = [];
    const registry = { limiterFor: (key: string, create: Parameters<typeof limiters.limiterFor>[1]) => (made.push(key), limiters.limiterFor(key, create)) };
    const gateway = createClerkGateway({ secretKey: oldKey.secretKey, keySource: source, apiUrl: sandbox.url, rateLimiters: registry });
    expect(await gateway.countUsers()).toBeGreaterThan(0);

    const newKey = sandbox.admin.addKey({ file, label: 'new' });
    sandbox.admin.deleteKey(oldKey.id);
    expect(await gateway.countUsers()).toBeGreaterThan(0);
    const withOld = sandbox.admin.auditEntries({ keyId: oldKey.id });
    expect(withOld.filter((e) => e.keyState === 'deleted').map((e) => e.status)).toEqual([401]);
    expect(sandbox.admin.auditEntries({ keyId: newKey.id }).length).toBeGreaterThan(0);
    expect(gateway.stats().retries).toBe(1);
    // A second gateway of the same reference shares the limiter, whichever key is current.
    createClerkGateway({ secretKey: newKey.secretKey, keySource: source, apiUrl: sandbox.url, rateLimiters: registry });
    expect(new Set(made).size).toBe(1);
    expect(made[0]).toContain(`ref:file:${file}`);
  });

  it('fails with ClerkKeyInvalid when the reference still gives a dead key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'key-refs-'));
    const file = join(dir, 'dead-key');
    const k = sandbox.admin.addKey({ file });
    sandbox.admin.deleteKey(k.id);
    const gateway = createClerkGateway({ secretKey: k.secretKey, keySource: createKeySource(`file:${file}`, createKeyResolver()), apiUrl: sandbox.url });
    await expect(gateway.countUsers()).rejects.toMatchObject({ name: 'ClerkKeyInvalid', status: 401, code: 'clerk_key_invalid' });
  });
});
