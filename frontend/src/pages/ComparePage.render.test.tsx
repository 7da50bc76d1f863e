import { screen, waitFor } from "@testing-library/react";
import { Route, Routes } from "react-router";
import { describe, expect, it } from "vitest";
import { ComparePage } from "./ComparePage";
import { jobRow } from "../test/jobs";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

function run(id: number, lr: number) {
  return jobRow({ id, status: "succeeded", progress: 1, config: { task: "classification", schedule: { lr } } });
}

const loss = (value: number) => [{ step: 1, name: "train/loss", value }];

function renderAt(search: string) {
  return renderWithProviders(
    <Routes>
      <Route path="/compare" element={<ComparePage />} />
    </Routes>,
    { route: `/compare${search}` },
  );
}

describe("ComparePage", () => {
  it("says whose curves are still loading instead of drawing one run alone", async () => {
    let release: (() => void) | null = null;
    const late = new Promise<void>((resolve) => (release = resolve));
    mockApi({
      "GET /api/jobs/3": () => jsonResponse(200, run(3, 0.1)),
      "GET /api/jobs/4": () => jsonResponse(200, run(4, 0.01)),
      "GET /api/jobs/3/metrics": () => jsonResponse(200, loss(1)),
      "GET /api/jobs/4/metrics": async () => {
        await late;
        return jsonResponse(200, loss(2));
      },
    });
    renderAt("?ids=3,4");
    await waitFor(() => expect(screen.getByTestId("curves-loading")).toHaveTextContent("Loading the curves of #4…"));
    expect(screen.queryByTestId("compare-train/loss")).toBeNull();
    release!();
    expect(await screen.findByTestId("compare-train/loss")).toBeInTheDocument();
    expect(screen.queryByTestId("curves-loading")).toBeNull();
    await waitFor(() => expect(screen.getAllByTestId("diff-row")).toHaveLength(1));
    expect(screen.queryByTestId("one-run")).toBeNull();
  });

  it("with one run, asks for a second instead of calling the configs the same", async () => {
    mockApi({
      "GET /api/jobs/3": () => jsonResponse(200, run(3, 0.1)),
      "GET /api/jobs/3/metrics": () => jsonResponse(200, loss(1)),
    });
    renderAt("?ids=3");
    expect(await screen.findByTestId("one-run")).toHaveTextContent("Only one run is selected");
    expect(screen.getByTestId("no-diff")).toHaveTextContent("One run has nothing to differ from.");
    expect(screen.queryByText("The configs are the same.")).toBeNull();
  });
});
