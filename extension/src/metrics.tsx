/** Metrics: step duration distributions, failure rates per workflow, runs per day (SVG). */
import * as React from 'react';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Metrics } from './api';
import { FlovynContext } from './context';
import {
  durationDomain,
  formatDuration,
  linearScale,
  logScale,
  logTicks,
  niceTicks,
  stackRunsPerDay,
  windowDays
} from './plots';

const WIDTH = 640;
const LABEL = 220;
const ROW = 22;
const PALETTE = 6;

/**
 * One row per step: the histogram of its durations on a log scale (bars: how many steps
 * took that long), with ticks at p50, p90 and p99.
 */
function StepDurations(props: { data: Metrics['stepDurations'] }): JSX.Element {
  const rows = props.data;
  const [low, high] = durationDomain(rows);
  const x = logScale([low, high], [LABEL, WIDTH - 10]);
  const ticks = logTicks(low, high);
  const height = rows.length * ROW + 30;
  return (
    <svg className="jp-FlovynPlot jp-FlovynDurations" width={WIDTH} height={height} role="img">
      {ticks.map(t => (
        <g key={t}>
          <line className="jp-FlovynGrid" x1={x(t)} x2={x(t)} y1={0} y2={height - 20} />
          <text className="jp-FlovynTick" x={x(t)} y={height - 6} textAnchor="middle">
            {formatDuration(t)}
          </text>
        </g>
      ))}
      {rows.map((r, i) => {
        const buckets = r.histogram ?? [];
        const most = Math.max(1, ...buckets.map(b => b.count));
        const marks: [string, number | undefined][] = [
          ['p50', r.p50Ms],
          ['p90', r.p90Ms],
          ['p99', r.p99Ms]
        ];
        return (
          <g
            key={`${r.workflow}/${r.step}`}
            className="jp-FlovynDurationRow"
            data-step={`${r.workflow}/${r.step}`}
            data-count={r.count}
            transform={`translate(0, ${i * ROW})`}
          >
            <title>
              {`${r.workflow} / ${r.step}${r.kind === 'child' ? ' (child run)' : ''}: ` +
                `${r.count} steps, p50 ${formatDuration(r.p50Ms)}, p90 ${formatDuration(r.p90Ms)}` +
                (r.p99Ms !== undefined ? `, p99 ${formatDuration(r.p99Ms)}` : '') +
                (r.maxMs !== undefined ? `, max ${formatDuration(r.maxMs)}` : '')}
            </title>
            <text className="jp-FlovynLabel" x={LABEL - 6} y={ROW / 2 + 4} textAnchor="end">
              {`${r.workflow} / ${r.step}`}
            </text>
            {buckets.map(b => {
              const barHeight = Math.max(1, ((ROW - 6) * b.count) / most);
              return (
                <rect
                  key={b.upToMs}
                  className="jp-FlovynRange"
                  x={x(b.upToMs / 2)}
                  width={Math.max(1, x(b.upToMs) - x(b.upToMs / 2) - 1)}
                  y={ROW - 3 - barHeight}
                  height={barHeight}
                />
              );
            })}
            {marks.map(([name, value]) =>
              value === undefined ? null : (
                <line
                  key={name}
                  className={`jp-FlovynMark jp-FlovynMark-${name}`}
                  x1={x(value)}
                  x2={x(value)}
                  y1={2}
                  y2={ROW - 2}
                />
              )
            )}
          </g>
        );
      })}
    </svg>
  );
}

function FailureRates(props: { data: Metrics['failureRates'] }): JSX.Element {
  const rows = props.data;
  const x = linearScale([0, 1], [LABEL, WIDTH - 60]);
  return (
    <svg className="jp-FlovynPlot" width={WIDTH} height={rows.length * ROW + 10} role="img">
      {rows.map((r, i) => (
        <g key={r.workflow} transform={`translate(0, ${i * ROW})`}>
          <title>{`${r.workflow}: ${r.failed} of ${r.runs} failed`}</title>
          <text className="jp-FlovynLabel" x={LABEL - 6} y={ROW / 2 + 4} textAnchor="end">
            {r.workflow}
          </text>
          <rect className="jp-FlovynTrack" x={x(0)} y={5} width={x(1) - x(0)} height={ROW - 10} />
          <rect className="jp-FlovynFail" x={x(0)} y={5} width={x(r.rate) - x(0)} height={ROW - 10} />
          <text className="jp-FlovynTick" x={x(1) + 6} y={ROW / 2 + 4}>
            {`${(r.rate * 100).toFixed(1)} %`}
          </text>
        </g>
      ))}
    </svg>
  );
}

function RunsPerDay(props: { data: Metrics['runsPerDay']; allDays: string[] }): JSX.Element {
  const { days, workflows, counts, maxTotal } = stackRunsPerDay(props.data, props.allDays);
  const height = 200;
  const ticks = niceTicks(Math.max(maxTotal, 4)); // counts: whole-number ticks
  const y = linearScale([0, ticks[ticks.length - 1] || 1], [height - 30, 10]);
  const band = days.length ? (WIDTH - 50) / days.length : 0;
  const labelEvery = Math.max(1, Math.ceil(days.length / 14)); // labels that do not overlap
  return (
    <div>
      <svg className="jp-FlovynPlot" width={WIDTH} height={height} role="img">
        {ticks.map(t => (
          <g key={t}>
            <line className="jp-FlovynGrid" x1={40} x2={WIDTH} y1={y(t)} y2={y(t)} />
            <text className="jp-FlovynTick" x={34} y={y(t) + 4} textAnchor="end">
              {t}
            </text>
          </g>
        ))}
        {days.map((day, i) => {
          let base = 0;
          return (
            <g key={day} transform={`translate(${45 + i * band}, 0)`}>
              {workflows.map((wf, k) => {
                const count = counts.get(day)!.get(wf) ?? 0;
                const top = y(base + count);
                const rect = (
                  <rect
                    key={wf}
                    className={`jp-FlovynSeries-${k % PALETTE}`}
                    x={1}
                    width={Math.max(1, band - 2)}
                    y={top}
                    height={y(base) - top}
                  >
                    <title>{`${day} ${wf}: ${count}`}</title>
                  </rect>
                );
                base += count;
                return rect;
              })}
              {i % labelEvery === 0 && (
                <text className="jp-FlovynTick" x={band / 2} y={height - 14} textAnchor="middle">
                  {day.slice(5)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <div className="jp-FlovynLegend">
        {workflows.map((wf, k) => (
          <span key={wf}>
            <i className={`jp-FlovynSwatch jp-FlovynSeries-${k % PALETTE}`} /> {wf}
          </span>
        ))}
      </div>
    </div>
  );
}

function MetricsBody(props: { ctx: FlovynContext }): JSX.Element {
  const { ctx } = props;
  const { trans } = ctx;
  const [days, setDays] = React.useState(ctx.settings.metricsDays);
  const [data, setData] = React.useState<Metrics | null>(null);
  const [error, setError] = React.useState('');
  React.useEffect(() => {
    ctx.api.metrics(days).then(
      m => {
        setData(m);
        setError('');
      },
      e => setError(e.message)
    );
  }, [days]);
  return (
    <div className="jp-FlovynPanel jp-FlovynMetrics">
      <h2>{trans.__('Metrics')}</h2>
      <label className="jp-FlovynField">
        {trans.__('Days')}
        <select className="jp-mod-styled" value={days} onChange={e => setDays(Number(e.target.value))}>
          {[1, 7, 14, 30, 90].map(d => (
            <option key={d} value={d}>
              {d}
            </option>
          ))}
        </select>
      </label>
      {error && <div className="jp-FlovynError">{error}</div>}
      {data && (
        <>
          <div className="jp-FlovynMuted jp-FlovynMetricsSummary">
            {trans._n(
              '%1 run since %2 (UTC), all counted',
              '%1 runs since %2 (UTC), all counted',
              data.runs ?? 0,
              (data.since ?? '').slice(0, 10)
            )}
          </div>
          <h3>
            {trans.__('Step durations (bars: how many steps took that long; ticks: p50, p90, p99)')}
          </h3>
          {data.stepDurations.length ? <StepDurations data={data.stepDurations} /> : trans.__('No step yet.')}
          <h3>{trans.__('Failure rate per workflow')}</h3>
          {data.failureRates.length ? <FailureRates data={data.failureRates} /> : trans.__('No run yet.')}
          <h3>{trans.__('Runs per day')}</h3>
          {data.runsPerDay.length ? <RunsPerDay data={data.runsPerDay} allDays={windowDays(data.since, data.days ?? days)} /> : trans.__('No run yet.')}
        </>
      )}
    </div>
  );
}

/** Makes the metrics panel. */
export function createMetricsPanel(ctx: FlovynContext): MainAreaWidget {
  const content = ReactWidget.create(<MetricsBody ctx={ctx} />);
  const widget = new MainAreaWidget({ content });
  widget.id = 'flovyn-metrics';
  widget.title.label = ctx.trans.__('Flovyn metrics');
  widget.title.closable = true;
  return widget;
}
