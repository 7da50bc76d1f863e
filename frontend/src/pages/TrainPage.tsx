import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { useDatasets } from "../api/datasets";
import { ApiError, errorMessage } from "../api/errors";
import { usePresets, useRunCatalog, type RunCatalogItem, type RunFormTask } from "../api/runForm";
import { useTaskRegistry } from "../api/tasks";
import { configYaml, saveBlob, useCreateJob, useTrainSchema, validateConfig, type RunConfig } from "../api/training";
import { Loading } from "../components/Loading";
import { AugmentPreview } from "../training/AugmentPreview";
import { userChanges } from "../training/configDiff";
import { Estimate } from "../training/Estimate";
import {
  alternativesIn,
  changedIn,
  errorsIn,
  optionsSchema,
  sectionsOf,
  simpleFieldsIn,
  topLevelFields,
  type CatalogOption,
  type Section,
} from "../training/formSections";
import { ModelCards } from "../training/ModelCards";
import { Presets } from "../training/Presets";
import { SchemaForm } from "../training/SchemaForm";
import {
  defaultValue,
  discriminatedUnion,
  getIn,
  memberOf,
  parsePath,
  resolve,
  schemaAt,
  serverFieldErrors,
  setIn,
  validate,
  type FieldErrors,
  type JsonSchema,
} from "../training/schema";
import "../training/runForm.css";

/** Never carried from one base config to the next: what picks the base, and the old model's own options. */
const CARRY_SKIP = ["version", "task", "data.dataset_id", "model.architecture", "model.options"];

/** The steps of the pipeline at `path` as they are now, in words ("Random resized crop", "Horizontal flip"). */
function stepTitles(root: JsonSchema, path: string, steps: unknown): string[] {
  const at = schemaAt(root, parsePath(path));
  const items = at ? resolve(root, at.raw).items : undefined;
  const union = items ? discriminatedUnion(root, items) : null;
  if (!union || !Array.isArray(steps)) return [];
  return steps.map((step) => memberOf(union, step)?.title ?? "?");
}

interface Carry {
  base: unknown;
  config: unknown;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : /(s|x|ch|sh)$/.test(word) ? "es" : "s"}`;
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
  const catalog = useRunCatalog(dataset && task ? task : null, dataset ? dataset.id : null);
  /** The config the form edits, and the base it started from (the server's answer for this dataset and model). */
  const [config, setConfig] = useState<unknown>(null);
  const [base, setBase] = useState<unknown>(null);
  /** A base config being asked for (a model card was picked, the dataset changed): the model it is for. */
  const [rebasing, setRebasing] = useState<{ architecture: string | null } | null>(null);
  const [serverErrors, setServerErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [checked, setChecked] = useState<string | null>(null);
  const [busy, setBusy] = useState<null | "check" | "submit" | "yaml" | "import">(null);
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set());
  /** From the last estimate: epochs and iterations are converted by it when the user switches between them. */
  const [perEpoch, setPerEpoch] = useState<number | null>(null);
  const create = useCreateJob();
  const importRef = useRef<HTMLInputElement>(null);
  const seq = useRef(0);

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

  /**
   * Ask the server for the base config of (task, dataset, model): the one set of defaults, from the catalog
   * entry and this machine. With `carry`, what the user changed from the old base is kept: sent along, or
   * (where the server refuses it) laid over the new base here, its errors shown by their fields.
   */
  const loadBase = async (t: string, dsId: number, architecture: string | null, carry: Carry | null) => {
    const id = ++seq.current;
    setRebasing({ architecture });
    const bare: RunConfig = { task: t, data: { dataset_id: dsId }, ...(architecture ? { model: { architecture } } : {}) };
    const kept = carry ? userChanges(carry.base, carry.config, CARRY_SKIP) : [];
    const overlay = (c: unknown) => kept.reduce((acc, p) => setIn(acc, parsePath(p), getIn(carry!.config, parsePath(p))), c);
    try {
      const [fresh, withChanges] = await Promise.allSettled([
        validateConfig(bare),
        kept.length ? validateConfig(overlay(bare) as RunConfig) : Promise.resolve(null),
      ]);
      if (id !== seq.current) return;
      if (fresh.status === "rejected") throw fresh.reason;
      let next: unknown = fresh.value.config;
      let errs: FieldErrors = {};
      if (kept.length) {
        if (withChanges.status === "fulfilled" && withChanges.value) next = withChanges.value.config;
        else {
          next = overlay(fresh.value.config);
          const reason = withChanges.status === "rejected" ? withChanges.reason : null;
          if (reason instanceof ApiError && Object.keys(reason.fieldErrors).length) errs = serverFieldErrors(reason.fieldErrors);
        }
      }
      setBase(fresh.value.config);
      setConfig(next);
      setServerErrors(errs);
      setFormError(null);
      setChecked(null);
    } catch (err) {
      if (id !== seq.current) return;
      if (!carry) {
        // The server could not answer: the schema's own defaults, so the form is still there.
        const fallback = root ? setIn(setIn(defaultValue(root, root), ["data", "dataset_id"], dsId), ["task"], t) : null;
        const picked = architecture && fallback ? setIn(fallback, ["model", "architecture"], architecture) : fallback;
        setBase(picked);
        setConfig(picked);
      } else {
        let next = setIn(carry.config, ["data", "dataset_id"], dsId);
        if (architecture && architecture !== getIn(carry.config, ["model", "architecture"])) {
          next = setIn(setIn(next, ["model", "architecture"], architecture), ["model", "options"], {});
        }
        setConfig(next);
        refused(err, "Could not get this model's defaults");
      }
    } finally {
      if (id === seq.current) setRebasing(null);
    }
  };

  // A fresh config once the task's schema and catalog are known (the catalog's recommended model picked), again
  // whenever the task changes.
  const seededFor = useRef<string | null>(null);
  const catalogSettled = (catalog.isSuccess && !catalog.isPlaceholderData) || catalog.isError;
  useEffect(() => {
    if (!root || datasetId == null || !task || task !== schemaTask || seededFor.current === task || !catalogSettled) return;
    seededFor.current = task;
    if (config !== null && getIn(config, ["task"]) === task) return; // imported from YAML
    setConfig(null);
    setBase(null);
    setServerErrors({});
    setChecked(null);
    setOpen(new Set());
    void loadBase(task, datasetId, catalog.data?.recommended ?? null, null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [root, config, datasetId, task, schemaTask, catalogSettled]);
  // Another dataset: its base config (defaults may follow the data), keeping what the user changed.
  useEffect(() => {
    if (config === null || datasetId == null || !task || seededFor.current !== task || rebasing) return;
    if (getIn(config, ["data", "dataset_id"]) === datasetId) return;
    const arch = getIn(config, ["model", "architecture"]);
    void loadBase(task, datasetId, typeof arch === "string" ? arch : null, { base, config });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [datasetId, config, task, rebasing]);

  const clientErrors = useMemo(() => (root && config !== null ? validate(root, root, config) : {}), [root, config]);
  const errors = useMemo(() => ({ ...clientErrors, ...serverErrors }), [clientErrors, serverErrors]);
  const architecture = (getIn(config, ["model", "architecture"]) as string | undefined) ?? null;
  const entries: RunCatalogItem[] = catalog.data?.entries ?? [];
  const picked = entries.find((e) => e.name === architecture) ?? null;
  const presets = usePresets(schemaTask ?? null, datasetId, picked ? picked.name : null);

  const taskInfo = task ? (registry.get(task) as RunFormTask | undefined) : undefined;
  const simple = useMemo(() => (root ? simpleFieldsIn(root, taskInfo?.simple_fields) : []), [root, taskInfo]);
  const alternatives = useMemo(() => (root ? alternativesIn(root) : {}), [root]);
  const topLevel = useMemo(() => (root ? topLevelFields(root) : []), [root]);
  // An entry without options (the catalog says so) has no free-form options box either.
  const noOptions = !!picked && !(picked.options ?? []).length;
  const sections = useMemo(
    () => (root ? sectionsOf(root, [...simple, ...topLevel, ...(noOptions ? ["model.options"] : [])], alternatives) : []),
    [root, simple, topLevel, alternatives, noOptions],
  );
  const overrides = useMemo(() => {
    const s = optionsSchema(picked?.options as CatalogOption[] | undefined);
    return s ? { "model.options": s } : undefined;
  }, [picked]);

  // A section with an error in it opens by itself (a server 422 names fields that may be folded away).
  const errorKeys = JSON.stringify(Object.entries(errors).sort(([a], [b]) => a.localeCompare(b)));
  useEffect(() => {
    const withErrors = sections.filter((s) => errorsIn(s, errors).length).map((s) => s.path);
    if (withErrors.length) setOpen((o) => (withErrors.every((p) => o.has(p)) ? o : new Set([...o, ...withErrors])));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [errorKeys, sections]);

  const change = (next: unknown) => {
    // A server error stays until the field it names changes.
    setServerErrors((errs) => {
      const kept: FieldErrors = {};
      for (const [k, msg] of Object.entries(errs)) {
        const path = parsePath(k);
        if (JSON.stringify(getIn(config, path)) === JSON.stringify(getIn(next, path))) kept[k] = msg;
      }
      return kept;
    });
    setChecked(null);
    setConfig(next);
  };

  /** Epochs ↔ iterations, the same length of training, by the measured iterations per epoch. */
  const convertLength = (from: string, to: string, value: unknown): unknown => {
    if (typeof value !== "number" || !perEpoch) return undefined;
    if (from.endsWith(".epochs") && to.endsWith(".iterations")) return value * perEpoch;
    if (from.endsWith(".iterations") && to.endsWith(".epochs")) return Math.max(1, Math.ceil(value / perEpoch));
    return undefined;
  };

  const refused = (err: unknown, prefix = "The studio refused this config") => {
    if (err instanceof ApiError && Object.keys(err.fieldErrors).length) {
      setServerErrors(serverFieldErrors(err.fieldErrors));
      setFormError(`${prefix}: ${err.detail}`);
    } else {
      setFormError(`${prefix}: ${errorMessage(err)}`);
    }
  };

  const onPick = (entry: RunCatalogItem) => {
    if (!task || datasetId == null) return;
    void loadBase(task, datasetId, entry.name, config !== null && base !== null ? { base, config } : null);
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
      setFormError(`Fix ${plural(n, "field")} first: ${Object.keys(clientErrors).map((k) => k || "config").join(", ")}.`);
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
      seq.current += 1; // a base still being asked for is not for this config
      setRebasing(null);
      setServerErrors({});
      const importedTask = getIn(imported, ["task"]);
      if (typeof importedTask === "string") {
        seededFor.current = importedTask;
        setTask(importedTask);
      }
      setConfig(imported);
      setBase(imported);
      const id = getIn(imported, ["data", "dataset_id"]);
      if (typeof id === "number") setDatasetId(id);
      setChecked(`Loaded ${file.name}.`);
      // What the file changes from the studio's defaults for its model: counted in the sections.
      const arch = getIn(imported, ["model", "architecture"]);
      if (typeof importedTask === "string" && typeof id === "number") {
        const mine = seq.current;
        validateConfig({ task: importedTask, data: { dataset_id: id }, ...(typeof arch === "string" ? { model: { architecture: arch } } : {}) })
          .then((r) => {
            if (mine === seq.current) setBase(r.config);
          })
          .catch(() => undefined);
      }
    } catch (err) {
      if (err instanceof ApiError && Object.keys(err.fieldErrors).length) {
        setServerErrors(serverFieldErrors(err.fieldErrors));
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
  const selected = rebasing?.architecture ?? (picked ? picked.name : null);
  const showForm = root && config !== null && taskSupported;
  const augmentWatch = JSON.stringify(getIn(config, ["data", "augment"]) ?? null);

  const renderSection = (s: Section) => {
    const changed = changedIn(s, base, config);
    const errs = errorsIn(s, errors).length;
    const isPipeline = s.path.includes(".");
    // A pipeline's summary names its steps as they are now; a section's, the fields it holds.
    const hint = isPipeline ? stepTitles(root as JsonSchema, s.path, getIn(config, parsePath(s.path))) : s.fields;
    return (
      <details
        key={s.path}
        className="run-section"
        data-testid={`section-${s.path}`}
        aria-label={s.title}
        open={open.has(s.path)}
        onToggle={(e) => {
          const isOpen = (e.currentTarget as HTMLDetailsElement).open;
          setOpen((o) => {
            if (isOpen === o.has(s.path)) return o;
            const next = new Set(o);
            if (isOpen) next.add(s.path);
            else next.delete(s.path);
            return next;
          });
        }}
      >
        <summary>
          <span className="run-section__title">{s.title}</span>
          <code className="sf-code">{s.path}</code>
          {hint.length ? (
            <span className="run-section__fields muted small" aria-hidden="true">
              {hint.slice(0, 5).join(isPipeline ? " → " : ", ")}
              {hint.length > 5 ? (isPipeline ? " → …" : ", …") : ""}
            </span>
          ) : isPipeline ? (
            <span className="run-section__fields muted small">no steps</span>
          ) : null}
          {changed ? (
            <span className="run-section__badge" data-testid="section-changed">
              {changed} changed
            </span>
          ) : null}
          {errs ? (
            <span className="run-section__badge run-section__badge--bad" data-testid="section-errors">
              {plural(errs, "error")}
            </span>
          ) : null}
        </summary>
        <div className={isPipeline ? "run-section__body run-section__body--pipeline" : "run-section__body"}>
          <SchemaForm
            schema={root as JsonSchema}
            value={config}
            onChange={change}
            errors={errors}
            path={s.path}
            hidden={s.hidden}
            alternatives={alternatives}
            convertAlternative={convertLength}
            {...(overrides ? { overrides } : {})}
          />
          {isPipeline && s.path === "data.augment" ? (
            <AugmentPreview config={config as RunConfig} disabled={busy !== null || rebasing !== null} watch={augmentWatch} />
          ) : null}
        </div>
      </details>
    );
  };

  return (
    <section className="page page--wide run-form" data-testid="train-page">
      <div className="page-head run-form__head">
        <h1>New training run</h1>
        {showForm ? (
          <div className="run-form__yaml">
            <button type="button" className="button button--ghost button--small" onClick={onExport} disabled={busy !== null}>
              Export YAML
            </button>
            <label className="button button--ghost button--small file-button">
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
          </div>
        ) : null}
      </div>

      <div className="card run-card">
        <h2>1. Data</h2>
        {ready.length === 0 ? (
          <p className="muted" data-testid="no-ready-datasets">
            No dataset is ready yet. Upload one on the Datasets page first.
          </p>
        ) : (
          <div className="run-data">
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
            </div>
            {dataset ? (
              <p className="field__hint run-data__classes">
                {plural(dataset.classes.length, "class")}: {dataset.classes.slice(0, 8).join(", ")}
                {dataset.classes.length > 8 ? "…" : ""}
              </p>
            ) : null}
          </div>
        )}
      </div>

      {dataset && task ? (
        <div className="card run-card">
          <div className="run-card__head">
            <h2>2. Model</h2>
            {catalog.data?.machine?.description ? (
              <span className="muted small" data-testid="machine">
                Trains on {catalog.data.machine.description}
              </span>
            ) : null}
          </div>
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
            <ModelCards
              entries={entries}
              selected={selected}
              onPick={onPick}
              pending={!!catalog.data?.stats_pending}
              recommended={catalog.data?.recommended}
              recommendedReason={catalog.data?.recommended_reason}
              disabled={busy !== null}
            />
          )}
          {errors["model.architecture"] ? <p className="field__error">{errors["model.architecture"]}</p> : null}
        </div>
      ) : null}

      {showForm ? (
        <form className="card run-card" aria-label="Run config" onSubmit={onSubmit} noValidate aria-busy={rebasing !== null || undefined}>
          <h2>3. Training</h2>
          {/* While a model's defaults are being fetched, nothing is typed that the answer would overwrite. */}
          <fieldset className="run-form__fields" disabled={rebasing !== null}>
          <div data-testid="simple-fields">
            <SchemaForm
              schema={root as JsonSchema}
              value={config}
              onChange={change}
              errors={errors}
              only={simple}
              alternatives={alternatives}
              convertAlternative={convertLength}
            />
          </div>
          <Presets root={root as JsonSchema} presets={presets.data ?? []} config={config} onApply={change} />
          </fieldset>
          <Estimate
            config={config as RunConfig}
            enabled={rebasing === null && Object.keys(clientErrors).length === 0}
            onAnswer={(e) => setPerEpoch(e.iterations_per_epoch ?? null)}
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
          <div className="form-actions run-actions">
            {topLevel.length ? (
              <div className="run-actions__fields" data-testid="run-fields">
                <SchemaForm schema={root as JsonSchema} value={config} onChange={change} errors={errors} only={topLevel} />
              </div>
            ) : null}
            <button type="button" className="button" onClick={onCheck} disabled={busy !== null || rebasing !== null}>
              {busy === "check" ? "Checking…" : "Check config"}
            </button>
            <button type="submit" className="button button--primary" disabled={busy !== null || rebasing !== null}>
              {busy === "submit" ? "Starting…" : rebasing ? "Loading the model's defaults…" : "Start training"}
            </button>
          </div>

          <fieldset className="run-advanced" disabled={rebasing !== null}>
            <h3>Advanced settings</h3>
            <p className="muted small">
              Every other field of the run config, by section; a count shows what differs from this model&apos;s defaults.
            </p>
            {sections.map(renderSection)}
          </fieldset>
        </form>
      ) : null}
    </section>
  );
}
