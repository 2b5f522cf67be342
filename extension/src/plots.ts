/** Small pure helpers for the metrics plots (scales, ticks, per-day totals). */
import type { Metrics } from './api';

/** A linear map from [d0, d1] to [r0, r1]; a flat domain maps to r0. */
export function linearScale(
  domain: [number, number],
  range: [number, number]
): (value: number) => number {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0;
  return value => (span === 0 ? r0 : r0 + ((value - d0) / span) * (r1 - r0));
}

/** About `count` round tick values from 0 to at least `max` (1, 2 or 5 times a power of 10). */
export function niceTicks(max: number, count = 4): number[] {
  if (!(max > 0)) {
    return [0];
  }
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map(f => f * power).find(s => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let value = 0; value < max + step; value += step) {
    ticks.push(Number(value.toPrecision(12)));
    if (value >= max) {
      break;
    }
  }
  return ticks;
}

/** "850 ms", "12.3 s", "4.2 min", "1.5 h". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) {
    return '–';
  }
  if (ms < 1000) {
    return `${Math.round(ms)} ms`;
  }
  if (ms < 60_000) {
    return `${(ms / 1000).toFixed(1)} s`;
  }
  if (ms < 3_600_000) {
    return `${(ms / 60_000).toFixed(1)} min`;
  }
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** Runs per day with the workflows stacked in a fixed order, days sorted, gaps filled. */
export function stackRunsPerDay(rows: Metrics['runsPerDay']): {
  days: string[];
  workflows: string[];
  counts: Map<string, Map<string, number>>;
  maxTotal: number;
} {
  const days = [...new Set(rows.map(r => r.day))].sort();
  const workflows = [...new Set(rows.map(r => r.workflow))].sort();
  const counts = new Map<string, Map<string, number>>();
  for (const day of days) {
    counts.set(day, new Map());
  }
  for (const row of rows) {
    const perDay = counts.get(row.day)!;
    perDay.set(row.workflow, (perDay.get(row.workflow) ?? 0) + row.count);
  }
  let maxTotal = 0;
  for (const perDay of counts.values()) {
    let total = 0;
    for (const count of perDay.values()) {
      total += count;
    }
    maxTotal = Math.max(maxTotal, total);
  }
  return { days, workflows, counts, maxTotal };
}
