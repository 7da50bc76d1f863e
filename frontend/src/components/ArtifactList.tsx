import type { Artifact } from "../api/training";
import { formatBytes } from "../datasets/format";

/** Files a job or model produced: images open in place, anything else downloads under its name. */
export function ArtifactList({ artifacts, testId }: { artifacts: Artifact[]; testId: string }) {
  return (
    <ul className="artifacts" data-testid={testId}>
      {artifacts.map((a) => (
        <li key={a.id}>
          <a href={a.url} download={a.media_type.startsWith("image/") ? undefined : a.name}>
            {a.name}
          </a>{" "}
          <span className="muted small">
            {a.kind} · {formatBytes(a.size_bytes)}
          </span>
        </li>
      ))}
    </ul>
  );
}
