/**
 * flovyn-nb's JupyterLab extension: the runs sidebar with the promise inbox, run views,
 * the start form, metrics, notifications when a promise starts waiting, and commands.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, InputDialog, MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { FlovynApi, PendingPromise, Requester } from './api';
import { CommandIDs, DEFAULT_SETTINGS, FlovynContext, FlovynSettings } from './context';
import { FeedEvent, LiveFeed } from './feed';
import { createMetricsPanel } from './metrics';
import { createRunView } from './runview';
import { quickAnswers } from './schemaform';
import { FlovynSidebar } from './sidebar';
import { createStartPanel } from './start';
import { ensureWidgetStateSaved } from './widgetstate';

const PLUGIN_ID = 'flovyn-nb:plugin';
const API_PATH = 'flovyn-nb/api';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
<path class="jp-icon3" fill="#616161" d="M4 5h6v4H4zM14 5h6v4h-6zM9 15h6v4H9zM7 9v3h10V9h-1.5v1.5h-7V9zM11.25 12h1.5v3h-1.5z"/>
</svg>`;

export const flovynIcon = new LabIcon({ name: 'flovyn-nb:runs', svgstr: ICON_SVG });

/** A Requester that goes through Jupyter's ServerConnection (token and XSRF handled). */
function makeRequester(settings: ServerConnection.ISettings): Requester {
  return (path, init) =>
    ServerConnection.makeRequest(URLExt.join(settings.baseUrl, API_PATH, path), init, settings);
}

/** The live feed's URL (EventSource cannot send headers: the token goes in the query). */
function feedUrl(settings: ServerConnection.ISettings): string {
  const url = URLExt.join(settings.baseUrl, API_PATH, 'events');
  return settings.token ? `${url}?token=${encodeURIComponent(settings.token)}` : url;
}

function safeId(workflowId: string): string {
  return `flovyn-run-${workflowId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Every flovyn_nb run in a sidebar, a promise inbox, run views and metrics.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ICommandPalette, ILayoutRestorer, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('flovyn_nb');
    const serverSettings = ServerConnection.makeSettings();
    const settings: FlovynSettings = { ...DEFAULT_SETTINGS };
    const api = new FlovynApi(makeRequester(serverSettings));
    const feed = new LiveFeed(feedUrl(serverSettings));
    const ctx: FlovynContext = { api, feed, trans, commands: app.commands, settings };

    const sidebar = new FlovynSidebar(ctx);
    sidebar.title.icon = flovynIcon;
    shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, 'flovyn-nb-sidebar');

    const openViews = new Map<string, MainAreaWidget>();
    const openRun = (workflowId: string): MainAreaWidget => {
      const existing = openViews.get(workflowId);
      if (existing && !existing.isDisposed) {
        shell.activateById(existing.id);
        return existing;
      }
      const view = createRunView(ctx, workflowId);
      view.id = safeId(workflowId);
      openViews.set(workflowId, view);
      view.disposed.connect(() => openViews.delete(workflowId));
      shell.add(view, 'main');
      shell.activateById(view.id);
      return view;
    };

    app.commands.addCommand(CommandIDs.openSidebar, {
      label: trans.__('Flovyn: Show runs'),
      execute: () => shell.activateById(sidebar.id)
    });
    app.commands.addCommand(CommandIDs.openRun, {
      label: trans.__('Flovyn: Open run by id…'),
      execute: async args => {
        let workflowId = args.workflowId as string | undefined;
        if (!workflowId) {
          const answer = await InputDialog.getText({ title: trans.__('Run id') });
          workflowId = answer.button.accept ? answer.value?.trim() : undefined;
        }
        if (workflowId) {
          openRun(workflowId);
        }
      }
    });
    app.commands.addCommand(CommandIDs.startWorkflow, {
      label: trans.__('Flovyn: Start a workflow…'),
      execute: args => {
        const panel = createStartPanel(ctx, args.name as string | undefined);
        shell.add(panel, 'main');
        shell.activateById(panel.id);
      }
    });
    app.commands.addCommand(CommandIDs.openMetrics, {
      label: trans.__('Flovyn: Metrics'),
      execute: () => {
        const panel = createMetricsPanel(ctx);
        shell.add(panel, 'main');
        shell.activateById(panel.id);
      }
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: trans.__('Flovyn: Refresh runs'),
      execute: () => sidebar.refresh()
    });
    if (palette) {
      const category = trans.__('Flovyn');
      for (const command of Object.values(CommandIDs)) {
        palette.addItem({ command, category });
      }
    }

    // A promise that starts waiting, in any process: tell the user even when the notebook
    // that started the run is closed. The feed names the promise; its schema comes from
    // GET promises, so the one-click answers match what the server will validate.
    const notified = new Set<string>();
    const notify = async (event: FeedEvent): Promise<void> => {
      if (!settings.notifyOnPromise || !event.workflowId || !event.name) {
        return;
      }
      const key = `${event.workflowId}\u0000${event.name}`;
      if (notified.has(key)) {
        return;
      }
      notified.add(key);
      let pending: PendingPromise | undefined;
      try {
        pending = (await api.listPromises()).find(
          p => p.workflowId === event.workflowId && p.name === event.name
        );
      } catch {
        pending = undefined;
      }
      const workflowId = event.workflowId;
      const name = event.name;
      const actions: Notification.IAction[] = [
        { label: trans.__('Open'), callback: () => openRun(workflowId) }
      ];
      for (const answer of quickAnswers(pending?.schema) ?? []) {
        actions.push({
          label: answer.label,
          displayType: 'accent',
          callback: () => {
            api.resolvePromise(workflowId, name, answer.value).catch(error => {
              Notification.error(String(error.message ?? error), { autoClose: 8000 });
            });
          }
        });
      }
      Notification.info(trans.__('%1 is waiting for "%2"', workflowId, name), {
        autoClose: false,
        actions
      });
    };
    feed.subscribe(event => {
      if (event.type === 'promise-waiting') {
        void notify(event);
      }
    });

    const applySettings = (loaded: ISettingRegistry.ISettings): void => {
      const composite = loaded.composite as Partial<FlovynSettings>;
      Object.assign(settings, DEFAULT_SETTINGS, composite);
    };
    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(loaded => {
          applySettings(loaded);
          loaded.changed.connect(applySettings);
        })
        .catch(error => console.warn('flovyn-nb: settings not loaded', error));
      // Panels saved in a notebook show their last state after the kernel is gone.
      void ensureWidgetStateSaved(settingRegistry).then(outcome =>
        console.info(`flovyn-nb: widget manager saveState: ${outcome}`)
      );
    }

    feed.start();
    // For the browser tests and the console: the shared client and feed.
    (window as any).flovynNb = { api, feed, openRun, activatedAt: performance.now() };
  }
};

export default plugin;
