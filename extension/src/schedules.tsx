/**
 * The sidebar's "Schedules" section: every cron schedule of the store with its next fire
 * time (relative and absolute), and Pause / Resume.
 */
import * as React from 'react';
import { Schedule } from './api';
import { FlovynContext } from './context';
import { FeedEvent } from './feed';
import { firedBySchedule, localTime, soonestFire, sortSchedules, untilText } from './schedtime';

const CLOCK_MS = 15_000; // how often the relative times ("in 5 min") are redrawn

function ScheduleRow(props: {
  ctx: FlovynContext;
  schedule: Schedule;
  now: number;
  onChanged: (schedule: Schedule) => void;
  onError: (message: string) => void;
}): JSX.Element {
  const { ctx, schedule, now } = props;
  const { trans } = ctx;
  const [busy, setBusy] = React.useState(false);
  const toggle = async (): Promise<void> => {
    setBusy(true);
    try {
      props.onChanged(await ctx.api.setSchedulePaused(schedule.name, !schedule.paused));
      props.onError('');
    } catch (e) {
      props.onError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <li
      className="jp-FlovynScheduleRow"
      data-name={schedule.name}
      data-paused={schedule.paused ? 'true' : 'false'}
    >
      <div className="jp-FlovynScheduleHead">
        <span className="jp-FlovynScheduleName">{schedule.name}</span>
        <span className="jp-FlovynMuted">{schedule.workflow}</span>
        <code className="jp-FlovynCron" title={trans.__('cron, in UTC')}>
          {schedule.cron}
        </code>
      </div>
      <div className="jp-FlovynScheduleNext">
        {schedule.paused ? (
          <span className="jp-FlovynChip jp-FlovynChip-paused">{trans.__('paused')}</span>
        ) : (
          <span
            className="jp-FlovynNextFire"
            title={trans.__('next fire: %1 (UTC)', schedule.nextFire ?? '')}
          >
            {trans.__('next %1', untilText(schedule.nextFire, now))}
            <span className="jp-FlovynMuted"> · {localTime(schedule.nextFire)}</span>
          </span>
        )}
        <button
          className="jp-Button jp-mod-styled jp-FlovynSchedulePause"
          disabled={busy}
          onClick={() => void toggle()}
        >
          {schedule.paused ? trans.__('Resume') : trans.__('Pause')}
        </button>
      </div>
    </li>
  );
}

/** The section; `tick` changes when the sidebar is refreshed. */
export function SchedulesSection(props: { ctx: FlovynContext; tick: number }): JSX.Element {
  const { ctx } = props;
  const { trans } = ctx;
  const [schedules, setSchedules] = React.useState<Schedule[]>([]);
  const [error, setError] = React.useState('');
  const [now, setNow] = React.useState(Date.now());
  const loading = React.useRef(false);

  const load = React.useCallback(async () => {
    if (loading.current) {
      return;
    }
    loading.current = true;
    try {
      setSchedules(sortSchedules(await ctx.api.listSchedules()));
      setError('');
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      loading.current = false;
    }
  }, []);

  React.useEffect(() => void load(), [props.tick]);
  // A schedule that fires starts run `sched-<name>-<slot>`: that run's first news is the
  // cue to re-read (other runs' news leave schedules as they are: no request for them).
  React.useEffect(
    () =>
      ctx.feed.subscribe((event: FeedEvent) => {
        if (firedBySchedule(event)) {
          void load();
        }
      }),
    []
  );
  React.useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), CLOCK_MS);
    return () => clearInterval(timer);
  }, []);
  // Past a fire time, read again for the next one (whichever engine fired it).
  const soonest = soonestFire(schedules);
  React.useEffect(() => {
    if (soonest !== null && now >= soonest) {
      void load();
    }
  }, [now, soonest]);

  return (
    <section className="jp-FlovynSchedules">
      <h3 className="jp-FlovynSectionTitle">
        {trans.__('Schedules')} <span className="jp-FlovynCount">{schedules.length}</span>
      </h3>
      {error && <div className="jp-FlovynError">{error}</div>}
      {schedules.length === 0 && !error && (
        <div className="jp-FlovynMuted">{trans.__('No schedule.')}</div>
      )}
      <ul className="jp-FlovynScheduleList">
        {schedules.map(s => (
          <ScheduleRow
            key={s.name}
            ctx={ctx}
            schedule={s}
            now={now}
            onChanged={changed =>
              setSchedules(list => sortSchedules(list.map(x => (x.name === changed.name ? changed : x))))
            }
            onError={setError}
          />
        ))}
      </ul>
    </section>
  );
}
