/**
 * The on-call roster (src/roster/): every spelling of a person is one person, the README's alias
 * attack and self-approval are refused, rotations hand off on time (and across daylight saving),
 * every invalid roster is refused naming its line and path, the version hash ignores key order,
 * and a watched roster keeps its last good version when an edit breaks it.
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parse as parseYaml } from 'yaml';
import { readRoster, watchRoster } from '../src/roster/load';
import { parseRoster, RosterInvalid } from '../src/roster/parse';
import { checkDecision, signatureRequired, type PolicyContext, type RecordedDecision } from '../src/roster/policy';
import { expandRefs, normalizeName, resolvePerson } from '../src/roster/resolve';
import { onCallAt } from '../src/roster/rotation';
import { POLICY_ACTIONS, type Roster } from '../src/roster/schema';
import { keyDir } from './helpers/ssh-keys';

const SAMPLE_PATH = join(__dirname, '..', 'config', 'roster.sample.yaml');
const SAMPLE = readFileSync(SAMPLE_PATH, 'utf8');
const FILE = 'roster.yaml';
const sample = parseRoster({ file: FILE, text: SAMPLE });

const keys = keyDir();
const tmp = mkdtempSync(join(tmpdir(), 'roster-test-'));
afterAll(() => {
  keys.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** The sample with `find` replaced (which must occur), parsed. */
function variant(find: string | RegExp, replace: string, text = SAMPLE): string {
  const next = text.replace(find, replace);
  if (next === text) throw new Error(`the sample has no ${String(find)}`);
  return next;
}

/** 1-based line of the first line containing `needle` (after `after`, when given). */
function lineOf(text: string, needle: string, after = ''): number {
  const lines = text.split('\n');
  const from = after ? lines.findIndex((l) => l.includes(after)) : 0;
  const at = lines.findIndex((l, i) => i >= from && l.includes(needle));
  if (at < 0) throw new Error(`no line has ${needle}`);
  return at + 1;
}

function refusal(text: string, extra: Partial<Parameters<typeof parseRoster>[0]> = {}): RosterInvalid {
  try {
    parseRoster({ file: FILE, text, ...extra });
  } catch (err) {
    expect(err).toBeInstanceOf(RosterInvalid);
    return err as RosterInvalid;
  }
  throw new Error('the roster was accepted');
}

const critical = (step: PolicyContext['step'] = 'emergency_bypass'): PolicyContext => ({ category: 'clerk_outage', severity: 'critical', step, action: 'approve' });
const approved = (person: string, extra: Partial<RecordedDecision> = {}): RecordedDecision => ({ person, action: 'approve', ...extra });

describe('the sample roster (config/roster.sample.yaml)', () => {
  it('validates, from the file as the worker reads it, with nothing to warn about', async () => {
    const roster = await readRoster(SAMPLE_PATH);
    expect(roster.people.map((p) => p.id)).toEqual(['alice', 'bob', 'carol', 'dave']);
    expect(Object.keys(roster.rotations)).toEqual(['auth-oncall', 'security']);
    expect(roster.people.every((p) => p.keys.length === 1 && p.keys[0]?.fingerprint.startsWith('SHA256:'))).toBe(true);
    expect(roster.warnings).toEqual([]);
    expect(roster.version).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(roster.version).toBe(sample.version);
  });

  it("docs/roster.md's full example validates", () => {
    const doc = readFileSync(join(__dirname, '..', 'docs', 'roster.md'), 'utf8');
    const text = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1] as string;
    const roster = parseRoster({ file: 'docs/roster.md', text, allowedSigners: { file: 'allowed_signers', text: '' } });
    expect(roster.policy.rules.every((r) => r.signed)).toBe(true);
    expect(onCallAt(roster, 'auth-oncall', new Date('2026-12-25T12:00:00Z')).primary.id).toBe('dave');
  });

  it('lets the README incident through: alice reports, bob and carol approve', () => {
    const first = checkDecision(sample, critical(), 'alice@example.com', [], { person: 'bob@example.com' });
    expect(first).toMatchObject({ allowed: true, approvalsNeeded: 2, approvedBy: ['bob'], complete: false });
    const second = checkDecision(sample, critical(), 'alice@example.com', [approved('bob@example.com')], { person: 'carol@example.com' });
    expect(second).toMatchObject({ allowed: true, approvedBy: ['bob', 'carol'], complete: true, rule: { name: 'critical-approvals' } });
  });
});

describe('resolving a person', () => {
  const alices = [
    'alice',
    'ALICE',
    'Alice',
    'alice@example.com',
    'Alice@Example.COM',
    'alice+oncall@example.com',
    'ALICE+pager+x@EXAMPLE.com',
    'Alice Example',
    'alice example',
    '  Alice   Example  ',
    'Alice (on-call)',
    'Alice Example [IC] (primary)',
    'Alice Example <alice@example.com>',
    '"Alice Example" <alice+git@example.com>',
    '@alice',
    'alice@',
    '\uff41\uff4c\uff49\uff43\uff45', // fullwidth
    'al\u200bice', // zero-width space
    '\ufeffalice\u2060',
    'alice.e',
    'ALICE.E (on call)',
    "'alice'",
    'U0SANDBOXALICE',
    'u0sandboxalice',
  ];
  it.each(alices)('%j is alice', (spelling) => {
    const found = resolvePerson(sample, spelling);
    expect(found).toMatchObject({ ok: true, person: { id: 'alice' } });
  });

  it.each(['alice2@', 'alice3@', 'alice2@example.com', 'alicee', 'alice@evil.example', '\u0430lice' /* Cyrillic а */, 'al ice', 'Alice Exampl', 'alice@example.co', 'admin', '*'])('%j is nobody', (spelling) => {
    const found = resolvePerson(sample, spelling);
    expect(found).toMatchObject({ ok: false, error: { name: 'PersonUnknown', input: spelling } });
    if (!found.ok) expect(found.error.message).toContain('is not a person of the roster');
  });

  it('a display name two people share is ambiguous, and names both', () => {
    const text = variant('name: Dave Example', 'name: Bob Example');
    const roster = parseRoster({ file: FILE, text });
    expect(resolvePerson(roster, 'Bob Example')).toMatchObject({ ok: false, error: { name: 'PersonAmbiguous', candidates: ['bob', 'dave'] } });
    expect(resolvePerson(roster, 'bob (on-call)')).toMatchObject({ ok: true, person: { id: 'bob' } });
  });

  it('a rotation is not a person', () => {
    expect(resolvePerson(sample, '@auth-oncall')).toMatchObject({ ok: false, error: { name: 'RoleNotPerson', rotation: 'auth-oncall' } });
  });

  it('normalisation folds case beyond ASCII', () => {
    expect(normalizeName('STRAẞE')).toBe(normalizeName('strasse'));
    expect(normalizeName('Ｂｏｂ (IC)')).toBe('bob');
  });

  it('role references expand to the members, each person once', () => {
    const expanded = expandRefs(sample, ['@auth-oncall', 'Dave Example', 'bob+x@example.com', '@security']);
    expect(expanded.ok && expanded.people.map((p) => p.id)).toEqual(['alice', 'bob', 'carol', 'dave']);
  });

  it('the alias attack names each reference that is nobody, by its place', () => {
    const expanded = expandRefs(sample, ['alice@', 'alice2@', 'alice3@', '@oncall']);
    expect(expanded.ok).toBe(false);
    if (expanded.ok) return;
    expect(expanded.problems.map((p) => [p.index, p.ref])).toEqual([
      [1, 'alice2@'],
      [2, 'alice3@'],
      [3, '@oncall'],
    ]);
    expect(expanded.problems[2]?.message).toContain('neither a rotation (auth-oncall, security) nor a person');
  });
});

describe('deciding by the policy', () => {
  it('the alias attack: --reporter alice@ --approver alice2@ --approver alice3@ is refused at every approval', () => {
    for (const attacker of ['alice2@', 'alice3@', 'alice2@example.com', 'Alice2 (on-call)']) {
      const check = checkDecision(sample, critical(), 'alice@', [], { person: attacker });
      expect(check).toMatchObject({ allowed: false, code: 'unknown_person' });
    }
    // And with one alias approval somehow recorded, alice still cannot add hers.
    const own = checkDecision(sample, critical(), 'alice@', [approved('alice2@')], { person: 'alice@example.com' });
    expect(own).toMatchObject({ allowed: false, code: 'own_request' });
  });

  it.each(['alice@example.com', 'alice', 'ALICE', 'Alice Example', 'alice+x@example.com', 'Alice (on-call)', 'alice.e'])(
    '"Alice (on-call)" reported it: %j cannot approve her own critical step',
    (spelling) => {
      const check = checkDecision(sample, critical(), 'Alice (on-call)', [], { person: spelling });
      expect(check).toMatchObject({ allowed: false, code: 'own_request', person: { id: 'alice' } });
      if (!check.allowed) expect(check.reason).toMatch(/alice requested emergency_bypass and cannot approve their own request \(a critical step\) \(rule critical-approvals \(policy\.rules\[0\], roster\.yaml:\d+\)\)/);
    },
  );

  it('the requester may still reject her own request', () => {
    expect(checkDecision(sample, { ...critical(), action: 'reject' }, 'alice', [], { person: 'Alice (on-call)' })).toMatchObject({ allowed: true, complete: true });
  });

  it.each(['bob', 'Bob Example', 'bobby', 'BOB@example.com', 'bob+second@example.com', 'Bob (IC)', 'U0SANDBOXBOB'])(
    'bob approved; his second approval as %j counts once and is refused',
    (spelling) => {
      const check = checkDecision(sample, critical(), 'alice', [approved('bob@example.com')], { person: spelling });
      expect(check).toMatchObject({ allowed: false, code: 'already_decided' });
      if (!check.allowed) expect(check.reason).toContain('bob already approved emergency_bypass');
    },
  );

  it('someone in the roster but in no allowed rotation is refused, naming the rule and who it allows', () => {
    const text = variant('rotations:', '  - id: erin\n    name: Erin Example\n    email: erin@example.com\n\nrotations:');
    const roster = parseRoster({ file: FILE, text });
    const check = checkDecision(roster, critical(), 'alice', [], { person: 'erin' });
    expect(check).toMatchObject({ allowed: false, code: 'not_permitted', rule: { index: 0, name: 'critical-approvals' } });
    if (!check.allowed) expect(check.reason).toBe(`erin may not approve emergency_bypass (clerk_outage, critical): rule critical-approvals (policy.rules[0], roster.yaml:${lineOf(text, '- name: critical-approvals')}) allows @auth-oncall, @security`);
  });

  it('what no rule covers is refused', () => {
    const check = checkDecision(sample, { category: 'clerk_outage', severity: 'critical', step: 'emergency_bypass', action: 'cancel' }, 'alice', [], { person: 'bob' });
    expect(check).toMatchObject({ allowed: false, code: 'no_rule' });
  });

  it('the requester may resolve the incident (the rule names "requester"), an outsider may not', () => {
    const ctx: PolicyContext = { category: 'clerk_outage', severity: 'critical', step: 'incident', action: 'resolve' };
    const text = variant('rotations:', '  - id: erin\n    name: Erin Example\n    email: erin@example.com\n\nrotations:');
    const roster = parseRoster({ file: FILE, text });
    expect(checkDecision(roster, ctx, 'erin@example.com', [], { person: 'Erin Example' })).toMatchObject({ allowed: true });
    expect(checkDecision(roster, ctx, 'alice', [], { person: 'erin' })).toMatchObject({ allowed: false, code: 'not_permitted' });
  });

  it("an incident's own approvers narrow who decides", () => {
    const ctx = { ...critical(), approvers: ['bob@example.com', '@security'] };
    expect(checkDecision(sample, ctx, 'alice', [], { person: 'dave' })).toMatchObject({ allowed: true });
    expect(checkDecision(sample, { ...ctx, approvers: ['bob@example.com'] }, 'alice', [], { person: 'carol' })).toMatchObject({ allowed: false, code: 'not_listed' });
  });

  it('two decisions of one gate from the same client identity are flagged, naming both people', () => {
    const check = checkDecision(sample, critical(), 'alice', [approved('bob', { clientIdentity: 'cli-4242@laptop' })], { person: 'carol', clientIdentity: 'cli-4242@laptop' });
    expect(check).toMatchObject({ allowed: true, complete: true, flags: [{ kind: 'shared_client_identity', with: 'bob', clientIdentity: 'cli-4242@laptop' }] });
    const apart = checkDecision(sample, critical(), 'alice', [approved('bob', { clientIdentity: 'cli-1@a' })], { person: 'carol', clientIdentity: 'cli-2@b' });
    expect(apart.flags).toEqual([]);
  });

  it('a critical step needs two people even when a catch-all rule asks for one', () => {
    const text = variant(/ {4}- name: critical-approvals[\s\S]*?signed: false # production: true\n/, '    - name: anyone-once\n      who: ["*"]\n      approvals: 1\n');
    const roster = parseRoster({ file: FILE, text });
    expect(checkDecision(roster, critical('revoke_all_sessions'), 'alice', [], { person: 'bob' })).toMatchObject({ allowed: true, approvalsNeeded: 2, complete: false });
    expect(checkDecision(roster, { ...critical('operator_action'), severity: 'high' }, 'alice', [], { person: 'bob' })).toMatchObject({ allowed: true, approvalsNeeded: 1, complete: true });
  });

  describe('with signing', () => {
    const bob = keys.key('bob');
    const carol = keys.key('carol');
    const signedText = variant(/signed: false/g, 'signed: true', SAMPLE.replace(/ {6}- ssh-ed25519 .*\n/g, '').replace(/ {4}keys:\n/g, ''))
      .replace('    email: bob@example.com\n', `    email: bob@example.com\n    keys: ["${bob.publicLine} bob"]\n`)
      .replace('    email: carol@example.com\n', `    email: carol@example.com\n    keys: ["${carol.publicLine}"]\n`);
    const signed: Roster = parseRoster({ file: FILE, text: signedText });

    it('every state-changing action the policy covers needs a signature', () => {
      const cases: PolicyContext[] = [
        critical(),
        { ...critical(), action: 'reject' },
        { category: 'clerk_outage', severity: 'critical', step: 'bypass_off', action: 'reject' },
        { category: 'session_issues', severity: 'medium', step: 'targeted_revocation', action: 'request' },
        { category: 'clerk_outage', severity: 'critical', step: 'emergency_bypass', action: 'confirm' },
        { category: 'key_compromise', severity: 'critical', step: 'rotate_secret_key', action: 'provide_key' },
        { category: 'key_compromise', severity: 'critical', step: 'rotate_secret_key', action: 'confirm_deletion' },
        { category: 'clerk_outage', severity: 'critical', step: 'emergency_bypass', action: 'extend' },
        { category: 'clerk_outage', severity: 'critical', step: 'incident', action: 'resolve' },
        { category: 'clerk_outage', severity: 'critical', step: 'incident', action: 'cancel' },
      ];
      expect(new Set(cases.map((c) => c.action))).toEqual(new Set(POLICY_ACTIONS));
      for (const ctx of cases) {
        expect(signatureRequired(signed, ctx)).toBe(true);
        expect(checkDecision(signed, ctx, 'alice', [], { person: 'bob' })).toMatchObject({ allowed: false, code: 'signature_required' });
        expect(checkDecision(signed, ctx, 'alice', [], { person: 'bob', keyFingerprint: bob.fingerprint })).toMatchObject({ allowed: true, signatureRequired: true });
      }
    });

    it("a key that is not the person's is refused", () => {
      expect(checkDecision(signed, critical(), 'alice', [], { person: 'bob', keyFingerprint: carol.fingerprint })).toMatchObject({ allowed: false, code: 'key_not_theirs' });
    });

    it('two approvals need two different people and two different keys', () => {
      const first = approved('bob', { keyFingerprint: bob.fingerprint });
      expect(checkDecision(signed, critical(), 'alice', [first], { person: 'Bob Example', keyFingerprint: bob.fingerprint })).toMatchObject({ allowed: false, code: 'already_decided' });
      expect(checkDecision(signed, critical(), 'alice', [approved('bob', { keyFingerprint: carol.fingerprint })], { person: 'carol', keyFingerprint: carol.fingerprint })).toMatchObject({
        allowed: false,
        code: 'key_reused',
      });
      expect(checkDecision(signed, critical(), 'alice', [first], { person: 'carol', keyFingerprint: carol.fingerprint })).toMatchObject({ allowed: true, complete: true, approvedBy: ['bob', 'carol'] });
    });
  });
});

describe('rotations', () => {
  // auth-oncall: alice, bob, carol; handoff Monday 09:00 Europe/Berlin from 2026-11-30 (08:00Z in winter, 07:00Z in summer).
  const at = (iso: string) => onCallAt(sample, 'auth-oncall', new Date(iso));

  it('hands off on Monday at 09:00 Berlin time', () => {
    expect(at('2026-11-30T07:59:59Z')).toMatchObject({ primary: { id: 'carol' }, secondary: { id: 'alice' }, shift: { week: -1, until: '2026-11-30T08:00:00.000Z' } });
    expect(at('2026-11-30T08:00:00Z')).toMatchObject({ primary: { id: 'alice' }, secondary: { id: 'bob' }, shift: { week: 0, from: '2026-11-30T08:00:00.000Z', until: '2026-12-07T08:00:00.000Z' } });
    expect(at('2026-12-07T08:00:00Z')).toMatchObject({ primary: { id: 'bob' }, secondary: { id: 'carol' } });
    expect(at('2026-12-14T12:00:00Z')).toMatchObject({ primary: { id: 'carol' }, secondary: { id: 'alice' } });
    expect(at('2026-12-21T08:00:00Z')).toMatchObject({ primary: { id: 'alice' }, shift: { week: 3 } });
  });

  it('keeps 09:00 local across daylight saving (07:00Z in summer)', () => {
    expect(at('2027-04-05T06:59:00Z').primary.id).toBe('carol');
    expect(at('2027-04-05T07:00:00Z')).toMatchObject({ primary: { id: 'alice' }, shift: { from: '2027-04-05T07:00:00.000Z', until: '2027-04-12T07:00:00.000Z' } });
  });

  it('escalates to the security rotation, skipping whoever is already paged', () => {
    // security: carol, dave, handoff Wednesday 16:00 UTC from 2026-12-02.
    expect(at('2026-12-03T10:00:00Z')).toMatchObject({ primary: { id: 'alice' }, secondary: { id: 'bob' }, escalation: { id: 'carol' } });
    expect(at('2026-12-08T10:00:00Z')).toMatchObject({ primary: { id: 'bob' }, secondary: { id: 'carol' }, escalation: { id: 'dave' } });
    expect(onCallAt(sample, 'security', new Date('2026-12-03T10:00:00Z'))).toMatchObject({ primary: { id: 'carol' }, secondary: { id: 'dave' }, escalation: { id: 'dave' } });
  });

  it('an override replaces the primary from `from` until (not including) `until`', () => {
    const text = variant(
      '    overrides: []',
      '    overrides:\n      - { person: Dave Example, from: "2026-12-01T00:00:00Z", until: "2026-12-02T00:00:00+00:00", reason: alice at the dentist }\n      - { person: carol@example.com, from: "2026-12-01T12:00:00Z", until: "2026-12-01T13:00:00Z", as: secondary }',
    );
    const roster = parseRoster({ file: FILE, text });
    const at2 = (iso: string) => onCallAt(roster, 'auth-oncall', new Date(iso));
    expect(at2('2026-11-30T23:59:59Z')).toMatchObject({ primary: { id: 'alice' }, secondary: { id: 'bob' }, overrides: [] });
    expect(at2('2026-12-01T00:00:00Z')).toMatchObject({ primary: { id: 'dave' }, secondary: { id: 'alice' }, overrides: [{ person: 'dave' }] });
    expect(at2('2026-12-01T12:30:00Z')).toMatchObject({ primary: { id: 'dave' }, secondary: { id: 'carol' } });
    expect(at2('2026-12-02T00:00:00Z')).toMatchObject({ primary: { id: 'alice' }, secondary: { id: 'bob' } });
  });

  it('a rotation of one has no secondary', () => {
    const text = variant('members: [carol, dave]', 'members: [dave]');
    expect(onCallAt(parseRoster({ file: FILE, text }), 'security', new Date('2026-12-10T00:00:00Z'))).not.toHaveProperty('secondary');
  });
});

describe('an invalid roster is refused, naming the line and the path', () => {
  const bobKey = SAMPLE.split('\n').find((l) => l.includes('ssh-ed25519') && l.includes('bob@'))?.trim().replace(/^- /, '') as string;
  const rsa = keys.key('rsa-person', 'rsa');
  type Case = [title: string, text: string, line: number, path: string, message: string | RegExp];
  const cases: Case[] = [
    ['YAML that does not parse', variant('  - id: bob', '  - id: bob\n   name: [unclosed'), lineOf(SAMPLE, 'id: bob') + 1, '', /./],
    ['a key given twice', variant('    name: Bob Example', '    name: Bob Example\n    name: Robert'), lineOf(SAMPLE, 'name: Bob Example') + 1, '', /unique|duplicate/i],
    ['an unknown field', variant('    email: carol@example.com', '    emial: carol@example.com'), lineOf(SAMPLE, 'email: carol@'), 'people[2].emial', 'unknown field'],
    ['an email that is not one', variant('email: bob@example.com', 'email: bob-at-example'), lineOf(SAMPLE, 'email: bob@'), 'people[1].email', 'must be an email address'],
    ['a missing name', variant('    name: Dave Example\n', ''), lineOf(SAMPLE, 'id: dave'), 'people[3].name', /expected string|Required/i],
    ['a member who is nobody', variant('members: [alice, bob, carol]', 'members: [alice, alice2@, carol]'), lineOf(SAMPLE, 'members: [alice, bob'), 'rotations.auth-oncall.members[1]', '"alice2@" is not a person of the roster'],
    ['a time zone that does not exist', variant('timezone: Europe/Berlin', 'timezone: Europe/Atlantis'), lineOf(SAMPLE, 'Europe/Berlin'), 'rotations.auth-oncall.handoff.timezone', 'IANA time zone'],
    ['a handoff time out of range', variant('time: "16:00"', 'time: "24:30"'), lineOf(SAMPLE, 'time: "16:00"'), 'rotations.security.handoff.time', '24-hour'],
    [
      'an override that ends before it starts',
      variant('    overrides: []', '    overrides:\n      - person: bob\n        from: "2026-12-02T00:00:00Z"\n        until: "2026-12-01T00:00:00Z"'),
      lineOf(SAMPLE, 'overrides: []') + 3,
      'rotations.auth-oncall.overrides[0].until',
      'must be after from',
    ],
    ['an escalation to a rotation that does not exist', variant('escalation: "@security"', 'escalation: "@secops"'), lineOf(SAMPLE, 'escalation: "@security"'), 'rotations.auth-oncall.escalation', '@secops is not a rotation'],
    ['a rule allowing a rotation that does not exist', variant('      who: [requester, "@auth-oncall", "@security"]', '      who: [requester, "@auth-on-call"]'), lineOf(SAMPLE, 'who: [requester'), 'policy.rules[4].who[1]', '@auth-on-call is not a rotation'],
    ['a rule allowing a person who is nobody', variant('      who: [requester, "@auth-oncall", "@security"]', '      who: [requester, alice3@]'), lineOf(SAMPLE, 'who: [requester'), 'policy.rules[4].who[1]', '"alice3@" is not a person'],
    ['one approval for a critical step', variant('approvals: 2 #', 'approvals: 1 #'), lineOf(SAMPLE, 'approvals: 2'), 'policy.rules[0].approvals', 'emergency_bypass, rotate_secret_key, revoke_all_sessions are critical: two different people approve it'],
    ['the requester approving a critical step', variant('approvals: 2 #', 'requesterMayApprove: true #'), lineOf(SAMPLE, 'approvals: 2'), 'policy.rules[0].requesterMayApprove', 'the requester never approves it'],
    ['an action that does not exist', variant('actions: [resolve, cancel]', 'actions: [resolve, delete]'), lineOf(SAMPLE, 'actions: [resolve, cancel]'), 'policy.rules[4].actions[1]', /Invalid option/],
    ['a step that does not exist', variant('steps: [incident]', 'steps: [incidnet]'), lineOf(SAMPLE, 'steps: [incident]'), 'policy.rules[4].steps[0]', /Invalid option/],
    ['another format version', variant('version: 1', 'version: 2'), lineOf(SAMPLE, 'version: 1'), 'version', 'must be 1'],
    ['an alias that is another person\'s', variant('aliases: [bobby]', 'aliases: [bobby, Alice.E]'), lineOf(SAMPLE, 'aliases: [bobby]'), 'people[1].aliases[1]', `"Alice.E" is also alice's aliases[0] (roster.yaml:${lineOf(SAMPLE, 'id: alice')})`],
    ['an email that is another person\'s once +tags go', variant('email: dave@example.com', 'email: Alice+dave@Example.com'), lineOf(SAMPLE, 'email: dave@'), 'people[3].email', "is also alice's email"],
    ['a display name that is another person\'s alias', variant('aliases: [bobby]', 'aliases: [bobby, "carol example"]'), lineOf(SAMPLE, 'name: Carol Example'), 'people[2].name', `"Carol Example" is also bob's aliases[1] (roster.yaml:${lineOf(SAMPLE, 'id: bob')})`],
    ['an alias that is only decoration', variant('aliases: [bobby]', 'aliases: [bobby, "(on-call)"]'), lineOf(SAMPLE, 'aliases: [bobby]'), 'people[1].aliases[1]', 'is empty once normalised'],
    ['a chat id given to two people', variant('chatUserId: U0SANDBOXDAVE', 'chatUserId: u0sandboxcarol'), lineOf(SAMPLE, 'chatUserId: U0SANDBOXDAVE'), 'people[3].chatUserId', "is also carol's chatUserId"],
    ['a key that belongs to two people', variant(/(email: dave@example.com\n {4}keys:\n)/, `$1      - ${bobKey}\n`), lineOf(SAMPLE, 'keys:', 'id: dave') + 1, 'people[3].keys[0]', `is also bob's (roster.yaml:${lineOf(SAMPLE, 'bob@example.com (sample)')})`],
    ['an RSA key', variant(/(email: dave@example.com\n {4}keys:\n)/, `$1      - ${rsa.publicLine}\n`), lineOf(SAMPLE, 'keys:', 'id: dave') + 1, 'people[3].keys[0]', 'is a ssh-rsa key; only ssh-ed25519 keys can sign decisions'],
    ['a key that is not one', variant(/(email: dave@example.com\n {4}keys:\n)/, '$1      - ssh-ed25519 AAAAnotakey\n'), lineOf(SAMPLE, 'keys:', 'id: dave') + 1, 'people[3].keys[0]', 'not readable'],
    ['a person id with blanks', variant('id: carol', 'id: "carol x"'), lineOf(SAMPLE, 'id: carol'), 'people[2].id', 'lower-case letters'],
    ['a display name with a newline', variant('name: Carol Example', 'name: "Carol\\nroster: forged"'), lineOf(SAMPLE, 'name: Carol'), 'people[2].name', 'one line of plain text'],
    ['a paging key that is not one', variant('routingKey: R0SANDBOXBOB0000000000000000000B', 'routingKey: "short key"'), lineOf(SAMPLE, 'R0SANDBOXBOB'), 'people[1].paging.pagerduty.routingKey', 'PagerDuty integration key'],
  ];
  it.each(cases)('%s', (_title, text, line, path, message) => {
    const error = refusal(text);
    const issue = path ? error.issues.find((i) => i.path === path) : error.issues[0];
    expect(issue, `issues: ${error.message}`).toBeDefined();
    expect(issue).toMatchObject({ file: FILE, line });
    expect(issue?.message).toMatch(message);
    expect(error.message).toContain(`${FILE}:${line}${path ? ` ${path}` : ''}: `);
  });

  it('every problem is reported at once', () => {
    const text = variant('email: bob@example.com', 'email: nope').replace('timezone: Europe/Berlin', 'timezone: Mars/Olympus').replace('version: 1', 'version: 3');
    expect(refusal(text).issues.map((i) => i.path).sort()).toEqual(['people[1].email', 'rotations.auth-oncall.handoff.timezone', 'version']);
  });

  it('a JSON roster names lines too', () => {
    const json = JSON.stringify(parseYaml(SAMPLE), null, 2).replace('"carol@example.com"', '"carol-at-example"');
    const issue = refusal(json).issues[0];
    expect(issue).toMatchObject({ path: 'people[2].email', line: lineOf(json, '"carol-at-example"') });
  });

  it('a roster larger than any team needs is refused before parsing', () => {
    expect(refusal(`${SAMPLE}\n#${'x'.repeat(1_000_001)}`).message).toContain('a roster has at most');
  });

  it('an alias bomb is refused', () => {
    const bomb = `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`;
    expect(refusal(bomb).message).toMatch(/alias|resource/i);
  });
});

describe("git's allowed_signers as a key source", () => {
  const erinKey = keys.key('erin-git');
  const carolKey = keys.key('carol-git');
  const sharedKey = keys.key('shared');
  const withSigners = variant('version: 1', 'version: 1\nallowedSigners: allowed_signers');
  const signersFile = 'allowed_signers';

  it('adds keys to the people its principals name, in any spelling, and warns about the rest', () => {
    const text = [
      '# team keys',
      `Carol+git@Example.com ${carolKey.publicLine} carol laptop`,
      `erin@elsewhere.example ${erinKey.publicLine}`,
      `*@example.com ${sharedKey.publicLine}`,
      `dave@example.com namespaces="git" ${keys.key('dave-git').publicLine}`,
    ].join('\n');
    const roster = parseRoster({ file: FILE, text: withSigners, allowedSigners: { file: signersFile, text } });
    const carol = roster.people.find((p) => p.id === 'carol');
    expect(carol?.keys.map((k) => k.fingerprint)).toContain(carolKey.fingerprint);
    expect(roster.where[`key:${carolKey.fingerprint}`]).toBe('allowed_signers:2');
    expect(roster.people.flatMap((p) => p.keys.map((k) => k.fingerprint))).not.toContain(sharedKey.fingerprint);
    expect(roster.warnings).toEqual([
      `allowed_signers:3: erin@elsewhere.example is nobody in the roster: key not used`,
      `allowed_signers:4: the pattern *@example.com is not used (a roster key belongs to one person)`,
      expect.stringContaining('allowed_signers:5: the key'),
    ]);
  });

  it('refuses a line whose principals are two people, and a key the roster gives someone else, naming both lines', () => {
    const both = refusal(withSigners, { allowedSigners: { file: signersFile, text: `\nalice@example.com,bob@example.com ${sharedKey.publicLine}` } });
    expect(both.issues).toEqual([{ file: signersFile, line: 2, path: '', message: 'alice@example.com,bob@example.com are alice and bob: one key belongs to one person' }]);
    const bobKey = SAMPLE.split('\n').find((l) => l.includes('bob@example.com (sample)'))?.trim().replace(/^- /, '') as string;
    const stolen = refusal(withSigners, { allowedSigners: { file: signersFile, text: `dave@example.com ${bobKey}` } });
    expect(stolen.message).toContain(`allowed_signers:1: the key`);
    expect(stolen.message).toContain(`is also bob's (roster.yaml:${lineOf(withSigners, 'bob@example.com (sample)')})`);
  });

  it('is read from beside the roster file by the loader', async () => {
    const dir = mkdtempSync(join(tmp, 'signers-'));
    writeFileSync(join(dir, 'roster.yaml'), withSigners);
    writeFileSync(join(dir, 'allowed_signers'), `carol@example.com ${carolKey.publicLine}\n`);
    const roster = await readRoster(join(dir, 'roster.yaml'));
    expect(roster.people.find((p) => p.id === 'carol')?.keys).toHaveLength(2);
    rmSync(join(dir, 'allowed_signers'));
    await expect(readRoster(join(dir, 'roster.yaml'))).rejects.toThrow(/allowed_signers file cannot be read \(ENOENT\)/);
  });
});

describe('the roster version', () => {
  /** Reorder every mapping's keys (reversed) and the people, keeping what the roster says. */
  const reorder = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(reorder);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reorder(v)]));
    return value;
  };

  it('does not change with key order, people order, comments, layout or JSON instead of YAML', () => {
    const data = parseYaml(SAMPLE) as { people: unknown[] };
    const reordered = reorder({ ...data, people: [...data.people].reverse() });
    const versions = [
      parseRoster({ file: 'a.yaml', text: stringify(reordered) }).version,
      parseRoster({ file: 'b.json', text: JSON.stringify(reordered) }).version,
      parseRoster({ file: 'c.json', text: JSON.stringify(data, null, '\t') }).version,
      parseRoster({ file: 'd.yaml', text: SAMPLE.replace(/ #.*$/gm, '').replace(/^#.*\n/gm, '') }).version,
    ];
    expect(new Set([sample.version, ...versions]).size).toBe(1);
  });

  it('does not change when a key moves from the roster to its allowed_signers file', () => {
    const bobLine = SAMPLE.split('\n').find((l) => l.includes('bob@example.com (sample)')) as string;
    const text = variant(`${bobLine}\n`, '', variant('version: 1', 'version: 1\nallowedSigners: allowed_signers')).replace('    aliases: [bobby]\n    keys:\n', '    aliases: [bobby]\n');
    const moved = parseRoster({ file: FILE, text, allowedSigners: { file: 'allowed_signers', text: `bob@example.com ${bobLine.trim().replace(/^- /, '')}\n` } });
    expect(moved.where).toMatchObject({ [`key:${moved.people[1]?.keys[0]?.fingerprint}`]: 'allowed_signers:1' });
    expect(moved.version).toBe(sample.version);
  });

  it('changes when what decides changes', () => {
    const changed = [
      variant('members: [alice, bob, carol]', 'members: [bob, alice, carol]'),
      variant('approvals: 2 #', 'approvals: 3 #'),
      variant('aliases: [bobby]', 'aliases: [bobby, rob]'),
      variant('time: "09:00"', 'time: "09:30"'),
    ].map((text) => parseRoster({ file: FILE, text }).version);
    expect(new Set([sample.version, ...changed]).size).toBe(changed.length + 1);
  });
});

describe('the watched roster file', () => {
  const waitFor = async (what: string, done: () => boolean, ms = 10_000) => {
    const until = Date.now() + ms;
    while (!done()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('an invalid first version is refused', async () => {
    const file = join(tmp, 'first.yaml');
    writeFileSync(file, variant('version: 1', 'version: 9'));
    await expect(watchRoster(file, { pollMs: 0 })).rejects.toThrow(RosterInvalid);
  });

  it('keeps the last good version when a new one is invalid, reporting the line, and takes the next good one', async () => {
    const file = join(tmp, 'roster.yaml');
    writeFileSync(file, SAMPLE);
    const errors: RosterInvalid[] = [];
    const changes: string[] = [];
    const watcher = await watchRoster(file, { debounceMs: 10, pollMs: 0, onError: (e) => errors.push(e), onChange: (r) => changes.push(r.version) });
    try {
      expect(watcher.current().version).toBe(sample.version);
      writeFileSync(file, variant('email: bob@example.com', 'email: bob-at-example'));
      await watcher.reload();
      expect(watcher.current().version).toBe(sample.version);
      expect(watcher.lastError()?.message).toContain(`${file}:${lineOf(SAMPLE, 'email: bob@')} people[1].email: must be an email address`);
      expect(errors).toHaveLength(1);
      expect(changes).toEqual([]);

      const next = variant('members: [carol, dave]', 'members: [dave, carol]');
      writeFileSync(file, next);
      const after = await watcher.reload();
      expect(after.version).toBe(parseRoster({ file: FILE, text: next }).version);
      expect(watcher.lastError()).toBeUndefined();
      expect(changes).toEqual([after.version]);
    } finally {
      watcher.close();
    }
  });

  it('notices an edit on disk by itself, including an editor renaming a new file over the old one', async () => {
    const dir = mkdtempSync(join(tmp, 'watch-'));
    const file = join(dir, 'roster.yaml');
    writeFileSync(file, SAMPLE);
    const changes: string[] = [];
    const errors: string[] = [];
    const watcher = await watchRoster(file, { debounceMs: 30, pollMs: 200, onChange: (r) => changes.push(r.version), onError: (e) => errors.push(e.message) });
    try {
      writeFileSync(file, variant('aliases: [bobby]', 'aliases: [bobby, rob]'));
      await waitFor('the first change', () => changes.length === 1);
      writeFileSync(join(dir, '.roster.yaml.swp'), 'version: [');
      writeFileSync(join(dir, 'roster.yaml.tmp'), 'version: [');
      renameSync(join(dir, 'roster.yaml.tmp'), file);
      await waitFor('the broken edit', () => errors.length >= 1);
      expect(watcher.current().version).toBe(changes[0]);
      writeFileSync(join(dir, 'roster.yaml.tmp'), SAMPLE);
      renameSync(join(dir, 'roster.yaml.tmp'), file);
      await waitFor('the second change', () => changes.length === 2);
      expect(watcher.current().version).toBe(sample.version);
    } finally {
      watcher.close();
    }
  });
});
