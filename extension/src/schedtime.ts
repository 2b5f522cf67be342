/** How the sidebar shows schedules: their order, and when each fires next. */
import type { Schedule } from './api';

/** A feed message after which the schedules may have changed: a run a schedule started
 * (`sched-<name>-<slot>`), or a reconnection (messages were missed). */
export function firedBySchedule(event: { type: string; workflowId?: string }): boolean {
  return (
    event.type === 'reconnected' ||
    (event.type === 'run-changed' && (event.workflowId ?? '').startsWith('sched-'))
  );
}

/** "in 45 s", "in 12 min", "in 3 h 20 min", "in 2 d 4 h"; "due now" once the time is
 * reached (an engine fires it at its next look). */
export function untilText(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) {
    return '';
  }
  const then = Date.parse(iso);
  if (Number.isNaN(then)) {
    return iso;
  }
  const seconds = Math.round((then - now) / 1000);
  if (seconds <= 0) {
    return 'due now';
  }
  if (seconds < 60) {
    return `in ${seconds} s`;
  }
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) {
    return `in ${minutes} min`;
  }
  if (minutes < 24 * 60) {
    const rest = minutes % 60;
    return `in ${Math.floor(minutes / 60)} h${rest ? ` ${rest} min` : ''}`;
  }
  const hours = Math.round(minutes / 60);
  const rest = hours % 24;
  return `in ${Math.floor(hours / 24)} d${rest ? ` ${rest} h` : ''}`;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** A time in the browser's zone, to the minute: "2026-12-02 06:00". */
export function localTime(iso: string | null | undefined): string {
  const then = iso ? new Date(iso) : null;
  if (!then || Number.isNaN(then.getTime())) {
    return iso ?? '';
  }
  return (
    `${then.getFullYear()}-${pad(then.getMonth() + 1)}-${pad(then.getDate())} ` +
    `${pad(then.getHours())}:${pad(then.getMinutes())}`
  );
}

/** Active schedules by next fire time (soonest first), then the paused ones by name. */
export function sortSchedules(schedules: Schedule[]): Schedule[] {
  const key = (s: Schedule): number =>
    s.paused || !s.nextFire ? Infinity : Date.parse(s.nextFire);
  return [...schedules].sort((a, b) => key(a) - key(b) || a.name.localeCompare(b.name));
}

/** The first next fire time among active schedules (ms), to refresh the list then. */
export function soonestFire(schedules: Schedule[]): number | null {
  const times = schedules
    .filter(s => !s.paused && s.nextFire)
    .map(s => Date.parse(s.nextFire!))
    .filter(t => !Number.isNaN(t));
  return times.length ? Math.min(...times) : null;
}
