interface ProgressBarProps {
  label: string;
  /** 0..1 */
  value: number;
  caption?: string;
  testId?: string;
  tone?: "ok" | "bad" | undefined;
}

/** A determinate progress bar with its caption; `value` is a fraction. */
export function ProgressBar({ label, value, caption, testId, tone }: ProgressBarProps) {
  const pct = Math.round(Math.min(1, Math.max(0, Number.isFinite(value) ? value : 0)) * 100);
  return (
    <div className={`progress${tone ? ` progress--${tone}` : ""}`} data-testid={testId}>
      <div
        className="progress__track"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
        aria-valuetext={caption}
      >
        <div className="progress__fill" style={{ width: `${pct}%` }} />
      </div>
      {caption ? (
        <p className="progress__caption" aria-live="polite">
          {caption}
        </p>
      ) : null}
    </div>
  );
}
