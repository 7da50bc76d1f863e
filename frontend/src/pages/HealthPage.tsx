import { Link } from "react-router";
import { useHealth, HEALTH_REFRESH_MS } from "../api/queries";
import { errorMessage } from "../api/errors";
import type { Health, LaneHealth, WorkerInfo } from "../api/types";
import { Loading } from "../components/Loading";
import { StatusBadge, type Tone } from "../components/StatusBadge";
import { formatDateTime, timeAgo } from "../time";
import { kindLabel } from "../jobs/format";

/** The lanes always shown, in this order, with what each runs; any other lane the API reports follows. */
export const LANES: readonly { name: string; title: string; runs: string }[] = [
  { name: "training", title: "Training lane", runs: "train, evaluate, batch predict, Grad-CAM over a split — one job at a time per device" },
  { name: "light", title: "Light lane", runs: "imports, exports, previews, catalog analysis, model imports — several at once" },
  { name: "inference", title: "Inference lane", runs: "single pictures and small batches from warm models" },
];

function lanesOf(health: Health): { name: string; title: string; runs: string | null }[] {
  const known = new Set(LANES.map((l) => l.name));
  const extra = Object.keys(health.lanes ?? {})
    .filter((name) => !known.has(name))
    .sort()
    .map((name) => ({ name, title: `Lane “${name}”`, runs: null }));
  return [...LANES, ...extra];
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Why the studio is degraded, in words; empty when it is not. */
export function degradedReasons(health: Health): string[] {
  const reasons: string[] = [];
  if (!health.database.ok) reasons.push("the database cannot be reached");
  if (!health.broker.ok) reasons.push("the broker cannot be reached");
  for (const lane of lanesOf(health)) {
    if (!(health.lanes?.[lane.name]?.workers ?? []).some((w) => w.live)) reasons.push(`no live worker on the ${lane.title.toLowerCase()}`);
  }
  return reasons;
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

/** A worker's state in words: live, restarting, stopped or not answering. */
export function workerState(worker: WorkerInfo): { label: string; tone: Tone } {
  if (worker.state === "restarting") return { label: "restarting", tone: "warn" };
  if (worker.state === "stopped") return { label: "stopped", tone: "neutral" };
  return worker.live ? { label: "live", tone: "ok" } : { label: "not answering", tone: "bad" };
}

function Doing({ worker }: { worker: WorkerInfo }) {
  if (worker.busy && worker.job_id != null) {
    return (
      <Link to={`/jobs/${worker.job_id}`} data-testid="worker-job">
        running job #{worker.job_id}
        {worker.job_kind ? ` (${kindLabel(worker.job_kind)})` : ""}
      </Link>
    );
  }
  return <>{worker.busy ? "busy" : "idle"}</>;
}

function WorkerRow({ worker, now }: { worker: WorkerInfo; now: number }) {
  const state = workerState(worker);
  return (
    <tr data-testid="worker-row">
      <td>
        <span className="mono" data-testid="worker-name">
          {worker.name}
        </span>
        {worker.resources ? (
          <div className="muted small" data-testid="worker-resources" title="What its supervisor gave this worker process">
            {worker.resources}
          </div>
        ) : null}
      </td>
      <td>
        <StatusBadge tone={state.tone} testId="worker-state">
          {state.label}
        </StatusBadge>
        {worker.last_seen ? (
          <span className="muted small">
            {" "}
            seen{" "}
            <time dateTime={worker.last_seen} title={formatDateTime(worker.last_seen)}>
              {timeAgo(worker.last_seen, now)}
            </time>
          </span>
        ) : null}
        {worker.restarts > 0 ? (
          <div className="muted small" data-testid="worker-restarts">
            restarted {plural(worker.restarts, "time")}
            {worker.last_exit ? ` · last process ${worker.last_exit}` : ""}
          </div>
        ) : null}
      </td>
      <td data-testid="worker-doing">
        <Doing worker={worker} />
      </td>
    </tr>
  );
}

/** "N waiting · M running" (the waiting count is unknown when the broker cannot tell). */
export function laneCounts(lane: LaneHealth | undefined): string {
  const queued = lane?.queued;
  const waiting = queued == null ? "waiting: unknown" : `${queued} waiting`;
  return `${waiting} · ${lane?.running ?? 0} running`;
}

function LaneCard({ name, title, runs, lane, now }: { name: string; title: string; runs: string | null; lane: LaneHealth | undefined; now: number }) {
  const workers = lane?.workers ?? [];
  const live = workers.filter((w) => w.live).length;
  const titleId = `lane-${name}-title`;
  return (
    <section className="card lane-card" aria-labelledby={titleId} data-testid={`lane-${name}`}>
      <div className="status-card__head">
        <h3 id={titleId}>{title}</h3>
        <span className="lane-card__counts muted" data-testid={`lane-${name}-counts`}>
          {laneCounts(lane)}
        </span>
        <span className="page-head__spacer" />
        <StatusBadge tone={live ? "ok" : "bad"} testId={`lane-${name}-live`}>
          {live ? plural(live, "live worker") : "no live worker"}
        </StatusBadge>
      </div>
      {runs ? (
        <p className="status-card__meta" data-testid={`lane-${name}-runs`}>
          Runs {runs}.
        </p>
      ) : null}
      {workers.length === 0 ? (
        <p className="muted" data-testid={`lane-${name}-empty`}>
          No worker has reported on this lane.
        </p>
      ) : (
        <table className="table lane-card__workers">
          <caption className="visually-hidden">Workers of the {title.toLowerCase()}</caption>
          <thead>
            <tr>
              <th scope="col">Worker</th>
              <th scope="col">State</th>
              <th scope="col">Doing</th>
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
  const reasons = ok ? [] : degradedReasons(health);
  return (
    <>
      <div className="page-head">
        <h1>System health</h1>
        <StatusBadge tone={ok ? "ok" : "bad"} testId="health-status">
          {ok ? "ok" : "degraded"}
        </StatusBadge>
      </div>
      {reasons.length ? (
        <p className="banner banner--warn" data-testid="health-reasons">
          Degraded: {reasons.join("; ")}.
        </p>
      ) : null}
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
      <h2 className="section-title">Lanes</h2>
      <p className="muted small">Work goes to a lane by what it needs, so an upload or a single picture never waits behind a training run.</p>
      <div className="lanes">
        {lanesOf(health).map((l) => (
          <LaneCard key={l.name} name={l.name} title={l.title} runs={l.runs} lane={health.lanes?.[l.name]} now={updatedAt} />
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
