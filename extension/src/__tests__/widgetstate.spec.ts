import { describe, expect, it } from 'vitest';
import { ensureWidgetStateSaved, SettingLoader, WIDGET_MANAGER_PLUGIN } from '../widgetstate';

function fakeRegistry(user: Record<string, unknown>, composite: Record<string, unknown>) {
  const writes: Array<[string, unknown]> = [];
  const loads: string[] = [];
  const registry = {
    load: async (id: string) => {
      loads.push(id);
      return {
        user,
        composite,
        set: async (key: string, value: unknown) => {
          writes.push([key, value]);
        }
      };
    }
  } as unknown as SettingLoader;
  return { registry, writes, loads };
}

describe('ensureWidgetStateSaved', () => {
  it('turns saveState on when it is at its default', async () => {
    const { registry, writes, loads } = fakeRegistry({}, { saveState: false });
    expect(await ensureWidgetStateSaved(registry)).toBe('set');
    expect(loads).toEqual([WIDGET_MANAGER_PLUGIN]);
    expect(writes).toEqual([['saveState', true]]);
  });

  it('leaves a true saveState and a user false alone', async () => {
    const on = fakeRegistry({}, { saveState: true });
    expect(await ensureWidgetStateSaved(on.registry)).toBe('already');
    const off = fakeRegistry({ saveState: false }, { saveState: false });
    expect(await ensureWidgetStateSaved(off.registry)).toBe('kept-off');
    expect([...on.writes, ...off.writes]).toEqual([]);
  });

  it('logs and does not throw when the widget manager is missing', async () => {
    const logged: string[] = [];
    const registry = {
      load: async () => {
        throw new Error('No setting schema');
      }
    } as unknown as SettingLoader;
    const result = await ensureWidgetStateSaved(registry, message => logged.push(message));
    expect(result).toBe('missing');
    expect(logged).toHaveLength(1);
  });
});
