/**
 * Curve smoothing as TensorBoard does it: an exponential moving average with debiasing, so that the first
 * points are not dragged towards zero. Gaps (null, NaN, ±Infinity) stay gaps and do not move the average.
 */

/** The largest weight the slider offers; 1 would freeze the curve at its first value. */
export const MAX_SMOOTHING = 0.99;

function clampWeight(weight: number): number {
  if (!Number.isFinite(weight) || weight <= 0) return 0;
  return Math.min(weight, MAX_SMOOTHING);
}

/**
 * `values` smoothed with weight `weight` (0 = the values as they are, 0.99 = very smooth):
 * `avg = avg * w + (1 - w) * v`, shown as `avg / (1 - w^n)` after the n-th finite value.
 * A non-finite value is answered with `null` (a gap in the chart).
 */
export function smoothEma(values: readonly (number | null | undefined)[], weight: number): (number | null)[] {
  const w = clampWeight(weight);
  const finite = (v: number | null | undefined): v is number => typeof v === "number" && Number.isFinite(v);
  const first = values.find(finite);
  // A constant series stays exactly constant (no rounding from the division), as in TensorBoard.
  const constant = first !== undefined && values.every((v) => !finite(v) || v === first);
  if (w === 0 || constant) return values.map((v) => (finite(v) ? v : null));
  let avg = 0;
  let n = 0;
  return values.map((v) => {
    if (!finite(v)) return null;
    avg = avg * w + (1 - w) * v;
    n += 1;
    return avg / (1 - w ** n);
  });
}

/** A step-indexed series smoothed in step order (see `smoothEma`); gaps are left out of the answer. */
export function smoothSeries(points: Map<number, number> | undefined, weight: number): Map<number, number> | undefined {
  if (!points) return undefined;
  const steps = [...points.keys()].sort((a, b) => a - b);
  const smoothed = smoothEma(
    steps.map((s) => points.get(s)),
    weight,
  );
  const out = new Map<number, number>();
  steps.forEach((s, i) => {
    const v = smoothed[i];
    if (v != null) out.set(s, v);
  });
  return out;
}
