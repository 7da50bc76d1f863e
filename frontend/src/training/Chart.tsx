import { useEffect, useRef, useState, type ReactNode } from "react";
import type uPlotType from "uplot";
import "uplot/dist/uPlot.min.css";
import { trimExponent } from "./runStats";

export interface ChartSeries {
  label: string;
  /** step → value */
  points: Map<number, number> | undefined;
  /** Line colour; by default the palette's, by position. */
  color?: string;
  /** Drawn thin and light, behind the others (e.g. the raw values under a smoothed curve). */
  faint?: boolean;
  /** Dots on the values: by default while the series has few points (never on a faint one). */
  markers?: boolean;
}

interface ChartProps {
  title: string;
  series: ChartSeries[];
  /** Label of the x axis. */
  xLabel?: string;
  logY?: boolean;
  height?: number;
  testId?: string;
  /** The x axis is a fraction (e.g. recall), not a step count. */
  fractionX?: boolean;
  /** How a y value reads in the legend (the axis ticks get as many digits as tell them apart). */
  yFormat?: (value: number) => string;
  /** Controls shown beside the title (e.g. a log-scale toggle). */
  toolbar?: ReactNode;
  /** What the chart says while it has no points. */
  emptyText?: string;
  /** Called with the x value under the cursor when the chart is clicked. */
  onPick?: (x: number) => void;
}

const STEP_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8];

export const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

/** Alpha (hex) of a faint series' colour. */
const FAINT_ALPHA = "59";

/** Up to this many points a series is drawn with a dot on each. */
const MARKER_LIMIT = 40;

function aligned(series: ChartSeries[], positiveOnly: boolean): (number | null)[][] {
  const xs = [...new Set(series.flatMap((s) => (s.points ? [...s.points.keys()] : [])))].sort((a, b) => a - b);
  const keep = (v: number | undefined): number | null =>
    v == null || !Number.isFinite(v) || (positiveOnly && v <= 0) ? null : v;
  return [xs, ...series.map((s) => xs.map((x) => keep(s.points?.get(x))))];
}

/** A value in the legend: four significant digits, exponent form when tiny or huge ("3.2e-4", "0.5123"). */
export function formatValue(value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return "—";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs < 1e-3 || abs >= 1e6) return trimExponent(value.toExponential(2));
  return String(Number(value.toPrecision(4)));
}

function allDistinct(labels: (string | null)[]): boolean {
  const seen = labels.filter((l): l is string => l != null);
  return new Set(seen).size === seen.length;
}

/**
 * Axis tick labels with as many digits as it takes to tell neighbours apart (no "0.001, 0.001, 0"): fixed
 * decimals for ordinary numbers, exponent form ("2e-4") when all are below 0.01 or any is 1e6 or more.
 * On a log axis each tick is written on its own (they span magnitudes). A null split (filtered) stays null.
 */
export function formatTicks(splits: readonly (number | null)[], log = false): (string | null)[] {
  const values = splits.filter((v): v is number => v != null && Number.isFinite(v));
  if (!values.length) return splits.map(() => null);
  const maxAbs = Math.max(...values.map(Math.abs));
  const exponent = maxAbs >= 1e6 || (maxAbs > 0 && maxAbs < 1e-2);
  const write = (digits: number) =>
    splits.map((v) => {
      if (v == null || !Number.isFinite(v)) return null;
      if (v === 0 || Math.abs(v) < maxAbs * 1e-12) return "0";
      if (exponent) return trimExponent(v.toExponential(digits));
      if (log) return String(Number(v.toPrecision(digits + 1)));
      return v.toFixed(digits);
    });
  for (let digits = 0; digits <= 10; digits++) {
    const labels = write(digits);
    if (allDistinct(labels)) return labels;
  }
  return write(10);
}

function lastDefined(values: ArrayLike<number | null | undefined> | undefined): number | null {
  if (!values) return null;
  for (let i = values.length - 1; i >= 0; i--) {
    const v = values[i];
    if (v != null && Number.isFinite(v)) return v;
  }
  return null;
}

function countDefined(values: ArrayLike<number | null | undefined> | undefined): number {
  let n = 0;
  for (let i = 0; i < (values?.length ?? 0); i++) if (values![i] != null) n++;
  return n;
}

function seriesColor(s: ChartSeries, i: number): string {
  return s.color ?? PALETTE[i % PALETTE.length]!;
}

/**
 * A line chart (uPlot) of step-indexed series. uPlot is loaded on first use (it needs a real browser) and only
 * once there are points; new points update the chart in place, and `data-points` on the figure counts what is
 * drawn. The legend shows the values under the cursor, and the last values when the cursor is elsewhere.
 */
export function Chart({
  title,
  series,
  xLabel = "step",
  logY = false,
  height = 220,
  testId,
  fractionX = false,
  yFormat,
  toolbar,
  emptyText = "No points yet.",
  onPick,
}: ChartProps) {
  const pick = useRef(onPick);
  pick.current = onPick;
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlotType | null>(null);
  const format = useRef(yFormat ?? formatValue);
  format.current = yFormat ?? formatValue;
  const [failed, setFailed] = useState(false);
  const data = aligned(series, logY);
  const points = series.reduce((n, s) => n + (s.points?.size ?? 0), 0);
  const hasPoints = points > 0;
  const look = series.map((s, i) => `${s.label}:${seriesColor(s, i)}:${s.faint ? 1 : 0}:${String(s.markers)}`).join("|");
  const latest = useRef({ series, logY });
  latest.current = { series, logY };

  // (Re)build when the set of series changes; data alone is pushed with setData below.
  useEffect(() => {
    const el = holder.current;
    if (!el || !hasPoints || typeof window === "undefined" || typeof window.matchMedia !== "function") return undefined;
    let cancelled = false;
    let observer: ResizeObserver | null = null;
    void import("uplot")
      .then(({ default: UPlot }) => {
        if (cancelled || !holder.current) return;
        const { series: current, logY: log } = latest.current;
        const width = Math.max(240, el.clientWidth || 480);
        const xValue = (self: uPlotType, raw: number | null, _si: number, idx: number | null): string => {
          const v = idx == null ? lastDefined(self.data[0]) : raw;
          if (v == null) return "—";
          return fractionX ? v.toFixed(3) : String(Math.round(v));
        };
        const yValue = (self: uPlotType, raw: number | null, si: number, idx: number | null): string => {
          const v = idx == null ? lastDefined(self.data[si]) : raw;
          return v == null ? "—" : format.current(v);
        };
        const opts: uPlotType.Options = {
          width,
          height,
          scales: { x: fractionX ? { time: false, range: [0, 1] } : { time: false }, y: log ? { distr: 3 } : {} },
          axes: [
            // Steps are whole numbers: no tick at 2.5.
            fractionX ? { label: xLabel } : { label: xLabel, incrs: STEP_INCRS },
            { size: 64, values: (_u, splits) => formatTicks(splits, log) },
          ],
          legend: { show: true, live: true },
          series: [
            { label: xLabel, value: xValue as uPlotType.Series.Value },
            ...current.map((s, i) => ({
              label: s.label,
              stroke: s.faint ? `${seriesColor(s, i)}${FAINT_ALPHA}` : seriesColor(s, i),
              width: s.faint ? 1.25 : 2,
              spanGaps: true,
              value: yValue as uPlotType.Series.Value,
              // Counted as the data grow (the chart is not rebuilt for new points).
              points: {
                show:
                  s.faint || s.markers === false
                    ? false
                    : s.markers
                      ? true
                      : (self: uPlotType, si: number) => countDefined(self.data[si]) < MARKER_LIMIT,
              },
            })),
          ],
        };
        plot.current?.destroy();
        const made = new UPlot(opts, aligned(current, log) as uPlotType.AlignedData, el);
        plot.current = made;
        made.over.addEventListener("click", () => {
          const idx = made.cursor.idx;
          const x = idx == null ? undefined : made.data[0][idx];
          if (x != null) pick.current?.(x);
        });
        if (typeof ResizeObserver !== "undefined") {
          observer = new ResizeObserver(() => {
            const w = Math.max(240, el.clientWidth);
            if (plot.current && Math.abs(plot.current.width - w) > 4) plot.current.setSize({ width: w, height });
          });
          observer.observe(el);
        }
      })
      .catch(() => setFailed(true));
    return () => {
      cancelled = true;
      observer?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [look, hasPoints, logY, height, xLabel, fractionX]);

  useEffect(() => {
    plot.current?.setData(data as uPlotType.AlignedData);
  });

  return (
    <figure className={onPick ? "chart chart--pick" : "chart"} data-testid={testId} data-points={points}>
      <figcaption className="chart__head">
        <span className="chart__title">{title}</span>
        {toolbar ? <span className="chart__toolbar">{toolbar}</span> : null}
      </figcaption>
      {!hasPoints ? (
        <p className="muted small chart__empty" data-testid={testId ? `${testId}-empty` : undefined}>
          {emptyText}
        </p>
      ) : null}
      {failed ? <p className="muted small">The chart could not be drawn.</p> : null}
      <div ref={holder} className="chart__plot" style={hasPoints ? undefined : { minHeight: Math.round(height / 2) }} />
    </figure>
  );
}
