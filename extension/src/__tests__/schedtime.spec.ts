import { describe, expect, it } from 'vitest';
import { FlovynApi, Schedule } from '../api';
import { firedBySchedule, localTime, soonestFire, sortSchedules, untilText } from '../schedtime';

const NOW = Date.parse('2026-12-01T21:00:00Z');

function schedule(name: string, nextFire: string | null, paused = false): Schedule {
  return {
    name,
    workflow: 'etl',
    cron: '0 6 * * *',
    input: null,
    queue: 'default',
    catchUp: 'none',
    paused,
    nextFire,
    lastSlot: null
  };
}

describe('schedules in the sidebar', () => {
  it('says when a schedule fires next, relative to now', () => {
    const at = (s: number) => new Date(NOW + s * 1000).toISOString();
    expect(untilText(at(45), NOW)).toBe('in 45 s');
    expect(untilText(at(12 * 60), NOW)).toBe('in 12 min');
    expect(untilText(at(3 * 3600 + 20 * 60), NOW)).toBe('in 3 h 20 min');
    expect(untilText(at(9 * 3600), NOW)).toBe('in 9 h');
    expect(untilText(at(2 * 86400 + 4 * 3600), NOW)).toBe('in 2 d 4 h');
    expect(untilText(at(-5), NOW)).toBe('due now');
    expect(untilText(null, NOW)).toBe('');
  });

  it('shows the absolute time in the browser zone, to the minute', () => {
    const iso = '2026-12-02T06:00:00.000000+00:00';
    const local = new Date(iso);
    const pad = (n: number) => String(n).padStart(2, '0');
    expect(localTime(iso)).toBe(
      `${local.getFullYear()}-${pad(local.getMonth() + 1)}-${pad(local.getDate())} ` +
        `${pad(local.getHours())}:${pad(local.getMinutes())}`
    );
  });

  it('lists the soonest first and the paused ones last', () => {
    const list = [
      schedule('paused-a', null, true),
      schedule('later', '2026-12-03T06:00:00Z'),
      schedule('sooner', '2026-12-01T22:00:00Z')
    ];
    expect(sortSchedules(list).map(s => s.name)).toEqual(['sooner', 'later', 'paused-a']);
    expect(soonestFire(list)).toBe(Date.parse('2026-12-01T22:00:00Z'));
    expect(soonestFire([schedule('p', null, true)])).toBeNull();
  });

  it('re-reads the schedules only after a scheduled run or a reconnection', () => {
    expect(firedBySchedule({ type: 'run-changed', workflowId: 'sched-nightly-2026-12-02T06:00:00Z' })).toBe(true);
    expect(firedBySchedule({ type: 'reconnected' })).toBe(true);
    expect(firedBySchedule({ type: 'run-changed', workflowId: 'order-1' })).toBe(false);
    expect(firedBySchedule({ type: 'promise-waiting', workflowId: 'sched-x-1' })).toBe(false);
  });

  it('pauses and resumes through the API, the name encoded', async () => {
    const calls: string[] = [];
    const api = new FlovynApi(async (path, init) => {
      calls.push(`${init.method} ${path}`);
      return new Response(JSON.stringify(schedule('a b', null, true)), { status: 200 });
    });
    expect((await api.setSchedulePaused('a b', true)).paused).toBe(true);
    await api.setSchedulePaused('a b', false);
    expect(calls).toEqual(['POST schedules/a%20b/pause', 'POST schedules/a%20b/resume']);
  });
});
