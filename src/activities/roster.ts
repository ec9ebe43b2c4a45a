/**
 * The on-call roster activity: the worker's roster (ROSTER_FILE, watched) handed to a starting
 * incident, which records it and decides every update by that version. Routing keys never leave
 * the worker: the recorded copy names which targets can be paged, the paging activities look the
 * keys up here (`rosterRoutingKey`).
 */
import type { RecordedRoster, Roster } from '../roster/schema';

/** What the worker holds: the roster in force (a `RosterWatcher` is one). */
export interface RosterDeps {
  current(): Roster;
}

/** Paging target names: a person's or a rotation's own PagerDuty service. */
export const personTarget = (id: string) => `person:${id}`;
export const rotationTarget = (id: string) => `rotation:${id}`;

/** The routing key of a `person:`/`rotation:` target in the roster, if it has one. */
export function rosterRoutingKey(roster: Roster, target: string): string | undefined {
  const [kind, id] = [target.slice(0, target.indexOf(':')), target.slice(target.indexOf(':') + 1)];
  if (kind === 'person') return roster.people.find((p) => p.id === id)?.paging?.pagerduty.routingKey;
  if (kind === 'rotation') return roster.rotations[id]?.paging?.pagerduty.routingKey;
  return undefined;
}

/** Every routing key the roster names (the sandbox registers them so its emulated PagerDuty accepts them). */
export function rosterRoutingKeys(roster: Roster): string[] {
  return [...roster.people.map((p) => p.paging?.pagerduty.routingKey), ...Object.values(roster.rotations).map((r) => r.paging?.pagerduty.routingKey)].filter((k): k is string => k !== undefined);
}

/** The roster without its routing keys, for history. */
export function recordedRoster(roster: Roster): RecordedRoster {
  const pageable = [
    ...roster.people.filter((p) => p.paging).map((p) => personTarget(p.id)),
    ...Object.values(roster.rotations).filter((r) => r.paging).map((r) => rotationTarget(r.id)),
  ];
  return {
    ...roster,
    people: roster.people.map(({ paging: _key, ...person }) => person),
    rotations: Object.fromEntries(Object.entries(roster.rotations).map(([id, { paging: _key, ...rotation }]) => [id, rotation])),
    pageable,
  };
}

export function createRosterActivities(deps: () => RosterDeps | undefined) {
  return {
    /** The roster for a starting incident (routing keys left out); null when the worker has none. */
    async loadRoster(): Promise<RecordedRoster | null> {
      const roster = deps()?.current();
      return roster ? recordedRoster(roster) : null;
    },
  };
}
