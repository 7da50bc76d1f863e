/** Flatten configs to key paths and keep the keys whose values differ between runs. */

export type Flat = Record<string, unknown>;

/** `{a: {b: 1}, c: [{d: 2}]}` → `{"a.b": 1, "c.0.d": 2}`; empty objects and arrays stay as leaves. */
export function flatten(value: unknown, prefix = "", out: Flat = {}): Flat {
  if (value && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
    if (entries.length === 0) {
      if (prefix) out[prefix] = Array.isArray(value) ? [] : {};
      return out;
    }
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    return out;
  }
  if (prefix) out[prefix] = value;
  return out;
}

export interface DiffRow {
  key: string;
  /** One value per config; `undefined` where a config has no such key. */
  values: unknown[];
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The keys (sorted) whose values are not the same in every config. */
export function diffConfigs(configs: readonly unknown[]): DiffRow[] {
  const flats = configs.map((c) => flatten(c));
  const keys = [...new Set(flats.flatMap((f) => Object.keys(f)))].sort();
  const rows: DiffRow[] = [];
  for (const key of keys) {
    const values = flats.map((f) => (key in f ? f[key] : undefined));
    if (values.some((v) => !same(v, values[0]))) rows.push({ key, values });
  }
  return rows;
}

export function showValue(v: unknown): string {
  if (v === undefined) return "—";
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/** The leaf paths ("schedule.lr", "data.augment.1.p") whose values differ between `base` and `current`. */
export function changedPaths(base: unknown, current: unknown): string[] {
  const a = flatten(base);
  const b = flatten(current);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const under = (flat: Flat, k: string) => Object.keys(flat).some((x) => x.startsWith(`${k}.`));
  // An empty object or list on one side whose other side has keys under it is counted by those keys alone.
  return keys.filter((k) => !same(a[k], b[k]) && !(!(k in a) && under(a, k)) && !(!(k in b) && under(b, k)));
}

/** `key` is `prefix` or lies under it ("data.augment.0.p" under "data.augment"). */
export function isUnder(key: string, prefix: string): boolean {
  return prefix === "" || key === prefix || key.startsWith(`${prefix}.`);
}

/**
 * What a person changed from `base`, as paths to carry over to another base: a change inside a list carries
 * the whole list (its items are not matched by index across bases); `skip` paths (and below) are left out.
 */
export function userChanges(base: unknown, current: unknown, skip: readonly string[] = []): string[] {
  const out = new Set<string>();
  for (const key of changedPaths(base, current)) {
    if (skip.some((s) => isUnder(key, s))) continue;
    const parts = key.split(".");
    let cut = parts.length;
    let node: unknown = current;
    let nodeBase: unknown = base;
    for (let i = 0; i < parts.length; i++) {
      if (Array.isArray(node) || Array.isArray(nodeBase)) {
        cut = i;
        break;
      }
      node = node && typeof node === "object" ? (node as Record<string, unknown>)[parts[i]!] : undefined;
      nodeBase = nodeBase && typeof nodeBase === "object" ? (nodeBase as Record<string, unknown>)[parts[i]!] : undefined;
    }
    out.add(parts.slice(0, cut).join("."));
  }
  return [...out].filter((k) => k !== "");
}
