import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router";
import { describe, expect, it, vi } from "vitest";
import { DatasetPage } from "./DatasetPage";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

const dataset = {
  id: 4,
  name: "shapes <script>alert(1)</script>",
  version: 2,
  parent_id: 3,
  status: "ready",
  source_format: "labelme",
  classes: ["circle", "square", "triangle"],
  tasks: ["semantic_segmentation", "object_detection"],
  created_at: "2024-05-01T10:00:00Z",
  stats: {
    images: 8,
    annotations: 16,
    negatives: 1,
    classes: [
      { id: 1, name: "circle", images: 3, instances: 3 },
      { id: 2, name: "square", images: 6, instances: 8 },
      { id: 3, name: "triangle", images: 5, instances: 5 },
    ],
    splits: {
      train: { images: 6, annotations: 12, negatives: 1 },
      val: { images: 2, annotations: 4, negatives: 0 },
      test: { images: 0, annotations: 0, negatives: 0 },
    },
  },
  report: {
    findings: [
      { level: "warning", code: "not_labelme", message: "notes.json is not a labelme file.", file: "notes.json", shape: null, field: null },
    ],
  },
};

function renderPage() {
  return renderWithProviders(
    <Routes>
      <Route path="/datasets/:id" element={<DatasetPage />} />
    </Routes>,
    { route: "/datasets/4" },
  );
}

describe("DatasetPage", () => {
  it("shows header, classes in order, bars, splits, report, exports and versions", async () => {
    mockApi({
      "GET /api/datasets/4": () => jsonResponse(200, dataset),
      "GET /api/datasets": () => jsonResponse(200, [{ ...dataset, id: 7, version: 3, parent_id: 4 }, dataset]),
      "GET /api/datasets/4/images": () => jsonResponse(200, { total: 0, page: 1, page_size: 60, images: [] }),
    });
    renderPage();
    expect(await screen.findByTestId("dataset-title")).toHaveTextContent("shapes <script>alert(1)</script>");
    expect(document.querySelector("script")).toBeNull();
    expect(screen.getByTestId("dataset-version")).toHaveTextContent("v2");
    expect(screen.getAllByTestId("class-chip").map((c) => c.textContent)).toEqual(["circle", "square", "triangle"]);
    expect(screen.getAllByTestId("task-chip").map((c) => c.textContent)).toEqual(["Semantic segmentation", "Object detection"]);
    expect(
      within(screen.getByTestId("bars-instances")).getAllByTestId("class-bar-value").map((v) => v.textContent),
    ).toEqual(["3", "8", "5"]);
    expect(screen.getByTestId("split-train-images")).toHaveTextContent("6");
    expect(screen.getByTestId("report-summary")).toHaveTextContent("0 errors, 1 warning");

    expect(screen.getByTestId("export-voc")).toBeEnabled();
    expect(screen.getByRole("button", { name: "ImageNet" })).toBeDisabled();

    expect(screen.getByTestId("parent-link")).toHaveAttribute("href", "/datasets/3");
    expect(await screen.findByTestId("child-link")).toHaveAttribute("href", "/datasets/7");
    expect(await screen.findByText("This dataset has no images.")).toBeInTheDocument();
  });

  it("re-splits into a new version and opens it", async () => {
    document.cookie = "studio_csrf=c-1; path=/";
    const { requests } = mockApi({
      "GET /api/datasets/4": () => jsonResponse(200, dataset),
      "GET /api/datasets/9": () => jsonResponse(200, { ...dataset, id: 9, version: 3, parent_id: 4 }),
      "GET /api/datasets": () => jsonResponse(200, [dataset]),
      "GET /api/datasets/4/images": () => jsonResponse(200, { total: 0, page: 1, page_size: 60, images: [] }),
      "GET /api/datasets/9/images": () => jsonResponse(200, { total: 0, page: 1, page_size: 60, images: [] }),
      "PATCH /api/datasets/4/splits": () => jsonResponse(201, { ...dataset, id: 9, version: 3, parent_id: 4 }),
    });
    renderPage();
    const form = await screen.findByRole("form", { name: "Re-split" });
    const train = within(form).getByLabelText("Train %");
    await userEvent.clear(train);
    await userEvent.type(train, "75");
    await userEvent.click(within(form).getByRole("button", { name: "Re-split" }));
    expect(await within(form).findByTestId("resplit-error")).toHaveTextContent("95%");
    expect(requests.some((r) => r.method === "PATCH")).toBe(false);

    await userEvent.clear(train);
    await userEvent.type(train, "70");
    const val = within(form).getByLabelText("Validation %");
    await userEvent.clear(val);
    await userEvent.type(val, "20");
    const seed = within(form).getByLabelText("Seed");
    await userEvent.clear(seed);
    await userEvent.type(seed, "3");
    await userEvent.click(within(form).getByRole("button", { name: "Re-split" }));

    await waitFor(() => expect(screen.getByTestId("dataset-version")).toHaveTextContent("v3"));
    const patch = requests.find((r) => r.method === "PATCH")!;
    expect(patch.headers.get("X-CSRF-Token")).toBe("c-1");
    const body = (await patch.json()) as { seed: number; ratios: Record<string, number> };
    expect(body.seed).toBe(3);
    expect(body.ratios.train).toBe(0.7);
    expect(body.ratios.val).toBe(0.2);
    expect(body.ratios.test).toBeCloseTo(0.1, 9);
  });

  it("prepares an export before downloading it, and shows a refusal next to its button", async () => {
    const clicked: string[] = [];
    const click = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(`${this.getAttribute("href")} as ${this.download}`);
    });
    const { requests } = mockApi({
      "GET /api/datasets/4": () => jsonResponse(200, dataset),
      "GET /api/datasets": () => jsonResponse(200, [dataset]),
      "GET /api/datasets/4/images": () => jsonResponse(200, { total: 0, page: 1, page_size: 60, images: [] }),
      "POST /api/datasets/4/exports": (r) =>
        new URL(r.url).searchParams.get("format") === "voc"
          ? jsonResponse(200, { format: "voc", filename: "shapes-v2-voc.zip", size_bytes: 2048, url: "/api/datasets/4/export?format=voc" })
          : jsonResponse(422, { detail: "format: VOC SegmentationObject holds at most 254 objects per image", code: "export_unsupported" }),
    });
    renderPage();
    await userEvent.click(await screen.findByTestId("export-voc"));
    expect(await screen.findByTestId("export-voc-done")).toHaveTextContent("shapes-v2-voc.zip · 2");
    expect(clicked).toEqual(["/api/datasets/4/export?format=voc as shapes-v2-voc.zip"]);
    await userEvent.click(screen.getByTestId("export-coco"));
    expect(await screen.findByTestId("export-coco-error")).toHaveTextContent("COCO: format: VOC SegmentationObject holds at most 254");
    expect(clicked).toHaveLength(1);
    expect(requests.filter((r) => r.method === "POST").map((r) => new URL(r.url).search)).toEqual(["?format=voc", "?format=coco"]);
    click.mockRestore();
  });
});
