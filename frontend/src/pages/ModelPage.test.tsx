import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ModelPage } from "./ModelPage";
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
