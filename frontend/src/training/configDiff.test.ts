import { describe, expect, it } from "vitest";
import { diffConfigs, flatten, showValue } from "./configDiff";

describe("config diff", () => {
  it("flattens to key paths, arrays by index", () => {
    expect(flatten({ a: { b: 1, c: [{ d: 2 }, 3] }, e: null, f: {}, g: [] })).toEqual({
      "a.b": 1,
      "a.c.0.d": 2,
      "a.c.1": 3,
      e: null,
      f: {},
      g: [],
    });
  });

  it("keeps only the keys that differ, missing keys included", () => {
    const a = { schedule: { lr: 0.001, epochs: 10 }, data: { augment: [{ name: "flip" }] }, name: "a" };
    const b = { schedule: { lr: 0.01, epochs: 10 }, data: { augment: [{ name: "flip" }, { name: "rotation" }] }, name: "a" };
    const c = { schedule: { lr: 0.001, epochs: 10 }, data: { augment: [{ name: "flip" }] }, name: "a" };
    const rows = diffConfigs([a, b, c]);
    expect(rows.map((r) => r.key)).toEqual(["data.augment.1.name", "schedule.lr"]);
    expect(rows[0]!.values).toEqual([undefined, "rotation", undefined]);
    expect(rows[1]!.values).toEqual([0.001, 0.01, 0.001]);
    expect(diffConfigs([a, c])).toEqual([]);
    expect(showValue(undefined)).toBe("—");
    expect(showValue([1, 2])).toBe("[1,2]");
  });
});
