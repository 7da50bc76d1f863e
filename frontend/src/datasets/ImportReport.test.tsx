import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { Finding } from "../api/types";
import { groupFindings, ImportReport } from "./ImportReport";
import { renderWithProviders } from "../test/utils";

const findings: Finding[] = [
  { level: "warning", code: "image_unlabelled", message: "2 images have no labelme file.", file: "a.jpg", shape: null, field: null },
  {
    level: "error",
    code: "polygon_too_few_points",
    message: "b.json, shape 3: a polygon needs 3 points.",
    file: "b.json",
    shape: 3,
    field: "points",
  },
  { level: "warning", code: "shape_type_unknown", message: "c.json, shape 0: unknown type.", file: "c.json", shape: 0, field: "shape_type" },
  { level: "warning", code: "shape_type_unknown", message: "d.json, shape 1: <img src=x onerror=alert(1)>", file: "d.json", shape: 1, field: "shape_type" },
];

describe("groupFindings", () => {
  it("puts errors first, then the commonest code", () => {
    expect(groupFindings(findings).map((g) => [g.level, g.code, g.findings.length])).toEqual([
      ["error", "polygon_too_few_points", 1],
      ["warning", "shape_type_unknown", 2],
      ["warning", "image_unlabelled", 1],
    ]);
  });
});

describe("ImportReport", () => {
  it("groups findings, names file, shape and field, and filters them", async () => {
    const { container } = renderWithProviders(<ImportReport findings={findings} />);
    expect(screen.getByTestId("report-summary")).toHaveTextContent("1 error, 3 warnings");
    const groups = screen.getAllByTestId("report-group");
    expect(groups.map((g) => g.getAttribute("data-code"))).toEqual([
      "polygon_too_few_points",
      "shape_type_unknown",
      "image_unlabelled",
    ]);
    const error = within(groups[0]!);
    expect(error.getByTestId("finding-file")).toHaveTextContent("b.json");
    expect(error.getByTestId("finding-shape")).toHaveTextContent("3");
    expect(error.getByTestId("finding-field")).toHaveTextContent("points");
    expect(within(groups[1]!).getByTestId("report-group-count")).toHaveTextContent("2");

    // User-provided text stays text.
    expect(screen.getByText("d.json, shape 1: <img src=x onerror=alert(1)>")).toBeInTheDocument();
    expect(container.querySelector("img")).toBeNull();

    await userEvent.selectOptions(screen.getByLabelText("Level"), "error");
    expect(screen.getAllByTestId("report-group")).toHaveLength(1);

    await userEvent.selectOptions(screen.getByLabelText("Level"), "all");
    await userEvent.type(screen.getByLabelText("Search"), "c.json");
    expect(screen.getAllByTestId("finding")).toHaveLength(1);
    expect(screen.getAllByTestId("report-group").map((g) => g.getAttribute("data-code"))).toEqual(["shape_type_unknown"]);

    await userEvent.clear(screen.getByLabelText("Search"));
    await userEvent.type(screen.getByLabelText("Search"), "nothing like this");
    expect(screen.getByText("No finding matches these filters.")).toBeInTheDocument();
  });

  it("says so when the import found nothing", () => {
    renderWithProviders(<ImportReport findings={[]} />);
    expect(screen.getByTestId("report-summary")).toHaveTextContent("No problems found");
    expect(screen.queryByTestId("report-group")).toBeNull();
  });
});
