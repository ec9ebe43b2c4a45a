/**
 * Temporal Cloud / secured cluster connection options (src/connection.ts): what the environment
 * builds, what it refuses, and real connections: worker and client over mTLS through a TLS front
 * of the run's dev server (which has no TLS flags of its own), and the API key as the server sees it.
 */
import { createSecureServer, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { withClient } from '../src/cli/common';
import { ConfigError, loadEnv } from '../src/config';
import { describeTemporalConnection, temporalConnectionOptions } from '../src/connection';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { revokeSessionsWorkflow } from '../src/workflows';
import { withCliTlsNames } from '../scripts/temporal';
import { baseInput, revocationDeps } from './helpers/revocation';
import { quietRuntime, testWorker, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';
import { makeTestCertificates, startMtlsProxy, type MtlsProxy, type TestCertificates } from './helpers/tls';

let certs: TestCertificates;
beforeAll(() => {
  certs = makeTestCertificates();
});
afterAll(() => certs.remove());

const issuesOf = (env: Record<string, string>) => {
  try {
    loadEnv(env);
    return '';
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
};

describe('connection options from the environment', () => {
  it('plain address by default: no TLS, no key', () => {
    const env = loadEnv({ TEMPORAL_ADDRESS: 'temporal:7233' });
    expect(temporalConnectionOptions(env)).toEqual({ address: 'temporal:7233' });
    expect(temporalConnectionOptions(env, '127.0.0.1:1234')).toEqual({ address: '127.0.0.1:1234' });
    expect(describeTemporalConnection(env)).toBe('temporal:7233 (namespace default)');
  });

  it('Temporal Cloud API key: TLS on, the key, and the namespace header', () => {
    const env = loadEnv({ TEMPORAL_ADDRESS: 'eu-west-1.aws.api.temporal.io:7233', TEMPORAL_NAMESPACE: 'incidents.a1b2c', TEMPORAL_API_KEY: 'key-123' });
    expect(temporalConnectionOptions(env)).toEqual({
      address: 'eu-west-1.aws.api.temporal.io:7233',
      tls: {},
      apiKey: 'key-123',
      metadata: { 'temporal-namespace': 'incidents.a1b2c' },
    });
    expect(describeTemporalConnection(env)).not.toContain('key-123');
    expect(describeTemporalConnection(env)).toContain('API key');
  });

  it('mTLS: certificate pair, CA and server name read from the files', () => {
    const env = loadEnv({
      TEMPORAL_TLS_CERT: certs.clientCert,
      TEMPORAL_TLS_KEY: certs.clientKey,
      TEMPORAL_TLS_CA: certs.ca,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
    });
    const opts = temporalConnectionOptions(env);
    expect(opts.tls).toEqual({
      clientCertPair: { crt: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) },
      serverRootCACertificate: readFileSync(certs.ca),
      serverNameOverride: 'temporal.test',
    });
    expect(opts.apiKey).toBeUndefined();
    expect(describeTemporalConnection(env)).toBe('localhost:7233 (namespace default, mTLS)');
    expect(temporalConnectionOptions(loadEnv({ TEMPORAL_TLS: 'true' })).tls).toEqual({});
  });

  it('refuses a certificate without its key (and the other way round) and files that do not exist, naming the variable', () => {
    expect(issuesOf({ TEMPORAL_TLS_CERT: certs.clientCert })).toMatch(/TEMPORAL_TLS_KEY: required with TEMPORAL_TLS_CERT/);
    expect(issuesOf({ TEMPORAL_TLS_KEY: certs.clientKey })).toMatch(/TEMPORAL_TLS_CERT: required with TEMPORAL_TLS_KEY/);
    expect(issuesOf({ TEMPORAL_TLS_CA: '/nonexistent/ca.pem' })).toMatch(/TEMPORAL_TLS_CA: no such file: \/nonexistent\/ca.pem/);
    expect(issuesOf({ TEMPORAL_TLS_CERT: certs.dir, TEMPORAL_TLS_KEY: certs.clientKey })).toMatch(/TEMPORAL_TLS_CERT: no such file/);
    expect(issuesOf({ TEMPORAL_TLS: 'yes' })).toMatch(/TEMPORAL_TLS:/);
  });

  it('npm run temporal hands the same files to the Temporal CLI under its own names', () => {
    const env = withCliTlsNames({ TEMPORAL_TLS_CERT: 'c.pem', TEMPORAL_TLS_KEY: 'c.key', TEMPORAL_TLS_CA: 'ca.pem', TEMPORAL_TLS_CLIENT_KEY_PATH: 'kept.key' });
    expect(env).toMatchObject({ TEMPORAL_TLS_CLIENT_CERT_PATH: 'c.pem', TEMPORAL_TLS_CLIENT_KEY_PATH: 'kept.key', TEMPORAL_TLS_SERVER_CA_CERT_PATH: 'ca.pem' });
  });
});

describe('over mTLS to a real server', () => {
  let proxy: MtlsProxy;
  let sandbox: RunningSandbox;
  beforeAll(async () => {
    quietRuntime();
    proxy = await startMtlsProxy(certs, inject('temporalAddress'));
    sandbox = await startSandbox({ users: 20, seed: 'connection-mtls', rateLimit: 'off' });
  });
  afterAll(async () => {
    await proxy?.close();
    await sandbox?.close();
  });

  const mtlsEnv = () => ({
    TEMPORAL_ADDRESS: proxy.address,
    TEMPORAL_TLS_CERT: certs.clientCert,
    TEMPORAL_TLS_KEY: certs.clientKey,
    TEMPORAL_TLS_CA: certs.ca,
    TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
  });

  it('worker (NativeConnection) and CLI client (withClient) both connect with the env; a revocation runs through them', async () => {
    const env = loadEnv(mtlsEnv());
    const native = await NativeConnection.connect(temporalConnectionOptions(env));
    try {
      const taskQueue = uniqueTaskQueue('mtls');
      const worker = await testWorker(native, taskQueue, revocationDeps(sandbox));
      const added = mtlsEnv();
      const saved = Object.fromEntries(Object.keys(added).map((k) => [k, process.env[k]]));
      Object.assign(process.env, added);
      try {
        const result = await worker.runUntil(
          withClient((client) =>
            client.workflow.execute(revokeSessionsWorkflow, {
              taskQueue,
              workflowId: uniqueWorkflowId('mtls'),
              args: [{ ...baseInput, scope: { type: 'users', userIds: [sandbox.admin.store.userId(0)] } }],
            }),
          ),
        );
        expect(result.outcome).toBe('succeeded');
      } finally {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
    } finally {
      await native.close();
    }
    expect(proxy.accepted.length).toBeGreaterThanOrEqual(2);
    expect(new Set(proxy.accepted)).toEqual(new Set(['client']));
  });

  it('is refused without a client certificate, with one from another CA, and with the wrong server name', async () => {
    const base = { address: proxy.address, connectTimeout: 3000 };
    const ca = readFileSync(certs.ca);
    await expect(Connection.connect({ ...base, tls: { serverRootCACertificate: ca, serverNameOverride: 'temporal.test' } })).rejects.toThrow();
    await expect(
      Connection.connect({
        ...base,
        tls: { serverRootCACertificate: ca, serverNameOverride: 'temporal.test', clientCertPair: { crt: readFileSync(certs.strangerCert), key: readFileSync(certs.strangerKey) } },
      }),
    ).rejects.toThrow();
    const wrongName = temporalConnectionOptions(loadEnv({ ...mtlsEnv(), TEMPORAL_TLS_SERVER_NAME: 'other.test' }));
    await expect(Connection.connect({ ...wrongName, connectTimeout: 3000 })).rejects.toThrow();
    expect(proxy.accepted.every((cn) => cn === 'client')).toBe(true);
  });
});

describe('API key as the server sees it', () => {
  it('worker and client send Authorization: Bearer <key> and the namespace header over TLS', async () => {
    // A TLS gRPC endpoint that records request headers and answers every call with an empty message.
    const seen: IncomingHttpHeaders[] = [];
    const server = createSecureServer({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) }, (req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/grpc' });
        res.addTrailers({ 'grpc-status': '0' });
        res.end(Buffer.from([0, 0, 0, 0, 0]));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const env = loadEnv({ TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'incidents.a1b2c', TEMPORAL_API_KEY: 'key-abc', TEMPORAL_TLS_CA: certs.ca, TEMPORAL_TLS_SERVER_NAME: 'temporal.test' });
      const client = await Connection.connect(temporalConnectionOptions(env));
      await client.close();
      const native = await NativeConnection.connect(temporalConnectionOptions(env));
      await native.close();
      const calls = seen.filter((h) => String(h[':path']).startsWith('/temporal.api.workflowservice.v1.WorkflowService/'));
      expect(calls.length).toBeGreaterThanOrEqual(2);
      for (const h of calls) {
        expect(h.authorization).toBe('Bearer key-abc');
        expect(h['temporal-namespace']).toBe('incidents.a1b2c');
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
