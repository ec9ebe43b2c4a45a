/**
 * The `webhook_backlog` drill: the sandbox drops every webhook delivery while users sign up and
 * are deleted, so the app's user store (fed by the example receiver) drifts from Clerk; the
 * incident's reconciliation must bring it back. Checked against the users Clerk (the sandbox's
 * Backend API) lists and the app's store itself, not the workflow's totals.
 */
import { createClerkClient } from '@clerk/backend';
import { loadEnv } from '../config';
import { reconcileDepsFromEnv } from '../reconcile-setup';
import type { UserStore } from '../stores';
import { decideReconcile, getReconcileProgress } from '../workflows/reconcile-users';
import { DrillStopped, type DrillRun, type DrillScenario } from './run';
import type { DrillSandbox } from './sandbox';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const STEP = 'reconcile_webhooks';

/** Every user id Clerk (the sandbox) has, through the Backend API with a key of the drill's own. */
async function clerkUserIds(sandbox: DrillSandbox): Promise<Set<string>> {
  const { secretKey } = await sandbox.admin.addKey({ label: 'npm run drill' });
  const clerk = createClerkClient({ secretKey, apiUrl: sandbox.url });
  const ids = new Set<string>();
  for (let offset = 0; ; offset += 500) {
    const page = await clerk.users.getUserList({ limit: 500, offset, orderBy: '+created_at' });
    for (const u of page.data) ids.add(u.id);
    if (page.data.length < 500) break;
  }
  return ids;
}

async function waitUntil(what: string, ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new DrillStopped(`${what}: not within ${timeoutMs / 1000}s`);
    await sleep(200);
  }
}

/** Plays the reconciliation's approver when the child asks (a first run over many users), until the step is recorded. */
async function driveReconciliation(run: DrillRun): Promise<void> {
  const handle = run.handle;
  if (!handle) throw new DrillStopped('the incident was not started');
  const child = run.target.client.workflow.getHandle(`${handle.workflowId}-${STEP}`);
  const deadline = Date.now() + 240_000;
  for (;;) {
    const s = await run.state().catch(() => undefined);
    if (!s) {
      // A worker or server restarting: ask again.
      await sleep(500);
      continue;
    }
    if (s.steps.some((x) => x.step === STEP) || !['triage', 'mitigating'].includes(s.status)) return;
    if (s.manualSteps.some((m) => m.step === STEP)) throw new DrillStopped(`${STEP} was handed to a person: the worker has no user store configured (USER_STORE_URL)`);
    const progress = await child.query(getReconcileProgress).catch(() => undefined);
    if (progress?.stage === 'approval') {
      // One update id: sent again after a failed call, it is applied once.
      await child.executeUpdate(decideReconcile, { args: [{ decision: 'approve', approver: 'bob@example.com', reason: 'game-day drill' }], updateId: `${child.workflowId}-approve-bob` }).catch((err: unknown) => run.say(`reconciliation approval not answered (${String(err)}): asking again`));
      run.say(`bob@example.com approved the reconciliation (plan: more events than its approval threshold)`);
    }
    if (Date.now() > deadline) throw new DrillStopped(`${STEP}: not done within 4m (status ${s.status}; waiting for: ${s.waitingFor})`);
    await sleep(500);
  }
}

export function webhookBacklogScenario(sampleInput: () => Parameters<DrillRun['start']>[0]): DrillScenario {
  let restore: { url: string | null; drop: boolean; dropRate: number } | undefined;
  let store: UserStore | undefined;
  return {
    async play(run) {
      const url = run.target.userStoreUrl;
      if (!url) throw new DrillStopped('no user store to check (USER_STORE_URL, or npm start’s sandbox store)');
      store = reconcileDepsFromEnv(loadEnv(), { storeUrl: url })?.store;
      if (!store) throw new DrillStopped(`cannot open the user store ${url}`);
      const s = store;
      const config = await run.sandbox.webhookConfig();
      if (!config.url) throw new DrillStopped('the sandbox delivers webhooks nowhere (no receiver configured): nothing can drift');
      restore = { url: config.url, drop: config.drop, dropRate: config.dropRate };
      // Two users the app knows (delivered), so that deleting them is a drift too.
      await run.sandbox.admin.setWebhooks({ drop: false, dropRate: 0 });
      const known = (await run.sandbox.admin.createUsers(2)).users.map((u) => u.id);
      await waitUntil('the receiver stored two new users', async () => (await s.getMany(known)).size === known.length);
      // The fault: every delivery dropped while users sign up and are deleted.
      await run.sandbox.admin.setWebhooks({ drop: true });
      const created = (await run.sandbox.admin.createUsers(5)).users.map((u) => u.id);
      for (const id of known) await run.sandbox.admin.deleteUser(id);
      const subjects = new Set([...created, ...known]);
      const dropped = (await run.sandbox.admin.webhookEvents({ status: 'dropped' })).events.filter((e) => subjects.has(e.subjectId));
      const storedBefore = await s.getMany([...subjects]);
      run.check(
        'webhooks dropped: the store drifted (sandbox delivery log, the store)',
        created.every((id) => dropped.some((e) => e.subjectId === id && e.type === 'user.created') && !storedBefore.has(id)) &&
          known.every((id) => dropped.some((e) => e.subjectId === id && e.type === 'user.deleted') && storedBefore.has(id)),
        `${dropped.length} event(s) dropped (${[...new Set(dropped.map((e) => e.type))].join(', ')}); before the incident the store lacked ${created.filter((id) => !storedBefore.has(id)).length} of ${created.length} sign-ups and still had ${known.filter((id) => storedBefore.has(id)).length} of ${known.length} deleted users`,
      );
      run.say(`injected: webhooks dropped for ${created.length} sign-ups and ${known.length} deletions`);
      await run.start(sampleInput());
      await driveReconciliation(run);
      return async (final) => {
        const clerk = await clerkUserIds(run.sandbox);
        const stored = new Set((await s.all()).map((u) => u.id));
        const missing = [...clerk].filter((id) => !stored.has(id));
        const extra = [...stored].filter((id) => !clerk.has(id));
        run.check(
          'store reconciled with Clerk (the app’s store vs the sandbox’s users)',
          missing.length === 0 && extra.length === 0 && created.every((id) => stored.has(id)) && known.every((id) => !stored.has(id)),
          `${clerk.size} user(s) in Clerk, ${stored.size} in the store; missing ${missing.length}${missing.length ? ` (${missing.slice(0, 3).join(', ')})` : ''}; deleted in Clerk but stored ${extra.length}${extra.length ? ` (${extra.slice(0, 3).join(', ')})` : ''}`,
        );
        const step = final.steps.filter((x) => x.step === STEP).at(-1);
        run.check('workflow reports the expected outcomes', step?.outcome === 'succeeded', `${STEP} ${step?.outcome ?? 'missing'}: ${step?.note ?? ''}`);
      };
    },
    async cleanup(sandbox) {
      if (restore) await sandbox.admin.setWebhooks({ url: restore.url, drop: restore.drop, dropRate: restore.dropRate });
      await store?.close();
      restore = undefined;
      store = undefined;
    },
  };
}
