import { Fragment, type ReactNode } from "react";
import type { RunCatalogItem } from "../api/runForm";

const NBSP = "\u00a0";

/** 11_200_000 → "11.2 M"; 1_810_000_000 → "1.8 G"; 152_990_000_000 → "153 G"; 850 → "850". */
export function formatCount(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return "—";
  const abs = Math.abs(n);
  const units: [number, string][] = [
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "K"],
  ];
  for (const [size, unit] of units) {
    if (abs >= size) {
      const v = n / size;
      const digits = Math.abs(v) >= 100 ? 0 : 1;
      return `${Number(v.toFixed(digits))}${NBSP}${unit}`;
    }
  }
  return String(Math.round(n));
}

/** "11.2 M params" */
export function formatParams(n: number): string {
  return `${formatCount(n)}${NBSP}params`;
}

/** "1.8 GFLOPs", "350 MFLOPs" (the unit joined to its prefix, never split over two lines). */
export function formatFlops(n: number): string {
  const text = formatCount(n);
  const [num, prefix] = text.split(NBSP);
  return prefix ? `${num}${NBSP}${prefix}FLOPs` : `${num}${NBSP}FLOPs`;
}

/** How heavy an entry is to train, from its FLOPs per picture (at the side it trains at, when given). */
export function speedHint(flops: number | null | undefined, side?: number): { label: string; title: string } | null {
  if (flops == null || !Number.isFinite(flops)) return null;
  const g = flops / 1e9;
  const at = side ? ` at ${side} px, the size it trains at here` : "";
  if (g < 1) return { label: "fast", title: `Under 1 GFLOP per picture${at}: quick to train, even on a CPU` };
  if (g <= 20) return { label: "medium", title: `1 to 20 GFLOPs per picture${at}` };
  return { label: "heavy", title: `Over 20 GFLOPs per picture${at}: a GPU helps a lot` };
}

/** An entry's FLOPs (counted at its default input size) at the side this machine trains it at. */
export function trainingFlops(e: RunCatalogItem): { flops: number | null; side: number | undefined } {
  const side = e.defaults?.["data.input_size"];
  if (e.flops == null || typeof side !== "number" || !e.default_input_size) return { flops: e.flops ?? null, side: undefined };
  return { flops: e.flops * (side / e.default_input_size) ** 2, side };
}

/** A code name that may break after its underscores ("deeplabv3_mobilenet_" / "v3_large"), nowhere else. */
function breakable(name: string): ReactNode {
  const parts = name.split(/(?<=_)/);
  return parts.map((part, i) => (
    <Fragment key={i}>
      {i ? <wbr /> : null}
      {part}
    </Fragment>
  ));
}

const COUNTING_TITLE =
  "The worker counts each model's parameters and FLOPs once, by building it; the numbers appear here when it has";

export interface ModelCardsProps {
  entries: RunCatalogItem[];
  selected: string | null;
  onPick: (entry: RunCatalogItem) => void;
  /** Counts are still being measured. */
  pending: boolean;
  recommended?: string | null | undefined;
  recommendedReason?: string | undefined;
  disabled?: boolean;
}

/** The catalog as a grid of cards, one radio each (name "architecture"), the recommended one marked. */
export function ModelCards({ entries, selected, onPick, pending, recommended, recommendedReason, disabled }: ModelCardsProps) {
  const counting = (
    <span className="muted" title={COUNTING_TITLE}>
      counting…
    </span>
  );
  return (
    <div className="model-cards" role="radiogroup" aria-label="Model" data-testid="catalog">
      {entries.map((e) => {
        const trained = trainingFlops(e);
        const hint = speedHint(trained.flops, trained.side);
        const isRecommended = e.name === recommended;
        const checked = selected === e.name;
        return (
          <label
            key={e.name}
            className={`model-card${checked ? " model-card--selected" : ""}${isRecommended ? " model-card--recommended" : ""}`}
            data-testid="catalog-row"
            data-name={e.name}
            title={e.description || undefined}
          >
            <span className="model-card__head">
              <input
                type="radio"
                name="architecture"
                value={e.name}
                checked={checked}
                disabled={disabled}
                onChange={() => onPick(e)}
              />
              <strong className="model-card__name">{breakable(e.name)}</strong>
            </span>
            <span className="model-card__figures small">
              {e.params == null && e.flops == null && pending ? (
                <span data-testid="catalog-params" className="muted" title={COUNTING_TITLE}>
                  params and FLOPs: counting…
                </span>
              ) : (
                <>
                  <span data-testid="catalog-params" className="nowrap">
                    {e.params != null ? formatParams(e.params) : pending ? counting : "—"}
                  </span>
                  <span aria-hidden="true"> · </span>
                  <span
                    data-testid="catalog-flops"
                    className="nowrap"
                    title={`One picture's forward pass at ${e.default_input_size} px, counted with the catalog's generic head; a trained model's page counts its own, with its classes and input size, so the two differ a little`}
                  >
                    {e.flops != null ? formatFlops(e.flops) : pending ? counting : "—"}
                  </span>
                </>
              )}
            </span>
            <span className="model-card__chips">
              <span className="model-card__family muted small">{e.family}</span>
              <span className="chip" title="The input size a run of this model gets unless you set another">
                {e.default_input_size}
                {NBSP}px
              </span>
              {hint ? (
                <span className={`chip chip--speed chip--${hint.label}`} title={hint.title} data-testid="speed-hint">
                  {hint.label}
                </span>
              ) : null}
              {e.light ? (
                <span className="chip chip--light" data-testid="light-chip" title="Small enough to train on a CPU in minutes">
                  trains on a CPU in minutes
                </span>
              ) : null}
            </span>
            {isRecommended ? (
              <span className="model-card__recommended small" data-testid="recommended">
                <strong>Recommended</strong>
                {recommendedReason ? `: ${recommendedReason}` : null}
              </span>
            ) : e.description ? (
              <span className="model-card__desc muted small">{e.description}</span>
            ) : null}
          </label>
        );
      })}
    </div>
  );
}
