import { useHealth, HEALTH_REFRESH_MS } from "../api/queries";
import { errorMessage } from "../api/errors";
import type { Health, QueueHealth, WorkerInfo } from "../api/types";
import { Loading } from "../components/Loading";
import { StatusBadge } from "../components/StatusBadge";
import { formatDateTime, timeAgo } from "../time";

/** Queues always shown, even when the API reports no entry for them. */
export const KNOWN_QUEUES = ["cpu", "gpu"] as const;

function queueNames(health: Health): string[] {
  const extra = Object.keys(health.queues ?? {}).filter((q) => !(KNOWN_QUEUES as readonly string[]).includes(q));
  return [...KNOWN_QUEUES, ...extra.sort()];
}

function ComponentCard({
  title,
  ok,
  detail,
  testId,
  extra,
}: {
  title: string;
  ok: boolean;
  detail: string;
  testId: string;
  extra?: string | undefined;
}) {
  return (
    <section className="card status-card" aria-labelledby={`${testId}-title`} data-testid={testId}>
      <div className="status-card__head">
        <h2 id={`${testId}-title`}>{title}</h2>
        <StatusBadge tone={ok ? "ok" : "bad"} testId={`${testId}-status`}>
          {ok ? "ok" : "down"}
        </StatusBadge>
      </div>
      {extra ? <p className="status-card__meta">{extra}</p> : null}
      <p className="status-card__detail" data-testid={`${testId}-detail`}>
        {detail || "—"}
      </p>
    </section>
  );
}

function WorkerRow({ worker, now }: { worker: WorkerInfo; now: number }) {
  return (
    <tr data-testid="worker-row">
      <td className="mono" data-testid="worker-name">
        {worker.name}
      </td>
      <td>
        <time dateTime={worker.last_seen} title={formatDateTime(worker.last_seen)}>
          {timeAgo(worker.last_seen, now)}
        </time>
      </td>
      <td>
        <StatusBadge tone={worker.busy ? "warn" : "neutral"} testId="worker-state">
          {worker.busy ? "busy" : "idle"}
        </StatusBadge>
      </td>
    </tr>
  );
}

function QueueCard({ name, queue, now }: { name: string; queue: QueueHealth | undefined; now: number }) {
  const workers = queue?.workers ?? [];
  const titleId = `queue-${name}-title`;
  return (
    <section className="card queue-card" aria-labelledby={titleId} data-testid={`queue-${name}`}>
      <div className="status-card__head">
        <h3 id={titleId}>
          Queue <span className="mono">{name}</span>
        </h3>
        <StatusBadge tone={workers.length ? "ok" : "bad"} testId={`queue-${name}-count`}>
          {workers.length === 1 ? "1 worker" : `${workers.length} workers`}
        </StatusBadge>
      </div>
      {workers.length === 0 ? (
        <p className="muted" data-testid={`queue-${name}-empty`}>
          No live workers.
        </p>
      ) : (
        <table className="table">
          <caption className="visually-hidden">Live workers on queue {name}</caption>
          <thead>
            <tr>
              <th scope="col">Worker</th>
              <th scope="col">Last seen</th>
              <th scope="col">State</th>
            </tr>
          </thead>
          <tbody>
            {workers.map((w) => (
              <WorkerRow key={w.name} worker={w} now={now} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function HealthView({ health, updatedAt }: { health: Health; updatedAt: number }) {
  const ok = health.status === "ok";
  return (
    <>
      <div className="page-head">
        <h1>System health</h1>
        <StatusBadge tone={ok ? "ok" : "bad"} testId="health-status">
          {ok ? "ok" : "degraded"}
        </StatusBadge>
      </div>
      <p className="muted small" data-testid="health-updated">
        Updated {new Date(updatedAt).toLocaleTimeString()} · refreshes every {HEALTH_REFRESH_MS / 1000} s
      </p>
      <div className="grid grid--2">
        <ComponentCard title="Database" ok={health.database.ok} detail={health.database.detail} testId="health-database" />
        <ComponentCard
          title="Broker"
          ok={health.broker.ok}
          detail={health.broker.detail}
          testId="health-broker"
          extra={health.broker.transport ? `Transport: ${health.broker.transport}` : undefined}
        />
      </div>
      <h2 className="section-title">Workers</h2>
      <div className="grid grid--2">
        {queueNames(health).map((name) => (
          <QueueCard key={name} name={name} queue={health.queues?.[name]} now={updatedAt} />
        ))}
      </div>
    </>
  );
}

export function HealthPage() {
  const health = useHealth();
  return (
    <section className="page" aria-busy={health.isPending}>
      {health.isPending ? <Loading label="Checking health…" /> : null}
      {health.isError && !health.data ? (
        <div className="banner banner--error" role="alert">
          Could not load health: {errorMessage(health.error)}
        </div>
      ) : null}
      {health.data ? (
        <>
          {health.isError ? (
            <div className="banner banner--warn" role="alert">
              Refresh failed ({errorMessage(health.error)}); showing the last known state.
            </div>
          ) : null}
          <HealthView health={health.data} updatedAt={health.dataUpdatedAt} />
        </>
      ) : null}
    </section>
  );
}
