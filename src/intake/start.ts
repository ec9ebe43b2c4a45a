/**
 * The alert intake as `npm start` runs it: on when ALERT_INTAKE_TOKEN is set, listening on
 * ALERT_INTAKE_HOST:ALERT_INTAKE_PORT, opening incidents on the worker's task queue through its
 * own Temporal client. Every configuration problem is refused at start-up, naming the variable.
 */
import { Client, type ConnectionLike, type DataConverter } from '@temporalio/client';
import type { AddressInfo } from 'node:net';
import { createAlertIntakeServer } from './server';
import { intakeConfigFromEnv } from './rules';
import { createTemporalIncidentOpener } from './temporal-opener';

export interface RunningIntake {
  url: string;
  deployment: string;
  close(): Promise<void>;
}

export async function startAlertIntakeFromEnv(source: NodeJS.ProcessEnv, o: { connection: ConnectionLike; namespace: string; taskQueue: string; dataConverter?: DataConverter; defaultApprovers?: readonly string[] }): Promise<RunningIntake | undefined> {
  if (!source.ALERT_INTAKE_TOKEN) return undefined;
  const config = intakeConfigFromEnv(source);
  const approvers = config.approvers.length ? config.approvers : [...(o.defaultApprovers ?? [])];
  // The worker's data converter: with PAYLOAD_KEY what the intake sends is encrypted too.
  const client = new Client({ connection: o.connection, namespace: o.namespace, ...(o.dataConverter ? { dataConverter: o.dataConverter } : {}) });
  const opener = createTemporalIncidentOpener({ client, taskQueue: o.taskQueue, deployment: config.deployment, approvers, categories: [...new Set(config.rules.map((r) => r.category))] });
  const app = createAlertIntakeServer({ token: config.token, rules: config.rules, opener, bodyLimit: config.bodyLimit });
  await app.listen({ host: config.host, port: config.port });
  const { port } = app.server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return { url: `http://${host}:${port}`, deployment: config.deployment, close: () => app.close() };
}
