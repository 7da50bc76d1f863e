/**
 * What a training run's page shows beside its curves, in words and units: time per iteration, time spent
 * waiting for data, memory, learning rate, time left and where the run is. Pure functions: the worker's
 * metrics (`train/time`, `train/data_time`, `train/memory_mb`, `train/lr`, logged every `log_interval`
 * iterations) and the job row in, text out.
 */
import type { Job, QueuePosition } from "../api/types";
import type { MetricSeries } from "./metrics";

// ---------------------------------------------------------------- numbers in words

/** Seconds as "45 s", "4 min 10 s", "2 h 5 min"; "—" for nothing sensible. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A short time (per iteration): milliseconds under a second ("4.2 ms", "412 ms"), seconds above ("1.23 s"). */
export function formatShortTime(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "—";
  const ms = seconds * 1000;
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 999.5) return `${Math.round(ms)} ms`;
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 100) return `${seconds.toFixed(1)} s`;
  return formatDuration(seconds);
}

/** Memory given in MB (2^20 bytes): "812 MB", "1.42 GB", "12.3 GB". */
export function formatMemory(mb: number | null | undefined): string {
  if (mb == null || !Number.isFinite(mb) || mb < 0) return "—";
  if (mb < 1) return "under 1 MB";
  if (mb < 1023.5) return `${Math.round(mb)} MB`;
  const gb = mb / 1024;
  return `${gb < 9.995 ? gb.toFixed(2) : gb.toFixed(1)} GB`;
}

/** A learning rate: exponent form when small ("3.2e-4"), three significant digits otherwise ("0.05", "0.1"). */
export function formatLr(lr: number | null | undefined): string {
  if (lr == null || !Number.isFinite(lr)) return "—";
  if (lr === 0) return "0";
  if (Math.abs(lr) < 0.01) return trimExponent(lr.toExponential(1));
  return String(Number(lr.toPrecision(3)));
}

/** "3.0e-4" → "3e-4"; "1.50e+2" → "1.5e+2". */
export function trimExponent(text: string): string {
  return text.replace(/\.?0+e/, "e");
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

// ---------------------------------------------------------------- the worker's progress message

export interface Progress {
  /** Iterations done and in all. */
  iteration: number;
  iterations: number;
  /** The epoch under way and the epochs in all, when the message names them. */
  epoch: number | null;
  epochs: number | null;
}

/**
 * Where a run stands, from the worker's message ("epoch 2/10, iteration 40/200, ETA 1m20s"); null when the
 * message names no "iteration N/M" (a queued job, a run that is testing or done, another kind of job).
 */
export function parseIteration(message: string | null | undefined): Progress | null {
  if (!message) return null;
  const it = /\biteration\s+(\d+)\s*\/\s*(\d+)/i.exec(message);
  if (!it) return null;
  const iteration = Number(it[1]);
  const iterations = Number(it[2]);
  if (!Number.isFinite(iteration) || !Number.isFinite(iterations) || iterations <= 0) return null;
  const ep = /\bepoch\s+(\d+)\s*\/\s*(\d+)/i.exec(message);
  return {
    iteration,
    iterations,
    epoch: ep ? Number(ep[1]) : null,
    epochs: ep ? Number(ep[2]) : null,
  };
}

// ---------------------------------------------------------------- time left

/** The mean of the last `n` finite values of a series (by step): the recent time per iteration. */
export function recentMean(points: Map<number, number> | undefined, n = 5): number | null {
  if (!points || points.size === 0) return null;
  const steps = [...points.keys()].sort((a, b) => a - b);
  const values = steps
    .map((s) => points.get(s)!)
    .filter((v) => Number.isFinite(v))
    .slice(-n);
  if (!values.length) return null;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Seconds left: iterations left × seconds per iteration; null when either is unknown. */
export function iterationEta(progress: Progress | null, secondsPerIteration: number | null): number | null {
  if (!progress || secondsPerIteration == null || !Number.isFinite(secondsPerIteration) || secondsPerIteration < 0) return null;
  return Math.max(0, progress.iterations - progress.iteration) * secondsPerIteration;
}

/** Seconds left, from the time since the job started and the share done. */
export function progressEta(startedAt: string | null | undefined, progress: number, now = Date.now()): number | null {
  if (!startedAt || progress <= 0.01 || progress >= 1) return null;
  const started = Date.parse(startedAt);
  if (Number.isNaN(started)) return null;
  const elapsed = (now - started) / 1000;
  return (elapsed / progress) * (1 - progress);
}

/**
 * The worker's own time left, from its message: "ETA 1m20s" counts training and the validations still due;
 * "ETA 1m20s before validation" is training alone (no validation has run yet to time). Null without one.
 */
export function workerEta(message: string | null | undefined): { seconds: number; withValidation: boolean } | null {
  const m = message ? /\bETA\s+(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(\s+before validation)?/i.exec(message) : null;
  if (!m || (m[1] == null && m[2] == null && m[3] == null)) return null;
  const seconds = Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  return { seconds, withValidation: !m[4] };
}

/**
 * The best guess of the seconds left while a run trains: the worker's own, when it counts the validations
 * to come; else iterations left × recent time per iteration when the message says how far it is; else the
 * share done against the time since it started.
 */
export function bestEta(
  message: string | null | undefined,
  metrics: MetricSeries,
  startedAt: string | null | undefined,
  progress: number,
  now = Date.now(),
): number | null {
  const worker = workerEta(message);
  if (worker?.withValidation) return worker.seconds;
  return iterationEta(parseIteration(message), recentMean(metrics.get("train/time"))) ?? progressEta(startedAt, progress, now);
}

// ---------------------------------------------------------------- the job row

function obj(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

export type DeviceKind = "cpu" | "gpu";

/** Where the run trains: the result's device once finished ("cpu", "cuda:0"), else the config's runtime.device ("auto": unknown). */
export function deviceOf(job: Pick<Job, "result" | "config">): DeviceKind | null {
  const candidates = [obj(job.result).device, obj(obj(job.config).runtime).device];
  for (const d of candidates) {
    if (typeof d !== "string") continue;
    const name = d.toLowerCase();
    if (name.startsWith("cuda") || name.startsWith("gpu")) return "gpu";
    if (name === "cpu") return "cpu";
  }
  return null;
}

/** What the memory figure measures: the worker logs CUDA peak allocated memory on a GPU, peak process RSS on a CPU. */
export function memoryNote(device: DeviceKind | null): string {
  return device === "gpu" ? "peak GPU memory" : device === "cpu" ? "peak process memory" : "peak memory";
}

/** The config's runtime.log_interval, when it has one. */
export function logIntervalOf(config: unknown): number | null {
  const n = obj(obj(config).runtime).log_interval;
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : null;
}

/** "Queued: 2 jobs ahead", "Queued: next to start", or just "Queued" when the lane has not said. */
export function queuedText(position: QueuePosition | null | undefined): string {
  if (!position) return "Queued";
  if (position.ahead <= 0) return "Queued: next to start";
  return `Queued: ${count(position.ahead)} ${position.ahead === 1 ? "job" : "jobs"} ahead`;
}

// ---------------------------------------------------------------- the panel

export type StatKey = "iter-time" | "data-time" | "memory" | "lr" | "eta" | "iteration";

export interface Stat {
  key: StatKey;
  label: string;
  value: string;
  /** A few words on what the value measures, shown beside it. */
  note?: string;
}

export interface RunStatsView {
  /** Why there is nothing to show yet, in words; null once there is. */
  empty: string | null;
  stats: Stat[];
}

export interface RunStatsInput {
  job: Pick<Job, "status" | "config" | "result" | "started_at" | "finished_at" | "queue_position">;
  /** The freshest status, progress and message (the live stream's while it runs). */
  status: Job["status"];
  progress: number;
  message: string | null | undefined;
  metrics: MetricSeries;
  now?: number;
}

function last(points: Map<number, number> | undefined): { step: number; value: number } | null {
  if (!points || points.size === 0) return null;
  const step = Math.max(...points.keys());
  const value = points.get(step);
  return value == null ? null : { step, value };
}

const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

/** The run's figures in words; before the first metrics, why there are none. */
export function runStats({ job, status, progress, message, metrics, now = Date.now() }: RunStatsInput): RunStatsView {
  if (status === "queued") return { empty: queuedText(job.queue_position), stats: [] };
  const finished = FINISHED.has(status);
  const time = last(metrics.get("train/time"));
  const data = last(metrics.get("train/data_time"));
  const memory = last(metrics.get("train/memory_mb"));
  const lr = last(metrics.get("train/lr"));
  const anyTrain = [time, data, memory, lr, last(metrics.get("train/loss"))].filter((x) => x != null);
  const lastStep = anyTrain.length ? Math.max(...anyTrain.map((x) => x!.step)) : null;

  // Where the run is: the message while it trains; once finished, the result's count.
  const result = obj(job.result);
  let where = finished ? null : parseIteration(message);
  if (!where && typeof result.iterations === "number") {
    where = { iteration: result.iterations, iterations: result.iterations, epoch: null, epochs: null };
    if (status !== "succeeded") where.iterations = 0; // stopped early: the planned total is not known here
  }

  if (!anyTrain.length) {
    const interval = logIntervalOf(job.config);
    const empty = finished
      ? "No iterations were logged."
      : interval === 1
        ? "Waiting for the first iteration"
        : interval
          ? `Waiting for the first ${count(interval)} iterations`
          : "Waiting for the first iterations";
    return { empty, stats: where && !finished ? [iterationStat(where)] : [] };
  }

  const stats: Stat[] = [];
  stats.push({ key: "iter-time", label: "Time per iteration", value: formatShortTime(time?.value) });
  const share = time && data && time.value > 0 ? Math.round((100 * data.value) / time.value) : null;
  stats.push({
    key: "data-time",
    label: "Waiting for data",
    value: `${formatShortTime(data?.value)}${share != null ? ` (${Math.min(100, share)} %)` : ""}`,
  });
  stats.push({ key: "memory", label: "Memory", value: formatMemory(memory?.value), note: memoryNote(deviceOf(job)) });
  stats.push({ key: "lr", label: "Learning rate", value: formatLr(lr?.value) });
  if (finished) {
    const seconds = typeof result.seconds === "number" ? result.seconds : elapsed(job.started_at, job.finished_at);
    stats.push({ key: "eta", label: "Time taken", value: seconds != null ? formatDuration(seconds) : "—" });
  } else {
    const left = bestEta(message, metrics, job.started_at, progress, now);
    stats.push({
      key: "eta",
      label: "Time left",
      value: left == null ? "—" : left < 0.5 && where ? "finishing…" : `about ${formatDuration(left)}`,
    });
  }
  stats.push(
    where && where.iterations > 0
      ? iterationStat(where)
      : { key: "iteration", label: "Iteration", value: lastStep != null ? count(where?.iteration ?? lastStep) : "—" },
  );
  return { empty: null, stats };
}

function iterationStat(where: Progress): Stat {
  const epoch = where.epoch != null && where.epochs != null ? `epoch ${count(where.epoch)} of ${count(where.epochs)}` : undefined;
  return {
    key: "iteration",
    label: "Iteration",
    value: `${count(where.iteration)} of ${count(where.iterations)}`,
    ...(epoch ? { note: epoch } : {}),
  };
}

function elapsed(startedAt: string | null | undefined, finishedAt: string | null | undefined): number | null {
  if (!startedAt || !finishedAt) return null;
  const s = (Date.parse(finishedAt) - Date.parse(startedAt)) / 1000;
  return Number.isFinite(s) && s >= 0 ? s : null;
}
