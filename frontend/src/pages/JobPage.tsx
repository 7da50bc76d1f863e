import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { isFinished } from "../api/datasets";
import { ApiError, errorMessage } from "../api/errors";
import { useCancelJob, useConfigYaml, useJob, useJobArtifacts, useJobStream, useModels } from "../api/training";
import type { Job } from "../api/types";
import { ArtifactList } from "../components/ArtifactList";
import { Loading } from "../components/Loading";
import { ProgressBar } from "../components/ProgressBar";
import { StatusBadge } from "../components/StatusBadge";
import { kindLabel, waitingText } from "../jobs/format";
import { formatDateTime } from "../time";
import { Chart } from "../training/Chart";
import { lastValue, type MetricSeries } from "../training/metrics";
import { jobTitle, jobTone } from "./JobsPage";
import { NotFoundPage } from "./NotFoundPage";

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Seconds left, from the time since the job started and the share done. */
export function eta(startedAt: string | null | undefined, progress: number, now = Date.now()): number | null {
  if (!startedAt || progress <= 0.01 || progress >= 1) return null;
  const started = Date.parse(startedAt);
  if (Number.isNaN(started)) return null;
  const elapsed = (now - started) / 1000;
  return (elapsed / progress) * (1 - progress);
}

/** The charts of a run: losses, learning rate, validation metrics (whatever `val/*` the run logs). */
export function RunCharts({ metrics }: { metrics: MetricSeries }) {
  const names = [...metrics.keys()];
  const valMetrics = names.filter((n) => n.startsWith("val/") && n !== "val/loss" && !n.includes("memory")).sort();
  return (
    <div className="grid grid--2 grid--tight charts">
      <Chart
        title="Loss"
        testId="chart-loss"
        series={[
          { label: "train/loss", points: metrics.get("train/loss") },
          { label: "val/loss", points: metrics.get("val/loss") },
        ]}
      />
      <Chart title="Learning rate" testId="chart-lr" series={[{ label: "train/lr", points: metrics.get("train/lr") }]} />
      <Chart
        title="Validation"
        testId="chart-val"
        series={(valMetrics.length ? valMetrics : ["val/accuracy/top1"]).map((n) => ({ label: n, points: metrics.get(n) }))}
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

export function JobPage() {
  const id = Number(useParams().id);
  const query = useJob(id);
  const live = useJobStream(Number.isInteger(id) && id > 0 ? id : null);
  const cancel = useCancelJob();
  const job = query.data;
  const yaml = useConfigYaml(job?.kind === "train" ? job.config : null);
  const models = useModels(false);
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
  const left = status === "running" ? eta(job.started_at, progress, now) : null;
  // While queued, the row (refetched every few seconds) says where the job stands on its lane.
  const waiting = waitingText({ status, queue_position: job.queue_position });
  const caption = waiting
    ? waiting
    : `${Math.round(progress * 100)}%${message ? ` · ${message}` : ""}${left != null ? ` · about ${formatDuration(left)} left` : ""}`;
  const resultModelId = typeof job.result?.model_id === "number" ? job.result.model_id : null;
  const model = models.data?.find((m) => m.job_id === job.id || m.id === resultModelId) ?? null;
  const top1 = lastValue(live.metrics, "val/accuracy/top1");

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
          {top1 != null ? (
            <div className="facts__row">
              <dt className="facts__label">val top-1</dt>
              <dd>{(top1 * 100).toFixed(1)}%</dd>
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
          <RunCharts metrics={live.metrics} />
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
        <div className="card">
          <h2>Result</h2>
          {job.result ? (
            <pre className="code" data-testid="job-result">
              {JSON.stringify(job.result, null, 2)}
            </pre>
          ) : (
            <p className="muted">{isFinished(status) ? "No result." : "Not finished yet."}</p>
          )}
        </div>
      </div>
      <Artifacts job={job} />
    </section>
  );
}
