/**
 * How the run form is laid out from the schema alone: the few fields shown first (the task's
 * `simple_fields`), then one folded section per top-level object of the config, each counting what differs
 * from the base config (the server's answer for this dataset and model) and the errors inside it.
 */
import { changedPaths, isUnder } from "./configDiff";
import { discriminatedUnion, humanize, labelOf, nullableInner, resolve, schemaAt, schemaType, type FieldErrors, type JsonSchema } from "./schema";

/** When `GET /api/tasks` does not name them: classification's. */
export const FALLBACK_SIMPLE_FIELDS = ["schedule.epochs", "data.input_size", "data.batch_size", "model.pretrained"] as const;

/** Set by the page's own pickers (the dataset and the model cards), never in a section. */
export const PICKED_FIELDS = ["data.dataset_id", "model.architecture"] as const;

/** Top-level fields that are the form itself, not settings: the version and the task. */
const FIXED_TOP = new Set(["version", "task"]);

export interface Section {
  /** Top-level property name ("schedule"), or a dotted path for a section of its own ("data.augment"). */
  path: string;
  title: string;
  description: string | undefined;
  /** Paths not shown in it (shown elsewhere on the page). */
  hidden: string[];
  /** What it holds, in words (its own fields' labels, or a pipeline's step kinds): a hint while folded. */
  fields: string[];
}

function objectOf(root: JsonSchema, raw: JsonSchema): JsonSchema | null {
  const r = resolve(root, raw);
  const inner = nullableInner(root, r) ?? r;
  return schemaType(inner) === "object" && inner.properties ? inner : null;
}

/** The simple fields that this schema has (a task's list may name fields another task lacks). */
export function simpleFieldsIn(root: JsonSchema, wanted: readonly string[] | null | undefined): string[] {
  const list = wanted && wanted.length ? wanted : FALLBACK_SIMPLE_FIELDS;
  return list.filter((p) => !!schemaAt(root, p.split(".")));
}

/** Epochs or iterations (exactly one is set): where the schema has both beside each other. */
export function alternativesIn(root: JsonSchema): Record<string, string[]> {
  return schemaAt(root, ["schedule", "epochs"]) && schemaAt(root, ["schedule", "iterations"])
    ? { "schedule.epochs": ["schedule.iterations"] }
    : {};
}

/** Arrays of discriminated unions inside a section (the augmentation pipeline): each a section of its own. */
function pipelinesIn(root: JsonSchema, section: string, obj: JsonSchema): string[] {
  return Object.entries(obj.properties ?? {}).flatMap(([name, prop]) => {
    const r = resolve(root, prop);
    const arr = nullableInner(root, r) ?? r;
    return schemaType(arr) === "array" && arr.items && discriminatedUnion(root, arr.items) ? [`${section}.${name}`] : [];
  });
}

/** Every leaf field path the schema describes under `path` (objects are walked; anything else is a leaf). */
export function leafFields(root: JsonSchema, raw: JsonSchema, path: string): string[] {
  const obj = objectOf(root, raw);
  if (!obj || discriminatedUnion(root, raw)) return [path];
  return Object.entries(obj.properties ?? {}).flatMap(([k, p]) => leafFields(root, p, path ? `${path}.${k}` : k));
}

/**
 * The folded sections, in the schema's order: one per top-level object (model, data, loss, schedule, …),
 * and one per pipeline inside one (data.augment, right after its section); a section left with no field
 * of its own (all shown above) is not listed. `shownAbove`: paths the simple state already shows.
 */
export function sectionsOf(root: JsonSchema, shownAbove: readonly string[], alternatives: Record<string, readonly string[]> = {}): Section[] {
  const top = resolve(root, root);
  const above = [...shownAbove, ...shownAbove.flatMap((p) => alternatives[p] ?? []), ...PICKED_FIELDS];
  const out: Section[] = [];
  for (const [name, raw] of Object.entries(top.properties ?? {})) {
    if (FIXED_TOP.has(name)) continue;
    const obj = objectOf(root, raw);
    if (!obj) continue;
    const pipelines = pipelinesIn(root, name, obj);
    const hidden = [...above.filter((p) => isUnder(p, name)), ...pipelines];
    const own = leafFields(root, raw, name).filter((leaf) => !hidden.some((h) => isUnder(leaf, h)));
    if (own.length) {
      const fields = Object.entries(obj.properties ?? {})
        .filter(([k]) => !hidden.some((h) => isUnder(`${name}.${k}`, h)))
        .map(([k, p]) => labelOf(k, p, resolve(root, p)));
      out.push({ path: name, title: labelOf(name, raw, resolve(root, raw)), description: obj.description, hidden, fields });
    }
    for (const p of pipelines) {
      const at = schemaAt(root, p.split("."))!;
      out.push({ path: p, title: labelOf(p.split(".").pop()!, at.raw, at.schema), description: at.schema.description, hidden: [], fields: [] });
    }
  }
  return out;
}

/** Top-level fields that are not sections, the version nor the task (e.g. the run's name). */
export function topLevelFields(root: JsonSchema): string[] {
  const top = resolve(root, root);
  return Object.entries(top.properties ?? {})
    .filter(([name, raw]) => !FIXED_TOP.has(name) && !objectOf(root, raw) && !("const" in resolve(root, raw)))
    .map(([name]) => name);
}

function inSection(key: string, section: Section): boolean {
  return isUnder(key, section.path) && !section.hidden.some((h) => isUnder(key, h));
}

/** How many leaf fields of `section` differ from the base config. */
export function changedIn(section: Section, base: unknown, current: unknown): number {
  if (base == null || current == null) return 0;
  return changedPaths(base, current).filter((k) => inSection(k, section)).length;
}

/** The errors (dotted path → message) that fall inside `section`. */
export function errorsIn(section: Section, errors: FieldErrors): string[] {
  return Object.keys(errors).filter((k) => k !== "" && inSection(k, section));
}

/** An architecture's options as the catalog states them (one OptionSpec each). */
export interface CatalogOption {
  name: string;
  type: "int" | "float" | "bool" | "choice";
  default?: unknown;
  choices?: unknown[] | null;
  minimum?: number | null;
  maximum?: number | null;
  description?: string;
}

/** A catalog entry's options as a schema for `model.options`, so the form shows them as fields (none: null). */
export function optionsSchema(options: readonly CatalogOption[] | undefined): JsonSchema | null {
  if (!options?.length) return null;
  const properties: Record<string, JsonSchema> = {};
  for (const o of options) {
    const s: JsonSchema = { title: humanize(o.name) };
    if (o.type === "int") s.type = "integer";
    else if (o.type === "float") s.type = "number";
    else if (o.type === "bool") s.type = "boolean";
    else s.enum = o.choices ?? [];
    if (o.default !== undefined && o.default !== null) s.default = o.default;
    if (o.minimum != null) s.minimum = o.minimum;
    if (o.maximum != null) s.maximum = o.maximum;
    if (o.description) s.description = o.description;
    properties[o.name] = s;
  }
  return { type: "object", title: "Options", description: "This architecture's own options (from the catalog)", properties };
}
