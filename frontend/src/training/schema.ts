/**
 * A small JSON Schema toolkit for the generated run-config form: `$ref`/`$defs` resolution, defaults,
 * and validation against the bounds the schema states (types, enums, min/max, lengths, tuples, unions).
 * Only what pydantic emits is supported; anything else is accepted as-is and left to the server.
 */

export interface JsonSchema {
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  prefixItems?: JsonSchema[];
  minItems?: number;
  maxItems?: number;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
}

export type JsonValue = unknown;
export type Path = (string | number)[];
/** Dotted path ("schedule.lr", "data.augment.0.p") → message. */
export type FieldErrors = Record<string, string>;

export function pathKey(path: Path): string {
  return path.map(String).join(".");
}

/** Follow `$ref` (local `#/$defs/...` only), keeping the referring schema's own keywords (title, default…). */
export function resolve(root: JsonSchema, schema: JsonSchema): JsonSchema {
  let current = schema;
  const seen = new Set<string>();
  while (current.$ref) {
    const ref = current.$ref;
    if (seen.has(ref)) break;
    seen.add(ref);
    const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
    const target = match ? (root as Record<string, Record<string, JsonSchema> | undefined>)[match[1]!]?.[match[2]!] : undefined;
    if (!target) break;
    const { $ref: _drop, ...own } = current;
    current = { ...target, ...own };
  }
  return current;
}

function isNullSchema(s: JsonSchema): boolean {
  return s.type === "null";
}

/** For `anyOf: [X, {type: null}]`: the X (resolved); `null` when the schema is not a nullable union. */
export function nullableInner(root: JsonSchema, schema: JsonSchema): JsonSchema | null {
  const options = schema.anyOf ?? schema.oneOf;
  if (!options || !options.some(isNullSchema)) return null;
  const rest = options.filter((o) => !isNullSchema(o));
  if (rest.length !== 1) return null;
  return { ...resolve(root, rest[0]!), title: schema.title ?? rest[0]!.title, description: schema.description ?? rest[0]!.description };
}

export function schemaType(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== "null");
  if (schema.type) return schema.type;
  if (schema.properties) return "object";
  if (schema.prefixItems || schema.items) return "array";
  if (schema.enum) return typeof schema.enum[0] === "number" ? "number" : "string";
  return undefined;
}

export function labelOf(name: string | number, schema: JsonSchema): string {
  return typeof name === "number" ? `#${name + 1}` : name || schema.title || "";
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** The value a fresh field starts with: its default, else an object of its properties' defaults. */
export function defaultValue(root: JsonSchema, schema0: JsonSchema): JsonValue {
  const schema = resolve(root, schema0);
  if ("default" in schema) return clone(schema.default);
  if ("const" in schema) return schema.const;
  const inner = nullableInner(root, schema);
  if (inner) return null;
  const union = schema.anyOf ?? schema.oneOf;
  if (union?.length) return defaultValue(root, union[0]!);
  const type = schemaType(schema);
  if (type === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, p] of Object.entries(schema.properties ?? {})) {
      const v = defaultValue(root, p);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }
  if (type === "array") {
    if (schema.prefixItems) return schema.prefixItems.map((p) => defaultValue(root, p) ?? 0);
    return [];
  }
  if (schema.enum?.length) return schema.enum[0];
  if (type === "boolean") return false;
  return undefined;
}

function typeMatches(type: string, value: unknown): boolean {
  switch (type) {
    case "integer":
      return typeof value === "number" && Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "null":
      return value === null;
    case "array":
      return Array.isArray(value);
    case "object":
      return !!value && typeof value === "object" && !Array.isArray(value);
    default:
      return true;
  }
}

const TYPE_NAMES: Record<string, string> = {
  integer: "a whole number",
  number: "a number",
  string: "text",
  boolean: "true or false",
  array: "a list",
  object: "an object",
};

function fmt(n: number): string {
  return String(n);
}

/** Validate `value` against `schema`; errors keyed by dotted path (the first one per path). */
export function validate(root: JsonSchema, schema0: JsonSchema, value: unknown, path: Path = [], out: FieldErrors = {}): FieldErrors {
  const schema = resolve(root, schema0);
  const key = pathKey(path);
  const fail = (msg: string) => {
    if (!(key in out)) out[key] = msg;
    return out;
  };
  const union = schema.anyOf ?? schema.oneOf;
  if (union) {
    if (value === null && union.some(isNullSchema)) return out;
    const branches = union.filter((b) => !isNullSchema(b));
    let best: FieldErrors | null = null;
    for (const branch of branches) {
      const errs = validate(root, branch, value, path, {});
      if (Object.keys(errs).length === 0) return out;
      if (!best || Object.keys(errs).length < Object.keys(best).length) best = errs;
    }
    if (value === null || value === undefined) return fail("required");
    Object.assign(out, Object.fromEntries(Object.entries(best ?? {}).filter(([k]) => !(k in out))));
    return out;
  }
  if ("const" in schema && value !== schema.const) return fail(`must be ${JSON.stringify(schema.const)}`);
  if (schema.enum && !schema.enum.includes(value)) {
    return fail(`must be one of ${schema.enum.map((e) => String(e)).join(", ")}`);
  }
  const type = schemaType(schema);
  if (value === undefined || value === null || value === "") {
    if (type === "string" && value === "") {
      // an empty string is a string; minLength decides below
    } else {
      return fail("required");
    }
  }
  if (type && !typeMatches(type, value)) {
    if ((type === "integer" || type === "number") && typeof value === "number" && type === "integer") {
      return fail("must be a whole number");
    }
    return fail(`must be ${TYPE_NAMES[type] ?? type}`);
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) return fail(`must be ≥ ${fmt(schema.minimum)}`);
    if (schema.maximum !== undefined && value > schema.maximum) return fail(`must be ≤ ${fmt(schema.maximum)}`);
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) {
      return fail(`must be > ${fmt(schema.exclusiveMinimum)}`);
    }
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) {
      return fail(`must be < ${fmt(schema.exclusiveMaximum)}`);
    }
  }
  if (typeof value === "string") {
    if (schema.minLength !== undefined && value.length < schema.minLength) return fail(`at least ${schema.minLength} characters`);
    if (schema.maxLength !== undefined && value.length > schema.maxLength) return fail(`at most ${schema.maxLength} characters`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) return fail(`needs at least ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) return fail(`takes at most ${schema.maxItems} items`);
    value.forEach((item, i) => {
      const itemSchema = schema.prefixItems?.[i] ?? schema.items;
      if (itemSchema) validate(root, itemSchema, item, [...path, i], out);
    });
  }
  if (type === "object" && value && typeof value === "object" && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const props = schema.properties ?? {};
    for (const name of schema.required ?? []) {
      if (obj[name] === undefined) {
        const k = pathKey([...path, name]);
        if (!(k in out)) out[k] = "required";
      }
    }
    for (const [name, v] of Object.entries(obj)) {
      const p = props[name];
      if (p) {
        if (v !== undefined) validate(root, p, v, [...path, name], out);
      } else if (schema.additionalProperties === false) {
        const k = pathKey([...path, name]);
        if (!(k in out)) out[k] = "not a known field";
      }
    }
  }
  return out;
}

/** `obj` with the value at `path` replaced (copies along the path; the input is left as it was). */
export function setIn(obj: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  if (typeof head === "number") {
    const arr = Array.isArray(obj) ? [...obj] : [];
    arr[head] = setIn(arr[head], rest, value);
    return arr;
  }
  const base = obj && typeof obj === "object" && !Array.isArray(obj) ? (obj as Record<string, unknown>) : {};
  return { ...base, [head!]: setIn(base[head!], rest, value) };
}

export function getIn(obj: unknown, path: Path): unknown {
  let cur = obj;
  for (const p of path) {
    if (cur === null || cur === undefined || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

/** Field errors of a `POST /api/configs/validate` 422, keyed like the form's paths ("config." dropped). */
export function serverFieldErrors(fieldErrors: Record<string, string>): FieldErrors {
  const out: FieldErrors = {};
  for (const [k, msg] of Object.entries(fieldErrors)) {
    const key = k.startsWith("config.") ? k.slice("config.".length) : k === "config" ? "" : k;
    if (!(key in out)) out[key] = msg;
  }
  return out;
}
