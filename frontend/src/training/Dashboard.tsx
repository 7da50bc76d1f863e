import { useEffect, useMemo, useState } from "react";
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
import { Loading } from "../components/Loading";
import { Chart } from "./Chart";

/** Columns that count things (shown as integers, not as 0–1 bars). */
const COUNT_COLUMNS = new Set(["support", "pixels", "instances", "images", "gt", "detections"]);

const LABELS: Record<string, string> = {
  "accuracy/top1": "top-1 accuracy",
  "accuracy/top5": "top-5 accuracy",
  "precision/macro": "precision (macro)",
  "recall/macro": "recall (macro)",
  "f1/macro": "F1 (macro)",
  mIoU: "mIoU",
  mDice: "mDice",
  mAcc: "mAcc",
  aAcc: "aAcc",
  loss: "validation loss",
  iou: "IoU",
  dice: "Dice",
  acc: "accuracy",
  pixels: "pixels",
  precision: "precision",
  recall: "recall",
  f1: "F1",
  support: "support",
};

const KINDS: Record<string, string> = { bbox: "box", segm: "mask" };

/** ``bbox/mAP_50`` → "box mAP@0.5", ``segm/AP`` → "mask AP"; the studio's other keys from the table. */
export function metricLabel(key: string): string {
  if (LABELS[key]) return LABELS[key]!;
  const m = /^(bbox|segm)\/(.+)$/.exec(key);
  if (m) {
    const name = m[2]!
      .replace(/^mAP_(\d)(\d)$/, "mAP@0.$1$2")
      .replace(/^AP(\d)(\d)$/, "AP@0.$1$2")
      .replace(/^mAP_([sml])$/, "mAP ($1)")
      .replace(/^AR_(\d+)$/, "AR@$1")
      .replace(/^AR_([sml])$/, "AR ($1)")
      .replace("@0.50", "@0.5");
    return `${KINDS[m[1]!]} ${name}`;
  }
  return key.replace(/[/_]/g, " ");
}

export function formatMetric(key: string, value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return "—";
  if (COUNT_COLUMNS.has(key)) return Math.round(value).toLocaleString();
  if (key.includes("loss")) return value.toFixed(4);
  return `${(value * 100).toFixed(1)}%`;
}

/** The headline figures of the kept weights, as tiles. */
export function SummaryTiles({ board }: { board: ModelDashboard }) {
  const keys = Object.keys(board.summary).filter((k) => k !== "loss");
  return (
    <>
      {keys.map((k) => (
        <div className="tile" key={k}>
          <span className="tile__value" data-testid={`summary-${k.replace(/\W/g, "-")}`}>
            {formatMetric(k, board.summary[k])}
          </span>
          <span className="tile__label">{metricLabel(k)}</span>
        </div>
      ))}
    </>
  );
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
export function ClassTable({ board }: { board: ModelDashboard }) {
  return (
    <div className="table-scroll">
      <table className="table" data-testid="per-class">
        <thead>
          <tr>
            <th scope="col">Class</th>
            {board.columns.map((c) => (
              <th scope="col" key={c} className={COUNT_COLUMNS.has(c) ? "num" : undefined}>
                {metricLabel(c)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {board.per_class.map((row) => (
            <tr key={row.name} data-testid="per-class-row">
              <td className="per-class__name" title={row.name}>
                {row.name}
              </td>
              {board.columns.map((c) =>
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
            </tr>
          ))}
        </tbody>
      </table>
    </div>
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

/** Validation images the model did worst on: the picture, its true labels and the prediction. */
export function WorstImages({ board }: { board: ModelDashboard }) {
  if (!board.worst_images.length) return null;
  return (
    <div className="card" data-testid="worst-images">
      <h2>Worst validation images</h2>
      <p className="muted small">
        {board.task === "semantic_segmentation"
          ? "Lowest IoU first, predicted by the kept weights. Left to right: image, true mask, predicted mask."
          : "Most missed objects first. Left to right: image, its labels, the prediction."}
      </p>
      <ul className="worst">
        {board.worst_images.map((w) => (
          <li key={w.image_id} className="worst__row" data-testid="worst-row">
            <div className="worst__caption">
              <span className="worst__name" title={w.file_name ?? undefined}>
                {w.file_name ?? `image ${w.image_id}`}
              </span>
              <span className="worst__score" data-testid="worst-score">
                {w.counts && "missed" in w.counts
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

/** Detection: precision over recall at IoU 0.5, a chart per kind (boxes, masks), a line per class. */
export function PrCurves({ board }: { board: ModelDashboard }) {
  const kinds = Object.keys(board.pr_curves ?? {});
  if (!kinds.length) return null;
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
              series={Object.entries(curves).map(([name, c]) => ({
                label: name,
                points: new Map(c.recall.map((r, i) => [r, c.precision[i] ?? 0])),
              }))}
            />
          );
        })}
      </div>
    </div>
  );
}

interface CamEntry {
  artifact_id: number;
  image_id?: number;
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
            return (
              <li key={a.id} className="gallery__item" data-testid="cam-gallery-item">
                <img src={a.url} alt={`Grad-CAM ${a.name}`} loading="lazy" />
                <span className="gallery__caption muted small">
                  {e ? `${e.label ? `true ${e.label} · ` : ""}predicted ${e.predicted ?? "?"} · map of ${e.target_class ?? "?"}` : a.name}
                </span>
              </li>
            );
          })}
        </ul>
      ) : null}
    </div>
  );
}
