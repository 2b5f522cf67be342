/**
 * The run view (main area): timeline with attempts and children, events, logs (live),
 * input/output, source, and the actions Cancel, Retry, Fork from a step, Start again.
 */
import * as React from 'react';
import { Dialog, MainAreaWidget, Notification, showDialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { EarlierAttempt, Json, JsonSchema, LogLine, RunDetail, Step } from './api';
import {
  FormState,
  JsonView,
  SchemaForm,
  StatusChip,
  formValue,
  initialForm,
  timeAgo
} from './components';
import { CommandIDs, FlovynContext } from './context';
import { formatDuration } from './plots';
import { formFromValue, planForm } from './schemaform';

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A dialog body holding a schema form and an optional run id; its value is what was typed. */
class FormDialogBody extends ReactWidget {
  private form: FormState;
  private workflowId = '';

  constructor(
    schema: JsonSchema | null,
    input: Json | undefined,
    private readonly askId: boolean,
    private readonly idLabel: string
  ) {
    super();
    const plan = planForm(schema);
    this.form = initialForm(schema, formFromValue(plan, input));
    this.addClass('jp-FlovynDialogForm');
  }

  getValue(): { form: FormState; workflowId: string } {
    return { form: this.form, workflowId: this.workflowId };
  }

  protected render(): JSX.Element {
    return (
      <div>
        <SchemaForm
          state={this.form}
          onChange={state => {
            this.form = state;
            this.update();
          }}
          idPrefix="flovyn-dialog"
        />
        {this.askId && (
          <label className="jp-FlovynField">
            {this.idLabel}
            <input
              className="jp-mod-styled"
              defaultValue=""
              onChange={e => (this.workflowId = e.target.value)}
            />
          </label>
        )}
      </div>
    );
  }
}

function Timeline(props: {
  ctx: FlovynContext;
  run: RunDetail;
  selected: number | null;
  onSelect: (index: number) => void;
}): JSX.Element {
  const { ctx, run } = props;
  const start = Date.parse(run.createdAt);
  const end = TERMINAL.has(run.status) ? Date.parse(run.updatedAt) : Date.now();
  const span = Math.max(1, end - start);
  const pct = (iso: string | null, fallback: number): number =>
    Math.min(100, Math.max(0, (((iso ? Date.parse(iso) : fallback) - start) / span) * 100));
  if (run.steps.length === 0) {
    return <div className="jp-FlovynMuted">{ctx.trans.__('No step yet.')}</div>;
  }
  return (
    <ol className="jp-FlovynTimeline">
      {run.steps.map((step: Step) => {
        const left = pct(step.startedAt, start);
        const right = pct(step.endedAt, end);
        return (
          <li
            key={step.index}
            className={`jp-FlovynStep${props.selected === step.index ? ' jp-mod-selected' : ''}`}
            data-step={step.index}
            onClick={() => props.onSelect(step.index)}
          >
            <div className="jp-FlovynStepHead">
              <StatusChip status={step.status} />
              <span className="jp-FlovynStepName">{step.name}</span>
              <span className="jp-FlovynMuted">{step.kind}</span>
              <span className="jp-FlovynMuted">
                {step.startedAt && step.endedAt
                  ? formatDuration(Date.parse(step.endedAt) - Date.parse(step.startedAt))
                  : ''}
              </span>
              {step.childWorkflowId && (
                <button
                  className="jp-FlovynLink"
                  onClick={e => {
                    e.stopPropagation();
                    void ctx.commands.execute(CommandIDs.openRun, {
                      workflowId: step.childWorkflowId!
                    });
                  }}
                >
                  ↳ {step.childWorkflowId}
                </button>
              )}
            </div>
            <div className="jp-FlovynBarTrack">
              <div
                className={`jp-FlovynBar jp-FlovynBar-${step.status.toLowerCase()}`}
                style={{ left: `${left}%`, width: `${Math.max(0.5, right - left)}%` }}
              />
            </div>
            {step.error && <div className="jp-FlovynError">{step.error}</div>}
            {step.attempts.length > 1 && (
              <ul className="jp-FlovynAttempts">
                {step.attempts.map(a => (
                  <li key={a.attempt}>
                    {ctx.trans.__('attempt %1', a.attempt)} <StatusChip status={a.status} />{' '}
                    {a.error && <span className="jp-FlovynError">{a.error}</span>}
                  </li>
                ))}
              </ul>
            )}
          </li>
        );
      })}
    </ol>
  );
}

/** Where the run came from: the attempts a retry superseded, the run it was forked from. */
function Lineage(props: { ctx: FlovynContext; run: RunDetail }): JSX.Element | null {
  const { ctx, run } = props;
  const { trans } = ctx;
  const earlier: EarlierAttempt[] = run.earlierAttempts ?? [];
  const open = (workflowId: string): void => {
    void ctx.commands.execute(CommandIDs.openRun, { workflowId });
  };
  if (!earlier.length && !run.forkedFrom) {
    return null;
  }
  return (
    <div className="jp-FlovynLineage">
      {run.forkedFrom && (
        <div className="jp-FlovynOrigin">
          {trans.__('Forked from')}{' '}
          <button className="jp-FlovynLink" onClick={() => open(run.forkedFrom!)}>
            {run.forkedFrom}
          </button>{' '}
          {run.fromStep ? trans.__('at step %1', run.fromStep) : ''}
        </div>
      )}
      {earlier.length > 0 && (
        <div className="jp-FlovynRunAttempts">
          <div>{trans.__('attempt %1; earlier attempts:', run.attempt ?? earlier.length + 1)}</div>
          <ul>
            {earlier.map(a => (
              <li key={a.attempt} data-attempt={a.attempt} data-status={a.status}>
                <details>
                  <summary>
                    {trans.__('attempt %1', a.attempt)} <StatusChip status={a.status} />{' '}
                    <span className="jp-FlovynMuted">
                      {trans.__('retried %1', timeAgo(a.retriedAt))}
                      {a.fromStep ? ` · ${trans.__('again from step %1', a.fromStep)}` : ''}
                    </span>{' '}
                    {a.error && <span className="jp-FlovynError">{a.error}</span>}
                  </summary>
                  <ol className="jp-FlovynEarlierSteps">
                    {a.steps.map(step => (
                      <li key={step.index} value={step.index}>
                        <StatusChip status={step.status} /> {step.name}{' '}
                        {step.error && <span className="jp-FlovynError">{step.error}</span>}
                      </li>
                    ))}
                  </ol>
                </details>
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

type Tab = 'timeline' | 'events' | 'logs' | 'io' | 'source';

function RunViewBody(props: { ctx: FlovynContext; workflowId: string }): JSX.Element {
  const { ctx, workflowId } = props;
  const { trans, api } = ctx;
  const [run, setRun] = React.useState<RunDetail | null>(null);
  const [logs, setLogs] = React.useState<LogLine[]>([]);
  const [error, setError] = React.useState('');
  const [tab, setTab] = React.useState<Tab>('timeline');
  const [selected, setSelected] = React.useState<number | null>(null);
  const logsRef = React.useRef<LogLine[]>([]);

  const load = React.useCallback(async () => {
    try {
      const detail = await api.getRun(workflowId);
      setRun(detail);
      setError('');
      const last = logsRef.current[logsRef.current.length - 1];
      const fresh = await api.getLogs(workflowId, last?.ts);
      // `since` is inclusive on the server's side of equal timestamps: drop exact repeats.
      const seen = new Set(logsRef.current.map(l => `${l.ts}|${l.step}|${l.text}`));
      const added = fresh.filter(l => !seen.has(`${l.ts}|${l.step}|${l.text}`));
      if (added.length) {
        logsRef.current = [...logsRef.current, ...added];
        setLogs(logsRef.current);
      }
    } catch (e) {
      setError(errorText(e));
    }
  }, [workflowId]);

  React.useEffect(() => {
    void load();
    return ctx.feed.subscribe(event => {
      if (event.type === 'reconnected' || event.workflowId === workflowId) {
        void load();
      }
    });
  }, [workflowId]);

  const act = async (what: () => Promise<unknown>, done?: string): Promise<void> => {
    try {
      const result: any = await what();
      if (done) {
        Notification.success(done, { autoClose: 4000 });
      }
      if (result && typeof result.workflowId === 'string' && result.workflowId !== workflowId) {
        void ctx.commands.execute(CommandIDs.openRun, { workflowId: result.workflowId });
      }
      void load();
    } catch (e) {
      Notification.error(errorText(e), { autoClose: 8000 });
    }
  };

  const cancel = async (): Promise<void> => {
    const answer = await showDialog({
      title: trans.__('Cancel run %1?', workflowId),
      body: trans.__('The run stops at its next step and is marked cancelled.'),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Keep running') }),
        Dialog.warnButton({ label: trans.__('Cancel run') })
      ]
    });
    if (answer.button.accept) {
      await act(() => api.cancel(workflowId), trans.__('Cancellation requested'));
    }
  };

  const fork = async (): Promise<void> => {
    if (selected === null || !run) {
      return;
    }
    const body = new FormDialogBody(null, run.input, true, trans.__('New run id (optional)'));
    const answer = await showDialog({
      title: trans.__('Fork %1 from step %2', workflowId, selected),
      body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: trans.__('Fork') })]
    });
    if (!answer.button.accept || !answer.value) {
      return;
    }
    const typed = answer.value.form.data;
    const options: { workflowId?: string; input?: Json } = {};
    if (answer.value.workflowId) {
      options.workflowId = answer.value.workflowId;
    }
    if (typeof typed === 'string' && typed.trim() && typed !== JSON.stringify(run.input, null, 2)) {
      const value = formValue(answer.value.form);
      if ('error' in value) {
        Notification.error(value.error, { autoClose: 8000 });
        return;
      }
      options.input = value.value;
    }
    await act(() => api.fork(workflowId, selected, options), trans.__('Forked'));
  };

  const startAgain = async (): Promise<void> => {
    if (!run) {
      return;
    }
    const definitions = await api.listWorkflows().catch(() => []);
    const definition = definitions.find(d => d.name === run.kind);
    const body = new FormDialogBody(
      definition?.inputSchema ?? null,
      run.input,
      true,
      trans.__('New run id (optional)')
    );
    const answer = await showDialog({
      title: trans.__('Start %1 again', run.kind),
      body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: trans.__('Start') })]
    });
    if (!answer.button.accept || !answer.value) {
      return;
    }
    const value = formValue(answer.value.form);
    if ('error' in value) {
      Notification.error(value.error, { autoClose: 8000 });
      return;
    }
    const id = answer.value.workflowId || undefined;
    await act(() => api.startWorkflow(run.kind, value.value, { workflowId: id }), trans.__('Started'));
  };

  if (!run) {
    return (
      <div className="jp-FlovynRunView">
        {error ? <div className="jp-FlovynError">{error}</div> : trans.__('Loading…')}
      </div>
    );
  }
  const tabs: [Tab, string][] = [
    ['timeline', trans.__('Timeline')],
    ['events', trans.__('Events (%1)', run.events.length)],
    ['logs', trans.__('Logs (%1)', logs.length)],
    ['io', trans.__('Input / output')],
    ['source', trans.__('Source')]
  ];
  const terminal = TERMINAL.has(run.status);
  return (
    <div className="jp-FlovynRunView" data-workflow-id={workflowId} data-status={run.status}>
      <div className="jp-FlovynRunHeader">
        <StatusChip status={run.status} />
        <h2>{run.workflowId}</h2>
        <span className="jp-FlovynMuted">
          {run.kind} · {trans.__('started %1', timeAgo(run.createdAt))} ·{' '}
          {formatDuration(run.durationMs)}
          {run.queue ? ` · ${run.queue}` : ''}
        </span>
      </div>
      {run.waitingFor.length > 0 && (
        <div className="jp-FlovynWaiting">
          {trans.__('Waiting for: %1', run.waitingFor.join(', '))}
        </div>
      )}
      {run.error && (
        <details className="jp-FlovynError">
          <summary>
            {run.error.type}: {run.error.message}
          </summary>
          <pre>{run.error.traceback}</pre>
        </details>
      )}
      {error && <div className="jp-FlovynError">{error}</div>}
      <div className="jp-FlovynButtons">
        <button
          className="jp-Button jp-mod-styled jp-mod-warn jp-FlovynCancel"
          disabled={terminal}
          onClick={() => void cancel()}
        >
          {trans.__('Cancel')}
        </button>
        <button
          className="jp-Button jp-mod-styled jp-FlovynRetry"
          disabled={run.status !== 'FAILED' && run.status !== 'CANCELLED'}
          onClick={() => void act(() => api.retry(workflowId), trans.__('Retry started'))}
        >
          {trans.__('Retry')}
        </button>
        <button
          className="jp-Button jp-mod-styled jp-FlovynFork"
          disabled={selected === null}
          title={trans.__('Select a step in the timeline first')}
          onClick={() => void fork()}
        >
          {selected === null
            ? trans.__('Fork from a step')
            : trans.__('Fork from step %1', selected)}
        </button>
        <button
          className="jp-Button jp-mod-styled jp-FlovynStartAgain"
          onClick={() => void startAgain()}
        >
          {trans.__('Start again…')}
        </button>
      </div>
      <div className="jp-FlovynTabs" role="tablist">
        {tabs.map(([id, label]) => (
          <button
            key={id}
            role="tab"
            aria-selected={tab === id}
            className={`jp-FlovynTab${tab === id ? ' jp-mod-active' : ''}`}
            onClick={() => setTab(id)}
          >
            {label}
          </button>
        ))}
      </div>
      <div className="jp-FlovynTabBody">
        {tab === 'timeline' && (
          <>
            <Lineage ctx={ctx} run={run} />
            <Timeline ctx={ctx} run={run} selected={selected} onSelect={setSelected} />
          </>
        )}
        {tab === 'events' && (
          <table className="jp-FlovynEvents">
            <tbody>
              {run.events.map(ev => (
                <tr key={ev.seq}>
                  <td>{ev.seq}</td>
                  <td>{ev.type}</td>
                  <td className="jp-FlovynMuted">{ev.ts}</td>
                  <td>
                    <code>{JSON.stringify(ev.payload)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {tab === 'logs' && (
          <pre className="jp-FlovynLogs">
            {logs.map(l => `${l.ts} ${l.level} ${l.step ?? ''} ${l.text}`).join('\n')}
          </pre>
        )}
        {tab === 'io' && (
          <div>
            <h4>{trans.__('Input')}</h4>
            <JsonView value={run.input} />
            <h4>{trans.__('Output')}</h4>
            <JsonView value={run.output} />
          </div>
        )}
        {tab === 'source' && (
          <pre className="jp-FlovynSource">{run.source ?? trans.__('Source not recorded.')}</pre>
        )}
      </div>
    </div>
  );
}

/** Makes the main-area widget of one run. */
export function createRunView(ctx: FlovynContext, workflowId: string): MainAreaWidget {
  const content = ReactWidget.create(<RunViewBody ctx={ctx} workflowId={workflowId} />);
  content.addClass('jp-FlovynRunViewContent');
  const widget = new MainAreaWidget({ content });
  widget.id = `flovyn-run-${workflowId}`;
  widget.title.label = workflowId;
  widget.title.caption = ctx.trans.__('Flovyn run %1', workflowId);
  widget.title.closable = true;
  return widget;
}
