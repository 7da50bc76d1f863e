import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ModelPage } from "./ModelPage";
import { FAKE_TASKS, TEXT_DETECTION, tasksRoute } from "../test/tasks";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

const model = {
  id: 3,
  name: "pets",
  architecture: "resnet18",
  task: "classification",
  status: "ready",
  class_names: ["cat", "dog"],
  artifacts: [],
  config: {},
  created_at: "2024-05-01T10:00:00Z",
  dataset_id: 1,
  error: null,
  flops: 1_800_000_000,
  params: 11_000_000,
  input_size: 224,
  job_id: 2,
  metrics: {},
};

const timeout = {
  detail: "no worker on the inference lane answered within 30 s; the health page shows the lane's workers",
  code: "inference_timeout",
};

function renderPage() {
  return renderWithProviders(
    <Routes>
      <Route path="/models/:id" element={<ModelPage />} />
    </Routes>,
    { route: "/models/3" },
  );
}

describe("ModelPage: try it", () => {
  const { createObjectURL, revokeObjectURL } = URL;
  beforeEach(() => {
    URL.createObjectURL = vi.fn(() => "blob:picture");
    URL.revokeObjectURL = vi.fn();
  });
  afterEach(() => {
    URL.createObjectURL = createObjectURL;
    URL.revokeObjectURL = revokeObjectURL;
  });

  it("shows the inference lane's error as its message, points at the health page, and says what Grad-CAM explains", async () => {
    mockApi({
      ...tasksRoute(),
      "GET /api/models/3": () => jsonResponse(200, model),
      "POST /api/models/3/predict": () => jsonResponse(503, timeout),
      "POST /api/models/3/cam": () =>
        new Response(new Uint8Array([137, 80, 78, 71]), {
          status: 200,
          headers: {
            "Content-Type": "image/png",
            "X-Cam-Target-Class": "cat",
            "X-Cam-Target-Layer": "layer4",
            "X-Cam-Score": "0.812500",
            "X-Cam-Predicted-Class": "dog",
          },
        }),
    });
    renderPage();
    const tryIt = await screen.findByTestId("try-it");
    await userEvent.upload(within(tryIt).getByLabelText("Image to classify"), new File([new Uint8Array([1])], "cat.png", { type: "image/png" }));

    expect(await within(tryIt).findByTestId("predict-error")).toHaveTextContent(`cat.png: ${timeout.detail}`);
    expect(within(screen.getByTestId("lane-down")).getByRole("link")).toHaveAttribute("href", "/health");
    expect(await within(tryIt).findByTestId("cam-img")).toHaveAttribute("src", "blob:picture");
    expect(within(tryIt).getByTestId("cam-caption")).toHaveTextContent("Explains “cat” (81.3%) at layer layer4 · the model's top class is “dog”");
  });
});

function board(task: string, fields: Record<string, unknown> = {}) {
  return {
    model_id: 3,
    task,
    dataset_id: 1,
    summary: {},
    columns: [],
    per_class: [],
    confusion_matrix: null,
    confusion_labels: [],
    curves: {},
    pr_curves: {},
    worst_images: [],
    ...fields,
  };
}

function png(): Response {
  return new Response(new Uint8Array([137, 80, 78, 71]), { status: 200, headers: { "Content-Type": "image/png" } });
}

/** Answers `POST /api/models/3/predict`: the overlay (`?overlay=1`) as a PNG, else `answer` as JSON. */
function predictRoute(answer: Record<string, unknown>) {
  return (request: Request) => (new URL(request.url).searchParams.get("overlay") ? png() : jsonResponse(200, { model_id: 3, ...answer }));
}

async function upload(name = "pic.png") {
  const tryIt = await screen.findByTestId("try-it");
  await userEvent.upload(within(tryIt).getByLabelText("Image to classify"), new File([new Uint8Array([1])], name, { type: "image/png" }));
  return tryIt;
}

describe("ModelPage: what the task registry says", () => {
  const { createObjectURL, revokeObjectURL } = URL;
  beforeEach(() => {
    URL.createObjectURL = vi.fn(() => "blob:picture");
    URL.revokeObjectURL = vi.fn();
  });
  afterEach(() => {
    URL.createObjectURL = createObjectURL;
    URL.revokeObjectURL = revokeObjectURL;
    vi.unstubAllGlobals();
  });

  it("titles a classifier's task, puts its headline first, and orders its figures and columns as the registry does", async () => {
    mockApi({
      ...tasksRoute(),
      "GET /api/models/3": () => jsonResponse(200, model),
      "GET /api/models/3/dashboard": () =>
        jsonResponse(
          200,
          board("classification", {
            // Out of the registry's order on purpose.
            summary: { "f1/macro": 0.7, loss: 0.3, "accuracy/top5": 1, "accuracy/top1": 0.875 },
            columns: ["support", "f1", "recall", "precision"],
            per_class: [{ name: "cat", values: { precision: 0.9, recall: 0.8, f1: 0.85, support: 4 } }],
          }),
        ),
    });
    renderPage();
    await waitFor(() => expect(screen.getByTestId("model-task")).toHaveTextContent("Classification"));
    expect(screen.getByTestId("task-description")).toHaveTextContent("Names the class of the whole picture");
    const headline = await screen.findByTestId("model-headline");
    expect(headline).toHaveTextContent("87.5%");
    expect(headline).toHaveTextContent("top-1 accuracy");
    const labels = [...document.querySelectorAll(".tiles .tile__label")].map((l) => l.textContent);
    expect(labels.slice(0, 3)).toEqual(["top-1 accuracy", "top-5 accuracy", "F1 (macro)"]);
    expect(within(screen.getByTestId("per-class")).getAllByRole("columnheader").map((h) => h.textContent)).toEqual([
      "Class",
      "precision",
      "recall",
      "F1",
      "support",
    ]);
    expect(screen.getByTestId("cam-gallery")).toBeInTheDocument();
  });

  it("offers a detector no Grad-CAM, says why, and labels its answer as detections", async () => {
    const { requests } = mockApi({
      ...tasksRoute(),
      "GET /api/models/3": () => jsonResponse(200, { ...model, task: "object_detection", architecture: "fasterrcnn" }),
      "GET /api/models/3/dashboard": () => jsonResponse(200, board("object_detection", { summary: { "bbox/mAP_50": 0.6, "bbox/mAP": 0.42 } })),
      "POST /api/models/3/predict": predictRoute({ top_k: [{ index: 0, name: "cat", score: 0.9 }], detections: [] }),
    });
    renderPage();
    await waitFor(() => expect(screen.getByTestId("model-task")).toHaveTextContent("Object detection"));
    const headline = await screen.findByTestId("model-headline");
    expect(headline).toHaveTextContent("42.0%");
    expect(headline).toHaveTextContent("box mAP");
    expect(screen.queryByTestId("cam-gallery")).toBeNull();
    expect(screen.getByTestId("cam-unavailable")).toHaveTextContent(
      "Grad-CAM explains classification and segmentation models, not detectors: their outputs (boxes after non-maximum suppression) have no class score to take gradients of.",
    );

    const tryIt = await upload();
    expect(await within(tryIt).findByTestId("topk-name")).toHaveTextContent("cat");
    expect(within(tryIt).getByTestId("scores-heading")).toHaveTextContent("Objects found (best score per class)");
    expect(within(tryIt).getByTestId("drawn-heading")).toHaveTextContent("Detections drawn");
    expect(within(tryIt).getByTestId("try-cam-unavailable")).toHaveTextContent("not detectors");
    expect(requests.some((r) => new URL(r.url).pathname.endsWith("/cam"))).toBe(false);
  });

  it("says so in words when a detector finds nothing on the picture", async () => {
    mockApi({
      ...tasksRoute(),
      "GET /api/models/3": () => jsonResponse(200, { ...model, task: "object_detection", architecture: "fasterrcnn" }),
      "GET /api/models/3/dashboard": () => jsonResponse(200, board("object_detection", { summary: { "bbox/mAP": 0.42 } })),
      "POST /api/models/3/predict": predictRoute({ top_k: [], detections: [] }),
    });
    renderPage();
    const tryIt = await upload();
    expect(await within(tryIt).findByTestId("topk-empty")).toHaveTextContent("Nothing found: no object scored above the model's score threshold");
    expect(within(tryIt).queryByTestId("topk")).toBeNull();
  });

  it("shows a segmenter's answer as a mask and its classes as shares of pixels", async () => {
    mockApi({
      ...tasksRoute(),
      "GET /api/models/3": () =>
        jsonResponse(200, { ...model, task: "semantic_segmentation", architecture: "unet", class_names: ["_background_", "cat"] }),
      "GET /api/models/3/dashboard": () => jsonResponse(200, board("semantic_segmentation", { summary: { mDice: 0.8, mIoU: 0.7 } })),
      "POST /api/models/3/predict": predictRoute({ top_k: [{ index: 1, name: "cat", score: 0.3 }], classes: [], mask_png: "iVBORw0KGgo=" }),
      "POST /api/models/3/cam": () => png(),
    });
    renderPage();
    await waitFor(() => expect(screen.getByTestId("model-task")).toHaveTextContent("Semantic segmentation"));
    expect(await screen.findByTestId("model-headline")).toHaveTextContent("mIoU");
    const tryIt = await upload();
    expect(await within(tryIt).findByTestId("topk-name")).toHaveTextContent("cat");
    expect(within(tryIt).getByTestId("scores-heading")).toHaveTextContent("Classes found (share of pixels)");
    expect(within(tryIt).getByTestId("drawn-heading")).toHaveTextContent("Predicted mask");
    expect(await within(tryIt).findByTestId("cam-img")).toHaveAttribute("src", "blob:picture");
  });

  it("shows a task it has no code for by the registry alone: its title, its headline, its figures and its drawing", async () => {
    mockApi({
      ...tasksRoute([...FAKE_TASKS, TEXT_DETECTION]),
      "GET /api/models/3": () => jsonResponse(200, { ...model, task: "text_detection", architecture: "dbnet", class_names: ["text"] }),
      "GET /api/models/3/dashboard": () =>
        jsonResponse(200, board("text_detection", { summary: { recall: 0.75, precision: 0.9, hmean: 0.8125, loss: 1.2 } })),
      "POST /api/models/3/predict": predictRoute({ top_k: [{ index: 0, name: "text", score: 0.95 }] }),
      "POST /api/models/3/cam": () => png(),
    });
    renderPage();
    await waitFor(() => expect(screen.getByTestId("model-task")).toHaveTextContent("Text detection"));
    expect(screen.getByTestId("task-description")).toHaveTextContent("hmean is the harmonic mean");
    const headline = await screen.findByTestId("model-headline");
    expect(headline).toHaveTextContent("81.3%");
    expect(headline).toHaveTextContent("hmean");
    expect([...document.querySelectorAll(".tiles .tile__label")].map((l) => l.textContent).slice(0, 3)).toEqual([
      "hmean",
      "precision",
      "recall",
    ]);
    expect(screen.queryByText("validation loss")).toBeNull();
    expect(screen.getByTestId("cam-gallery")).toBeInTheDocument();

    const tryIt = await upload();
    expect(await within(tryIt).findByTestId("topk-name")).toHaveTextContent("text");
    expect(within(tryIt).getByTestId("scores-heading")).toHaveTextContent("Top classes");
    expect(within(tryIt).getByTestId("drawn-heading")).toHaveTextContent("Text lines drawn");
    expect(await within(tryIt).findByTestId("cam-img")).toBeInTheDocument();
  });

  it("says loading in words while the registry is asked for, and shows the raw task name if it cannot be had", async () => {
    let answer: (r: Response) => void = () => {};
    mockApi({
      "GET /api/tasks": () => new Promise<Response>((resolve) => (answer = resolve)),
      "GET /api/models/3": () => jsonResponse(200, { ...model, task: "object_detection" }),
    });
    renderPage();
    expect(await screen.findByTestId("model-task")).toHaveTextContent("loading…");
    expect(screen.queryByTestId("cam-unavailable")).toBeNull();
    answer(jsonResponse(503, { detail: "down", code: "unavailable" }));
    await waitFor(() => expect(screen.getByTestId("model-task")).toHaveTextContent(/^object_detection$/));
  });
});

describe("ModelPage: the images behind a figure", () => {
  afterEach(() => vi.unstubAllGlobals());

  function image(id: number, trueClass: string, predicted: string, score: number) {
    return {
      item_id: id,
      image_id: id,
      width: 64,
      height: 48,
      source: `batch/img_${id}.jpg`,
      file_name: `images/${id}.jpg`,
      true_class: trueClass,
      predicted_class: predicted,
      score,
      true_score: 1 - score,
      loss: 1.5,
      detail: null,
      image_url: `/api/datasets/1/images/${id}/render?overlay=false`,
      page_url: `/datasets/1/images/${id}`,
      cam_true_url: `/api/datasets/1/images/${id}/cam?model_id=3&target_class=${trueClass}`,
      cam_predicted_url: `/api/datasets/1/images/${id}/cam?model_id=3&target_class=${predicted}`,
    };
  }

  it("opens a cell's images with Grad-CAM for the true and the predicted class, and a class's false negatives", async () => {
    const { requests } = mockApi({
      ...tasksRoute(),
      "GET /api/models/3": () => jsonResponse(200, model),
      "GET /api/models/3/dashboard": () =>
        jsonResponse(
          200,
          board("classification", {
            summary: { "accuracy/top1": 0.75 },
            columns: ["precision", "recall", "f1", "support"],
            per_class: [
              { name: "cat", values: { precision: 1, recall: 0.5, f1: 0.66, support: 4 } },
              { name: "dog", values: { precision: 0.66, recall: 1, f1: 0.8, support: 4 } },
            ],
            confusion_matrix: [
              [2, 2],
              [0, 4],
            ],
            confusion_labels: ["cat", "dog"],
            explain_views: ["cell", "false_positives", "false_negatives", "highest_loss"],
          }),
        ),
      "GET /api/models/3/evaluation/images": (request) => {
        const q = new URL(request.url).searchParams;
        const images = q.get("view") === "cell" ? [image(7, "cat", "dog", 0.9), image(8, "cat", "dog", 0.6)] : [image(7, "cat", "dog", 0.9)];
        return jsonResponse(200, {
          model_id: 3,
          evaluation: 2,
          evaluations: [2],
          dataset_id: 1,
          split: "val",
          view: q.get("view"),
          score_is: "confidence",
          total: images.length,
          offset: 0,
          limit: 12,
          images,
        });
      },
    });
    renderPage();
    const cells = await screen.findAllByTestId("cm-cell");
    // An empty cell has nothing to open.
    expect(within(cells[2]!).queryByRole("button")).toBeNull();
    await userEvent.click(within(cells[1]!).getByRole("button"));
    const panel = await screen.findByTestId("explain-panel");
    expect(within(panel).getByTestId("explain-title")).toHaveTextContent("True cat, predicted dog");
    expect(await within(panel).findByTestId("explain-count")).toHaveTextContent("2 val images, most confident first");
    const rows = within(panel).getAllByTestId("explain-row");
    expect(within(rows[0]!).getByTestId("explain-name")).toHaveTextContent("batch/img_7.jpg");
    expect(within(rows[0]!).getByTestId("explain-name")).toHaveAttribute("href", "/datasets/1/images/7");
    expect(within(rows[0]!).getByTestId("explain-verdict")).toHaveTextContent("true cat · predicted dog (90.0%)");
    expect(within(rows[0]!).getByTestId("explain-cam-true")).toHaveAttribute("src", expect.stringContaining("target_class=cat"));
    expect(within(rows[0]!).getByTestId("explain-cam-predicted")).toHaveAttribute("src", expect.stringContaining("target_class=dog"));
    expect(cells[1]).toHaveClass("cm__cell--selected");
    const asked = new URL(requests.at(-1)!.url).searchParams;
    expect([asked.get("view"), asked.get("true"), asked.get("predicted")]).toEqual(["cell", "cat", "dog"]);

    // The class table counts each class's errors from the matrix and opens them.
    const table = screen.getByTestId("per-class");
    const [catFp, dogFp] = within(table).getAllByTestId("class-false-positives");
    expect(catFp).toHaveTextContent("0 false pos.");
    expect(catFp).toBeDisabled();
    expect(dogFp).toHaveTextContent("2 false pos.");
    await userEvent.click(within(table).getAllByTestId("class-false-negatives")[0]!);
    expect(await within(screen.getByTestId("explain-panel")).findByTestId("explain-title")).toHaveTextContent(
      "False negatives of cat: cat in truth, predicted as another class",
    );
    await waitFor(() => expect(new URL(requests.at(-1)!.url).searchParams.get("class_name")).toBe("cat"));
    await userEvent.click(screen.getByRole("button", { name: "Close" }));
    expect(screen.queryByTestId("explain-panel")).toBeNull();
  });
});

describe("ModelPage: a detector's boxes behind its figures", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("opens the false detections of a background cell on their pictures, and the boxes a curve's point keeps", async () => {
    const detection = (trueClass: string | null, score: number) => ({
      item_id: 11,
      image_id: 3,
      width: 100,
      height: 80,
      source: "shots/street.jpg",
      file_name: "images/3.jpg",
      true_class: trueClass,
      predicted_class: "box",
      score,
      true_score: null,
      loss: null,
      detail: { box: [10, 10, 40, 30], ...(trueClass ? { true_box: [12, 10, 40, 32], iou: 0.81 } : {}) },
      image_url: "/api/datasets/1/images/3/render?overlay=false",
      page_url: "/datasets/1/images/3",
      cam_true_url: null,
      cam_predicted_url: null,
    });
    const { requests } = mockApi({
      ...tasksRoute(),
      "GET /api/models/3": () => jsonResponse(200, { ...model, task: "object_detection", class_names: ["box", "disc"] }),
      "GET /api/models/3/dashboard": () =>
        jsonResponse(
          200,
          board("object_detection", {
            summary: { "bbox/mAP": 0.4 },
            confusion_matrix: [
              [3, 0, 1],
              [0, 2, 0],
              [2, 0, 0],
            ],
            confusion_labels: ["box", "disc", "background"],
            pr_curves: { bbox: { box: { recall: [0, 0.5, 1], precision: [1, 0.8, 0.4], score: [0.99, 0.62, 0.05] } } },
            explain_views: ["cell", "detections"],
          }),
        ),
      "GET /api/models/3/evaluation/images": (request) => {
        const view = new URL(request.url).searchParams.get("view");
        const images = view === "cell" ? [detection(null, 0.7)] : [detection("box", 0.9)];
        return jsonResponse(200, {
          model_id: 3,
          evaluation: 2,
          evaluations: [2],
          dataset_id: 1,
          split: "val",
          view,
          score_is: "score",
          score_threshold: 0.5,
          total: 1,
          offset: 0,
          limit: 12,
          images,
        });
      },
    });
    renderPage();
    const cells = await screen.findAllByTestId("cm-cell");
    await userEvent.click(within(cells[6]!).getByRole("button")); // true background, predicted box
    const panel = await screen.findByTestId("explain-panel");
    expect(within(panel).getByTestId("explain-title")).toHaveTextContent("True background, predicted box");
    expect(await within(panel).findByTestId("explain-verdict")).toHaveTextContent("false detection: box, nothing there (score 0.70)");
    expect(within(panel).getByTestId("explain-boxes")).toHaveAttribute("viewBox", "0 0 100 80");
    expect(within(panel).getByTestId("explain-crop").getAttribute("viewBox")).not.toBe("0 0 100 80");

    // The curve's point: its precision and score, and the boxes it keeps.
    const pick = screen.getByTestId("pr-pick");
    expect(within(pick).getByTestId("pr-point")).toHaveTextContent("recall 0.50 · precision 0.80 · boxes scoring 0.62 or more");
    await userEvent.click(within(pick).getByTestId("pr-show"));
    expect(await within(screen.getByTestId("explain-panel")).findByText("Boxes of box scoring 0.62 or more")).toBeInTheDocument();
    await waitFor(() => {
      const asked = new URL(requests.at(-1)!.url).searchParams;
      expect([asked.get("view"), asked.get("class_name"), asked.get("min_score")]).toEqual(["detections", "box", "0.62"]);
    });
    expect(await within(screen.getByTestId("explain-panel")).findByTestId("explain-verdict")).toHaveTextContent("box found (score 0.90 · IoU 0.81)");
  });
});
