import { screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EvaluationImagesPanel, targetTitle } from "./EvaluationImages";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

describe("EvaluationImagesPanel", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("shows a segmenter's class by IoU: the wrong pixels in words and painted, and Grad-CAM of the class", async () => {
    const { requests } = mockApi({
      "GET /api/models/5/evaluation/images": () =>
        jsonResponse(200, {
          model_id: 5,
          evaluation: 9,
          evaluations: [9],
          dataset_id: 2,
          split: "val",
          view: "lowest_iou",
          score_is: "IoU",
          total: 30,
          offset: 0,
          limit: 12,
          images: [
            {
              item_id: 40,
              image_id: 4,
              width: 64,
              height: 64,
              source: "shots/a.png",
              file_name: "images/4.png",
              true_class: "road",
              predicted_class: "road",
              score: 0.25,
              true_score: null,
              loss: null,
              detail: { tp: 100, fp: 1200, fn: 100 },
              image_url: "/api/datasets/2/images/4/render?overlay=false",
              page_url: "/datasets/2/images/4",
              cam_true_url: "/api/datasets/2/images/4/cam?model_id=5&target_class=road",
              cam_predicted_url: "/api/datasets/2/images/4/cam?model_id=5&target_class=road",
              errors_url: "/api/datasets/2/images/4/errors?model_id=5&class_name=road",
            },
          ],
        }),
    });
    renderWithProviders(<EvaluationImagesPanel modelId={5} target={{ view: "lowest_iou", class_name: "road" }} onClose={() => {}} />);
    expect(screen.getByTestId("explain-title")).toHaveTextContent("Images of road, lowest IoU first");
    expect(await screen.findByTestId("explain-count")).toHaveTextContent("30 val images, lowest IoU first; showing 1–1");
    const row = screen.getByTestId("explain-row");
    expect(within(row).getByTestId("explain-verdict")).toHaveTextContent("road: IoU 0.250 · 100 px missed · 1,200 px wrongly painted");
    expect(within(row).getByTestId("explain-errors")).toHaveAttribute("src", expect.stringContaining("class_name=road"));
    expect(within(row).getByTestId("explain-cam-true")).toBeInTheDocument();
    expect(within(row).queryByTestId("explain-cam-predicted")).toBeNull(); // the same class: one map
    // Drawn on request: each says so until it has loaded.
    expect(within(row).getByText("drawing the error map…")).toBeInTheDocument();
    expect(within(row).getByText("drawing the Grad-CAM…")).toBeInTheDocument();
    expect(screen.getByText(/page 1 of 3/)).toBeInTheDocument();
    const asked = new URL(requests[0]!.url).searchParams;
    expect([asked.get("view"), asked.get("class_name"), asked.get("offset")]).toEqual(["lowest_iou", "road", "0"]);
  });

  it("titles every view in words", () => {
    expect(targetTitle({ view: "cell", true: "cat", predicted: "cat" })).toBe("cat, predicted correctly");
    expect(targetTitle({ view: "false_positives", class_name: "cat" })).toContain("predicted cat, another class in truth");
    expect(targetTitle({ view: "highest_loss" })).toBe("Highest-loss images");
  });
});
