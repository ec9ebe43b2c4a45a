/** `npm run reconcile`'s flags: validated with the workflow's own schema, errors naming the flag typed. */
import { describe, expect, it } from 'vitest';
import { CliArgumentError, cliExitCode } from '../src/cli/common';
import { buildProgram, inputFromFlags } from '../src/cli/reconcile';

describe('npm run reconcile -- start', () => {
  it('builds the workflow input from the flags', () => {
    expect(inputFromFlags({ requester: 'alice', reason: 'dropped', dryRun: true, createdFrom: '2026-11-27T09:00:00Z', approvalAbove: 'never' })).toEqual({
      scope: { type: 'createdBetween', from: '2026-11-27T09:00:00Z' },
      requestedBy: 'alice',
      reason: 'dropped',
      dryRun: true,
      approvalAbove: null,
    });
    expect(inputFromFlags({ requester: 'alice', reason: 'dropped', activeFrom: '2026-11-27T09:00:00Z', activeTo: '2026-11-27T10:00:00Z', approvalAbove: '50' })).toMatchObject({
      scope: { type: 'activeBetween', to: '2026-11-27T10:00:00Z' },
      approvalAbove: 50,
    });
  });

  it.each([
    [{ createdFrom: 'yesterday' }, /--created-from\/--active-from: must be an ISO 8601 time/],
    [{ approvalAbove: '-3' }, /--approval-above/],
    [{ createdFrom: '2026-11-27T09:00:00Z', activeFrom: '2026-11-27T09:00:00Z' }, /choose one window/],
    [{ activeTo: '2026-11-27T09:00:00Z' }, /only with its --…-from/],
  ])('refuses %j naming the flag', (flags, message) => {
    expect(() => inputFromFlags({ requester: 'alice', reason: 'x', ...flags })).toThrow(CliArgumentError);
    expect(() => inputFromFlags({ requester: 'alice', reason: 'x', ...flags })).toThrow(message);
  });

  it('exits 2 on a missing required flag, before reaching Temporal', async () => {
    const code = await cliExitCode(async () => {
      await buildProgram().configureOutput({ writeErr: () => undefined }).parseAsync(['node', 'reconcile', 'start', '--reason', 'x']);
    });
    expect(code).toBe(2);
  });
});
