import type { Tone } from "../components/StatusBadge";

const TASK_LABELS: Record<string, string> = {
  classification: "Classification",
  semantic_segmentation: "Semantic segmentation",
  object_detection: "Object detection",
  instance_segmentation: "Instance segmentation",
  text_detection: "Text detection",
};

export function taskLabel(task: string): string {
  return TASK_LABELS[task] ?? task.replace(/_/g, " ");
}

const FORMAT_LABELS: Record<string, string> = {
  auto: "auto-detect",
  labelme: "labelme",
  folder: "class folders",
  filelist: "file list",
  coco: "COCO",
  voc: "Pascal VOC",
  icdar: "ICDAR 2015",
};

export function formatLabel(format: string): string {
  return FORMAT_LABELS[format] ?? format;
}

export function statusTone(status: string): Tone {
  if (status === "ready") return "ok";
  if (status === "failed") return "bad";
  if (status === "importing") return "warn";
  return "neutral";
}

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "—";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** "a/b/file.zip" → "file" (the dataset name a file suggests). */
export function nameFromFile(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  return base.replace(/\.zip$/i, "");
}
