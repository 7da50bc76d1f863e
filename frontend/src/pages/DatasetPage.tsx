import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import {
  classColour,
  downloadUrl,
  parseFindings,
  parseStats,
  useDataset,
  useDatasets,
  useDeleteDataset,
  useRetryImport,
} from "../api/datasets";
import { ApiError, errorMessage } from "../api/errors";
import type { DatasetDetail, ExportReady } from "../api/types";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Loading } from "../components/Loading";
import { StatusBadge } from "../components/StatusBadge";
import { ClassBars } from "../datasets/ClassBars";
import { readyExport } from "../datasets/exportZip";
import { useTaskRegistry } from "../api/tasks";
import { formatBytes, formatCount, formatLabel, statusTone } from "../datasets/format";
import { ImageGrid } from "../datasets/ImageGrid";
import { ImportReport } from "../datasets/ImportReport";
import { SplitPanel } from "../datasets/SplitPanel";
import { progressText } from "../jobs/format";
import { formatDateTime } from "../time";
import { NotFoundPage } from "./NotFoundPage";

type ExportState =
  | { phase: "idle" }
  | { phase: "converting"; progress: string | null }
  | { phase: "done"; ready: ExportReady }
  | { phase: "failed"; error: string };

type ExportOption = DatasetDetail["exports"][number];

function ExportButton({ dataset, option }: { dataset: DatasetDetail; option: ExportOption }) {
  const { format, title: label, layout: hint } = option;
  const [state, setState] = useState<ExportState>({ phase: "idle" });
  const abort = useRef<AbortController | null>(null);
  useEffect(() => () => abort.current?.abort(), []);
  const run = async () => {
    abort.current = new AbortController();
    setState({ phase: "converting", progress: null });
    try {
      const ready = await readyExport(dataset.id, format, (job) => setState({ phase: "converting", progress: progressText(job) }), abort.current.signal);
      downloadUrl(ready.url, ready.filename);
      setState({ phase: "done", ready });
    } catch (err) {
      if (abort.current?.signal.aborted) return; // the page was left
      setState({ phase: "failed", error: `${label}: ${errorMessage(err)}` });
    }
  };
  const converting = state.phase === "converting";
  return (
    <li>
      <button type="button" className="button" disabled={converting} onClick={() => void run()} data-testid={`export-${format}`}>
        {converting ? "Converting…" : label}
      </button>
      <span className="muted small" id={`export-${format}-hint`}>
        {hint}
      </span>
      {converting && state.progress ? (
        <p className="muted small" aria-live="polite" data-testid={`export-${format}-progress`}>
          {state.progress}
        </p>
      ) : null}
      {state.phase === "failed" ? (
        <p className="field__error" role="alert" data-testid={`export-${format}-error`}>
          {state.error}
        </p>
      ) : null}
      {state.phase === "done" ? (
        <p className="muted small" data-testid={`export-${format}-done`}>
          Sent to your browser&apos;s downloads:{" "}
          <a href={state.ready.url} download={state.ready.filename} title="Download it again">
            {state.ready.filename}
          </a>
          {state.ready.size_bytes != null ? ` · ${formatBytes(state.ready.size_bytes)}` : ""}
        </p>
      ) : null}
    </li>
  );
}

/** Why the import failed, and what to do: fix and upload again, or import the kept upload again, leaving out the bad shapes. */
function ImportFailedBanner({ dataset, findings }: { dataset: DatasetDetail; findings: ReturnType<typeof parseFindings> }) {
  const retry = useRetryImport(dataset.id);
  const badShapes = findings.filter((f) => f.level === "error" && f.shape != null).length;
  const otherErrors = findings.filter((f) => f.level === "error" && f.shape == null).length;
  const canSkip = badShapes > 0 && otherErrors === 0; // every error is one shape's: the rest can land
  return (
    <div className="banner banner--error" role="alert" data-testid="dataset-failed">
      <p>
        <strong>The import failed:</strong> {dataset.failure ?? "see the report below."}
      </p>
      <p className="small">
        The report below names each file, shape and field at fault. Fix them and upload the project again
        {canSkip
          ? `, or import this upload again leaving out the ${badShapes === 1 ? "bad shape" : `${badShapes} bad shapes`} (each is listed in the new report).`
          : "."}
      </p>
      <div className="banner__actions">
        {canSkip ? (
          <button
            type="button"
            className="button button--primary"
            disabled={retry.isPending}
            onClick={() => retry.mutate({ skipBadShapes: true })}
            data-testid="retry-skip"
          >
            {retry.isPending ? "Starting…" : badShapes === 1 ? "Import again without the bad shape" : `Import again without the ${badShapes} bad shapes`}
          </button>
        ) : null}
        {badShapes === 0 && otherErrors === 0 ? (
          // No error to fix: the import stopped for another reason (its worker died), so the same upload may land.
          <button type="button" className="button" disabled={retry.isPending} onClick={() => retry.mutate({ skipBadShapes: false })} data-testid="retry">
            {retry.isPending ? "Starting…" : "Import again"}
          </button>
        ) : null}
      </div>
      {retry.isError ? (
        <p className="field__error" data-testid="retry-error">
          Could not import again: {errorMessage(retry.error)}
        </p>
      ) : null}
    </div>
  );
}

function ExportPanel({ dataset }: { dataset: DatasetDetail }) {
  return (
    <section className="card" aria-label="Export" data-testid="export">
      <h2>Export</h2>
      <p className="muted small">A zip of this version, converted (made once, then kept).</p>
      <ul className="exports">
        {dataset.exports.map((e) =>
          e.refusal ? (
            <li key={e.format}>
              <button type="button" className="button" disabled aria-describedby={`export-${e.format}-hint`} data-testid={`export-${e.format}`}>
                {e.title}
              </button>
              <span className="muted small" id={`export-${e.format}-hint`}>
                {e.refusal}
              </span>
            </li>
          ) : (
            <ExportButton key={e.format} dataset={dataset} option={e} />
          ),
        )}
      </ul>
    </section>
  );
}

function Versions({ dataset }: { dataset: DatasetDetail }) {
  const all = useDatasets();
  const children = (all.data ?? []).filter((d) => d.parent_id === dataset.id);
  if (dataset.parent_id == null && children.length === 0) return null;
  return (
    <p className="versions" data-testid="versions">
      {dataset.parent_id != null ? (
        <span>
          Made from{" "}
          <Link to={`/datasets/${dataset.parent_id}`} data-testid="parent-link">
            {dataset.version > 1 ? `version ${dataset.version - 1}` : `dataset ${dataset.parent_id}`}
          </Link>
        </span>
      ) : null}
      {children.length > 0 ? (
        <span>
          Newer:{" "}
          {children.map((c, i) => (
            <span key={c.id}>
              {i > 0 ? ", " : null}
              <Link to={`/datasets/${c.id}`} data-testid="child-link">
                version {c.version}
              </Link>
            </span>
          ))}
        </span>
      ) : null}
    </p>
  );
}

function DeleteButton({ dataset }: { dataset: DatasetDetail }) {
  const remove = useDeleteDataset();
  const navigate = useNavigate();
  if (dataset.status === "importing") return null;
  return (
    <ConfirmDelete
      label={`Delete version ${dataset.version}`}
      pending={remove.isPending}
      error={remove.isError ? remove.error : null}
      onConfirm={() => remove.mutate(dataset.id, { onSuccess: () => navigate("/datasets", { replace: true }) })}
    />
  );
}

function Tile({ label, value, testId }: { label: string; value: number; testId: string }) {
  return (
    <div className="tile">
      <span className="tile__value" data-testid={testId}>
        {formatCount(value)}
      </span>
      <span className="tile__label">{label}</span>
    </div>
  );
}

export function DatasetPage() {
  const params = useParams();
  const id = Number(params.id);
  const query = useDataset(id);
  const dataset = query.data;
  const stats = useMemo(() => parseStats(dataset?.stats), [dataset]);
  const findings = useMemo(() => parseFindings(dataset?.report), [dataset]);
  const problemCodes = useMemo(() => [...new Set(findings.map((f) => f.code))].sort(), [findings]);
  const registry = useTaskRegistry();

  if (!Number.isInteger(id) || id <= 0) return <NotFoundPage />;
  if (query.isPending) return <Loading label="Loading dataset…" />;
  if (query.isError || !dataset) {
    if (query.error instanceof ApiError && query.error.status === 404) return <NotFoundPage />;
    return (
      <div className="banner banner--error" role="alert">
        Could not load the dataset: {errorMessage(query.error)}
      </div>
    );
  }

  const ready = dataset.status === "ready";
  return (
    <section className="page page--wide" data-testid="dataset-page">
      <p className="breadcrumb">
        <Link to="/datasets">Datasets</Link> /
      </p>
      <div className="page-head page-head--wrap">
        <h1 data-testid="dataset-title">{dataset.name}</h1>
        <span className="version version--big" data-testid="dataset-version">
          v{dataset.version}
        </span>
        <StatusBadge tone={statusTone(dataset.status)} testId="dataset-status">
          {dataset.status}
        </StatusBadge>
        <span className="page-head__spacer" />
        <DeleteButton dataset={dataset} />
      </div>
      <p className="muted meta-line">
        {formatLabel(dataset.source_format)} · created {formatDateTime(dataset.created_at)}
      </p>
      <Versions dataset={dataset} />

      {dataset.status === "importing" ? <Loading label="Importing… this page updates by itself." /> : null}
      {dataset.status === "failed" ? <ImportFailedBanner dataset={dataset} findings={findings} /> : null}

      {dataset.tasks.length || dataset.classes.length ? (
        <div className="card facts">
          <div className="facts__row">
            <span className="facts__label">Tasks</span>
            <span className="chips" data-testid="dataset-tasks">
              {dataset.tasks.length ? (
                dataset.tasks.map((t) => (
                  <span key={t} className="chip chip--task" data-testid="task-chip">
                    {registry.title(t)}
                  </span>
                ))
              ) : (
                <span className="muted">none</span>
              )}
            </span>
          </div>
          <div className="facts__row">
            <span className="facts__label">Classes</span>
            <ol className="chips" data-testid="dataset-classes">
              {dataset.classes.map((c, i) => (
                <li key={c} className="chip" data-testid="class-chip" title={`class ${i + 1}`}>
                  <span className="swatch" style={{ background: classColour(i + 1) }} aria-hidden="true" />
                  {c}
                </li>
              ))}
            </ol>
          </div>
        </div>
      ) : null}

      {ready ? (
        <>
          <div className="tiles">
            <Tile label="images" value={stats.images} testId="stat-images" />
            <Tile label="annotations" value={stats.annotations} testId="stat-annotations" />
            <Tile label="classes" value={dataset.classes.length} testId="stat-classes" />
            <Tile label="negatives (no objects)" value={stats.negatives} testId="stat-negatives" />
            {stats.ignoreRegions ? <Tile label="ignore regions" value={stats.ignoreRegions} testId="stat-ignore" /> : null}
          </div>

          <div className="card">
            <h2>Classes</h2>
            <div className="grid grid--2 grid--tight">
              <ClassBars title="Images per class" classes={stats.classes} metric="images" testId="bars-images" />
              <ClassBars title="Instances per class" classes={stats.classes} metric="instances" testId="bars-instances" />
            </div>
          </div>

          <div className="grid grid--split">
            <SplitPanel key={dataset.id} datasetId={dataset.id} stats={stats} canChange={ready} />
            <ExportPanel dataset={dataset} />
          </div>
        </>
      ) : null}

      {dataset.status !== "importing" ? <ImportReport findings={findings} /> : null}

      {ready ? (
        <ImageGrid datasetId={dataset.id} classes={dataset.classes} problemCodes={problemCodes} enabled={ready} />
      ) : null}
    </section>
  );
}
