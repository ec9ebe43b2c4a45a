/**
 * What every CLI command shares: the typed argument error, one exit-code policy (`runCli`) and a
 * Temporal client from the environment.
 */
import { Client, Connection } from '@temporalio/client';
import { CommanderError } from 'commander';
import { loadEnv, type Env } from '../config';

/** Refusal of a CLI argument; the message names the flag. Exit code 2. */
export class CliArgumentError extends Error {
  override readonly name = 'CliArgumentError';
}

/**
 * Runs a CLI's `main` with one exit-code policy: 0 when it succeeds, 1 when it throws (refused by
 * the workflow, failed, unreachable), 2 for a usage error (`CliArgumentError`, or commander's own
 * when the program was built with `.exitOverride()`). A failure prints one line to stderr,
 * `error: <message>`; commander prints its usage errors itself, in the same form. A command that
 * completes but reports a failed outcome sets `process.exitCode = 1` instead of throwing.
 */
export function runCli(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof CommanderError) {
      // Already printed by commander (`error: …`, or the help). Help and version exit 0.
      process.exit(err.exitCode === 0 ? 0 : 2);
    }
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof CliArgumentError ? 2 : 1);
  });
}

/** Run `fn` with a client for TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE, closing the connection after. */
export async function withClient<T>(fn: (client: Client, env: Env) => Promise<T>): Promise<T> {
  const env = loadEnv();
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  try {
    return await fn(new Client({ connection, namespace: env.TEMPORAL_NAMESPACE }), env);
  } finally {
    await connection.close();
  }
}
