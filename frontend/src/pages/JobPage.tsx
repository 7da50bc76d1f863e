import { useEffect, useId, useState } from "react";
import { Link, useParams } from "react-router";
import { isFinished } from "../api/datasets";
import { ApiError, errorMessage } from "../api/errors";
import { useCancelJob, useConfigYaml, useJob, useJobArtifacts, useJobStream, useModelDashboard, useModels } from "../api/training";
import { useTaskRegistry } from "../api/tasks";
import type { Job } from "../api/types";
import { ArtifactList } from "../components/ArtifactList";
import { Loading } from "../components/Loading";
import { ProgressBar } from "../components/ProgressBar";
import { StatusBadge } from "../components/StatusBadge";
import { kindLabel, waitingText } from "../jobs/format";
import { formatDateTime } from "../time";
import { Chart, PALETTE, type ChartSeries } from "../training/Chart";
import { lastValue, type MetricSeries } from "../training/metrics";
import { SummaryTiles, WorstImages } from "../training/Dashboard";
import { formatMetric, metricLabel } from "../training/metricLabels";
import { RunStats } from "../training/RunStats";
import { bestEta, formatDuration, formatLr, progressEta, workerEta } from "../training/runStats";
import { MAX_SMOOTHING, smoothSeries } from "../training/smoothing";
import { jobTitle, jobTone } from "./JobsPage";
import { NotFoundPage } from "./NotFoundPage";

/** TensorBoard's default smoothing of the loss curve. */
const DEFAULT_SMOOTHING = 0.6;

export { formatDuration };

/** Seconds left, from the time since the job started and the share done. */
export function eta(startedAt: string | null | undefined, progress: number, now = Date.now()): number | null {
  return progressEta(startedAt, progress, now);
}

/** The worker's message without its own ETA: the page says the time left once, from the best estimate. */
export function withoutEta(message: string): string {
  return message.replace(/,?\s*\bETA\s+[^,]*/i, "").trim();
}

/** The loss chart's controls: a log-scale y axis and TensorBoard-style smoothing of train/loss. */
function LossControls({
  logScale,
  onLogScale,
  smoothing,
  onSmoothing,
}: {
  logScale: boolean;
  onLogScale: (on: boolean) => void;
  smoothing: number;
  onSmoothing: (weight: number) => void;
}) {
  const id = useId();
  return (
    <>
      <label className="chart-control">
        <input type="checkbox" checked={logScale} onChange={(e) => onLogScale(e.target.checked)} /> Log scale
      </label>
      <span className="chart-control">
        <label htmlFor={`${id}-smoothing`}>Smoothing</label>
        <input
          id={`${id}-smoothing`}
          type="range"
          min={0}
          max={MAX_SMOOTHING}
          step={0.01}
          value={smoothing}
          onChange={(e) => onSmoothing(Number(e.target.value))}
        />
        <output htmlFor={`${id}-smoothing`} className="chart-control__value" data-testid="smoothing-value">
          {smoothing.toFixed(2)}
        </output>
      </span>
    </>
  );
}

/** The loss series: train/loss (smoothed over its raw values, drawn faint, when smoothing is on) and val/loss. */
export function lossSeries(metrics: MetricSeries, smoothing: number): ChartSeries[] {
  const train = metrics.get("train/loss");
  const out: ChartSeries[] =
    smoothing > 0 && train?.size
      ? [
          { label: "train/loss", points: train, color: PALETTE[0], faint: true },
          { label: "smoothed", points: smoothSeries(train, smoothing), color: PALETTE[0], markers: false },
        ]
      : [{ label: "train/loss", points: train, color: PALETTE[0] }];
  if (metrics.get("val/loss")?.size) out.push({ label: "val/loss", points: metrics.get("val/loss"), color: PALETTE[1] });
  return out;
}

/** The charts of a run: losses, learning rate, validation metrics (whatever `val/*` the run logs). */
export function RunCharts({ metrics }: { metrics: MetricSeries }) {
  const [logScale, setLogScale] = useState(false);
  const [smoothing, setSmoothing] = useState(DEFAULT_SMOOTHING);
  const names = [...metrics.keys()];
  const valMetrics = names.filter((n) => n.startsWith("val/") && n !== "val/loss" && !n.includes("memory")).sort();
  return (
    <div className="grid grid--2 grid--tight charts">
      <Chart
        title="Loss"
        testId="chart-loss"
        logY={logScale}
        series={lossSeries(metrics, smoothing)}
        toolbar={
          metrics.get("train/loss")?.size ? (
            <LossControls logScale={logScale} onLogScale={setLogScale} smoothing={smoothing} onSmoothing={setSmoothing} />
          ) : null
        }
      />
      <Chart
        title="Learning rate"
        testId="chart-lr"
        yFormat={formatLr}
        series={[{ label: "train/lr", points: metrics.get("train/lr") }]}
      />
      <Chart
        title="Validation"
        testId="chart-val"
        emptyText="No validation yet."
        series={valMetrics.map((n) => ({ label: n, points: metrics.get(n) }))}
      />
    </div>
  );
}

function Artifacts({ job }: { job: Job }) {
  const artifacts = useJobArtifacts(job.id, isFinished(job.status));
  if (!artifacts.data?.length) return null;
  return (
    <div className="card">
      <h2>Files</h2>
      <ArtifactList artifacts={artifacts.data} testId="job-artifacts" />
    </div>
  );
}

/**
 * What a job answered: for a run that made `runModel` (null for any other job), that model's headline
 * figures with the raw JSON folded below; else the JSON.
 */
function ResultPanel({ job, status, runModel }: { job: Job; status: Job["status"]; runModel: number | null }) {
  const registry = useTaskRegistry();
  const enabled = runModel != null;
  const board = useModelDashboard(runModel ?? 0, enabled);
  const task = board.data ? registry.get(board.data.task) : undefined;
  const raw = job.result ? (
    <pre className="code" data-testid="job-result">
      {JSON.stringify(job.result, null, 2)}
    </pre>
  ) : null;
  return (
    <div className="card">
      <h2>Result</h2>
      {!job.result ? <p className="muted">{isFinished(status) ? "No result." : "Not finished yet."}</p> : null}
      {enabled && board.data ? (
        <>
          <SummaryTiles board={board.data} task={task} />
          <p className="small">
            <Link to={`/models/${runModel}`} data-testid="result-model-link">
              The model&apos;s page
            </Link>{" "}
            has the per-class figures, the curves, Grad-CAM and “Try it”.
          </p>
          <details className="raw-result">
            <summary>The job&apos;s answer as JSON</summary>
            {raw}
          </details>
        </>
      ) : enabled && board.isPending ? (
        <Loading label="Loading the model's figures…" />
      ) : (
        raw
      )}
    </div>
  );
}

/** The worst validation images of the model a run made, as its page shows them. */
function RunWorstImages({ runModel }: { runModel: number | null }) {
  const board = useModelDashboard(runModel ?? 0, runModel != null);
  return board.data ? <WorstImages board={board.data} /> : null;
}

export function JobPage() {
  const id = Number(useParams().id);
  const query = useJob(id);
  const live = useJobStream(Number.isInteger(id) && id > 0 ? id : null);
  const cancel = useCancelJob();
  const job = query.data;
  const yaml = useConfigYaml(job?.kind === "train" ? job.config : null);
  const models = useModels(false);
  const registry = useTaskRegistry();
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);

  if (!Number.isInteger(id) || id <= 0) return <NotFoundPage />;
  if (query.isPending) return <Loading label="Loading job…" />;
  if (query.isError || !job) {
    if (query.error instanceof ApiError && query.error.status === 404) return <NotFoundPage />;
    return (
      <div className="banner banner--error" role="alert">
        Could not load the job: {errorMessage(query.error)}
      </div>
    );
  }

  // The stream is fresher while it runs; the row has the last word once finished.
  const status = isFinished(job.status) ? job.status : (live.status ?? job.status);
  const progress = isFinished(job.status) ? job.progress : (live.progress ?? job.progress);
  const message = isFinished(job.status) ? (job.status === "succeeded" ? "done" : job.message) : (live.message ?? job.message);
  const left = status === "running" ? bestEta(message, live.metrics, job.started_at, progress, now) : null;
  // While queued, the row (refetched every few seconds) says where the job stands on its lane.
  const waiting = waitingText({ status, queue_position: job.queue_position });
  const caption = waiting
    ? waiting
    : `${Math.round(progress * 100)}%${message ? ` · ${withoutEta(message)}` : ""}${left != null ? ` · about ${formatDuration(left)} left${workerEta(message)?.withValidation === false ? ", before validation" : ""}` : ""}`;
  const resultModelId = typeof job.result?.model_id === "number" ? job.result.model_id : null;
  const model = models.data?.find((m) => m.job_id === job.id || m.id === resultModelId) ?? null;
  // The model a finished run made: its page's figures and worst images stand in for the raw result.
  const runModel = job.kind === "train" && status === "succeeded" ? (model?.id ?? resultModelId) : null;
  const task = registry.get(String((job.config as { task?: string }).task ?? ""));
  const headline = task ? lastValue(live.metrics, `val/${task.headline}`) : null;

  return (
    <section className="page page--wide" data-testid="job-page">
      <p className="breadcrumb">
        <Link to="/jobs">Jobs</Link> /
      </p>
      <div className="page-head page-head--wrap">
        <h1 data-testid="job-title">
          #{job.id} {jobTitle(job)}
        </h1>
        <StatusBadge tone={jobTone(status)} testId="job-status">
          {status}
        </StatusBadge>
        <span className="page-head__spacer" />
        {!isFinished(status) ? (
          <button
            type="button"
            className="button button--danger"
            onClick={() => cancel.mutate(job.id)}
            disabled={cancel.isPending || job.cancel_requested}
          >
            {job.cancel_requested ? "Cancelling…" : "Cancel"}
          </button>
        ) : null}
      </div>
      {cancel.isError ? (
        <p className="field__error" role="alert">
          Could not cancel: {errorMessage(cancel.error)}
        </p>
      ) : null}

      <div className="card">
        <ProgressBar
          label="Job progress"
          value={progress}
          testId="job-progress"
          caption={caption}
          tone={status === "failed" ? "bad" : status === "succeeded" ? "ok" : undefined}
        />
        {job.error ? (
          <div className="banner banner--error" role="alert" data-testid="job-error">
            {job.error}
          </div>
        ) : null}
        <dl className="facts facts--inline">
          <div className="facts__row">
            <dt className="facts__label">Kind</dt>
            <dd>{kindLabel(job.kind)}</dd>
          </div>
          <div className="facts__row">
            <dt className="facts__label">Lane</dt>
            <dd data-testid="job-lane">{job.queue}</dd>
          </div>
          <div className="facts__row">
            <dt className="facts__label">Attempt</dt>
            <dd data-testid="job-attempt">{live.attempt ?? job.attempt}</dd>
          </div>
          <div className="facts__row">
            <dt className="facts__label">Worker</dt>
            <dd data-testid="job-worker">{job.worker ?? "—"}</dd>
          </div>
          <div className="facts__row">
            <dt className="facts__label">Started</dt>
            <dd>{formatDateTime(job.started_at)}</dd>
          </div>
          <div className="facts__row">
            <dt className="facts__label">Finished</dt>
            <dd>{formatDateTime(job.finished_at)}</dd>
          </div>
          {task && headline != null ? (
            <div className="facts__row">
              <dt className="facts__label">val {metricLabel(task.headline)}</dt>
              <dd data-testid="job-headline">{formatMetric(task.headline, headline)}</dd>
            </div>
          ) : null}
          {model || resultModelId != null ? (
            <div className="facts__row">
              <dt className="facts__label">Model</dt>
              <dd>
                <Link to={`/models/${model?.id ?? resultModelId}`} data-testid="model-link">
                  {model ? `${model.name} (#${model.id})` : `model #${resultModelId}`}
                </Link>
              </dd>
            </div>
          ) : null}
        </dl>
      </div>

      {job.kind === "train" ? (
        <div className="card">
          <h2>
            Curves{" "}
            <span className="muted small" data-testid="stream-state">
              {live.connected ? "· live" : ""}
            </span>
          </h2>
          <div className="run-live">
            <RunStats job={job} status={status} progress={progress} message={message} metrics={live.metrics} now={now} />
            <RunCharts metrics={live.metrics} />
          </div>
        </div>
      ) : null}

      <div className="grid grid--2 grid--tight">
        <div className="card">
          <h2>Config</h2>
          {job.kind === "train" && yaml.data ? (
            <pre className="code" data-testid="job-config-yaml">
              {yaml.data}
            </pre>
          ) : (
            <pre className="code" data-testid="job-config">
              {JSON.stringify(job.config, null, 2)}
            </pre>
          )}
          {job.kind === "train" ? (
            <Link className="button button--ghost button--small" to={`/jobs/compare?ids=${job.id}`}>
              Compare with other runs…
            </Link>
          ) : null}
        </div>
        <ResultPanel job={job} status={status} runModel={runModel} />
      </div>
      <RunWorstImages runModel={runModel} />
      <Artifacts job={job} />
    </section>
  );
}
