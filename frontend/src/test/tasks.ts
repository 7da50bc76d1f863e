import type { TaskInfo } from "../api/tasks";
import { jsonResponse } from "./utils";

const NO_CAM =
  "Grad-CAM explains classification and segmentation models, not detectors: their outputs (boxes after " +
  "non-maximum suppression) have no class score to take gradients of";

const BOX = ["bbox/mAP", "bbox/mAP_50", "bbox/mAP_75", "bbox/AR_100"];
const MASK = ["segm/mAP", "segm/mAP_50", "segm/mAP_75"];
const CLS = ["accuracy/top1", "accuracy/top5", "precision/macro", "recall/macro", "f1/macro"];
const SEG = ["mIoU", "mDice", "mAcc", "aAcc"];

/** A fake `GET /api/tasks` answer: the backend registry's four tasks, as it serves them. */
export const FAKE_TASKS: TaskInfo[] = [
  {
    name: "classification",
    title: "Classification",
    description: "Names the class of the whole picture, with a score per class.",
    metrics: CLS,
    headline: "accuracy/top1",
    summary: [...CLS, "loss"],
    columns: ["precision", "recall", "f1", "support"],
    explain: null,
    background: false,
    model_outputs: "tensor",
    drawn: "Prediction drawn",
    simple_fields: ["schedule.epochs", "data.input_size", "data.batch_size", "model.pretrained"],
  },
  {
    name: "semantic_segmentation",
    title: "Semantic segmentation",
    description: "Gives every pixel a class (or background).",
    metrics: SEG,
    headline: "mIoU",
    summary: [...SEG, "loss"],
    columns: ["iou", "dice", "acc", "pixels"],
    explain: null,
    background: true,
    model_outputs: "tensor",
    drawn: "Predicted mask",
    simple_fields: ["schedule.epochs", "data.input_size", "data.batch_size", "model.pretrained"],
  },
  {
    name: "object_detection",
    title: "Object detection",
    description: "Finds each object as a box with a class and a score.",
    metrics: BOX,
    headline: "bbox/mAP",
    summary: [...BOX, "loss"],
    columns: ["bbox/AP", "bbox/AP50", "bbox/AP75", "bbox/AR", "objects"],
    explain: NO_CAM,
    background: false,
    model_outputs: "detections",
    drawn: "Detections drawn",
    simple_fields: ["schedule.epochs", "data.scales", "data.batch_size", "model.pretrained"],
  },
  {
    name: "instance_segmentation",
    title: "Instance segmentation",
    description: "Finds each object as a box and a mask with a class and a score.",
    metrics: [...BOX, ...MASK],
    headline: "segm/mAP",
    summary: [...MASK, ...BOX, "loss"],
    columns: ["segm/AP", "segm/AP50", "bbox/AP", "bbox/AP50", "bbox/AR", "objects"],
    explain: NO_CAM,
    background: false,
    model_outputs: "detections",
    drawn: "Detections drawn",
    simple_fields: ["schedule.epochs", "data.scales", "data.batch_size", "model.pretrained"],
  },
];

/** A task the pages have no code for: it must show from what the registry says alone. */
export const TEXT_DETECTION: TaskInfo = {
  name: "text_detection",
  title: "Text detection",
  description: "Finds each line of text as a polygon; hmean is the harmonic mean of precision and recall.",
  metrics: ["hmean", "precision", "recall"],
  headline: "hmean",
  summary: ["hmean", "precision", "recall"],
  columns: [],
  explain: null,
  background: false,
  model_outputs: "tensor",
  drawn: "Text lines drawn",
  simple_fields: ["schedule.epochs", "data.input_size", "data.batch_size", "model.pretrained"],
};

/** The `mockApi` route answering `GET /api/tasks` with `tasks`. */
export function tasksRoute(tasks: TaskInfo[] = FAKE_TASKS) {
  return { "GET /api/tasks": () => jsonResponse(200, tasks) };
}
