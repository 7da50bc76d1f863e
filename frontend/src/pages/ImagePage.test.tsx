import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router";
import { describe, expect, it } from "vitest";
import { ImagePage } from "./ImagePage";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

const detail = (split: string) => ({
  image: { id: 5, file_name: "images/000005.jpg", source: "dir/<img>.jpg", width: 96, height: 72, split, tags: [], problems: ["shape_type_unknown"] },
  classes: ["circle", "square"],
  annotations: [
    { id: 1, image_id: 5, category_id: 2, shape_type: "rectangle", points: [[1, 2], [11, 22]], bbox: [1, 2, 11, 21], area: 231, group_id: 4, iscrowd: 0, ignore: false },
    { id: 2, image_id: 5, category_id: 0, shape_type: "polygon", points: [], bbox: [0, 0, 3.25, 3], area: 9.5, group_id: null, iscrowd: 0, ignore: true },
  ],
  findings: [
    { level: "warning", code: "shape_type_unknown", message: "dir/<img>.json, shape 2: unknown type.", file: "dir/<img>.json", shape: 2, field: "shape_type" },
  ],
});

describe("ImagePage", () => {
  it("shows the rendered image, its shapes and findings, and moves it to another split", async () => {
    const { requests } = mockApi({
      "GET /api/datasets/4": () => jsonResponse(200, { id: 4, name: "shapes", version: 1, status: "ready", classes: [], tasks: [], stats: {}, report: {} }),
      "GET /api/datasets/4/images/5": () => jsonResponse(200, detail("train")),
      "GET /api/datasets/8": () => jsonResponse(200, { id: 8, name: "shapes", version: 2, status: "ready", classes: [], tasks: [], stats: {}, report: {} }),
      "GET /api/datasets/8/images/5": () => jsonResponse(200, detail("val")),
      "PATCH /api/datasets/4/splits": () => jsonResponse(201, { id: 8, name: "shapes", version: 2, parent_id: 4 }),
    });
    renderWithProviders(
      <Routes>
        <Route path="/datasets/:id/images/:imageId" element={<ImagePage />} />
      </Routes>,
      { route: "/datasets/4/images/5" },
    );
    expect(await screen.findByTestId("image-title")).toHaveTextContent("dir/<img>.jpg");
    expect(screen.getByTestId("rendered-image")).toHaveAttribute("src", "/api/datasets/4/images/5/render?overlay=1&max_size=1600");
    expect(screen.getAllByTestId("shape-class").map((c) => c.textContent?.trim())).toEqual(["square", "(ignore)"]);
    expect(screen.getByText("1, 2, 11 × 21")).toBeInTheDocument();
    expect(screen.getByText("dir/<img>.json, shape 2: unknown type.")).toBeInTheDocument();

    await userEvent.click(screen.getByLabelText("Show labels"));
    expect(screen.getByTestId("rendered-image")).toHaveAttribute("src", "/api/datasets/4/images/5/render?overlay=0&max_size=1600");

    await userEvent.selectOptions(screen.getByLabelText("Move to"), "val");
    await userEvent.click(screen.getByRole("button", { name: "Move (new version)" }));
    await waitFor(() => expect(screen.getByTestId("image-split")).toHaveTextContent("val"));
    expect(screen.getByTestId("moved-note")).toHaveTextContent("v2");
    const patch = requests.find((r) => r.method === "PATCH")!;
    expect(await patch.json()).toEqual({ seed: 0, assign: { "5": "val" } });
  });

  it("steps to the previous and next image of the grid's filtered order, by button and arrow key", async () => {
    const { requests } = mockApi({
      "GET /api/datasets/4": () => jsonResponse(200, { id: 4, name: "shapes", version: 1, status: "ready", classes: [], tasks: [], stats: {}, report: {} }),
      "GET /api/datasets/4/images/5": () => jsonResponse(200, detail("train")),
      "GET /api/datasets/4/images/5/neighbours": () => jsonResponse(200, { position: 60, total: 61, previous: 3, next: 9 }),
      "GET /api/datasets/4/images/9": () => jsonResponse(200, { ...detail("train"), image: { ...detail("train").image, id: 9, source: "nine.jpg" } }),
      "GET /api/datasets/4/images/9/neighbours": () => jsonResponse(200, { position: 61, total: 61, previous: 5, next: null }),
    });
    renderWithProviders(
      <Routes>
        <Route path="/datasets/:id/images/:imageId" element={<ImagePage />} />
      </Routes>,
      { route: { pathname: "/datasets/4/images/5", state: { back: "/datasets/4?split=train&class=circle" } } },
    );
    expect(await screen.findByTestId("image-position")).toHaveTextContent("60 of 61");
    const asked = requests.find((r) => r.url.includes("/neighbours"))!;
    expect(new URL(asked.url).searchParams.toString()).toBe("split=train&class=circle");
    await userEvent.keyboard("{ArrowRight}");
    expect(await screen.findByTestId("image-title")).toHaveTextContent("nine.jpg");
    expect(await screen.findByTestId("image-position")).toHaveTextContent("61 of 61");
    expect(screen.getByRole("button", { name: "Next →" })).toBeDisabled();
    // The way back leads to the grid page that holds this image (61 > one page of 60).
    expect(screen.getByTestId("back-to-dataset")).toHaveAttribute("href", "/datasets/4?split=train&class=circle&page=2");
  });
});
