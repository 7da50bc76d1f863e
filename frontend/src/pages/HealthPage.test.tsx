import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { HealthPage } from "./HealthPage";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

const now = new Date().toISOString();

describe("HealthPage", () => {
  it("shows database, broker and live workers per queue", async () => {
    mockApi({
      "GET /api/health": () =>
        jsonResponse(200, {
          status: "ok",
          database: { ok: true, detail: "sqlite ok" },
          broker: { ok: true, detail: "filesystem broker ready", transport: "filesystem" },
          queues: {
            cpu: { workers: [{ name: "cpu@host-<img src=x onerror=alert(1)>", last_seen: now, busy: true }] },
            gpu: { workers: [] },
          },
        }),
    });
    renderWithProviders(<HealthPage />, { route: "/health" });

    expect(await screen.findByTestId("health-status")).toHaveTextContent("ok");
    expect(screen.getByTestId("health-database-status")).toHaveTextContent("ok");
    expect(screen.getByTestId("health-broker-status")).toHaveTextContent("ok");
    expect(screen.getByTestId("health-broker")).toHaveTextContent("Transport: filesystem");

    const cpu = screen.getByTestId("queue-cpu");
    const rows = within(cpu).getAllByTestId("worker-row");
    expect(rows).toHaveLength(1);
    expect(within(rows[0]!).getByTestId("worker-name").textContent).toBe("cpu@host-<img src=x onerror=alert(1)>");
    expect(cpu.querySelector("img")).toBeNull();
    expect(within(rows[0]!).getByTestId("worker-state")).toHaveTextContent("busy");

    expect(within(screen.getByTestId("queue-gpu")).getByText("No live workers.")).toBeInTheDocument();
  });

  it("treats a 503 body as a degraded status, not an error", async () => {
    mockApi({
      "GET /api/health": () =>
        jsonResponse(503, {
          status: "degraded",
          database: { ok: false, detail: "connection refused" },
          broker: { ok: true, detail: "ok", transport: "redis" },
          queues: { cpu: { workers: [] }, gpu: { workers: [] } },
        }),
    });
    renderWithProviders(<HealthPage />, { route: "/health" });
    expect(await screen.findByTestId("health-status")).toHaveTextContent("degraded");
    expect(screen.getByTestId("health-database-status")).toHaveTextContent("down");
    expect(screen.getByTestId("health-database-detail")).toHaveTextContent("connection refused");
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
  });

  it("reports a failure to load", async () => {
    mockApi({ "GET /api/health": () => jsonResponse(500, { detail: "boom", code: "internal" }) });
    renderWithProviders(<HealthPage />, { route: "/health" });
    expect(await screen.findByRole("alert")).toHaveTextContent("Could not load health: boom");
  });
});
