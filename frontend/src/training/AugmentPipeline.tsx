import { useId, type ReactNode } from "react";
import { memberOf, type DiscriminatedUnion, type UnionMember } from "./schema";

export interface StepListProps {
  /** The list's label in words, e.g. "Augment". */
  label: string;
  /** Its dotted path (test ids, tooltips). */
  path: string;
  union: DiscriminatedUnion;
  steps: unknown[];
  onChange: (steps: unknown[]) => void;
  /** A new step of `member`: its defaults from the schema. */
  makeStep: (member: UnionMember) => unknown;
  /** Step `index`'s own parameters (every field of its member but the discriminator). */
  renderParams: (index: number, member: UnionMember) => ReactNode;
  /** The list's own error (e.g. too many steps), and any error on a step's discriminator. */
  error?: string | undefined;
  stepError?: (index: number) => string | undefined;
  maxItems?: number | undefined;
  description?: string | undefined;
}

function move<T>(list: readonly T[], from: number, to: number): T[] {
  const out = [...list];
  const [item] = out.splice(from, 1);
  out.splice(to, 0, item as T);
  return out;
}

/**
 * An ordered list of steps, each one member of a discriminated union (e.g. the augmentation pipeline):
 * each row shows its member in words and only that member's parameters, with Move up / Move down and
 * Remove; "Add step" lists every member and appends a new one with its defaults.
 */
export function StepList({
  label,
  path,
  union,
  steps,
  onChange,
  makeStep,
  renderParams,
  error,
  stepError,
  maxItems,
  description,
}: StepListProps) {
  const addId = useId();
  const canAdd = maxItems === undefined || steps.length < maxItems;
  return (
    <fieldset className="pipeline" data-path={path} data-testid={`pipeline-${path}`}>
      <legend className="visually-hidden">{label}</legend>
      {description ? <p className="field__hint">{description}</p> : null}
      {error ? (
        <p className="field__error" role="alert" data-testid={`error-${path}`}>
          {error}
        </p>
      ) : null}
      {steps.length === 0 ? <p className="muted small">No steps: the pictures are used as they are.</p> : null}
      <ol className="pipeline__steps">
        {steps.map((step, i) => {
          const member = memberOf(union, step);
          const tag = step && typeof step === "object" ? String((step as Record<string, unknown>)[union.property] ?? "") : "";
          const title = member?.title ?? (tag ? `Unknown step “${tag}”` : "Unknown step");
          const who = `step ${i + 1} (${member?.title ?? tag})`;
          const err = stepError?.(i);
          return (
            <li key={i} className="pipeline__step" data-testid={`item-${path}`} data-step={tag}>
              <div className="pipeline__head">
                <span className="pipeline__num" aria-hidden="true">
                  {i + 1}
                </span>
                <span className="pipeline__title" title={member?.description}>
                  <strong>{title}</strong> <code className="sf-code">{tag}</code>
                </span>
                <span className="pipeline__buttons">
                  <button
                    type="button"
                    className="button button--ghost button--small"
                    aria-label={`Move ${who} up`}
                    title="Move up"
                    disabled={i === 0}
                    onClick={() => onChange(move(steps, i, i - 1))}
                  >
                    ↑
                  </button>
                  <button
                    type="button"
                    className="button button--ghost button--small"
                    aria-label={`Move ${who} down`}
                    title="Move down"
                    disabled={i === steps.length - 1}
                    onClick={() => onChange(move(steps, i, i + 1))}
                  >
                    ↓
                  </button>
                  <button
                    type="button"
                    className="button button--ghost button--small"
                    aria-label={`Remove ${who}`}
                    onClick={() => onChange(steps.filter((_, j) => j !== i))}
                  >
                    Remove
                  </button>
                </span>
              </div>
              {member?.description ? <p className="field__hint pipeline__desc">{member.description}</p> : null}
              {err ? (
                <p className="field__error" role="alert">
                  {err}
                </p>
              ) : null}
              {member ? <div className="pipeline__params">{renderParams(i, member)}</div> : null}
            </li>
          );
        })}
      </ol>
      {canAdd ? (
        <div className="pipeline__add">
          <label htmlFor={addId} className="visually-hidden">
            Add step
          </label>
          <select
            id={addId}
            value=""
            onChange={(e) => {
              const member = union.members.find((m) => m.value === e.target.value);
              if (member) onChange([...steps, makeStep(member)]);
            }}
          >
            <option value="">Add step…</option>
            {union.members.map((m) => (
              <option key={m.value} value={m.value} title={m.description}>
                {m.title}
              </option>
            ))}
          </select>
        </div>
      ) : null}
    </fieldset>
  );
}
