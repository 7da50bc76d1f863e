import { useEffect, useId, useRef, useState, type DragEvent, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { useQueryClient } from "@tanstack/react-query";
import {
  datasetKeys,
  FORMATS,
  isFinished,
  uploadDataset,
  UploadError,
  useJobProgress,
  type UploadProgress,
} from "../api/datasets";
import { ApiError, errorMessage } from "../api/errors";
import type { UploadFormat } from "../api/types";
import { ProgressBar } from "../components/ProgressBar";
import { formatBytes, nameFromFile } from "./format";

type Phase =
  | { kind: "idle" }
  | { kind: "uploading"; progress: UploadProgress }
  | { kind: "importing"; datasetId: number; jobId: number }
  | { kind: "error"; error: unknown };

function UploadErrorBox({ error }: { error: unknown }) {
  const code = error instanceof ApiError ? error.code : null;
  const entry = error instanceof UploadError ? error.entry : null;
  return (
    <div className="form__error upload-error" role="alert" data-testid="upload-error">
      <p className="upload-error__message" data-testid="upload-error-message">
        {errorMessage(error)}
      </p>
      {code || entry ? (
        <dl className="upload-error__meta">
          {code ? (
            <>
              <dt>Code</dt>
              <dd>
                <code data-testid="upload-error-code">{code}</code>
              </dd>
            </>
          ) : null}
          {entry ? (
            <>
              <dt>Entry</dt>
              <dd>
                <code data-testid="upload-error-entry">{entry}</code>
              </dd>
            </>
          ) : null}
        </dl>
      ) : null}
    </div>
  );
}

/** Drop a zip (or pick one), name it, choose its format; watch it upload, then import, then open it. */
export function UploadPanel() {
  const navigate = useNavigate();
  const qc = useQueryClient();
  const inputId = useId();
  const inputRef = useRef<HTMLInputElement>(null);
  const abortRef = useRef<AbortController | null>(null);
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [format, setFormat] = useState<UploadFormat>("auto");
  const [seed, setSeed] = useState("0");
  const [skipBadShapes, setSkipBadShapes] = useState(false);
  const [dragging, setDragging] = useState(false);
  const [phase, setPhase] = useState<Phase>({ kind: "idle" });
  const [pickError, setPickError] = useState<string | null>(null);

  const jobId = phase.kind === "importing" ? phase.jobId : null;
  const job = useJobProgress(jobId);
  const busy = phase.kind === "uploading" || (phase.kind === "importing" && !(job && isFinished(job.status)));

  useEffect(() => () => abortRef.current?.abort(), []);

  useEffect(() => {
    if (phase.kind !== "importing" || !job || !isFinished(job.status)) return;
    void qc.invalidateQueries({ queryKey: datasetKeys.all });
    if (job.status === "succeeded") navigate(`/datasets/${phase.datasetId}`);
  }, [job, phase, navigate, qc]);

  const choose = (files: FileList | null | undefined) => {
    const picked = files?.[0];
    if (!picked) return;
    setFile(picked);
    setPickError(null);
    if (phase.kind === "error") setPhase({ kind: "idle" });
  };

  const onDrop = (event: DragEvent<HTMLElement>) => {
    event.preventDefault();
    setDragging(false);
    if (!busy) choose(event.dataTransfer.files);
  };

  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (busy) return;
    if (!file) {
      setPickError("Choose a zip file to upload.");
      return;
    }
    const seedNumber = Number(seed);
    const controller = new AbortController();
    abortRef.current = controller;
    setPhase({ kind: "uploading", progress: { loaded: 0, total: file.size } });
    uploadDataset(
      file,
      { name: name.trim() || nameFromFile(file.name), format, seed: Number.isInteger(seedNumber) ? seedNumber : 0, skipBadShapes },
      (progress) => setPhase((p) => (p.kind === "uploading" ? { kind: "uploading", progress } : p)),
      controller.signal,
    ).then(
      (started) => {
        void qc.invalidateQueries({ queryKey: datasetKeys.list });
        setPhase({ kind: "importing", datasetId: started.dataset.id, jobId: started.job_id });
      },
      (error: unknown) => {
        if (error instanceof DOMException && error.name === "AbortError") setPhase({ kind: "idle" });
        else setPhase({ kind: "error", error });
      },
    );
  };

  const reset = () => {
    setPhase({ kind: "idle" });
    setFile(null);
    setName("");
    if (inputRef.current) inputRef.current.value = "";
  };

  const uploadFraction =
    phase.kind === "uploading" && phase.progress.total > 0 ? phase.progress.loaded / phase.progress.total : 0;

  return (
    <div className="card upload" data-testid="upload-panel">
      <h2>Upload a dataset</h2>
      <form onSubmit={onSubmit} noValidate aria-label="Upload dataset" className="upload__form">
        <label
          htmlFor={inputId}
          className={`dropzone${dragging ? " dropzone--active" : ""}${file ? " dropzone--chosen" : ""}${busy ? " dropzone--busy" : ""}`}
          data-testid="dropzone"
          onDragEnter={(e) => {
            e.preventDefault();
            if (!busy) setDragging(true);
          }}
          onDragOver={(e) => {
            e.preventDefault();
            e.dataTransfer.dropEffect = busy ? "none" : "copy";
          }}
          onDragLeave={(e) => {
            if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
          }}
          onDrop={onDrop}
        >
          <span className="dropzone__icon" aria-hidden="true">⇪</span>
          {file ? (
            <span className="dropzone__file">
              <strong data-testid="chosen-file">{file.name}</strong>
              <span className="muted"> · {formatBytes(file.size)}</span>
            </span>
          ) : (
            <span>
              <strong>Drop a .zip here</strong> <span className="muted">or click to choose a file</span>
            </span>
          )}
          <span className="dropzone__hint muted small">
            labelme, class folders, file lists, COCO, Pascal VOC or ICDAR — zipped as they are on disk.
          </span>
          <input
            id={inputId}
            ref={inputRef}
            type="file"
            name="file"
            accept=".zip,application/zip,application/x-zip-compressed"
            className="visually-hidden"
            aria-label="Zip file"
            disabled={busy}
            onChange={(e) => choose(e.target.files)}
          />
        </label>
        {pickError ? (
          <p className="field__error" role="alert" data-testid="error-file">
            {pickError}
          </p>
        ) : null}

        <div className="upload__fields">
          <div className="field">
            <label htmlFor={`${inputId}-name`}>Name</label>
            <input
              id={`${inputId}-name`}
              name="name"
              maxLength={200}
              placeholder={file ? nameFromFile(file.name) : "e.g. shapes"}
              value={name}
              disabled={busy}
              onChange={(e) => setName(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={`${inputId}-format`}>Format</label>
            <select
              id={`${inputId}-format`}
              name="format"
              value={format}
              disabled={busy}
              onChange={(e) => setFormat(e.target.value as UploadFormat)}
            >
              {FORMATS.map((f) => (
                <option key={f.value} value={f.value}>
                  {f.label}
                </option>
              ))}
            </select>
          </div>
          <div className="field field--narrow">
            <label htmlFor={`${inputId}-seed`}>Split seed</label>
            <input
              id={`${inputId}-seed`}
              name="seed"
              type="number"
              step={1}
              value={seed}
              disabled={busy}
              onChange={(e) => setSeed(e.target.value)}
            />
          </div>
          <div className="field field--check">
            <label htmlFor={`${inputId}-skip`} title="By default one bad shape stops the whole import, so nothing is left out without you knowing">
              <input
                id={`${inputId}-skip`}
                name="skip_bad_shapes"
                type="checkbox"
                checked={skipBadShapes}
                disabled={busy}
                onChange={(e) => setSkipBadShapes(e.target.checked)}
              />{" "}
              Skip bad shapes
            </label>
            <span className="muted small">Land the rest; the report lists each shape left out.</span>
          </div>
          <div className="upload__submit">
            {phase.kind === "uploading" ? (
              <button type="button" className="button" onClick={() => abortRef.current?.abort()}>
                Cancel
              </button>
            ) : (
              <button type="submit" className="button button--primary" disabled={busy || !file}>
                Upload and import
              </button>
            )}
          </div>
        </div>
      </form>

      {phase.kind === "uploading" ? (
        <div className="upload__status">
          <ProgressBar
            label="Upload progress"
            value={uploadFraction}
            testId="upload-progress"
            caption={`Uploading… ${Math.round(uploadFraction * 100)}% (${formatBytes(phase.progress.loaded)} of ${formatBytes(phase.progress.total)})`}
          />
        </div>
      ) : null}

      {phase.kind === "importing" ? (
        <div className="upload__status">
          <ProgressBar label="Upload progress" value={1} testId="upload-progress" caption="Uploaded" tone="ok" />
          <ProgressBar
            label="Import progress"
            value={job?.progress ?? 0}
            testId="import-progress"
            tone={job?.status === "failed" || job?.status === "cancelled" ? "bad" : job?.status === "succeeded" ? "ok" : undefined}
            caption={
              !job || job.status === "queued"
                ? "Waiting for a worker to import it…"
                : job.status === "running"
                  ? `Importing… ${Math.round(job.progress * 100)}%${job.message ? ` · ${job.message}` : ""}`
                  : job.status === "succeeded"
                    ? "Imported. Opening the dataset…"
                    : `Import ${job.status}`
            }
          />
          {job && (job.status === "failed" || job.status === "cancelled") ? (
            <div className="form__error" role="alert" data-testid="import-error">
              <p className="upload-error__message">{job.error || `The import ${job.status}.`}</p>
              <p>
                <Link to={`/datasets/${phase.datasetId}`}>See why, and import it again</Link>
                {" · "}
                <button type="button" className="link-button" onClick={reset}>
                  Upload another file
                </button>
              </p>
            </div>
          ) : null}
        </div>
      ) : null}

      {phase.kind === "error" ? <UploadErrorBox error={phase.error} /> : null}
    </div>
  );
}
