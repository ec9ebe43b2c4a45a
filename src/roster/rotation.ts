/**
 * Who is on call at an instant: a weekly rotation (handoff on a weekday at a local time in a time
 * zone), with overrides. Wall-clock arithmetic in the rotation's zone, so a handoff stays at 09:00
 * local across daylight-saving changes. Pure (Intl only), so workflow code may call it.
 */
import { personById } from './resolve';
import { WEEKDAYS, type Roster, type RosterOverride, type RosterPerson, type Rotation } from './schema';

const MINUTE = 60_000;
const DAY = 86_400_000;
const WEEK = 7 * DAY;

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock time of `ms` in `timeZone`, as if that wall clock were UTC (ms since the epoch). */
function wallClock(ms: number, timeZone: string): number {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(timeZone, f);
  }
  const part = (parts: Intl.DateTimeFormatPart[], type: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === type)?.value);
  const parts = f.formatToParts(new Date(ms));
  return Date.UTC(part(parts, 'year'), part(parts, 'month') - 1, part(parts, 'day'), part(parts, 'hour'), part(parts, 'minute'), part(parts, 'second')) + (ms % 1000 + 1000) % 1000;
}

/** The instant whose wall clock in `timeZone` reads `wall` (in a skipped hour: the same wall time at the earlier offset). */
function instantOf(wall: number, timeZone: string): number {
  const guess = wall - (wallClock(wall, timeZone) - wall);
  return wall - (wallClock(guess, timeZone) - guess);
}

/** The rotation's first handoff on or after its `start` date, as a wall-clock value. */
function firstHandoffWall(rotation: Rotation): number {
  const [y, m, d] = rotation.start.split('-').map(Number) as [number, number, number];
  const [hh, mm] = rotation.handoff.time.split(':').map(Number) as [number, number];
  const startDay = Date.UTC(y, m - 1, d);
  const ahead = (WEEKDAYS.indexOf(rotation.handoff.day) - new Date(startDay).getUTCDay() + 7) % 7;
  return startDay + ahead * DAY + hh * 60 * MINUTE + mm * MINUTE;
}

export interface Shift {
  /** Weeks since the rotation's first handoff (negative before it). */
  week: number;
  from: string;
  until: string;
}

export interface OnCall {
  rotation: string;
  primary: RosterPerson;
  /** The next member of the rotation (none in a rotation of one). */
  secondary?: RosterPerson;
  /** Paged when neither answers: the rotation's escalation person, or the on-call of its escalation rotation (its secondary when its primary is already paged here). */
  escalation?: RosterPerson;
  /** The scheduled week the instant falls in (overrides do not move it). */
  shift: Shift;
  /** The overrides in force at the instant. */
  overrides: RosterOverride[];
}

/** The scheduled shift that contains `at`. */
export function shiftAt(rotation: Rotation, at: Date): Shift {
  const tz = rotation.handoff.timezone;
  const first = firstHandoffWall(rotation);
  const week = Math.floor((wallClock(at.getTime(), tz) - first) / WEEK);
  const fromWall = first + week * WEEK;
  return { week, from: new Date(instantOf(fromWall, tz)).toISOString(), until: new Date(instantOf(fromWall + WEEK, tz)).toISOString() };
}

/**
 * Primary, secondary and escalation target of `rotationId` at `at`. An override in force replaces
 * the primary (or the secondary); when two overlap, the later one in the file wins. The secondary
 * is never the primary: it is then the next member in rotation order who is not.
 */
export function onCallAt(roster: Roster, rotationId: string, at: Date): OnCall {
  const rotation = roster.rotations[rotationId];
  if (!rotation) throw new Error(`roster ${roster.version}: no rotation ${rotationId} (${Object.keys(roster.rotations).join(', ')})`);
  const { primary, secondary, shift, overrides } = scheduleAt(rotation, at);
  const target = rotation.escalation;
  const escalation = !target ? undefined : 'person' in target ? target.person : escalationPerson(scheduleAt(roster.rotations[target.rotation] as Rotation, at), [primary, secondary]);
  return {
    rotation: rotation.id,
    primary: personById(roster, primary),
    ...(secondary ? { secondary: personById(roster, secondary) } : {}),
    ...(escalation ? { escalation: personById(roster, escalation) } : {}),
    shift,
    overrides,
  };
}

/**
 * Whom an escalation to another rotation pages: its primary, or its secondary when the primary was
 * already paged here. One level only: that rotation's own escalation is not followed (no loops).
 */
function escalationPerson(other: { primary: string; secondary?: string }, paged: readonly (string | undefined)[]): string {
  return paged.includes(other.primary) && other.secondary && !paged.includes(other.secondary) ? other.secondary : other.primary;
}

/** Person ids of the primary and secondary at `at`, overrides applied. */
function scheduleAt(rotation: Rotation, at: Date): { primary: string; secondary?: string; shift: Shift; overrides: RosterOverride[] } {
  const shift = shiftAt(rotation, at);
  const n = rotation.members.length;
  const first = ((shift.week % n) + n) % n;
  const order = rotation.members.map((_, i) => rotation.members[(first + i) % n] as string);
  const now = at.getTime();
  const overrides = rotation.overrides.filter((o) => Date.parse(o.from) <= now && now < Date.parse(o.until));
  const last = (as: RosterOverride['as']) => overrides.filter((o) => o.as === as).at(-1)?.person;
  const primary = last('primary') ?? (order[0] as string);
  const overridden = last('secondary');
  const secondary = overridden && overridden !== primary ? overridden : order.find((id) => id !== primary);
  return { primary, ...(secondary ? { secondary } : {}), shift, overrides };
}
