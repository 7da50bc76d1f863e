import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { filtersFromParams, ImageGrid } from "./ImageGrid";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

function image(id: number, split: "train" | "val" | "test" = "train") {
  return {
    id,
    file_name: `images/${id}.jpg`,
    source: `dir/img_${id}.jpg`,
    width: 96,
    height: 72,
    split,
    tags: [],
    problems: id === 2 ? ["shape_type_unknown"] : [],
    annotations: 2,
    classes: ["circle"],
  };
}

function searchOf(requests: Request[]): string[] {
  return requests
    .filter((r) => new URL(r.url).pathname === "/api/datasets/3/images")
    .map((r) => new URL(r.url).search);
}

describe("filtersFromParams", () => {
  it("reads known filters and ignores junk", () => {
    expect(filtersFromParams(new URLSearchParams("split=val&class=circle&problem=any&page=4"))).toEqual({
      split: "val",
      className: "circle",
      problem: "any",
      page: 4,
    });
    expect(filtersFromParams(new URLSearchParams("split=nope&page=-2"))).toEqual({
      split: undefined,
      className: undefined,
      problem: undefined,
      page: 1,
    });
  });
});

describe("ImageGrid", () => {
  it("builds the images query from the filters and pages on the server", async () => {
    const { requests } = mockApi({
      "GET /api/datasets/3/images": (req) => {
        const q = new URL(req.url).searchParams;
        const page = Number(q.get("page"));
        return jsonResponse(200, {
          total: 130,
          page,
          page_size: 60,
          images: [image(page * 100 + 1), image(2, "val")],
        });
      },
    });
    renderWithProviders(
      <ImageGrid datasetId={3} classes={["circle", "square & co"]} problemCodes={["shape_type_unknown"]} enabled />,
      { route: "/datasets/3" },
    );

    expect(await screen.findAllByTestId("thumb")).toHaveLength(2);
    expect(searchOf(requests)).toEqual(["?page=1&page_size=60"]);
    const img = screen.getAllByTestId("thumb-img")[0]!;
    expect(img).toHaveAttribute("loading", "lazy");
    expect(img).toHaveAttribute("src", "/api/datasets/3/images/101/thumbnail?size=256&overlay=1");
    expect(screen.getByTestId("grid-count")).toHaveTextContent("1–60 of 130");
    expect(screen.getAllByTestId("thumb-problem")).toHaveLength(1);

    await userEvent.selectOptions(screen.getByLabelText("Split"), "val");
    await waitFor(() => expect(searchOf(requests).at(-1)).toBe("?page=1&page_size=60&split=val"));

    await userEvent.selectOptions(screen.getByLabelText("Class"), "square & co");
    await waitFor(() =>
      expect(searchOf(requests).at(-1)).toBe("?page=1&page_size=60&split=val&class=square%20%26%20co"),
    );

    await userEvent.selectOptions(screen.getByLabelText("Problems"), "any");
    await waitFor(() =>
      expect(searchOf(requests).at(-1)).toBe("?page=1&page_size=60&split=val&class=square%20%26%20co&problem=any"),
    );

    await userEvent.click(screen.getByRole("button", { name: "Next →" }));
    await waitFor(() =>
      expect(searchOf(requests).at(-1)).toBe("?page=2&page_size=60&split=val&class=square%20%26%20co&problem=any"),
    );
    expect(await screen.findByTestId("pager-where")).toHaveTextContent("Page 2 of 3");
    expect(screen.getByTestId("grid-count")).toHaveTextContent("61–120 of 130");

    // A filter change goes back to page 1.
    await userEvent.selectOptions(screen.getByLabelText("Problems"), "shape_type_unknown");
    await waitFor(() =>
      expect(searchOf(requests).at(-1)).toBe(
        "?page=1&page_size=60&split=val&class=square%20%26%20co&problem=shape_type_unknown",
      ),
    );

    await userEvent.click(screen.getByRole("button", { name: "Clear filters" }));
    await waitFor(() => expect(screen.getByLabelText("Split")).toHaveValue(""));
    expect(screen.getByLabelText("Class")).toHaveValue("");
  });

  it("links each thumbnail to its image page", async () => {
    mockApi({
      "GET /api/datasets/3/images": () => jsonResponse(200, { total: 1, page: 1, page_size: 60, images: [image(9)] }),
    });
    renderWithProviders(<ImageGrid datasetId={3} classes={[]} problemCodes={[]} enabled />, { route: "/datasets/3" });
    const link = await screen.findByRole("link", { name: "Open dir/img_9.jpg" });
    expect(link).toHaveAttribute("href", "/datasets/3/images/9");
    expect(screen.queryByRole("navigation", { name: "Image pages" })).toBeNull();
  });
});
