import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, CSRF_COOKIE, CSRF_HEADER, readCookie } from "./client";
import { ApiError, toApiError, unwrap } from "./errors";
import type {
  Dataset,
  DatasetDetail,
  Finding,
  ImageDetail,
  ExportReady,
  ImageNeighbours,
  ImagePage,
  ImportStarted,
  Job,
  JobStatus,
  Split,
  UploadFormat,
} from "./types";

export const SPLITS: readonly Split[] = ["train", "val", "test"];
export const PAGE_SIZE = 60;
export const THUMB_SIZE = 256;

export const FORMATS: readonly { value: UploadFormat; label: string }[] = [
  { value: "auto", label: "Detect automatically" },
  { value: "labelme", label: "labelme (JSON per image)" },
  { value: "folder", label: "Class folders (one folder per class)" },
  { value: "filelist", label: "File list (classes.txt + train.txt)" },
  { value: "coco", label: "COCO (instances_*.json)" },
  { value: "voc", label: "Pascal VOC" },
  { value: "icdar", label: "ICDAR 2015 (text)" },
];

export const datasetKeys = {
  all: ["datasets"] as const,
  list: ["datasets", "list"] as const,
  one: (id: number) => ["datasets", id] as const,
  images: (id: number, query: ImagesQuery) => ["datasets", id, "images", query] as const,
  image: (id: number, imageId: number) => ["datasets", id, "image", imageId] as const,
};

// ---------------------------------------------------------------- stats & report (JSON objects on the API)

export interface ClassStat {
  id: number;
  name: string;
  images: number;
  instances: number;
  shapes: number;
  area: number;
}

export interface SplitStat {
  images: number;
  annotations: number;
  negatives: number;
}

export interface DatasetStats {
  images: number;
  annotations: number;
  negatives: number;
  ignoreRegions: number;
  classes: ClassStat[];
  splits: Record<Split, SplitStat>;
}

function num(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function obj(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** The `stats` object of a dataset, typed; missing figures (an import still running) read as 0. */
export function parseStats(stats: Record<string, unknown> | undefined): DatasetStats {
  const s = obj(stats);
  const classes = Array.isArray(s.classes) ? s.classes : [];
  const splits = obj(s.splits);
  const split = (name: Split): SplitStat => {
    const v = obj(splits[name]);
    return { images: num(v.images), annotations: num(v.annotations), negatives: num(v.negatives) };
  };
  return {
    images: num(s.images),
    annotations: num(s.annotations),
    negatives: num(s.negatives),
    ignoreRegions: num(s.ignore_regions),
    classes: classes.map((c, i) => {
      const v = obj(c);
      return {
        id: num(v.id) || i + 1,
        name: typeof v.name === "string" ? v.name : `class ${i + 1}`,
        images: num(v.images),
        instances: num(v.instances),
        shapes: num(v.shapes),
        area: num(v.area),
      };
    }),
    splits: { train: split("train"), val: split("val"), test: split("test") },
  };
}

/** The findings of an import report; anything malformed is left out. */
export function parseFindings(report: Record<string, unknown> | undefined): Finding[] {
  const list = obj(report).findings;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (f): f is Finding =>
      !!f &&
      typeof f === "object" &&
      ((f as Finding).level === "error" || (f as Finding).level === "warning") &&
      typeof (f as Finding).code === "string" &&
      typeof (f as Finding).message === "string",
  );
}

/** The colour the server draws class `categoryId` in (Pascal VOC palette, as labelme/imgviz). */
export function classColour(categoryId: number): string {
  let r = 0;
  let g = 0;
  let b = 0;
  let c = categoryId;
  for (let j = 0; j < 8; j++) {
    r |= (c & 1) << (7 - j);
    g |= ((c >> 1) & 1) << (7 - j);
    b |= ((c >> 2) & 1) << (7 - j);
    c >>= 3;
  }
  return `rgb(${r}, ${g}, ${b})`;
}

// ---------------------------------------------------------------- URLs the browser loads directly

export function thumbnailUrl(datasetId: number, imageId: number, size = THUMB_SIZE): string {
  return `/api/datasets/${datasetId}/images/${imageId}/thumbnail?size=${size}&overlay=1`;
}

export function renderUrl(datasetId: number, imageId: number, overlay = true, maxSize = 1600): string {
  return `/api/datasets/${datasetId}/images/${imageId}/render?overlay=${overlay ? 1 : 0}&max_size=${maxSize}`;
}

/** A name of a dataset's `exports` (its detail lists them with why one cannot be taken). */
export type ExportFormat = string;

/**
 * Ask for an export: ready (`ready: true`, with its size) when the zip is built, else `ready: false` with the
 * light-lane job writing it. A format the dataset cannot take is an ApiError (422) saying why.
 */
export async function prepareExport(datasetId: number, format: ExportFormat): Promise<ExportReady> {
  return unwrap(
    await api.POST("/api/datasets/{dataset_id}/exports", {
      params: { path: { dataset_id: datasetId }, query: { format } },
    }),
  );
}

/** Start a download of `url` the browser streams to disk (no copy of the file in page memory). */
export function downloadUrl(url: string, filename: string): void {
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
}

// ---------------------------------------------------------------- queries

export function useDatasets() {
  return useQuery({
    queryKey: datasetKeys.list,
    queryFn: async (): Promise<Dataset[]> => unwrap(await api.GET("/api/datasets")),
    // While an import runs, its row changes by itself.
    refetchInterval: (query) => (query.state.data?.some((d) => d.status === "importing") ? 2000 : false),
  });
}

export function useDataset(id: number) {
  return useQuery({
    queryKey: datasetKeys.one(id),
    queryFn: async (): Promise<DatasetDetail> =>
      unwrap(await api.GET("/api/datasets/{dataset_id}", { params: { path: { dataset_id: id } } })),
    refetchInterval: (query) => (query.state.data?.status === "importing" ? 1500 : false),
    enabled: Number.isInteger(id) && id > 0,
  });
}

/** Filters of the image grid, as they appear in the page's URL. */
export interface ImageFilters {
  split?: Split | undefined;
  className?: string | undefined;
  /** "any", or a finding code. */
  problem?: string | undefined;
  page?: number | undefined;
}

export interface ImagesQuery {
  split?: Split;
  class?: string;
  problem?: string;
  page: number;
  page_size: number;
}

/** The query of `GET /api/datasets/{id}/images` for the given filters (unset filters left out). */
export function imagesQuery(filters: ImageFilters, pageSize = PAGE_SIZE): ImagesQuery {
  const q: ImagesQuery = { page: Math.max(1, Math.floor(filters.page ?? 1)), page_size: pageSize };
  if (filters.split) q.split = filters.split;
  if (filters.className) q.class = filters.className;
  if (filters.problem) q.problem = filters.problem;
  return q;
}

export function useDatasetImages(id: number, filters: ImageFilters, enabled = true) {
  const query = imagesQuery(filters);
  return useQuery({
    queryKey: datasetKeys.images(id, query),
    queryFn: async (): Promise<ImagePage> =>
      unwrap(
        await api.GET("/api/datasets/{dataset_id}/images", {
          params: { path: { dataset_id: id }, query },
        }),
      ),
    enabled,
    placeholderData: keepPreviousData,
    staleTime: 60_000, // a version never changes
  });
}

/** The images before and after one image in the grid's order under the grid's filters. */
export function useImageNeighbours(id: number, imageId: number, filters: ImageFilters) {
  const { page: _page, page_size: _size, ...query } = imagesQuery(filters);
  return useQuery({
    queryKey: [...datasetKeys.image(id, imageId), "neighbours", query] as const,
    queryFn: async (): Promise<ImageNeighbours> =>
      unwrap(
        await api.GET("/api/datasets/{dataset_id}/images/{image_id}/neighbours", {
          params: { path: { dataset_id: id, image_id: imageId }, query },
        }),
      ),
    staleTime: 60_000,
  });
}

export function useImageDetail(id: number, imageId: number) {
  return useQuery({
    queryKey: datasetKeys.image(id, imageId),
    queryFn: async (): Promise<ImageDetail> =>
      unwrap(
        await api.GET("/api/datasets/{dataset_id}/images/{image_id}", {
          params: { path: { dataset_id: id, image_id: imageId } },
        }),
      ),
    staleTime: 60_000,
  });
}

export type SplitChangeBody =
  | { ratios: Record<Split, number>; seed: number }
  | { assign: Record<string, Split> };

/** Re-split or move images: the server answers with a new version. */
export function useChangeSplits(id: number) {
  const qc = useQueryClient();
  return useMutation<Dataset, ApiError | Error, SplitChangeBody>({
    mutationFn: async (body) =>
      unwrap(
        await api.PATCH("/api/datasets/{dataset_id}/splits", {
          params: { path: { dataset_id: id } },
          body: { seed: 0, ...body },
        }),
      ),
    onSuccess: () => qc.invalidateQueries({ queryKey: datasetKeys.list }),
  });
}

export function useDeleteDataset() {
  const qc = useQueryClient();
  return useMutation<void, ApiError | Error, number>({
    mutationFn: async (id) => {
      unwrap(await api.DELETE("/api/datasets/{dataset_id}", { params: { path: { dataset_id: id } } }));
    },
    onSuccess: (_, id) => {
      qc.removeQueries({ queryKey: datasetKeys.one(id) });
      return qc.invalidateQueries({ queryKey: datasetKeys.list });
    },
  });
}

/** Import a failed dataset's kept upload again, skipping the bad shapes or not; the page polls it while it imports. */
export function useRetryImport(id: number) {
  const qc = useQueryClient();
  return useMutation<ImportStarted, ApiError | Error, { skipBadShapes: boolean }>({
    mutationFn: async ({ skipBadShapes }) =>
      unwrap(
        await api.POST("/api/datasets/{dataset_id}/retry", {
          params: { path: { dataset_id: id } },
          body: { skip_bad_shapes: skipBadShapes },
        }),
      ),
    onSuccess: async () => {
      await qc.invalidateQueries({ queryKey: datasetKeys.one(id) });
      return qc.invalidateQueries({ queryKey: datasetKeys.list });
    },
  });
}

// ---------------------------------------------------------------- upload (XMLHttpRequest: fetch has no upload progress)

/** An upload refused by the server: its code and, for a bad archive, the entry it names. */
export class UploadError extends ApiError {
  readonly entry: string | null;

  constructor(error: ApiError, entry: string | null) {
    super(error.status, error.code, error.detail, error.fieldErrors);
    this.name = "UploadError";
    this.entry = entry;
  }
}

export interface UploadFields {
  name: string;
  format: UploadFormat;
  seed: number;
  /** Leave out each shape with an error (listed in the report) instead of failing the import. */
  skipBadShapes?: boolean;
}

export interface UploadProgress {
  loaded: number;
  total: number;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** POST the zip as multipart, reporting bytes sent; resolves with the new dataset and its import job. */
export function uploadDataset(
  file: File,
  fields: UploadFields,
  onProgress: (p: UploadProgress) => void,
  signal?: AbortSignal,
): Promise<ImportStarted> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", file, file.name);
    if (fields.name.trim()) form.append("name", fields.name.trim());
    form.append("format", fields.format);
    form.append("seed", String(fields.seed));
    if (fields.skipBadShapes) form.append("skip_bad_shapes", "true");

    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/datasets");
    xhr.responseType = "text";
    xhr.setRequestHeader("Accept", "application/json");
    const token = readCookie(CSRF_COOKIE);
    if (token) xhr.setRequestHeader(CSRF_HEADER, token);
    xhr.upload.onprogress = (event) => {
      onProgress({ loaded: event.loaded, total: event.lengthComputable ? event.total : file.size });
    };
    xhr.onload = () => {
      const body = parseJson(xhr.responseText);
      if (xhr.status === 201 && body && typeof body === "object") {
        resolve(body as ImportStarted);
        return;
      }
      const entry = body && typeof body === "object" ? (body as { entry?: unknown }).entry : undefined;
      reject(new UploadError(toApiError(xhr.status, body), typeof entry === "string" ? entry : null));
    };
    xhr.onerror = () => reject(new TypeError("network error"));
    xhr.onabort = () => reject(new DOMException("upload cancelled", "AbortError"));
    if (signal) {
      if (signal.aborted) {
        reject(new DOMException("upload cancelled", "AbortError"));
        return;
      }
      signal.addEventListener("abort", () => xhr.abort(), { once: true });
    }
    xhr.send(form);
  });
}

// ---------------------------------------------------------------- job progress (SSE, polling as fallback)

export interface JobProgress {
  status: JobStatus;
  progress: number;
  message: string | null;
  error: string | null;
}

const FINISHED: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "cancelled"]);

export function isFinished(status: JobStatus): boolean {
  return FINISHED.has(status);
}

async function fetchJob(jobId: number): Promise<Job> {
  return unwrap(await api.GET("/api/jobs/{job_id}", { params: { path: { job_id: jobId } } }));
}

/** Live status of a job: Server-Sent Events where the browser has them, else polling once a second. */
export function useJobProgress(jobId: number | null): JobProgress | null {
  const [state, setState] = useState<JobProgress | null>(null);

  useEffect(() => {
    if (jobId == null) {
      setState(null);
      return undefined;
    }
    setState({ status: "queued", progress: 0, message: null, error: null });
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let source: EventSource | null = null;

    const poll = async () => {
      if (stopped) return;
      try {
        const job = await fetchJob(jobId);
        if (stopped) return;
        setState({ status: job.status, progress: job.progress, message: job.message, error: job.error });
        if (isFinished(job.status)) return;
      } catch {
        // A blip: try again.
      }
      if (!stopped) timer = setTimeout(poll, 1000);
    };

    if (typeof EventSource === "undefined") {
      void poll();
    } else {
      source = new EventSource(`/api/jobs/${jobId}/events`);
      const read = (event: MessageEvent<string>): Record<string, unknown> => obj(parseJson(event.data));
      source.addEventListener("status", (event) => {
        const d = read(event as MessageEvent<string>);
        setState((prev) => ({
          status: (typeof d.status === "string" ? d.status : prev?.status ?? "queued") as JobStatus,
          progress: num(d.progress),
          message: typeof d.message === "string" ? d.message : null,
          error: typeof d.error === "string" ? d.error : null,
        }));
      });
      source.addEventListener("progress", (event) => {
        const d = read(event as MessageEvent<string>);
        setState((prev) => ({
          status: prev && prev.status !== "queued" ? prev.status : "running",
          progress: num(d.progress),
          message: typeof d.message === "string" ? d.message : (prev?.message ?? null),
          error: prev?.error ?? null,
        }));
      });
      source.addEventListener("end", () => {
        source?.close();
        void poll(); // the final word, error included
      });
      source.onerror = () => {
        // The browser reconnects by itself (resuming after the last event id) unless it gave up.
        if (source && source.readyState === EventSource.CLOSED && !stopped) void poll();
      };
    }
    return () => {
      stopped = true;
      source?.close();
      if (timer) clearTimeout(timer);
    };
  }, [jobId]);

  return state;
}
