import { describe, expect, it } from "vitest";
import { FAKE_TASKS } from "../test/tasks";
import { headlineMetric } from "./training";
import { taskRegistry, TASKS_LOADING } from "./tasks";

describe("the task registry", () => {
  it("titles a task it lists, says loading in words until it answers, and shows the raw name if it failed", () => {
    const answered = taskRegistry(FAKE_TASKS, { loading: false, failed: false });
    expect(answered.title("object_detection")).toBe("Object detection");
    expect(answered.get("semantic_segmentation")?.background).toBe(true);
    // A name it does not list (a dataset's task the studio does not train yet), in words.
    expect(answered.title("text_detection")).toBe("Text detection");

    expect(taskRegistry(undefined, { loading: true, failed: false }).title("object_detection")).toBe(TASKS_LOADING);
    expect(taskRegistry(undefined, { loading: false, failed: true }).title("object_detection")).toBe("object_detection");
  });

  it("reads a model's headline figure by the registry's name for it, best epoch first", () => {
    const metrics = { best: { mIoU: 0.7, "accuracy/top1": 0.9 }, final: { mIoU: 0.6, "bbox/mAP": 0.4 } };
    expect(headlineMetric(metrics, "accuracy/top1")).toEqual({ key: "accuracy/top1", label: "top-1", value: 0.9 });
    expect(headlineMetric(metrics, "mIoU")).toEqual({ key: "mIoU", label: "mIoU", value: 0.7 });
    expect(headlineMetric(metrics, "bbox/mAP")).toEqual({ key: "bbox/mAP", label: "box mAP", value: 0.4 });
    expect(headlineMetric({ "segm/mAP": 0.3 }, "segm/mAP")).toEqual({ key: "segm/mAP", label: "mask mAP", value: 0.3 });
    expect(headlineMetric({ best: { hmean: 0.8 } }, "hmean")).toEqual({ key: "hmean", label: "hmean", value: 0.8 });
    expect(headlineMetric(metrics, undefined)).toEqual({ key: null, label: "", value: null });
  });
});
