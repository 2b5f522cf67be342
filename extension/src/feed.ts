/**
 * The one live feed of the extension: an EventSource on `/flovyn-nb/api/events` shared
 * by the sidebar, the run views, the inbox and the notifications.
 *
 * It reconnects after an error with exponential backoff (with jitter, so that many tabs
 * do not knock together), and tells its listeners `{type: "reconnected"}` after a
 * reconnection, since events sent while it was away are lost and views must reload.
 */

/** One message of the feed. */
export interface FeedEvent {
  type: string;
  workflowId?: string;
  status?: string;
  name?: string;
  [key: string]: unknown;
}

/** The part of `EventSource` the feed uses (a fake in the tests). */
export interface EventSourceLike {
  onopen: ((event: any) => void) | null;
  onmessage: ((event: { data: string }) => void) | null;
  onerror: ((event: any) => void) | null;
  close(): void;
}

export interface LiveFeedOptions {
  /** Makes the connection; `new EventSource(url)` by default. */
  connect?: (url: string) => EventSourceLike;
  /** First delay before reconnecting (ms). */
  minDelayMs?: number;
  /** Longest delay between two reconnection tries (ms). */
  maxDelayMs?: number;
  /** A number in [0, 1) for the jitter; Math.random by default. */
  random?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/**
 * Whether a feed message can change the run list or the inbox. An active run's progress
 * (`statusChanged: false`) only matters to its own run view: skipping it keeps a busy
 * store from reloading the sidebar on every step.
 */
export function changesLists(event: FeedEvent): boolean {
  return (
    event.type === 'reconnected' ||
    (event.type === 'run-changed' && event.statusChanged !== false)
  );
}

/** What `patchRuns` needs of a row of runs (`RunSummary` has it). */
export interface RunRowLike {
  workflowId: string;
  status: string;
  waitingFor?: string[];
}

const FINAL_STATUSES = ['COMPLETED', 'FAILED', 'CANCELLED'];

/**
 * The rows with what a feed message says applied at once: a run's new status (its chip),
 * a promise it started waiting on. A view can show that before it re-reads its page (on
 * DuckDB the re-read opens the shared store file: 50-300 ms); the re-read brings the rest
 * (new rows, order, counts). The same array when the message changes none of the rows.
 */
export function patchRuns<T extends RunRowLike>(rows: T[], event: FeedEvent): T[] {
  const at = rows.findIndex(row => row.workflowId === event.workflowId);
  if (at < 0) {
    return rows;
  }
  const row = rows[at];
  let patched: T = row;
  if (event.type === 'run-changed' && typeof event.status === 'string') {
    if (event.status !== row.status) {
      patched = { ...row, status: event.status };
      if (FINAL_STATUSES.includes(event.status) && row.waitingFor) {
        patched.waitingFor = [];
      }
    }
  } else if (event.type === 'promise-waiting' && typeof event.name === 'string') {
    const waiting = row.waitingFor ?? [];
    if (!waiting.includes(event.name)) {
      patched = { ...row, waitingFor: [...waiting, event.name] };
    }
  }
  if (patched === row) {
    return rows;
  }
  const copy = rows.slice();
  copy[at] = patched;
  return copy;
}

/** What `insertRun` needs of the list's filters (`RunsFilter` of paging.ts has it). */
export interface RunsFilterLike {
  status: string;
  kind: string;
  q: string;
  sort: string;
}

/** What `insertRun` needs of a page of runs (`RunsPage` has it). */
export interface RunsPageLike<T> {
  runs: T[];
  total: number;
  limit: number;
  offset: number;
}

/** A runs-list row (`RunSummary`), as `insertRun` builds it from a feed message. */
export interface NewRunRow extends RunRowLike {
  executionId: string;
  kind: string;
  createdAt: string;
  updatedAt: string;
  durationMs: number | null;
  error: string | null;
  waitingFor: string[];
  queue: string | null;
}

/** The row a `run-changed` message for a created run describes; null for any other. */
export function createdRow(event: FeedEvent): NewRunRow | null {
  const { workflowId, status, executionId, kind, createdAt, queue } = event;
  if (
    event.type !== 'run-changed' ||
    event.created !== true ||
    typeof workflowId !== 'string' ||
    typeof status !== 'string' ||
    typeof executionId !== 'string' ||
    typeof kind !== 'string' ||
    typeof createdAt !== 'string'
  ) {
    return null;
  }
  return {
    workflowId,
    executionId,
    kind,
    status,
    createdAt,
    updatedAt: createdAt,
    durationMs: 0,
    error: null,
    waitingFor: [],
    queue: typeof queue === 'string' ? queue : null
  };
}

/**
 * Whether a row matches the list's filters as `GET runs` matches them (listing.py and the
 * store's run query): any of the statuses (comma separated, any case), exactly the kind,
 * the search text as a case-insensitive substring of the workflow id, execution id or kind.
 */
export function matchesFilter(
  row: { workflowId: string; executionId: string; kind: string; status: string },
  filter: RunsFilterLike
): boolean {
  const statuses = filter.status
    .split(',')
    .map(s => s.trim().toUpperCase())
    .filter(s => s !== '');
  if (statuses.length > 0 && !statuses.includes(row.status)) {
    return false;
  }
  if (filter.kind !== '' && row.kind !== filter.kind) {
    return false;
  }
  const needle = filter.q.trim().toLowerCase();
  return (
    needle === '' ||
    [row.workflowId, row.executionId, row.kind].some(text => text.toLowerCase().includes(needle))
  );
}

/**
 * The page with the new run a feed message tells of (`created: true`) in its place, before
 * the page is re-read (on DuckDB the re-read takes the shared store file from the kernels:
 * a new row would wait ~0.5 s for it). Only where that place is sure: the first page, in
 * the default order (newest first: by `createdAt`, then workflow id, both descending, as
 * the server sorts), a run matching the filters and not already on the page; the last row
 * drops to keep the page's size and `total` counts the new run. Any other case returns the
 * same page: the re-read brings it.
 */
export function insertRun<P extends RunsPageLike<NewRunRow>>(
  page: P,
  event: FeedEvent,
  filter: RunsFilterLike
): P {
  const row = createdRow(event);
  if (
    row === null ||
    page.offset !== 0 ||
    filter.sort !== '-created' ||
    !matchesFilter(row, filter) ||
    page.runs.some(r => r.workflowId === row.workflowId)
  ) {
    return page;
  }
  // Times are ISO strings of one format (UTC, microseconds): their order is the text's.
  const newer = (other: NewRunRow): boolean =>
    row.createdAt > other.createdAt ||
    (row.createdAt === other.createdAt && row.workflowId > other.workflowId);
  let at = page.runs.findIndex(newer);
  if (at < 0) {
    if (page.runs.length >= page.limit) {
      return page; // older than the whole full page: it belongs on a later one
    }
    at = page.runs.length;
  }
  const runs = page.runs.slice();
  runs.splice(at, 0, row);
  if (runs.length > page.limit) {
    runs.length = page.limit;
  }
  return { ...page, runs, total: page.total + 1 };
}

export type FeedListener = (event: FeedEvent) => void;
export type FeedState = 'connecting' | 'open' | 'waiting' | 'stopped';

/** The delay before reconnection try number `attempt` (0-based), jitter in [50%, 100%]. */
export function backoffDelay(
  attempt: number,
  minDelayMs: number,
  maxDelayMs: number,
  random: number
): number {
  const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling * (0.5 + random / 2));
}

export class LiveFeed {
  private source: EventSourceLike | null = null;
  private timer: unknown = null;
  private failures = 0;
  private everOpened = false;
  private listeners = new Set<FeedListener>();
  private stateListeners = new Set<(state: FeedState) => void>();
  private _state: FeedState = 'stopped';
  private readonly opts: Required<LiveFeedOptions>;

  constructor(
    private readonly url: string,
    options: LiveFeedOptions = {}
  ) {
    this.opts = {
      connect: options.connect ?? ((u: string) => new EventSource(u) as EventSourceLike),
      minDelayMs: options.minDelayMs ?? 500,
      maxDelayMs: options.maxDelayMs ?? 30000,
      random: options.random ?? Math.random,
      setTimer: options.setTimer ?? ((fn, ms) => setTimeout(fn, ms)),
      clearTimer: options.clearTimer ?? (h => clearTimeout(h as any))
    };
  }

  /** The connection's state: connecting, open, waiting (to reconnect) or stopped. */
  get state(): FeedState {
    return this._state;
  }

  /** Calls `listener` with every message; returns the function that unsubscribes it. */
  subscribe(listener: FeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` on every change of state; returns the function that unsubscribes it. */
  onState(listener: (state: FeedState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Opens the connection (does nothing when it is already open or connecting). */
  start(): void {
    if (this._state === 'open' || this._state === 'connecting') {
      return;
    }
    this.open();
  }

  /** Closes the connection and cancels any pending reconnection. */
  stop(): void {
    if (this.timer !== null) {
      this.opts.clearTimer(this.timer);
      this.timer = null;
    }
    this.closeSource();
    this.setState('stopped');
  }

  private open(): void {
    this.setState('connecting');
    let source: EventSourceLike;
    try {
      source = this.opts.connect(this.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.source = source;
    source.onopen = () => {
      if (this.source !== source) {
        return;
      }
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.failures = 0;
      this.setState('open');
      if (reconnected) {
        this.emit({ type: 'reconnected' });
      }
    };
    source.onmessage = message => {
      if (this.source !== source) {
        return;
      }
      let event: FeedEvent;
      try {
        event = JSON.parse(message.data);
      } catch {
        return; // a keep-alive or a malformed line: nothing to tell the views
      }
      if (event && typeof event.type === 'string') {
        this.emit(event);
      }
    };
    source.onerror = () => {
      if (this.source !== source) {
        return;
      }
      // EventSource retries by itself only for some failures (never after an HTTP error):
      // close it and own the schedule, so the backoff is ours and predictable.
      this.closeSource();
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(
      this.failures,
      this.opts.minDelayMs,
      this.opts.maxDelayMs,
      this.opts.random()
    );
    this.failures += 1;
    this.setState('waiting');
    this.timer = this.opts.setTimer(() => {
      this.timer = null;
      this.open();
    }, delay);
  }

  private closeSource(): void {
    if (this.source) {
      const source = this.source;
      this.source = null;
      source.onopen = source.onmessage = source.onerror = null;
      source.close();
    }
  }

  private emit(event: FeedEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        console.error('flovyn-nb: a feed listener failed', error);
      }
    }
  }

  private setState(state: FeedState): void {
    if (state !== this._state) {
      this._state = state;
      for (const listener of [...this.stateListeners]) {
        listener(state);
      }
    }
  }
}
