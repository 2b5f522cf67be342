/**
 * The left sidebar: the "Waiting for you" inbox of pending promises, every run of the
 * store (any notebook, any process), one server-side page at a time, and the schedules.
 */
import * as React from 'react';
import { ReactWidget } from '@jupyterlab/ui-components';
import { ApiError, PendingPromise, RunsPage, WorkflowDefinition } from './api';
import { FormState, SchemaForm, StatusChip, formValue, initialForm, timeAgo } from './components';
import { CommandIDs, FlovynContext } from './context';
import { FeedEvent, FeedState, changesLists, insertRun, patchRuns } from './feed';
import { DEFAULT_FILTER, RunsPaging } from './paging';
import { SchedulesSection } from './schedules';

const DEFAULT_KEY = JSON.stringify(DEFAULT_FILTER);

export const RUN_STATUSES = ['PENDING', 'RUNNING', 'WAITING', 'COMPLETED', 'FAILED', 'CANCELLED'];

function message(error: unknown): string {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error);
}

/**
 * Runs `load` now, or once more right after the load in flight, never two at once: a burst
 * of feed events costs at most two requests, and the last state always reaches the screen.
 */
export function useCoalescedLoader(load: () => Promise<void>): () => void {
  const state = React.useRef({ running: false, again: false });
  const loadRef = React.useRef(load);
  loadRef.current = load;
  return React.useCallback(() => {
    const s = state.current;
    if (s.running) {
      s.again = true;
      return;
    }
    s.running = true;
    const run = (): void => {
      s.again = false;
      loadRef.current().finally(() => {
        if (s.again) {
          run();
        } else {
          s.running = false;
        }
      });
    };
    run();
  }, []);
}

function PromiseItem(props: {
  ctx: FlovynContext;
  promise: PendingPromise;
  selected: boolean;
  onSelect: (selected: boolean) => void;
  onDone: () => void;
}): JSX.Element {
  const { ctx, promise } = props;
  const { trans } = ctx;
  const [open, setOpen] = React.useState(false);
  const [form, setForm] = React.useState<FormState>(() => initialForm(promise.schema));
  const [reason, setReason] = React.useState('');
  const [error, setError] = React.useState('');
  const [busy, setBusy] = React.useState(false);

  const act = async (action: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setError('');
    try {
      await action();
      props.onDone();
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };
  const resolve = (): void => {
    const result = formValue(form);
    if ('error' in result) {
      setError(result.error);
      return;
    }
    void act(() => ctx.api.resolvePromise(promise.workflowId, promise.name, result.value));
  };
  const reject = (): void => {
    void act(() => ctx.api.rejectPromise(promise.workflowId, promise.name, reason));
  };

  return (
    <li
      className="jp-FlovynInboxItem"
      data-workflow-id={promise.workflowId}
      data-promise={promise.name}
    >
      <div className="jp-FlovynInboxHead">
        <input
          type="checkbox"
          aria-label={trans.__('Select %1', promise.workflowId)}
          checked={props.selected}
          onChange={e => props.onSelect(e.target.checked)}
        />
        <button
          className="jp-FlovynLink"
          title={trans.__('Open the run')}
          onClick={() => ctx.commands.execute(CommandIDs.openRun, { workflowId: promise.workflowId })}
        >
          {promise.workflowId}
        </button>
        <span className="jp-FlovynPromiseName">{promise.name}</span>
        <span className="jp-FlovynMuted">{timeAgo(promise.createdAt)}</span>
        <button className="jp-FlovynToggle jp-mod-styled" onClick={() => setOpen(!open)}>
          {open ? trans.__('Hide') : trans.__('Answer')}
        </button>
      </div>
      {promise.description && <div className="jp-FlovynMuted">{promise.description}</div>}
      {open && (
        <div className="jp-FlovynAnswer">
          <SchemaForm
            state={form}
            onChange={setForm}
            idPrefix={`flovyn-${promise.workflowId}-${promise.name}`}
          />
          <div className="jp-FlovynButtons">
            <button
              className="jp-Button jp-mod-styled jp-mod-accept jp-FlovynResolve"
              disabled={busy}
              onClick={resolve}
            >
              {trans.__('Resolve')}
            </button>
            <input
              className="jp-mod-styled jp-FlovynReason"
              placeholder={trans.__('reason')}
              value={reason}
              onChange={e => setReason(e.target.value)}
            />
            <button
              className="jp-Button jp-mod-styled jp-mod-warn jp-FlovynReject"
              disabled={busy}
              onClick={reject}
            >
              {trans.__('Reject')}
            </button>
          </div>
        </div>
      )}
      {error && <div className="jp-FlovynError">{error}</div>}
    </li>
  );
}

function Inbox(props: { ctx: FlovynContext; tick: number }): JSX.Element {
  const { ctx } = props;
  const { trans } = ctx;
  const [promises, setPromises] = React.useState<PendingPromise[]>([]);
  const [selected, setSelected] = React.useState<Set<string>>(new Set());
  const [error, setError] = React.useState('');
  const [bulkForm, setBulkForm] = React.useState<FormState | null>(null);
  const [bulkError, setBulkError] = React.useState('');

  const load = useCoalescedLoader(async () => {
    try {
      setPromises(await ctx.api.listPromises());
      setError('');
    } catch (e) {
      setError(message(e));
    }
  });
  React.useEffect(load, [props.tick]);
  React.useEffect(
    () =>
      ctx.feed.subscribe((event: FeedEvent) => {
        if (event.type === 'promise-waiting' || changesLists(event)) {
          load();
        }
      }),
    []
  );

  const key = (p: PendingPromise): string => `${p.workflowId}\u0000${p.name}`;
  const chosen = promises.filter(p => selected.has(key(p)));
  const sameSchema =
    chosen.length > 0 &&
    chosen.every(p => JSON.stringify(p.schema) === JSON.stringify(chosen[0].schema));
  const bulkSchemaKey = sameSchema ? JSON.stringify(chosen[0].schema) : '';
  React.useEffect(() => {
    setBulkForm(sameSchema ? initialForm(chosen[0].schema) : null);
  }, [bulkSchemaKey]);

  const bulkResolve = async (): Promise<void> => {
    if (!bulkForm) {
      return;
    }
    const result = formValue(bulkForm);
    if ('error' in result) {
      setBulkError(result.error);
      return;
    }
    const failures: string[] = [];
    for (const p of chosen) {
      try {
        await ctx.api.resolvePromise(p.workflowId, p.name, result.value);
      } catch (e) {
        failures.push(`${p.workflowId}: ${message(e)}`);
      }
    }
    setBulkError(failures.join('; '));
    setSelected(new Set());
    load();
  };

  return (
    <section className="jp-FlovynInbox">
      <h3 className="jp-FlovynSectionTitle">
        {trans.__('Waiting for you')} <span className="jp-FlovynCount">{promises.length}</span>
      </h3>
      {error && <div className="jp-FlovynError">{error}</div>}
      {promises.length === 0 && !error && (
        <div className="jp-FlovynMuted">{trans.__('No promise is waiting.')}</div>
      )}
      {chosen.length > 0 && (
        <div className="jp-FlovynBulk">
          {sameSchema && bulkForm ? (
            <>
              <SchemaForm state={bulkForm} onChange={setBulkForm} idPrefix="flovyn-bulk" />
              <button
                className="jp-Button jp-mod-styled jp-mod-accept jp-FlovynBulkResolve"
                onClick={() => void bulkResolve()}
              >
                {trans._n('Resolve %1 selected', 'Resolve %1 selected', chosen.length)}
              </button>
            </>
          ) : (
            <div className="jp-FlovynMuted">
              {trans.__('The selected promises expect different values: answer them one by one.')}
            </div>
          )}
          {bulkError && <div className="jp-FlovynError">{bulkError}</div>}
        </div>
      )}
      <ul className="jp-FlovynInboxList">
        {promises.map(p => (
          <PromiseItem
            key={key(p)}
            ctx={ctx}
            promise={p}
            selected={selected.has(key(p))}
            onSelect={on => {
              const next = new Set(selected);
              if (on) {
                next.add(key(p));
              } else {
                next.delete(key(p));
              }
              setSelected(next);
            }}
            onDone={load}
          />
        ))}
      </ul>
    </section>
  );
}

function RunList(props: {
  ctx: FlovynContext;
  tick: number;
  firstPage: Promise<RunsPage> | null;
}): JSX.Element {
  const { ctx } = props;
  const { trans } = ctx;
  const paging = React.useMemo(() => new RunsPaging(ctx.settings.pageSize), []);
  const prefetched = React.useRef(props.firstPage);
  const [page, setPage] = React.useState<RunsPage | null>(null);
  const [error, setError] = React.useState('');
  const [search, setSearch] = React.useState('');
  const [kinds, setKinds] = React.useState<WorkflowDefinition[]>([]);
  const [, rerender] = React.useReducer((n: number) => n + 1, 0);

  const load = useCoalescedLoader(async () => {
    try {
      // The first page was asked for at activation, before JupyterLab finished laying
      // out: use it when the view still shows that page.
      const first = prefetched.current;
      prefetched.current = null;
      const query = paging.query();
      const isFirst =
        first !== null && query.offset === 0 && JSON.stringify(paging.filter) === DEFAULT_KEY;
      let result = isFirst ? await first : await ctx.api.listRuns(query);
      if (paging.applyTotal(result.total)) {
        result = await ctx.api.listRuns(paging.query());
      }
      setPage(result);
      setError('');
    } catch (e) {
      setError(message(e));
    }
    rerender();
  });

  React.useEffect(load, [props.tick]);
  React.useEffect(
    () =>
      ctx.feed.subscribe((event: FeedEvent) => {
        // The message itself updates a row already on the page (its status chip, a new
        // wait) and puts a new run's row on the first page at once; the re-read brings
        // the rest (rows elsewhere, other orders, counts, the pager).
        setPage(current => {
          if (current === null) {
            return current;
          }
          const runs = patchRuns(current.runs, event);
          const patched = runs === current.runs ? current : { ...current, runs };
          return insertRun(patched, event, paging.filter);
        });
        if (changesLists(event)) {
          load();
        }
      }),
    []
  );
  React.useEffect(() => {
    ctx.api.listWorkflows().then(setKinds, () => setKinds([]));
  }, [props.tick]);
  // Search as you type, without a request per key stroke.
  React.useEffect(() => {
    if (search === paging.filter.q) {
      return; // the first render: the load above already asked for this
    }
    const timer = setTimeout(() => {
      paging.setFilter({ q: search });
      load();
    }, 250);
    return () => clearTimeout(timer);
  }, [search]);

  const setFilter = (change: Parameters<RunsPaging['setFilter']>[0]): void => {
    paging.setFilter(change);
    load();
  };

  return (
    <section className="jp-FlovynRuns">
      <h3 className="jp-FlovynSectionTitle">{trans.__('Runs')}</h3>
      <div className="jp-FlovynFilters">
        <input
          className="jp-mod-styled jp-FlovynSearch"
          type="search"
          placeholder={trans.__('Search run ids')}
          aria-label={trans.__('Search run ids')}
          value={search}
          onChange={e => setSearch(e.target.value)}
        />
        <select
          className="jp-mod-styled"
          aria-label={trans.__('Status')}
          value={paging.filter.status}
          onChange={e => setFilter({ status: e.target.value })}
        >
          <option value="">{trans.__('any status')}</option>
          {RUN_STATUSES.map(s => (
            <option key={s} value={s}>
              {s.toLowerCase()}
            </option>
          ))}
        </select>
        <select
          className="jp-mod-styled"
          aria-label={trans.__('Workflow')}
          value={paging.filter.kind}
          onChange={e => setFilter({ kind: e.target.value })}
        >
          <option value="">{trans.__('any workflow')}</option>
          {kinds.map(k => (
            <option key={k.name} value={k.name}>
              {k.name}
            </option>
          ))}
        </select>
        <select
          className="jp-mod-styled"
          aria-label={trans.__('Sort')}
          value={paging.filter.sort}
          onChange={e => setFilter({ sort: e.target.value })}
        >
          <option value="-created">{trans.__('newest first')}</option>
          <option value="created">{trans.__('oldest first')}</option>
          <option value="-updated">{trans.__('recently changed')}</option>
        </select>
      </div>
      {error && <div className="jp-FlovynError">{error}</div>}
      <ul className="jp-FlovynRunList" data-total={page?.total ?? ''}>
        {(page?.runs ?? []).map(run => (
          <li
            key={run.workflowId}
            className="jp-FlovynRunRow"
            data-workflow-id={run.workflowId}
            data-status={run.status}
            tabIndex={0}
            title={run.error ?? run.workflowId}
            onClick={() => ctx.commands.execute(CommandIDs.openRun, { workflowId: run.workflowId })}
            onKeyDown={e => {
              if (e.key === 'Enter') {
                void ctx.commands.execute(CommandIDs.openRun, { workflowId: run.workflowId });
              }
            }}
          >
            <StatusChip status={run.status} />
            <span className="jp-FlovynRunId">{run.workflowId}</span>
            <span className="jp-FlovynMuted jp-FlovynRunKind">{run.kind}</span>
            {run.waitingFor.length > 0 && (
              <span className="jp-FlovynWaiting">
                {trans.__('waits for %1', run.waitingFor.join(', '))}
              </span>
            )}
            <span className="jp-FlovynMuted jp-FlovynRunAge">{timeAgo(run.createdAt)}</span>
          </li>
        ))}
      </ul>
      <div className="jp-FlovynPager">
        <button
          className="jp-Button jp-mod-styled jp-FlovynPrev"
          disabled={!paging.hasPrev}
          onClick={() => {
            paging.prev();
            load();
          }}
        >
          ‹
        </button>
        <span className="jp-FlovynPagerLabel">{paging.rangeLabel()}</span>
        <button
          className="jp-Button jp-mod-styled jp-FlovynNext"
          disabled={!paging.hasNext}
          onClick={() => {
            paging.next();
            load();
          }}
        >
          ›
        </button>
      </div>
    </section>
  );
}

function FeedDot(props: { ctx: FlovynContext }): JSX.Element {
  const { feed, trans } = props.ctx;
  const [state, setState] = React.useState<FeedState>(feed.state);
  React.useEffect(() => feed.onState(setState), []);
  const label = state === 'open' ? trans.__('live') : trans.__('offline, reconnecting');
  return (
    <span className={`jp-FlovynFeedDot jp-FlovynFeed-${state}`} title={label}>
      ● {label}
    </span>
  );
}

/** The sidebar widget; `refresh()` reloads the inbox and the current page. */
export class FlovynSidebar extends ReactWidget {
  private tick = 0;
  private readonly firstPage: Promise<RunsPage> | null;

  constructor(private readonly ctx: FlovynContext) {
    super();
    this.firstPage = ctx.api.listRuns({ ...DEFAULT_FILTER, limit: ctx.settings.pageSize, offset: 0 });
    this.firstPage.catch(() => undefined); // a failure shows when the list reads it
    this.addClass('jp-FlovynSidebar');
    this.id = 'flovyn-nb-sidebar';
    this.title.caption = ctx.trans.__('Flovyn runs');
  }

  refresh(): void {
    this.tick += 1;
    this.update();
  }

  protected render(): JSX.Element {
    const { ctx } = this;
    const { trans } = ctx;
    return (
      <div className="jp-FlovynSidebarBody">
        <div className="jp-FlovynToolbar">
          <button
            className="jp-Button jp-mod-styled jp-FlovynStartButton"
            onClick={() => ctx.commands.execute(CommandIDs.startWorkflow)}
          >
            {trans.__('Start a workflow')}
          </button>
          <button
            className="jp-Button jp-mod-styled"
            onClick={() => ctx.commands.execute(CommandIDs.openMetrics)}
          >
            {trans.__('Metrics')}
          </button>
          <button className="jp-Button jp-mod-styled" onClick={() => this.refresh()}>
            {trans.__('Refresh')}
          </button>
          <FeedDot ctx={ctx} />
        </div>
        <Inbox ctx={ctx} tick={this.tick} />
        <RunList ctx={ctx} tick={this.tick} firstPage={this.firstPage} />
        <SchedulesSection ctx={ctx} tick={this.tick} />
      </div>
    );
  }
}
