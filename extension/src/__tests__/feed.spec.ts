import { describe, expect, it } from 'vitest';
import {
  EventSourceLike,
  FeedEvent,
  LiveFeed,
  backoffDelay,
  NewRunRow,
  changesLists,
  insertRun,
  matchesFilter,
  patchRuns
} from '../feed';

class FakeSource implements EventSourceLike {
  onopen: ((event: any) => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onerror: ((event: any) => void) | null = null;
  closed = false;
  close(): void {
    this.closed = true;
  }
}

function harness() {
  const sources: FakeSource[] = [];
  const timers: { fn: () => void; ms: number; cleared: boolean }[] = [];
  const feed = new LiveFeed('/events', {
    connect: () => {
      const s = new FakeSource();
      sources.push(s);
      return s;
    },
    minDelayMs: 500,
    maxDelayMs: 4000,
    random: () => 0.999999, // jitter at its top: delays are the ceilings
    setTimer: (fn, ms) => {
      const t = { fn, ms, cleared: false };
      timers.push(t);
      return t;
    },
    clearTimer: t => ((t as any).cleared = true)
  });
  const events: FeedEvent[] = [];
  feed.subscribe(e => events.push(e));
  const fire = () => timers[timers.length - 1].fn();
  return { feed, sources, timers, events, fire };
}

describe('backoffDelay', () => {
  it('doubles from the minimum up to the maximum, with jitter in [50%, 100%]', () => {
    expect([0, 1, 2, 3, 4, 10].map(a => backoffDelay(a, 500, 4000, 1))).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
    expect(backoffDelay(2, 500, 4000, 0)).toBe(1000);
  });
});

describe('LiveFeed', () => {
  it('hands every JSON message to the listeners and ignores malformed ones', () => {
    const { feed, sources, events } = harness();
    feed.start();
    sources[0].onopen!({});
    sources[0].onmessage!({ data: '{"type": "run-changed", "workflowId": "a", "status": "RUNNING"}' });
    sources[0].onmessage!({ data: 'not json' });
    sources[0].onmessage!({ data: '{"no": "type"}' });
    expect(events).toEqual([{ type: 'run-changed', workflowId: 'a', status: 'RUNNING' }]);
    expect(feed.state).toBe('open');
  });

  it('reconnects with growing delays, then resets them and says it reconnected', () => {
    const { feed, sources, timers, events, fire } = harness();
    feed.start();
    sources[0].onopen!({});
    sources[0].onerror!({});
    expect(sources[0].closed).toBe(true);
    expect(feed.state).toBe('waiting');
    fire();
    sources[1].onerror!({});
    fire();
    sources[2].onerror!({});
    fire();
    sources[3].onerror!({});
    fire();
    sources[4].onerror!({});
    expect(timers.map(t => t.ms)).toEqual([500, 1000, 2000, 4000, 4000]);
    fire();
    sources[5].onopen!({});
    expect(events).toEqual([{ type: 'reconnected' }]);
    sources[5].onerror!({});
    expect(timers[timers.length - 1].ms).toBe(500);
  });

  it('ignores a replaced connection and stops cleanly', () => {
    const { feed, sources, timers, events } = harness();
    feed.start();
    sources[0].onerror!({});
    feed.stop();
    expect(timers[0].cleared).toBe(true);
    expect(feed.state).toBe('stopped');
    feed.start();
    expect(sources.length).toBe(2);
    sources[1].onmessage!({ data: '{"type": "promise-waiting", "workflowId": "w", "name": "ok"}' });
    expect(events.map(e => e.type)).toEqual(['promise-waiting']);
  });

  it('keeps serving the other listeners when one throws', () => {
    const { feed, sources, events } = harness();
    feed.subscribe(() => {
      throw new Error('boom');
    });
    const original = console.error;
    console.error = () => undefined;
    try {
      feed.start();
      sources[0].onmessage!({ data: '{"type": "run-changed"}' });
    } finally {
      console.error = original;
    }
    expect(events.length).toBe(1);
  });
});

describe('changesLists', () => {
  it('reloads the lists for new runs, status changes and reconnections, not for progress', () => {
    expect(changesLists({ type: 'run-changed', workflowId: 'a', status: 'RUNNING', statusChanged: true })).toBe(true);
    expect(changesLists({ type: 'run-changed', workflowId: 'a', status: 'RUNNING' })).toBe(true);
    expect(changesLists({ type: 'reconnected' })).toBe(true);
    expect(changesLists({ type: 'run-changed', workflowId: 'a', status: 'RUNNING', statusChanged: false })).toBe(false);
    expect(changesLists({ type: 'promise-waiting', workflowId: 'a', name: 'p' })).toBe(false);
  });
});

describe('patchRuns', () => {
  const rows = [
    { workflowId: 'a', status: 'RUNNING', waitingFor: [] as string[] },
    { workflowId: 'b', status: 'WAITING', waitingFor: ['ok'] }
  ];

  it('shows a new status and a new wait at once, leaving the other rows as they are', () => {
    const done = patchRuns(rows, {
      type: 'run-changed',
      workflowId: 'b',
      status: 'COMPLETED',
      statusChanged: true
    });
    expect(done).toEqual([rows[0], { workflowId: 'b', status: 'COMPLETED', waitingFor: [] }]);
    expect(done[0]).toBe(rows[0]);
    const waiting = patchRuns(rows, { type: 'promise-waiting', workflowId: 'a', name: 'go' });
    expect(waiting[0]).toEqual({ workflowId: 'a', status: 'RUNNING', waitingFor: ['go'] });
    expect(rows[0].waitingFor).toEqual([]); // the rows given are not changed
  });

  it('returns the same rows when the message changes none of them', () => {
    const same = [
      { type: 'run-changed', workflowId: 'a', status: 'RUNNING', statusChanged: false },
      { type: 'run-changed', workflowId: 'zzz', status: 'FAILED', statusChanged: true },
      { type: 'promise-waiting', workflowId: 'b', name: 'ok' },
      { type: 'reconnected' }
    ];
    for (const event of same) {
      expect(patchRuns(rows, event as FeedEvent)).toBe(rows);
    }
  });
});

describe('insertRun', () => {
  const at = (second: number): string =>
    `2026-12-01T10:00:${String(second).padStart(2, '0')}.000000+00:00`;
  const row = (workflowId: string, second: number, status = 'COMPLETED'): NewRunRow => ({
    workflowId,
    executionId: `x-${workflowId}`,
    kind: 'report',
    status,
    createdAt: at(second),
    updatedAt: at(second),
    durationMs: 1000,
    error: null,
    waitingFor: [],
    queue: 'default'
  });
  const page = {
    runs: [row('c', 30), row('b', 20), row('a', 10)],
    total: 7,
    limit: 3,
    offset: 0
  };
  const filter = { status: '', kind: '', q: '', sort: '-created' };
  const created = (workflowId: string, second: number, extra: Partial<FeedEvent> = {}): FeedEvent => ({
    type: 'run-changed',
    workflowId,
    status: 'RUNNING',
    statusChanged: true,
    created: true,
    executionId: `x-${workflowId}`,
    kind: 'nightly',
    createdAt: at(second),
    queue: 'gpu',
    ...extra
  });

  it('puts a new run on top of the first page, keeps the page size and counts it', () => {
    const next = insertRun(page, created('new', 40), filter);
    expect(next.runs.map(r => r.workflowId)).toEqual(['new', 'c', 'b']);
    expect(next.runs[0]).toEqual({
      workflowId: 'new',
      executionId: 'x-new',
      kind: 'nightly',
      status: 'RUNNING',
      createdAt: at(40),
      updatedAt: at(40),
      durationMs: 0,
      error: null,
      waitingFor: [],
      queue: 'gpu'
    });
    expect(next.total).toBe(8);
    expect(next.limit).toBe(3);
    expect(page.runs.map(r => r.workflowId)).toEqual(['c', 'b', 'a']); // not changed
  });

  it('puts it in its place newest first, ties by workflow id descending, as the server', () => {
    expect(insertRun(page, created('mid', 25), filter).runs.map(r => r.workflowId)).toEqual([
      'c',
      'mid',
      'b'
    ]);
    expect(insertRun(page, created('bb', 20), filter).runs.map(r => r.workflowId)).toEqual([
      'c',
      'bb',
      'b'
    ]);
    // Older than the whole full page: it belongs on a later page.
    expect(insertRun(page, created('old', 5), filter)).toBe(page);
    // A page that is not full is the whole list: it goes at the end.
    const short = { ...page, runs: page.runs.slice(0, 2), total: 2 };
    const grown = insertRun(short, created('old', 5), filter);
    expect(grown.runs.map(r => r.workflowId)).toEqual(['c', 'b', 'old']);
    expect(grown.total).toBe(3);
  });

  it('adds a run matching the filters, and only such a run', () => {
    const kept = (f: Partial<typeof filter>, extra: Partial<FeedEvent> = {}): boolean =>
      insertRun(page, created('new', 40, extra), { ...filter, ...f }) !== page;
    expect(kept({ status: 'RUNNING' })).toBe(true);
    expect(kept({ status: 'running,failed' })).toBe(true);
    expect(kept({ status: 'COMPLETED' })).toBe(false);
    expect(kept({ status: 'WAITING' }, { status: 'WAITING' })).toBe(true);
    expect(kept({ kind: 'nightly' })).toBe(true);
    expect(kept({ kind: 'night' })).toBe(false);
    expect(kept({ q: ' NE ' })).toBe(true); // workflow id, any case, trimmed
    expect(kept({ q: 'x-n' })).toBe(true); // execution id
    expect(kept({ q: 'NIGHT' })).toBe(true); // kind
    expect(kept({ q: 'zzz' })).toBe(false);
    expect(matchesFilter(row('a', 1), { ...filter, status: ' , ' })).toBe(true);
  });

  it('changes nothing off the first page, in another order, or for other messages', () => {
    expect(insertRun({ ...page, offset: 3 }, created('new', 40), filter).runs).toBe(page.runs);
    for (const sort of ['created', '-updated', 'workflowId']) {
      expect(insertRun(page, created('new', 40), { ...filter, sort })).toBe(page);
    }
    const others: FeedEvent[] = [
      { type: 'run-changed', workflowId: 'new', status: 'RUNNING', statusChanged: true },
      created('new', 40, { created: false }),
      created('new', 40, { kind: undefined }),
      created('new', 40, { createdAt: 12 }),
      created('new', 40, { type: 'promise-waiting' }),
      { type: 'reconnected' }
    ];
    for (const event of others) {
      expect(insertRun(page, event, filter)).toBe(page);
    }
  });

  it('does not add a row twice when the message comes again or the re-read came first', () => {
    const once = insertRun(page, created('new', 40), filter);
    expect(insertRun(once, created('new', 40), filter)).toBe(once);
    expect(insertRun(page, created('b', 40), filter)).toBe(page);
  });
});
