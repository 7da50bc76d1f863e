import { useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { ApiError, errorMessage } from "../api/errors";
import {
  camImage,
  downloadExport,
  predictAnswer,
  predictOverlay,
  useDeleteModel,
  useModel,
  useModelDashboard,
  type AnswerShape,
  type CamAnswer,
  type ClassScore,
  type ExplainTarget,
  type ExportFormat,
  type ModelDetail,
} from "../api/training";
import { ArtifactList } from "../components/ArtifactList";
import { ConfirmDelete } from "../components/ConfirmDelete";
import { Loading } from "../components/Loading";
import { StatusBadge } from "../components/StatusBadge";
import { TASKS_LOADING, useTaskRegistry, type TaskInfo, type TaskRegistry } from "../api/tasks";
import { statusTone } from "../datasets/format";
import { formatDateTime } from "../time";
import { ConfusionMatrix } from "../training/ConfusionMatrix";
import { EvaluationImagesPanel } from "../training/EvaluationImages";
import { CamGallery, ClassTable, classColumns, CurvesOverRun, PrCurves, SummaryTiles, WorstImages } from "../training/Dashboard";
import { formatCount, formatFlops } from "../training/ModelCards";
import { NotFoundPage } from "./NotFoundPage";

function Tile({ label, value, testId }: { label: string; value: string; testId: string }) {
  return (
    <div className="tile">
      <span className="tile__value" data-testid={testId}>
        {value}
      </span>
      <span className="tile__label">{label}</span>
    </div>
  );
}

function ExportButtons({ model }: { model: ModelDetail }) {
  const [state, setState] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState<ExportFormat | null>(null);
  const run = async (format: ExportFormat) => {
    setBusy(format);
    setState((s) => ({ ...s, [format]: "Asking…" }));
    try {
      const name = await downloadExport(model, format, (jobId) =>
        setState((s) => ({ ...s, [format]: `Converting (job #${jobId})…` })),
      );
      setState((s) => ({ ...s, [format]: `Downloaded ${name}` }));
    } catch (err) {
      setState((s) => ({ ...s, [format]: `Failed: ${errorMessage(err)}` }));
    }
    setBusy(null);
  };
  return (
    <div className="exports-row" data-testid="model-exports">
      {(["torchscript", "onnx"] as const).map((f) => (
        <div key={f} className="export-item">
          <button type="button" className="button" disabled={busy !== null || model.status !== "ready"} onClick={() => void run(f)}>
            Export {f === "torchscript" ? "TorchScript" : "ONNX"}
          </button>
          {state[f] ? (
            <span className={state[f]!.startsWith("Failed") ? "field__error" : "muted small"} data-testid={`export-${f}-state`}>
              {state[f]}
            </span>
          ) : null}
        </div>
      ))}
    </div>
  );
}

function useObjectUrl(): [string | null, (url: string | null) => void] {
  const [url, setUrl] = useState<string | null>(null);
  const ref = useRef<string | null>(null);
  useEffect(
    () => () => {
      if (ref.current) URL.revokeObjectURL(ref.current);
    },
    [],
  );
  const set = (next: string | null) => {
    if (ref.current && ref.current !== next) URL.revokeObjectURL(ref.current);
    ref.current = next;
    setUrl(next);
  };
  return [url, set];
}

/**
 * Whether Grad-CAM explains the model's task, as the registry says: "yes"; "no", with the registry's reason;
 * "unknown" while the registry is asked for. A registry that failed, or a task it does not list, is offered
 * Grad-CAM: the studio says why not if it cannot.
 */
type CamOffer = { kind: "yes" } | { kind: "no"; reason: string } | { kind: "unknown" };

function camOffer(registry: TaskRegistry, task: TaskInfo | undefined): CamOffer {
  if (task) return task.explain == null ? { kind: "yes" } : { kind: "no", reason: sentence(task.explain) };
  return registry.loading ? { kind: "unknown" } : { kind: "yes" };
}

/** A reason as a sentence: a capital first, a full stop last. */
function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  const first = t[0]!.toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** What the answer's scores are, by what the answer holds (or, before it comes, what the task's models answer). */
const SCORE_HEADINGS: Record<AnswerShape, string> = {
  mask: "Classes found (share of pixels)",
  detections: "Objects found (best score per class)",
  classes: "Top classes",
};

function expectedShape(registry: TaskRegistry, task: TaskInfo | undefined): AnswerShape | null {
  if (task) return task.model_outputs === "detections" ? "detections" : task.background ? "mask" : "classes";
  return registry.loading ? null : "classes";
}

/** What the picture with the model's answer painted on shows, in the registry's words. */
function drawnLabel(registry: TaskRegistry, task: TaskInfo | undefined): string {
  if (task) return task.drawn;
  return registry.loading ? TASKS_LOADING : "Prediction drawn";
}

function CamUnavailable({ reason, testId }: { reason: string; testId: string }) {
  return (
    <p className="muted small" data-testid={testId}>
      {reason}
    </p>
  );
}

/** The inference lane could not be reached or did not answer in time (a 503 naming it). */
function isLaneError(err: unknown): boolean {
  return err instanceof ApiError && (err.code === "inference_timeout" || err.code === "inference_unavailable");
}

/** What the heat map explains: the class, its score, the layer read, and the model's own top class. */
function CamCaption({ info }: { info: CamAnswer }) {
  const layers = info.targetLayer?.replace(/^(gradcam|eigencam): /, "");
  if (info.method === "eigencam") {
    return (
      <p className="muted small" data-testid="cam-caption">
        EigenCAM: where the model looks in the picture (it found no box to explain){layers ? `, at ${layers}` : ""}.
      </p>
    );
  }
  if (info.box) {
    return (
      <p className="muted small" data-testid="cam-caption">
        Explains its box of “{info.targetClass}”{info.score != null ? ` (score ${info.score.toFixed(2)})` : ""} at {info.box.split(",").map((v) => Math.round(Number(v))).join(", ")}
        {layers ? `, read at ${layers}` : ""}.
      </p>
    );
  }
  const parts = [
    info.targetClass ? `Explains “${info.targetClass}”${info.score != null ? ` (${(info.score * 100).toFixed(1)}%)` : ""}` : null,
    info.targetLayer ? `at layer ${info.targetLayer}` : null,
  ].filter(Boolean);
  const other = info.predictedClass && info.predictedClass !== info.targetClass ? ` · the model's top class is “${info.predictedClass}”` : "";
  if (!parts.length && !other) return null;
  return (
    <p className="muted small" data-testid="cam-caption">
      {parts.join(" ")}
      {other}
    </p>
  );
}

function TryIt({ model, registry }: { model: ModelDetail; registry: TaskRegistry }) {
  const task = registry.get(model.task);
  const offer = camOffer(registry, task);
  const [file, setFile] = useState<File | null>(null);
  const [dragging, setDragging] = useState(false);
  const [scores, setScores] = useState<ClassScore[] | null>(null);
  const [shape, setShape] = useState<AnswerShape | null>(null);
  const [overlay, setOverlay] = useObjectUrl();
  const [cam, setCam] = useObjectUrl();
  const [camInfo, setCamInfo] = useState<CamAnswer | null>(null);
  const [target, setTarget] = useState("");
  const [errors, setErrors] = useState<{ predict?: string; overlay?: string; cam?: string }>({});
  const [busy, setBusy] = useState<{ predict?: boolean; cam?: boolean }>({});
  // Set when the inference lane did not answer: the health page shows its workers.
  const [laneDown, setLaneDown] = useState(false);
  const abort = useRef<AbortController | null>(null);
  useEffect(() => () => abort.current?.abort(), []);

  const runCam = async (f: File, cls: string) => {
    const signal = abort.current?.signal;
    setBusy((b) => ({ ...b, cam: true }));
    setErrors((e) => ({ ...e, cam: undefined }));
    try {
      const answer = await camImage(model.id, f, cls, signal);
      if (signal?.aborted) {
        URL.revokeObjectURL(answer.url);
        return;
      }
      setCam(answer.url);
      setCamInfo(answer);
    } catch (err) {
      if (signal?.aborted) return; // another image was chosen meanwhile
      setCam(null);
      setCamInfo(null);
      setErrors((e) => ({ ...e, cam: `${f.name}: ${errorMessage(err)}` }));
      if (isLaneError(err)) setLaneDown(true);
    }
    setBusy((b) => ({ ...b, cam: false }));
  };

  const choose = async (f: File | undefined) => {
    if (!f) return;
    abort.current?.abort();
    abort.current = new AbortController();
    const signal = abort.current.signal;
    setFile(f);
    setScores(null);
    setShape(null);
    setOverlay(null);
    setCam(null);
    setCamInfo(null);
    setErrors({});
    setLaneDown(false);
    setBusy({ predict: true, cam: true });
    // An answer for an image no longer shown (another was chosen meanwhile) is dropped.
    const failed = (key: "predict" | "overlay") => (err: unknown) => {
      if (signal.aborted) return;
      setErrors((e) => ({ ...e, [key]: `${f.name}: ${errorMessage(err)}` }));
      if (isLaneError(err)) setLaneDown(true);
    };
    const p = predictAnswer(model.id, f, 5, signal)
      .then((answer) => {
        if (signal.aborted) return;
        setScores(answer.scores);
        setShape(answer.shape);
      })
      .catch(failed("predict"));
    const o = predictOverlay(model.id, f, signal)
      .then((url) => (signal.aborted ? URL.revokeObjectURL(url) : setOverlay(url)))
      .catch(failed("overlay"));
    await Promise.all([p, o]);
    if (signal.aborted) return;
    setBusy((b) => ({ ...b, predict: false }));
    // While the registry is still asked for, the heat map is asked for too: the panel shows it once the
    // registry says Grad-CAM explains this task, and the registry's reason otherwise.
    if (offer.kind !== "no") await runCam(f, target);
    else setBusy((b) => ({ ...b, cam: false }));
  };

  const max = Math.max(1e-9, ...(scores ?? []).map((s) => s.score));
  const scoresAre = shape ?? expectedShape(registry, task);
  return (
    <div className="card" data-testid="try-it">
      <h2>Try it</h2>
      <label
        className={`dropzone${dragging ? " dropzone--over" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          void choose(e.dataTransfer.files?.[0]);
        }}
      >
        <span className="dropzone__icon" aria-hidden="true">⇪</span>
        <span className="dropzone__file">{file ? `Image: ${file.name}` : "Drop an image here, or click to choose one"}</span>
        <input
          type="file"
          accept="image/*"
          aria-label="Image to classify"
          className="visually-hidden"
          onChange={(e) => {
            void choose(e.target.files?.[0]);
            e.target.value = "";
          }}
        />
      </label>
      {laneDown ? (
        <p className="banner banner--warn" data-testid="lane-down">
          No worker on the inference lane answered. <Link to="/health">See its workers on the health page.</Link>
        </p>
      ) : null}
      {file ? (
        <div className="grid grid--3 grid--tight try-it__results">
          <div>
            <h3 data-testid="scores-heading">{scoresAre ? SCORE_HEADINGS[scoresAre] : TASKS_LOADING}</h3>
            {busy.predict && !scores ? <Loading label="Predicting…" /> : null}
            {errors.predict ? (
              <p className="field__error" role="alert" data-testid="predict-error">
                {errors.predict}
              </p>
            ) : null}
            {scores && scores.length === 0 ? (
              <p className="muted" data-testid="topk-empty">
                {scoresAre === "mask"
                  ? "Every pixel was painted as background: no class was found."
                  : "Nothing found: no object scored above the model's score threshold on this picture. Its page's per-class table shows what it finds on the validation split."}
              </p>
            ) : null}
            {scores && scores.length > 0 ? (
              <ul className="bars__list topk" data-testid="topk">
                {scores.map((s) => (
                  <li key={s.index} className="bars__row" data-testid="topk-row">
                    <span className="bars__label" data-testid="topk-name" title={s.name}>
                      {s.name}
                    </span>
                    <span className="bars__track" aria-hidden="true">
                      <span className="bars__fill" style={{ width: `${(s.score / max) * 100}%` }} />
                    </span>
                    <span className="bars__value">{(s.score * 100).toFixed(1)}%</span>
                  </li>
                ))}
              </ul>
            ) : null}
          </div>
          <div>
            <h3 data-testid="drawn-heading">{drawnLabel(registry, task)}</h3>
            {errors.overlay ? <p className="field__error">{errors.overlay}</p> : null}
            {overlay ? <img className="try-it__img" src={overlay} alt="The image with its prediction drawn on" data-testid="overlay-img" /> : busy.predict ? <Loading label="Drawing…" /> : null}
          </div>
          {offer.kind === "no" ? (
            <div>
              <h3>Grad-CAM</h3>
              <CamUnavailable reason={offer.reason} testId="try-cam-unavailable" />
            </div>
          ) : offer.kind === "unknown" ? (
            <div>
              <h3>Grad-CAM</h3>
              <Loading label={TASKS_LOADING} />
            </div>
          ) : (
          <div>
            <h3>Grad-CAM</h3>
            <div className="field field--inline">
              <label htmlFor="cam-target">Class</label>
              <select
                id="cam-target"
                value={target}
                onChange={(e) => {
                  setTarget(e.target.value);
                  if (file) void runCam(file, e.target.value);
                }}
              >
                <option value="">top prediction</option>
                {model.class_names.map((c) => (
                  <option key={c} value={c}>
                    {c}
                  </option>
                ))}
              </select>
            </div>
            {errors.cam ? (
              <p className="field__error" role="alert" data-testid="cam-error">
                {errors.cam}
              </p>
            ) : null}
            {cam ? <img className="try-it__img" src={cam} alt="Grad-CAM heat map over the image" data-testid="cam-img" /> : busy.cam ? <Loading label="Computing Grad-CAM…" /> : null}
            {cam && camInfo ? <CamCaption info={camInfo} /> : null}
          </div>
          )}
        </div>
      ) : null}
    </div>
  );
}

function DeleteModel({ model }: { model: ModelDetail }) {
  const remove = useDeleteModel();
  const navigate = useNavigate();
  return (
    <ConfirmDelete
      label="Delete model"
      pending={remove.isPending}
      error={remove.isError ? remove.error : null}
      onConfirm={() => remove.mutate(model.id, { onSuccess: () => navigate("/models", { replace: true }) })}
    />
  );
}

export function ModelPage() {
  const id = Number(useParams().id);
  const query = useModel(id);
  const model = query.data;
  const board = useModelDashboard(id, model?.status === "ready");
  const registry = useTaskRegistry();
  const [explain, setExplain] = useState<ExplainTarget | null>(null);
  const panel = useRef<HTMLDivElement>(null);
  const open = (target: ExplainTarget) => {
    setExplain(target);
    // Bring the list into view once it is drawn below the figures.
    requestAnimationFrame(() => panel.current?.scrollIntoView?.({ behavior: "smooth", block: "start" }));
  };

  if (!Number.isInteger(id) || id <= 0) return <NotFoundPage />;
  if (query.isPending) return <Loading label="Loading model…" />;
  if (query.isError || !model) {
    if (query.error instanceof ApiError && query.error.status === 404) return <NotFoundPage />;
    return (
      <div className="banner banner--error" role="alert">
        Could not load the model: {errorMessage(query.error)}
      </div>
    );
  }
  const ready = model.status === "ready";
  // The worst images' masks are drawn on the dashboard above; the list keeps to the model's own files.
  const files = model.artifacts.filter((a) => !a.name.startsWith("worst/"));
  const task = registry.get(model.task);
  const cam = camOffer(registry, task);
  const views = new Set(board.data?.explain_views ?? []);
  const matrixLabels = board.data?.confusion_labels?.length ? board.data.confusion_labels : model.class_names;
  // The open list of images sits below the figures that opened it: the metrics card when there is one.
  const explainHere = board.data && (board.data.confusion_matrix || board.data.per_class.length) ? "metrics" : "errors";
  const explainPanel = explain ? (
    <div ref={panel}>
      <EvaluationImagesPanel modelId={model.id} target={explain} onClose={() => setExplain(null)} />
    </div>
  ) : null;
  return (
    <section className="page page--wide" data-testid="model-page">
      <p className="breadcrumb">
        <Link to="/models">Models</Link> /
      </p>
      <div className="page-head page-head--wrap">
        <h1 data-testid="model-title">{model.name}</h1>
        <StatusBadge tone={statusTone(model.status)} testId="model-status">
          {model.status}
        </StatusBadge>
        <span className="page-head__spacer" />
        <DeleteModel model={model} />
      </div>
      <p className="muted meta-line">
        <span data-testid="model-task">{registry.title(model.task)}</span> · {model.architecture} · {model.input_size ? `${model.input_size}px` : "default size"} ·{" "}
        {model.dataset_id != null ? (
          <Link to={`/datasets/${model.dataset_id}`}>dataset #{model.dataset_id}</Link>
        ) : (
          "uploaded"
        )}
        {model.job_id != null ? (
          <>
            {" "}
            · <Link to={`/jobs/${model.job_id}`} data-testid="model-job-link">job #{model.job_id}</Link>
          </>
        ) : null}{" "}
        · created {formatDateTime(model.created_at)}
      </p>
      {task ? (
        <p className="muted small" data-testid="task-description">
          {task.description}
        </p>
      ) : null}
      {model.status === "importing" ? <Loading label="Checking the checkpoint… this page updates by itself." /> : null}
      {model.error ? (
        <div className="banner banner--error" role="alert" data-testid="model-error">
          {model.error}
        </div>
      ) : null}

      <div className="tiles">
        {board.data ? <SummaryTiles board={board.data} task={task} /> : null}
        <Tile label="parameters" value={formatCount(model.params)} testId="model-params" />
        <Tile
          label={`per picture at ${model.input_size ?? "?"}${"\u00a0"}px, ${model.class_names.length} classes`}
          value={model.flops == null ? "—" : formatFlops(model.flops)}
          testId="model-flops"
        />
        <Tile label="classes" value={String(model.class_names.length)} testId="model-classes" />
      </div>
      {board.isError ? (
        <p className="field__error" role="alert">
          Could not load the model's figures: {errorMessage(board.error)}
        </p>
      ) : null}

      {board.data && (board.data.confusion_matrix || board.data.per_class.length) ? (
        <div className="card" data-testid="validation-metrics">
          <h2>Validation metrics</h2>
          {/* A table of more than three figures a class (a detector's) needs the card's whole width. */}
          <div className={classColumns(board.data, task).length > 3 ? "grid grid--tight" : "grid grid--2 grid--tight"} data-testid="validation-grid">
            {board.data.confusion_matrix?.length ? (
              <ConfusionMatrix
                matrix={board.data.confusion_matrix}
                classNames={matrixLabels}
                onOpen={views.has("cell") ? (i, j) => open({ view: "cell", true: matrixLabels[i]!, predicted: matrixLabels[j]! }) : undefined}
                selected={explain?.view === "cell" ? [matrixLabels.indexOf(explain.true), matrixLabels.indexOf(explain.predicted)] : null}
              />
            ) : null}
            {board.data.per_class.length ? (
              <ClassTable
                board={board.data}
                task={task}
                onErrors={
                  views.has("false_positives") || views.has("lowest_iou") ? (view, name) => open({ view, class_name: name }) : undefined
                }
              />
            ) : null}
          </div>
          {views.has("highest_loss") ? (
            <p>
              <button type="button" className="button" onClick={() => open({ view: "highest_loss" })} data-testid="explain-highest-loss">
                Show the highest-loss images
              </button>
            </p>
          ) : null}
          {explainHere === "metrics" ? explainPanel : null}
        </div>
      ) : null}

      {views.has("missed") && !board.data?.confusion_matrix?.length ? (
        <div className="card" data-testid="where-wrong">
          <h2>Where it goes wrong</h2>
          <p className="muted small">On the validation split, at the score threshold the model keeps.</p>
          <div className="image-nav">
            {model.class_names.map((c) => (
              <span key={c} className="image-nav">
                <button type="button" className="button" onClick={() => open({ view: "missed", class_name: c })} data-testid="explain-missed">
                  Missed {c}
                </button>
                <button type="button" className="button" onClick={() => open({ view: "false_detections", class_name: c })} data-testid="explain-false">
                  False {c}
                </button>
              </span>
            ))}
          </div>
          {explainHere === "errors" ? explainPanel : null}
        </div>
      ) : null}

      {board.data && Object.keys(board.data.curves).length ? (
        <div className="card">
          <CurvesOverRun board={board.data} />
        </div>
      ) : null}

      {board.data ? (
        <PrCurves
          board={board.data}
          onDetections={
            views.has("detections") ? (name, minScore) => open({ view: "detections", class_name: name, min_score: minScore }) : undefined
          }
        />
      ) : null}
      {board.data ? <WorstImages board={board.data} /> : null}
      {ready && cam.kind === "yes" ? <CamGallery model={model} splits={["val", "test", "train"]} /> : null}
      {ready && cam.kind === "no" ? (
        <div className="card">
          <h2>Grad-CAM</h2>
          <CamUnavailable reason={cam.reason} testId="cam-unavailable" />
        </div>
      ) : null}

      <div className="grid grid--2 grid--tight">
        <div className="card">
          <h2>Export</h2>
          <p className="muted small">A verified TorchScript or ONNX file; made on first request, then kept.</p>
          <ExportButtons model={model} />
        </div>
        <div className="card">
          <h2>Files</h2>
          {files.length === 0 ? <p className="muted">No files.</p> : null}
          <ArtifactList artifacts={files} testId="model-artifacts" />
        </div>
      </div>

      {ready ? <TryIt model={model} registry={registry} /> : null}
    </section>
  );
}
