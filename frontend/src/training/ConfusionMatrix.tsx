/** White → blue by the share of the row (true class) a cell holds. */
export function cellColour(share: number): string {
  const t = Math.min(1, Math.max(0, Number.isFinite(share) ? share : 0));
  const mix = (a: number, b: number) => Math.round(a + (b - a) * t);
  return `rgb(${mix(248, 29)}, ${mix(250, 78)}, ${mix(252, 216)})`;
}

interface ConfusionMatrixProps {
  matrix: number[][];
  classNames: string[];
  /** Given: each cell with images is a button that opens them (true class i, predicted j). */
  onOpen?: (i: number, j: number) => void;
  /** The cell whose images are open. */
  selected?: [number, number] | null;
}

/** Rows: true class; columns: predicted class. Counts in the cells, coloured by the row's share. */
export function ConfusionMatrix({ matrix, classNames, onOpen, selected }: ConfusionMatrixProps) {
  const n = matrix.length;
  const names = Array.from({ length: n }, (_, i) => classNames[i] ?? `class ${i}`);
  const rowTotals = matrix.map((r) => r.reduce((a, b) => a + b, 0));
  return (
    <figure className="cm" data-testid="confusion-matrix">
      <figcaption className="chart__title">Confusion matrix (rows: true class, columns: predicted)</figcaption>
      <div className="cm__scroll">
        <div
          className="cm__grid"
          role="table"
          aria-label="Confusion matrix"
          style={{ gridTemplateColumns: `minmax(5rem, max-content) repeat(${n}, minmax(2.6rem, 1fr))` }}
        >
          <div role="row" className="cm__row">
            <span role="columnheader" className="cm__corner">
              true \ predicted
            </span>
            {names.map((name, j) => (
              <span role="columnheader" key={j} className="cm__head cm__head--col" title={name} data-testid="cm-col">
                {name}
              </span>
            ))}
          </div>
          {matrix.map((row, i) => (
            <div role="row" className="cm__row" key={i}>
              <span role="rowheader" className="cm__head cm__head--row" title={names[i]} data-testid="cm-row">
                {names[i]}
              </span>
              {row.map((count, j) => {
                const share = rowTotals[i] ? count / rowTotals[i]! : 0;
                const title = `true ${names[i]}, predicted ${names[j]}: ${count} (${Math.round(share * 100)}% of the row)`;
                const open = onOpen && count > 0;
                const isSelected = selected?.[0] === i && selected?.[1] === j;
                return (
                  <span
                    role="cell"
                    key={j}
                    className={`cm__cell${i === j ? " cm__cell--diag" : ""}${share > 0.55 ? " cm__cell--dark" : ""}${isSelected ? " cm__cell--selected" : ""}`}
                    style={{ background: cellColour(share) }}
                    title={open ? `${title}: show these images` : title}
                    data-testid="cm-cell"
                  >
                    {open ? (
                      <button type="button" className="cm__open" onClick={() => onOpen(i, j)} aria-pressed={isSelected} aria-label={`${title}: show these images`}>
                        {count}
                      </button>
                    ) : (
                      count
                    )}
                  </span>
                );
              })}
            </div>
          ))}
        </div>
      </div>
      <div className="cm__scale" aria-hidden="true">
        <span>0%</span>
        <span className="cm__ramp" style={{ background: `linear-gradient(to right, ${cellColour(0)}, ${cellColour(1)})` }} />
        <span>100% of the row</span>
      </div>
      {onOpen ? <p className="muted small">Click a count to see its images.</p> : null}
    </figure>
  );
}
