import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { SchemaForm } from "./SchemaForm";
import { defaultValue, resolve, serverFieldErrors, setIn, validate, type JsonSchema } from "./schema";

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

const current = () => JSON.parse(screen.getByTestId("value").textContent ?? "null") as Record<string, any>;

describe("schema helpers", () => {
  it("resolves $ref and builds defaults through nested objects", () => {
    expect(resolve(SCHEMA, { $ref: "#/$defs/Step" }).properties?.p?.maximum).toBe(1);
    const d = defaultValue(SCHEMA, SCHEMA) as Record<string, any>;
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
    expect(screen.getByRole("group", { name: "data" })).toBeInTheDocument();
    const schedule = screen.getByRole("group", { name: "schedule" });
    expect(within(schedule).getByLabelText("optimizer")).toHaveValue("adam");
    expect(within(schedule).getByLabelText("amp")).not.toBeChecked();
    expect(screen.getByLabelText("dataset_id")).toHaveAttribute("readonly");
    expect(screen.getByLabelText("mean 1")).toHaveValue("0.1");
    expect(screen.getByLabelText("mean 2")).toHaveValue("0.2");
    expect(screen.getByText("1")).toHaveClass("sf-const");
  });

  it("validates as you type and shows the message next to the field", async () => {
    const user = userEvent.setup();
    render(<Harness initial={setIn(defaultValue(SCHEMA, SCHEMA), ["data", "dataset_id"], 3)} />);
    const lr = screen.getByLabelText("lr");
    await user.clear(lr);
    await user.type(lr, "0");
    expect(screen.getByTestId("error-schedule.lr")).toHaveTextContent("must be > 0");
    expect(lr).toHaveAttribute("aria-invalid", "true");
    await user.clear(lr);
    await user.type(lr, "1e-4");
    expect(screen.queryByTestId("error-schedule.lr")).not.toBeInTheDocument();
    expect(current().schedule.lr).toBe(0.0001);
    await user.selectOptions(screen.getByLabelText("optimizer"), "sgd");
    expect(current().schedule.optimizer).toBe("sgd");
  });

  it("adds and removes steps of an array of objects, each with its own fields", async () => {
    const user = userEvent.setup();
    render(<Harness initial={setIn(defaultValue(SCHEMA, SCHEMA), ["data", "dataset_id"], 3)} />);
    const augment = screen.getByRole("group", { name: "augment" });
    expect(within(augment).getAllByTestId("item-data.augment")).toHaveLength(1);
    await user.click(within(augment).getByRole("button", { name: "Add augment" }));
    const items = within(augment).getAllByTestId("item-data.augment");
    expect(items).toHaveLength(2);
    await user.selectOptions(within(items[1]!).getByLabelText("name"), "rotate");
    const p = within(items[1]!).getByLabelText("p");
    await user.clear(p);
    await user.type(p, "3");
    expect(screen.getByTestId("error-data.augment.1.p")).toHaveTextContent("must be ≤ 1");
    expect(current().data.augment[1]).toEqual({ name: "rotate", p: 3 });
    await user.click(within(augment).getByRole("button", { name: "Remove augment 1" }));
    expect(current().data.augment).toEqual([{ name: "rotate", p: 3 }]);
  });

  it("switches nullable fields between null and a value", async () => {
    const user = userEvent.setup();
    render(<Harness initial={setIn(defaultValue(SCHEMA, SCHEMA), ["data", "dataset_id"], 3)} />);
    const epochsToggle = screen.getByRole("checkbox", { name: "Set epochs" });
    expect(epochsToggle).toBeChecked();
    await user.click(epochsToggle);
    expect(current().schedule.epochs).toBeNull();
    expect(screen.getByText("epochs: none")).toBeInTheDocument();
    await user.click(screen.getByRole("checkbox", { name: "Set load_from" }));
    expect(current().schedule.load_from).toEqual({});
    expect(screen.getByTestId("error-schedule.load_from.model_id")).toHaveTextContent("required");
    await user.type(screen.getByLabelText("model_id"), "7");
    expect(current().schedule.load_from).toEqual({ model_id: 7 });
  });
});
