/** What every view of the extension shares: the API client, the live feed, the strings. */
import type { CommandRegistry } from '@lumino/commands';
import type { TranslationBundle } from '@jupyterlab/translation';
import type { FlovynApi } from './api';
import type { LiveFeed } from './feed';

export interface FlovynSettings {
  pageSize: number;
  notifyOnPromise: boolean;
  metricsDays: number;
}

export const DEFAULT_SETTINGS: FlovynSettings = {
  pageSize: 50,
  notifyOnPromise: true,
  metricsDays: 14
};

export interface FlovynContext {
  api: FlovynApi;
  feed: LiveFeed;
  trans: TranslationBundle;
  commands: CommandRegistry;
  settings: FlovynSettings;
}

/** The command ids (also the palette's entries). */
export namespace CommandIDs {
  export const openSidebar = 'flovyn-nb:open-sidebar';
  export const openRun = 'flovyn-nb:open-run';
  export const startWorkflow = 'flovyn-nb:start-workflow';
  export const openMetrics = 'flovyn-nb:open-metrics';
  export const refresh = 'flovyn-nb:refresh';
}
