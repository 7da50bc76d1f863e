import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "./errors";
import { camImage, predictImage, predictOverlay } from "./training";
import { jsonResponse, mockApi } from "../test/utils";

const file = new File([new Uint8Array([137, 80, 78, 71])], "cat.png", { type: "image/png" });

function png(headers: Record<string, string> = {}): Response {
  return new Response(new Uint8Array([137, 80, 78, 71]), {
    status: 200,
    headers: { "Content-Type": "image/png", ...headers },
  });
}

describe("single pictures on the inference lane", () => {
  const createObjectURL = URL.createObjectURL;
  afterEach(() => {
    URL.createObjectURL = createObjectURL;
    vi.unstubAllGlobals();
  });

  it("answers the top classes of one picture, sent as the `image` part", async () => {
    const { requests } = mockApi({
      "POST /api/models/3/predict": () =>
        jsonResponse(200, { model_id: 3, top_k: [{ index: 1, name: "cat", score: 0.9 }, { index: 0, name: "dog", score: 0.1 }] }),
    });
    expect(await predictImage(3, file, 2)).toEqual([
      { index: 1, name: "cat", score: 0.9 },
      { index: 0, name: "dog", score: 0.1 },
    ]);
    expect(requests).toHaveLength(1);
    expect(new URL(requests[0]!.url).search).toBe("?top_k=2");
    const form = await requests[0]!.formData();
    expect(form.has("image")).toBe(true);
  });

  it("shows a lane that did not answer as the message it carries", async () => {
    const detail = "no worker on the inference lane answered within 30 s; the health page shows the lane's workers";
    mockApi({ "POST /api/models/3/predict": () => jsonResponse(503, { detail, code: "inference_timeout" }) });
    const err = await predictImage(3, file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(503);
    expect((err as ApiError).code).toBe("inference_timeout");
    expect((err as ApiError).message).toBe(detail);
    await expect(predictOverlay(3, file)).rejects.toThrow(detail);
  });

  it("answers a Grad-CAM picture with what it explains, from the URL-quoted headers", async () => {
    URL.createObjectURL = vi.fn(() => "blob:cam-1");
    const { requests } = mockApi({
      "POST /api/models/3/cam": () =>
        png({
          "X-Cam-Target-Class": encodeURIComponent("tabby cat"),
          "X-Cam-Target-Layer": "layer4",
          "X-Cam-Score": "0.812500",
          "X-Cam-Predicted-Class": encodeURIComponent("chat noir"),
        }),
    });
    expect(await camImage(3, file, "tabby cat")).toEqual({
      url: "blob:cam-1",
      targetClass: "tabby cat",
      targetLayer: "layer4",
      score: 0.8125,
      predictedClass: "chat noir",
      method: null, // a classifier's answer names no method or box
      box: null,
    });
    const form = await requests[0]!.formData();
    expect(form.get("target_class")).toBe("tabby cat");
  });

  it("reads an empty score header as no score", async () => {
    URL.createObjectURL = vi.fn(() => "blob:cam-2");
    mockApi({ "POST /api/models/3/cam": () => png({ "X-Cam-Target-Class": "cat", "X-Cam-Score": "" }) });
    const answer = await camImage(3, file, "");
    expect(answer.score).toBeNull();
    expect(answer.targetLayer).toBeNull();
  });
});
