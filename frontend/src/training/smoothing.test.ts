import { describe, expect, it } from "vitest";
import { MAX_SMOOTHING, smoothEma, smoothSeries } from "./smoothing";

describe("smoothEma", () => {
  it("leaves the values as they are at weight 0", () => {
    expect(smoothEma([3, 1, 4, 1, 5], 0)).toEqual([3, 1, 4, 1, 5]);
  });

  it("keeps a constant series constant", () => {
    expect(smoothEma([0.7, 0.7, 0.7, 0.7], 0.9)).toEqual([0.7, 0.7, 0.7, 0.7]);
    // With a gap in it too.
    expect(smoothEma([2, null, 2, NaN, 2], 0.6)).toEqual([2, null, 2, null, 2]);
  });

  it("starts at the first raw value (debiasing), not near zero", () => {
    const out = smoothEma([10, 0, 0], 0.9);
    expect(out[0]).toBeCloseTo(10, 10);
    // Then it moves towards the later values, but slowly.
    expect(out[1]).toBeLessThan(10);
    expect(out[1]).toBeGreaterThan(4);
  });

  it("matches the debiased moving average by hand", () => {
    const w = 0.5;
    // avg1 = 0.5 * 4 = 2 → 2 / 0.5 = 4; avg2 = 1 + 0.5 * 8 = 5 → 5 / 0.75.
    const out = smoothEma([4, 8], w);
    expect(out[0]).toBeCloseTo(4, 12);
    expect(out[1]).toBeCloseTo(5 / 0.75, 12);
  });

  it("keeps gaps as gaps and does not let them move the average", () => {
    const withGaps = smoothEma([1, NaN, null, undefined, Infinity, 3], 0.6);
    const without = smoothEma([1, 3], 0.6);
    expect(withGaps.slice(1, 5)).toEqual([null, null, null, null]);
    expect(withGaps[0]).toBeCloseTo(without[0]!, 12);
    expect(withGaps[5]).toBeCloseTo(without[1]!, 12);
  });

  it("answers all gaps for a series with no finite value, and nothing for nothing", () => {
    expect(smoothEma([NaN, null], 0.5)).toEqual([null, null]);
    expect(smoothEma([], 0.5)).toEqual([]);
  });

  it("clamps the weight: below 0 is 0, above the slider's end is the end", () => {
    expect(smoothEma([1, 5], -3)).toEqual([1, 5]);
    expect(smoothEma([1, 5], Number.NaN)).toEqual([1, 5]);
    expect(smoothEma([1, 5], 1)).toEqual(smoothEma([1, 5], MAX_SMOOTHING));
    expect(smoothEma([1, 5], 1)[1]).toBeGreaterThan(1); // 1 would have frozen it at 1
  });
});

describe("smoothSeries", () => {
  it("smooths in step order whatever order the points came in, dropping gaps", () => {
    const points = new Map([
      [30, 0],
      [10, 10],
      [20, NaN],
    ]);
    const out = smoothSeries(points, 0.5)!;
    expect([...out.keys()]).toEqual([10, 30]);
    expect(out.get(10)).toBeCloseTo(10, 12);
    expect(out.get(30)).toBeCloseTo(2.5 / 0.75, 12);
  });

  it("passes a missing series through", () => {
    expect(smoothSeries(undefined, 0.5)).toBeUndefined();
  });
});
