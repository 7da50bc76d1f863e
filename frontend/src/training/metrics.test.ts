import { describe, expect, it } from "vitest";
import { alignSeries, lastValue, mergePoints, pointCount, seriesOf, type MetricSeries } from "./metrics";

describe("metric points", () => {
  it("dedupes by (name, step): a replayed event adds nothing", () => {
    const batch = [
      { step: 10, name: "train/loss", value: 2 },
      { step: 10, name: "train/lr", value: 0.001 },
      { step: 20, name: "train/loss", value: 1.5 },
    ];
    let store: MetricSeries = new Map();
    store = mergePoints(store, batch);
    store = mergePoints(store, batch); // a reconnect replays the same event
    store = mergePoints(store, [{ step: 20, name: "train/loss", value: 1.4 }, { step: 30, name: "train/loss", value: 1 }]);
    expect(pointCount(store)).toBe(4);
    expect(seriesOf(store, "train/loss")).toEqual({ steps: [10, 20, 30], values: [2, 1.4, 1] });
    expect(lastValue(store, "train/loss")).toBe(1);
    expect(lastValue(store, "val/loss")).toBeNull();
  });

  it("does not mutate the previous store (React state)", () => {
    const a = mergePoints(new Map(), [{ step: 1, name: "x", value: 1 }]);
    const b = mergePoints(a, [{ step: 2, name: "x", value: 2 }]);
    expect(a.get("x")!.size).toBe(1);
    expect(b.get("x")!.size).toBe(2);
    expect(mergePoints(b, [])).toBe(b);
  });

  it("aligns series with different steps on one x axis", () => {
    const store = mergePoints(new Map(), [
      { step: 5, name: "a", value: 1 },
      { step: 10, name: "a", value: 2 },
      { step: 10, name: "b", value: 9 },
    ]);
    expect(alignSeries([store.get("a"), store.get("b"), undefined])).toEqual([
      [5, 10],
      [1, 2],
      [null, 9],
      [null, null],
    ]);
  });
});
