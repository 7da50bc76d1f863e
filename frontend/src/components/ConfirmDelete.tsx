import { useState } from "react";
import { errorMessage } from "../api/errors";

interface ConfirmDeleteProps {
  /** The confirming button's label, e.g. "Delete model". */
  label: string;
  pending: boolean;
  error: unknown;
  onConfirm: () => void;
}

/** "Delete…", then the real (danger) button beside Cancel; the API's refusal is shown in place. */
export function ConfirmDelete({ label, pending, error, onConfirm }: ConfirmDeleteProps) {
  const [confirming, setConfirming] = useState(false);
  return (
    <span className="delete">
      {error ? <span className="field__error">{errorMessage(error)} </span> : null}
      {confirming ? (
        <>
          <button type="button" className="button button--danger" disabled={pending} onClick={onConfirm}>
            {pending ? "Deleting…" : label}
          </button>
          <button type="button" className="button button--ghost" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </>
      ) : (
        <button type="button" className="button button--ghost" onClick={() => setConfirming(true)}>
          Delete…
        </button>
      )}
    </span>
  );
}
