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
