import { useEffect, useMemo, useState } from "react";
import { Link } from "react-router";
import { errorMessage } from "../api/errors";
import { isFinished } from "../api/datasets";
import {
  useCreateJob,
  useJob,
  useJobArtifacts,
  useJobs,
  type ModelDashboard,
  type ModelDetail,
} from "../api/training";
import type { TaskInfo } from "../api/tasks";
import { Loading } from "../components/Loading";
import { Chart } from "./Chart";
import { COUNT_COLUMNS, formatMetric, KINDS, metricLabel } from "./metricLabels";

export { formatMetric, metricLabel } from "./metricLabels";

/**
 * The figures the tiles show, in order: the task's headline, then its summary in the registry's order, then
 * any other figure the model has; never the loss. Without the task (registry not there yet), as the model has them.
 */
export function summaryKeys(board: ModelDashboard, task?: TaskInfo): string[] {
  const order = task ? [task.headline, ...task.summary, ...Object.keys(board.summary)] : Object.keys(board.summary);
  return [...new Set(order)].filter((k) => k !== "loss" && k in board.summary);
}

/** The headline figures of the kept weights, as tiles; the task's headline figure first. */
export function SummaryTiles({ board, task }: { board: ModelDashboard; task?: TaskInfo }) {
  return (
    <>
      {summaryKeys(board, task).map((k) => {
        const headline = k === task?.headline;
        return (
          <div className={headline ? "tile tile--headline" : "tile"} key={k} data-testid={headline ? "model-headline" : undefined}>
            <span className="tile__value" data-testid={`summary-${k.replace(/\W/g, "-")}`}>
              {formatMetric(k, board.summary[k])}
            </span>
            <span className="tile__label">{metricLabel(k)}</span>
          </div>
        );
      })}
    </>
  );
}

/** The per-class table's columns: the task's, in the registry's order; else those the model's figures have. */
export function classColumns(board: ModelDashboard, task?: TaskInfo): string[] {
  return task?.columns.length ? task.columns : board.columns;
}

function Bar({ value }: { value: number | null | undefined }) {
  if (value == null || !Number.isFinite(value)) return <span className="muted">—</span>;
  const pct = Math.round(Math.min(1, Math.max(0, value)) * 100);
  return (
    <span className="metric-bar">
      <span className="metric-bar__track" aria-hidden="true">
        <span className="metric-bar__fill" style={{ width: `${pct}%` }} />
      </span>
      <span className="metric-bar__value">{value.toFixed(3)}</span>
    </span>
  );
}

/** The task's per-class table: a bar for each 0–1 figure, counts as numbers; names always as text. */
/** A class's errors in the confusion matrix: predicted as it but another class (its column off the
 * diagonal), and of it but predicted as another (its row off the diagonal); null when the matrix lacks it. */
export function classErrors(board: ModelDashboard, name: string): { falsePositives: number; falseNegatives: number } | null {
  const cm = board.confusion_matrix;
  const labels = board.confusion_labels?.length ? board.confusion_labels : board.per_class.map((r) => r.name);
  const c = labels.indexOf(name);
  if (!cm || c < 0 || c >= cm.length) return null;
  let falsePositives = 0;
  let falseNegatives = 0;
  cm.forEach((row, i) => {
    if (i !== c) falsePositives += row[c] ?? 0;
  });
  cm[c]!.forEach((v, j) => {
    if (j !== c) falseNegatives += v;
  });
  return { falsePositives, falseNegatives };
}

export type ClassView = "false_positives" | "false_negatives" | "lowest_iou";

export function ClassTable({
  board,
  task,
  onErrors,
}: {
  board: ModelDashboard;
  task?: TaskInfo;
  /** Given: each class offers the lists of images its evaluation kept (errors, lowest IoU). */
  onErrors?: (view: ClassView, name: string) => void;
}) {
  const columns = classColumns(board, task);
  return (
    <div className="table-scroll">
      <table className="table" data-testid="per-class">
        <thead>
          <tr>
            <th scope="col">Class</th>
            {columns.map((c) => (
              <th scope="col" key={c} className={COUNT_COLUMNS.has(c) ? "num" : undefined}>
                {metricLabel(c)}
              </th>
            ))}
            {onErrors ? <th scope="col">Images</th> : null}
          </tr>
        </thead>
        <tbody>
          {board.per_class.map((row) => (
            <tr key={row.name} data-testid="per-class-row">
              <td className="per-class__name" title={row.name}>
                {row.name}
              </td>
              {columns.map((c) =>
                COUNT_COLUMNS.has(c) ? (
                  <td key={c} className="num">
                    {formatMetric(c, row.values[c])}
                  </td>
                ) : (
                  <td key={c} data-testid={`cell-${c}`}>
                    <Bar value={row.values[c]} />
                  </td>
                ),
              )}
              {onErrors ? <ErrorButtons board={board} name={row.name} onErrors={onErrors} /> : null}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ErrorButtons({
  board,
  name,
  onErrors,
}: {
  board: ModelDashboard;
  name: string;
  onErrors: (view: ClassView, name: string) => void;
}) {
  const views = new Set(board.explain_views ?? []);
  const errors = classErrors(board, name);
  const fp = errors?.falsePositives;
  const fn = errors?.falseNegatives;
  return (
    <td className="per-class__errors">
      {views.has("false_positives") ? (
        <button
          type="button"
          className="button button--ghost button--small"
          disabled={fp === 0}
          title={`Images predicted as ${name} that are another class`}
          onClick={() => onErrors("false_positives", name)}
          data-testid="class-false-positives"
        >
          {fp == null ? "" : `${fp} `}false pos.
        </button>
      ) : null}{" "}
      {views.has("false_negatives") ? (
        <button
          type="button"
          className="button button--ghost button--small"
          disabled={fn === 0}
          title={`Images of ${name} predicted as another class`}
          onClick={() => onErrors("false_negatives", name)}
          data-testid="class-false-negatives"
        >
          {fn == null ? "" : `${fn} `}false neg.
        </button>
      ) : null}
      {views.has("lowest_iou") ? (
        <button
          type="button"
          className="button button--ghost button--small"
          title={`The images holding ${name}, where its IoU is lowest first, with their wrong pixels`}
          onClick={() => onErrors("lowest_iou", name)}
          data-testid="class-lowest-iou"
        >
          lowest IoU
        </button>
      ) : null}
    </td>
  );
}

function toMap(points: { step: number; value: number }[] | undefined): Map<number, number> | undefined {
  return points ? new Map(points.map((p) => [p.step, p.value])) : undefined;
}

/** Validation metrics over the run (one chart), and the training and validation loss (another). */
export function CurvesOverRun({ board }: { board: ModelDashboard }) {
  const names = Object.keys(board.curves);
  // The headline figures' curves where the run logged them (detection logs twelve per kind), else all.
  const headline = names.filter((n) => n.startsWith("val/") && n.slice(4) in board.summary && !n.endsWith("loss"));
  const metrics = headline.length
    ? headline
    : names.filter((n) => n.startsWith("val/") && !n.endsWith("loss") && n !== "val/samples");
  const losses = names.filter((n) => n.endsWith("loss"));
  if (!names.length) return <p className="muted small">The run recorded no curves.</p>;
  return (
    <div className="grid grid--2 grid--tight">
      {metrics.length ? (
        <Chart
          title="Validation metrics over the run"
          testId="chart-val-metrics"
          series={metrics.map((n) => ({ label: metricLabel(n.slice(4)), points: toMap(board.curves[n]) }))}
        />
      ) : null}
      {losses.length ? (
        <Chart
          title="Loss over the run"
          testId="chart-run-loss"
          logY
          series={losses.map((n) => ({ label: n, points: toMap(board.curves[n]) }))}
        />
      ) : null}
    </div>
  );
}

type WorstImage = ModelDashboard["worst_images"][number];

/** Counted objects (a detector's answer): missed, objects, false detections; else the image has an IoU. */
function counted(w: WorstImage): boolean {
  return !!w.counts && "missed" in w.counts;
}

/** How the worst images were ranked, from what they carry: missed objects, or each image's IoU (masks). */
function worstCaption(images: WorstImage[]): string {
  return images.some(counted)
    ? "Most missed objects first. Left to right: image, its labels, the prediction."
    : "Lowest IoU first, predicted by the kept weights. Left to right: image, true mask, predicted mask.";
}

/** Validation images the model did worst on: the picture, its true labels and the prediction. */
export function WorstImages({ board }: { board: ModelDashboard }) {
  if (!board.worst_images.length) return null;
  return (
    <div className="card" data-testid="worst-images">
      <h2>Worst validation images</h2>
      <p className="muted small">{worstCaption(board.worst_images)}</p>
      <ul className="worst">
        {board.worst_images.map((w) => (
          <li key={w.image_id} className="worst__row" data-testid="worst-row">
            <div className="worst__caption">
              {board.dataset_id != null && w.image_url ? (
                <Link className="worst__name" title={w.source ?? w.file_name ?? undefined} to={`/datasets/${board.dataset_id}/images/${w.image_id}`}>
                  {w.source ?? w.file_name ?? `image ${w.image_id}`}
                </Link>
              ) : (
                <span className="worst__name" title={w.source ?? w.file_name ?? undefined}>
                  {w.source ?? w.file_name ?? `image ${w.image_id}`}
                </span>
              )}
              <span className="worst__score" data-testid="worst-score">
                {w.counts && counted(w)
                  ? `missed ${w.counts.missed} of ${w.counts.objects ?? "?"} · ${w.counts.false_detections ?? 0} false`
                  : `IoU ${w.score == null ? "—" : w.score.toFixed(3)}`}
              </span>
            </div>
            <div className="worst__images">
              {w.image_url ? <img src={w.image_url} alt={`${w.file_name ?? "image"}`} loading="lazy" /> : <span className="muted">dataset deleted</span>}
              {w.true_overlay_url ? <img src={w.true_overlay_url} alt="True mask" loading="lazy" data-testid="worst-true" /> : null}
              {w.predicted_overlay_url ? (
                <img src={w.predicted_overlay_url} alt="Predicted mask" loading="lazy" data-testid="worst-pred" />
              ) : null}
            </div>
          </li>
        ))}
      </ul>
    </div>
  );
}

/** The point of a class's precision-recall curve nearest a recall: its precision and the score a box needs
 * to be kept there (null without scores: a model evaluated before they were recorded). */
export function prPoint(curve: { recall: number[]; precision: number[]; score?: number[] }, recall: number) {
  if (!curve.recall.length) return null;
  let best = 0;
  curve.recall.forEach((r, i) => {
    if (Math.abs(r - recall) < Math.abs(curve.recall[best]! - recall)) best = i;
  });
  const score = curve.score?.[best];
  return { index: best, recall: curve.recall[best]!, precision: curve.precision[best] ?? 0, score: score ?? null };
}

/** Detection: precision over recall at IoU 0.5, a chart per kind (boxes, masks), a line per class; a
 * point picked on a curve (a click, or the slider) says the score it takes and opens the boxes it keeps. */
export function PrCurves({
  board,
  onDetections,
}: {
  board: ModelDashboard;
  onDetections?: (className: string, minScore: number) => void;
}) {
  const kinds = Object.keys(board.pr_curves ?? {});
  const names = Object.keys(board.pr_curves?.bbox ?? board.pr_curves?.[kinds[0] ?? ""] ?? {});
  const [picked, setPicked] = useState<{ name: string; recall: number }>({ name: names[0] ?? "", recall: 0.5 });
  if (!kinds.length) return null;
  const name = names.includes(picked.name) ? picked.name : (names[0] ?? "");
  const curve = board.pr_curves?.bbox?.[name] ?? board.pr_curves?.[kinds[0]!]?.[name];
  const point = curve ? prPoint(curve, picked.recall) : null;
  return (
    <div className="card" data-testid="pr-curves">
      <h2>Precision–recall at IoU 0.5</h2>
      <div className="grid grid--2 grid--tight">
        {kinds.map((kind) => {
          const curves = board.pr_curves?.[kind] ?? {};
          return (
            <Chart
              key={kind}
              title={`${KINDS[kind] ?? kind} precision over recall`}
              testId={`chart-pr-${kind}`}
              xLabel="recall"
              fractionX
              onPick={onDetections ? (recall) => setPicked({ name, recall }) : undefined}
              series={Object.entries(curves).map(([name, c]) => ({
                label: name,
                points: new Map(c.recall.map((r, i) => [r, c.precision[i] ?? 0])),
              }))}
            />
          );
        })}
      </div>
      {onDetections && curve && point ? (
        <div className="pr-pick" data-testid="pr-pick">
          <label htmlFor="pr-class">Class</label>
          <select id="pr-class" value={name} onChange={(e) => setPicked({ ...picked, name: e.target.value })}>
            {names.map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
          <label htmlFor="pr-recall">Point (click a curve, or slide)</label>
          <input
            id="pr-recall"
            type="range"
            min={0}
            max={curve.recall.length - 1}
            step={1}
            value={point.index}
            onChange={(e) => setPicked({ name, recall: curve.recall[Number(e.target.value)] ?? 0 })}
          />
          <span data-testid="pr-point">
            recall {point.recall.toFixed(2)} ·{" "}
            {point.precision > 0
              ? `precision ${point.precision.toFixed(2)}${point.score != null ? ` · boxes scoring ${point.score.toFixed(2)} or more` : ""}`
              : "no score reaches this recall (precision 0)"}
          </span>
          {point.precision <= 0 ? null : point.score != null ? (
            <button type="button" className="button" onClick={() => onDetections(name, point.score!)} data-testid="pr-show">
              Show the boxes it keeps
            </button>
          ) : (
            <span className="muted small">This evaluation did not record the scores of its points: evaluate the model again.</span>
          )}
        </div>
      ) : null}
    </div>
  );
}

interface CamEntry {
  artifact_id: number;
  image_id?: number;
  /** The file as it was uploaded. */
  source?: string;
  label?: string | null;
  predicted?: string;
  target_class?: string;
}

/** Grad-CAM of a split's images by a `cam` job; overlays appear as the job draws them. */
export function CamGallery({ model, splits }: { model: ModelDetail; splits: string[] }) {
  const jobs = useJobs("cam");
  const create = useCreateJob();
  const [split, setSplit] = useState(splits.includes("val") ? "val" : (splits[0] ?? "val"));
  const [target, setTarget] = useState("");
  const [limit, setLimit] = useState(8);
  const latest = useMemo(
    () => (jobs.data ?? []).filter((j) => (j.config as { model_id?: number }).model_id === model.id).sort((a, b) => b.id - a.id)[0],
    [jobs.data, model.id],
  );
  const latestId = latest?.id ?? 0;
  const job = useJob(latestId);
  const running = !!job.data && !isFinished(job.data.status);
  const artifacts = useJobArtifacts(latest?.id ?? 0, !!latest);
  const refetch = artifacts.refetch;
  // Poll the job's files while it draws (the job query polls its own status), and read them once more
  // when it has ended, so the overlays drawn after the last poll appear too.
  useEffect(() => {
    if (!running) {
      if (latestId) void refetch();
      return undefined;
    }
    const t = setInterval(() => void refetch(), 1500);
    return () => clearInterval(t);
  }, [running, refetch, latestId]);
  const entries = new Map<number, CamEntry>();
  const overlays = (job.data?.result as { overlays?: CamEntry[] } | null)?.overlays ?? [];
  for (const e of overlays) entries.set(e.artifact_id, e);
  const images = (artifacts.data ?? []).filter((a) => a.kind === "cam");

  const start = () => {
    if (model.dataset_id == null) return;
    const config: Record<string, unknown> = { model_id: model.id, dataset_id: model.dataset_id, split, limit };
    if (target) config.target_class = target;
    create.mutate({ kind: "cam", config }, { onSuccess: () => void jobs.refetch() });
  };

  return (
    <div className="card" data-testid="cam-gallery">
      <h2>Grad-CAM gallery</h2>
      {model.dataset_id == null ? (
        <p className="muted small">An uploaded model has no dataset to explain; use “Try it” below.</p>
      ) : (
        <form
          className="inline-form"
          aria-label="Explain a split"
          onSubmit={(e) => {
            e.preventDefault();
            start();
          }}
        >
          <label htmlFor="cam-split">Split</label>
          <select id="cam-split" value={split} onChange={(e) => setSplit(e.target.value)}>
              {(splits.length ? splits : ["train", "val", "test"]).map((s) => (
                <option key={s}>{s}</option>
              ))}
          </select>
          <label htmlFor="cam-class">Class</label>
          <select id="cam-class" value={target} onChange={(e) => setTarget(e.target.value)}>
              <option value="">top prediction</option>
              {model.class_names.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
          </select>
          <label htmlFor="cam-limit">Images</label>
          <input
            id="cam-limit"
            type="number"
            min={1}
            max={64}
            value={limit}
            onChange={(e) => setLimit(Math.max(1, Math.min(64, Number(e.target.value) || 1)))}
          />
          <button type="submit" className="button" disabled={create.isPending || running || model.status !== "ready"}>
            {running ? "Drawing…" : "Explain images"}
          </button>
        </form>
      )}
      {create.isError ? (
        <p className="field__error" role="alert" data-testid="cam-gallery-error">
          {errorMessage(create.error)}
        </p>
      ) : null}
      {job.data?.status === "failed" ? (
        <p className="field__error" role="alert" data-testid="cam-gallery-error">
          Job #{job.data.id} failed: {job.data.error}
        </p>
      ) : null}
      {latest && running && images.length === 0 ? <Loading label={`Job #${latest.id} is drawing the first overlay…`} /> : null}
      {images.length ? (
        <ul className="gallery" data-testid="cam-gallery-images" data-job-id={latest?.id}>
          {images.map((a) => {
            const e = entries.get(a.id);
            // Until the job ends its overlays carry only their image's id (cam_24.png).
            const picture = e?.source ?? `image ${/^cam_(\d+)\.png$/.exec(a.name)?.[1] ?? a.name}`;
            return (
              <li key={a.id} className="gallery__item" data-testid="cam-gallery-item">
                <img src={a.url} alt={`Grad-CAM of ${picture}`} loading="lazy" />
                <span className="gallery__caption small">
                  <span className="gallery__name" title={picture} data-testid="cam-gallery-name">
                    {picture}
                  </span>
                  <span className="muted">
                    {e ? `${e.label ? `true ${e.label} · ` : ""}predicted ${e.predicted ?? "?"} · map of ${e.target_class ?? "?"}` : "drawing…"}
                  </span>
                </span>
              </li>
            );
          })}
        </ul>
      ) : null}
    </div>
  );
}
