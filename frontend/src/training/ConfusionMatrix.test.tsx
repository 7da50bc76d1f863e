import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { cellColour, ConfusionMatrix } from "./ConfusionMatrix";

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
});
