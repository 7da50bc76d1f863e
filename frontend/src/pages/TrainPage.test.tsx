import { screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TrainPage } from "./TrainPage";
import { FAKE_TASKS, tasksRoute } from "../test/tasks";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

const dataset = {
  id: 4,
  name: "pets",
  version: 1,
  parent_id: null,
  status: "ready",
  source_format: "coco",
  classes: ["cat", "dog"],
  tasks: ["object_detection", "text_detection", "classification"],
  created_at: "2024-05-01T10:00:00Z",
  stats: {},
};

function routes(tasks = FAKE_TASKS) {
  return {
    ...tasksRoute(tasks),
    "GET /api/datasets": () => jsonResponse(200, [dataset]),
    // This studio trains none of them here: the page says so, in the task's words.
    "GET /api/schema/train-config": () => jsonResponse(422, { detail: "not trained", code: "unknown_task" }),
  };
}

describe("TrainPage: the task", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("picks the dataset's first task in the registry's order and titles every choice", async () => {
    mockApi(routes());
    renderWithProviders(<TrainPage />);
    const select = await screen.findByLabelText("Task");
    await waitFor(() => expect(select).toHaveValue("classification"));
    expect([...(select as HTMLSelectElement).options].map((o) => o.textContent)).toEqual([
      "Object detection",
      "Text detection",
      "Classification",
    ]);
    expect(await screen.findByTestId("task-unsupported")).toHaveTextContent("Training for Classification is not available yet.");
  });

  it("follows the registry's order, not a task name the page knows", async () => {
    const reordered = [FAKE_TASKS[2]!, FAKE_TASKS[0]!, FAKE_TASKS[1]!, FAKE_TASKS[3]!];
    mockApi(routes(reordered));
    renderWithProviders(<TrainPage />);
    const select = await screen.findByLabelText("Task");
    await waitFor(() => expect(select).toHaveValue("object_detection"));
  });
});
