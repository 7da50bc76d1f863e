import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { useDatasets } from "../api/datasets";
import { ApiError, errorMessage } from "../api/errors";
import {
  configYaml,
  formatCompact,
  previewAugmentations,
  saveBlob,
  useCatalog,
  useCreateJob,
  useTrainSchema,
  validateConfig,
  type CatalogItem,
  type PreviewImage,
  type RunConfig,
} from "../api/training";
import { useTaskRegistry } from "../api/tasks";
import { Loading } from "../components/Loading";
import { SchemaForm } from "../training/SchemaForm";
import {
  defaultValue,
  getIn,
  resolve,
  serverFieldErrors,
  setIn,
  validate,
  type FieldErrors,
  type JsonSchema,
} from "../training/schema";

/** Defaults that train a light model on a CPU in minutes. */
export function applyModelDefaults(config: unknown, entry: CatalogItem): unknown {
  let c = setIn(config, ["model", "architecture"], entry.name);
  c = setIn(c, ["model", "options"], {});
  let size = entry.default_input_size;
  if (entry.light) {
    size = Math.max(entry.min_input_size, Math.min(64, entry.default_input_size));
    const m = Math.max(1, entry.input_multiple);
    size = Math.ceil(size / m) * m;
    c = setIn(c, ["schedule", "epochs"], 10);
    c = setIn(c, ["schedule", "iterations"], null);
    c = setIn(c, ["data", "batch_size"], 32);
    c = setIn(c, ["schedule", "lr"], 1e-3);
  }
  return setIn(c, ["data", "input_size"], size);
}

function ModelPicker({
  entries,
  selected,
  onPick,
  pending,
}: {
  entries: CatalogItem[];
  selected: string | null;
  onPick: (e: CatalogItem) => void;
  pending: boolean;
}) {
  return (
    <div className="table-scroll">
      <table className="table" data-testid="catalog">
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col">Family</th>
            <th scope="col" className="num">Params</th>
            <th scope="col" className="num">FLOPs</th>
            <th scope="col" className="num">Input</th>
            <th scope="col">Notes</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => (
            <tr
              key={e.name}
              className={selected === e.name ? "row--selected" : undefined}
              data-testid="catalog-row"
              data-name={e.name}
            >
              <td>
                <label className="radio-label">
                  <input type="radio" name="architecture" value={e.name} checked={selected === e.name} onChange={() => onPick(e)} />{" "}
                  <strong>{e.name}</strong>
                </label>
              </td>
              <td>{e.family}</td>
              <td className="num" data-testid="catalog-params">
                {e.params != null ? formatCompact(e.params) : pending ? <span className="muted">measuring…</span> : "—"}
              </td>
              <td className="num" data-testid="catalog-flops">
                {e.flops != null ? formatCompact(e.flops) : pending ? <span className="muted">measuring…</span> : "—"}
              </td>
              <td className="num">{e.default_input_size}px</td>
              <td>
                {e.light ? (
                  <span className="chip chip--light" data-testid="light-chip" title="Small enough to train on a CPU in minutes">
                    light · CPU
                  </span>
                ) : null}{" "}
                <span className="muted small">{e.description}</span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Preview({ config, disabled }: { config: RunConfig; disabled: boolean }) {
  const [state, setState] = useState<
    | { kind: "idle" }
    | { kind: "loading"; note?: string }
    | { kind: "none" }
    | { kind: "error"; msg: string }
    | { kind: "ok"; images: PreviewImage[] }
  >({ kind: "idle" });
  const run = async () => {
    setState({ kind: "loading" });
    try {
      const images = await previewAugmentations(config, 8, (jobId) =>
        setState({ kind: "loading", note: `The worker is busy; preview job #${jobId} is queued…` }),
      );
      setState(images === null ? { kind: "none" } : { kind: "ok", images });
    } catch (err) {
      setState({ kind: "error", msg: errorMessage(err) });
    }
  };
  return (
    <div className="preview" data-testid="augment-preview">
      <button type="button" className="button button--ghost" onClick={run} disabled={disabled || state.kind === "loading"}>
        {state.kind === "loading" ? "Making previews…" : "Preview augmentations"}
      </button>
      {state.kind === "loading" && state.note ? (
        <p className="muted small" data-testid="preview-waiting">
          {state.note}
        </p>
      ) : null}
      {state.kind === "none" ? (
        <p className="muted small" data-testid="preview-unavailable">
          Preview unavailable: this studio cannot make augmentation previews yet.
        </p>
      ) : null}
      {state.kind === "error" ? (
        <p className="field__error" role="alert">
          Preview failed: {state.msg}
        </p>
      ) : null}
      {state.kind === "ok" ? (
        state.images.length ? (
          <ul className="preview__grid">
            {state.images.map((img, i) => (
              <li key={`${img.url}-${i}`}>
                <img src={img.url} alt={img.label || `augmented sample ${i + 1}`} data-testid="preview-img" />
                <span className="small">{img.label}</span>
              </li>
            ))}
          </ul>
        ) : (
          <p className="muted small">No images to show.</p>
        )
      ) : null}
    </div>
  );
}

export function TrainPage() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const datasets = useDatasets();
  const ready = useMemo(() => (datasets.data ?? []).filter((d) => d.status === "ready"), [datasets.data]);
  const [datasetId, setDatasetId] = useState<number | null>(() => Number(params.get("dataset")) || null);
  const dataset = ready.find((d) => d.id === datasetId) ?? null;
  const [task, setTask] = useState<string | null>(() => params.get("task"));
  const registry = useTaskRegistry();
  const schema = useTrainSchema(task);
  const catalog = useCatalog(dataset && task ? task : null);
  const [config, setConfig] = useState<unknown>(null);
  const [serverErrors, setServerErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [checked, setChecked] = useState<string | null>(null);
  const [busy, setBusy] = useState<null | "check" | "submit" | "yaml" | "import">(null);
  const create = useCreateJob();
  const importRef = useRef<HTMLInputElement>(null);

  const root = schema.data;
  // The task(s) this schema trains: a const, or an enum where one config serves two tasks (detection).
  const taskSchema = root ? resolve(root, root.properties?.task ?? {}) : undefined;
  const schemaTasks = (taskSchema?.const !== undefined ? [taskSchema.const] : (taskSchema?.enum ?? [])) as unknown[];
  const schemaTask = task && schemaTasks.includes(task) ? task : undefined;

  // Pick the first ready dataset, and a task it supports: the first in the registry's order it can train
  // (once the registry has answered), else the dataset's first.
  const registryOrder = registry.tasks.map((t) => t.name).join(" ");
  const registryPending = registry.loading;
  useEffect(() => {
    if (datasetId == null && ready.length) setDatasetId(ready[0]!.id);
  }, [ready, datasetId]);
  useEffect(() => {
    if (!dataset || registryPending) return;
    if (!task || !dataset.tasks.includes(task)) {
      const trained = registryOrder ? registryOrder.split(" ").find((t) => dataset.tasks.includes(t)) : undefined;
      setTask(trained ?? dataset.tasks[0] ?? null);
    }
  }, [dataset, task, registryOrder, registryPending]);
  // A fresh config from the task's defaults once its schema is known, again whenever the task changes; the
  // dataset id follows the picker. The studio's own defaults come from the server (the schema cannot state
  // those made by a factory, e.g. the augment list).
  const seededFor = useRef<string | null>(null);
  useEffect(() => {
    if (!root || datasetId == null || !task || task !== schemaTask || seededFor.current === task) return;
    seededFor.current = task;
    if (config !== null && getIn(config, ["task"]) === task) return; // imported from YAML
    setConfig(null);
    setServerErrors({});
    setChecked(null);
    const fallback = () => setIn(setIn(defaultValue(root, root), ["data", "dataset_id"], datasetId), ["task"], task);
    const seeded = (next: unknown) => {
      if (seededFor.current === task) setConfig(next); // not a task the user has since left
    };
    validateConfig({ task, data: { dataset_id: datasetId } })
      .then((result) => seeded(result.config))
      .catch(() => seeded(fallback()));
  }, [root, config, datasetId, task, schemaTask]);
  useEffect(() => {
    if (config !== null && datasetId != null && getIn(config, ["data", "dataset_id"]) !== datasetId) {
      setConfig((c: unknown) => setIn(c, ["data", "dataset_id"], datasetId));
    }
  }, [datasetId, config]);

  const clientErrors = useMemo(() => (root && config !== null ? validate(root, root, config) : {}), [root, config]);
  const errors = { ...clientErrors, ...serverErrors };
  const architecture = (getIn(config, ["model", "architecture"]) as string | undefined) ?? null;
  const entries = catalog.data?.entries ?? [];
  const picked = entries.find((e) => e.name === architecture) ?? null;

  const change = (next: unknown) => {
    // A server error stays until the field it names changes.
    setServerErrors((errs) => {
      const kept: FieldErrors = {};
      for (const [k, msg] of Object.entries(errs)) {
        const path = k ? k.split(".").map((p) => (/^\d+$/.test(p) ? Number(p) : p)) : [];
        if (JSON.stringify(getIn(config, path)) === JSON.stringify(getIn(next, path))) kept[k] = msg;
      }
      return kept;
    });
    setChecked(null);
    setConfig(next);
  };

  const refused = (err: unknown, prefix = "The studio refused this config") => {
    if (err instanceof ApiError && Object.keys(err.fieldErrors).length) {
      setServerErrors(serverFieldErrors(err.fieldErrors));
      setFormError(`${prefix}: ${err.detail}`);
    } else {
      setFormError(`${prefix}: ${errorMessage(err)}`);
    }
  };

  const check = async (): Promise<RunConfig | null> => {
    setFormError(null);
    setChecked(null);
    try {
      const result = await validateConfig(config as RunConfig);
      setServerErrors({});
      setChecked("The studio accepts this config.");
      return result.config;
    } catch (err) {
      refused(err);
      return null;
    }
  };

  const onCheck = async () => {
    setBusy("check");
    await check();
    setBusy(null);
  };

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    const n = Object.keys(clientErrors).length;
    if (n) {
      setFormError(`Fix ${n} field${n === 1 ? "" : "s"} first: ${Object.keys(clientErrors).map((k) => k || "config").join(", ")}.`);
      return;
    }
    setBusy("submit");
    const normalised = await check();
    if (normalised) {
      try {
        const job = await create.mutateAsync({ kind: "train", config: normalised });
        navigate(`/jobs/${job.id}`);
      } catch (err) {
        refused(err, "The run could not be started");
      }
    }
    setBusy(null);
  };

  const onExport = async () => {
    setBusy("yaml");
    setFormError(null);
    try {
      const { text, filename } = await configYaml(config as RunConfig, "run.yaml");
      saveBlob(new Blob([text], { type: "application/yaml" }), filename);
    } catch (err) {
      refused(err, "Could not export YAML");
    }
    setBusy(null);
  };

  const onImport = async (file: File | undefined) => {
    if (!file) return;
    setBusy("import");
    setFormError(null);
    try {
      const text = await file.text();
      const result = await validateConfig({ yaml: text });
      const imported = result.config;
      setServerErrors({});
      const importedTask = getIn(imported, ["task"]);
      if (typeof importedTask === "string") {
        seededFor.current = importedTask;
        setTask(importedTask);
      }
      setConfig(imported);
      const id = getIn(imported, ["data", "dataset_id"]);
      if (typeof id === "number") setDatasetId(id);
      setChecked(`Loaded ${file.name}.`);
    } catch (err) {
      if (err instanceof ApiError && Object.keys(err.fieldErrors).length) {
        const errs = serverFieldErrors(err.fieldErrors);
        setServerErrors(errs);
        setFormError(`${file.name}: ${err.detail}`);
      } else {
        setFormError(`${file.name}: ${errorMessage(err)}`);
      }
    }
    if (importRef.current) importRef.current.value = "";
    setBusy(null);
  };

  if (datasets.isPending) return <Loading label="Loading…" />;
  const untrainable = schema.error instanceof ApiError && schema.error.status === 422;
  if (schema.isError && !untrainable) {
    return (
      <div className="banner banner--error" role="alert">
        Could not load the config schema: {errorMessage(schema.error)}
      </div>
    );
  }

  const taskSupported = !!task && task === schemaTask;
  const serverList = Object.entries(serverErrors);

  return (
    <section className="page page--wide" data-testid="train-page">
      <div className="page-head">
        <h1>New training run</h1>
      </div>

      <div className="card">
        <h2>1. Data</h2>
        {ready.length === 0 ? (
          <p className="muted" data-testid="no-ready-datasets">
            No dataset is ready yet. Upload one on the Datasets page first.
          </p>
        ) : (
          <div className="grid grid--2 grid--tight">
            <div className="field">
              <label htmlFor="train-dataset">Dataset version</label>
              <select id="train-dataset" value={datasetId ?? ""} onChange={(e) => setDatasetId(Number(e.target.value))}>
                {ready.map((d) => (
                  <option key={d.id} value={d.id}>
                    {d.name} · v{d.version} (#{d.id})
                  </option>
                ))}
              </select>
              {errors["data.dataset_id"] ? <p className="field__error">{errors["data.dataset_id"]}</p> : null}
            </div>
            <div className="field">
              <label htmlFor="train-task">Task</label>
              <select id="train-task" value={task ?? ""} onChange={(e) => setTask(e.target.value)} disabled={!dataset}>
                {(dataset?.tasks ?? []).map((t) => (
                  <option key={t} value={t}>
                    {registry.title(t)}
                  </option>
                ))}
              </select>
              {dataset ? (
                <p className="field__hint">
                  {dataset.classes.length} classes: {dataset.classes.slice(0, 8).join(", ")}
                  {dataset.classes.length > 8 ? "…" : ""}
                </p>
              ) : null}
            </div>
          </div>
        )}
      </div>

      {dataset && task ? (
        <div className="card">
          <h2>2. Model</h2>
          {schema.isLoading ? (
            <Loading label="Loading the run form…" />
          ) : !taskSupported ? (
            <p className="muted" data-testid="task-unsupported">
              Training for {registry.title(task)} is not available yet.
            </p>
          ) : catalog.isPending ? (
            <Loading label="Loading the catalog…" />
          ) : catalog.isError ? (
            <div className="banner banner--error" role="alert">
              Could not load the catalog: {errorMessage(catalog.error)}
            </div>
          ) : (
            <ModelPicker
              entries={entries}
              selected={picked ? picked.name : null}
              onPick={(e) => change(applyModelDefaults(config, e))}
              pending={!!catalog.data?.stats_pending}
            />
          )}
          {errors["model.architecture"] ? <p className="field__error">{errors["model.architecture"]}</p> : null}
        </div>
      ) : null}

      {root && config !== null && taskSupported && picked ? (
        <form className="card" aria-label="Run config" onSubmit={onSubmit} noValidate>
          <h2>3. Config</h2>
          <p className="muted small">
            Every field of the run config; defaults are filled in. {picked.light ? "CPU-friendly defaults were set for this light model." : null}
          </p>
          <div className="train-toolbar">
            <button type="button" className="button button--ghost" onClick={onExport} disabled={busy !== null}>
              Export YAML
            </button>
            <label className="button button--ghost file-button">
              Import YAML
              <input
                ref={importRef}
                type="file"
                accept=".yaml,.yml,application/yaml,text/yaml"
                aria-label="Import YAML"
                className="visually-hidden"
                onChange={(e) => void onImport(e.target.files?.[0])}
              />
            </label>
            <Preview config={config as RunConfig} disabled={busy !== null} />
          </div>
          <SchemaForm
            schema={root as JsonSchema}
            value={config}
            onChange={change}
            errors={errors}
            readOnly={["data.dataset_id", "model.architecture"]}
          />
          {serverList.length ? (
            <div className="banner banner--error" role="alert" data-testid="server-errors">
              <ul>
                {serverList.map(([k, msg]) => (
                  <li key={k}>
                    <code>{k || "config"}</code>: {msg}
                  </li>
                ))}
              </ul>
            </div>
          ) : null}
          {formError ? (
            <p className="field__error" role="alert" data-testid="form-error">
              {formError}
            </p>
          ) : null}
          {checked ? (
            <p className="ok-note" data-testid="check-ok">
              {checked}
            </p>
          ) : null}
          <div className="form-actions">
            <button type="button" className="button button--ghost" onClick={onCheck} disabled={busy !== null}>
              {busy === "check" ? "Checking…" : "Check config"}
            </button>
            <button type="submit" className="button" disabled={busy !== null}>
              {busy === "submit" ? "Starting…" : "Start training"}
            </button>
          </div>
        </form>
      ) : null}
    </section>
  );
}

