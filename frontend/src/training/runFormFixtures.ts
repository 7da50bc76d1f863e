/** Test data for the run form: a run-config schema shaped like pydantic's output (with a discriminated
 * augmentation union), a catalog, presets and an estimate, as the API answers them. */
import type { Estimate, Preset, RunCatalog } from "../api/runForm";
import type { JsonSchema } from "./schema";

const step = (title: string, name: string, description: string, props: Record<string, JsonSchema> = {}): JsonSchema => ({
  additionalProperties: false,
  description,
  properties: { name: { const: name, title: "Name", type: "string" }, ...props },
  required: ["name"],
  title,
  type: "object",
});

const P: JsonSchema = { default: 0.5, description: "How often the step applies", maximum: 1, minimum: 0, title: "Probability", type: "number" };

export const RUN_SCHEMA: JsonSchema = {
  additionalProperties: false,
  description: "Train an image classifier on a dataset version; its classes come from the dataset.",
  properties: {
    version: { const: 1, default: 1, title: "Version", type: "integer" },
    task: { const: "classification", default: "classification", title: "Task", type: "string" },
    name: { default: "", description: "A name for the run", maxLength: 200, title: "Name", type: "string" },
    model: { $ref: "#/$defs/ModelSpec" },
    data: { $ref: "#/$defs/DataSpec" },
    loss: { $ref: "#/$defs/LossSpec" },
    schedule: { $ref: "#/$defs/ScheduleSpec" },
    runtime: { $ref: "#/$defs/RuntimeSpec" },
  },
  required: ["data"],
  title: "ClassificationConfig",
  type: "object",
  $defs: {
    HorizontalFlip: step("HorizontalFlip", "horizontal_flip", "Mirror left to right.", { p: P }),
    Rotation: step("Rotation", "rotation", "Rotate by a random angle.", {
      p: P,
      degrees: { default: 15, maximum: 180, minimum: 0, title: "Largest angle", type: "number", unit: "°" },
    }),
    RandomResizedCrop: step("RandomResizedCrop", "random_resized_crop", "A random part of the picture, resized.", {
      scale: {
        default: [0.08, 1],
        maxItems: 2,
        minItems: 2,
        prefixItems: [{ type: "number" }, { type: "number" }],
        title: "Area kept",
        type: "array",
      },
    }),
    ModelSpec: {
      additionalProperties: false,
      properties: {
        architecture: { default: "resnet18", description: "A name from GET /api/catalog", title: "Architecture", type: "string" },
        options: { additionalProperties: true, description: "Architecture options from the catalog", title: "Options", type: "object" },
        pretrained: { default: false, description: "ImageNet weights", title: "Pretrained", type: "boolean" },
      },
      title: "ModelSpec",
      type: "object",
    },
    DataSpec: {
      additionalProperties: false,
      properties: {
        dataset_id: { description: "A dataset version", title: "Dataset Id", type: "integer" },
        input_size: { default: 224, description: "Square side the images are resized to", maximum: 4096, minimum: 16, title: "Input size", type: "integer", unit: "px" },
        augment: {
          description: "Training transforms, in order",
          items: {
            discriminator: {
              mapping: {
                horizontal_flip: "#/$defs/HorizontalFlip",
                random_resized_crop: "#/$defs/RandomResizedCrop",
                rotation: "#/$defs/Rotation",
              },
              propertyName: "name",
            },
            oneOf: [{ $ref: "#/$defs/RandomResizedCrop" }, { $ref: "#/$defs/HorizontalFlip" }, { $ref: "#/$defs/Rotation" }],
          },
          title: "Augment",
          type: "array",
        },
        batch_size: { default: 32, maximum: 4096, minimum: 1, title: "Batch size", type: "integer" },
        workers: { default: 2, description: "Data loader processes", maximum: 64, minimum: 0, title: "Workers", type: "integer" },
      },
      required: ["dataset_id"],
      title: "DataSpec",
      type: "object",
    },
    LossSpec: {
      additionalProperties: false,
      properties: {
        name: { default: "cross_entropy", enum: ["cross_entropy", "focal"], title: "Name", type: "string" },
        label_smoothing: { default: 0, exclusiveMaximum: 1, minimum: 0, title: "Label Smoothing", type: "number" },
      },
      title: "LossSpec",
      type: "object",
    },
    ScheduleSpec: {
      additionalProperties: false,
      properties: {
        lr: { default: 0.001, exclusiveMinimum: 0, maximum: 10, title: "Learning rate", type: "number" },
        epochs: { anyOf: [{ maximum: 100000, minimum: 1, type: "integer" }, { type: "null" }], default: 10, title: "Epochs", unit: "epochs" },
        iterations: { anyOf: [{ minimum: 1, type: "integer" }, { type: "null" }], default: null, description: "Instead of epochs", title: "Iterations" },
      },
      title: "ScheduleSpec",
      type: "object",
    },
    RuntimeSpec: {
      additionalProperties: false,
      properties: {
        eval_interval: { default: 1, description: "How often the validation split is scored", minimum: 1, title: "Evaluate every", type: "integer", unit: "epochs" },
        seed: { default: 0, minimum: 0, title: "Seed", type: "integer" },
      },
      title: "RuntimeSpec",
      type: "object",
    },
  },
};

/** The server's answer for (dataset 4, `architecture`): the defaults of that entry on this machine. */
export function baseConfig(architecture = "tiny_cnn", datasetId = 4): Record<string, unknown> {
  const light = architecture === "tiny_cnn";
  return {
    version: 1,
    task: "classification",
    name: "",
    model: { architecture, options: {}, pretrained: false },
    data: {
      dataset_id: datasetId,
      input_size: light ? 64 : 224,
      augment: [
        { name: "random_resized_crop", scale: [0.6, 1] },
        { name: "horizontal_flip", p: 0.5 },
      ],
      batch_size: 32,
      workers: 2,
    },
    loss: { name: "cross_entropy", label_smoothing: 0 },
    schedule: { lr: 0.001, epochs: 10, iterations: null },
    runtime: { eval_interval: 1, seed: 0 },
  };
}

export const CATALOG: RunCatalog = {
  entries: [
    {
      name: "tiny_cnn",
      task: "classification",
      family: "Studio",
      source: "studio",
      builder: "studio.tiny_cnn",
      default_input_size: 64,
      min_input_size: 16,
      input_multiple: 1,
      pretrained_weights: null,
      options: [],
      description: "A four-layer CNN for quick experiments",
      cam_layer: null,
      light: true,
      fixed: {},
      params: 233_000,
      flops: 90_400_000,
      defaults: { "data.input_size": 64, "data.batch_size": 32, "schedule.epochs": 10 },
    },
    {
      name: "resnet50",
      task: "classification",
      family: "ResNet",
      source: "torchvision",
      builder: "resnet50",
      default_input_size: 224,
      min_input_size: 32,
      input_multiple: 1,
      pretrained_weights: "ResNet50_Weights.IMAGENET1K_V2",
      options: [{ name: "dropout", type: "float", default: 0, minimum: 0, maximum: 0.9, description: "Dropout before the head", choices: null }],
      description: "",
      cam_layer: "layer4",
      light: false,
      fixed: {},
      params: 25_560_000,
      flops: 152_990_000_000,
      defaults: { "data.input_size": 224 },
    },
  ],
  stats_pending: false,
  stats_job_id: null,
  machine: { device: "cpu", gpus: 0, description: "CPU only (2 cores), no GPU" },
  recommended: "tiny_cnn",
  recommended_reason: "Light enough to train on this CPU in minutes",
} as RunCatalog;

export const PRESETS: Preset[] = [
  { name: "quick", title: "Quick look", description: "A few epochs to see it learn", changes: { "schedule.epochs": 3, "data.input_size": 128 } },
  { name: "balanced", title: "Balanced", description: "The defaults", changes: { "schedule.epochs": 10 } },
  { name: "best", title: "Best", description: "Longer, larger pictures", changes: { "schedule.epochs": 50, "runtime.eval_interval": 5 } },
];

export const ESTIMATE: Estimate = {
  status: "ready",
  job_id: 9,
  message: "measured over 20 iterations on the CPU",
  device: "cpu",
  seconds_per_iteration: 0.41,
  data_seconds_per_iteration: 0.05,
  memory_mb: 512,
  memory_note: "peak resident memory",
  iterations_per_epoch: 12,
  total_iterations: 120,
  eval_seconds: 2,
  evaluations: 10,
  run_seconds: 69.2,
  busy: false,
  cached: false,
  measured_at: null,
};
