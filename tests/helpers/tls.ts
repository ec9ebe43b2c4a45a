/**
 * Test certificates (made with `openssl`, which Debian ships) and a TLS front for the dev server,
 * which has no TLS of its own: the proxy terminates TLS, demands a client certificate signed by
 * the test CA (mTLS, as a secured cluster does), and passes the decrypted gRPC stream through.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';

export interface TestCertificates {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from a CA the server does not trust. */
  strangerCert: string;
  strangerKey: string;
  remove(): void;
}

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });

function makeCa(dir: string, name: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.pem`], dir);
}

function makeLeaf(dir: string, name: string, ca: string, ext: string): void {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`,
    '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`], dir);
}

export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'cir-tls-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'stranger-ca');
  // The server's certificate names a host that is not the address dialled: TEMPORAL_TLS_SERVER_NAME is needed.
  makeLeaf(dir, 'server', 'ca', 'subjectAltName=DNS:temporal.test\nextendedKeyUsage=serverAuth\n');
  makeLeaf(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\n');
  makeLeaf(dir, 'stranger', 'stranger-ca', 'extendedKeyUsage=clientAuth\n');
  const f = (n: string) => join(dir, n);
  return {
    dir,
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
    strangerCert: f('stranger.pem'),
    strangerKey: f('stranger.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface MtlsProxy {
  address: string;
  /** Client certificates' subjects of the connections that got through. */
  accepted: string[];
  close(): Promise<void>;
}

/** mTLS in front of `target` (host:port of a plaintext gRPC server), on a free loopback port. */
export async function startMtlsProxy(certs: TestCertificates, target: string): Promise<MtlsProxy> {
  const [host = '127.0.0.1', port = '7233'] = target.split(':');
  const accepted: string[] = [];
  const sockets = new Set<TLSSocket>();
  const server = createServer(
    {
      cert: readFileSync(certs.serverCert),
      key: readFileSync(certs.serverKey),
      ca: readFileSync(certs.ca),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      sockets.add(socket);
      accepted.push(String(socket.getPeerCertificate().subject?.CN));
      const upstream = connect(Number(port), host === 'localhost' ? '127.0.0.1' : host);
      socket.pipe(upstream).pipe(socket);
      const end = () => {
        socket.destroy();
        upstream.destroy();
        sockets.delete(socket);
      };
      socket.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
