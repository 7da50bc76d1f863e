export function Loading({ label = "Loading…", testId }: { label?: string; testId?: string }) {
  return (
    <p className="loading" role="status" aria-live="polite" data-testid={testId}>
      <span className="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}
