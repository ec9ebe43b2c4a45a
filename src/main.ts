/**
 * `npm start`: the main job on one machine. Uses the Temporal server at TEMPORAL_ADDRESS when one
 * answers, otherwise starts the dev server (state in .data/temporal.db, UI on TEMPORAL_UI_PORT);
 * uses real Clerk when CLERK_SECRET_KEY is set, otherwise starts the Clerk sandbox; then runs the
 * worker until Ctrl-C and stops everything it started.
 */
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { dataConverterFromEnv, keyRingFromEnv } from './codec';
import { startCodecServerFromEnv, type RunningCodecServer } from './codec/server';
import { loadEnv } from './config';
import { temporalConnectionOptions, usesTls, type TemporalConnectionOptions } from './connection';
import { SEARCH_ATTRIBUTES } from './shared';
import { formatDuration } from './domain';
import { serverAnswers, startDevServer, startDevServerViaSdkDownload, type RunningDevServer } from './temporal/dev-server';
import { ensureBinary, PROJECT_ROOT, TEMPORAL_CLI } from './temporal/provision';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { createWorker } from './worker';
import { ensureBypassSweepSchedule } from './worker/bypass-sweep';
import { ensureWatchSchedule, watchConfigFromEnv } from './watch/schedule';
import { startAlertIntakeFromEnv } from './intake/start';
import { SAMPLE_ROSTER_FILE, workerDepsFromEnv, type WorkerDepsOptions } from './worker/deps';
import { slackConfigFromEnv, startSlackApp } from './chat/start';
import { workerLogger } from './worker/logger';
import { removeRuntimeFile, runtimeFilePath, writeRuntimeFile } from './runtime-file';
import { startSandboxReconcile } from './reconcile-sandbox';
import { exitQuietlyWhenOutputCloses } from './stdio';

const DATA_DIR = join(PROJECT_ROOT, '.data');
const say = (line: string) => process.stdout.write(`${line}\n`);

/** Our Keyword search attributes, on a server we did not start (idempotent). */
async function registerSearchAttributes(options: TemporalConnectionOptions, namespace: string): Promise<void> {
  const connection = await Connection.connect(options);
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = SEARCH_ATTRIBUTES.filter((name) => !(name in (existing.customAttributes ?? {})));
    if (missing.length === 0) return;
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        missing.map((name) => [name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]),
      ),
    });
    say(`registered search attributes: ${missing.join(', ')}`);
  } finally {
    await connection.close();
  }
}

/** Users the sandbox is seeded with at `npm start` (seed 1: the same users every time). */
const SANDBOX_USERS = 1000;

const SAMPLE_INPUT = {
  category: 'clerk_outage',
  reporter: 'alice@example.com',
  summary: 'Users cannot sign in: Clerk API returns 503',
  approvers: ['bob@example.com', 'carol@example.com'],
};

async function main(): Promise<void> {
  const env = loadEnv();
  // A Slack app half configured is refused before anything starts (the sandbox's Slack is decided later).
  slackConfigFromEnv(process.env);
  // The SDK logs every worker state change at INFO; the terminal is for what the operator needs.
  Runtime.install({ logger: workerLogger(process.env.LOG_LEVEL === 'debug' ? 'DEBUG' : 'WARN') });
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      await stop().catch((err: unknown) => say(`while stopping: ${String(err)}`));
    }
  };

  try {
    // Before the dev server, which is told where it is (--ui-codec-endpoint).
    const codecServer: RunningCodecServer | undefined = await startCodecServerFromEnv(env);
    if (codecServer) {
      stops.push(() => codecServer.close());
      say(`Payloads: ENCRYPTED with key ${keyRingFromEnv(env)?.current}; codec server for the UI at ${codecServer.url}`);
    } else {
      say('Payloads: not encrypted (no PAYLOAD_KEYS_FILE or PAYLOAD_KEY; see docs/payload-encryption.md)');
    }
    let address = env.TEMPORAL_ADDRESS;
    let uiUrl: string;
    let uiNote = '';
    if (await serverAnswers(temporalConnectionOptions(env))) {
      say(`Temporal: using the server that already answers at ${address}`);
      await registerSearchAttributes(temporalConnectionOptions(env), env.TEMPORAL_NAMESPACE);
      uiUrl = env.TEMPORAL_UI_URL ?? `http://localhost:${env.TEMPORAL_UI_PORT}`;
      uiNote = env.TEMPORAL_UI_URL ? '' : ' (if that server has its UI there; set TEMPORAL_UI_URL otherwise)';
      if (codecServer) say(`Temporal UI: to read encrypted payloads, set its codec server to ${codecServer.url} (UI settings, or the server's --ui-codec-endpoint)`);
    } else if (usesTls(env)) {
      // A secured server was configured (Cloud, mTLS): a local dev server is never what was meant.
      throw new Error(`no Temporal server answers at ${address} with the TLS / API key settings given (TEMPORAL_TLS_*, TEMPORAL_API_KEY)`);
    } else {
      const cliPath = ensureBinary(TEMPORAL_CLI, { log: (l) => say(`[provision] ${l}`), allowSdkDownload: true });
      const [host = '127.0.0.1', port = '7233'] = address.split(':');
      const serverOptions = {
        dbFile: join(DATA_DIR, 'temporal.db'),
        host: host === 'localhost' ? '127.0.0.1' : host,
        port: Number(port),
        uiPort: env.TEMPORAL_UI_PORT,
        namespace: env.TEMPORAL_NAMESPACE,
        ...(codecServer ? { uiCodecEndpoint: codecServer.url } : {}),
      };
      say(`Temporal: starting the dev server (state in .data/temporal.db, log in .data/temporal.log)…`);
      const server: Omit<RunningDevServer, 'process'> =
        cliPath === 'sdk-download'
          ? await startDevServerViaSdkDownload(serverOptions)
          : await startDevServer({ ...serverOptions, cliPath, logFile: join(DATA_DIR, 'temporal.log') });
      stops.push(() => server.stop());
      address = server.address;
      uiUrl = server.uiUrl;
    }

    // Real Clerk, or the sandbox and the app's side of its webhooks; the rest is the worker's one wiring (src/worker/deps.ts).
    let sandboxUrl: string | undefined;
    let wiring: WorkerDepsOptions;
    if (env.CLERK_SECRET_KEY || env.CLERK_SECRET_KEY_REF) {
      say('Clerk: REAL Clerk Backend API (CLERK_SECRET_KEY is set)');
      wiring = {};
    } else {
      const sandbox: RunningSandbox = await startSandbox({ port: env.CLERK_SANDBOX_PORT, users: SANDBOX_USERS, seed: 1 });
      stops.push(() => sandbox.close());
      sandboxUrl = sandbox.url;
      say(`Clerk: SANDBOX at ${sandbox.url} with ${SANDBOX_USERS} seeded users (no CLERK_SECRET_KEY set; nothing reaches real Clerk)`);
      // The app's side of webhooks: a SQLite store and the example receiver, 10 % of deliveries dropped.
      const users = await startSandboxReconcile(env, sandbox, DATA_DIR);
      stops.push(() => users.close());
      say(`User store: ${users.storeUrl}, fed by the example webhook receiver at ${users.receiverUrl} (the sandbox drops 10 % of deliveries)`);
      // The sandbox's key in a file reference; a rotation goes through its Platform API and Vault.
      wiring = { sandbox: { endpoints: sandbox, keyFile: join(DATA_DIR, 'sandbox-clerk-secret-key'), demoSigningDir: join(DATA_DIR, 'signing') }, reconcile: users.deps, rosterFile: SAMPLE_ROSTER_FILE };
    }
    // The Slack app: configured by SLACK_*, or in sandbox mode the sandbox's emulated Slack (SLACK=off: none).
    const slack = slackConfigFromEnv(process.env, sandboxUrl);
    const deps = await workerDepsFromEnv(env, { ...wiring, temporalUiUrl: uiUrl, say, ...(slack ? { slack: slack.settings } : {}) });
    const rosterFile = env.ROSTER_FILE ?? wiring.rosterFile;
    if (!deps.roster) {
      say('');
      say('!!! APPROVALS ARE UNAUTHENTICATED: no on-call roster (ROSTER_FILE). Anyone who can reach Temporal can approve as any name');
      say('!!! the incident input lists, including the emergency auth bypass. Set ROSTER_FILE (docs/roster.md) before real use.');
      say('');
    }
    if (!sandboxUrl) {
      say(deps.reconcile ? `User store: ${deps.reconcile.store.kind} (USER_STORE_URL), ${deps.reconcile.delivery.type} delivery` : 'User store: none (USER_STORE_URL unset): webhook_backlog reconciliation stays by hand');
    }
    say(deps.deploy ? `Deployment platform: ${deps.deploy.name}${env.DEPLOY_ADAPTER ? '' : " (the sandbox's emulated Vercel)"}` : 'Deployment platform: none configured (DEPLOY_ADAPTER); the emergency bypass is done by hand');

    const connection = await NativeConnection.connect(temporalConnectionOptions(env, address));
    stops.push(() => connection.close());
    const worker = await createWorker({
      connection,
      namespace: env.TEMPORAL_NAMESPACE,
      taskQueue: env.TEMPORAL_TASK_QUEUE,
      dataConverter: dataConverterFromEnv(env),
      deps,
    });

    // The backstop of the bypass lease: every minute, a flag no running incident holds is removed.
    await ensureBypassSweepSchedule(connection, env.TEMPORAL_NAMESPACE, env.TEMPORAL_TASK_QUEUE);

    // Detection: the watch (a Schedule of triage's probes) and, with a token, the alert intake (docs/detection.md).
    const detectionApprovers = sandboxUrl ? (deps.roster ? ['@auth-oncall'] : SAMPLE_INPUT.approvers) : [];
    const watch = watchConfigFromEnv(process.env, detectionApprovers);
    if (watch.enabled) {
      const how = await ensureWatchSchedule(connection, env.TEMPORAL_NAMESPACE, env.TEMPORAL_TASK_QUEUE, watch);
      say(`Watch: probes every ${formatDuration(watch.intervalMs)}, opens an incident on ${watch.input.consecutive} failing run(s) in a row (schedule ${how}; npm run watch -- status | pause | resume)`);
    } else {
      say(`Watch: off (${watch.reason}); see docs/detection.md`);
    }
    const intake = await startAlertIntakeFromEnv(process.env, { connection, namespace: env.TEMPORAL_NAMESPACE, taskQueue: env.TEMPORAL_TASK_QUEUE, dataConverter: dataConverterFromEnv(env), defaultApprovers: detectionApprovers });
    if (intake) {
      stops.push(() => intake.close());
      say(`Alert intake: ${intake.url}/alerts/alertmanager and /alerts/grafana (bearer ALERT_INTAKE_TOKEN; deployment ${intake.deployment})`);
    } else {
      say('Alert intake: off (set ALERT_INTAKE_TOKEN to take Alertmanager and Grafana webhooks; docs/alert-intake.md)');
    }

    if (slack) {
      const app = await startSlackApp(slack, { connection, namespace: env.TEMPORAL_NAMESPACE, taskQueue: env.TEMPORAL_TASK_QUEUE, dataConverter: dataConverterFromEnv(env), roster: () => deps.roster?.current(), defaultApprovers: detectionApprovers, ...(sandboxUrl ? { sandboxUrl } : {}) });
      stops.push(() => app.close());
      say(`Slack app: ${app.url}/slack/interactions and /slack/commands (signed requests only); one thread per incident in channel ${slack.settings.channel}${deps.roster ? '' : ' (no roster: clicks are refused, a Slack user is nobody)'}`);
      if (slack.sandbox && sandboxUrl) say(`Slack (emulated, no workspace needed): ${sandboxUrl}/slack shows the channel; click Approve/Reject there as alice, bob, carol or dave`);
    } else {
      say('Slack app: off (set SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_CHANNEL; docs/slack.md)');
    }

    say('');
    say(`Temporal UI:  ${uiUrl}/namespaces/${env.TEMPORAL_NAMESPACE}/workflows${uiNote}`);
    say(`Start an incident: Start Workflow → task queue "${env.TEMPORAL_TASK_QUEUE}", type "incidentWorkflow", input:`);
    say(`  ${JSON.stringify(SAMPLE_INPUT)}`);
    say(`or from a terminal: npm run incident -- start --category clerk_outage --reporter alice@example.com ${deps.roster ? '--approver @auth-oncall' : '--approver bob@example.com --approver carol@example.com'} --summary "Users cannot sign in"`);
    // Lets `npm run triage` without flags find the sandbox (src/runtime-file.ts).
    const runtimeFile = runtimeFilePath();
    try {
      writeRuntimeFile(
        {
          pid: process.pid,
          mode: sandboxUrl ? 'sandbox' : 'clerk',
          ...(sandboxUrl ? { sandboxUrl } : {}),
          temporalAddress: address,
          uiUrl,
          ...(rosterFile && deps.roster ? { rosterFile } : {}),
          startedAt: new Date().toISOString(),
        },
        runtimeFile,
      );
      stops.push(async () => removeRuntimeFile(process.pid, runtimeFile));
    } catch (err) {
      say(`could not write ${runtimeFile} (${String(err)}): npm run triage will need --sandbox`);
    }
    say(`worker running on task queue ${env.TEMPORAL_TASK_QUEUE} (Ctrl-C stops everything)`);
    // The SDK shuts the worker down on SIGINT/SIGTERM; run() then resolves and we stop the rest.
    await worker.run();
    say('worker stopped; shutting down the sandbox and the dev server…');
  } finally {
    await stopAll();
  }
}

exitQuietlyWhenOutputCloses('keep-running');
main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
