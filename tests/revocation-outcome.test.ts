/** The outcome rule of a revocation (`revocationOutcome`), case by case: pure, no server. */
import { describe, expect, it } from 'vitest';
import { emptyTotals, revocationOutcome, type RevocationTotals } from '../src/revoke-sessions';

const totals = (over: Partial<RevocationTotals>): RevocationTotals => ({ ...emptyTotals(), ...over });

describe('revocationOutcome', () => {
  it.each([
    ['every session revoked', { usersScanned: 10, usersChecked: 10, sessionsFound: 12, sessionsRevoked: 12 }, 'succeeded'],
    ['nothing in scope (every user idle or excluded)', { usersSkippedByFilter: 50, usersScanned: 2, usersExcluded: 2 }, 'succeeded'],
    ['a clean dry run (nothing revoked, by design)', { usersScanned: 10, usersChecked: 10, sessionsFound: 12 }, 'succeeded'],
    ['a user not found, the others done', { usersScanned: 3, usersChecked: 3, usersNotFound: 1, sessionsRevoked: 4 }, 'partial'],
    ['a user not found, another checked with no session', { usersScanned: 1, usersChecked: 1, usersNotFound: 1 }, 'partial'],
    ['a dry run that met an unknown id', { usersScanned: 2, usersChecked: 2, usersNotFound: 1, sessionsFound: 3 }, 'partial'],
    ['one session refused, another of the same user revoked', { usersScanned: 1, sessionsFound: 2, sessionsRevoked: 1, failures: 1 }, 'partial'],
    ['the only user does not exist', { usersNotFound: 1 }, 'failed'],
    ['every listed user unknown or excluded', { usersNotFound: 2, usersExcluded: 1 }, 'failed'],
    ['every session refused', { usersScanned: 2, sessionsFound: 3, failures: 3 }, 'failed'],
  ] as const)('%s → %s', (_case, over, outcome) => {
    expect(revocationOutcome(totals(over))).toBe(outcome);
  });
});
