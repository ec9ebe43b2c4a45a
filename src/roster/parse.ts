/**
 * Roster text (YAML, or JSON, which is YAML too) → a validated `Roster`, or `RosterInvalid` with
 * every problem at once, each naming its file, line and path. Also the roster's version: a
 * sha256 of its canonical JSON, so reordering keys or adding comments does not change it.
 * Pure (no Node APIs): load.ts reads the files.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { CRITICAL_STEPS } from '../domain';
import { parseAllowedSigners, SIGNATURE_NAMESPACE } from '../signing/sshsig';
import { handlesOf, normalizeName, resolvePerson } from './resolve';
import {
  rosterFileSchema,
  type EscalationRef,
  type PolicyRule,
  type Rotation,
  type Roster,
  type RosterFile,
  type RosterKey,
  type RosterPerson,
  type WhoRef,
} from './schema';

/** Larger than any team's roster: refused before parsing. */
export const MAX_ROSTER_BYTES = 1_000_000;

export interface RosterIssue {
  file: string;
  /** 1-based; absent only when the file itself is the problem. */
  line?: number;
  /** Where in the document, e.g. `people[1].email` (empty for the document itself). */
  path: string;
  message: string;
}

const describe = (i: RosterIssue) => `${i.file}${i.line ? `:${i.line}` : ''}${i.path ? ` ${i.path}` : ''}: ${i.message}`;

/** A roster that cannot be used; `issues` lists every problem found, `message` has one per line. */
export class RosterInvalid extends Error {
  override readonly name = 'RosterInvalid';
  constructor(readonly issues: RosterIssue[]) {
    super(issues.length === 1 ? describe(issues[0] as RosterIssue) : `the roster has ${issues.length} problems:\n${issues.map(describe).join('\n')}`);
  }
}

export interface RosterText {
  /** The roster file's name, for messages (and `Roster.source`). */
  file: string;
  text: string;
  /** The allowed_signers file the roster's `allowedSigners` names, already read (load.ts does). */
  allowedSigners?: { file: string; text: string };
}

type Path = (string | number)[];

export const formatPath = (path: readonly PropertyKey[]): string =>
  path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');

/** Line of the deepest node of `path` the document has (a missing field: its parent's line). */
function lineOf(doc: Document, counter: LineCounter, path: Path): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (node && typeof node === 'object' && 'range' in node && Array.isArray(node.range)) return counter.linePos(node.range[0] as number).line;
  }
  return undefined;
}

/** Parse and check a roster; throws `RosterInvalid`. */
export function parseRoster(input: RosterText): Roster {
  const { file, text } = input;
  if (text.length > MAX_ROSTER_BYTES) throw new RosterInvalid([{ file, path: '', message: `is ${text.length} characters; a roster has at most ${MAX_ROSTER_BYTES}` }]);
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new RosterInvalid(doc.errors.map((e) => ({ file, line: counter.linePos(e.pos[0]).line, path: '', message: e.message.split('\n')[0] as string })));
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 50 });
  } catch (err) {
    throw new RosterInvalid([{ file, path: '', message: err instanceof Error ? err.message : String(err) }]);
  }
  const at = (path: Path, message: string): RosterIssue => ({ file, line: lineOf(doc, counter, path), path: formatPath(path), message });
  const parsed = rosterFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new RosterInvalid(
      parsed.error.issues.flatMap((issue) => {
        const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
        if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => at([...path, k], 'unknown field'));
        return [at(path, issue.message)];
      }),
    );
  }
  return new RosterBuilder(parsed.data, input, at).build();
}

/** The checks zod cannot make (references, uniqueness, keys), collecting every problem. */
class RosterBuilder {
  private readonly issues: RosterIssue[] = [];
  private readonly where: Record<string, string> = {};
  private readonly warnings: string[] = [];
  private people: RosterPerson[] = [];

  constructor(
    private readonly file: RosterFile,
    private readonly input: RosterText,
    private readonly at: (path: Path, message: string) => RosterIssue,
  ) {}

  private problem(path: Path, message: string): void {
    this.issues.push(this.at(path, message));
  }

  private place(path: Path): string {
    const issue = this.at(path, '');
    return `${issue.file}${issue.line ? `:${issue.line}` : ''}`;
  }

  build(): Roster {
    this.people = this.buildPeople();
    this.checkHandles();
    this.addKeys();
    const rotations = this.buildRotations();
    const rules = this.file.policy.rules.map((rule, i) => this.buildRule(rule, i, rotations));
    if (this.issues.length) throw new RosterInvalid(this.issues);
    const byFingerprint = (a: RosterKey, b: RosterKey) => (a.fingerprint < b.fingerprint ? -1 : 1);
    // Sorted, so where a key or a person is written (file order, inline or allowed_signers) does not change the version.
    const people = [...this.people].sort((a, b) => (a.id < b.id ? -1 : 1)).map((p) => ({ ...p, keys: [...p.keys].sort(byFingerprint) }));
    const content = { people, rotations, policy: { rules } };
    const source = this.input.allowedSigners ? `${this.input.file} + ${this.input.allowedSigners.file}` : this.input.file;
    return { version: rosterVersion(content), ...content, source, where: this.where, warnings: this.warnings };
  }

  private buildPeople(): RosterPerson[] {
    return this.file.people.map((p, i) => {
      this.where[`person:${p.id}`] = this.place(['people', i]);
      return {
        id: p.id,
        name: p.name,
        email: p.email,
        aliases: p.aliases,
        keys: [],
        ...(p.chatUserId ? { chatUserId: p.chatUserId } : {}),
        ...(p.paging ? { paging: p.paging } : {}),
      };
    });
  }

  /** No two people share an id, email, alias or chat id after normalisation (display names may repeat). */
  private checkHandles(): void {
    const seen = new Map<string, { person: number; field: string; isName: boolean }>();
    this.people.forEach((person, i) => {
      const own = new Set<string>();
      for (const { field, value } of handlesOf(person)) {
        const key = normalizeName(value);
        const path = ['people', i, ...field.replace(/\[(\d+)\]/, '.$1').split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s))];
        if (!key) {
          this.problem(path, 'is empty once normalised (only decorations or invisible characters)');
          continue;
        }
        if (own.has(key)) continue;
        own.add(key);
        const isName = field === 'name';
        const other = seen.get(key);
        if (other && !(isName && other.isName)) {
          const them = this.people[other.person] as RosterPerson;
          this.problem(path, `"${value}" is also ${them.id}'s ${other.field} (${this.place(['people', other.person])}); every id, email, alias and chat id names one person`);
        } else if (!other || !isName) {
          seen.set(key, { person: i, field, isName });
        }
      }
    });
  }

  /** Inline keys and the allowed_signers file's, each key belonging to one person. */
  private addKeys(): void {
    const owners = new Map<string, { person: string; place: string }>();
    const add = (person: RosterPerson, key: RosterKey, place: string, onProblem: (message: string) => void) => {
      const owner = owners.get(key.fingerprint);
      if (owner && owner.person !== person.id) return onProblem(`the key ${key.fingerprint} is also ${owner.person}'s (${owner.place}); one key belongs to one person`);
      if (owner) return;
      owners.set(key.fingerprint, { person: person.id, place });
      this.where[`key:${key.fingerprint}`] = place;
      person.keys.push(key);
    };
    this.file.people.forEach((p, i) => {
      const person = this.people[i] as RosterPerson;
      p.keys.forEach((text, k) => {
        const path = ['people', i, 'keys', k];
        const { signers, problems } = parseAllowedSigners(`${p.id} ${text}`);
        const signer = signers[0];
        if (signer && signer.keyType !== 'ssh-ed25519') return this.problem(path, `is a ${signer.keyType} key; only ssh-ed25519 keys can sign decisions`);
        if (!signer || problems.length) return this.problem(path, problems[0]?.replace(/^line 1: /, '') ?? 'expected "ssh-ed25519 <base64 key> [comment]"');
        add(person, { keyType: signer.keyType, publicKey: signer.publicKey, fingerprint: signer.fingerprint }, this.place(path), (m) => this.problem(path, m));
      });
    });
    const signersFile = this.input.allowedSigners;
    if (!signersFile) {
      if (this.file.allowedSigners) this.problem(['allowedSigners'], `names ${this.file.allowedSigners}, which was not read`);
      return;
    }
    const lookup = this.lookupRoster();
    const { signers, problems } = parseAllowedSigners(signersFile.text);
    for (const problem of problems) this.warnings.push(`${signersFile.file} ${problem}`);
    for (const signer of signers) {
      const place = `${signersFile.file}:${signer.line}`;
      const issue = (message: string) => this.issues.push({ file: signersFile.file, line: signer.line, path: '', message });
      if (signer.keyType !== 'ssh-ed25519') continue;
      if (signer.namespaces && !signer.namespaces.includes(SIGNATURE_NAMESPACE)) {
        this.warnings.push(`${place}: the key ${signer.fingerprint} is limited to namespaces ${signer.namespaces.join(',')}, not ${SIGNATURE_NAMESPACE}: not used`);
        continue;
      }
      const ids = new Set<string>();
      const names = signer.principals.filter((principal) => {
        if (!/[*?]/.test(principal)) return true;
        this.warnings.push(`${place}: the pattern ${principal} is not used (a roster key belongs to one person)`);
        return false;
      });
      for (const principal of names) {
        const found = resolvePerson(lookup, principal);
        if (found.ok) ids.add(found.person.id);
      }
      if (ids.size > 1) {
        issue(`${signer.principals.join(',')} are ${[...ids].join(' and ')}: one key belongs to one person`);
        continue;
      }
      const id = [...ids][0];
      if (!id) {
        if (names.length) this.warnings.push(`${place}: ${names.join(',')} is nobody in the roster: key not used`);
        continue;
      }
      add(this.people.find((p) => p.id === id) as RosterPerson, { keyType: signer.keyType, publicKey: signer.publicKey, fingerprint: signer.fingerprint }, place, issue);
    }
  }

  /** A provisional roster of the people alone, to resolve references with. */
  private lookupRoster(): Roster {
    return { version: 'sha256:unversioned', people: this.people, rotations: {}, policy: { rules: [] }, source: this.input.file, where: {}, warnings: [] };
  }

  private person(path: Path, ref: string): string | undefined {
    const found = resolvePerson(this.lookupRoster(), ref);
    if (found.ok) return found.person.id;
    this.problem(path, found.error.message);
    return undefined;
  }

  private buildRotations(): Record<string, Rotation> {
    const rotations: Record<string, Rotation> = {};
    for (const [id, r] of Object.entries(this.file.rotations)) {
      this.where[`rotation:${id}`] = this.place(['rotations', id]);
      const members: string[] = [];
      r.members.forEach((ref, i) => {
        const path = ['rotations', id, 'members', i];
        if (ref.startsWith('@')) return this.problem(path, 'members are people: list them one by one');
        const person = this.person(path, ref);
        if (!person) return;
        if (members.includes(person)) return this.problem(path, `${person} is already a member`);
        members.push(person);
      });
      const overrides = r.overrides.flatMap((o, i) => {
        const path = ['rotations', id, 'overrides', i];
        if (Date.parse(o.until) <= Date.parse(o.from)) this.problem([...path, 'until'], `must be after from (${o.from})`);
        const person = this.person([...path, 'person'], o.person);
        return person ? [{ person, from: new Date(o.from).toISOString(), until: new Date(o.until).toISOString(), as: o.as, ...(o.reason ? { reason: o.reason } : {}) }] : [];
      });
      rotations[id] = {
        id,
        name: r.name ?? id,
        members,
        handoff: r.handoff,
        start: r.start,
        overrides,
        ...(r.paging ? { paging: r.paging } : {}),
      };
    }
    for (const [id, r] of Object.entries(this.file.rotations)) {
      if (!r.escalation) continue;
      const path = ['rotations', id, 'escalation'];
      const role = /^@(\S+)$/.exec(r.escalation)?.[1];
      let escalation: EscalationRef | undefined;
      if (role !== undefined) {
        if (!rotations[role]) this.problem(path, `@${role} is not a rotation (${Object.keys(rotations).join(', ')})`);
        else if (role === id) this.problem(path, 'a rotation cannot escalate to itself');
        else escalation = { rotation: role };
      } else {
        const person = this.person(path, r.escalation);
        if (person) escalation = { person };
      }
      if (escalation) (rotations[id] as Rotation).escalation = escalation;
    }
    return rotations;
  }

  private buildRule(rule: RosterFile['policy']['rules'][number], index: number, rotations: Record<string, Rotation>): PolicyRule {
    const path = ['policy', 'rules', index];
    this.where[`rule:${index}`] = this.place(path);
    const who = rule.who.flatMap((ref, i): WhoRef[] => {
      if (ref === '*') return [{ anyone: true }];
      if (ref === 'requester') return [{ requester: true }];
      const role = /^@(\S+)$/.exec(ref)?.[1];
      if (role !== undefined) {
        if (rotations[role]) return [{ rotation: role }];
        this.problem([...path, 'who', i], `@${role} is not a rotation (${Object.keys(rotations).join(', ') || 'none defined'})`);
        return [];
      }
      const person = this.person([...path, 'who', i], ref);
      return person ? [{ person }] : [];
    });
    // A rule that names a critical step explicitly cannot loosen the two-person rule.
    const approves = !rule.actions || rule.actions.includes('approve');
    const critical = (rule.steps ?? []).filter((s) => (CRITICAL_STEPS as readonly string[]).includes(s));
    if (approves && critical.length && rule.approvals !== undefined && rule.approvals < 2) this.problem([...path, 'approvals'], `${critical.join(', ')} ${critical.length > 1 ? 'are' : 'is'} critical: two different people approve it`);
    if (approves && critical.length && rule.requesterMayApprove) this.problem([...path, 'requesterMayApprove'], `${critical.join(', ')} ${critical.length > 1 ? 'are' : 'is'} critical: the requester never approves it`);
    return {
      index,
      ...(rule.name ? { name: rule.name } : {}),
      ...(rule.actions ? { actions: rule.actions } : {}),
      ...(rule.steps ? { steps: rule.steps } : {}),
      ...(rule.categories ? { categories: rule.categories } : {}),
      ...(rule.severities ? { severities: rule.severities } : {}),
      who,
      ...(rule.approvals !== undefined ? { approvals: rule.approvals } : {}),
      requesterMayApprove: rule.requesterMayApprove,
      signed: rule.signed,
    };
  }
}

// -- the version -------------------------------------------------------------------------------------

/** JSON with object keys sorted at every level and undefined fields dropped: the same data, the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** `sha256:<hex>` of what decides (people, rotations, policy): not of where it came from or its comments. */
export function rosterVersion(content: Pick<Roster, 'people' | 'rotations' | 'policy'>): string {
  const canonical = canonicalJson({ people: content.people, rotations: content.rotations, policy: content.policy });
  return `sha256:${bytesToHex(sha256(new TextEncoder().encode(canonical)))}`;
}
