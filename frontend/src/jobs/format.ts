import type { Job } from "../api/types";

const KIND_LABELS: Record<string, string> = {
  train: "train",
  evaluate: "evaluate",
  predict: "batch predict",
  cam: "Grad-CAM over a split",
  import_dataset: "dataset import",
  import_model: "model import",
  export: "model export",
  export_dataset: "dataset export",
  analyze_catalog: "catalog analysis",
  augment_preview: "augmentation preview",
  estimate_run: "time estimate",
  probe: "probe",
};

/** A job kind in words ("import_dataset" → "dataset import"). */
export function kindLabel(kind: string): string {
  return KIND_LABELS[kind] ?? kind.replace(/_/g, " ");
}

/** Where a queued job stands, in words ("Waiting: behind 1 queued and 1 running jobs on the training lane"); null once it left the queue. */
export function waitingText(job: Pick<Job, "status" | "queue_position">): string | null {
  if (job.status !== "queued") return null;
  return job.queue_position ? `Waiting: ${job.queue_position.text}` : "Waiting to start";
}

/** A job under way in words: where it waits while queued, then its share done and message. */
export function progressText(job: Pick<Job, "status" | "queue_position" | "progress" | "message">): string {
  const waiting = waitingText(job);
  if (waiting) return waiting;
  return `${Math.round(job.progress * 100)}%${job.message ? ` · ${job.message}` : ""}`;
}
