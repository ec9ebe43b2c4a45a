/** What every CLI command shares: the typed argument error and a Temporal client from the environment. */
import { Client, Connection } from '@temporalio/client';
import { loadEnv, type Env } from '../config';

/** Refusal of a CLI argument; the message names the flag. Exit code 2. */
export class CliArgumentError extends Error {
  override readonly name = 'CliArgumentError';
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
