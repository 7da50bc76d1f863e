import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router";
import { describe, expect, it } from "vitest";
import { JobPage } from "./JobPage";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

function job(fields: Record<string, unknown>) {
  return {
    id: 5,
    kind: "evaluate",
    status: "queued",
    queue: "training",
    progress: 0,
    message: null,
    error: null,
    config: { model_id: 2, dataset_id: 4, split: "test" },
    result: null,
    attempt: 0,
    worker: null,
    cancel_requested: false,
    created_at: "2024-05-01T10:00:00Z",
    started_at: null,
    finished_at: null,
    queue_position: null,
    ...fields,
  };
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
