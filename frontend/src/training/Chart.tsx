import { useEffect, useRef, useState } from "react";
import type uPlotType from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  /** step → value */
  points: Map<number, number> | undefined;
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
}

const STEP_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8];

export const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

function aligned(series: ChartSeries[]): (number | null)[][] {
  const xs = [...new Set(series.flatMap((s) => (s.points ? [...s.points.keys()] : [])))].sort((a, b) => a - b);
  return [xs, ...series.map((s) => xs.map((x) => (s.points?.has(x) ? s.points.get(x)! : null)))];
}

/**
 * A line chart (uPlot) of step-indexed series. uPlot is loaded on first use (it needs a real browser);
 * new points update the chart in place, and `data-points` on the figure counts what is drawn.
 */
export function Chart({ title, series, xLabel = "step", logY = false, height = 220, testId, fractionX = false }: ChartProps) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlotType | null>(null);
  const [failed, setFailed] = useState(false);
  const data = aligned(series);
  const points = series.reduce((n, s) => n + (s.points?.size ?? 0), 0);
  const labels = series.map((s) => s.label).join("|");

  // (Re)build when the set of series changes; data alone is pushed with setData below.
  useEffect(() => {
    const el = holder.current;
    if (!el || typeof window === "undefined" || typeof window.matchMedia !== "function") return undefined;
    let cancelled = false;
    let observer: ResizeObserver | null = null;
    void import("uplot")
      .then(({ default: UPlot }) => {
        if (cancelled || !holder.current) return;
        const width = Math.max(240, el.clientWidth || 480);
        const opts: uPlotType.Options = {
          width,
          height,
          scales: { x: fractionX ? { time: false, range: [0, 1] } : { time: false }, y: logY ? { distr: 3 } : {} },
          // Steps are whole numbers: no tick at 2.5.
          axes: [fractionX ? { label: xLabel } : { label: xLabel, incrs: STEP_INCRS }, { size: 60 }],
          legend: { show: true },
          series: [
            { label: xLabel },
            ...series.map((s, i) => ({
              label: s.label,
              stroke: PALETTE[i % PALETTE.length]!,
              width: 2,
              spanGaps: true,
              points: { show: (s.points?.size ?? 0) < 40 },
            })),
          ],
        };
        plot.current?.destroy();
        plot.current = new UPlot(opts, aligned(series) as uPlotType.AlignedData, el);
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
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [labels, logY, height, xLabel, fractionX]);

  useEffect(() => {
    plot.current?.setData(data as uPlotType.AlignedData);
  });

  return (
    <figure className="chart" data-testid={testId} data-points={points}>
      <figcaption className="chart__title">{title}</figcaption>
      {points === 0 ? <p className="muted small chart__empty">No points yet.</p> : null}
      {failed ? <p className="muted small">The chart could not be drawn.</p> : null}
      <div ref={holder} className="chart__plot" />
    </figure>
  );
}
