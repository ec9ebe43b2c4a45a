import { createClerkClient } from '@clerk/backend';
import { describe, expect, it } from 'vitest';
import { SandboxAdminHttpError, spawnSandbox } from '../src/admin-client';
import { clerkError } from './helpers';

describe('npm run sandbox (child process)', () => {
  it('prints its ready line, serves the SDK, is driven by the admin client, and exits cleanly on SIGTERM', async () => {
    const sandbox = await spawnSandbox(['--users', '250', '--seed', 'cli', '--rate-limit', 'off', '--error-rate', '503=0']);
    try {
      expect(sandbox.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(sandbox.secretKey).toMatch(/^sk_test_/);
      expect(sandbox.webhookSigningSecret).toMatch(/^whsec_/);
      const clerk = createClerkClient({ secretKey: sandbox.secretKey, apiUrl: sandbox.url });
      expect((await clerk.users.getUserList({ limit: 5 })).totalCount).toBe(250);

      const { secretKey, id } = await sandbox.admin.addKey();
      const newClerk = createClerkClient({ secretKey, apiUrl: sandbox.url });
      const { keys } = await sandbox.admin.listKeys();
      await sandbox.admin.deleteKey(keys[0]!.id);
      expect((await clerkError(clerk.users.getCount())).errors[0]?.code).toBe('clerk_key_invalid');
      expect(await newClerk.users.getCount()).toBe(250);
      const summary = await sandbox.admin.auditSummary();
      expect(summary.byKey[id]?.count).toBe(1);
      expect(summary.requestsWithDeletedKey).toBe(1);

      await sandbox.admin.setFaults({ errorRates: { '500': 1 } });
      expect((await clerkError(newClerk.users.getCount())).status).toBe(500);
      await sandbox.admin.clearFaults();
      await expect(sandbox.admin.setFaults({ hangRate: 3 })).rejects.toMatchObject({ status: 400, body: { field: 'hangRate' } });
      await expect(sandbox.admin.deleteKey('key_missing')).rejects.toBeInstanceOf(SandboxAdminHttpError);
      const stats = await sandbox.admin.stats();
      expect(stats.users).toBe(250);
    } finally {
      await sandbox.close();
    }
    expect(sandbox.process.exitCode).toBe(0);
  });

  it('exits with code 2 naming the option when given bad input', async () => {
    await expect(spawnSandbox(['--faults', '{"hangRate":7}'])).rejects.toThrow(/code 2.*hangRate/s);
  });
});
