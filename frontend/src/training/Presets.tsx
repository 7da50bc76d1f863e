import type { Preset } from "../api/runForm";
import { fieldLabel, getIn, parsePath, setIn, type JsonSchema } from "./schema";

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A value as a person reads it: 64, on/off, "480, 640", none. */
export function showSetting(v: unknown): string {
  if (v === null || v === undefined) return "none";
  if (v === true) return "on";
  if (v === false) return "off";
  if (Array.isArray(v)) return v.map(showSetting).join(", ");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export interface PresetChange {
  path: string;
  label: string;
  from: unknown;
  to: unknown;
  text: string;
}

/** What applying `preset` to `config` would change, in words ("Epochs 10 → 3", "Input size 64 → 128 px"). */
export function presetChanges(root: JsonSchema, preset: Preset, config: unknown): PresetChange[] {
  return Object.entries(preset.changes).flatMap(([path, to]) => {
    const from = getIn(config, parsePath(path));
    if (same(from, to)) return [];
    const { label, unit } = fieldLabel(root, path);
    const text = `${label} ${showSetting(from)} → ${showSetting(to)}${unit ? ` ${unit}` : ""}`;
    return [{ path, label, from, to, text }];
  });
}

export function applyPreset(config: unknown, preset: Preset): unknown {
  return Object.entries(preset.changes).reduce((c, [path, v]) => setIn(c, parsePath(path), v), config);
}

/** Whether `config` holds every value `preset` sets. */
export function matchesPreset(config: unknown, preset: Preset): boolean {
  return Object.entries(preset.changes).every(([path, v]) => same(getIn(config, parsePath(path)), v));
}

export interface PresetsProps {
  root: JsonSchema;
  presets: Preset[];
  config: unknown;
  onApply: (next: unknown) => void;
}

/** "Quick look", "Balanced", "Best": each says what it changes in the current config; a click applies it. */
export function Presets({ root, presets, config, onApply }: PresetsProps) {
  if (!presets.length) return null;
  return (
    <div className="presets" role="group" aria-label="Presets" data-testid="presets">
      <span className="presets__label">Presets</span>
      <ul className="presets__list">
        {presets.map((preset) => {
          const active = matchesPreset(config, preset);
          const changes = presetChanges(root, preset, config);
          return (
            <li key={preset.name}>
              <button
                type="button"
                className={`preset${active ? " preset--active" : ""}`}
                aria-pressed={active}
                data-testid={`preset-${preset.name}`}
                title={preset.description}
                onClick={() => onApply(applyPreset(config, preset))}
              >
                <span className="preset__title">
                  {preset.title}
                  {active ? <span className="preset__on"> ✓ in use</span> : null}
                </span>
                <span className="preset__changes small" data-testid="preset-changes">
                  {active ? preset.description : changes.map((c) => c.text).join(", ") || preset.description}
                </span>
              </button>
            </li>
          );
        })}
      </ul>
    </div>
  );
}
