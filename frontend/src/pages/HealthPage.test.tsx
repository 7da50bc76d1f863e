import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { HealthPage } from "./HealthPage";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

const now = new Date().toISOString();

function worker(name: string, extra: Record<string, unknown> = {}) {
  return { name, live: true, last_seen: now, busy: false, job_id: null, job_kind: null, state: "running", pid: 10, restarts: 0, last_exit: null, ...extra };
}

describe("HealthPage", () => {
  it("shows database, broker, and each lane: what it runs, its workers, what they do and the counts", async () => {
    mockApi({
      "GET /api/health": () =>
        jsonResponse(200, {
          status: "ok",
          database: { ok: true, detail: "sqlite ok" },
          broker: { ok: true, detail: "filesystem broker ready", transport: "filesystem" },
          lanes: {
            training: {
              workers: [worker("training-1@host-<img src=x onerror=alert(1)>", { busy: true, job_id: 12, job_kind: "train", resources: "no GPU · 2 CPU threads" })],
              queued: 2,
              running: 1,
            },
            light: {
              workers: [worker("light-1@host", { restarts: 2, last_exit: "killed by SIGKILL" })],
              queued: 0,
              running: 0,
            },
            inference: { workers: [worker("inference-1@host")], queued: null, running: 0 },
          },
        }),
    });
    renderWithProviders(<HealthPage />, { route: "/health" });

    expect(await screen.findByTestId("health-status")).toHaveTextContent("ok");
    expect(screen.getByTestId("health-database-status")).toHaveTextContent("ok");
    expect(screen.getByTestId("health-broker-status")).toHaveTextContent("ok");
    expect(screen.getByTestId("health-broker")).toHaveTextContent("Transport: filesystem");
    expect(screen.queryByTestId("health-reasons")).not.toBeInTheDocument();

    const lanes = screen.getAllByTestId(/^lane-(training|light|inference)$/).map((l) => l.getAttribute("data-testid"));
    expect(lanes).toEqual(["lane-training", "lane-light", "lane-inference"]);

    const training = screen.getByTestId("lane-training");
    expect(within(training).getByRole("heading", { name: "Training lane" })).toBeInTheDocument();
    expect(within(training).getByTestId("lane-training-runs")).toHaveTextContent(
      "train, evaluate, batch predict, Grad-CAM over a split — one job at a time per device",
    );
    expect(within(training).getByTestId("lane-training-counts")).toHaveTextContent("2 waiting · 1 running");
    expect(within(training).getByTestId("lane-training-live")).toHaveTextContent("1 live worker");
    const rows = within(training).getAllByTestId("worker-row");
    expect(rows).toHaveLength(1);
    expect(within(rows[0]!).getByTestId("worker-name").textContent).toBe("training-1@host-<img src=x onerror=alert(1)>");
    // What it has, as its supervisor gave it: no "gpu" worker on a machine without one.
    expect(within(rows[0]!).getByTestId("worker-resources")).toHaveTextContent("no GPU · 2 CPU threads");
    expect(training.querySelector("img")).toBeNull();
    expect(within(rows[0]!).getByTestId("worker-state")).toHaveTextContent("live");
    expect(within(rows[0]!).getByTestId("worker-doing")).toHaveTextContent("running job #12 (train)");
    expect(within(rows[0]!).getByRole("link", { name: "running job #12 (train)" })).toHaveAttribute("href", "/jobs/12");
    expect(within(rows[0]!).queryByTestId("worker-restarts")).not.toBeInTheDocument();

    const light = screen.getByTestId("lane-light");
    expect(within(light).getByTestId("lane-light-runs")).toHaveTextContent("imports, exports, previews, catalog analysis, model imports");
    expect(within(light).getByTestId("worker-doing")).toHaveTextContent("idle");
    expect(within(light).getByTestId("worker-restarts")).toHaveTextContent("restarted 2 times · last process killed by SIGKILL");

    const inference = screen.getByTestId("lane-inference");
    expect(within(inference).getByTestId("lane-inference-runs")).toHaveTextContent("single pictures and small batches from warm models");
    expect(within(inference).getByTestId("lane-inference-counts")).toHaveTextContent("waiting: unknown · 0 running");
  });

  it("says why it is degraded: a lane with no live worker, a worker not answering or restarting", async () => {
    mockApi({
      "GET /api/health": () =>
        jsonResponse(200, {
          status: "degraded",
          database: { ok: true, detail: "sqlite" },
          broker: { ok: true, detail: "reachable", transport: "filesystem" },
          lanes: {
            training: { workers: [worker("training-1@host", { live: false, state: "restarting", last_seen: null })], queued: 3, running: 0 },
            light: { workers: [worker("light-1@host", { live: false, state: null })], queued: 0, running: 0 },
            inference: { workers: [], queued: 0, running: 0 },
          },
        }),
    });
    renderWithProviders(<HealthPage />, { route: "/health" });
    expect(await screen.findByTestId("health-status")).toHaveTextContent("degraded");
    expect(screen.getByTestId("health-reasons")).toHaveTextContent(
      "Degraded: no live worker on the training lane; no live worker on the light lane; no live worker on the inference lane.",
    );
    expect(within(screen.getByTestId("lane-training")).getByTestId("worker-state")).toHaveTextContent("restarting");
    expect(within(screen.getByTestId("lane-training")).getByTestId("lane-training-live")).toHaveTextContent("no live worker");
    expect(within(screen.getByTestId("lane-light")).getByTestId("worker-state")).toHaveTextContent("not answering");
    expect(within(screen.getByTestId("lane-inference")).getByText("No worker has reported on this lane.")).toBeInTheDocument();
  });

  it("treats a 503 body as a degraded status, not an error", async () => {
    mockApi({
      "GET /api/health": () =>
        jsonResponse(503, {
          status: "degraded",
          database: { ok: false, detail: "connection refused" },
          broker: { ok: true, detail: "ok", transport: "redis" },
          lanes: {
            training: { workers: [], queued: null, running: 0 },
            light: { workers: [], queued: null, running: 0 },
            inference: { workers: [], queued: null, running: 0 },
          },
        }),
    });
    renderWithProviders(<HealthPage />, { route: "/health" });
    expect(await screen.findByTestId("health-status")).toHaveTextContent("degraded");
    expect(screen.getByTestId("health-database-status")).toHaveTextContent("down");
    expect(screen.getByTestId("health-database-detail")).toHaveTextContent("connection refused");
    expect(screen.getByTestId("health-reasons")).toHaveTextContent("the database cannot be reached");
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
  });

  it("reports a failure to load", async () => {
    mockApi({ "GET /api/health": () => jsonResponse(500, { detail: "boom", code: "internal" }) });
    renderWithProviders(<HealthPage />, { route: "/health" });
    expect(await screen.findByRole("alert")).toHaveTextContent("Could not load health: boom");
  });
});
