/** Metric names in words: the studio's known figures read plainly; any other name is shown as given. */

/** Columns that count things (shown as integers, not as 0–1 bars). */
/** Figures that count things (shown as whole numbers, right-aligned), not shares between 0 and 1 (bars). */
export const COUNT_COLUMNS = new Set(["support", "pixels", "instances", "images", "gt", "detections", "objects", "words", "missed"]);

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

/** Shorter words for a figure shown next to its value (the models list's score). */
const SHORT_LABELS: Record<string, string> = {
  "accuracy/top1": "top-1",
};

export const KINDS: Record<string, string> = { bbox: "box", segm: "mask" };

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
  return key;
}

/** A figure's words beside its value: "top-1", "mIoU", "box mAP", or an unknown name as given. */
export function shortMetricLabel(key: string): string {
  return SHORT_LABELS[key] ?? metricLabel(key);
}

export function formatMetric(key: string, value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return "—";
  if (COUNT_COLUMNS.has(key)) return Math.round(value).toLocaleString();
  if (key.includes("loss")) return value.toFixed(4);
  return `${(value * 100).toFixed(1)}%`;
}
