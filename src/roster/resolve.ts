/**
 * Who someone is: any spelling of a person (email, alias, id, display name, case, Unicode,
 * `+tags`, "Alice (on-call)") resolved to exactly one roster person, and `@rotation` references
 * expanded to its members. Every rule is checked on the person this returns, never on a spelling.
 */
import type { Roster, RosterPerson } from './schema';

const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;
/** A trailing "(on-call)", "[IC]" or "{primary}": decoration around a display name. */
const DECORATION = /\s*[([{][^()[\]{}]*[)\]}]\s*$/u;
const NAME_AND_EMAIL = /^[^<>]*<([^<>\s]+@[^<>\s]+)>$/u;

/**
 * The form every spelling is compared in: NFKC, invisible characters dropped, blanks collapsed,
 * `Name <email>` reduced to the email, trailing decorations, quotes, a chat `@` and a bare trailing
 * `@` (`alice@`) dropped, case folded, and an email's `+tag` removed.
 */
export function normalizeName(raw: string): string {
  let s = raw.normalize('NFKC').replace(IGNORABLE, '').replace(/\s+/gu, ' ').trim();
  const bracketed = NAME_AND_EMAIL.exec(s);
  if (bracketed) s = bracketed[1] as string;
  for (let previous = ''; previous !== s; ) {
    previous = s;
    s = s.replace(DECORATION, '').replace(/^["'`‘’“”]+|["'`‘’“”]+$/gu, '').trim();
  }
  s = s.replace(/^@(?=\S)/u, '').replace(/@$/u, '');
  // Full case folding as far as JS offers it: lower, upper, lower maps "ẞ" and "ß" to "ss" as folding does.
  s = s.toLowerCase().toUpperCase().toLowerCase().normalize('NFKC');
  const at = s.lastIndexOf('@');
  if (at > 0 && at < s.length - 1) {
    const local = s.slice(0, at).replace(/\+.*$/u, '');
    s = `${local}@${s.slice(at + 1)}`;
  }
  return s.trim();
}

/** Every spelling a roster person is known by, before normalisation, with the field it comes from. */
export function handlesOf(person: Pick<RosterPerson, 'id' | 'name' | 'email' | 'aliases' | 'chatUserId'>): { field: string; value: string }[] {
  return [
    { field: 'id', value: person.id },
    { field: 'email', value: person.email },
    ...person.aliases.map((value, i) => ({ field: `aliases[${i}]`, value })),
    ...(person.chatUserId ? [{ field: 'chatUserId', value: person.chatUserId }] : []),
    { field: 'name', value: person.name },
  ];
}

const indexes = new WeakMap<Roster, Map<string, Set<string>>>();

function indexOf(roster: Roster): Map<string, Set<string>> {
  let index = indexes.get(roster);
  if (!index) {
    index = new Map();
    for (const person of roster.people) {
      for (const { value } of handlesOf(person)) {
        const key = normalizeName(value);
        if (!key) continue;
        const ids = index.get(key) ?? new Set<string>();
        ids.add(person.id);
        index.set(key, ids);
      }
    }
    indexes.set(roster, index);
  }
  return index;
}

export type ResolveError =
  | { name: 'PersonUnknown'; input: string; message: string }
  | { name: 'PersonAmbiguous'; input: string; candidates: string[]; message: string }
  | { name: 'RoleNotPerson'; input: string; rotation: string; message: string };

export type Resolution = { ok: true; person: RosterPerson } | { ok: false; error: ResolveError };

const quoted = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);

/** How the Slack app names who clicked: `slack:<member id>`, matched to a `chatUserId` exactly (never to a name or alias). */
export const SLACK_HANDLE_PREFIX = 'slack:';

/** The one roster person `name` spells, or why there is none. */
export function resolvePerson(roster: Roster, name: string): Resolution {
  if (name.startsWith(SLACK_HANDLE_PREFIX)) {
    const member = name.slice(SLACK_HANDLE_PREFIX.length);
    const people = roster.people.filter((p) => p.chatUserId !== undefined && p.chatUserId === member);
    if (people.length === 1) return { ok: true, person: people[0]! };
    if (people.length > 1) return { ok: false, error: { name: 'PersonAmbiguous', input: name, candidates: people.map((p) => p.id).sort(), message: `${quoted(name)}: the roster gives chatUserId ${quoted(member)} to ${people.map((p) => p.id).sort().join(', ')}` } };
    return { ok: false, error: { name: 'PersonUnknown', input: name, message: `${quoted(name)}: no person of the roster (${roster.version.slice(0, 19)}…) has chatUserId ${quoted(member)}` } };
  }
  const trimmed = name.normalize('NFKC').trim();
  const role = /^@(\S+)$/u.exec(trimmed)?.[1];
  if (role !== undefined) {
    const rotation = Object.keys(roster.rotations).find((r) => normalizeName(r) === normalizeName(role));
    if (rotation) return { ok: false, error: { name: 'RoleNotPerson', input: name, rotation, message: `${quoted(name)} is the rotation ${rotation}, not one person` } };
  }
  const key = normalizeName(name);
  const ids = key ? indexOf(roster).get(key) : undefined;
  if (!ids || ids.size === 0) return { ok: false, error: { name: 'PersonUnknown', input: name, message: `${quoted(name)} is not a person of the roster (${roster.version.slice(0, 19)}…)` } };
  if (ids.size > 1) {
    const candidates = [...ids].sort();
    return { ok: false, error: { name: 'PersonAmbiguous', input: name, candidates, message: `${quoted(name)} could be any of ${candidates.join(', ')}: use an id or an email` } };
  }
  const id = [...ids][0] as string;
  return { ok: true, person: personById(roster, id) };
}

/** The person with this exact id (ids come from the roster itself, so a miss is a bug). */
export function personById(roster: Roster, id: string): RosterPerson {
  const person = roster.people.find((p) => p.id === id);
  if (!person) throw new Error(`roster ${roster.version}: no person with id ${id}`);
  return person;
}

export interface RefProblem {
  /** Place in the list given. */
  index: number;
  ref: string;
  message: string;
}

export type Expansion = { ok: true; people: RosterPerson[] } | { ok: false; problems: RefProblem[] };

/**
 * People and `@rotation` references (an incident's `approvers`) as roster people, each once, in
 * the order given. Any reference that names nobody, or more than one person, fails the whole list.
 */
export function expandRefs(roster: Roster, refs: readonly string[]): Expansion {
  const people = new Map<string, RosterPerson>();
  const problems: RefProblem[] = [];
  refs.forEach((ref, index) => {
    const role = /^@(\S+)$/u.exec(ref.trim())?.[1];
    const rotation = role === undefined ? undefined : Object.values(roster.rotations).find((r) => normalizeName(r.id) === normalizeName(role));
    if (rotation) {
      for (const id of rotation.members) people.set(id, personById(roster, id));
      return;
    }
    const found = resolvePerson(roster, ref);
    if (found.ok) people.set(found.person.id, found.person);
    else if (role !== undefined && found.error.name === 'PersonUnknown') problems.push({ index, ref, message: `${quoted(ref)} is neither a rotation (${Object.keys(roster.rotations).join(', ') || 'none'}) nor a person of the roster` });
    else problems.push({ index, ref, message: found.error.message });
  });
  return problems.length ? { ok: false, problems } : { ok: true, people: [...people.values()] };
}

/** Reporters that are not people (an alert rule, a monitor): accepted, and never a person any rule names. */
export const isMonitorReporter = (reporter: string): boolean => /^monitor:/u.test(reporter);

export interface InputNameProblem {
  /** `reporter`, or `approvers` with the place in the list. */
  field: 'reporter' | 'approvers';
  index?: number;
  ref: string;
  message: string;
}

/**
 * Why an incident's reporter and approvers do not name roster people (empty when they do): what
 * the workflow refuses at start and the CLI before starting, each naming its own field or flag.
 */
export function inputNameProblems(roster: Roster, input: { reporter: string; approvers: readonly string[] }): InputNameProblem[] {
  const problems: InputNameProblem[] = [];
  if (!isMonitorReporter(input.reporter)) {
    const found = resolvePerson(roster, input.reporter);
    if (!found.ok) problems.push({ field: 'reporter', ref: input.reporter, message: found.error.message });
  }
  const expanded = expandRefs(roster, input.approvers);
  if (!expanded.ok) problems.push(...expanded.problems.map((p) => ({ field: 'approvers' as const, index: p.index, ref: p.ref, message: p.message })));
  return problems;
}
