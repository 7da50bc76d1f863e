import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { parseModelMetrics } from "../api/training";
import { cellColour, ConfusionMatrix, PerClassTable } from "./ConfusionMatrix";

describe("ConfusionMatrix", () => {
  it("renders counts with class names on both axes, coloured by the row's share", () => {
    const names = ["cat", "<b>dog</b>", "eel"];
    render(
      <ConfusionMatrix
        classNames={names}
        matrix={[
          [5, 1, 0],
          [0, 4, 0],
          [2, 0, 0],
        ]}
      />,
    );
    const table = screen.getByRole("table", { name: "Confusion matrix" });
    expect(within(table).getAllByTestId("cm-col").map((c) => c.textContent)).toEqual(names);
    expect(within(table).getAllByTestId("cm-row").map((c) => c.textContent)).toEqual(names);
    const cells = within(table).getAllByTestId("cm-cell");
    expect(cells.map((c) => c.textContent)).toEqual(["5", "1", "0", "0", "4", "0", "2", "0", "0"]);
    expect(cells[0]).toHaveClass("cm__cell--diag");
    expect(cells[4]).toHaveStyle({ background: cellColour(1) });
    expect(cells[2]).toHaveStyle({ background: cellColour(0) });
    expect(cells[1]!.title).toContain("true cat, predicted <b>dog</b>: 1");
    // Names are text, never markup.
    expect(document.querySelector("b")).toBeNull();
  });

  it("reads per-class figures and the matrix from a model's metrics, with bars", () => {
    const summary = parseModelMetrics(
      {
        best: {
          "accuracy/top1": 0.75,
          per_class: {
            cat: { precision: 0.5, recall: 1, f1: 0.667, support: 2 },
            dog: { precision: 1, recall: 0.5, f1: 0.667, support: 2 },
          },
          confusion_matrix: [
            [2, 0],
            [1, 1],
          ],
        },
        final: { "accuracy/top1": 0.5 },
      },
      ["cat", "dog"],
    );
    expect(summary.top1).toBe(0.75);
    expect(summary.confusion).toEqual([
      [2, 0],
      [1, 1],
    ]);
    render(<PerClassTable rows={summary.perClass} />);
    const rows = screen.getAllByTestId("per-class-row");
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent("cat0.5001.0000.6672");
  });
});
