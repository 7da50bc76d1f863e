import { useQueries } from "@tanstack/react-query";
import { useMemo } from "react";
import { Link, useSearchParams } from "react-router";
import { errorMessage } from "../api/errors";
import { fetchJob, fetchMetrics, trainingKeys } from "../api/training";
import { Loading } from "../components/Loading";
import { StatusBadge } from "../components/StatusBadge";
import { Chart, PALETTE } from "../training/Chart";
import { diffConfigs, showValue } from "../training/configDiff";
import { mergePoints, type MetricSeries } from "../training/metrics";
import { ModelChangesCard } from "../training/ModelChanges";
import { jobTitle, jobTone } from "./JobsPage";

export function parseIds(raw: string | null): number[] {
  return [...new Set((raw ?? "").split(",").map((s) => Number(s.trim())).filter((n) => Number.isInteger(n) && n > 0))];
}

/** The curves worth overlaying: losses first, then every validation metric the runs logged, then the rate. */
export function comparedNames(series: MetricSeries[]): string[] {
  const names = new Set(series.flatMap((s) => [...s.keys()]));
  const val = [...names].filter((n) => n.startsWith("val/") && n !== "val/loss" && n !== "val/samples").sort();
  return [
    ...["train/loss", "val/loss"].filter((n) => names.has(n)),
    ...val,
    ...["train/lr"].filter((n) => names.has(n)),
  ];
}

export function ComparePage() {
  const [params] = useSearchParams();
  const ids = parseIds(params.get("ids"));
  const jobs = useQueries({
    queries: ids.map((id) => ({ queryKey: trainingKeys.job(id), queryFn: () => fetchJob(id) })),
  });
  const metrics = useQueries({
    queries: ids.map((id) => ({
      queryKey: trainingKeys.jobMetrics(id, ""),
      queryFn: () => fetchMetrics(id),
      refetchInterval: 5000,
    })),
  });
  const series: MetricSeries[] = useMemo(
    () => metrics.map((m) => mergePoints(new Map(), m.data ?? [])),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [metrics.map((m) => m.dataUpdatedAt).join(",")],
  );
  const compared = useMemo(() => comparedNames(series), [series]);
  // Until every run's metrics are in, a chart would draw some runs and not others: say whose are coming.
  const waiting = ids.filter((_, i) => metrics[i]?.isPending);
  const loaded = jobs.every((j) => j.data);
  const diff = useMemo(() => (loaded ? diffConfigs(jobs.map((j) => j.data!.config)) : []), [loaded, jobs]);
  // Two finished runs that made models: what the second's fixed and broke against the first's.
  const models = jobs.map((j) => (j.data?.result as { model_id?: number } | null | undefined)?.model_id ?? null);

  if (ids.length === 0) {
    return (
      <section className="page">
        <h1>Compare runs</h1>
        <p className="muted">
          Select runs with the checkboxes on the <Link to="/jobs">Jobs</Link> page.
        </p>
      </section>
    );
  }

  return (
    <section className="page page--wide" data-testid="compare-page">
      <p className="breadcrumb">
        <Link to="/jobs">Jobs</Link> /
      </p>
      <h1>Compare runs</h1>
      <div className="card">
        <ul className="compare-runs">
          {ids.map((id, i) => {
            const q = jobs[i]!;
            return (
              <li key={id}>
                <span className="swatch" style={{ background: PALETTE[i % PALETTE.length] }} aria-hidden="true" />
                {q.data ? (
                  <>
                    <Link to={`/jobs/${id}`}>
                      #{id} {jobTitle(q.data)}
                    </Link>{" "}
                    <StatusBadge tone={jobTone(q.data.status)}>{q.data.status}</StatusBadge>
                  </>
                ) : q.isError ? (
                  <span className="field__error">
                    job {id}: {errorMessage(q.error)}
                  </span>
                ) : (
                  <span className="muted">job {id}…</span>
                )}
              </li>
            );
          })}
        </ul>
      </div>
      {ids.length === 1 ? (
        <p className="banner banner--warn" data-testid="one-run">
          Only one run is selected. Tick a second one on the <Link to="/jobs">Jobs</Link> page to compare their curves and
          configs.
        </p>
      ) : null}
      <div className="card">
        <h2>Curves</h2>
        {waiting.length > 0 ? (
          <Loading label={`Loading the curves of ${waiting.map((id) => `#${id}`).join(", ")}…`} testId="curves-loading" />
        ) : null}
        <div className="grid grid--2 grid--tight charts">
          {compared.length === 0 && waiting.length === 0 ? <p className="muted">No curves recorded yet.</p> : null}
          {(waiting.length > 0 ? [] : compared).map((name) => (
            <Chart
              key={name}
              title={name}
              testId={`compare-${name}`}
              series={ids.map((id, i) => ({ label: `#${id}`, points: series[i]?.get(name) }))}
            />
          ))}
        </div>
      </div>
      {ids.length === 2 && models[0] != null && models[1] != null ? (
        <ModelChangesCard first={models[0]} second={models[1]} labels={[`#${ids[0]}`, `#${ids[1]}`]} />
      ) : null}
      <div className="card">
        <h2>Config differences</h2>
        {ids.length === 1 ? (
          <p className="muted" data-testid="no-diff">
            One run has nothing to differ from.
          </p>
        ) : !loaded ? (
          <Loading label="Loading configs…" />
        ) : diff.length === 0 ? (
          <p className="muted" data-testid="no-diff">
            The configs are the same.
          </p>
        ) : (
          <div className="table-scroll">
            <table className="table" data-testid="config-diff">
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  {ids.map((id) => (
                    <th scope="col" key={id}>
                      #{id}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {diff.map((row) => (
                  <tr key={row.key} data-testid="diff-row">
                    <th scope="row">
                      <code>{row.key}</code>
                    </th>
                    {row.values.map((v, i) => (
                      <td key={i}>
                        <code>{showValue(v)}</code>
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
    </section>
  );
}
