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
  /** The unit a number is in ("epochs", "px"): shown after the input. A studio extension of JSON Schema. */
  unit?: string;
  /** OpenAPI's discriminator of a `oneOf` (pydantic emits it for a discriminated union). */
  discriminator?: { propertyName: string; mapping?: Record<string, string> };
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

/** "eval_interval" → "Eval interval"; "HorizontalFlip" → "Horizontal flip". */
export function humanize(name: string): string {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/[_\s]+/g, " ")
    .trim()
    .toLowerCase();
  return words ? words[0]!.toUpperCase() + words.slice(1) : name;
}

/**
 * A field's label in words: the title the property itself states, else its name in words (a `$ref`'d
 * section's own title is its class name, e.g. "ModelSpec", which is not for people); an array item: "#n".
 * `raw` is the property's schema before `$ref` resolution.
 */
export function labelOf(name: string | number, raw: JsonSchema, resolved: JsonSchema = raw): string {
  if (typeof name === "number") return `#${name + 1}`;
  if (raw.title) return raw.title;
  return name ? humanize(name) : (resolved.title ?? "");
}

export interface UnionMember {
  /** The discriminator's value, e.g. "horizontal_flip". */
  value: string;
  /** In words: the member's title when it has words in it, else the value in words ("Horizontal flip"). */
  title: string;
  description: string | undefined;
  /** The member, resolved. */
  schema: JsonSchema;
}

export interface DiscriminatedUnion {
  /** The property that tells the members apart, e.g. "name". */
  property: string;
  members: UnionMember[];
}

function constOf(root: JsonSchema, s: JsonSchema | undefined): unknown {
  if (!s) return undefined;
  const r = resolve(root, s);
  if ("const" in r) return r.const;
  if (r.enum?.length === 1) return r.enum[0];
  return undefined;
}

/**
 * A `oneOf`/`anyOf` of objects told apart by one property holding a constant (pydantic's discriminated
 * union: `{oneOf: [{$ref}...], discriminator: {propertyName, mapping}}`); null for any other schema.
 */
export function discriminatedUnion(root: JsonSchema, schema0: JsonSchema): DiscriminatedUnion | null {
  const schema = resolve(root, schema0);
  const branches = schema.oneOf ?? schema.anyOf;
  if (!branches?.length) return null;
  const resolved = branches.map((b) => resolve(root, b));
  if (resolved.some((b) => schemaType(b) !== "object" || !b.properties)) return null;
  let property = schema.discriminator?.propertyName;
  if (!property) {
    const first = resolved[0]!;
    property = Object.keys(first.properties ?? {}).find((k) =>
      resolved.every((b) => typeof constOf(root, b.properties?.[k]) === "string"),
    );
  }
  if (!property) return null;
  const members: UnionMember[] = [];
  for (const [i, b] of resolved.entries()) {
    let value = constOf(root, b.properties?.[property]);
    if (value === undefined && schema.discriminator?.mapping) {
      const ref = branches[i]!.$ref;
      value = Object.entries(schema.discriminator.mapping).find(([, r]) => r === ref)?.[0];
    }
    if (typeof value !== "string") return null;
    const title = b.title && /\s/.test(b.title) ? b.title : humanize(value);
    members.push({ value, title, description: b.description, schema: b });
  }
  return { property, members };
}

/** The member `value` is (by its discriminator), or undefined. */
export function memberOf(union: DiscriminatedUnion, value: unknown): UnionMember | undefined {
  if (!value || typeof value !== "object" || Array.isArray(value)) return undefined;
  const tag = (value as Record<string, unknown>)[union.property];
  return union.members.find((m) => m.value === tag);
}

/** A new value of one member: its fields' defaults, its discriminator set. */
export function memberDefault(root: JsonSchema, union: DiscriminatedUnion, member: UnionMember): Record<string, unknown> {
  const d = defaultValue(root, member.schema);
  const base = d && typeof d === "object" && !Array.isArray(d) ? (d as Record<string, unknown>) : {};
  return { ...base, [union.property]: member.value };
}

/** The schema a dotted path leads to (objects' properties, nullable unions, arrays' items); undefined if none. */
export function schemaAt(root: JsonSchema, path: Path): { raw: JsonSchema; schema: JsonSchema } | undefined {
  let raw: JsonSchema = root;
  let schema = resolve(root, root);
  for (const seg of path) {
    const inner = nullableInner(root, schema);
    if (inner) schema = inner;
    let next: JsonSchema | undefined;
    if (typeof seg === "number" || /^\d+$/.test(seg)) {
      next = schema.prefixItems?.[Number(seg)] ?? schema.items;
    } else {
      next = schema.properties?.[seg];
    }
    if (!next) return undefined;
    raw = next;
    schema = resolve(root, next);
  }
  return { raw, schema };
}

/** A dotted path's label in words and unit (from the schema), e.g. {label: "Input size", unit: "px"}. */
export function fieldLabel(root: JsonSchema, dotted: string): { label: string; unit: string | undefined } {
  const path = dotted.split(".");
  const at = schemaAt(root, path);
  const name = path[path.length - 1] ?? dotted;
  if (!at) return { label: humanize(name), unit: undefined };
  const inner = nullableInner(root, at.schema);
  return { label: labelOf(name, at.raw, at.schema), unit: at.raw.unit ?? at.schema.unit ?? inner?.unit };
}

/** "data.augment.0.p" → ["data", "augment", 0, "p"]. */
export function parsePath(dotted: string): Path {
  return dotted ? dotted.split(".").map((p) => (/^\d+$/.test(p) ? Number(p) : p)) : [];
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
  const tagged = discriminatedUnion(root, schema);
  if (tagged) {
    if (!value || typeof value !== "object" || Array.isArray(value)) return fail(value == null ? "required" : "must be an object");
    const member = memberOf(tagged, value);
    if (!member) {
      const k = pathKey([...path, tagged.property]);
      if (!(k in out)) out[k] = `must be one of ${tagged.members.map((m) => m.value).join(", ")}`;
      return out;
    }
    return validate(root, member.schema, value, path, out);
  }
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
