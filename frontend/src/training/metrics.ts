/** Metric points of a run, deduplicated by (name, step): a reconnecting stream or a refetch may repeat them. */

export interface MetricPoint {
  step: number;
  name: string;
  value: number;
}

/** name → step → value. */
export type MetricSeries = Map<string, Map<number, number>>;

/** A new store with `points` merged in (a later value for the same (name, step) replaces the earlier). */
export function mergePoints(store: MetricSeries, points: readonly MetricPoint[]): MetricSeries {
  if (points.length === 0) return store;
  const next: MetricSeries = new Map(store);
  const copied = new Set<string>();
  for (const p of points) {
    if (typeof p.step !== "number" || typeof p.name !== "string" || typeof p.value !== "number") continue;
    let series = next.get(p.name);
    if (!series) {
      series = new Map();
      next.set(p.name, series);
      copied.add(p.name);
    } else if (!copied.has(p.name)) {
      series = new Map(series);
      next.set(p.name, series);
      copied.add(p.name);
    }
    series.set(p.step, p.value);
  }
  return next;
}

/** Number of (name, step) points in the store. */
export function pointCount(store: MetricSeries, names?: readonly string[]): number {
  let n = 0;
  for (const [name, s] of store) if (!names || names.includes(name)) n += s.size;
  return n;
}

/** One series as steps and values, by step. */
export function seriesOf(store: MetricSeries, name: string): { steps: number[]; values: number[] } {
  const s = store.get(name);
  if (!s) return { steps: [], values: [] };
  const steps = [...s.keys()].sort((a, b) => a - b);
  return { steps, values: steps.map((k) => s.get(k)!) };
}

/**
 * Several series on one x axis (the union of their steps, sorted), as uPlot wants them:
 * `[xs, ys1, ys2, …]` with `null` where a series has no point at that step.
 */
export function alignSeries(series: readonly (Map<number, number> | undefined)[]): (number | null)[][] {
  const xs = [...new Set(series.flatMap((s) => (s ? [...s.keys()] : [])))].sort((a, b) => a - b);
  return [xs, ...series.map((s) => xs.map((x) => (s && s.has(x) ? s.get(x)! : null)))];
}

/** The last value of a series (by step), if any. */
export function lastValue(store: MetricSeries, name: string): number | null {
  const s = store.get(name);
  if (!s || s.size === 0) return null;
  return s.get(Math.max(...s.keys())) ?? null;
}
