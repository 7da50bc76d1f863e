import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ModelsPage } from "./ModelsPage";
import { FAKE_TASKS, TEXT_DETECTION, tasksRoute } from "../test/tasks";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

function trained(id: number, task: string, metrics: Record<string, unknown>) {
  return {
    id,
    name: `model ${id}`,
    architecture: "arch",
    task,
    status: "ready",
    class_names: ["a", "b"],
    created_at: "2024-05-01T10:00:00Z",
    dataset_id: 1,
    error: null,
    flops: null,
    params: null,
    input_size: 64,
    job_id: null,
    metrics,
  };
}

function catalog(request: Request) {
  const task = new URL(request.url).searchParams.get("task") ?? "";
  return jsonResponse(200, { entries: [{ name: `${task}-net`, task }], stats_pending: false });
}

describe("ModelsPage", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("titles each model's task and shows its headline figure, as the registry names them", async () => {
    mockApi({
      ...tasksRoute([...FAKE_TASKS, TEXT_DETECTION]),
      "GET /api/catalog": catalog,
      "GET /api/models": () =>
        jsonResponse(200, [
          trained(1, "classification", { best: { "accuracy/top1": 0.85 } }),
          trained(2, "semantic_segmentation", { best: { mIoU: 0.5 } }),
          trained(3, "instance_segmentation", { final: { "segm/mAP": 0.25, "bbox/mAP": 0.3 } }),
          trained(4, "text_detection", { best: { hmean: 0.75 } }),
        ]),
    });
    renderWithProviders(<ModelsPage />);
    await waitFor(() =>
      expect(screen.getAllByTestId("model-task").map((c) => c.textContent)).toEqual([
        "Classification",
        "Semantic segmentation",
        "Instance segmentation",
        "Text detection",
      ]),
    );
    expect(screen.getAllByTestId("model-score").map((c) => c.textContent)).toEqual([
      "85.0% top-1",
      "50.0% mIoU",
      "25.0% mask mAP",
      "75.0% hmean",
    ]);
  });

  it("offers the registry's tasks for an upload, hints at the background where its classes start with one, and sends the chosen task", async () => {
    const { requests } = mockApi({
      ...tasksRoute([...FAKE_TASKS, TEXT_DETECTION]),
      "GET /api/catalog": catalog,
      "GET /api/models": () => jsonResponse(200, []),
      "POST /api/models": () => jsonResponse(201, { job_id: 9, model: trained(5, "semantic_segmentation", {}) }),
      "GET /api/jobs/9": () => jsonResponse(200, { id: 9, status: "queued", progress: 0, message: null, error: null }),
    });
    renderWithProviders(<ModelsPage />);
    const form = screen.getByTestId("model-upload");
    const select = within(form).getByLabelText("Task");
    await waitFor(() =>
      expect(within(select).getAllByRole("option").map((o) => o.textContent)).toEqual([
        "Classification",
        "Semantic segmentation",
        "Object detection",
        "Instance segmentation",
        "Text detection",
      ]),
    );
    expect(select).toHaveValue("classification");
    expect(within(form).getByLabelText(/^Class names/)).toBeInTheDocument();
    expect(form).not.toHaveTextContent("background first");

    await userEvent.selectOptions(select, "semantic_segmentation");
    expect(form).toHaveTextContent("Class names (one per line, in head order; background first)");
    await waitFor(() => expect(within(form).getByLabelText("Architecture")).toHaveValue("semantic_segmentation-net"));

    await userEvent.upload(within(form).getByLabelText("Checkpoint file"), new File([new Uint8Array([1])], "w.pt"));
    await userEvent.type(within(form).getByLabelText(/^Class names/), "_background_{enter}cat");
    await userEvent.click(within(form).getByRole("button", { name: "Upload" }));
    await screen.findByTestId("model-upload-outcome");
    const sent = await requests.find((r) => r.method === "POST")!.formData();
    expect(sent.get("task")).toBe("semantic_segmentation");
    expect(sent.get("architecture")).toBe("semantic_segmentation-net");
  });

  it("says loading in words while the registry is asked for", async () => {
    mockApi({
      "GET /api/tasks": () => new Promise<Response>(() => {}),
      "GET /api/models": () => jsonResponse(200, [trained(1, "classification", { best: { "accuracy/top1": 0.85 } })]),
    });
    renderWithProviders(<ModelsPage />);
    expect(await screen.findByTestId("model-task")).toHaveTextContent("loading…");
    expect(screen.getByTestId("model-score")).toHaveTextContent("loading…");
    expect(within(screen.getByTestId("model-upload")).getByLabelText("Task")).toHaveTextContent("loading…");
  });
});
