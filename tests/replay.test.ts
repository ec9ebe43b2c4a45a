/**
 * Recorded histories (tests/histories/, made by `npm run histories:record`) replayed against the
 * current workflow code: a change that would break incidents already running fails here. The
 * same histories are scanned for secrets.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { findSecrets } from './helpers/history-scan';
import { quietRuntime } from './helpers/temporal';

const DIR = join(__dirname, 'histories');
const files = readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
const load = (file: string) => historyFromJSON(JSON.parse(readFileSync(join(DIR, file), 'utf8')));

function workflowType(file: string): string | undefined {
  const started = load(file).events?.[0]?.workflowExecutionStartedEventAttributes;
  return started?.workflowType?.name ?? undefined;
}

describe('recorded histories', () => {
  it('cover every workflow type and every incident category', () => {
    const types = new Set(files.map(workflowType));
    expect(types).toEqual(new Set(['incidentWorkflow', 'revokeSessionsWorkflow', 'reconcileUsersWorkflow']));
    const text = files.map((f) => readFileSync(join(DIR, f), 'utf8')).join('\n');
    for (const category of ['clerk_outage', 'key_compromise', 'middleware_failure', 'session_issues', 'webhook_backlog']) {
      expect(files.some((f) => f.includes(category.replace('_', '-'))), category).toBe(true);
    }
    expect(text.length).toBeGreaterThan(0);
  });

  it.each(files)('%s replays deterministically against the current workflow code', async (file) => {
    quietRuntime();
    await Worker.runReplayHistory(
      { workflowBundle: { codePath: inject('workflowBundlePath') }, replayName: file },
      load(file),
      file.replace(/\.json$/, ''), // recorded under its workflow id, which child ids derive from

    );
  });

  it.each(files)('%s carries no secret', (file) => {
    expect(findSecrets(load(file))).toEqual([]);
  });
});

describe('the history secret scan', () => {
  it('finds a key inside an encoded payload, and a known secret of any shape', async () => {
    const { defaultPayloadConverter } = await import('@temporalio/common');
    // Assembled at run time so the repository itself holds no string shaped like a live key.
    const liveKey = ['sk', 'live', 'abcdefghij0123456789'].join('_');
    const payload = defaultPayloadConverter.toPayload({ note: `rotated to ${liveKey}` });
    const history = { events: [{ workflowExecutionStartedEventAttributes: { input: { payloads: [payload] } } }] };
    expect(findSecrets(history)).toEqual([liveKey]);
    const asJson = JSON.parse(JSON.stringify({ data: Buffer.from(payload.data ?? []).toString('base64'), metadata: {} }));
    expect(findSecrets(asJson, ['abcdefghij0123456789'])).toContain('abcdefghij0123456789');
    expect(findSecrets({ events: [] })).toEqual([]);
  });
});
