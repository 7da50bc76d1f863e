import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { shortMetricLabel } from "../training/metricLabels";
import { mergePoints, type MetricPoint, type MetricSeries } from "../training/metrics";
import type { JsonSchema } from "../training/schema";
import { api, CSRF_COOKIE, CSRF_HEADER, readCookie } from "./client";
import { isFinished } from "./datasets";
import { ApiError, toApiError, unwrap } from "./errors";
import type { components } from "./schema";
import type { Job, JobStatus } from "./types";

type Schemas = components["schemas"];
export type CatalogItem = Schemas["CatalogItem"];
export type Catalog = Schemas["CatalogOut"];
export type ValidatedConfig = Schemas["ValidatedConfig"];
export type TrainedModel = Schemas["ModelOut"];
export type ModelDetail = Schemas["ModelDetail"];
export type ModelDashboard = Schemas["ModelDashboard"];
export type EvaluationImages = Schemas["EvaluationImages"];
export type EvaluationImage = Schemas["EvaluationImage"];
export type ModelChanges = Schemas["ModelChanges"];
export type Artifact = Schemas["ArtifactOut"];
export type ModelImportStarted = Schemas["ModelImportStarted"];
export type RunConfig = Record<string, unknown>;

export const JOBS_REFRESH_MS = 3000;

export const trainingKeys = {
  schema: (task: string) => ["schema", "train-config", task] as const,
  catalog: (task: string) => ["catalog", task] as const,
  jobs: ["jobs"] as const,
  jobList: (kind: string, background = false) => ["jobs", "list", kind, background] as const,
  job: (id: number) => ["jobs", id] as const,
  jobMetrics: (id: number, name: string) => ["jobs", id, "metrics", name] as const,
  jobArtifacts: (id: number) => ["jobs", id, "artifacts"] as const,
  yaml: (config: unknown) => ["configs", "yaml", config] as const,
  models: ["models"] as const,
  model: (id: number) => ["models", id] as const,
  dashboard: (id: number) => ["models", id, "dashboard"] as const,
  evaluationImages: (id: number, target: ExplainTarget, offset: number) =>
    ["models", id, "evaluation-images", target, offset] as const,
};

/** Which images of a model's evaluation to list: a confusion-matrix cell, a class's errors, the losses. */
export type ExplainTarget =
  | { view: "cell"; true: string; predicted: string }
  | { view: "false_positives" | "false_negatives" | "lowest_iou" | "missed" | "false_detections"; class_name: string }
  | { view: "highest_loss" }
  | { view: "detections"; class_name: string; min_score: number };

// ---------------------------------------------------------------- plain requests (bodies the typed client lacks)

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function csrfHeaders(extra: Record<string, string> = {}): Record<string, string> {
  const token = readCookie(CSRF_COOKIE);
  return token ? { ...extra, [CSRF_HEADER]: token } : extra;
}

/** POST with the CSRF header; JSON body or FormData. The raw response is returned (any status). */
export async function post(url: string, body: unknown): Promise<Response> {
  const isForm = typeof FormData !== "undefined" && body instanceof FormData;
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: csrfHeaders(isForm ? { Accept: "application/json" } : { "Content-Type": "application/json", Accept: "application/json" }),
    body: isForm ? body : JSON.stringify(body),
  });
}

export async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  return toApiError(response.status, parseJson(text));
}

/** Start a browser download of a Blob under `filename`. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.rel = "noopener";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function filenameOf(response: Response, fallback: string): string {
  const cd = response.headers.get("Content-Disposition") ?? "";
  const star = /filename\*=(?:UTF-8'')?([^;]+)/i.exec(cd);
  if (star?.[1]) {
    try {
      return decodeURIComponent(star[1].trim().replace(/^"|"$/g, ""));
    } catch {
      /* fall through */
    }
  }
  const plain = /filename="?([^";]+)"?/i.exec(cd);
  return plain?.[1]?.trim() || fallback;
}

// ---------------------------------------------------------------- schema, catalog, configs

/** One task's run-config schema (the form is generated from it); a task the studio does not train is a 422. */
export function useTrainSchema(task: string | null) {
  return useQuery({
    queryKey: trainingKeys.schema(task ?? ""),
    queryFn: async (): Promise<JsonSchema> =>
      unwrap(await api.GET("/api/schema/train-config", { params: { query: { task: task! } } })) as JsonSchema,
    enabled: !!task,
    staleTime: Infinity,
    retry: false,
  });
}

export function useCatalog(task: string | null) {
  return useQuery({
    queryKey: trainingKeys.catalog(task ?? ""),
    queryFn: async (): Promise<Catalog> =>
      unwrap(await api.GET("/api/catalog", { params: { query: { task: task as never } } })),
    enabled: !!task,
    // Parameter and FLOP counts are filled in by a worker job: ask again until they are there.
    refetchInterval: (query) => (query.state.data?.stats_pending ? 3000 : false),
  });
}

/** `POST /api/configs/validate`: the normalised config, or an ApiError whose fieldErrors name the fields. */
export async function validateConfig(body: RunConfig | { yaml: string }): Promise<ValidatedConfig> {
  return unwrap(await api.POST("/api/configs/validate", { body }));
}

/** `POST /api/configs/yaml`: the config as YAML text. */
export async function configYaml(config: RunConfig, filename?: string): Promise<{ text: string; filename: string }> {
  const url = filename ? `/api/configs/yaml?filename=${encodeURIComponent(filename)}` : "/api/configs/yaml";
  const response = await post(url, config);
  if (!response.ok) throw await errorOf(response);
  return { text: await response.text(), filename: filenameOf(response, filename ?? "run.yaml") };
}

export function useConfigYaml(config: RunConfig | null | undefined) {
  return useQuery({
    queryKey: trainingKeys.yaml(config ?? null),
    queryFn: async () => (await configYaml(config!)).text,
    enabled: !!config,
    staleTime: Infinity,
  });
}

export interface PreviewImage {
  url: string;
  label: string;
}

function previewImages(list: unknown): PreviewImage[] {
  const images = Array.isArray(list) ? list : [];
  return images.flatMap((raw) => {
    const i = obj(raw);
    const url = typeof i.url === "string" ? i.url : typeof i.artifact_id === "number" ? `/api/artifacts/${i.artifact_id}` : null;
    return url ? [{ url, label: typeof i.label === "string" ? i.label : "" }] : [];
  });
}

/**
 * `POST /api/configs/preview`: augmented samples of the dataset; `null` when the studio has no such
 * endpoint. A 504 (the worker is busy) names the job drawing them: it is polled to its end.
 */
export async function previewAugmentations(
  config: RunConfig,
  count = 8,
  onWaiting?: (jobId: number) => void,
  signal?: AbortSignal,
): Promise<PreviewImage[] | null> {
  const response = await post("/api/configs/preview?wait=20", { config, count });
  const body = parseJson(await response.text().catch(() => ""));
  const b = obj(body);
  if (response.status === 404 || response.status === 405 || response.status === 501) {
    // A 404 that names a field (e.g. the dataset) is a real answer, not a missing endpoint.
    if (Array.isArray(b.errors)) throw toApiError(response.status, body);
    return null;
  }
  if (response.status === 504 && typeof b.job_id === "number") {
    onWaiting?.(b.job_id);
    const job = await waitForJob(b.job_id, signal);
    if (job.status !== "succeeded") throw new ApiError(500, "job_failed", job.error ?? `preview job ${job.id} ${job.status}`);
    return previewImages(obj(job.result).images);
  }
  if (!response.ok) throw toApiError(response.status, body);
  return previewImages(b.images);
}

// ---------------------------------------------------------------- jobs

export function useCreateJob() {
  const qc = useQueryClient();
  return useMutation<Job, ApiError | Error, { kind: string; config: RunConfig }>({
    mutationFn: async (body) => unwrap(await api.POST("/api/jobs", { body })),
    onSuccess: () => qc.invalidateQueries({ queryKey: trainingKeys.jobs }),
  });
}

/** The user's jobs (of one kind, or all); `background`: also the studio's own work for its pages. */
export function useJobs(kind: string, background = false) {
  return useQuery({
    queryKey: trainingKeys.jobList(kind, background),
    queryFn: async (): Promise<Job[]> =>
      unwrap(
        await api.GET("/api/jobs", { params: { query: kind ? { kind, limit: 200 } : { limit: 200, background } } }),
      ),
    refetchInterval: JOBS_REFRESH_MS,
  });
}

export async function fetchJob(id: number): Promise<Job> {
  return unwrap(await api.GET("/api/jobs/{job_id}", { params: { path: { job_id: id } } }));
}

export function useJob(id: number, refetch = true) {
  return useQuery({
    queryKey: trainingKeys.job(id),
    queryFn: () => fetchJob(id),
    enabled: Number.isInteger(id) && id > 0,
    refetchInterval: (query) => (refetch && query.state.data && !isFinished(query.state.data.status) ? JOBS_REFRESH_MS : false),
  });
}

export async function fetchMetrics(id: number, name?: string): Promise<MetricPoint[]> {
  return unwrap(
    await api.GET("/api/jobs/{job_id}/metrics", {
      params: { path: { job_id: id }, query: name ? { name, limit: 100_000 } : { limit: 100_000 } },
    }),
  );
}

export function useJobMetrics(id: number | null | undefined, name = "") {
  return useQuery({
    queryKey: trainingKeys.jobMetrics(id ?? 0, name),
    queryFn: () => fetchMetrics(id!, name || undefined),
    enabled: !!id,
  });
}

export function useJobArtifacts(id: number, enabled = true) {
  return useQuery({
    queryKey: trainingKeys.jobArtifacts(id),
    queryFn: async (): Promise<Artifact[]> =>
      unwrap(await api.GET("/api/jobs/{job_id}/artifacts", { params: { path: { job_id: id } } })),
    enabled,
  });
}

export function useCancelJob() {
  const qc = useQueryClient();
  return useMutation<Job, ApiError | Error, number>({
    mutationFn: async (id) => unwrap(await api.POST("/api/jobs/{job_id}/cancel", { params: { path: { job_id: id } } })),
    onSuccess: (job) => {
      qc.setQueryData(trainingKeys.job(job.id), job);
      return qc.invalidateQueries({ queryKey: trainingKeys.jobs });
    },
  });
}

/**
 * Poll a job until it has finished (or `signal` aborts); answers the finished job. `onUpdate` sees the
 * job at each look (its queue position while queued, its progress while running).
 */
export async function waitForJob(
  id: number,
  signal?: AbortSignal,
  intervalMs = 1000,
  onUpdate?: (job: Job) => void,
): Promise<Job> {
  for (;;) {
    if (signal?.aborted) throw new DOMException("stopped", "AbortError");
    const job = await fetchJob(id);
    onUpdate?.(job);
    if (isFinished(job.status)) return job;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface JobLive {
  status: JobStatus | null;
  progress: number | null;
  message: string | null;
  error: string | null;
  attempt: number | null;
  metrics: MetricSeries;
  /** Whether the event stream is open now. */
  connected: boolean;
}

function obj(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * A job's events over SSE: status, progress and metric points (deduplicated by (name, step)). The browser
 * reconnects by itself and resumes after the last `id:` it saw; points repeated after that are merged away.
 */
export function useJobStream(jobId: number | null): JobLive {
  const empty: JobLive = { status: null, progress: null, message: null, error: null, attempt: null, metrics: new Map(), connected: false };
  const [state, setState] = useState<JobLive>(empty);
  const qc = useQueryClient();
  const qcRef = useRef(qc);
  qcRef.current = qc;

  useEffect(() => {
    setState(empty);
    if (jobId == null || typeof EventSource === "undefined") return undefined;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let source: EventSource | null = null;
    let lastId = "";

    const open = () => {
      if (stopped) return;
      // `after` resumes where a closed stream (one the browser gave up on) left off.
      source = new EventSource(`/api/jobs/${jobId}/events${lastId ? `?after=${encodeURIComponent(lastId)}` : ""}`);
      const read = (event: Event): Record<string, unknown> => {
        const e = event as MessageEvent<string>;
        if (e.lastEventId) lastId = e.lastEventId;
        return obj(parseJson(e.data));
      };
      source.onopen = () => setState((s) => ({ ...s, connected: true }));
      source.addEventListener("status", (event) => {
        const d = read(event);
        setState((s) => ({
          ...s,
          status: (typeof d.status === "string" ? d.status : s.status) as JobStatus | null,
          progress: typeof d.progress === "number" ? d.progress : s.progress,
          message: typeof d.message === "string" ? d.message : null,
          error: typeof d.error === "string" ? d.error : null,
          attempt: typeof d.attempt === "number" ? d.attempt : s.attempt,
        }));
        void qcRef.current.invalidateQueries({ queryKey: trainingKeys.job(jobId) });
      });
      source.addEventListener("progress", (event) => {
        const d = read(event);
        setState((s) => ({
          ...s,
          status: s.status && s.status !== "queued" ? s.status : "running",
          progress: typeof d.progress === "number" ? d.progress : s.progress,
          message: typeof d.message === "string" ? d.message : s.message,
        }));
      });
      source.addEventListener("metrics", (event) => {
        const d = read(event);
        const points = Array.isArray(d.points) ? (d.points as MetricPoint[]) : [];
        setState((s) => ({ ...s, metrics: mergePoints(s.metrics, points) }));
      });
      source.addEventListener("end", () => {
        source?.close();
        setState((s) => ({ ...s, connected: false }));
        void qcRef.current.invalidateQueries({ queryKey: trainingKeys.job(jobId) });
        void qcRef.current.invalidateQueries({ queryKey: trainingKeys.models, exact: true }); // a run records one
      });
      source.onerror = () => {
        setState((s) => ({ ...s, connected: false }));
        if (source && source.readyState === EventSource.CLOSED && !stopped) retry = setTimeout(open, 3000);
      };
    };
    open();
    return () => {
      stopped = true;
      source?.close();
      if (retry) clearTimeout(retry);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [jobId]);

  return state;
}

// ---------------------------------------------------------------- models

export function useModels(refetchWhileImporting = true) {
  return useQuery({
    queryKey: trainingKeys.models,
    queryFn: async (): Promise<TrainedModel[]> => unwrap(await api.GET("/api/models")),
    refetchInterval: (query) =>
      refetchWhileImporting && query.state.data?.some((m) => m.status === "importing") ? 2000 : false,
  });
}

export function useModel(id: number) {
  return useQuery({
    queryKey: trainingKeys.model(id),
    queryFn: async (): Promise<ModelDetail> =>
      unwrap(await api.GET("/api/models/{model_id}", { params: { path: { model_id: id } } })),
    enabled: Number.isInteger(id) && id > 0,
    refetchInterval: (query) => (query.state.data?.status === "importing" ? 2000 : false),
  });
}

export function useModelDashboard(id: number, enabled = true) {
  return useQuery({
    queryKey: trainingKeys.dashboard(id),
    queryFn: async (): Promise<ModelDashboard> =>
      unwrap(await api.GET("/api/models/{model_id}/dashboard", { params: { path: { model_id: id } } })),
    enabled: enabled && Number.isInteger(id) && id > 0,
  });
}

export const EVALUATION_PAGE = 12;

export function useEvaluationImages(id: number, target: ExplainTarget | null, offset: number) {
  return useQuery({
    queryKey: trainingKeys.evaluationImages(id, target ?? { view: "highest_loss" }, offset),
    queryFn: async (): Promise<EvaluationImages> =>
      unwrap(
        await api.GET("/api/models/{model_id}/evaluation/images", {
          params: { path: { model_id: id }, query: { ...target!, offset, limit: EVALUATION_PAGE } },
        }),
      ),
    enabled: target != null && Number.isInteger(id) && id > 0,
  });
}

export function useModelChanges(first: number | null, second: number | null, change: "fixed" | "broken", offset: number) {
  return useQuery({
    queryKey: ["models", first, "changes", second, change, offset] as const,
    queryFn: async (): Promise<ModelChanges> =>
      unwrap(
        await api.GET("/api/models/{model_id}/evaluation/changes", {
          params: { path: { model_id: first! }, query: { other: second!, change, offset, limit: EVALUATION_PAGE } },
        }),
      ),
    enabled: first != null && second != null,
    retry: false,
  });
}

export function useDeleteModel() {
  const qc = useQueryClient();
  return useMutation<void, ApiError | Error, number>({
    mutationFn: async (id) => {
      unwrap(await api.DELETE("/api/models/{model_id}", { params: { path: { model_id: id } } }));
    },
    onSuccess: (_, id) => {
      qc.removeQueries({ queryKey: trainingKeys.model(id) });
      return qc.invalidateQueries({ queryKey: trainingKeys.models });
    },
  });
}

export interface ModelUploadFields {
  file: File;
  name: string;
  architecture: string;
  task: string;
  classNames: string;
  inputSize: string;
}

export async function uploadModel(fields: ModelUploadFields): Promise<ModelImportStarted> {
  const form = new FormData();
  form.append("file", fields.file, fields.file.name);
  if (fields.name.trim()) form.append("name", fields.name.trim());
  form.append("architecture", fields.architecture);
  form.append("task", fields.task);
  form.append("class_names", fields.classNames);
  if (fields.inputSize.trim()) form.append("input_size", fields.inputSize.trim());
  const response = await post("/api/models", form);
  if (response.status !== 201) throw await errorOf(response);
  return (await response.json()) as ModelImportStarted;
}

export interface ClassScore {
  index: number;
  name: string;
  score: number;
}

function imageForm(file: File, extra: Record<string, string> = {}): FormData {
  const form = new FormData();
  form.append("image", file, file.name || "image.png");
  for (const [k, v] of Object.entries(extra)) if (v) form.append(k, v);
  return form;
}

/** The inference lane's JSON answer; an error (a 503 when no inference worker answers) carries its message. */
async function answerOf(response: Response): Promise<Record<string, unknown>> {
  if (!response.ok) throw await errorOf(response);
  return obj(await response.json());
}

/** An image answer (PNG) as an object URL. */
async function imageOf(response: Response): Promise<string> {
  if (!response.ok) throw await errorOf(response);
  return URL.createObjectURL(await response.blob());
}

function postImage(url: string, form: FormData, signal?: AbortSignal): Promise<Response> {
  return fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: csrfHeaders({ Accept: "application/json" }),
    body: form,
    signal: signal ?? null,
  });
}

/** What a model's answer holds beside its scores: a mask (share of pixels per class), detections, or neither. */
export type AnswerShape = "mask" | "detections" | "classes";

export interface PredictAnswer {
  scores: ClassScore[];
  shape: AnswerShape;
}

/** One picture's answer: its best classes (or classes found), and what else the answer carries. */
export async function predictAnswer(modelId: number, file: File, topK = 5, signal?: AbortSignal): Promise<PredictAnswer> {
  const result = await answerOf(await postImage(`/api/models/${modelId}/predict?top_k=${topK}`, imageForm(file), signal));
  const scores = Array.isArray(result.top_k) ? (result.top_k as ClassScore[]) : [];
  const shape: AnswerShape =
    typeof result.mask_png === "string" ? "mask" : Array.isArray(result.detections) ? "detections" : "classes";
  return { scores, shape };
}

export async function predictImage(modelId: number, file: File, topK = 5, signal?: AbortSignal): Promise<ClassScore[]> {
  return (await predictAnswer(modelId, file, topK, signal)).scores;
}

export async function predictOverlay(modelId: number, file: File, signal?: AbortSignal): Promise<string> {
  return imageOf(await postImage(`/api/models/${modelId}/predict?overlay=1`, imageForm(file), signal));
}

export interface CamAnswer {
  /** Object URL of the heat map over the image (PNG). */
  url: string;
  /** The class it explains, the layer it read, that class's score (0..1) and the model's top class. */
  targetClass: string | null;
  targetLayer: string | null;
  score: number | null;
  predictedClass: string | null;
  /** A detector's: "gradcam" of one box (its x1,y1,x2,y2 in `box`), or "eigencam" of the whole picture. */
  method?: string | null;
  box?: string | null;
}

function header(response: Response, name: string): string | null {
  const raw = response.headers.get(name);
  if (!raw) return null;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

export async function camImage(modelId: number, file: File, targetClass: string, signal?: AbortSignal): Promise<CamAnswer> {
  const response = await postImage(`/api/models/${modelId}/cam`, imageForm(file, { target_class: targetClass }), signal);
  const score = Number(header(response, "X-Cam-Score") ?? "");
  const url = await imageOf(response);
  return {
    url,
    targetClass: header(response, "X-Cam-Target-Class"),
    targetLayer: header(response, "X-Cam-Target-Layer"),
    score: header(response, "X-Cam-Score") && Number.isFinite(score) ? score : null,
    predictedClass: header(response, "X-Cam-Predicted-Class"),
    method: header(response, "X-Cam-Method"),
    box: header(response, "X-Cam-Box"),
  };
}

export type ExportFormat = "torchscript" | "onnx";

/** Download an export; a 202 (being made) is polled to its end, then asked for again. */
export async function downloadExport(
  model: { id: number; name: string },
  format: ExportFormat,
  onWaiting: (jobId: number) => void,
  signal?: AbortSignal,
): Promise<string> {
  const url = `/api/models/${model.id}/export?format=${format}`;
  for (let tries = 0; tries < 3; tries++) {
    const response = await fetch(url, { credentials: "same-origin", signal: signal ?? null });
    if (response.status === 202) {
      const started = obj(await response.json());
      const jobId = Number(started.job_id);
      onWaiting(jobId);
      const job = await waitForJob(jobId, signal);
      if (job.status !== "succeeded") {
        throw new ApiError(500, "export_failed", `${format} export failed: ${job.error ?? job.status}`);
      }
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    const name = filenameOf(response, `${model.name || "model"}-${model.id}${format === "onnx" ? ".onnx" : ".pt"}`);
    saveBlob(await response.blob(), name);
    return name;
  }
  throw new Error(`the ${format} export is still not there`);
}

// ---------------------------------------------------------------- model metrics JSON

function numOrNull(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/**
 * The figure a model is known by: its task's `headline` (from the task registry, e.g. "accuracy/top1",
 * "mIoU", "bbox/mAP"), from the best epoch, else the final one. No headline (the registry has not answered,
 * or does not list the task): no label and no value.
 */
export function headlineMetric(
  metrics: Record<string, unknown> | undefined,
  headline: string | null | undefined,
): { key: string | null; label: string; value: number | null } {
  if (!headline) return { key: null, label: "", value: null };
  const m = obj(metrics);
  const value = numOrNull(obj(m.best)[headline]) ?? numOrNull(obj(m.final)[headline]) ?? numOrNull(m[headline]);
  return { key: headline, label: shortMetricLabel(headline), value };
}

export function formatCompact(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return "—";
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (abs >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

export function formatPct(v: number | null | undefined): string {
  return v == null || !Number.isFinite(v) ? "—" : `${(v * 100).toFixed(1)}%`;
}
