import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { SchemaForm } from "./SchemaForm";
import { defaultValue, humanize, resolve, serverFieldErrors, setIn, validate, type JsonSchema } from "./schema";

/** Shaped like pydantic's output for the run config: $defs, $ref, nullable unions, tuples, arrays of objects. */
const SCHEMA: JsonSchema = {
  type: "object",
  required: ["data"],
  properties: {
    version: { const: 1, default: 1, type: "integer" },
    name: { type: "string", default: "", maxLength: 10 },
    data: { $ref: "#/$defs/Data" },
    schedule: { $ref: "#/$defs/Schedule" },
  },
  $defs: {
    Step: {
      type: "object",
      additionalProperties: false,
      required: ["name"],
      properties: {
        name: { enum: ["flip", "rotate"], type: "string" },
        p: { type: "number", default: 0.5, minimum: 0, maximum: 1 },
      },
    },
    Data: {
      type: "object",
      additionalProperties: false,
      required: ["dataset_id"],
      properties: {
        dataset_id: { type: "integer" },
        input_size: { type: "integer", default: 224, minimum: 16, maximum: 4096 },
        augment: { type: "array", items: { $ref: "#/$defs/Step" }, default: [{ name: "flip", p: 0.5 }] },
        mean: { type: "array", prefixItems: [{ type: "number" }, { type: "number" }], minItems: 2, maxItems: 2, default: [0.1, 0.2] },
      },
    },
    Schedule: {
      type: "object",
      additionalProperties: false,
      properties: {
        optimizer: { enum: ["sgd", "adam"], type: "string", default: "adam" },
        lr: { type: "number", default: 0.001, exclusiveMinimum: 0, maximum: 10 },
        amp: { type: "boolean", default: false },
        epochs: { anyOf: [{ type: "integer", minimum: 1 }, { type: "null" }], default: 10 },
        load_from: { anyOf: [{ $ref: "#/$defs/Load" }, { type: "null" }], default: null },
      },
    },
    Load: { type: "object", required: ["model_id"], properties: { model_id: { type: "integer" } } },
  },
};

/** Parsed JSON, read by deep paths in the assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

function Harness({ initial }: { initial: unknown }) {
  const [value, setValue] = useState<unknown>(initial);
  const errors = validate(SCHEMA, SCHEMA, value);
  return (
    <>
      <SchemaForm schema={SCHEMA} value={value} onChange={setValue} errors={errors} readOnly={["data.dataset_id"]} />
      <pre data-testid="value">{JSON.stringify(value)}</pre>
    </>
  );
}

const current = () => JSON.parse(screen.getByTestId("value").textContent ?? "null") as Loose;

describe("schema helpers", () => {
  it("resolves $ref and builds defaults through nested objects", () => {
    expect(resolve(SCHEMA, { $ref: "#/$defs/Step" }).properties?.p?.maximum).toBe(1);
    const d = defaultValue(SCHEMA, SCHEMA) as Loose;
    expect(d.version).toBe(1);
    expect(d.data).toEqual({ input_size: 224, augment: [{ name: "flip", p: 0.5 }], mean: [0.1, 0.2] });
    expect(d.schedule).toEqual({ optimizer: "adam", lr: 0.001, amp: false, epochs: 10, load_from: null });
  });

  it("validates bounds, enums, unions, tuples, required and unknown fields by path", () => {
    const base = setIn(defaultValue(SCHEMA, SCHEMA), ["data", "dataset_id"], 3);
    expect(validate(SCHEMA, SCHEMA, base)).toEqual({});
    let v = setIn(base, ["schedule", "lr"], 0);
    v = setIn(v, ["data", "input_size"], 8);
    v = setIn(v, ["data", "augment", 0, "p"], 2);
    v = setIn(v, ["data", "augment", 0, "name"], "blur");
    v = setIn(v, ["schedule", "epochs"], 0);
    v = setIn(v, ["data", "mean"], [0.1]);
    v = setIn(v, ["data", "extra"], 1);
    v = setIn(v, ["name"], "a very long name");
    const errors = validate(SCHEMA, SCHEMA, v);
    expect(errors["schedule.lr"]).toBe("must be > 0");
    expect(errors["data.input_size"]).toBe("must be ≥ 16");
    expect(errors["data.augment.0.p"]).toBe("must be ≤ 1");
    expect(errors["data.augment.0.name"]).toMatch(/one of flip, rotate/);
    expect(errors["schedule.epochs"]).toBe("must be ≥ 1");
    expect(errors["data.mean"]).toMatch(/at least 2/);
    expect(errors["data.extra"]).toBe("not a known field");
    expect(errors.name).toMatch(/at most 10/);
    expect(validate(SCHEMA, SCHEMA, setIn(base, ["schedule", "epochs"], null))).toEqual({});
    expect(validate(SCHEMA, SCHEMA, setIn(base, ["schedule", "lr"], "1e-"))["schedule.lr"]).toBe("must be a number");
    expect(validate(SCHEMA, SCHEMA, {})["data"]).toBe("required");
  });

  it("maps a 422's field names onto form paths", () => {
    expect(serverFieldErrors({ "config.schedule.lr": "too small", yaml: "bad" })).toEqual({ "schedule.lr": "too small", yaml: "bad" });
  });
});

describe("SchemaForm", () => {
  it("renders objects as fieldsets, enums as selects, tuples, booleans and read-only fields", () => {
    render(<Harness initial={setIn(defaultValue(SCHEMA, SCHEMA), ["data", "dataset_id"], 3)} />);
    expect(screen.getByRole("group", { name: "Data" })).toBeInTheDocument();
    const schedule = screen.getByRole("group", { name: "Schedule" });
    expect(within(schedule).getByLabelText("Optimizer")).toHaveValue("adam");
    expect(within(schedule).getByLabelText("Amp")).not.toBeChecked();
    expect(screen.getByLabelText("Dataset id")).toHaveAttribute("readonly");
    expect(screen.getByLabelText("Mean 1")).toHaveValue("0.1");
    expect(screen.getByLabelText("Mean 2")).toHaveValue("0.2");
    expect(screen.getByText("1")).toHaveClass("sf-const");
  });

  it("validates as you type and shows the message next to the field", async () => {
    const user = userEvent.setup();
    render(<Harness initial={setIn(defaultValue(SCHEMA, SCHEMA), ["data", "dataset_id"], 3)} />);
    const lr = screen.getByLabelText("Lr");
    await user.clear(lr);
    await user.type(lr, "0");
    expect(screen.getByTestId("error-schedule.lr")).toHaveTextContent("must be > 0");
    expect(lr).toHaveAttribute("aria-invalid", "true");
    await user.clear(lr);
    await user.type(lr, "1e-4");
    expect(screen.queryByTestId("error-schedule.lr")).not.toBeInTheDocument();
    expect(current().schedule.lr).toBe(0.0001);
    await user.selectOptions(screen.getByLabelText("Optimizer"), "sgd");
    expect(current().schedule.optimizer).toBe("sgd");
  });

  it("adds and removes steps of an array of objects, each with its own fields", async () => {
    const user = userEvent.setup();
    render(<Harness initial={setIn(defaultValue(SCHEMA, SCHEMA), ["data", "dataset_id"], 3)} />);
    const augment = screen.getByRole("group", { name: "Augment" });
    expect(within(augment).getAllByTestId("item-data.augment")).toHaveLength(1);
    await user.click(within(augment).getByRole("button", { name: "Add Augment" }));
    const items = within(augment).getAllByTestId("item-data.augment");
    expect(items).toHaveLength(2);
    await user.selectOptions(within(items[1]!).getByLabelText("Name"), "rotate");
    const p = within(items[1]!).getByLabelText("P");
    await user.clear(p);
    await user.type(p, "3");
    expect(screen.getByTestId("error-data.augment.1.p")).toHaveTextContent("must be ≤ 1");
    expect(current().data.augment[1]).toEqual({ name: "rotate", p: 3 });
    await user.click(within(augment).getByRole("button", { name: "Remove Augment 1" }));
    expect(current().data.augment).toEqual([{ name: "rotate", p: 3 }]);
  });

  it("switches nullable fields between null and a value", async () => {
    const user = userEvent.setup();
    render(<Harness initial={setIn(defaultValue(SCHEMA, SCHEMA), ["data", "dataset_id"], 3)} />);
    const epochsToggle = screen.getByRole("checkbox", { name: "Set Epochs" });
    expect(epochsToggle).toBeChecked();
    await user.click(epochsToggle);
    expect(current().schedule.epochs).toBeNull();
    expect(within(screen.getByText("none").closest(".field")!).getByText("Epochs")).toBeInTheDocument();
    await user.click(screen.getByRole("checkbox", { name: "Set Load from" }));
    expect(current().schedule.load_from).toEqual({});
    expect(screen.getByTestId("error-schedule.load_from.model_id")).toHaveTextContent("required");
    await user.type(screen.getByLabelText("Model id"), "7");
    expect(current().schedule.load_from).toEqual({ model_id: 7 });
  });
});

describe("SchemaForm: fields in words", () => {
  const WORDS: JsonSchema = {
    type: "object",
    properties: {
      runtime: { $ref: "#/$defs/Runtime" },
      data: { $ref: "#/$defs/D" },
    },
    $defs: {
      Runtime: {
        type: "object",
        title: "RuntimeSpec",
        properties: {
          eval_interval: { type: "integer", default: 1, minimum: 1, title: "Evaluate every", unit: "epochs", description: "How often the model is scored" },
          log_interval: { type: "integer", default: 10, minimum: 1, title: "Log Interval" },
        },
      },
      D: {
        type: "object",
        properties: {
          scales: {
            anyOf: [{ type: "array", items: { type: "integer", minimum: 16 } }, { type: "null" }],
            default: null,
            title: "Scales",
            unit: "px",
          },
        },
      },
    },
  };

  function Words({ only, path }: { only?: string[]; path?: string }) {
    const [value, setValue] = useState<unknown>({ runtime: { eval_interval: 1, log_interval: 10 }, data: { scales: null } });
    return (
      <>
        <SchemaForm schema={WORDS} value={value} onChange={setValue} {...(only ? { only } : {})} {...(path ? { path } : {})} />
        <pre data-testid="value">{JSON.stringify(value)}</pre>
      </>
    );
  }

  it("labels a field by its title, its unit after the input, its description as help and its code name aside", () => {
    render(<Words path="runtime" />);
    const input = screen.getByLabelText("Evaluate every");
    const field = input.closest(".field") as HTMLElement;
    expect(within(field).getByText("epochs")).toHaveClass("sf-unit");
    expect(within(field).getByText(/How often the model is scored/)).toHaveClass("field__hint");
    expect(within(field).getByText("runtime.eval_interval")).toHaveClass("sf-code");
    expect(within(field).getByText("Evaluate every")).toHaveAttribute("title", "runtime.eval_interval");
    expect(screen.getByLabelText("Log Interval")).toHaveValue("10"); // pydantic's own title
    expect(screen.queryByRole("group", { name: "RuntimeSpec" })).not.toBeInTheDocument(); // a section's class name is no label
    expect(screen.queryByLabelText("Scales")).not.toBeInTheDocument(); // another section
  });

  it("renders just the paths asked for; a nullable list of numbers is one line", async () => {
    const user = userEvent.setup();
    render(<Words only={["data.scales", "runtime.log_interval"]} />);
    expect(screen.queryByLabelText("Evaluate every")).not.toBeInTheDocument();
    const toggle = screen.getByRole("checkbox", { name: "Set Scales" });
    await user.click(toggle);
    const scales = screen.getByLabelText("Scales");
    await user.type(scales, "480, 640");
    expect(current().data.scales).toEqual([480, 640]);
    await user.click(toggle);
    expect(current().data.scales).toBeNull();
  });

  it("words a name: humanize", () => {
    expect(humanize("eval_interval")).toBe("Eval interval");
    expect(humanize("HorizontalFlip")).toBe("Horizontal flip");
  });
});
