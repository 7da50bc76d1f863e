import { useId, useMemo, useState } from "react";
import type { Finding } from "../api/types";
import { StatusBadge } from "../components/StatusBadge";

const SHOWN_PER_GROUP = 50;

export interface FindingGroup {
  level: Finding["level"];
  code: string;
  findings: Finding[];
}

/** Errors before warnings; within a level, the commonest code first, then by name. */
export function groupFindings(findings: Finding[]): FindingGroup[] {
  const groups = new Map<string, FindingGroup>();
  for (const f of findings) {
    const key = `${f.level}\u0000${f.code}`;
    let group = groups.get(key);
    if (!group) {
      group = { level: f.level, code: f.code, findings: [] };
      groups.set(key, group);
    }
    group.findings.push(f);
  }
  return [...groups.values()].sort(
    (a, b) =>
      (a.level === b.level ? 0 : a.level === "error" ? -1 : 1) ||
      b.findings.length - a.findings.length ||
      a.code.localeCompare(b.code),
  );
}

function matches(f: Finding, text: string): boolean {
  if (!text) return true;
  const t = text.toLowerCase();
  return [f.code, f.message, f.file ?? "", f.field ?? ""].some((s) => s.toLowerCase().includes(t));
}

function FindingItem({ finding }: { finding: Finding }) {
  return (
    <li className="finding" data-testid="finding">
      <p className="finding__message">{finding.message}</p>
      {finding.file || finding.shape != null || finding.field ? (
        <p className="finding__where">
          {finding.file ? (
            <span>
              file <code data-testid="finding-file">{finding.file}</code>
            </span>
          ) : null}
          {finding.shape != null ? (
            <span>
              shape <code data-testid="finding-shape">{finding.shape}</code>
            </span>
          ) : null}
          {finding.field ? (
            <span>
              field <code data-testid="finding-field">{finding.field}</code>
            </span>
          ) : null}
        </p>
      ) : null}
    </li>
  );
}

function Group({ group }: { group: FindingGroup }) {
  const [all, setAll] = useState(false);
  const shown = all ? group.findings : group.findings.slice(0, SHOWN_PER_GROUP);
  return (
    <details className={`report-group report-group--${group.level}`} open data-testid="report-group" data-code={group.code}>
      <summary>
        <StatusBadge tone={group.level === "error" ? "bad" : "warn"}>{group.level}</StatusBadge>
        <code className="report-group__code">{group.code}</code>
        <span className="report-group__count" data-testid="report-group-count">
          {group.findings.length}
        </span>
      </summary>
      <ul className="findings">
        {shown.map((f, i) => (
          <FindingItem key={i} finding={f} />
        ))}
      </ul>
      {group.findings.length > shown.length ? (
        <button type="button" className="link-button" onClick={() => setAll(true)}>
          Show all {group.findings.length}
        </button>
      ) : null}
    </details>
  );
}

/** The import report: findings grouped by level and code, each naming its file, shape and field. */
export function ImportReport({ findings }: { findings: Finding[] }) {
  const id = useId();
  const [level, setLevel] = useState<"all" | Finding["level"]>("all");
  const [text, setText] = useState("");
  const errors = findings.filter((f) => f.level === "error").length;
  const warnings = findings.length - errors;
  const skipped = findings.filter((f) => f.skipped).length;
  const groups = useMemo(
    () => groupFindings(findings.filter((f) => (level === "all" || f.level === level) && matches(f, text.trim()))),
    [findings, level, text],
  );

  return (
    <section className="card" aria-labelledby={`${id}-title`} data-testid="import-report">
      <div className="section-head">
        <h2 id={`${id}-title`}>Import report</h2>
        <span className="muted small" data-testid="report-summary">
          {findings.length === 0
            ? "No problems found"
            : `${errors} ${errors === 1 ? "error" : "errors"}, ${warnings} ${warnings === 1 ? "warning" : "warnings"}` +
              (skipped ? ` (${skipped} bad ${skipped === 1 ? "shape" : "shapes"} left out)` : "")}
        </span>
      </div>
      {findings.length === 0 ? (
        <p className="muted">Every file was read without errors or warnings.</p>
      ) : (
        <>
          <div className="filters" role="group" aria-label="Filter the report">
            <div className="field field--inline">
              <label htmlFor={`${id}-level`}>Level</label>
              <select id={`${id}-level`} value={level} onChange={(e) => setLevel(e.target.value as typeof level)}>
                <option value="all">All ({findings.length})</option>
                <option value="error">Errors ({errors})</option>
                <option value="warning">Warnings ({warnings})</option>
              </select>
            </div>
            <div className="field field--inline field--grow">
              <label htmlFor={`${id}-text`}>Search</label>
              <input
                id={`${id}-text`}
                type="search"
                placeholder="file, code or message"
                value={text}
                onChange={(e) => setText(e.target.value)}
              />
            </div>
          </div>
          {groups.length === 0 ? <p className="muted">No finding matches these filters.</p> : null}
          {groups.map((g) => (
            <Group key={`${g.level}-${g.code}`} group={g} />
          ))}
        </>
      )}
    </section>
  );
}
