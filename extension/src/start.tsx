/** "Start a workflow": pick a registered workflow, fill its input form, start it. */
import * as React from 'react';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { WorkflowDefinition } from './api';
import { FormState, SchemaForm, formValue, initialForm } from './components';
import { CommandIDs, FlovynContext } from './context';

function StartBody(props: { ctx: FlovynContext; initial?: string }): JSX.Element {
  const { ctx } = props;
  const { trans } = ctx;
  const [definitions, setDefinitions] = React.useState<WorkflowDefinition[] | null>(null);
  const [name, setName] = React.useState(props.initial ?? '');
  const [form, setForm] = React.useState<FormState | null>(null);
  const [workflowId, setWorkflowId] = React.useState('');
  const [queue, setQueue] = React.useState('');
  const [error, setError] = React.useState('');
  const [started, setStarted] = React.useState('');
  const [busy, setBusy] = React.useState(false);

  React.useEffect(() => {
    ctx.api.listWorkflows().then(
      list => {
        setDefinitions(list);
        if (!name && list.length) {
          setName(list[0].name);
        }
      },
      e => setError(String(e.message ?? e))
    );
  }, []);
  const definition = definitions?.find(d => d.name === name);
  React.useEffect(() => {
    setForm(definition ? initialForm(definition.inputSchema) : null);
    setError('');
  }, [definition?.name]);

  const start = async (): Promise<void> => {
    if (!definition || !form) {
      return;
    }
    const value = formValue(form);
    if ('error' in value) {
      setError(value.error);
      return;
    }
    setBusy(true);
    try {
      const result = await ctx.api.startWorkflow(definition.name, value.value, {
        workflowId: workflowId.trim() || undefined,
        queue: queue.trim() || undefined
      });
      setError('');
      setStarted(result.workflowId);
      void ctx.commands.execute(CommandIDs.openRun, { workflowId: result.workflowId });
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  if (definitions === null) {
    return <div className="jp-FlovynPanel">{error || trans.__('Loading…')}</div>;
  }
  return (
    <div className="jp-FlovynPanel jp-FlovynStart">
      <h2>{trans.__('Start a workflow')}</h2>
      {definitions.length === 0 && (
        <div className="jp-FlovynMuted">
          {trans.__('No workflow is registered yet: define one with @fn.workflow in a notebook or a worker.')}
        </div>
      )}
      <label className="jp-FlovynField">
        {trans.__('Workflow')}
        <select
          className="jp-mod-styled jp-FlovynWorkflowPick"
          value={name}
          onChange={e => setName(e.target.value)}
        >
          {definitions.map(d => (
            <option key={d.name} value={d.name}>
              {d.name}
              {d.version ? ` (${d.version})` : ''}
              {d.served ? '' : ` — ${trans.__('not served')}`}
            </option>
          ))}
        </select>
      </label>
      {definition?.description && <p className="jp-FlovynMuted">{definition.description}</p>}
      {definition && !definition.served && (
        <div className="jp-FlovynWarning">
          {trans.__('No kernel or worker serves this workflow now: the run waits until one does.')}
        </div>
      )}
      {form && <SchemaForm state={form} onChange={setForm} idPrefix="flovyn-start" />}
      <label className="jp-FlovynField">
        {trans.__('Run id (optional)')}
        <input
          className="jp-mod-styled jp-FlovynStartId"
          value={workflowId}
          onChange={e => setWorkflowId(e.target.value)}
        />
      </label>
      <label className="jp-FlovynField">
        {trans.__('Queue (optional)')}
        <input className="jp-mod-styled" value={queue} onChange={e => setQueue(e.target.value)} />
      </label>
      <button
        className="jp-Button jp-mod-styled jp-mod-accept jp-FlovynStartSubmit"
        disabled={!definition || busy}
        onClick={() => void start()}
      >
        {trans.__('Start')}
      </button>
      {error && <div className="jp-FlovynError">{error}</div>}
      {started && (
        <div className="jp-FlovynSuccess" data-started={started}>
          {trans.__('Started %1', started)}
        </div>
      )}
    </div>
  );
}

/** Makes the "Start a workflow" panel. */
export function createStartPanel(ctx: FlovynContext, initial?: string): MainAreaWidget {
  const content = ReactWidget.create(<StartBody ctx={ctx} initial={initial} />);
  const widget = new MainAreaWidget({ content });
  widget.id = 'flovyn-start';
  widget.title.label = ctx.trans.__('Start a workflow');
  widget.title.closable = true;
  return widget;
}
