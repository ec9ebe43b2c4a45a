/**
 * Game-day drills end to end: a real Temporal server, a sandbox-mode worker, the sandbox reached
 * over HTTP only. A drill passes when the sandbox's records agree; a sabotaged run (the bypass
 * forced back on in the sandbox after the workflow turned it off) must be reported as failed.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScheduleNotFoundError } from '@temporalio/client';
import { buildDrillProgram, drillCategories, drillDetection, drillVariant, runDrills } from '../src/cli/drill';
import { DRILL_DETECT, WatchDetector } from '../src/drill/detect';
import { detectedIncidentId } from '../src/intake/temporal-opener';
import { watchScheduleId } from '../src/watch/schedule';
import { getIncidentState, type IncidentState } from '../src/workflows/incident';
import { CliArgumentError } from '../src/cli/common';
import { formatReports, reportsJson, runDrill, type DrillReport, type DrillTarget } from '../src/drill/run';
import { notDrillableYet, VARIANTS } from '../src/drill/scenarios';
import { INCIDENT_CATEGORIES, type IncidentCategory } from '../src/domain';
import { loadEnv } from '../src/config';
import { startSandboxReconcile } from '../src/reconcile-sandbox';
import { DrillSandbox } from '../src/drill/sandbox';
import { DrillSlack } from '../src/drill/slack';
import { slackConfigFromEnv, startSlackApp } from '../src/chat/start';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { SAMPLE_ROSTER_FILE, workerDepsFromEnv } from '../src/worker/deps';
import { startChatReceiver, type ChatReceiver } from './helpers/chat-receiver';
import { connectTemporal, testWorker, uniqueTaskQueue, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let chat: ChatReceiver;
let reviewDir: string;
beforeAll(async () => {
  temporal = await connectTemporal();
  chat = await startChatReceiver();
  reviewDir = mkdtempSync(join(tmpdir(), 'cir-drill-test-'));
});
afterAll(async () => {
  await chat?.close();
  await temporal?.close();
  if (reviewDir) rmSync(reviewDir, { recursive: true, force: true });
});

/**
 * Runs `categories` in a fresh sandbox with a sandbox-mode worker of their own, as `npm run drill`
 * does without `npm start` (one sandbox per run: the key_compromise drill rotates its key).
 */
async function drill(
  categories: Parameters<typeof runDrills>[0],
  hooks: Parameters<typeof runDrills>[2] = {},
  after?: (sandbox: RunningSandbox, taskQueue: string) => Promise<void>,
  variant?: Parameters<typeof runDrills>[3],
  detect?: Parameters<typeof runDrills>[4],
  via?: { slack: true; sandboxSecret?: string },
): Promise<DrillReport[]> {
  const sandbox = await startSandbox({ users: 20, seed: 'drill-test' });
  try {
    sandbox.admin.vercel.buildMs = 300;
    const taskQueue = uniqueTaskQueue('drill');
    // As npm start wires sandbox mode: the app's user store fed by the example receiver.
    const users = await startSandboxReconcile(loadEnv({}), sandbox, mkdtempSync(join(reviewDir, 'store-')));
    try {
      // --via slack: the worker posts to the sandbox's Slack, our Slack app takes its clicks.
      const slackConfig = via ? slackConfigFromEnv({ SLACK: 'on', SLACK_PORT: '0' }, sandbox.url) : undefined;
      const deps = await workerDepsFromEnv(loadEnv({}), {
        sandbox: { endpoints: sandbox, keyFile: join(reviewDir, `key-${taskQueue}`) },
        reconcile: users.deps,
        ...(slackConfig ? { slack: slackConfig.settings } : { chatWebhookUrl: chat.url }),
        rosterFile: SAMPLE_ROSTER_FILE,
      });
      const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
      const roster = deps.roster?.current();
      const app = slackConfig && roster ? await startSlackApp(slackConfig, { connection: temporal.client.connection, namespace: 'default', taskQueue, roster: () => roster, defaultApprovers: ['@auth-oncall'], sandboxUrl: sandbox.url, log: () => undefined }) : undefined;
      // Sabotage: the sandbox signs with another secret than the app's.
      if (via?.sandboxSecret) await new DrillSandbox(sandbox.url).admin.slackSettings({ signingSecret: via.sandboxSecret });
      try {
        const slack = app && roster ? new DrillSlack(new DrillSandbox(sandbox.url).admin, roster) : undefined;
        const target: DrillTarget = { client: temporal.client, taskQueue, sandbox: new DrillSandbox(sandbox.url), reviewDir, log: () => undefined, userStoreUrl: users.storeUrl, ...(slack ? { slack } : {}) };
        const reports = await worker.runUntil(runDrills(categories, target, hooks, variant, detect));
        await after?.(sandbox, taskQueue);
        return reports;
      } finally {
        await app?.close();
      }
    } finally {
      await users.close();
    }
  } finally {
    await sandbox.close();
  }
}

const failedChecks = (r: DrillReport | undefined) => r?.checks.filter((c) => !c.passed).map((c) => `${c.name}: ${c.detail}`);

describe('npm run drill', () => {
  it('all five pass, checked in the sandbox; the JSON has the documented shape; the reviews are on disk', async () => {
    const reports = await drill(['clerk_outage', 'key_compromise', 'middleware_failure', 'session_issues', 'webhook_backlog'], {}, async (sandbox) => {
      // The drills lifted their faults: the sandbox is healthy again.
      expect(sandbox.admin.outageState().active).toBe(false);
      expect((await fetch(`${sandbox.url}/app/dashboard`)).status).toBe(200);
      expect(sandbox.admin.webhookConfig()).toMatchObject({ drop: false, dropRate: 0.1 });
    });
    for (const r of reports) expect(failedChecks(r), r.category).toEqual([]);
    const json = JSON.parse(reportsJson(reports)) as unknown[];
    expect(json).toHaveLength(5);
    for (const entry of json) {
      expect(entry).toEqual({
        category: expect.any(String),
        passed: true,
        checks: expect.arrayContaining([{ name: 'review written', passed: true, detail: expect.any(String) }]),
        workflowId: expect.stringMatching(/^drill-/),
        steps: expect.arrayContaining([{ step: 'review', outcome: 'succeeded' }]),
        reviewPath: expect.stringContaining(reviewDir),
        durationMs: expect.any(Number),
      });
    }
    const outage = reports[0] as DrillReport;
    expect(outage.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['Vercel log: bypass set → deploy → ready → removed → deploy → ready, each toggle once', 'bypass off on the platform and the app', 'triage named the injected fault']));
    expect(readFileSync(outage.reviewPath as string, 'utf8')).toContain(outage.workflowId);
    const rotation = reports[1] as DrillReport;
    expect(rotation.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['old key dead (sandbox key ring and audit)', 'every non-excluded session revoked, on the new key (sandbox store and audit)']));
  }, 360_000);

  it('--via slack: all five pass with every approval a click in the emulated Slack and the review finished there (the sandbox\'s records)', async () => {
    const reports = await drill([...INCIDENT_CATEGORIES], {}, undefined, undefined, undefined, { slack: true });
    for (const r of reports) {
      expect(failedChecks(r), r.category).toEqual([]);
      expect(r.checks.find((c) => c.name === 'every approval was a click in Slack (sandbox records)')?.passed, r.category).toBe(true);
    }
    const clicks = reports.flatMap((r) => /^(\d+) click/.exec(r.checks.find((c) => c.name.startsWith('every approval was a click'))?.detail ?? '')?.[1] ?? []).map(Number);
    // clerk_outage 2, key_compromise 4, middleware_failure 1, session_issues 1, webhook_backlog 0 (no gate).
    expect(clicks).toEqual([2, 4, 1, 1, 0]);
  }, 360_000);

  it('--via slack with a Slack that signs with another secret: every click is refused 401 and the drill fails saying so', async () => {
    const [report] = await drill(['session_issues'], {}, undefined, undefined, undefined, { slack: true, sandboxSecret: 'not-the-apps-secret-0000000000' });
    expect(report?.passed).toBe(false);
    expect(failedChecks(report)?.join('\n')).toMatch(/click on update_session_lifetime answered 401/);
  }, 240_000);

  it.each(Object.entries(VARIANTS).flatMap(([category, variants]) => Object.keys(variants ?? {}).map((name) => [category as IncidentCategory, name] as const)))('the %s variant %s passes, checked in the sandbox', async (category, name) => {
    const [report] = await drill([category], {}, undefined, drillVariant([category], name));
    expect(report?.passed, formatReports(report ? [report] : [])).toBe(true);
  }, 240_000);

  it('a sabotaged clerk_outage (the bypass flag forced back on after the workflow turned it off) is reported as failed', async () => {
    const [report] = await drill(['clerk_outage'], {
      beforeChecks: async ({ sandbox: s }) => {
        const { token, edgeConfig, flagKey } = await s.vercel();
        const res = await fetch(`${s.url}/v1/edge-config/${edgeConfig.id}/items`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ items: [{ operation: 'upsert', key: flagKey, value: { until: new Date(Date.now() + 600_000).toISOString(), incident: 'sabotage' } }] }),
        });
        expect(res.ok).toBe(true);
      },
    });
    expect(report?.passed).toBe(false);
    // The workflow's own word is still "off": only the sandbox's records catch it.
    expect(report?.checks.find((c) => c.name === 'workflow reports the expected outcomes')?.passed).toBe(true);
    const off = report?.checks.find((c) => c.name === 'bypass off on the platform and the app');
    expect(off).toMatchObject({ passed: false, detail: expect.stringMatching(/Edge Config still has CLERK_AUTH_BYPASS.*X-Auth-Bypass: true/) });
  }, 240_000);

  it('clerk_outage --detect: nobody starts the incident, the watch opens it under its id; the same checks pass and the MTTD is reported', async () => {
    const detector = new WatchDetector('clerk_outage');
    let state: IncidentState | undefined;
    let scheduleId = '';
    const [report] = await drill(
      ['clerk_outage'],
      { beforeChecks: async ({ workflowId }) => void (state = await temporal.client.workflow.getHandle(workflowId).query(getIncidentState)) },
      async (_sandbox, taskQueue) => {
        // The drill's watch is gone once it is over.
        scheduleId = watchScheduleId(taskQueue, detector.deployment);
        await expect(temporal.client.schedule.getHandle(scheduleId).describe()).rejects.toThrow(ScheduleNotFoundError);
      },
      undefined,
      () => detector,
    );
    expect(failedChecks(report)).toEqual([]);
    expect(report?.workflowId).toBe(detectedIncidentId(detector.deployment, 'clerk_outage'));
    expect(state?.detection?.detectedBy).toBe('watch');
    expect(state?.reporter).toBe('monitor:watch');
    const goal = DRILL_DETECT.intervalMs * DRILL_DETECT.consecutive + 5_000;
    const d = report?.detection;
    expect(d).toMatchObject({ scheduleId, incidentId: report?.workflowId, detectedBy: 'watch', detectedAt: state?.detection?.detectedAt, openedAt: state?.detection?.openedAt, goalMs: goal });
    expect(d?.mttdMs).toEqual(expect.any(Number));
    expect(d?.mttdMs).toBeGreaterThanOrEqual(0);
    expect(d?.mttdMs).toBeLessThanOrEqual(goal);
    expect(d?.injectedToOpenedMs).toBeLessThanOrEqual(goal);
    expect(report?.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining(['the watch opened the incident (nobody started it)', 'detected within interval × consecutive + 5 s', 'bypass off on the platform and the app', 'triage named the injected fault']),
    );
    expect(formatReports(report ? [report] : [])).toMatch(/detection: incident-drill-\w+-clerk_outage opened by watch: MTTD \d+\.\d s/);
    expect((JSON.parse(reportsJson(report ? [report] : [])) as Array<{ detection?: unknown }>)[0]?.detection).toEqual(d);
  }, 300_000);

  it('a playbook that cannot be drilled in a build is reported as failed, naming why, without starting anything', async () => {
    const target: DrillTarget = { client: temporal.client, taskQueue: uniqueTaskQueue('never'), sandbox: new DrillSandbox('http://127.0.0.1:9'), reviewDir, log: () => undefined };
    const report = await runDrill('webhook_backlog', notDrillableYet('the reconciliation is done by hand in this build'), target);
    expect(report).toMatchObject({ category: 'webhook_backlog', passed: false, workflowId: null, steps: [] });
    expect(report.checks).toEqual([{ name: 'drillable', passed: false, detail: 'not drillable yet: the reconciliation is done by hand in this build' }]);
  });

  it('the argument is a category or all; anything else is a usage error naming it', () => {
    expect(drillCategories('all')).toHaveLength(5);
    expect(drillCategories('session_issues')).toEqual(['session_issues']);
    expect(drillVariant(['session_issues'], 'foreign-origin')).toBe(VARIANTS.session_issues?.['foreign-origin']);
    expect(() => drillVariant(['session_issues'], 'nope')).toThrow(/^--variant: session_issues has the variants foreign-origin, foreign-publishable-key \(got "nope"\)/);
    expect(() => drillVariant(['clerk_outage'], 'foreign-origin')).toThrow(/^--variant: clerk_outage has no variants/);
    expect(() => drillVariant([...INCIDENT_CATEGORIES], 'foreign-origin')).toThrow(/^--variant: give one category/);
    expect(drillDetection(['clerk_outage'])('clerk_outage')).toBeInstanceOf(WatchDetector);
    expect(() => drillDetection(['key_compromise'])).toThrow(/^--detect: only clerk_outage can be drilled with detection .* \(got key_compromise\)$/);
    expect(() => drillDetection([...INCIDENT_CATEGORIES])).toThrow(CliArgumentError);
    expect(() => drillCategories('outage')).toThrow(CliArgumentError);
    expect(() => drillCategories('outage')).toThrow(/<category>: must be one of clerk_outage, .* or all \(got "outage"\)/);
  });

  it('--detect with another category is a usage error naming the flag, before anything starts', async () => {
    for (const arg of ['all', 'webhook_backlog']) await expect(buildDrillProgram().parseAsync(['node', 'drill', arg, '--detect'])).rejects.toThrow(/^--detect: only clerk_outage/);
  });
});
