import { useEffect, useRef, useState } from "react";
import { errorMessage } from "../api/errors";
import { previewAugmentations, type PreviewImage, type RunConfig } from "../api/training";

export const PREVIEW_DEBOUNCE_MS = 800;

type State =
  | { kind: "idle" }
  | { kind: "loading"; note?: string }
  | { kind: "none" }
  | { kind: "error"; msg: string }
  | { kind: "ok"; images: PreviewImage[] };

export interface AugmentPreviewProps {
  config: RunConfig;
  disabled: boolean;
  /** What the pictures depend on (e.g. the steps, as JSON): once asked for, they are drawn again when it changes. */
  watch: string;
}

/** Augmented samples of the dataset, drawn by the worker; redrawn (after a pause) when a step changes. */
export function AugmentPreview({ config, disabled, watch }: AugmentPreviewProps) {
  const [state, setState] = useState<State>({ kind: "idle" });
  const [asked, setAsked] = useState(false);
  const latest = useRef(config);
  latest.current = config;
  const seq = useRef(0);

  const run = async () => {
    const id = ++seq.current;
    setAsked(true);
    setState({ kind: "loading" });
    try {
      const images = await previewAugmentations(latest.current, 8, (jobId) => {
        if (id === seq.current) setState({ kind: "loading", note: `The worker is busy; preview job #${jobId} is queued…` });
      });
      if (id !== seq.current) return;
      setState(images === null ? { kind: "none" } : { kind: "ok", images });
    } catch (err) {
      if (id === seq.current) setState({ kind: "error", msg: errorMessage(err) });
    }
  };

  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return undefined;
    }
    if (!asked || disabled) return undefined;
    const timer = setTimeout(() => void run(), PREVIEW_DEBOUNCE_MS);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [watch]);
  useEffect(
    () => () => {
      seq.current += 1; // answers after unmount are dropped
    },
    [],
  );

  return (
    <div className="preview" data-testid="augment-preview">
      <div className="preview__head">
        <button type="button" className="button button--small" onClick={() => void run()} disabled={disabled || state.kind === "loading"}>
          {state.kind === "loading" ? "Making previews…" : asked ? "Refresh preview" : "Preview augmentations"}
        </button>
        {asked ? <span className="muted small">Redrawn when a step changes.</span> : <span className="muted small">See the steps on your pictures.</span>}
      </div>
      {state.kind === "loading" && state.note ? (
        <p className="muted small" data-testid="preview-waiting">
          {state.note}
        </p>
      ) : null}
      {state.kind === "none" ? (
        <p className="muted small" data-testid="preview-unavailable">
          Preview unavailable: this studio cannot make augmentation previews yet.
        </p>
      ) : null}
      {state.kind === "error" ? (
        <p className="field__error" role="alert">
          Preview failed: {state.msg}
        </p>
      ) : null}
      {state.kind === "ok" ? (
        state.images.length ? (
          <ul className="preview__grid">
            {state.images.map((img, i) => (
              <li key={`${img.url}-${i}`}>
                <img src={img.url} alt={img.label || `augmented sample ${i + 1}`} data-testid="preview-img" />
                <span className="small">{img.label}</span>
              </li>
            ))}
          </ul>
        ) : (
          <p className="muted small">No images to show.</p>
        )
      ) : null}
    </div>
  );
}
