import { classColour, type ClassStat } from "../api/datasets";
import { formatCount } from "./format";

interface ClassBarsProps {
  title: string;
  classes: ClassStat[];
  metric: "images" | "instances";
  testId?: string;
}

/** One horizontal bar per class, in the dataset's class order, scaled to the largest. */
export function ClassBars({ title, classes, metric, testId }: ClassBarsProps) {
  const max = Math.max(0, ...classes.map((c) => c[metric]));
  return (
    <figure className="bars" data-testid={testId}>
      <figcaption className="bars__title">{title}</figcaption>
      {classes.length === 0 ? (
        <p className="muted small">No classes.</p>
      ) : (
        <ul className="bars__list" aria-label={title}>
          {classes.map((c) => {
            const value = c[metric];
            const pct = max > 0 ? (value / max) * 100 : 0;
            return (
              <li key={c.id} className="bars__row" data-testid="class-bar" data-value={value}>
                <span className="bars__label" title={c.name}>
                  <span className="swatch" style={{ background: classColour(c.id) }} aria-hidden="true" />
                  <span className="bars__name" data-testid="class-bar-name">
                    {c.name}
                  </span>
                </span>
                <span className="bars__track" aria-hidden="true">
                  <span
                    className={`bars__fill${value === 0 ? " bars__fill--zero" : ""}`}
                    style={{ width: `${pct}%` }}
                    data-testid="class-bar-fill"
                  />
                </span>
                <span className="bars__value" data-testid="class-bar-value">
                  {formatCount(value)}
                </span>
              </li>
            );
          })}
        </ul>
      )}
    </figure>
  );
}
