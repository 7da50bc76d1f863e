import { useEffect, useId, useState, type ReactNode } from "react";
import {
  defaultValue,
  labelOf,
  nullableInner,
  pathKey,
  resolve,
  schemaType,
  setIn,
  type FieldErrors,
  type JsonSchema,
  type Path,
} from "./schema";

export interface SchemaFormProps {
  /** The root schema (its `$defs` resolve every `$ref`). */
  schema: JsonSchema;
  value: unknown;
  onChange: (value: unknown) => void;
  /** Dotted path → message (client-side and server-side merged). */
  errors?: FieldErrors;
  /** Dotted paths rendered read-only (e.g. fields the page sets from its own pickers). */
  readOnly?: readonly string[];
  /** Dotted paths not rendered at all. */
  hidden?: readonly string[];
}

interface Ctx {
  root: JsonSchema;
  errors: FieldErrors;
  readOnly: readonly string[];
  hidden: readonly string[];
  set: (path: Path, v: unknown) => void;
}

/** A form generated from a JSON Schema: a field added to the schema appears with no UI code. */
export function SchemaForm({ schema, value, onChange, errors = {}, readOnly = [], hidden = [] }: SchemaFormProps) {
  const ctx: Ctx = {
    root: schema,
    errors,
    readOnly,
    hidden,
    set: (path, v) => onChange(setIn(value, path, v)),
  };
  return (
    <div className="schema-form" data-testid="schema-form">
      <ObjectFields ctx={ctx} schema={resolve(schema, schema)} value={value} path={[]} />
    </div>
  );
}

function ErrorText({ path, ctx }: { path: Path; ctx: Ctx }) {
  const msg = ctx.errors[pathKey(path)];
  if (!msg) return null;
  return (
    <p className="field__error" data-testid={`error-${pathKey(path) || "form"}`} role="alert">
      {msg}
    </p>
  );
}

function ObjectFields({ ctx, schema, value, path }: { ctx: Ctx; schema: JsonSchema; value: unknown; path: Path }) {
  const obj = value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  return (
    <>
      {Object.entries(schema.properties ?? {}).map(([name, prop]) => {
        const p = [...path, name];
        if (ctx.hidden.includes(pathKey(p))) return null;
        return <SchemaField key={name} ctx={ctx} schema={prop} value={obj[name]} path={p} name={name} />;
      })}
    </>
  );
}

interface FieldProps {
  ctx: Ctx;
  schema: JsonSchema;
  value: unknown;
  path: Path;
  name: string | number;
}

function SchemaField({ ctx, schema: raw, value, path, name }: FieldProps): ReactNode {
  const schema = resolve(ctx.root, raw);
  const key = pathKey(path);
  const label = labelOf(name, schema);
  const readOnly = ctx.readOnly.includes(key);

  if ("const" in schema) {
    return (
      <div className="sf-row" data-path={key}>
        <span className="sf-label">{label}</span>
        <code className="sf-const">{String(schema.const)}</code>
      </div>
    );
  }

  const inner = nullableInner(ctx.root, schema);
  if (inner) return <NullableField ctx={ctx} schema={schema} inner={inner} value={value} path={path} name={name} />;

  const union = schema.anyOf ?? schema.oneOf;
  if (union?.length) return <UnionField ctx={ctx} schema={schema} value={value} path={path} name={name} />;

  const type = schemaType(schema);
  if (type === "object" && schema.properties) {
    return (
      <fieldset className="sf-fieldset" data-path={key}>
        <legend>{label}</legend>
        {schema.description ? <p className="field__hint">{schema.description}</p> : null}
        <ErrorText ctx={ctx} path={path} />
        <ObjectFields ctx={ctx} schema={schema} value={value} path={path} />
      </fieldset>
    );
  }
  if (type === "object") return <JsonField ctx={ctx} schema={schema} value={value} path={path} label={label} />;
  if (type === "array" && schema.prefixItems) {
    return <TupleField ctx={ctx} schema={schema} value={value} path={path} label={label} />;
  }
  if (type === "array") return <ArrayField ctx={ctx} schema={schema} value={value} path={path} label={label} />;
  return <ScalarField ctx={ctx} schema={schema} value={value} path={path} label={label} readOnly={readOnly} />;
}

function Hint({ id, schema }: { id: string; schema: JsonSchema }) {
  const bounds: string[] = [];
  if (schema.minimum !== undefined) bounds.push(`≥ ${schema.minimum}`);
  if (schema.exclusiveMinimum !== undefined) bounds.push(`> ${schema.exclusiveMinimum}`);
  if (schema.maximum !== undefined) bounds.push(`≤ ${schema.maximum}`);
  if (schema.exclusiveMaximum !== undefined) bounds.push(`< ${schema.exclusiveMaximum}`);
  const text = [schema.description, bounds.join(", ")].filter(Boolean).join(" · ");
  if (!text) return null;
  return (
    <p id={id} className="field__hint">
      {text}
    </p>
  );
}

/** Text of a number input: kept as typed while it does not parse ("1e-", "-"), so typing is not fought. */
function NumberInput({
  id,
  schema,
  value,
  onChange,
  describedBy,
  invalid,
  readOnly,
  label,
}: {
  id: string;
  schema: JsonSchema;
  value: unknown;
  onChange: (v: unknown) => void;
  describedBy?: string | undefined;
  invalid: boolean;
  readOnly?: boolean;
  label?: string;
}) {
  const shown = typeof value === "number" ? String(value) : typeof value === "string" ? value : "";
  const [text, setText] = useState(shown);
  useEffect(() => {
    // An outside change (prefill, import): show it. Our own typing already matches.
    setText((t) => (Number(t) === value && t.trim() !== "" ? t : shown));
  }, [value, shown]);
  const integer = schemaType(schema) === "integer";
  return (
    <input
      id={id}
      type="text"
      inputMode={integer ? "numeric" : "decimal"}
      value={text}
      readOnly={readOnly}
      aria-label={label}
      aria-invalid={invalid || undefined}
      aria-describedby={describedBy}
      onChange={(e) => {
        const t = e.target.value;
        setText(t);
        const n = Number(t);
        onChange(t.trim() !== "" && Number.isFinite(n) ? n : t);
      }}
    />
  );
}

function ScalarField({
  ctx,
  schema,
  value,
  path,
  label,
  readOnly,
}: {
  ctx: Ctx;
  schema: JsonSchema;
  value: unknown;
  path: Path;
  label: string;
  readOnly: boolean;
}) {
  const id = useId();
  const key = pathKey(path);
  const error = ctx.errors[key];
  const hintId = `${id}-hint`;
  const type = schemaType(schema);
  const set = (v: unknown) => ctx.set(path, v);
  let input: ReactNode;
  if (schema.enum) {
    input = (
      <select
        id={id}
        value={String(value ?? "")}
        disabled={readOnly}
        aria-invalid={error ? true : undefined}
        onChange={(e) => {
          const picked = schema.enum!.find((opt) => String(opt) === e.target.value);
          set(picked);
        }}
      >
        {schema.enum.map((opt) => (
          <option key={String(opt)} value={String(opt)}>
            {String(opt)}
          </option>
        ))}
      </select>
    );
  } else if (type === "boolean") {
    return (
      <div className={error ? "field field--check field--invalid" : "field field--check"} data-path={key}>
        <label>
          <input type="checkbox" checked={value === true} disabled={readOnly} onChange={(e) => set(e.target.checked)} />{" "}
          {label}
        </label>
        <Hint id={hintId} schema={schema} />
        <ErrorText ctx={ctx} path={path} />
      </div>
    );
  } else if (type === "integer" || type === "number") {
    input = (
      <NumberInput
        id={id}
        schema={schema}
        value={value}
        onChange={set}
        describedBy={hintId}
        invalid={!!error}
        readOnly={readOnly}
      />
    );
  } else {
    input = (
      <input
        id={id}
        type="text"
        value={typeof value === "string" ? value : value == null ? "" : String(value)}
        readOnly={readOnly}
        maxLength={schema.maxLength}
        aria-invalid={error ? true : undefined}
        aria-describedby={hintId}
        onChange={(e) => set(e.target.value)}
      />
    );
  }
  return (
    <div className={error ? "field field--invalid" : "field"} data-path={key}>
      <label htmlFor={id}>{label}</label>
      {input}
      <Hint id={hintId} schema={schema} />
      <ErrorText ctx={ctx} path={path} />
    </div>
  );
}

function NullableField({ ctx, schema, inner, value, path, name }: FieldProps & { inner: JsonSchema }) {
  const key = pathKey(path);
  const label = labelOf(name, schema);
  const on = value !== null && value !== undefined;
  return (
    <div className="sf-nullable" data-path={key}>
      <label className="sf-toggle">
        <input
          type="checkbox"
          checked={on}
          onChange={(e) => {
            if (!e.target.checked) ctx.set(path, null);
            else {
              const d = defaultValue(ctx.root, inner);
              ctx.set(path, d === undefined ? (schemaType(inner) === "object" ? {} : 0) : d);
            }
          }}
        />{" "}
        Set {label}
      </label>
      {on ? null : <span className="sf-none muted small">{label}: none</span>}
      {on ? (
        <SchemaField ctx={ctx} schema={{ ...inner, title: label }} value={value} path={path} name={name} />
      ) : (
        <ErrorText ctx={ctx} path={path} />
      )}
    </div>
  );
}

function branchLabel(root: JsonSchema, s: JsonSchema, i: number): string {
  const r = resolve(root, s);
  return r.title ?? schemaType(r) ?? `option ${i + 1}`;
}

function UnionField({ ctx, schema, value, path, name }: FieldProps) {
  const id = useId();
  const branches = (schema.anyOf ?? schema.oneOf)!;
  const label = labelOf(name, schema);
  const matching = branches.findIndex((b) => {
    const t = schemaType(resolve(ctx.root, b));
    if (t === "integer" || t === "number") return typeof value === "number";
    if (t === "array") return Array.isArray(value);
    if (t === "object") return !!value && typeof value === "object" && !Array.isArray(value);
    if (t === "null") return value === null;
    return typeof value === t;
  });
  const index = matching < 0 ? 0 : matching;
  return (
    <div className="sf-union" data-path={pathKey(path)}>
      <label htmlFor={id}>{label} (kind)</label>
      <select
        id={id}
        value={index}
        onChange={(e) => ctx.set(path, defaultValue(ctx.root, branches[Number(e.target.value)]!))}
      >
        {branches.map((b, i) => (
          <option key={i} value={i}>
            {branchLabel(ctx.root, b, i)}
          </option>
        ))}
      </select>
      <SchemaField ctx={ctx} schema={{ ...branches[index]!, title: label }} value={value} path={path} name={name} />
    </div>
  );
}

function TupleField({ ctx, schema, value, path, label }: { ctx: Ctx; schema: JsonSchema; value: unknown; path: Path; label: string }) {
  const id = useId();
  const arr = Array.isArray(value) ? value : [];
  const items = schema.prefixItems ?? [];
  const key = pathKey(path);
  return (
    <div className={ctx.errors[key] ? "field field--invalid" : "field"} data-path={key}>
      <span className="sf-label" id={id}>
        {label}
      </span>
      <div className="sf-tuple" role="group" aria-labelledby={id}>
        {items.map((item, i) => (
          <NumberOrText key={i} ctx={ctx} schema={resolve(ctx.root, item)} value={arr[i]} path={[...path, i]} label={`${label} ${i + 1}`} />
        ))}
      </div>
      <Hint id={`${id}-hint`} schema={schema} />
      <ErrorText ctx={ctx} path={path} />
      {items.map((_, i) => (
        <ErrorText key={i} ctx={ctx} path={[...path, i]} />
      ))}
    </div>
  );
}

function NumberOrText({ ctx, schema, value, path, label }: { ctx: Ctx; schema: JsonSchema; value: unknown; path: Path; label: string }) {
  const id = useId();
  const t = schemaType(schema);
  if (t === "integer" || t === "number") {
    return (
      <NumberInput
        id={id}
        schema={schema}
        value={value}
        onChange={(v) => ctx.set(path, v)}
        invalid={!!ctx.errors[pathKey(path)]}
        label={label}
      />
    );
  }
  return (
    <input id={id} aria-label={label} type="text" value={value == null ? "" : String(value)} onChange={(e) => ctx.set(path, e.target.value)} />
  );
}

function ArrayField({ ctx, schema, value, path, label }: { ctx: Ctx; schema: JsonSchema; value: unknown; path: Path; label: string }) {
  const arr = Array.isArray(value) ? value : [];
  const itemSchema = schema.items ?? {};
  const key = pathKey(path);
  const canAdd = schema.maxItems === undefined || arr.length < schema.maxItems;
  return (
    <fieldset className="sf-fieldset sf-array" data-path={key}>
      <legend>{label}</legend>
      {schema.description ? <p className="field__hint">{schema.description}</p> : null}
      <ErrorText ctx={ctx} path={path} />
      {arr.length === 0 ? <p className="muted small">None.</p> : null}
      <ol className="sf-items">
        {arr.map((item, i) => (
          <li key={i} className="sf-item" data-testid={`item-${key}`}>
            <SchemaField ctx={ctx} schema={itemSchema} value={item} path={[...path, i]} name={i} />
            <button
              type="button"
              className="button button--ghost button--small"
              aria-label={`Remove ${label} ${i + 1}`}
              onClick={() => ctx.set(path, arr.filter((_, j) => j !== i))}
            >
              Remove
            </button>
          </li>
        ))}
      </ol>
      {canAdd ? (
        <button
          type="button"
          className="button button--small"
          onClick={() => {
            const d = defaultValue(ctx.root, itemSchema);
            ctx.set(path, [...arr, d === undefined ? (schemaType(resolve(ctx.root, itemSchema)) === "string" ? "" : 0) : d]);
          }}
        >
          Add {label}
        </button>
      ) : null}
    </fieldset>
  );
}

/** An object with free-form keys (e.g. model options): edited as JSON. */
function JsonField({ ctx, schema, value, path, label }: { ctx: Ctx; schema: JsonSchema; value: unknown; path: Path; label: string }) {
  const id = useId();
  const key = pathKey(path);
  const shown = JSON.stringify(value ?? {});
  const [text, setText] = useState(shown);
  const [bad, setBad] = useState<string | null>(null);
  useEffect(() => {
    setText((t) => {
      try {
        return JSON.stringify(JSON.parse(t)) === shown ? t : shown;
      } catch {
        return t;
      }
    });
  }, [shown]);
  const error = bad ?? ctx.errors[key];
  return (
    <div className={error ? "field field--invalid" : "field"} data-path={key}>
      <label htmlFor={id}>{label} (JSON)</label>
      <input
        id={id}
        type="text"
        value={text}
        aria-invalid={error ? true : undefined}
        onChange={(e) => {
          setText(e.target.value);
          try {
            const parsed: unknown = JSON.parse(e.target.value || "{}");
            if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
            setBad(null);
            ctx.set(path, parsed);
          } catch {
            setBad("must be a JSON object, e.g. {\"dropout\": 0.2}");
          }
        }}
      />
      <Hint id={`${id}-hint`} schema={schema} />
      {bad ? <p className="field__error">{bad}</p> : <ErrorText ctx={ctx} path={path} />}
    </div>
  );
}
