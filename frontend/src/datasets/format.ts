import type { Tone } from "../components/StatusBadge";

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
