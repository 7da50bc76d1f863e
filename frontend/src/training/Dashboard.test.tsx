import { render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { describe, expect, it } from "vitest";
import type { ModelDashboard } from "../api/training";
import { FAKE_TASKS, TEXT_DETECTION } from "../test/tasks";
import { ClassTable, formatMetric, metricLabel, SummaryTiles, WorstImages } from "./Dashboard";

const segmentation = FAKE_TASKS.find((t) => t.name === "semantic_segmentation")!;

const board: ModelDashboard = {
  model_id: 7,
  task: "semantic_segmentation",
  dataset_id: 3,
  summary: { mIoU: 0.8123, mDice: 0.9, aAcc: 0.97, loss: 0.2 },
  columns: ["iou", "dice", "acc", "pixels"],
  per_class: [
    { name: "_background_", values: { iou: 0.95, dice: 0.97, acc: 0.99, pixels: 120000 } },
    { name: "<img src=x onerror=alert(1)>", values: { iou: null, dice: null, acc: null, pixels: 0 } },
  ],
  confusion_matrix: null,
  curves: {},
  worst_images: [
    {
      image_id: 11,
      file_name: "images/000011.png",
      source: "a/b.png",
      split: "val",
      score: 0.41,
      image_url: "/api/datasets/3/images/11/render?overlay=false",
      true_overlay_url: "/api/artifacts/5",
      predicted_overlay_url: "/api/artifacts/6",
      true_mask_url: "/api/artifacts/7",
      predicted_mask_url: "/api/artifacts/8",
    },
  ],
};

describe("model dashboard", () => {
  it("shows the headline figures as percentages, without the loss", () => {
    render(<SummaryTiles board={board} />);
    expect(screen.getByTestId("summary-mIoU")).toHaveTextContent("81.2%");
    expect(screen.getByTestId("summary-aAcc")).toHaveTextContent("97.0%");
    expect(screen.queryByTestId("summary-loss")).toBeNull();
    expect(formatMetric("loss", 0.123456)).toBe("0.1235");
    expect(formatMetric("pixels", 1234.4)).toBe((1234).toLocaleString());
    expect(formatMetric("mIoU", Number.NaN)).toBe("—");
  });

  it("puts the task's headline first and the rest in the registry's summary order", () => {
    render(<SummaryTiles board={{ ...board, summary: { aAcc: 0.97, loss: 0.2, mDice: 0.9, mIoU: 0.8123 } }} task={segmentation} />);
    expect([...document.querySelectorAll(".tile__label")].map((l) => l.textContent)).toEqual(["mIoU", "mDice", "aAcc"]);
    expect(screen.getByTestId("model-headline")).toHaveTextContent("81.2%");
    expect(screen.getByTestId("model-headline")).toHaveClass("tile--headline");
  });

  it("takes the per-class columns from the registry, else from the model's figures", () => {
    const { unmount } = render(<ClassTable board={{ ...board, columns: ["pixels", "iou"] }} task={segmentation} />);
    expect(screen.getAllByRole("columnheader").map((h) => h.textContent)).toEqual(["Class", "IoU", "Dice", "accuracy", "pixels"]);
    unmount();
    render(<ClassTable board={{ ...board, columns: ["pixels", "iou"] }} task={TEXT_DETECTION} />);
    expect(screen.getAllByRole("columnheader").map((h) => h.textContent)).toEqual(["Class", "pixels", "IoU"]);
  });

  it("draws the task's columns, counts as numbers, undefined figures as a dash, names as text", () => {
    render(<ClassTable board={board} />);
    const table = screen.getByTestId("per-class");
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)).toEqual([
      "Class",
      "IoU",
      "Dice",
      "accuracy",
      "pixels",
    ]);
    const rows = within(table).getAllByTestId("per-class-row");
    expect(rows).toHaveLength(2);
    expect(within(rows[0]!).getAllByTestId("cell-iou")[0]).toHaveTextContent("0.950");
    expect(rows[0]).toHaveTextContent((120000).toLocaleString());
    expect(within(rows[1]!).getAllByTestId("cell-iou")[0]).toHaveTextContent("—");
    expect(rows[1]).toHaveTextContent("<img src=x onerror=alert(1)>");
    expect(document.querySelector("img")).toBeNull();
  });

  it("lists the worst images with the picture, the true and the predicted mask", () => {
    render(<WorstImages board={board} />, { wrapper: MemoryRouter });
    const row = screen.getByTestId("worst-row");
    // The user's own file name, linking to the image's page; never the studio's internal one.
    expect(within(row).getByRole("link", { name: "a/b.png" })).toHaveAttribute("href", `/datasets/${board.dataset_id}/images/11`);
    expect(row).not.toHaveTextContent("images/000011.png");
    expect(within(row).getByTestId("worst-score")).toHaveTextContent("IoU 0.410");
    expect(within(row).getByTestId("worst-true")).toHaveAttribute("src", "/api/artifacts/5");
    expect(within(row).getByTestId("worst-pred")).toHaveAttribute("src", "/api/artifacts/6");
    expect(within(row).getAllByRole("img")[0]).toHaveAttribute("src", board.worst_images[0]!.image_url!);
  });

  it("draws nothing when the run found no worst images", () => {
    const { container } = render(<WorstImages board={{ ...board, worst_images: [] }} />, { wrapper: MemoryRouter });
    expect(container).toBeEmptyDOMElement();
  });
});

describe("detection dashboard", () => {
  it("names box and mask figures plainly", () => {
    expect(metricLabel("bbox/mAP")).toBe("box mAP");
    expect(metricLabel("bbox/mAP_50")).toBe("box mAP@0.5");
    expect(metricLabel("segm/mAP_75")).toBe("mask mAP@0.75");
    expect(metricLabel("bbox/AP50")).toBe("box AP@0.5");
    expect(metricLabel("bbox/AR_100")).toBe("box AR@100");
    expect(metricLabel("segm/mAP_s")).toBe("mask mAP (s)");
    expect(metricLabel("objects")).toBe("objects");
    // A name the studio has no words for is shown as given.
    expect(metricLabel("hmean")).toBe("hmean");
    expect(metricLabel("text/hmean_50")).toBe("text/hmean_50");
  });

  it("shows a detector's object counts as whole numbers, not as a 0-1 bar", () => {
    const det = {
      ...board,
      task: "object_detection",
      columns: ["bbox/AP", "bbox/AR", "objects"],
      per_class: [{ name: "cat", values: { "bbox/AP": 0.5, "bbox/AR": 0.6, objects: 3 } }],
    };
    render(<ClassTable board={det} />);
    const row = screen.getByTestId("per-class-row");
    expect(row).toHaveTextContent("3");
    expect(row).not.toHaveTextContent("3.000");
    expect(within(row).getAllByRole("cell").at(-1)).toHaveClass("num");
  });

  it("shows a worst image's missed objects, not an IoU", () => {
    const det: ModelDashboard = {
      ...board,
      task: "object_detection",
      worst_images: [{ ...board.worst_images[0]!, score: null, counts: { missed: 2, objects: 3, detections: 1, false_detections: 0 } }],
    };
    render(<WorstImages board={det} />, { wrapper: MemoryRouter });
    expect(screen.getByTestId("worst-score")).toHaveTextContent("missed 2 of 3 · 0 false");
    expect(screen.getByText(/Most missed objects first/)).toBeInTheDocument();
  });
});
