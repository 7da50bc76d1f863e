import { useEffect, useRef, useState } from "react";
import { fetchEstimate, type Estimate as EstimateAnswer } from "../api/runForm";
import { ApiError, errorMessage } from "../api/errors";
import type { RunConfig } from "../api/training";
import { timeAgo } from "../time";
import { getIn } from "./schema";

export const ESTIMATE_DEBOUNCE_MS = 1000;
export const ESTIMATE_POLL_MS = 2000;

/** The inputs the time of a run depends on: the estimate is asked for again when one of them changes. */
export const ESTIMATE_INPUTS = [
  "model.architecture",
  "data.input_size",
  "data.scales",
  "data.batch_size",
  "schedule.epochs",
  "schedule.iterations",
  "runtime.eval_interval",
] as const;

/** 5 → "5 s"; 75 → "1 min"; 4000 → "1 h 7 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 59.5) return `${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m ? `${h} h ${m} min` : `${h} h`;
}

function formatSeconds(s: number): string {
  if (s < 0.01) return `${(s * 1000).toFixed(1)} ms`;
  if (s < 1) return `${s.toFixed(2)} s`;
  if (s < 10) return `${s.toFixed(1)} s`;
  return `${Math.round(s)} s`;
}

function formatMemory(mb: number): string {
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GB` : `${Math.round(mb)} MB`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function where(device: string | null): string {
  if (!device) return "";
  if (device === "cpu") return " on the CPU";
  if (device === "cuda" || device.startsWith("cuda")) return " on the GPU";
  return ` on ${device}`;
}

/**
 * "About 0.41 s per iteration on the CPU → 12 iterations per epoch ≈ 5 s; 10 epochs ≈ 1 min
 * (+ 10 evaluations ≈ 20 s)".
 */
export function estimateSentence(e: EstimateAnswer, config: unknown): string {
  const spi = e.seconds_per_iteration;
  if (spi == null) return e.message || "No estimate.";
  let text = `About ${formatSeconds(spi)} per iteration${where(e.device ?? null)}`;
  const epochs = getIn(config, ["schedule", "epochs"]);
  const ipe = e.iterations_per_epoch;
  const total = e.total_iterations ?? (typeof epochs === "number" && ipe != null ? epochs * ipe : null);
  if (typeof epochs === "number" && ipe != null) {
    text += ` → ${plural(ipe, "iteration")} per epoch ≈ ${formatDuration(spi * ipe)}; ${plural(epochs, "epoch")} ≈ ${formatDuration(spi * (total ?? ipe * epochs))}`;
  } else if (total != null) {
    text += ` → ${plural(total, "iteration")} ≈ ${formatDuration(spi * total)}`;
  }
  if (e.evaluations > 0 && e.eval_seconds != null) {
    // eval_seconds is one evaluation (over the validation split).
    text += ` (+ ${plural(e.evaluations, "evaluation")} ≈ ${formatDuration(e.evaluations * e.eval_seconds)})`;
  }
  return text;
}

type State =
  | { kind: "idle" }
  | { kind: "asking" }
  | { kind: "pending"; jobId: number | null }
  | { kind: "ready"; estimate: EstimateAnswer; config: unknown }
  | { kind: "failed"; message: string }
  | { kind: "invalid" };

export interface EstimateProps {
  config: RunConfig | null;
  /** False while the form has errors or a base config is being fetched: nothing is asked then. */
  enabled: boolean;
  /** Each measured answer (e.g. its iterations per epoch, to convert epochs into iterations). */
  onAnswer?: (estimate: EstimateAnswer) => void;
}

/**
 * How long the run will take, measured by the worker (`POST /api/configs/estimate`), asked for again (after
 * a pause) when an input it depends on changes; while the worker measures, asked again every 2 s.
 */
export function Estimate({ config, enabled, onAnswer }: EstimateProps) {
  const [state, setState] = useState<State>({ kind: "idle" });
  const latest = useRef(config);
  latest.current = config;
  const answered = useRef(onAnswer);
  answered.current = onAnswer;
  const key = JSON.stringify(ESTIMATE_INPUTS.map((p) => getIn(config, p.split("."))));

  useEffect(() => {
    if (!enabled || !latest.current) {
      setState({ kind: "idle" });
      return undefined;
    }
    const asked = latest.current;
    const controller = new AbortController();
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ask = async () => {
      setState((s) => (s.kind === "pending" ? s : { kind: "asking" }));
      try {
        const answer = await fetchEstimate(asked, controller.signal);
        if (stopped) return;
        if (answer.status === "pending") {
          setState({ kind: "pending", jobId: answer.job_id ?? null });
          timer = setTimeout(() => void ask(), ESTIMATE_POLL_MS);
        } else if (answer.status === "failed") setState({ kind: "failed", message: answer.message || "the measurement failed" });
        else {
          setState({ kind: "ready", estimate: answer, config: asked });
          answered.current?.(answer);
        }
      } catch (err) {
        if (stopped) return;
        if (err instanceof ApiError && err.status === 422) setState({ kind: "invalid" });
        else setState({ kind: "failed", message: errorMessage(err) });
      }
    };
    timer = setTimeout(() => void ask(), ESTIMATE_DEBOUNCE_MS);
    return () => {
      stopped = true;
      controller.abort();
      if (timer) clearTimeout(timer);
    };
  }, [key, enabled]);

  let body;
  if (!enabled) body = <p className="muted small">Fix the fields marked above to get a time estimate.</p>;
  else if (state.kind === "idle" || state.kind === "asking") body = <p className="muted small">Estimating how long this run takes…</p>;
  else if (state.kind === "pending")
    body = (
      <p className="muted small" data-testid="estimate-pending">
        Measuring on the worker{state.jobId != null ? ` (job #${state.jobId})` : ""}…
      </p>
    );
  else if (state.kind === "invalid") body = <p className="muted small">Fix the fields first to get a time estimate.</p>;
  else if (state.kind === "failed")
    body = (
      <p className="field__error" data-testid="estimate-failed">
        No estimate: {state.message}
      </p>
    );
  else {
    const e = state.estimate;
    body = (
      <>
        <p className="estimate__main" data-testid="estimate-text" title={e.message || undefined}>
          {estimateSentence(e, state.config)}
        </p>
        <p className="muted small">
          {e.memory_mb != null ? `Memory: about ${formatMemory(e.memory_mb)}${e.memory_note ? ` (${e.memory_note})` : ""}.` : e.memory_note}
          {e.data_seconds_per_iteration != null && e.seconds_per_iteration
            ? ` Loading the pictures takes ${formatSeconds(e.data_seconds_per_iteration)} of each iteration.`
            : null}
          {e.cached && e.measured_at ? ` Measured ${timeAgo(e.measured_at)}.` : null}
        </p>
        {e.busy ? (
          <p className="estimate__busy small" data-testid="estimate-busy">
            Measured while a training run shared the machine: expect it to be faster.
          </p>
        ) : null}
      </>
    );
  }
  return (
    <div className="estimate" data-testid="estimate" aria-live="polite">
      <span className="estimate__label">Estimate</span>
      <div>{body}</div>
    </div>
  );
}
