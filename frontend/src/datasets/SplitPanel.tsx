import { useId, useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { SPLITS, useChangeSplits, type DatasetStats } from "../api/datasets";
import { errorMessage } from "../api/errors";
import type { Split } from "../api/types";
import { formatCount } from "./format";

/** The studio's default split, as on import. */
const DEFAULT_PERCENT: Record<Split, string> = { train: "80", val: "10", test: "10" };

const SPLIT_LABELS: Record<Split, string> = { train: "Train", val: "Validation", test: "Test" };

export function splitLabel(split: Split): string {
  return SPLIT_LABELS[split];
}

/** Percentages as typed → ratios summing to 1, or an error to show. */
export function ratiosFrom(percent: Record<Split, string>): { ratios: Record<Split, number> } | { error: string } {
  const values: number[] = [];
  for (const s of SPLITS) {
    const raw = percent[s].trim();
    const v = Number(raw);
    if (raw === "" || !Number.isFinite(v) || v < 0 || v > 100) return { error: "Each share is a number from 0 to 100." };
    values.push(v);
  }
  const total = values.reduce((a, b) => a + b, 0);
  if (Math.abs(total - 100) > 1e-6) return { error: `The shares add up to ${Number(total.toFixed(3))}%, not 100%.` };
  const [train = 0, val = 0] = values;
  // Fractions from the percentages; test takes the remainder so the sum is exactly 1.
  const t = train / 100;
  const v = val / 100;
  return { ratios: { train: t, val: v, test: Math.max(0, 1 - t - v) } };
}

/** Images per split, a stacked bar, and a form that re-splits into a new version. */
export function SplitPanel({ datasetId, stats, canChange }: { datasetId: number; stats: DatasetStats; canChange: boolean }) {
  const id = useId();
  const navigate = useNavigate();
  const change = useChangeSplits(datasetId);
  const [percent, setPercent] = useState<Record<Split, string>>(DEFAULT_PERCENT);
  const [seed, setSeed] = useState("0");
  const [formError, setFormError] = useState<string | null>(null);
  const total = stats.images;

  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const parsed = ratiosFrom(percent);
    if ("error" in parsed) {
      setFormError(parsed.error);
      return;
    }
    const seedNumber = Number(seed);
    if (!Number.isInteger(seedNumber)) {
      setFormError("The seed is a whole number.");
      return;
    }
    setFormError(null);
    change.mutate(
      { ratios: parsed.ratios, seed: seedNumber },
      { onSuccess: (created) => navigate(`/datasets/${created.id}`) },
    );
  };

  return (
    <section className="card" aria-labelledby={`${id}-title`} data-testid="splits">
      <h2 id={`${id}-title`}>Splits</h2>
      <div className="split-bar" aria-hidden="true">
        {SPLITS.map((s) =>
          stats.splits[s].images > 0 ? (
            <span
              key={s}
              className={`split-bar__part split-bar__part--${s}`}
              style={{ flexGrow: stats.splits[s].images }}
              title={`${splitLabel(s)}: ${stats.splits[s].images}`}
            />
          ) : null,
        )}
      </div>
      <table className="table table--compact">
        <thead>
          <tr>
            <th scope="col">Split</th>
            <th scope="col" className="num">Images</th>
            <th scope="col" className="num">Share</th>
            <th scope="col" className="num">Annotations</th>
            <th scope="col" className="num">Negatives</th>
          </tr>
        </thead>
        <tbody>
          {SPLITS.map((s) => (
            <tr key={s} data-testid={`split-${s}`}>
              <th scope="row">
                <span className={`split-dot split-dot--${s}`} aria-hidden="true" /> {splitLabel(s)}
              </th>
              <td className="num" data-testid={`split-${s}-images`}>
                {formatCount(stats.splits[s].images)}
              </td>
              <td className="num muted">{total ? `${Math.round((stats.splits[s].images / total) * 100)}%` : "—"}</td>
              <td className="num">{formatCount(stats.splits[s].annotations)}</td>
              <td className="num">{formatCount(stats.splits[s].negatives)}</td>
            </tr>
          ))}
        </tbody>
      </table>

      {canChange ? (
        <form onSubmit={onSubmit} noValidate aria-label="Re-split" className="resplit">
          <h3>Re-split into a new version</h3>
          <p className="muted small">Seeded and stratified by class. This version stays as it is.</p>
          <div className="resplit__fields">
            {SPLITS.map((s) => (
              <div className="field field--narrow" key={s}>
                <label htmlFor={`${id}-${s}`}>{splitLabel(s)} %</label>
                <input
                  id={`${id}-${s}`}
                  name={s}
                  type="number"
                  min={0}
                  max={100}
                  step="any"
                  value={percent[s]}
                  onChange={(e) => setPercent((p) => ({ ...p, [s]: e.target.value }))}
                />
              </div>
            ))}
            <div className="field field--narrow">
              <label htmlFor={`${id}-seed`}>Seed</label>
              <input id={`${id}-seed`} name="seed" type="number" step={1} value={seed} onChange={(e) => setSeed(e.target.value)} />
            </div>
            <button type="submit" className="button button--primary" disabled={change.isPending}>
              {change.isPending ? "Re-splitting…" : "Re-split"}
            </button>
          </div>
          {formError || change.isError ? (
            <p className="form__error" role="alert" data-testid="resplit-error">
              {formError ?? errorMessage(change.error)}
            </p>
          ) : null}
        </form>
      ) : null}
    </section>
  );
}
