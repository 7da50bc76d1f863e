import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { SchemaForm } from "./SchemaForm";
import { RUN_SCHEMA, baseConfig } from "./runFormFixtures";
import { discriminatedUnion, validate } from "./schema";

function Harness({ initial }: { initial: unknown }) {
  const [value, setValue] = useState<unknown>(initial);
  return (
    <>
      <SchemaForm schema={RUN_SCHEMA} value={value} onChange={setValue} errors={validate(RUN_SCHEMA, RUN_SCHEMA, value)} path="data.augment" />
      <pre data-testid="value">{JSON.stringify(value)}</pre>
    </>
  );
}

const steps = () => (JSON.parse(screen.getByTestId("value").textContent ?? "{}") as { data: { augment: Record<string, unknown>[] } }).data.augment;
const rows = () => screen.getAllByTestId("item-data.augment");

describe("a discriminated union", () => {
  it("is read from pydantic's oneOf + discriminator, each member in words", () => {
    const union = discriminatedUnion(RUN_SCHEMA, RUN_SCHEMA.$defs!.DataSpec!.properties!.augment!.items!)!;
    expect(union.property).toBe("name");
    expect(union.members.map((m) => [m.value, m.title])).toEqual([
      ["random_resized_crop", "Random resized crop"],
      ["horizontal_flip", "Horizontal flip"],
      ["rotation", "Rotation"],
    ]);
  });

  it("validates each step against its own member only", () => {
    const c = baseConfig() as { data: { augment: unknown[] } };
    c.data.augment = [{ name: "horizontal_flip", p: 2 }, { name: "horizontal_flip", degrees: 3 }, { name: "blur" }];
    const errors = validate(RUN_SCHEMA, RUN_SCHEMA, c);
    expect(errors["data.augment.0.p"]).toBe("must be ≤ 1");
    expect(errors["data.augment.1.degrees"]).toBe("not a known field"); // a flip takes no angle
    expect(errors["data.augment.2.name"]).toMatch(/one of random_resized_crop, horizontal_flip, rotation/);
  });
});

describe("the augmentation pipeline", () => {
  it("shows each step in words with only its own parameters: a flip shows its probability alone", () => {
    render(<Harness initial={baseConfig()} />);
    const [crop, flip] = rows();
    expect(within(crop!).getByText("Random resized crop")).toBeInTheDocument();
    expect(within(crop!).getByRole("group", { name: "Area kept" })).toBeInTheDocument();
    expect(within(crop!).queryByLabelText("Probability")).not.toBeInTheDocument();
    expect(within(flip!).getByText("Horizontal flip")).toBeInTheDocument();
    expect(within(flip!).getByText("Mirror left to right.")).toBeInTheDocument();
    expect(within(flip!).getAllByRole("textbox")).toHaveLength(1);
    expect(within(flip!).getByLabelText("Probability")).toHaveValue("0.5");
    expect(within(flip!).queryByLabelText("Name")).not.toBeInTheDocument(); // the discriminator is the row's title
  });

  it("adds a step with its member's defaults, reorders and removes steps", async () => {
    const user = userEvent.setup();
    render(<Harness initial={baseConfig()} />);
    const add = screen.getByLabelText("Add step");
    expect([...(add as HTMLSelectElement).options].map((o) => o.textContent)).toEqual([
      "Add step…",
      "Random resized crop",
      "Horizontal flip",
      "Rotation",
    ]);
    await user.selectOptions(add, "rotation");
    expect(steps()[2]).toEqual({ name: "rotation", p: 0.5, degrees: 15 });
    expect(add).toHaveValue("");
    const rotation = rows()[2]!;
    expect(within(rotation).getByText("°")).toBeInTheDocument(); // the unit after its input
    await user.click(screen.getByRole("button", { name: "Move step 3 (Rotation) up" }));
    expect(steps().map((s) => s.name)).toEqual(["random_resized_crop", "rotation", "horizontal_flip"]);
    await user.click(screen.getByRole("button", { name: "Move step 1 (Random resized crop) down" }));
    expect(steps().map((s) => s.name)).toEqual(["rotation", "random_resized_crop", "horizontal_flip"]);
    expect(screen.getByRole("button", { name: "Move step 1 (Rotation) up" })).toBeDisabled();
    expect(screen.getByRole("button", { name: "Move step 3 (Horizontal flip) down" })).toBeDisabled();
    await user.click(screen.getByRole("button", { name: "Remove step 2 (Random resized crop)" }));
    expect(steps().map((s) => s.name)).toEqual(["rotation", "horizontal_flip"]);
  });

  it("edits a step's parameter and shows its error in that step", async () => {
    const user = userEvent.setup();
    render(<Harness initial={baseConfig()} />);
    const p = within(rows()[1]!).getByLabelText("Probability");
    await user.clear(p);
    await user.type(p, "3");
    expect(within(rows()[1]!).getByTestId("error-data.augment.1.p")).toHaveTextContent("must be ≤ 1");
    expect(steps()[1]).toEqual({ name: "horizontal_flip", p: 3 });
  });
});
