import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ClassBars } from "./ClassBars";
import { renderWithProviders } from "../test/utils";

const classes = [
  { id: 1, name: "circle", images: 3, instances: 3, shapes: 3, area: 10 },
  { id: 2, name: "square <b>", images: 6, instances: 8, shapes: 8, area: 20 },
  { id: 3, name: "triangle", images: 0, instances: 0, shapes: 0, area: 0 },
];

describe("ClassBars", () => {
  it("draws one bar per class in class order, scaled to the largest", () => {
    renderWithProviders(<ClassBars title="Instances per class" classes={classes} metric="instances" testId="bars" />);
    expect(screen.getByRole("list", { name: "Instances per class" })).toBeInTheDocument();
    expect(screen.getAllByTestId("class-bar-name").map((n) => n.textContent)).toEqual(["circle", "square <b>", "triangle"]);
    expect(screen.getAllByTestId("class-bar-value").map((n) => n.textContent)).toEqual(["3", "8", "0"]);
    const widths = screen.getAllByTestId("class-bar-fill").map((f) => (f as HTMLElement).style.width);
    expect(widths).toEqual(["37.5%", "100%", "0%"]);
  });

  it("uses the images metric when asked", () => {
    renderWithProviders(<ClassBars title="Images per class" classes={classes} metric="images" />);
    expect(screen.getAllByTestId("class-bar-fill").map((f) => (f as HTMLElement).style.width)).toEqual(["50%", "100%", "0%"]);
  });

  it("says when there are no classes", () => {
    renderWithProviders(<ClassBars title="Images per class" classes={[]} metric="images" />);
    expect(screen.getByText("No classes.")).toBeInTheDocument();
  });
});
