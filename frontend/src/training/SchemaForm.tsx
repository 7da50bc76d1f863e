import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { StepList } from "./AugmentPipeline";
import {
  defaultValue,
  discriminatedUnion,
  getIn,
  labelOf,
  memberDefault,
  memberOf,
  nullableInner,
  parsePath,
  pathKey,
  resolve,
  schemaAt,
  schemaType,
  setIn,
  type FieldErrors,
  type JsonSchema,
  type Path,
} from "./schema";

export interface SchemaFormProps {
  /** The root schema (its `$defs` resolve every `$ref`). */
  schema: JsonSchema;
  /** The whole config (paths below are from its root). */
  value: unknown;
  onChange: (value: unknown) => void;
  /** Dotted path → message (client-side and server-side merged). */
  errors?: FieldErrors;
  /** Dotted paths rendered read-only (e.g. fields the page sets from its own pickers). */
  readOnly?: readonly string[];
  /** Dotted paths not rendered at all (with everything under them). */
  hidden?: readonly string[];
  /** Render only the fields of the object at this dotted path (a section of the config). */
  path?: string;
  /** Render only these dotted paths, one field each, in this order (the form's simple state). */
  only?: readonly string[];
  /**
   * Fields of which exactly one is set (non-null) at a time, e.g. {"schedule.epochs": ["schedule.iterations"]}:
   * shown as one input with a switch between them, where the first path is met.
   */
  alternatives?: Readonly<Record<string, readonly string[]>>;
  /** Dotted path → the schema to render there instead (e.g. an architecture's options from the catalog). */
  overrides?: Readonly<Record<string, JsonSchema>>;
  /**
   * The value an alternative starts with when switched to (e.g. epochs → iterations by the iterations per
   * epoch); undefined: its schema default, else empty for the user to fill in. Nothing is made up here.
   */
  convertAlternative?: (from: string, to: string, value: unknown) => unknown;
}

interface Ctx {
  root: JsonSchema;
  errors: FieldErrors;
  readOnly: readonly string[];
  hidden: readonly string[];
  alternatives: Readonly<Record<string, readonly string[]>>;
  /** Every path that is some field's alternative (rendered with that field, not on its own). */
  alternates: ReadonlySet<string>;
  overrides: Readonly<Record<string, JsonSchema>>;
  convertAlternative: ((from: string, to: string, value: unknown) => unknown) | undefined;
  value: unknown;
  set: (path: Path, v: unknown) => void;
  setMany: (changes: [Path, unknown][]) => void;
}

/** A form generated from a JSON Schema: a field added to the schema appears with no UI code. */
export function SchemaForm({
  schema,
  value,
  onChange,
  errors = {},
  readOnly = [],
  hidden = [],
  path,
  only,
  alternatives = {},
  overrides = {},
  convertAlternative,
}: SchemaFormProps) {
  const ctx: Ctx = {
    root: schema,
    errors,
    readOnly,
    hidden,
    alternatives,
    alternates: new Set(Object.values(alternatives).flat()),
    overrides,
    convertAlternative,
    value,
    set: (p, v) => onChange(setIn(value, p, v)),
    setMany: (changes) => onChange(changes.reduce((acc, [p, v]) => setIn(acc, p, v), value)),
  };
  let body: ReactNode;
  if (only) {
    body = only.map((dotted) => {
      const p = parsePath(dotted);
      const at = schemaAt(schema, p);
      if (!at) return null;
      return <SchemaField key={dotted} ctx={ctx} schema={at.raw} path={p} name={p[p.length - 1] ?? dotted} />;
    });
  } else if (path) {
    const p = parsePath(path);
    const at = schemaAt(schema, p);
    const resolved = at ? resolve(schema, at.raw) : undefined;
    body = !at ? null : resolved && schemaType(resolved) === "object" && resolved.properties ? (
      <>
        {resolved.description ? <p className="field__hint sf-wide">{resolved.description}</p> : null}
        <ErrorText ctx={ctx} path={p} />
        <ObjectFields ctx={ctx} schema={resolved} path={p} />
      </>
    ) : (
      <SchemaField ctx={ctx} schema={at.raw} path={p} name={p[p.length - 1] ?? path} />
    );
  } else {
    body = <ObjectFields ctx={ctx} schema={resolve(schema, schema)} path={[]} />;
  }
  return (
    <div className="schema-form" data-testid="schema-form">
      {body}
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

function isHidden(ctx: Ctx, key: string): boolean {
  return ctx.hidden.some((h) => key === h || key.startsWith(`${h}.`));
}

function ObjectFields({ ctx, schema, path, skip }: { ctx: Ctx; schema: JsonSchema; path: Path; skip?: string }) {
  return (
    <>
      {Object.entries(schema.properties ?? {}).map(([name, prop]) => {
        if (name === skip) return null;
        const p = [...path, name];
        const key = pathKey(p);
        if (isHidden(ctx, key) || ctx.alternates.has(key)) return null;
        return <SchemaField key={name} ctx={ctx} schema={prop} path={p} name={name} />;
      })}
    </>
  );
}

interface FieldProps {
  ctx: Ctx;
  /** The property's schema as written (before `$ref` resolution: its own title is the label). */
  schema: JsonSchema;
  path: Path;
  name: string | number;
}

function SchemaField({ ctx, schema: raw0, path, name }: FieldProps): ReactNode {
  const key = pathKey(path);
  const raw = ctx.overrides[key] ?? raw0;
  const schema = resolve(ctx.root, raw);
  const label = labelOf(name, raw, schema);
  const readOnly = ctx.readOnly.includes(key);
  const value = getIn(ctx.value, path);

  if (ctx.alternatives[key]?.length) return <AlternativeField ctx={ctx} path={path} others={ctx.alternatives[key]!} />;

  if ("const" in schema) {
    return (
      <div className="sf-row" data-path={key}>
        <span className="sf-label">{label}</span>
        <code className="sf-const">{String(schema.const)}</code>
      </div>
    );
  }

  const inner = nullableInner(ctx.root, schema);
  if (inner) return <NullableField ctx={ctx} schema={schema} inner={inner} path={path} label={label} />;

  const tagged = discriminatedUnion(ctx.root, schema);
  if (tagged) return <TaggedField ctx={ctx} schema={schema} path={path} label={label} />;

  const union = schema.anyOf ?? schema.oneOf;
  if (union?.length) return <UnionField ctx={ctx} schema={schema} value={value} path={path} label={label} />;

  const type = schemaType(schema);
  if (type === "object" && schema.properties) {
    return (
      <fieldset className="sf-fieldset" data-path={key}>
        <legend title={key}>{label}</legend>
        {schema.description ? <p className="field__hint">{schema.description}</p> : null}
        <ErrorText ctx={ctx} path={path} />
        <ObjectFields ctx={ctx} schema={schema} path={path} />
      </fieldset>
    );
  }
  if (type === "object") return <JsonField ctx={ctx} schema={schema} value={value} path={path} label={label} />;
  if (type === "array" && schema.prefixItems) {
    return <TupleField ctx={ctx} schema={schema} value={value} path={path} label={label} />;
  }
  if (type === "array") {
    const items = resolve(ctx.root, schema.items ?? {});
    const itemUnion = discriminatedUnion(ctx.root, items);
    if (itemUnion) {
      const steps = Array.isArray(value) ? value : [];
      return (
        <StepList
          label={label}
          path={key}
          union={itemUnion}
          steps={steps}
          onChange={(next) => ctx.set(path, next)}
          makeStep={(m) => memberDefault(ctx.root, itemUnion, m)}
          renderParams={(i, member) => <ObjectFields ctx={ctx} schema={member.schema} path={[...path, i]} skip={itemUnion.property} />}
          error={ctx.errors[key]}
          stepError={(i) => ctx.errors[pathKey([...path, i])] ?? ctx.errors[pathKey([...path, i, itemUnion.property])]}
          maxItems={schema.maxItems}
          description={schema.description}
        />
      );
    }
    const itemType = schemaType(items);
    if (itemType === "integer" || itemType === "number" || itemType === "string") {
      return (
        <FieldShell ctx={ctx} schema={raw} resolved={schema} path={path} label={label}>
          {(id, describedBy) => (
            <ListInput id={id} itemType={itemType} value={value} onChange={(v) => ctx.set(path, v)} describedBy={describedBy} invalid={!!ctx.errors[key]} />
          )}
        </FieldShell>
      );
    }
    return <ArrayField ctx={ctx} schema={schema} value={value} path={path} label={label} />;
  }
  if (type === "boolean") {
    return <CheckField ctx={ctx} schema={raw} resolved={schema} path={path} label={label} readOnly={readOnly} />;
  }
  return (
    <FieldShell ctx={ctx} schema={raw} resolved={schema} path={path} label={label}>
      {(id, describedBy) => (
        <ScalarInput id={id} ctx={ctx} schema={schema} path={path} readOnly={readOnly} describedBy={describedBy} />
      )}
    </FieldShell>
  );
}

function boundsText(schema: JsonSchema): string {
  const lo = schema.minimum !== undefined ? `${schema.minimum}` : schema.exclusiveMinimum !== undefined ? `> ${schema.exclusiveMinimum}` : null;
  const hi = schema.maximum !== undefined ? `${schema.maximum}` : schema.exclusiveMaximum !== undefined ? `< ${schema.exclusiveMaximum}` : null;
  if (schema.minimum !== undefined && schema.maximum !== undefined) return `${schema.minimum} to ${schema.maximum}`;
  return [lo && (lo.startsWith(">") ? lo : `≥ ${lo}`), hi && (hi.startsWith("<") ? hi : `≤ ${hi}`)].filter(Boolean).join(", ");
}

function Hint({ id, schema }: { id: string; schema: JsonSchema }) {
  const bounds = boundsText(schema);
  const text = [schema.description, bounds ? `(${bounds})` : ""].filter(Boolean).join(" ");
  if (!text) return null;
  return (
    <p id={id} className="field__hint">
      {text}
    </p>
  );
}

/** The label in words, the code name (dotted path) for YAML writers, the input, its unit, help and error. */
function FieldShell({
  ctx,
  schema,
  resolved,
  path,
  label,
  children,
  inner,
  showUnit = true,
}: {
  ctx: Ctx;
  schema: JsonSchema;
  resolved: JsonSchema;
  path: Path;
  label: string;
  children: (id: string, describedBy: string) => ReactNode;
  /** For a nullable field: the schema of its value (bounds, unit). */
  inner?: JsonSchema;
  /** False while there is no value (a nullable field set to none): no unit after "none". */
  showUnit?: boolean;
}) {
  const id = useId();
  const key = pathKey(path);
  const error = ctx.errors[key];
  const unit = showUnit ? (schema.unit ?? resolved.unit ?? inner?.unit) : undefined;
  const hintId = `${id}-hint`;
  const unitId = `${id}-unit`;
  const help: JsonSchema = { ...(inner ?? {}), ...resolved, description: schema.description ?? resolved.description ?? inner?.description };
  if (inner) {
    for (const k of ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] as const) {
      if (help[k] === undefined && inner[k] !== undefined) help[k] = inner[k];
    }
  }
  return (
    <div className={error ? "field field--invalid" : "field"} data-path={key}>
      <div className="sf-labelrow">
        <label htmlFor={id} title={key}>
          {label}
        </label>
        <code className="sf-code" title={`In YAML: ${key}`}>
          {key}
        </code>
      </div>
      <div className="sf-control">
        {children(id, unit ? `${hintId} ${unitId}` : hintId)}
        {unit ? (
          <span className="sf-unit" id={unitId}>
            {unit}
          </span>
        ) : null}
      </div>
      <Hint id={hintId} schema={help} />
      <ErrorText ctx={ctx} path={path} />
    </div>
  );
}

function CheckField({
  ctx,
  schema,
  resolved,
  path,
  label,
  readOnly,
}: {
  ctx: Ctx;
  schema: JsonSchema;
  resolved: JsonSchema;
  path: Path;
  label: string;
  readOnly: boolean;
}) {
  const id = useId();
  const key = pathKey(path);
  const error = ctx.errors[key];
  const value = getIn(ctx.value, path);
  return (
    <div className={error ? "field field--check field--invalid" : "field field--check"} data-path={key}>
      <div className="sf-labelrow sf-labelrow--check">
        <label title={key}>
          <input
            type="checkbox"
            checked={value === true}
            disabled={readOnly}
            aria-describedby={`${id}-hint`}
            onChange={(e) => ctx.set(path, e.target.checked)}
          />{" "}
          {label}
        </label>
        <code className="sf-code" title={`In YAML: ${key}`}>
          {key}
        </code>
      </div>
      <Hint id={`${id}-hint`} schema={{ ...resolved, description: schema.description ?? resolved.description }} />
      <ErrorText ctx={ctx} path={path} />
    </div>
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
  placeholder,
}: {
  id: string;
  schema: JsonSchema;
  value: unknown;
  onChange: (v: unknown) => void;
  describedBy?: string | undefined;
  invalid: boolean;
  readOnly?: boolean;
  label?: string;
  placeholder?: string | undefined;
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
      placeholder={placeholder}
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

function ScalarInput({
  id,
  ctx,
  schema,
  path,
  readOnly,
  describedBy,
}: {
  id: string;
  ctx: Ctx;
  schema: JsonSchema;
  path: Path;
  readOnly: boolean;
  describedBy: string;
}) {
  const key = pathKey(path);
  const error = ctx.errors[key];
  const value = getIn(ctx.value, path);
  const type = schemaType(schema);
  const set = (v: unknown) => ctx.set(path, v);
  if (schema.enum) {
    return (
      <select
        id={id}
        value={String(value ?? "")}
        disabled={readOnly}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy}
        onChange={(e) => set(schema.enum!.find((opt) => String(opt) === e.target.value))}
      >
        {schema.enum.map((opt) => (
          <option key={String(opt)} value={String(opt)}>
            {String(opt)}
          </option>
        ))}
      </select>
    );
  }
  if (type === "integer" || type === "number") {
    return (
      <NumberInput
        id={id}
        schema={schema}
        value={value}
        onChange={set}
        describedBy={describedBy}
        invalid={!!error}
        readOnly={readOnly}
        placeholder={typeof schema.default === "number" ? String(schema.default) : undefined}
      />
    );
  }
  return (
    <input
      id={id}
      type="text"
      value={typeof value === "string" ? value : value == null ? "" : String(value)}
      readOnly={readOnly}
      maxLength={schema.maxLength}
      aria-invalid={error ? true : undefined}
      aria-describedby={describedBy}
      onChange={(e) => set(e.target.value)}
    />
  );
}

/** A list of numbers or words typed as one line, "480, 640"; kept as typed until it parses. */
function ListInput({
  id,
  itemType,
  value,
  onChange,
  describedBy,
  invalid,
}: {
  id: string;
  itemType: string;
  value: unknown;
  onChange: (v: unknown) => void;
  describedBy: string;
  invalid: boolean;
}) {
  const shown = Array.isArray(value) ? value.map(String).join(", ") : typeof value === "string" ? value : "";
  const [text, setText] = useState(shown);
  useEffect(() => {
    setText((t) => (parseList(t, itemType) !== null && JSON.stringify(parseList(t, itemType)) === JSON.stringify(value) ? t : shown));
  }, [value, shown, itemType]);
  return (
    <input
      id={id}
      type="text"
      value={text}
      placeholder={itemType === "string" ? "a, b" : "e.g. 480, 640"}
      aria-invalid={invalid || undefined}
      aria-describedby={describedBy}
      onChange={(e) => {
        setText(e.target.value);
        const parsed = parseList(e.target.value, itemType);
        onChange(parsed ?? e.target.value);
      }}
    />
  );
}

function parseList(text: string, itemType: string): unknown[] | null {
  const parts = text
    .split(/[,\s]+/)
    .map((p) => p.trim())
    .filter(Boolean);
  if (itemType === "string") return parts;
  const nums = parts.map(Number);
  return nums.every((n) => Number.isFinite(n)) ? nums : null;
}

/** Fields of which exactly one is set (epochs or iterations): one input, and a switch to the other. */
function AlternativeField({ ctx, path, others }: { ctx: Ctx; path: Path; others: readonly string[] }) {
  const id = useId();
  const options = [path, ...others.map(parsePath)];
  const remembered = useRef<Record<string, unknown>>({});
  const current = options.find((p) => {
    const v = getIn(ctx.value, p);
    return v !== null && v !== undefined;
  }) ?? path;
  const key = pathKey(current);
  const at = schemaAt(ctx.root, current);
  if (!at) return null;
  const schema = resolve(ctx.root, at.raw);
  const inner = nullableInner(ctx.root, schema) ?? schema;
  const label = labelOf(current[current.length - 1] ?? key, at.raw, schema);
  const value = getIn(ctx.value, current);
  const switchTo = (target: Path) => {
    remembered.current[key] = value;
    const targetAt = schemaAt(ctx.root, target);
    const d = targetAt ? defaultValue(ctx.root, targetAt.raw) : null;
    const next = remembered.current[pathKey(target)] ?? ctx.convertAlternative?.(key, pathKey(target), value) ?? d ?? "";
    ctx.setMany([
      [current, null],
      [target, next],
    ]);
  };
  const error = ctx.errors[key];
  const unit = at.raw.unit ?? inner.unit;
  return (
    <div className={error ? "field field--invalid" : "field"} data-path={key}>
      <div className="sf-labelrow">
        <label htmlFor={id} title={key}>
          {label}
        </label>
        <code className="sf-code" title={`In YAML: ${key}`}>
          {key}
        </code>
      </div>
      <div className="sf-control">
        <NumberInput
          id={id}
          schema={inner}
          value={value}
          onChange={(v) => ctx.set(current, v)}
          describedBy={`${id}-hint`}
          invalid={!!error}
        />
        {unit ? <span className="sf-unit">{unit}</span> : null}
      </div>
      <p className="sf-switch">
        {options
          .filter((p) => pathKey(p) !== key)
          .map((p) => {
            const o = schemaAt(ctx.root, p);
            const words = o ? labelOf(p[p.length - 1] ?? "", o.raw, resolve(ctx.root, o.raw)) : pathKey(p);
            return (
              <button key={pathKey(p)} type="button" className="link-button" onClick={() => switchTo(p)}>
                Count {words.toLowerCase()} instead
              </button>
            );
          })}
      </p>
      <Hint id={`${id}-hint`} schema={{ ...inner, description: at.raw.description ?? schema.description }} />
      <ErrorText ctx={ctx} path={current} />
      {options
        .filter((p) => pathKey(p) !== key)
        .map((p) => (
          <ErrorText key={pathKey(p)} ctx={ctx} path={p} />
        ))}
    </div>
  );
}

function NullableField({ ctx, schema, inner, path, label }: { ctx: Ctx; schema: JsonSchema; inner: JsonSchema; path: Path; label: string }) {
  const key = pathKey(path);
  const value = getIn(ctx.value, path);
  const on = value !== null && value !== undefined;
  const turn = (checked: boolean) => {
    if (!checked) ctx.set(path, null);
    else {
      const d = defaultValue(ctx.root, inner);
      const t = schemaType(inner);
      ctx.set(path, d === undefined ? (t === "object" ? {} : t === "array" ? [] : t === "string" ? "" : 0) : d);
    }
  };
  const t = schemaType(inner);
  const scalarish =
    !discriminatedUnion(ctx.root, inner) &&
    !(inner.anyOf ?? inner.oneOf) &&
    (t === "integer" || t === "number" || t === "string" || (t === "array" && !inner.prefixItems && ["integer", "number", "string"].includes(schemaType(resolve(ctx.root, inner.items ?? {})) ?? "")));
  if (scalarish) {
    // One row: the label, a switch, and the value (or "none" and what that means).
    const itemType = t === "array" ? schemaType(resolve(ctx.root, inner.items ?? {}))! : null;
    return (
      <FieldShell ctx={ctx} schema={schema} resolved={schema} inner={inner} path={path} label={label} showUnit={on}>
        {(id, describedBy) => (
          <span className="sf-nullable-row">
            <input type="checkbox" checked={on} aria-label={`Set ${label}`} onChange={(e) => turn(e.target.checked)} />
            {on ? (
              itemType ? (
                <ListInput id={id} itemType={itemType} value={value} onChange={(v) => ctx.set(path, v)} describedBy={describedBy} invalid={!!ctx.errors[key]} />
              ) : (
                <ScalarInput id={id} ctx={ctx} schema={inner} path={path} readOnly={false} describedBy={describedBy} />
              )
            ) : (
              <span className="sf-none muted small" id={id}>
                none
              </span>
            )}
          </span>
        )}
      </FieldShell>
    );
  }
  return (
    <div className="sf-nullable" data-path={key}>
      <label className="sf-toggle" title={key}>
        <input type="checkbox" checked={on} onChange={(e) => turn(e.target.checked)} /> Set {label}
      </label>
      {on ? null : (
        <span className="sf-none muted small">
          {label}: none{schema.description || inner.description ? ` · ${schema.description ?? inner.description}` : ""}
        </span>
      )}
      {on ? <SchemaField ctx={ctx} schema={{ ...inner, title: label }} path={path} name={path[path.length - 1] ?? ""} /> : <ErrorText ctx={ctx} path={path} />}
    </div>
  );
}

/** One value that is one member of a discriminated union: pick the member, then its own fields. */
function TaggedField({ ctx, schema, path, label }: { ctx: Ctx; schema: JsonSchema; path: Path; label: string }) {
  const id = useId();
  const union = discriminatedUnion(ctx.root, schema)!;
  const value = getIn(ctx.value, path);
  const member = memberOf(union, value);
  return (
    <fieldset className="sf-fieldset" data-path={pathKey(path)}>
      <legend title={pathKey(path)}>{label}</legend>
      <div className="field">
        <label htmlFor={id}>Kind</label>
        <select
          id={id}
          value={member?.value ?? ""}
          onChange={(e) => {
            const m = union.members.find((x) => x.value === e.target.value);
            if (m) ctx.set(path, memberDefault(ctx.root, union, m));
          }}
        >
          {member ? null : <option value="">—</option>}
          {union.members.map((m) => (
            <option key={m.value} value={m.value}>
              {m.title}
            </option>
          ))}
        </select>
        {member?.description ? <p className="field__hint">{member.description}</p> : null}
        <ErrorText ctx={ctx} path={[...path, union.property]} />
      </div>
      <ErrorText ctx={ctx} path={path} />
      {member ? <ObjectFields ctx={ctx} schema={member.schema} path={path} skip={union.property} /> : null}
    </fieldset>
  );
}

function branchLabel(root: JsonSchema, s: JsonSchema, i: number): string {
  const r = resolve(root, s);
  return r.title ?? schemaType(r) ?? `option ${i + 1}`;
}

function UnionField({ ctx, schema, value, path, label }: { ctx: Ctx; schema: JsonSchema; value: unknown; path: Path; label: string }) {
  const id = useId();
  const branches = (schema.anyOf ?? schema.oneOf)!;
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
      <label htmlFor={id} title={pathKey(path)}>
        {label} (kind)
      </label>
      <select id={id} value={index} onChange={(e) => ctx.set(path, defaultValue(ctx.root, branches[Number(e.target.value)]!))}>
        {branches.map((b, i) => (
          <option key={i} value={i}>
            {branchLabel(ctx.root, b, i)}
          </option>
        ))}
      </select>
      <SchemaField ctx={ctx} schema={{ ...branches[index]!, title: label }} path={path} name={path[path.length - 1] ?? ""} />
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
      <div className="sf-labelrow">
        <span className="sf-label" id={id} title={key}>
          {label}
        </span>
        <code className="sf-code" title={`In YAML: ${key}`}>
          {key}
        </code>
      </div>
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
      <NumberInput id={id} schema={schema} value={value} onChange={(v) => ctx.set(path, v)} invalid={!!ctx.errors[pathKey(path)]} label={label} />
    );
  }
  return <input id={id} aria-label={label} type="text" value={value == null ? "" : String(value)} onChange={(e) => ctx.set(path, e.target.value)} />;
}

function ArrayField({ ctx, schema, value, path, label }: { ctx: Ctx; schema: JsonSchema; value: unknown; path: Path; label: string }) {
  const arr = Array.isArray(value) ? value : [];
  const itemSchema = schema.items ?? {};
  const key = pathKey(path);
  const canAdd = schema.maxItems === undefined || arr.length < schema.maxItems;
  return (
    <fieldset className="sf-fieldset sf-array" data-path={key}>
      <legend title={key}>{label}</legend>
      {schema.description ? <p className="field__hint">{schema.description}</p> : null}
      <ErrorText ctx={ctx} path={path} />
      {arr.length === 0 ? <p className="muted small">None.</p> : null}
      <ol className="sf-items">
        {arr.map((_, i) => (
          <li key={i} className="sf-item" data-testid={`item-${key}`}>
            <SchemaField ctx={ctx} schema={itemSchema} path={[...path, i]} name={i} />
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
      <div className="sf-labelrow">
        <label htmlFor={id} title={key}>
          {label} (JSON)
        </label>
        <code className="sf-code" title={`In YAML: ${key}`}>
          {key}
        </code>
      </div>
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
            setBad('must be a JSON object, e.g. {"dropout": 0.2}');
          }
        }}
      />
      <Hint id={`${id}-hint`} schema={schema} />
      {bad ? <p className="field__error">{bad}</p> : <ErrorText ctx={ctx} path={path} />}
    </div>
  );
}
