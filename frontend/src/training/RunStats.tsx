import type { Job } from "../api/types";
import type { MetricSeries } from "./metrics";
import { runStats } from "./runStats";

interface RunStatsProps {
  job: Pick<Job, "status" | "config" | "result" | "started_at" | "finished_at" | "queue_position">;
  status: Job["status"];
  progress: number;
  message: string | null | undefined;
  metrics: MetricSeries;
  now?: number;
}

/** A training run's figures beside its curves: time per iteration, data wait, memory, lr, time left, iteration. */
export function RunStats(props: RunStatsProps) {
  const { empty, stats } = runStats(props);
  return (
    <div className="run-stats" data-testid="run-stats">
      <h3 className="run-stats__title">This run</h3>
      {empty ? (
        <p className="muted small run-stats__empty" data-testid="run-stats-empty">
          {empty}
        </p>
      ) : null}
      {stats.length ? (
        <dl className="run-stats__list">
          {stats.map((s) => (
            <div className="run-stats__row" key={s.key}>
              <dt className="run-stats__label">{s.label}</dt>
              <dd className="run-stats__value" data-testid={`stat-${s.key}`}>
                {s.value}
                {s.note ? <span className="run-stats__note"> {s.note}</span> : null}
              </dd>
            </div>
          ))}
        </dl>
      ) : null}
    </div>
  );
}
