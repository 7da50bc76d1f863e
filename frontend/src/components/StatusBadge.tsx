export type Tone = "ok" | "bad" | "warn" | "neutral";

export function StatusBadge({ tone, children, testId }: { tone: Tone; children: string; testId?: string }) {
  return (
    <span className={`badge badge--${tone}`} data-testid={testId}>
      {children}
    </span>
  );
}
