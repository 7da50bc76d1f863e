import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { JobsPage } from "./JobsPage";
import { jobRow } from "../test/jobs";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

function job(id: number, fields: Record<string, unknown>) {
  return jobRow({ id, ...fields });
}

describe("JobsPage", () => {
  it("says where each queued job stands, and names kinds in words", async () => {
    mockApi({
      "GET /api/jobs": () =>
        jsonResponse(200, [
          job(9, {
            kind: "export_dataset",
            queue: "light",
            queue_position: { lane: "light", ahead: 0, queued_before: 0, running: 0, text: "next on the light lane" },
          }),
          job(8, {
            queue_position: { lane: "training", ahead: 2, queued_before: 1, running: 1, text: "behind 1 queued and 1 running jobs on the training lane" },
          }),
          job(7, { status: "running", progress: 0.5, message: "epoch 3/6" }),
        ]),
    });
    renderWithProviders(<JobsPage />, { route: "/jobs" });
    const rows = await screen.findAllByTestId("job-row");
    expect(rows).toHaveLength(3);
    expect(rows[0]).toHaveTextContent("Waiting: next on the light lane");
    expect(rows[0]).toHaveTextContent("dataset export");
    expect(rows[1]).toHaveTextContent("Waiting: behind 1 queued and 1 running jobs on the training lane");
    expect(rows[2]).toHaveTextContent("epoch 3/6");
    expect(rows[2]).not.toHaveTextContent("Waiting");
    expect(within(screen.getByLabelText("Kind")).getByRole("option", { name: "dataset import" })).toBeInTheDocument();
  });

  it("lists the user's own jobs, and the studio's background work only when asked", async () => {
    const { requests } = mockApi({
      "GET /api/jobs": (request) => {
        const background = new URL(request.url).searchParams.get("background") === "true";
        return jsonResponse(200, background ? [job(5, { kind: "estimate_run", queue: "light" }), job(4, {})] : [job(4, {})]);
      },
    });
    renderWithProviders(<JobsPage />, { route: "/jobs" });
    expect(await screen.findAllByTestId("job-row")).toHaveLength(1);
    expect(new URL(requests.at(-1)!.url).searchParams.get("background")).toBe("false");
    await userEvent.click(screen.getByLabelText("Show the studio's background work"));
    await waitFor(() => expect(screen.getAllByTestId("job-row")).toHaveLength(2));
    expect(screen.getAllByTestId("job-row")[0]).toHaveTextContent("time estimate");
  });
});
