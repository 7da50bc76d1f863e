import { describe, expect, it } from "vitest";
import type { MetricSeries } from "./metrics";
import {
  bestEta,
  workerEta,
  deviceOf,
  formatDuration,
  formatLr,
  formatMemory,
  formatShortTime,
  iterationEta,
  logIntervalOf,
  memoryNote,
  parseIteration,
  progressEta,
  queuedText,
  recentMean,
  runStats,
  type RunStatsInput,
} from "./runStats";

function series(entries: Record<string, [number, number][]>): MetricSeries {
  return new Map(Object.entries(entries).map(([name, pts]) => [name, new Map(pts)]));
}

describe("parseIteration", () => {
  it("reads the iteration and epoch from the worker's message", () => {
    expect(parseIteration("epoch 2/10, iteration 40/200, ETA 1m20s")).toEqual({
      iteration: 40,
      iterations: 200,
      epoch: 2,
      epochs: 10,
    });
    expect(parseIteration("iteration 7/9")).toEqual({ iteration: 7, iterations: 9, epoch: null, epochs: null });
    expect(parseIteration("epoch 1/3, Iteration 12 / 36, val top-1 80.0%")).toMatchObject({ iteration: 12, iterations: 36 });
  });

  it("answers null for messages without an iteration count", () => {
    for (const m of [null, undefined, "", "done", "epoch 2/10", "evaluating the test split", "iteration 3/0"]) {
      expect(parseIteration(m)).toBeNull();
    }
  });
});

describe("time left", () => {
  it("is the iterations left times the recent time per iteration", () => {
    expect(iterationEta({ iteration: 40, iterations: 200, epoch: null, epochs: null }, 0.5)).toBe(80);
    expect(iterationEta({ iteration: 200, iterations: 200, epoch: null, epochs: null }, 0.5)).toBe(0);
    expect(iterationEta(null, 0.5)).toBeNull();
    expect(iterationEta({ iteration: 1, iterations: 2, epoch: null, epochs: null }, null)).toBeNull();
  });

  it("takes the recent time per iteration as the mean of the last logged windows", () => {
    const times = new Map([
      [10, 9], // the first window (warm-up) is left out once there are more
      [20, 1],
      [30, 2],
      [40, 3],
      [50, 2],
      [60, 2],
    ]);
    expect(recentMean(times, 5)).toBe(2);
    expect(recentMean(new Map([[10, NaN]]))).toBeNull();
    expect(recentMean(undefined)).toBeNull();
  });

  it("prefers the iteration count, falling back to the share done", () => {
    const now = Date.parse("2024-05-01T10:01:40Z");
    const started = "2024-05-01T10:00:00Z"; // 100 s ago
    const metrics = series({ "train/time": [[40, 0.25]] });
    // The worker's ETA counts the validations to come: it wins; before any validation, the iteration count.
    expect(bestEta("epoch 1/5, iteration 40/200, ETA 1m05s", metrics, started, 0.2, now)).toBe(65);
    expect(bestEta("epoch 1/5, iteration 40/200, ETA 1m before validation", metrics, started, 0.2, now)).toBe(40);
    expect(bestEta("epoch 1/5, iteration 40/200", metrics, started, 0.2, now)).toBe(40);
    expect(workerEta("epoch 3/9, ETA 2h05m")).toEqual({ seconds: 7500, withValidation: true });
    expect(workerEta("ETA 12s before validation")).toEqual({ seconds: 12, withValidation: false });
    expect(workerEta("epoch 1/5")).toBeNull();
    // No iteration in the message (or no time per iteration yet): 100 s for 20 % → 400 s left.
    expect(bestEta("evaluating", metrics, started, 0.2, now)).toBeCloseTo(400);
    expect(bestEta("iteration 40/200", new Map(), started, 0.2, now)).toBeCloseTo(400);
    expect(progressEta(null, 0.5, now)).toBeNull();
    expect(progressEta(started, 0, now)).toBeNull();
  });
});

describe("formats", () => {
  it("writes short times in ms under a second, s above", () => {
    expect(formatShortTime(0.41)).toBe("410 ms");
    expect(formatShortTime(0.0042)).toBe("4.2 ms");
    expect(formatShortTime(0.0004)).toBe("0.40 ms");
    expect(formatShortTime(0.9996)).toBe("1.00 s");
    expect(formatShortTime(1.234)).toBe("1.23 s");
    expect(formatShortTime(42.42)).toBe("42.4 s");
    expect(formatShortTime(250)).toBe("4 min 10 s");
    expect(formatShortTime(null)).toBe("—");
    expect(formatShortTime(NaN)).toBe("—");
  });

  it("writes memory in MB, then GB", () => {
    expect(formatMemory(812.4)).toBe("812 MB");
    expect(formatMemory(1536)).toBe("1.50 GB");
    expect(formatMemory(20480)).toBe("20.0 GB");
    expect(formatMemory(0.2)).toBe("under 1 MB");
    expect(formatMemory(undefined)).toBe("—");
  });

  it("writes small learning rates in exponent form", () => {
    expect(formatLr(0.00032)).toBe("3.2e-4");
    expect(formatLr(0.001)).toBe("1e-3");
    expect(formatLr(0.003)).toBe("3e-3");
    expect(formatLr(0.05)).toBe("0.05");
    expect(formatLr(0.1)).toBe("0.1");
    expect(formatLr(0.123456)).toBe("0.123");
    expect(formatLr(0)).toBe("0");
    expect(formatLr(null)).toBe("—");
  });

  it("writes durations", () => {
    expect(formatDuration(42)).toBe("42 s");
    expect(formatDuration(250)).toBe("4 min 10 s");
    expect(formatDuration(7500)).toBe("2 h 5 min");
    expect(formatDuration(-1)).toBe("—");
  });
});

describe("the job row", () => {
  it("tells a CPU run from a GPU run: the result's device, else the config's", () => {
    expect(deviceOf({ result: { device: "cuda:0" }, config: {} })).toBe("gpu");
    expect(deviceOf({ result: { device: "cpu" }, config: { runtime: { device: "cuda" } } })).toBe("cpu");
    expect(deviceOf({ result: null, config: { runtime: { device: "cuda" } } })).toBe("gpu");
    expect(deviceOf({ result: null, config: { runtime: { device: "auto" } } })).toBeNull();
    expect(deviceOf({ result: null, config: {} })).toBeNull();
    expect(memoryNote("cpu")).toBe("peak process memory");
    expect(memoryNote("gpu")).toBe("peak GPU memory");
    expect(memoryNote(null)).toBe("peak memory");
  });

  it("reads the log interval and the queue position", () => {
    expect(logIntervalOf({ runtime: { log_interval: 25 } })).toBe(25);
    expect(logIntervalOf({ runtime: {} })).toBeNull();
    expect(logIntervalOf(null)).toBeNull();
    const pos = (ahead: number) => ({ lane: "training", ahead, queued_before: ahead, running: 0, text: "" });
    expect(queuedText(pos(2))).toBe("Queued: 2 jobs ahead");
    expect(queuedText(pos(1))).toBe("Queued: 1 job ahead");
    expect(queuedText(pos(0))).toBe("Queued: next to start");
    expect(queuedText(null)).toBe("Queued");
  });
});

describe("runStats", () => {
  const base: RunStatsInput = {
    job: {
      status: "running",
      config: { runtime: { log_interval: 10, device: "cpu" } },
      result: null,
      started_at: "2024-05-01T10:00:00Z",
      finished_at: null,
      queue_position: null,
    },
    status: "running",
    progress: 0.2,
    message: "epoch 2/10, iteration 40/200, ETA 1m20s before validation",  // timed by the page itself
    metrics: new Map(),
    now: Date.parse("2024-05-01T10:01:00Z"),
  };
  const values = (input: RunStatsInput) => Object.fromEntries(runStats(input).stats.map((s) => [s.key, s.value]));

  it("says why it is empty while queued and before the first metrics", () => {
    const queued = runStats({
      ...base,
      status: "queued",
      job: { ...base.job, status: "queued", queue_position: { lane: "training", ahead: 2, queued_before: 1, running: 1, text: "" } },
    });
    expect(queued).toEqual({ empty: "Queued: 2 jobs ahead", stats: [] });
    const started = runStats({ ...base, message: "epoch 1/10, iteration 0/200" });
    expect(started.empty).toBe("Waiting for the first 10 iterations");
    expect(started.stats.map((s) => s.value)).toEqual(["0 of 200"]);
    expect(runStats({ ...base, message: null, job: { ...base.job, config: {} } })).toEqual({
      empty: "Waiting for the first iterations",
      stats: [],
    });
    expect(runStats({ ...base, job: { ...base.job, config: { runtime: { log_interval: 1 } } } }).empty).toBe(
      "Waiting for the first iteration",
    );
  });

  it("gives every figure in words and units once metrics arrive", () => {
    const metrics = series({
      "train/time": [
        [30, 0.5],
        [40, 0.4],
      ],
      "train/data_time": [[40, 0.02]],
      "train/memory_mb": [[40, 812]],
      "train/lr": [[40, 0.00032]],
      "train/loss": [[40, 1.2]],
    });
    const view = runStats({ ...base, metrics });
    expect(view.empty).toBeNull();
    expect(view.stats.map((s) => s.label)).toEqual([
      "Time per iteration",
      "Waiting for data",
      "Memory",
      "Learning rate",
      "Time left",
      "Iteration",
    ]);
    expect(values({ ...base, metrics })).toEqual({
      "iter-time": "400 ms",
      "data-time": "20 ms (5 %)",
      memory: "812 MB",
      lr: "3.2e-4",
      // 160 iterations left at 0.45 s (the recent mean) = 72 s.
      eta: "about 1 min 12 s",
      iteration: "40 of 200",
    });
    expect(view.stats.find((s) => s.key === "memory")?.note).toBe("peak process memory");
    expect(view.stats.find((s) => s.key === "iteration")?.note).toBe("epoch 2 of 10");
  });

  it("shows a dash for a figure the run has not logged, and says when it is finishing", () => {
    const metrics = series({ "train/loss": [[200, 0.3]] });
    const v = values({ ...base, metrics, message: "epoch 10/10, iteration 200/200", progress: 0.99 });
    expect(v["iter-time"]).toBe("—");
    expect(v.memory).toBe("—");
    // No time per iteration: the share done says it (60 s for 99 %).
    expect(v.eta).toBe("about 1 s");
    const t = series({ "train/loss": [[200, 0.3]], "train/time": [[200, 0.3]] });
    expect(values({ ...base, metrics: t, message: "epoch 10/10, iteration 200/200" }).eta).toBe("finishing…");
  });

  it("says how long a finished run took and how far it went", () => {
    const metrics = series({ "train/time": [[60, 0.1]], "train/memory_mb": [[60, 2048]] });
    const job = {
      ...base.job,
      status: "succeeded" as const,
      result: { iterations: 60, seconds: 75.4, device: "cuda:0" },
      finished_at: "2024-05-01T10:02:00Z",
    };
    const view = runStats({ ...base, job, status: "succeeded", message: "done", metrics });
    const eta = view.stats.find((s) => s.key === "eta")!;
    expect(eta).toMatchObject({ label: "Time taken", value: "1 min 15 s" });
    expect(view.stats.find((s) => s.key === "iteration")?.value).toBe("60 of 60");
    expect(view.stats.find((s) => s.key === "memory")).toMatchObject({ value: "2.00 GB", note: "peak GPU memory" });
    // A cancelled run: how far it got, not a planned total.
    const cancelled = runStats({ ...base, job: { ...job, status: "cancelled", result: null }, status: "cancelled", metrics });
    expect(cancelled.stats.find((s) => s.key === "iteration")?.value).toBe("60");
    expect(cancelled.stats.find((s) => s.key === "eta")?.value).toBe("2 min 0 s");
    expect(runStats({ ...base, job: { ...job, result: null }, status: "failed", metrics: new Map() }).empty).toBe(
      "No iterations were logged.",
    );
  });
});
