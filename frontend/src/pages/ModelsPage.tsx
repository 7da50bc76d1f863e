import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type FormEvent } from "react";
import { Link } from "react-router";
import { useJobProgress } from "../api/datasets";
import { ApiError, errorMessage } from "../api/errors";
import {
  formatCompact,
  formatPct,
  headlineMetric,
  trainingKeys,
  uploadModel,
  useCatalog,
  useModels,
  type TrainedModel,
} from "../api/training";
import { Loading } from "../components/Loading";
import { StatusBadge } from "../components/StatusBadge";
import { TASKS_LOADING, useTaskRegistry, type TaskRegistry } from "../api/tasks";
import { statusTone } from "../datasets/format";
import { timeAgo, formatDateTime } from "../time";

function ModelRow({ model, registry }: { model: TrainedModel; registry: TaskRegistry }) {
  const headline = headlineMetric(model.metrics, registry.get(model.task)?.headline);
  return (
    <tr data-testid="model-row" data-model-id={model.id}>
      <td>
        <Link to={`/models/${model.id}`} data-testid="model-name">
          {model.name}
        </Link>
      </td>
      <td data-testid="model-task">{registry.title(model.task)}</td>
      <td>{model.architecture}</td>
      <td>{model.dataset_id != null ? <Link to={`/datasets/${model.dataset_id}`}>#{model.dataset_id}</Link> : "—"}</td>
      <td>
        <StatusBadge tone={statusTone(model.status)} testId="model-status">
          {model.status}
        </StatusBadge>
      </td>
      <td className="num nowrap" data-testid="model-score">
        {registry.loading ? (
          <span className="muted small">{TASKS_LOADING}</span>
        ) : (
          <>
            {formatPct(headline.value)} <span className="muted small">{headline.value != null ? headline.label : ""}</span>
          </>
        )}
      </td>
      <td className="num">{formatCompact(model.params)}</td>
      <td className="num">{formatCompact(model.flops)}</td>
      <td className="muted nowrap" title={formatDateTime(model.created_at)}>
        {timeAgo(model.created_at)}
      </td>
    </tr>
  );
}

const UPLOAD_FIELDS = ["file", "name", "architecture", "task", "class_names", "input_size"] as const;

function UploadModelForm({ registry }: { registry: TaskRegistry }) {
  // The registry's tasks, its first chosen until the person picks another.
  const [picked, setTask] = useState<string | null>(null);
  const task = picked ?? registry.tasks[0]?.name ?? "";
  const info = registry.get(task);
  const catalog = useCatalog(task || null);
  const qc = useQueryClient();
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState("");
  const [architecture, setArchitecture] = useState("");
  const [classNames, setClassNames] = useState("");
  const [inputSize, setInputSize] = useState("");
  const [busy, setBusy] = useState(false);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [started, setStarted] = useState<{ jobId: number; modelId: number; file: string } | null>(null);
  const progress = useJobProgress(started?.jobId ?? null);
  const entries = catalog.data?.entries ?? [];
  const arch = entries.some((c) => c.name === architecture) ? architecture : (entries[0]?.name ?? "");

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const errs: Record<string, string> = {};
    if (!file) errs.file = "Choose a .pt, .pth or .safetensors file";
    if (!task) errs.task = registry.loading ? "The tasks are still loading; try again in a moment" : "Choose a task";
    if (!classNames.trim()) errs.class_names = "Give the class names, one per line or a JSON list";
    if (inputSize.trim() && !/^\d+$/.test(inputSize.trim())) errs.input_size = "A whole number of pixels";
    setFieldErrors(errs);
    setFormError(null);
    if (Object.keys(errs).length || !file) return;
    setBusy(true);
    try {
      const result = await uploadModel({ file, name, architecture: arch, task, classNames, inputSize });
      setStarted({ jobId: result.job_id, modelId: result.model.id, file: file.name });
      void qc.invalidateQueries({ queryKey: trainingKeys.models });
    } catch (err) {
      const fe: Record<string, string> = {};
      if (err instanceof ApiError) {
        for (const [k, msg] of Object.entries(err.fieldErrors)) {
          const key = UPLOAD_FIELDS.find((f) => k === f || k.endsWith(`.${f}`));
          if (key) fe[key] = msg;
        }
      }
      setFieldErrors(fe);
      setFormError(`${file.name}: ${errorMessage(err)}`);
    }
    setBusy(false);
  };

  const outcome = progress?.status;
  useEffect(() => {
    if (outcome === "succeeded" || outcome === "failed") void qc.invalidateQueries({ queryKey: trainingKeys.models });
  }, [outcome, qc]);

  return (
    <form className="card" aria-label="Upload a checkpoint" onSubmit={submit} noValidate data-testid="model-upload">
      <h2>Upload a checkpoint</h2>
      <p className="muted small">A state dict (.pt, .pth, .safetensors) of a catalog architecture; it is loaded with weights only and checked.</p>
      <div className="grid grid--2 grid--tight">
        <div className={fieldErrors.file ? "field field--invalid" : "field"}>
          <label htmlFor="mu-file">Checkpoint file</label>
          <input id="mu-file" type="file" accept=".pt,.pth,.safetensors" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          {fieldErrors.file ? <p className="field__error">{fieldErrors.file}</p> : null}
        </div>
        <div className={fieldErrors.name ? "field field--invalid" : "field"}>
          <label htmlFor="mu-name">Name</label>
          <input id="mu-name" value={name} maxLength={200} onChange={(e) => setName(e.target.value)} />
          {fieldErrors.name ? <p className="field__error">{fieldErrors.name}</p> : null}
        </div>
        <div className={fieldErrors.task ? "field field--invalid" : "field"}>
          <label htmlFor="mu-task">Task</label>
          <select id="mu-task" value={task} onChange={(e) => setTask(e.target.value)} disabled={!registry.tasks.length}>
            {registry.loading ? <option value="">{TASKS_LOADING}</option> : null}
            {registry.tasks.map((t) => (
              <option key={t.name} value={t.name}>
                {t.title}
              </option>
            ))}
          </select>
          {registry.failed ? <p className="field__error">Could not load the tasks the studio trains; reload the page to try again.</p> : null}
          {fieldErrors.task ? <p className="field__error">{fieldErrors.task}</p> : null}
        </div>
        <div className={fieldErrors.architecture ? "field field--invalid" : "field"}>
          <label htmlFor="mu-arch">Architecture</label>
          <select id="mu-arch" value={arch} onChange={(e) => setArchitecture(e.target.value)}>
            {entries.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name}
              </option>
            ))}
          </select>
          {fieldErrors.architecture ? <p className="field__error">{fieldErrors.architecture}</p> : null}
        </div>
        <div className={fieldErrors.input_size ? "field field--invalid" : "field"}>
          <label htmlFor="mu-size">Input size (px)</label>
          <input id="mu-size" inputMode="numeric" value={inputSize} placeholder="the architecture's" onChange={(e) => setInputSize(e.target.value)} />
          {fieldErrors.input_size ? <p className="field__error">{fieldErrors.input_size}</p> : null}
        </div>
      </div>
      <div className={fieldErrors.class_names ? "field field--invalid" : "field"}>
        <label htmlFor="mu-classes">
          Class names (one per line, in head order{info?.background ? "; background first" : ""})
        </label>
        <textarea id="mu-classes" rows={3} value={classNames} onChange={(e) => setClassNames(e.target.value)} />
        {fieldErrors.class_names ? <p className="field__error">{fieldErrors.class_names}</p> : null}
      </div>
      {formError ? (
        <p className="field__error" role="alert" data-testid="model-upload-error">
          {formError}
        </p>
      ) : null}
      {started ? (
        <p data-testid="model-upload-outcome" className={progress?.status === "failed" ? "field__error" : "muted"}>
          {started.file}: import job #{started.jobId} {progress?.status ?? "queued"}
          {progress?.error ? ` — ${progress.error}` : ""}
          {progress?.status === "succeeded" ? (
            <>
              {" "}
              — <Link to={`/models/${started.modelId}`}>open the model</Link>
            </>
          ) : null}
        </p>
      ) : null}
      <div className="form-actions">
        <button type="submit" className="button" disabled={busy}>
          {busy ? "Uploading…" : "Upload"}
        </button>
      </div>
    </form>
  );
}

export function ModelsPage() {
  const models = useModels();
  const registry = useTaskRegistry();
  return (
    <section className="page page--wide" data-testid="models-page">
      <div className="page-head">
        <h1>Models</h1>
      </div>
      <div className="card">
        <h2>Your models</h2>
        {models.isPending ? <Loading label="Loading models…" /> : null}
        {models.isError ? (
          <div className="banner banner--error" role="alert">
            Could not load models: {errorMessage(models.error)}
          </div>
        ) : null}
        {models.data && models.data.length === 0 ? (
          <p className="muted" data-testid="no-models">
            No models yet. <Link to="/runs/new">Train one</Link> or upload a checkpoint below.
          </p>
        ) : null}
        {models.data && models.data.length > 0 ? (
          <div className="table-scroll">
            <table className="table" data-testid="models-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Task</th>
                  <th scope="col">Architecture</th>
                  <th scope="col">Dataset</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num">Score</th>
                  <th scope="col" className="num">Params</th>
                  <th scope="col" className="num">FLOPs</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {models.data.map((m) => (
                  <ModelRow key={m.id} model={m} registry={registry} />
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </div>
      <UploadModelForm registry={registry} />
    </section>
  );
}
