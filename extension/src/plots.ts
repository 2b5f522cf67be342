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

/**
 * The days (ISO dates, UTC) of a metrics window: `days` days from `since` (a UTC
 * midnight), so that days without runs show as empty bars.
 */
export function windowDays(since: string | null | undefined, days: number): string[] {
  const start = since ? Date.parse(since) : NaN;
  if (Number.isNaN(start) || !(days > 0)) {
    return [];
  }
  const result: string[] = [];
  for (let i = 0; i < days; i++) {
    result.push(new Date(start + i * 86_400_000).toISOString().slice(0, 10));
  }
  return result;
}

/** A log₂ map from [d0, d1] (both > 0) to [r0, r1]; values under d0 map to r0. */
export function logScale(
  domain: [number, number],
  range: [number, number]
): (value: number) => number {
  const [l0, l1] = domain.map(d => Math.log2(Math.max(d, Number.MIN_VALUE)));
  const x = linearScale([l0, l1], range);
  return value => x(Math.log2(Math.max(value, domain[0])));
}

/** The powers of ten from `low` to `high` (durations in ms: 1 ms, 10 ms, 100 ms, 1 s …). */
export function logTicks(low: number, high: number): number[] {
  const ticks: number[] = [];
  for (let t = 10 ** Math.ceil(Math.log10(Math.max(low, 1e-3))); t <= high; t *= 10) {
    ticks.push(Number(t.toPrecision(12)));
  }
  return ticks;
}

/** The duration range the distributions span: [smallest bucket's start, largest value]. */
export function durationDomain(rows: Metrics['stepDurations']): [number, number] {
  let low = Infinity;
  let high = 0;
  for (const row of rows) {
    for (const bucket of row.histogram ?? []) {
      low = Math.min(low, bucket.upToMs / 2);
      high = Math.max(high, bucket.upToMs);
    }
    high = Math.max(high, row.maxMs ?? row.p90Ms);
  }
  if (!Number.isFinite(low)) {
    low = 1;
  }
  return [Math.max(low, 0.5), Math.max(high, low * 2)];
}

/** Runs per day with the workflows stacked in a fixed order, days sorted, gaps filled
 * (every day of `allDays`, when given). */
export function stackRunsPerDay(
  rows: Metrics['runsPerDay'],
  allDays: string[] = []
): {
  days: string[];
  workflows: string[];
  counts: Map<string, Map<string, number>>;
  maxTotal: number;
} {
  const days = [...new Set([...allDays, ...rows.map(r => r.day)])].sort();
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
