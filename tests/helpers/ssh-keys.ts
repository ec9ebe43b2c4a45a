/** SSH keys and an ssh-agent for signed-approval tests, made by OpenSSH itself in a temporary directory. */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestKey {
  /** Private key file (no passphrase). */
  file: string;
  /** `ssh-ed25519 AAAA…` (type and base64, no comment). */
  publicLine: string;
  /** As `ssh-keygen -l` prints it: `SHA256:…`. */
  fingerprint: string;
}

export interface KeyDir {
  dir: string;
  key(name: string, type?: 'ed25519' | 'rsa' | 'ecdsa'): TestKey;
  /** Write an allowed_signers file; returns its path. */
  allowedSigners(lines: string[], name?: string): string;
  /** `ssh-keygen -Y sign` of `message` in `namespace` with `key` (a private or, with an agent, public key file). */
  sign(keyFile: string, message: string, namespace: string): string;
  close(): void;
}

export function keyDir(): KeyDir {
  const dir = mkdtempSync(join(tmpdir(), 'signed-approvals-'));
  const keys = new Map<string, TestKey>();
  return {
    dir,
    key(name, type = 'ed25519') {
      const known = keys.get(name);
      if (known) return known;
      const file = join(dir, name);
      execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', name, '-f', file]);
      const publicLine = readFileSync(`${file}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
      const fingerprint = execFileSync('ssh-keygen', ['-l', '-f', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1] as string;
      const key = { file, publicLine, fingerprint };
      keys.set(name, key);
      return key;
    },
    allowedSigners(lines, name = 'allowed_signers') {
      const path = join(dir, name);
      writeFileSync(path, `${lines.join('\n')}\n`);
      return path;
    },
    sign(keyFile, message, namespace) {
      return execFileSync('ssh-keygen', ['-Y', 'sign', '-n', namespace, '-f', keyFile], { input: message, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();
    },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface TestAgent {
  socket: string;
  add(keyFile: string): void;
  stop(): void;
}

/** `ssh-agent -D -a <socket>` of its own (foreground, so the test owns the process), with keys added by `ssh-add`. */
export async function startAgent(dir: string): Promise<TestAgent> {
  const socket = join(dir, 'agent.sock');
  const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (Date.now() > deadline) throw new Error('ssh-agent did not create its socket within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    socket,
    add: (keyFile) => void execFileSync('ssh-add', ['-q', keyFile], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'pipe' }),
    stop: () => void agent.kill(),
  };
}
