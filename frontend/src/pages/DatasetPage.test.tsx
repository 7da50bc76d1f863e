import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router";
import { describe, expect, it, vi } from "vitest";
import { DatasetPage } from "./DatasetPage";
import { tasksRoute } from "../test/tasks";
import { jobRow } from "../test/jobs";
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
  // As the API lists them: every layout, each with why this version cannot take it.
  exports: [
    { format: "voc", title: "Pascal VOC", layout: "JPEGImages, SegmentationClass/Object, Annotations XML", refusal: null },
    { format: "coco", title: "COCO", layout: "images/ and annotations/instances_{split}.json", refusal: null },
    { format: "imagenet", title: "ImageNet", layout: "{split}/{class}/ folders", refusal: "ImageNet needs exactly one image-level class per image" },
    { format: "icdar", title: "ICDAR 2015", layout: "gt_img_N.txt", refusal: "ICDAR 2015 needs words: text polygons" },
  ],
};

function exportOf(format: string) {
  return { format, filename: `shapes-v2-${format}.zip`, url: `/api/datasets/4/export?format=${format}` };
}

function position(text: string) {
  return { lane: "light", ahead: 0, queued_before: 0, running: 0, text };
}

function job(id: number, fields: Record<string, unknown>) {
  return jobRow({ id, kind: "export_dataset", queue: "light", config: { dataset_id: 4, format: "voc" }, ...fields });
}

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
      ...tasksRoute(),
      "GET /api/datasets/4": () => jsonResponse(200, dataset),
      "GET /api/datasets": () => jsonResponse(200, [{ ...dataset, id: 7, version: 3, parent_id: 4 }, dataset]),
      "GET /api/datasets/4/images": () => jsonResponse(200, { total: 0, page: 1, page_size: 60, images: [] }),
    });
    renderPage();
    expect(await screen.findByTestId("dataset-title")).toHaveTextContent("shapes <script>alert(1)</script>");
    expect(document.querySelector("script")).toBeNull();
    expect(screen.getByTestId("dataset-version")).toHaveTextContent("v2");
    expect(screen.getAllByTestId("class-chip").map((c) => c.textContent)).toEqual(["circle", "square", "triangle"]);
    // Titled by the task registry (GET /api/tasks), once it has answered.
    await waitFor(() =>
      expect(screen.getAllByTestId("task-chip").map((c) => c.textContent)).toEqual(["Semantic segmentation", "Object detection"]),
    );
    expect(
      within(screen.getByTestId("bars-instances")).getAllByTestId("class-bar-value").map((v) => v.textContent),
    ).toEqual(["3", "8", "5"]);
    expect(screen.getByTestId("split-train-images")).toHaveTextContent("6");
    expect(screen.getByTestId("report-summary")).toHaveTextContent("0 errors, 1 warning");

    expect(screen.getByTestId("export-voc")).toBeEnabled();
    expect(screen.getByTestId("export-voc")).toHaveAccessibleName("Pascal VOC");
    expect(screen.getByRole("button", { name: "ImageNet" })).toBeDisabled();
    // A layout this version cannot take: the button says why, in the API's words.
    expect(screen.getByTestId("export-icdar")).toBeDisabled();
    expect(screen.getByTestId("export-icdar")).toHaveAccessibleDescription("ICDAR 2015 needs words: text polygons");

    expect(screen.getByTestId("parent-link")).toHaveAttribute("href", "/datasets/3");
    expect(await screen.findByTestId("child-link")).toHaveAttribute("href", "/datasets/7");
    expect(await screen.findByText("This dataset has no images.")).toBeInTheDocument();
  });

  it("re-splits into a new version and opens it", async () => {
    document.cookie = "studio_csrf=c-1; path=/";
    const { requests } = mockApi({
      ...tasksRoute(),
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
      ...tasksRoute(),
      "GET /api/datasets/4": () => jsonResponse(200, dataset),
      "GET /api/datasets": () => jsonResponse(200, [dataset]),
      "GET /api/datasets/4/images": () => jsonResponse(200, { total: 0, page: 1, page_size: 60, images: [] }),
      "POST /api/datasets/4/exports": (r) =>
        new URL(r.url).searchParams.get("format") === "voc"
          ? jsonResponse(200, { ...exportOf("voc"), ready: true, size_bytes: 2048, job_id: null })
          : jsonResponse(422, { detail: "format: VOC SegmentationObject holds at most 254 objects per image", code: "export_unsupported" }),
    });
    renderPage();
    await userEvent.click(await screen.findByTestId("export-voc"));
    expect(await screen.findByTestId("export-voc-done")).toHaveTextContent("Sent to your browser's downloads: shapes-v2-voc.zip · 2");
    expect(within(screen.getByTestId("export-voc-done")).getByRole("link", { name: "shapes-v2-voc.zip" })).toHaveAttribute(
      "href",
      "/api/datasets/4/export?format=voc",
    );
    expect(clicked).toEqual(["/api/datasets/4/export?format=voc as shapes-v2-voc.zip"]);
    await userEvent.click(screen.getByTestId("export-coco"));
    expect(await screen.findByTestId("export-coco-error")).toHaveTextContent(/^COCO: VOC SegmentationObject holds at most 254/);
    expect(clicked).toHaveLength(1);
    expect(requests.filter((r) => r.method === "POST").map((r) => new URL(r.url).search)).toEqual(["?format=voc", "?format=coco"]);
    click.mockRestore();
  });

  it("waits for the light-lane job writing the zip, showing where it stands, then downloads it", async () => {
    const clicked: string[] = [];
    const click = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(`${this.getAttribute("href")} as ${this.download}`);
    });
    let built = false;
    const looks = [
      { status: "queued", progress: 0, message: null, queue_position: position("next on the light lane") },
      { status: "succeeded", progress: 1, message: "done", queue_position: null },
    ];
    const { requests } = mockApi({
      ...tasksRoute(),
      "GET /api/datasets/4": () => jsonResponse(200, dataset),
      "GET /api/datasets": () => jsonResponse(200, [dataset]),
      "GET /api/datasets/4/images": () => jsonResponse(200, { total: 0, page: 1, page_size: 60, images: [] }),
      "POST /api/datasets/4/exports": () =>
        built
          ? jsonResponse(200, { ...exportOf("coco"), ready: true, size_bytes: 4096, job_id: null })
          : jsonResponse(202, { ...exportOf("coco"), ready: false, size_bytes: null, job_id: 31 }),
      "GET /api/jobs/31": () => {
        const look = looks.shift() ?? { status: "succeeded", progress: 1, message: "done", queue_position: null };
        if (look.status === "succeeded") built = true;
        return jsonResponse(200, job(31, look));
      },
    });
    renderPage();
    await userEvent.click(await screen.findByTestId("export-coco"));
    expect(await screen.findByTestId("export-coco-progress")).toHaveTextContent("Waiting: next on the light lane");
    expect(screen.getByTestId("export-coco")).toHaveTextContent("Converting…");
    expect(screen.getByTestId("export-coco")).toBeDisabled();
    expect(await screen.findByTestId("export-coco-done", {}, { timeout: 4000 })).toHaveTextContent("shapes-v2-coco.zip · 4");
    expect(clicked).toEqual(["/api/datasets/4/export?format=coco as shapes-v2-coco.zip"]);
    expect(requests.filter((r) => r.method === "POST")).toHaveLength(2);
    click.mockRestore();
  });

  it("shows the reason a conversion job failed next to its button", async () => {
    const click = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(() => undefined);
    mockApi({
      ...tasksRoute(),
      "GET /api/datasets/4": () => jsonResponse(200, dataset),
      "GET /api/datasets": () => jsonResponse(200, [dataset]),
      "GET /api/datasets/4/images": () => jsonResponse(200, { total: 0, page: 1, page_size: 60, images: [] }),
      "POST /api/datasets/4/exports": () => jsonResponse(202, { ...exportOf("voc"), ready: false, size_bytes: null, job_id: 32 }),
      "GET /api/jobs/32": () =>
        jsonResponse(
          200,
          job(32, { status: "failed", progress: 0.3, message: null, error: "format: VOC SegmentationObject holds at most 254 objects per image" }),
        ),
    });
    renderPage();
    await userEvent.click(await screen.findByTestId("export-voc"));
    expect(await screen.findByTestId("export-voc-error")).toHaveTextContent("Pascal VOC: VOC SegmentationObject holds at most 254 objects per image");
    expect(screen.getByTestId("export-voc")).toBeEnabled();
    expect(click).not.toHaveBeenCalled();
    click.mockRestore();
  });

  it("says why a failed import failed and imports its upload again without the bad shapes", async () => {
    document.cookie = "studio_csrf=c-1; path=/";
    const findings = [
      { level: "error", code: "polygon_too_few_points", message: "p2.json, shape 0: polygon has 2 points, needs at least 3.", file: "p2.json", shape: 0, field: "points" },
      { level: "error", code: "label_invalid", message: "p3.json, shape 4: label 'a<b' has characters that are not allowed.", file: "p3.json", shape: 4, field: "label" },
    ];
    let status = "failed";
    const failed = () => ({
      ...dataset,
      status,
      classes: [],
      tasks: [],
      stats: {},
      report: { findings: status === "failed" ? findings : [] },
      failure: status === "failed" ? `${findings[0]!.message} (and 1 more error)` : null,
      exports: [],
    });
    const { requests } = mockApi({
      ...tasksRoute(),
      "GET /api/datasets/4": () => jsonResponse(200, failed()),
      "GET /api/datasets": () => jsonResponse(200, [failed()]),
      "GET /api/datasets/4/images": () => jsonResponse(200, { total: 0, page: 1, page_size: 60, images: [] }),
      "POST /api/datasets/4/retry": () => {
        status = "importing";
        return jsonResponse(202, { dataset: failed(), job_id: 12 });
      },
    });
    renderPage();
    const banner = await screen.findByTestId("dataset-failed");
    expect(banner).toHaveTextContent("The import failed: p2.json, shape 0: polygon has 2 points, needs at least 3. (and 1 more error)");
    expect(banner).toHaveTextContent("leaving out the 2 bad shapes");
    await userEvent.click(within(banner).getByRole("button", { name: "Import again without the 2 bad shapes" }));
    await waitFor(() => expect(requests.some((r) => r.method === "POST" && new URL(r.url).pathname === "/api/datasets/4/retry")).toBe(true));
    const sent = requests.find((r) => r.method === "POST" && new URL(r.url).pathname === "/api/datasets/4/retry")!;
    expect(await sent.clone().json()).toEqual({ skip_bad_shapes: true });
    expect(sent.headers.get("X-CSRF-Token")).toBe("c-1");
    await waitFor(() => expect(screen.queryByTestId("dataset-failed")).toBeNull());
    expect(screen.getByText("Importing… this page updates by itself.")).toBeInTheDocument();
  });
});
