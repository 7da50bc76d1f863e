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
