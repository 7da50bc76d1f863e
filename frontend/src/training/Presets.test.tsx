import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { Presets, applyPreset, matchesPreset, presetChanges } from "./Presets";
import { PRESETS, RUN_SCHEMA, baseConfig } from "./runFormFixtures";

function Harness() {
  const [config, setConfig] = useState<unknown>(baseConfig());
  return (
    <>
      <Presets root={RUN_SCHEMA} presets={PRESETS} config={config} onApply={setConfig} />
      <pre data-testid="value">{JSON.stringify(config)}</pre>
    </>
  );
}

describe("presets", () => {
  it("say what they change in the current config, in the schema's words and units", () => {
    const quick = PRESETS[0]!;
    expect(presetChanges(RUN_SCHEMA, quick, baseConfig()).map((c) => c.text)).toEqual(["Epochs 10 → 3 epochs", "Input size 64 → 128 px"]);
    expect(presetChanges(RUN_SCHEMA, PRESETS[1]!, baseConfig())).toEqual([]); // already so
    expect(matchesPreset(baseConfig(), PRESETS[1]!)).toBe(true);
    const applied = applyPreset(baseConfig(), quick) as ReturnType<typeof baseConfig>;
    expect((applied.schedule as { epochs: number }).epochs).toBe(3);
    expect((applied.data as { input_size: number }).input_size).toBe(128);
  });

  it("apply their changes on a click and show which one the config matches", async () => {
    const user = userEvent.setup();
    render(<Harness />);
    const quick = screen.getByRole("button", { name: /Quick look/ });
    expect(quick).toHaveTextContent("Epochs 10 → 3 epochs, Input size 64 → 128 px");
    expect(quick).toHaveAttribute("aria-pressed", "false");
    expect(screen.getByRole("button", { name: /Balanced/ })).toHaveAttribute("aria-pressed", "true");
    expect(screen.getByRole("button", { name: /Best/ })).toHaveTextContent("Epochs 10 → 50 epochs, Evaluate every 1 → 5 epochs");
    await user.click(quick);
    const value = JSON.parse(screen.getByTestId("value").textContent ?? "{}") as { schedule: { epochs: number }; data: { input_size: number } };
    expect(value.schedule.epochs).toBe(3);
    expect(value.data.input_size).toBe(128);
    expect(quick).toHaveAttribute("aria-pressed", "true");
    expect(screen.getByRole("button", { name: /Balanced/ })).toHaveAttribute("aria-pressed", "false");
    expect(screen.getByRole("button", { name: /Balanced/ })).toHaveTextContent("Epochs 3 → 10 epochs");
  });
});
