import { describe, expect, it } from 'vitest';
import { formatDuration, linearScale, niceTicks, stackRunsPerDay } from '../plots';

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
