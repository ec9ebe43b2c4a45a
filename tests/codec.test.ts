/**
 * Payload encryption (src/codec, docs/payload-encryption.md): the AES-256-GCM codec and its key
 * ring, a real worker and client encrypting an incident's payloads (the raw history, read with the
 * Temporal CLI and no codec, has no plaintext), and the codec server the UI calls.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { codecFromEnv, dataConverterFromEnv, EncryptionCodec, ENCODING, keyRing, keyRingFromEnv, PayloadDecryptionError, PayloadKeyConfigError } from '../src/codec';
import { CODEC_ALLOWED_HEADERS, startCodecServer, type RunningCodecServer } from '../src/codec/server';
import { ConfigError, loadEnv } from '../src/config';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { devServerArgs, startDevServer } from '../src/temporal/dev-server';
import { findBinary, TEMPORAL_CLI } from '../src/temporal/provision';
import { createWorker } from '../src/worker';
import { confirmStep, getIncidentState, incidentWorkflow } from '../src/workflows';
import { eventually, sandboxDeps } from './helpers/incident';
import { ctrlC, tsxArgs } from './helpers/cli';
import { freePort } from './helpers/ports';
import { connectTemporal, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

const key = () => randomBytes(32);
const toPayload = (value: unknown) => defaultPayloadConverter.toPayload(value);
const fromPayload = (payload: Payload) => defaultPayloadConverter.fromPayload(payload);
const metadataText = (p: Payload, name: string) => Buffer.from(p.metadata?.[name] ?? new Uint8Array()).toString('utf8');

describe('the codec', () => {
  it('round-trips payloads, each with its own IV, and leaves unencrypted payloads as they are', async () => {
    const codec = new EncryptionCodec(keyRing('k1', { k1: key() }));
    const original = [toPayload({ summary: 'secret marker', n: 1 }), toPayload('second')];
    const encrypted = await codec.encode(original);
    expect(encrypted.map((p) => metadataText(p, 'encoding'))).toEqual([ENCODING, ENCODING]);
    expect(metadataText(encrypted[0]!, 'encryption-key-id')).toBe('k1');
    expect(Buffer.from(encrypted[0]!.data!).toString('utf8')).not.toContain('secret marker');
    // The same plaintext twice gives two ciphertexts (random IV per payload).
    const [again] = await codec.encode([original[0]!]);
    expect(Buffer.from(again!.data!).equals(Buffer.from(encrypted[0]!.data!))).toBe(false);

    const decoded = await codec.decode(encrypted);
    expect(decoded.map(fromPayload)).toEqual([{ summary: 'secret marker', n: 1 }, 'second']);
    expect(metadataText(decoded[0]!, 'encoding')).toBe('json/plain');
    // History written before encryption was turned on still reads.
    expect((await codec.decode([original[1]!])).map(fromPayload)).toEqual(['second']);
  });

  it('refuses a tampered ciphertext', async () => {
    const codec = new EncryptionCodec(keyRing('k1', { k1: key() }));
    const [encrypted] = await codec.encode([toPayload({ amount: 100 })]);
    const data = Buffer.from(encrypted!.data!);
    data[20] = data[20]! ^ 0x01;
    const error = await codec.decode([{ ...encrypted!, data }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadDecryptionError);
    expect((error as Error).message).toMatch(/key id k1\) failed authentication/);
  });

  it('names an unknown key id', async () => {
    const [encrypted] = await new EncryptionCodec(keyRing('old-key', { 'old-key': key() })).encode([toPayload('x')]);
    const error = await new EncryptionCodec(keyRing('k2', { k2: key() })).decode([encrypted!]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadDecryptionError);
    expect((error as Error).message).toContain('unknown key id old-key');
  });

  it('rotates: payloads encrypted with k1 decode after k2 becomes current, and new ones use k2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cir-keys-'));
    const [k1, k2] = [key().toString('base64'), key().toString('base64')];
    const file = join(dir, 'keys.json');
    writeFileSync(file, JSON.stringify({ current: 'k1', keys: { k1 } }));
    const before = codecFromEnv({ PAYLOAD_KEYS_FILE: file })!;
    const old = await before.encode([toPayload('written under k1')]);

    writeFileSync(file, JSON.stringify({ current: 'k2', keys: { k1, k2 } }));
    const after = codecFromEnv({ PAYLOAD_KEYS_FILE: file })!;
    expect((await after.decode(old)).map(fromPayload)).toEqual(['written under k1']);
    const fresh = await after.encode([toPayload('written under k2')]);
    expect(metadataText(fresh[0]!, 'encryption-key-id')).toBe('k2');
    // The old codec, which only knows k1, cannot read what k2 wrote.
    await expect(before.decode(fresh)).rejects.toThrow(/unknown key id k2/);
  });

  it('is off without keys, and a bad key configuration names its variable', () => {
    expect(keyRingFromEnv({})).toBeUndefined();
    expect(dataConverterFromEnv({})).toEqual({});
    expect(() => loadEnv({ PAYLOAD_KEY: `k1:${randomBytes(16).toString('base64')}` })).toThrow(ConfigError);
    expect(() => loadEnv({ PAYLOAD_KEY: `k1:${randomBytes(16).toString('base64')}` })).toThrow(/PAYLOAD_KEY: must be 32 bytes/);
    expect(() => loadEnv({ PAYLOAD_KEY: randomBytes(32).toString('base64') })).toThrow(/PAYLOAD_KEY: must be <key id>:<base64/);
    expect(loadEnv({ PAYLOAD_KEY: `k1:${key().toString('base64')}` }).PAYLOAD_KEY).toMatch(/^k1:/);
    const dir = mkdtempSync(join(tmpdir(), 'cir-keys-'));
    const file = join(dir, 'keys.json');
    writeFileSync(file, JSON.stringify({ current: 'k3', keys: { k1: key().toString('base64') } }));
    expect(() => keyRingFromEnv({ PAYLOAD_KEYS_FILE: file })).toThrow(PayloadKeyConfigError);
    expect(() => keyRingFromEnv({ PAYLOAD_KEYS_FILE: file })).toThrow(/PAYLOAD_KEYS_FILE current: current must name one of keys/);
    writeFileSync(file, JSON.stringify({ current: 'k1', keys: { k1: randomBytes(31).toString('base64') } }));
    expect(() => keyRingFromEnv({ PAYLOAD_KEYS_FILE: file })).toThrow(/PAYLOAD_KEYS_FILE keys\.k1: must be 32 bytes/);
    expect(() => keyRingFromEnv({ PAYLOAD_KEYS_FILE: join(dir, 'missing.json') })).toThrow(/PAYLOAD_KEYS_FILE: cannot read/);
  });
});

/** Every string in a JSON document, and what each decodes to when read as base64. */
function textsOf(json: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (typeof node === 'string') {
      out.push(node);
      if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(node)) out.push(Buffer.from(node, 'base64').toString('latin1'));
    } else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        out.push(k);
        walk(v);
      }
    }
  };
  walk(json);
  return out;
}

describe('a worker and a client with the codec', () => {
  let sandbox: RunningSandbox;
  let plain: TemporalTestContext;
  let encrypting: TemporalTestContext;
  const env = { PAYLOAD_KEY: `k-e2e:${key().toString('base64')}` };

  beforeAll(async () => {
    sandbox = await startSandbox({ users: 5, seed: 'codec-test' });
    plain = await connectTemporal();
    encrypting = await connectTemporal({ dataConverter: dataConverterFromEnv(env) });
  });
  afterAll(async () => {
    await encrypting?.close();
    await plain?.close();
    await sandbox?.close();
  });

  it('store an incident whose raw history has no plaintext of its input, which the codec client reads back', async () => {
    const marker = `marker-${randomUUID()}`;
    const taskQueue = uniqueTaskQueue('codec');
    const worker = await createWorker({
      connection: encrypting.nativeConnection,
      taskQueue,
      deps: sandboxDeps(sandbox),
      workflowBundle: { codePath: inject('workflowBundlePath') },
      dataConverter: dataConverterFromEnv(env),
    });
    const workflowId = uniqueWorkflowId('codec');
    await worker.runUntil(async () => {
      const handle = await encrypting.client.workflow.start(incidentWorkflow, {
        taskQueue,
        workflowId,
        args: [{ category: 'webhook_backlog', reporter: 'alice@example.com', summary: `Webhooks pile up (${marker})`, timeouts: { decideWithin: '30s', escalateAfter: '20s', resolveWithin: '1m' } }],
        // SDK 1.24 passes user metadata through the codec too (docs/payload-encryption.md).
        staticSummary: `Incident: ${marker}`,
      });
      // Query answers are payloads too: the codec client reads the input back through the workflow.
      const state = await eventually(async () => {
        const s = await handle.query(getIncidentState);
        // Mitigating: triage's activities ran, their inputs and results encrypted too.
        return s.status === 'mitigating' ? s : undefined;
      }, 30_000);
      expect(state.summary).toContain(marker);
      // The review reads the encrypted history through the codec: the update's approver and the input are plain there.
      await eventually(async () => (await handle.query(getIncidentState)).manualSteps.length > 0, 30_000);
      await handle.executeUpdate(confirmStep, { args: [{ step: 'reconcile_webhooks', confirmedBy: 'alice@example.com', note: 'replayed by hand' }] });
      const result = await handle.result();
      expect(result.steps.find((s) => s.step === 'review')?.outcome).toBe('succeeded');
      expect(result.review).toContain(marker);
      expect(result.review).toContain('| confirmStep | reconcile_webhooks | alice@example.com |');
    });

    // The stored input, decoded by hand with the codec: the marker is there.
    const history = await plain.client.workflow.getHandle(workflowId).fetchHistory();
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    expect(metadataText(input[0] as Payload, 'encoding')).toBe(ENCODING);
    const [decoded] = await codecFromEnv(env)!.decode(input as Payload[]);
    expect(fromPayload(decoded!)).toMatchObject({ summary: `Webhooks pile up (${marker})` });

    // The raw history as the Temporal CLI shows it, without any codec: no plaintext marker anywhere.
    const cli = findBinary(TEMPORAL_CLI)!.path;
    const { stdout } = await promisify(execFile)(cli, ['workflow', 'show', '--workflow-id', workflowId, '--output', 'json', '--address', inject('temporalAddress')], { maxBuffer: 64 * 1024 * 1024 });
    expect(stdout).toContain(Buffer.from(ENCODING).toString('base64'));
    const texts = textsOf(JSON.parse(stdout));
    expect(texts.length).toBeGreaterThan(50);
    expect(texts.filter((t) => t.includes(marker))).toEqual([]);
    // Activity summaries set in the workflow are encrypted by the worker as well.
    expect(texts.filter((t) => t.includes('triage: status page'))).toEqual([]);
    // What stays readable: the workflow id and the search attributes.
    expect(stdout).toContain(workflowId);
    expect(texts.some((t) => t.includes('webhook_backlog'))).toBe(true);
    // The same walk finds a marker where one is stored in plaintext (the check can fail).
    expect(textsOf({ data: Buffer.from(`x${marker}`).toString('base64') }).some((t) => t.includes(marker))).toBe(true);
  });
});

describe('the codec server', () => {
  const ui = 'http://localhost:8233';
  const token = randomUUID();
  let server: RunningCodecServer;
  const post = (path: string, body: unknown, auth = `Bearer ${token}`) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-namespace': 'default', origin: ui, authorization: auth }, body: JSON.stringify(body) });

  beforeAll(async () => {
    server = await startCodecServer({ codec: new EncryptionCodec(keyRing('k1', { k1: key() })), allowedOrigins: [ui], token });
  });
  afterAll(async () => server?.close());

  it('decodes what /encode returned, in the JSON form the UI sends', async () => {
    // What the UI holds: metadata values and data base64, as in the proto JSON of a payload.
    const original = { metadata: { encoding: Buffer.from('json/plain').toString('base64') }, data: Buffer.from('{"summary":"codec server"}').toString('base64') };
    const encoded = await post('/encode', { payloads: [original] });
    expect(encoded.status).toBe(200);
    expect(encoded.headers.get('access-control-allow-origin')).toBe(ui);
    const { payloads } = (await encoded.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    expect(Buffer.from(payloads[0]!.metadata.encoding!, 'base64').toString()).toBe(ENCODING);
    expect(Buffer.from(payloads[0]!.data, 'base64').toString('latin1')).not.toContain('codec server');

    const decoded = await post('/decode', { payloads });
    expect(decoded.status).toBe(200);
    expect(await decoded.json()).toEqual({ payloads: [original] });
  });

  it('answers the CORS preflight of the UI with the allowed headers, and not for another origin', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/decode`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace,authorization' } });
    const ok = await preflight(ui);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ui);
    expect(ok.headers.get('access-control-allow-headers')).toBe(CODEC_ALLOWED_HEADERS);
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
    const other = await preflight('http://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses a wrong bearer token with 401, and a malformed body or undecryptable payload with its reason', async () => {
    const payloads = [{ metadata: {}, data: '' }];
    expect((await post('/decode', { payloads }, 'Bearer wrong')).status).toBe(401);
    expect((await post('/decode', { payloads }, '')).status).toBe(401);
    const bad = await post('/decode', { payloads: [{ data: 'not base64!' }] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toContain('payloads.0.data: must be base64');
    const unknown = await post('/decode', { payloads: [{ metadata: { encoding: Buffer.from(ENCODING).toString('base64'), 'encryption-key-id': Buffer.from('k9').toString('base64') }, data: randomBytes(40).toString('base64') }] });
    expect(unknown.status).toBe(422);
    expect(((await unknown.json()) as { error: string }).error).toContain('unknown key id k9');
  });
});

describe('npm start with a key', () => {
  it('runs the codec server for the UI origin, encrypts what its worker writes, and stops it on Ctrl-C', async () => {
    const root = join(__dirname, '..');
    const taskQueue = uniqueTaskQueue('codec-start');
    const [codecPort, uiPort] = [await freePort(), await freePort()];
    const keyEnv = { PAYLOAD_KEY: `k-start:${key().toString('base64')}` };
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...keyEnv,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: taskQueue,
      TEMPORAL_UI_PORT: String(uiPort),
      CODEC_SERVER_PORT: String(codecPort),
      CLERK_SANDBOX_PORT: String(await freePort()),
      SLACK_PORT: String(await freePort()),
      CIR_RUNTIME_FILE: join(mkdtempSync(join(tmpdir(), 'cir-runtime-')), 'runtime.json'),
    };
    delete env.CLERK_SECRET_KEY;
    delete env.PAYLOAD_KEYS_FILE;
    const child = spawn(process.execPath, tsxArgs('src/main.ts'), { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const temporal = await connectTemporal({ dataConverter: dataConverterFromEnv(keyEnv) });
    try {
      await eventually(async () => output.includes('Ctrl-C stops everything') || child.exitCode !== null, 60_000, 200);
      const url = `http://127.0.0.1:${codecPort}`;
      expect(output).toContain(`Payloads: ENCRYPTED with key k-start; codec server for the UI at ${url}`);
      expect(output).toContain(`set its codec server to ${url}`);
      // The UI of that port may call it.
      const encoded = await fetch(`${url}/encode`, { method: 'POST', headers: { 'content-type': 'application/json', origin: `http://localhost:${uiPort}` }, body: JSON.stringify({ payloads: [{ metadata: {}, data: '' }] }) });
      expect(encoded.status).toBe(200);
      expect(encoded.headers.get('access-control-allow-origin')).toBe(`http://localhost:${uiPort}`);

      // Its worker reads what an encrypting client wrote, and answers in kind.
      const handle = await temporal.client.workflow.start(incidentWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId('codec-start'),
        args: [{ category: 'webhook_backlog', reporter: 'alice@example.com', summary: 'encrypted by npm start' }],
      });
      const state = await eventually(async () => {
        const s = await handle.query(getIncidentState);
        return s.status === 'mitigating' ? s : undefined;
      }, 30_000);
      expect(state.summary).toBe('encrypted by npm start');
      const history = await handle.fetchHistory();
      const completed = history.events?.find((e) => e.activityTaskCompletedEventAttributes)?.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
      expect(metadataText(completed as Payload, 'encoding')).toBe(ENCODING);
      await handle.terminate('test over');

      ctrlC(child);
      expect(await exited).toBe(0);
      // The codec server stopped with the rest.
      await expect(fetch(`${url}/encode`, { method: 'POST' })).rejects.toThrow();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await temporal.close();
    }
  });

  it('starts the dev server with --ui-codec-endpoint, which its UI reports', async () => {
    const endpoint = 'http://127.0.0.1:8235';
    expect(devServerArgs({ dbFile: 'x.db', uiCodecEndpoint: endpoint }).join(' ')).toContain(`--ui-codec-endpoint ${endpoint}`);
    expect(devServerArgs({ dbFile: 'x.db' })).not.toContain('--ui-codec-endpoint');
    const dir = mkdtempSync(join(tmpdir(), 'codec-devserver-'));
    const server = await startDevServer({
      cliPath: findBinary(TEMPORAL_CLI)!.path,
      dbFile: join(dir, 'temporal.db'),
      logFile: join(dir, 'temporal.log'),
      port: await freePort(),
      uiPort: await freePort(),
      uiCodecEndpoint: endpoint,
    });
    try {
      const settings = await eventually(async () => {
        const res = await fetch(`${server.uiUrl}/api/v1/settings`).catch(() => undefined);
        return res?.ok ? ((await res.json()) as { Codec?: { Endpoint?: string } }) : undefined;
      }, 20_000, 200);
      expect(settings.Codec?.Endpoint).toBe(endpoint);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
