/**
 * The typed client of the flovyn_nb server API (`/flovyn-nb/api/`).
 *
 * It does not import JupyterLab: the transport is a `Requester` given by the caller
 * (in the extension, `ServerConnection.makeRequest`, which adds the token and the XSRF
 * header), so the unit tests drive it with a fake `fetch`.
 */

/** Sends one request to a path relative to `/flovyn-nb/api/`. */
export type Requester = (path: string, init: RequestInit) => Promise<Response>;

/** A JSON value as the API sends and receives it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A JSON schema (kept loose: it comes from pydantic and is handed to the form library). */
export type JsonSchema = { [key: string]: any };

export interface RunSummary {
  workflowId: string;
  executionId: string;
  kind: string;
  status: string;
  createdAt: string;
  updatedAt: string;
  durationMs: number | null;
  error: string | null;
  waitingFor: string[];
  queue: string | null;
}

export interface RunsPage {
  runs: RunSummary[];
  total: number;
  limit: number;
  offset: number;
}

export interface RunsQuery {
  status?: string;
  kind?: string;
  q?: string;
  limit?: number;
  offset?: number;
  sort?: string;
}

export interface Attempt {
  attempt: number;
  status: string;
  error: string | null;
  startedAt: string | null;
  endedAt: string | null;
}

export interface Step {
  index: number;
  name: string;
  kind: string;
  status: string;
  attempts: Attempt[];
  input: Json;
  output: Json;
  /** One line, `Type: message` (the run's own error has the traceback). */
  error?: string | null;
  startedAt: string | null;
  endedAt: string | null;
  childWorkflowId: string | null;
}

export interface RunEvent {
  seq: number;
  type: string;
  payload: Json;
  ts: string;
}

export interface RunError {
  type: string;
  message: string;
  traceback: string | null;
}

/** An attempt of a run that a retry superseded, with its steps as they stood. */
export interface EarlierAttempt {
  attempt: number;
  status: string;
  error: string | null;
  endedAt: string | null;
  retriedAt: string;
  /** The step the next attempt ran again from (null: only the code after the last step). */
  fromStep: number | null;
  reason: string;
  steps: Step[];
}

export interface RunDetail extends Omit<RunSummary, 'error'> {
  input: Json;
  output: Json;
  error: RunError | null;
  steps: Step[];
  /** The run's attempt (1 until it is retried) and the attempts before, oldest first. */
  attempt?: number;
  earlierAttempts?: EarlierAttempt[];
  /** A fork: the run it was forked from and the step it ran again from. */
  forkedFrom?: string | null;
  fromStep?: number | null;
  events: RunEvent[];
  source: string | null;
}

export interface LogLine {
  ts: string;
  step: string | null;
  level: string;
  text: string;
}

export interface PendingPromise {
  workflowId: string;
  name: string;
  schema: JsonSchema | null;
  createdAt: string;
  timeoutAt: string | null;
  description: string | null;
}

export interface WorkflowDefinition {
  name: string;
  version: string | null;
  description: string | null;
  inputSchema: JsonSchema | null;
  served: boolean;
}

/** The duration distribution of one step of a workflow (a task, or a child workflow). */
export interface StepDurations {
  workflow: string;
  step: string;
  kind?: 'task' | 'child';
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms?: number;
  maxMs?: number;
  /** Steps by duration, in buckets [upToMs / 2, upToMs). */
  histogram?: { upToMs: number; count: number }[];
}

/** `GET metrics`: over every run created in the window (from `since`, a UTC midnight). */
export interface Metrics {
  days?: number;
  since?: string | null;
  runs?: number;
  stepDurations: StepDurations[];
  failureRates: { workflow: string; runs: number; failed: number; rate: number }[];
  runsPerDay: { day: string; workflow: string; count: number }[];
}

/** A cron schedule (`fn.schedule`); `nextFire` is null while it is paused. */
export interface Schedule {
  name: string;
  workflow: string;
  cron: string;
  input: Json;
  queue: string;
  catchUp: string;
  paused: boolean;
  nextFire: string | null;
  lastSlot: string | null;
}

/** An answer of the server other than 2xx, with the message of its `{error}` body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Builds the query string of `GET runs`, leaving out empty filters. */
export function runsQueryString(query: RunsQuery): string {
  const params = new URLSearchParams();
  const entries: [string, string | number | undefined][] = [
    ['status', query.status],
    ['kind', query.kind],
    ['q', query.q?.trim()],
    ['limit', query.limit],
    ['offset', query.offset],
    ['sort', query.sort]
  ];
  for (const [key, value] of entries) {
    if (value !== undefined && value !== '') {
      params.set(key, String(value));
    }
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

function seg(part: string): string {
  return encodeURIComponent(part);
}

/** The calls of the flovyn_nb server API, one method per route. */
export class FlovynApi {
  constructor(private readonly request: Requester) {}

  listRuns(query: RunsQuery = {}): Promise<RunsPage> {
    return this.get(`runs${runsQueryString(query)}`);
  }

  getRun(workflowId: string): Promise<RunDetail> {
    return this.get(`runs/${seg(workflowId)}`);
  }

  async getLogs(workflowId: string, since?: string): Promise<LogLine[]> {
    const query = since ? `?since=${encodeURIComponent(since)}` : '';
    const body = await this.get<{ lines: LogLine[] }>(`runs/${seg(workflowId)}/logs${query}`);
    return body.lines;
  }

  async listPromises(): Promise<PendingPromise[]> {
    const body = await this.get<{ promises: PendingPromise[] }>('promises');
    return body.promises;
  }

  resolvePromise(workflowId: string, name: string, value: Json): Promise<unknown> {
    return this.post(`runs/${seg(workflowId)}/promises/${seg(name)}/resolve`, { value });
  }

  rejectPromise(workflowId: string, name: string, reason: string): Promise<unknown> {
    return this.post(`runs/${seg(workflowId)}/promises/${seg(name)}/reject`, { reason });
  }

  cancel(workflowId: string, reason?: string): Promise<unknown> {
    return this.post(`runs/${seg(workflowId)}/cancel`, reason ? { reason } : {});
  }

  retry(workflowId: string): Promise<unknown> {
    return this.post(`runs/${seg(workflowId)}/retry`, {});
  }

  fork(
    workflowId: string,
    fromStep: number,
    options: { workflowId?: string; input?: Json } = {}
  ): Promise<{ workflowId: string }> {
    return this.post(`runs/${seg(workflowId)}/fork`, { fromStep, ...options });
  }

  async listWorkflows(): Promise<WorkflowDefinition[]> {
    const body = await this.get<{ workflows: WorkflowDefinition[] }>('workflows');
    return body.workflows;
  }

  startWorkflow(
    name: string,
    input: Json,
    options: { workflowId?: string; queue?: string } = {}
  ): Promise<{ workflowId: string }> {
    const body: { [key: string]: Json } = { input };
    if (options.workflowId) {
      body.workflowId = options.workflowId;
    }
    if (options.queue) {
      body.queue = options.queue;
    }
    return this.post(`workflows/${seg(name)}/start`, body);
  }

  metrics(days = 14): Promise<Metrics> {
    return this.get(`metrics?days=${days}`);
  }

  async listSchedules(): Promise<Schedule[]> {
    const body = await this.get<{ schedules: Schedule[] }>('schedules');
    return body.schedules;
  }

  /** Pauses (`paused: true`) or resumes a schedule; answers it as it is now. */
  setSchedulePaused(name: string, paused: boolean): Promise<Schedule> {
    return this.post(`schedules/${seg(name)}/${paused ? 'pause' : 'resume'}`, {});
  }

  private get<T>(path: string): Promise<T> {
    return this.send<T>(path, { method: 'GET' });
  }

  private post<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>(path, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json' }
    });
  }

  private async send<T>(path: string, init: RequestInit): Promise<T> {
    const response = await this.request(path, init);
    const text = await response.text();
    let body: any = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        // A proxy's HTML error page: say which status it was instead of a parse error.
        body = null;
      }
    }
    if (!response.ok) {
      const message =
        body && typeof body.error === 'string'
          ? body.error
          : `${init.method} ${path} failed with HTTP ${response.status}`;
      throw new ApiError(response.status, message);
    }
    return body as T;
  }
}
