import { describe, expect, it } from 'vitest';
import {
  durationDomain,
  formatDuration,
  linearScale,
  logScale,
  logTicks,
  niceTicks,
  stackRunsPerDay,
  windowDays
} from '../plots';

describe('plots', () => {
  it('maps a domain onto a range, and a flat domain onto its start', () => {
    const x = linearScale([0, 10], [100, 200]);
    expect(x(5)).toBe(150);
    expect(linearScale([3, 3], [0, 50])(3)).toBe(0);
  });

  it('picks round ticks that cover the maximum', () => {
    expect(niceTicks(95)).toEqual([0, 50, 100]);
    expect(niceTicks(1000, 4)).toEqual([0, 500, 1000]);
    expect(niceTicks(0)).toEqual([0]);
    const ticks = niceTicks(1234);
    expect(ticks[ticks.length - 1]).toBeGreaterThanOrEqual(1234);
  });

  it('formats durations in the unit that reads best', () => {
    expect([850, 12_300, 252_000, 5_400_000, null].map(formatDuration)).toEqual([
      '850 ms',
      '12.3 s',
      '4.2 min',
      '1.5 h',
      '–'
    ]);
  });

  it('stacks runs per day with sorted days and workflows', () => {
    const result = stackRunsPerDay([
      { day: '2026-12-02', workflow: 'b', count: 2 },
      { day: '2026-12-01', workflow: 'a', count: 3 },
      { day: '2026-12-02', workflow: 'a', count: 4 }
    ]);
    expect(result.days).toEqual(['2026-12-01', '2026-12-02']);
    expect(result.workflows).toEqual(['a', 'b']);
    expect(result.counts.get('2026-12-02')!.get('a')).toBe(4);
    expect(result.maxTotal).toBe(6);
  });
});

describe('metrics over a window', () => {
  it('lists every day of the window from its UTC midnight', () => {
    expect(windowDays('2026-11-29T00:00:00.000000+00:00', 3)).toEqual([
      '2026-11-29',
      '2026-11-30',
      '2026-12-01'
    ]);
    expect(windowDays(null, 3)).toEqual([]);
  });

  it('fills the days without runs with empty stacks', () => {
    const result = stackRunsPerDay(
      [{ day: '2026-12-01', workflow: 'a', count: 2 }],
      ['2026-11-30', '2026-12-01']
    );
    expect(result.days).toEqual(['2026-11-30', '2026-12-01']);
    expect(result.counts.get('2026-11-30')!.size).toBe(0);
    expect(result.maxTotal).toBe(2);
  });

  it('maps durations on a log scale with power-of-ten ticks', () => {
    const x = logScale([1, 1024], [0, 100]);
    expect(x(1)).toBe(0);
    expect(x(32)).toBe(50);
    expect(x(1024)).toBe(100);
    expect(x(0)).toBe(0); // under the domain: its start
    expect(logTicks(0.5, 20_000)).toEqual([1, 10, 100, 1000, 10000]);
  });

  it('spans the histograms and the slowest step', () => {
    const rows = [
      { workflow: 'w', step: 'a', count: 3, p50Ms: 3, p90Ms: 6, maxMs: 7,
        histogram: [{ upToMs: 4, count: 2 }, { upToMs: 8, count: 1 }] },
      { workflow: 'w', step: 'b', count: 1, p50Ms: 900, p90Ms: 900, maxMs: 900,
        histogram: [{ upToMs: 1024, count: 1 }] }
    ];
    expect(durationDomain(rows)).toEqual([2, 1024]);
    expect(durationDomain([])).toEqual([1, 2]);
  });
});
