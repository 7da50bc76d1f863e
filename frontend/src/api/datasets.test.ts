import { describe, expect, it } from "vitest";
import { classColour, imagesQuery, parseFindings, parseStats } from "./datasets";
import { ratiosFrom } from "../datasets/SplitPanel";

describe("parseStats", () => {
  it("reads the server's stats and defaults what is missing", () => {
    const s = parseStats({
      images: 8,
      annotations: 16,
      classes: [{ id: 1, name: "circle", images: 3, instances: 4 }],
      splits: { train: { images: 6, annotations: 12, negatives: 0 }, val: { images: 2 } },
    });
    expect(s.images).toBe(8);
    expect(s.classes).toEqual([{ id: 1, name: "circle", images: 3, instances: 4, shapes: 0, area: 0 }]);
    expect(s.splits.val).toEqual({ images: 2, annotations: 0, negatives: 0 });
    expect(s.splits.test).toEqual({ images: 0, annotations: 0, negatives: 0 });
    expect(parseStats({}).classes).toEqual([]);
  });
});

describe("parseFindings", () => {
  it("keeps well-formed findings only", () => {
    expect(
      parseFindings({
        findings: [
          { level: "error", code: "x", message: "m" },
          { level: "info", code: "y", message: "m" },
          "junk",
        ],
      }),
    ).toEqual([{ level: "error", code: "x", message: "m" }]);
    expect(parseFindings({})).toEqual([]);
  });
});

describe("imagesQuery", () => {
  it("leaves unset filters out", () => {
    expect(imagesQuery({})).toEqual({ page: 1, page_size: 60 });
    expect(imagesQuery({ split: "test", className: "a b", problem: "any", page: 3 })).toEqual({
      page: 3,
      page_size: 60,
      split: "test",
      class: "a b",
      problem: "any",
    });
  });
});

describe("classColour", () => {
  it("follows the Pascal VOC palette the server draws with", () => {
    expect(classColour(1)).toBe("rgb(128, 0, 0)");
    expect(classColour(2)).toBe("rgb(0, 128, 0)");
    expect(classColour(3)).toBe("rgb(128, 128, 0)");
    expect(classColour(15)).toBe("rgb(192, 128, 128)");
  });
});

describe("ratiosFrom", () => {
  it("turns percentages into ratios summing to 1", () => {
    const r = ratiosFrom({ train: "70", val: "20", test: "10" });
    expect("ratios" in r && r.ratios.train).toBe(0.7);
    expect("ratios" in r && Math.abs(r.ratios.train + r.ratios.val + r.ratios.test - 1) < 1e-9).toBe(true);
    expect(ratiosFrom({ train: "70", val: "20", test: "20" })).toEqual({
      error: "The shares add up to 110%, not 100%.",
    });
    expect(ratiosFrom({ train: "", val: "20", test: "80" })).toHaveProperty("error");
  });
});

