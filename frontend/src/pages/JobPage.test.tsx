import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { JobPage, withoutEta } from "./JobPage";
import { tasksRoute } from "../test/tasks";
import { jobRow } from "../test/jobs";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

function job(fields: Record<string, unknown>) {
  return jobRow({ id: 5, kind: "evaluate", config: { model_id: 2, dataset_id: 4, split: "test" }, ...fields });
}

function position(ahead: number, running: number, text: string) {
  return { lane: "training", ahead, queued_before: ahead - running, running, text };
}

function renderPage() {
  return renderWithProviders(
    <Routes>
      <Route path="/jobs/:id" element={<JobPage />} />
    </Routes>,
    { route: "/jobs/5" },
  );
}

describe("JobPage", () => {
  it("says where a queued job stands on its lane, keeps that fresh, and can cancel it", async () => {
    const looks = [
      job({ queue_position: position(2, 1, "behind 1 queued and 1 running jobs on the training lane") }),
      job({ queue_position: position(0, 0, "next on the training lane") }),
    ];
    const cancelled = job({ status: "cancelled", finished_at: "2024-05-01T10:01:00Z" });
    let gone = false;
    const { requests } = mockApi({
      "GET /api/jobs/5": () => jsonResponse(200, gone ? cancelled : looks.length > 1 ? looks.shift() : looks[0]),
      "GET /api/models": () => jsonResponse(200, []),
      "POST /api/jobs/5/cancel": () => {
        gone = true;
        return jsonResponse(200, cancelled);
      },
    });
    renderPage();
    expect(await screen.findByTestId("job-progress")).toHaveTextContent("Waiting: behind 1 queued and 1 running jobs on the training lane");
    expect(screen.getByTestId("job-status")).toHaveTextContent("queued");
    expect(screen.getByTestId("job-lane")).toHaveTextContent("training");
    expect(screen.getByTestId("job-progress")).not.toHaveTextContent("0%");

    // The row is asked for again while the job has not finished: the position follows the lane.
    await waitFor(() => expect(screen.getByTestId("job-progress")).toHaveTextContent("Waiting: next on the training lane"), {
      timeout: 5000,
    });

    await userEvent.click(screen.getByRole("button", { name: "Cancel" }));
    await waitFor(() => expect(screen.getByTestId("job-status")).toHaveTextContent("cancelled"));
    await waitFor(() => expect(screen.queryByRole("button", { name: "Cancel" })).not.toBeInTheDocument());
    expect(screen.getByTestId("job-progress")).not.toHaveTextContent("Waiting");
    expect(requests.some((r) => r.method === "POST" && new URL(r.url).pathname === "/api/jobs/5/cancel")).toBe(true);
  }, 10_000);

  it("shows progress, not a position, once the job runs", async () => {
    mockApi({
      "GET /api/jobs/5": () =>
        jsonResponse(200, job({ status: "running", progress: 0.4, message: "epoch 2/5", worker: "training-1@host", started_at: new Date().toISOString() })),
      "GET /api/models": () => jsonResponse(200, []),
    });
    renderPage();
    expect(await screen.findByTestId("job-progress")).toHaveTextContent("40% · epoch 2/5");
    expect(screen.getByTestId("job-worker")).toHaveTextContent("training-1@host");
    expect(screen.getByRole("button", { name: "Cancel" })).toBeEnabled();
  });
});

/** A stand-in for the browser's EventSource: the test sends the job's events by hand. */
class FakeEventSource {
  static readonly CLOSED = 2;
  static instances: FakeEventSource[] = [];
  readyState = 1;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  private listeners = new Map<string, ((e: MessageEvent<string>) => void)[]>();
  constructor(readonly url: string) {
    FakeEventSource.instances.push(this);
  }
  addEventListener(type: string, fn: (e: MessageEvent<string>) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  close() {
    this.readyState = FakeEventSource.CLOSED;
  }
  send(type: string, data: unknown) {
    act(() => {
      for (const fn of this.listeners.get(type) ?? []) fn(new MessageEvent(type, { data: JSON.stringify(data) }));
    });
  }
}

function trainJob(fields: Record<string, unknown>) {
  return job({
    kind: "train",
    config: { task: "classification", name: "tiny", runtime: { log_interval: 10, device: "cpu" } },
    ...fields,
  });
}

function points(step: number, values: Record<string, number>) {
  return Object.entries(values).map(([name, value]) => ({ step, name, value }));
}

describe("JobPage for a training run", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    FakeEventSource.instances = [];
  });

  it("says why its figures are empty while queued, and names no validation metric it has not got", async () => {
    mockApi({
      "GET /api/jobs/5": () => jsonResponse(200, trainJob({ queue_position: position(2, 1, "behind 1 queued and 1 running jobs") })),
      "GET /api/models": () => jsonResponse(200, []),
    });
    renderPage();
    expect(await screen.findByTestId("run-stats-empty")).toHaveTextContent("Queued: 2 jobs ahead");
    expect(screen.getByTestId("job-progress")).toHaveTextContent("Waiting: behind 1 queued and 1 running jobs");
    expect(screen.getByTestId("chart-val-empty")).toHaveTextContent("No validation yet.");
    expect(screen.getByTestId("job-page")).not.toHaveTextContent("val/accuracy/top1");
    expect(screen.queryByTestId("stat-iter-time")).not.toBeInTheDocument();
    // Nothing to scale or smooth yet: no controls over an empty chart.
    expect(screen.queryByRole("checkbox", { name: "Log scale" })).not.toBeInTheDocument();
    expect(screen.queryByRole("slider", { name: "Smoothing" })).not.toBeInTheDocument();
  });

  it("shows a finished run's result as its model's figures and worst images, the JSON folded away", async () => {
    vi.stubGlobal("EventSource", FakeEventSource);
    mockApi({
      ...tasksRoute(),
      "GET /api/jobs/5": () =>
        jsonResponse(
          200,
          trainJob({
            status: "succeeded",
            progress: 1,
            config: { task: "semantic_segmentation", data: { dataset_id: 3 } },
            result: { model_id: 9, final: { mIoU: 0.61 }, worst: [11] },
          }),
        ),
      "GET /api/models": () => jsonResponse(200, []),
      "GET /api/jobs/5/metrics": () => jsonResponse(200, []),
      "GET /api/models/9/dashboard": () =>
        jsonResponse(200, {
          model_id: 9,
          task: "semantic_segmentation",
          dataset_id: 3,
          summary: { mIoU: 0.61, mDice: 0.7 },
          columns: ["IoU"],
          per_class: [],
          confusion_matrix: null,
          confusion_labels: [],
          curves: {},
          pr_curves: {},
          worst_images: [
            {
              image_id: 11,
              counts: {},
              file_name: "images/000011.jpg",
              source: "batch0/img_023.jpg",
              split: "val",
              score: 0.2,
              image_url: "/api/datasets/3/images/11/render?overlay=false",
              true_overlay_url: null,
              predicted_overlay_url: null,
              true_mask_url: null,
              predicted_mask_url: null,
            },
          ],
        }),
    });
    renderPage();
    expect(await screen.findByTestId("result-model-link")).toHaveAttribute("href", "/models/9");
    expect(screen.getByTestId("job-result").closest("details")).not.toHaveAttribute("open");
    expect(await screen.findByTestId("worst-row")).toHaveTextContent("batch0/img_023.jpg");
    expect(screen.getByTestId("worst-images")).not.toHaveTextContent("000011");
  });

  it("waits in words for the first logged iterations once it runs", async () => {
    vi.stubGlobal("EventSource", FakeEventSource);
    mockApi({
      "GET /api/jobs/5": () => jsonResponse(200, trainJob({ status: "running", started_at: new Date().toISOString() })),
      "GET /api/models": () => jsonResponse(200, []),
    });
    renderPage();
    expect(await screen.findByTestId("run-stats-empty")).toHaveTextContent("Waiting for the first 10 iterations");
  });

  it("shows time per iteration, data wait, memory, lr, time left and iteration live beside the curves", async () => {
    vi.stubGlobal("EventSource", FakeEventSource);
    mockApi({
      "GET /api/jobs/5": () => jsonResponse(200, trainJob({ status: "running", started_at: new Date().toISOString() })),
      "GET /api/models": () => jsonResponse(200, []),
    });
    renderPage();
    await screen.findByTestId("run-stats");
    const stream = FakeEventSource.instances.at(-1)!;
    expect(stream.url).toBe("/api/jobs/5/events");
    // No validation has run yet: the worker's ETA is training alone, and the page times iterations itself.
    stream.send("progress", { progress: 0.2, message: "epoch 2/10, iteration 40/200, ETA 9m59s before validation" });
    stream.send("metrics", {
      points: [
        ...points(30, { "train/loss": 1.4, "train/time": 0.5, "train/data_time": 0.01 }),
        ...points(40, {
          "train/loss": 1.2,
          "train/time": 0.4,
          "train/data_time": 0.02,
          "train/memory_mb": 812,
          "train/lr": 0.00032,
        }),
      ],
    });

    const stats = screen.getByTestId("run-stats");
    expect(within(stats).getByTestId("stat-iter-time")).toHaveTextContent("400 ms");
    expect(within(stats).getByTestId("stat-data-time")).toHaveTextContent("20 ms (5 %)");
    expect(within(stats).getByTestId("stat-memory")).toHaveTextContent("812 MB peak process memory");
    expect(within(stats).getByTestId("stat-lr")).toHaveTextContent("3.2e-4");
    expect(within(stats).getByTestId("stat-eta")).toHaveTextContent("about 1 min 12 s"); // 160 left × 0.45 s
    expect(within(stats).getByTestId("stat-iteration")).toHaveTextContent("40 of 200");
    expect(within(stats).getByText("Time per iteration")).toBeInTheDocument();
    // The bar says the time left once, from the same estimate (not the worker's own ETA beside it).
    expect(screen.getByTestId("job-progress")).toHaveTextContent(
      "20% · epoch 2/10, iteration 40/200 · about 1 min 12 s left, before validation",
    );
    expect(screen.getByTestId("job-progress")).not.toHaveTextContent("9m59s");
    // Once a validation has been timed, the worker's ETA counts the ones to come: the page says that one.
    stream.send("progress", { progress: 0.3, message: "epoch 3/10, iteration 60/200, ETA 2m30s" });
    expect(await screen.findByTestId("job-progress")).toHaveTextContent("about 2 min 30 s left");
    expect(screen.getByTestId("job-progress")).not.toHaveTextContent("before validation");

    // The loss: raw and smoothed (2 + 2 points); smoothing off draws the raw alone.
    const loss = screen.getByTestId("chart-loss");
    expect(loss).toHaveAttribute("data-points", "4");
    expect(within(loss).getByRole("slider", { name: "Smoothing" })).toHaveValue("0.6");
    expect(within(loss).getByRole("checkbox", { name: "Log scale" })).not.toBeChecked();
    fireEvent.change(within(loss).getByRole("slider", { name: "Smoothing" }), { target: { value: "0" } });
    expect(loss).toHaveAttribute("data-points", "2");
    expect(within(loss).getByTestId("smoothing-value")).toHaveTextContent("0.00");
    await userEvent.click(within(loss).getByRole("checkbox", { name: "Log scale" }));
    expect(within(loss).getByRole("checkbox", { name: "Log scale" })).toBeChecked();
  });
});

describe("withoutEta", () => {
  it("drops the worker's ETA from its message and keeps the rest", () => {
    expect(withoutEta("epoch 2/10, iteration 40/200, ETA 1m20s")).toBe("epoch 2/10, iteration 40/200");
    expect(withoutEta("epoch 2/10, iteration 40/200, ETA 1m20s, val top-1 80%")).toBe("epoch 2/10, iteration 40/200, val top-1 80%");
    expect(withoutEta("epoch 2/5")).toBe("epoch 2/5");
  });
});
