import { useEffect, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { errorMessage } from "../api/errors";
import { useJobs } from "../api/training";
import type { Job } from "../api/types";
import { Loading } from "../components/Loading";
import { ProgressBar } from "../components/ProgressBar";
import { StatusBadge, type Tone } from "../components/StatusBadge";
import { kindLabel, waitingText } from "../jobs/format";
import { formatDateTime, timeAgo } from "../time";

const KINDS = ["", "train", "evaluate", "predict", "cam", "import_dataset", "import_model", "export", "export_dataset"];

export function jobTone(status: string): Tone {
  if (status === "succeeded") return "ok";
  if (status === "failed") return "bad";
  if (status === "running" || status === "queued") return "warn";
  return "neutral";
}

export function jobTitle(job: Job): string {
  const name = typeof job.config?.name === "string" && job.config.name ? job.config.name : null;
  const arch = typeof (job.config?.model as { architecture?: unknown } | undefined)?.architecture === "string"
    ? (job.config.model as { architecture: string }).architecture
    : null;
  return name ?? (arch ? `${kindLabel(job.kind)} · ${arch}` : kindLabel(job.kind));
}

export function JobsPage() {
  const [params, setParams] = useSearchParams();
  const kind = params.get("kind") ?? "";
  const inUrl = params.get("background") === "1";
  // The box follows the click at once; the URL (a navigation React may defer) follows it.
  const [background, setBackground] = useState(inUrl);
  useEffect(() => setBackground(inUrl), [inUrl]);
  const jobs = useJobs(kind, background);
  const [selected, setSelected] = useState<number[]>([]);
  const navigate = useNavigate();
  const toggle = (id: number) => setSelected((s) => (s.includes(id) ? s.filter((x) => x !== id) : [...s, id]));
  const knownKinds = [...new Set([...KINDS, ...(jobs.data ?? []).map((j) => j.kind)])];

  return (
    <section className="page page--wide" data-testid="jobs-page">
      <div className="page-head">
        <h1>Jobs</h1>
        <span className="page-head__spacer" />
        <Link className="button" to="/runs/new">
          New training run
        </Link>
      </div>
      <div className="card">
        <div className="toolbar">
          <div className="field field--inline">
            <label htmlFor="job-kind">Kind</label>
            <select
              id="job-kind"
              value={kind}
              onChange={(e) => setParams(e.target.value ? { kind: e.target.value } : background ? { background: "1" } : {}, { replace: true })}
            >
              {knownKinds.map((k) => (
                <option key={k} value={k}>
                  {k ? kindLabel(k) : "all"}
                </option>
              ))}
            </select>
          </div>
          {kind ? null : (
            <label className="radio-label small" title="Parameter and FLOP counts, augmentation previews and time estimates the studio runs for its pages">
              <input
                type="checkbox"
                checked={background}
                onChange={(e) => {
                  setBackground(e.target.checked);
                  setParams(e.target.checked ? { background: "1" } : {}, { replace: true });
                }}
                data-testid="jobs-background"
              />{" "}
              Show the studio's background work
            </label>
          )}
          <span className="page-head__spacer" />
          <button
            type="button"
            className="button"
            disabled={selected.length < 2}
            onClick={() => navigate(`/jobs/compare?ids=${selected.join(",")}`)}
            data-testid="compare-button"
          >
            Compare {selected.length >= 2 ? `${selected.length} runs` : "runs"}
          </button>
        </div>
        {jobs.isPending ? <Loading label="Loading jobs…" /> : null}
        {jobs.isError ? (
          <div className="banner banner--error" role="alert">
            Could not load jobs: {errorMessage(jobs.error)}
          </div>
        ) : null}
        {jobs.data && jobs.data.length === 0 ? <p className="muted">No jobs{kind ? ` of kind ${kindLabel(kind)}` : ""} yet.</p> : null}
        {jobs.data && jobs.data.length > 0 ? (
          <div className="table-scroll">
            <table className="table" data-testid="jobs-table">
              <thead>
                <tr>
                  <th scope="col">
                    <span className="visually-hidden">Select</span>
                  </th>
                  <th scope="col">Job</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Status</th>
                  <th scope="col">Progress</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {jobs.data.map((job) => (
                  <tr key={job.id} data-testid="job-row" data-job-id={job.id}>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`Select job ${job.id}`}
                        checked={selected.includes(job.id)}
                        onChange={() => toggle(job.id)}
                      />
                    </td>
                    <td>
                      <Link to={`/jobs/${job.id}`} data-testid="job-link">
                        #{job.id} {jobTitle(job)}
                      </Link>
                    </td>
                    <td>{kindLabel(job.kind)}</td>
                    <td>
                      <StatusBadge tone={jobTone(job.status)} testId="job-status">
                        {job.status}
                      </StatusBadge>
                    </td>
                    <td className="jobs__progress">
                      <ProgressBar
                        label={`Job ${job.id} progress`}
                        value={job.progress}
                        caption={job.error ?? waitingText(job) ?? (job.status === "succeeded" ? "done" : job.message) ?? `${Math.round(job.progress * 100)}%`}
                        tone={job.status === "failed" ? "bad" : job.status === "succeeded" ? "ok" : undefined}
                      />
                    </td>
                    <td className="muted nowrap" title={formatDateTime(job.created_at)}>
                      {timeAgo(job.created_at)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </div>
    </section>
  );
}
