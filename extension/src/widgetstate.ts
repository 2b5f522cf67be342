/**
 * Saved notebooks keep their run panels: JupyterLab's widget manager stores widget state
 * in the notebook only when its `saveState` setting is true. Without it, a notebook
 * reopened after its kernel is gone says "Error displaying widget: model not found"
 * instead of showing the panel's last (disconnected) state.
 */
import type { ISettingRegistry } from '@jupyterlab/settingregistry';

export const WIDGET_MANAGER_PLUGIN = '@jupyter-widgets/jupyterlab-manager:plugin';

/** The part of the setting registry this needs (a fake suffices in tests). */
export type SettingLoader = Pick<ISettingRegistry, 'load'>;

/**
 * Turn the widget manager's `saveState` on, unless the user turned it off on purpose.
 *
 * Never throws: a missing widget manager (ipywidgets not installed) is only logged.
 *
 * @returns what was done: 'set', 'already' (already true), 'kept-off' (the user's own
 *   false is respected) or 'missing' (no widget manager settings to change).
 */
export async function ensureWidgetStateSaved(
  registry: SettingLoader,
  log: (message: string, error?: unknown) => void = console.warn
): Promise<'set' | 'already' | 'kept-off' | 'missing'> {
  let loaded: ISettingRegistry.ISettings;
  try {
    loaded = await registry.load(WIDGET_MANAGER_PLUGIN);
  } catch (error) {
    log('flovyn-nb: no widget manager settings; saved panels need its saveState', error);
    return 'missing';
  }
  try {
    if (loaded.composite.saveState === true) {
      return 'already';
    }
    if ((loaded.user as { saveState?: unknown }).saveState === false) {
      return 'kept-off';
    }
    await loaded.set('saveState', true);
    return 'set';
  } catch (error) {
    log('flovyn-nb: could not turn on the widget manager saveState', error);
    return 'missing';
  }
}
