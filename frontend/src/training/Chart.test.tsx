import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Chart, formatTicks, formatValue } from "./Chart";

describe("formatTicks", () => {
  it("gives a learning-rate axis enough digits to tell its ticks apart", () => {
    // uPlot's default would read "0, 0, 0, 0.001, 0.001".
    expect(formatTicks([0.0002, 0.0004, 0.0006, 0.0008, 0.001])).toEqual(["2e-4", "4e-4", "6e-4", "8e-4", "1e-3"]);
    expect(formatTicks([0.00095, 0.001, 0.00105])).toEqual(["9.5e-4", "1e-3", "1.05e-3"]);
    expect(formatTicks([0, 0.0005, 0.001])).toEqual(["0", "5e-4", "1e-3"]);
  });

  it("writes ordinary ticks with the same decimals, as few as tell them apart", () => {
    expect(formatTicks([0, 0.5, 1, 1.5])).toEqual(["0", "0.5", "1.0", "1.5"]);
    expect(formatTicks([0.02, 0.04, 0.06])).toEqual(["0.02", "0.04", "0.06"]);
    expect(formatTicks([10, 20, 30])).toEqual(["10", "20", "30"]);
    expect(formatTicks([2e6, 4e6])).toEqual(["2e+6", "4e+6"]);
  });

  it("writes each tick on its own on a log axis, and keeps filtered ticks empty", () => {
    expect(formatTicks([0.1, null, 0.3, 1, 2], true)).toEqual(["0.1", null, "0.3", "1", "2"]);
    expect(formatTicks([null, null])).toEqual([null, null]);
  });
});

describe("formatValue", () => {
  it("uses four significant digits, exponent form when tiny", () => {
    expect(formatValue(0.51234)).toBe("0.5123");
    expect(formatValue(0.00032)).toBe("3.2e-4");
    expect(formatValue(1234.5)).toBe("1235");
    expect(formatValue(0)).toBe("0");
    expect(formatValue(null)).toBe("—");
  });
});

describe("Chart", () => {
  it("says why it is empty, counts its points and shows its controls", () => {
    const { rerender } = render(
      <Chart title="Validation" testId="chart-val" series={[]} emptyText="No validation yet." toolbar={<button type="button">Log scale</button>} />,
    );
    const fig = screen.getByTestId("chart-val");
    expect(fig).toHaveAttribute("data-points", "0");
    expect(screen.getByTestId("chart-val-empty")).toHaveTextContent("No validation yet.");
    expect(screen.getByRole("button", { name: "Log scale" })).toBeInTheDocument();
    expect(fig).not.toHaveTextContent("val/accuracy/top1");

    rerender(
      <Chart
        title="Loss"
        testId="chart-val"
        series={[
          { label: "train/loss", points: new Map([[1, 2], [2, 1]]), faint: true },
          { label: "val/loss", points: new Map([[2, 1.5]]), color: "#000000" },
        ]}
      />,
    );
    expect(screen.getByTestId("chart-val")).toHaveAttribute("data-points", "3");
    expect(screen.queryByTestId("chart-val-empty")).not.toBeInTheDocument();
  });

  it("keeps the default empty text for the pages that use it as it was", () => {
    render(<Chart title="Loss" series={[{ label: "train/loss", points: undefined }]} />);
    expect(screen.getByText("No points yet.")).toBeInTheDocument();
    expect(screen.getByText("Loss")).toBeInTheDocument();
  });
});
