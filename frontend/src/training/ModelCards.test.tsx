import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { ModelCards, formatFlops, formatParams, speedHint, trainingFlops } from "./ModelCards";
import { CATALOG } from "./runFormFixtures";

describe("model cards", () => {
  it("format counts compactly, on one line", () => {
    expect(formatParams(11_200_000)).toBe("11.2\u00a0M\u00a0params");
    expect(formatFlops(1_810_000_000)).toBe("1.8\u00a0GFLOPs");
    expect(formatFlops(152_990_000_000)).toBe("153\u00a0GFLOPs");
    expect(formatFlops(90_400_000)).toBe("90.4\u00a0MFLOPs");
    expect(speedHint(0.5e9)?.label).toBe("fast");
    expect(speedHint(8e9)?.label).toBe("medium");
    expect(speedHint(153e9)?.label).toBe("heavy");
    // Judged at the size the entry trains at here: DBNet counted at 640 px, trained at 256 px on a CPU.
    const dbnet = { flops: 49.7e9, default_input_size: 640, defaults: { "data.input_size": 256 } };
    const trained = trainingFlops(dbnet as unknown as Parameters<typeof trainingFlops>[0]);
    expect(trained.side).toBe(256);
    expect(speedHint(trained.flops, trained.side)?.label).toBe("medium");
    expect(speedHint(trained.flops, trained.side)?.title).toContain("at 256 px");
  });

  it("show each entry as a card with a radio, the recommended one marked with its reason", async () => {
    const onPick = vi.fn();
    render(<ModelCards entries={CATALOG.entries} selected="tiny_cnn" onPick={onPick} pending={false} recommended="tiny_cnn" recommendedReason="Light enough" />);
    const [tiny, resnet] = screen.getAllByTestId("catalog-row");
    expect(tiny).toHaveAttribute("data-name", "tiny_cnn");
    expect(within(tiny!).getByRole("radio")).toBeChecked();
    expect(within(tiny!).getByTestId("catalog-params")).toHaveTextContent("233 K params");
    expect(within(tiny!).getByTestId("light-chip")).toHaveTextContent("trains on a CPU in minutes");
    expect(within(tiny!).getByTestId("recommended")).toHaveTextContent("Recommended: Light enough");
    expect(within(tiny!).getByTestId("speed-hint")).toHaveTextContent("fast");
    expect(within(resnet!).getByTestId("catalog-flops")).toHaveTextContent("153 GFLOPs");
    expect(within(resnet!).getByTestId("speed-hint")).toHaveTextContent("heavy");
    expect(within(resnet!).queryByTestId("light-chip")).not.toBeInTheDocument();
    await userEvent.setup().click(within(resnet!).getByText("resnet50"));
    expect(onPick).toHaveBeenCalledWith(CATALOG.entries[1]);
  });

  it("say counting… while the worker measures", () => {
    const pending = CATALOG.entries.map((e) => ({ ...e, params: null, flops: null }));
    render(<ModelCards entries={pending} selected={null} onPick={() => undefined} pending recommended={null} />);
    const params = screen.getAllByTestId("catalog-params")[0]!;
    expect(params).toHaveTextContent("counting…");
    expect(params).toHaveAttribute("title", expect.stringMatching(/worker counts/));
  });
});
