import { Link } from "react-router";
import { parseStats, useDatasets } from "../api/datasets";
import { errorMessage } from "../api/errors";
import type { Dataset } from "../api/types";
import { Loading } from "../components/Loading";
import { StatusBadge } from "../components/StatusBadge";
import { useTaskRegistry, type TaskRegistry } from "../api/tasks";
import { formatCount, formatLabel, statusTone } from "../datasets/format";
import { UploadPanel } from "../datasets/UploadPanel";
import { timeAgo, formatDateTime } from "../time";

function DatasetRow({ dataset, registry }: { dataset: Dataset; registry: TaskRegistry }) {
  const stats = parseStats(dataset.stats);
  const ready = dataset.status === "ready";
  return (
    <tr data-testid="dataset-row" data-dataset-id={dataset.id}>
      <td>
        <Link to={`/datasets/${dataset.id}`} className="dataset-name" data-testid="dataset-name" title={dataset.name}>
          {dataset.name}
        </Link>
      </td>
      <td>
        <span className="version">v{dataset.version}</span>
      </td>
      <td>
        <StatusBadge tone={statusTone(dataset.status)} testId="dataset-status">
          {dataset.status}
        </StatusBadge>
        {dataset.failure ? (
          <p className="small dataset-failure" data-testid="dataset-failure" title={dataset.failure}>
            {dataset.failure}{" "}
            <Link to={`/datasets/${dataset.id}`} aria-label={`Why ${dataset.name} failed, and import it again`}>
              Why, and retry
            </Link>
          </p>
        ) : null}
      </td>
      <td>{formatLabel(dataset.source_format)}</td>
      <td className="num" data-testid="dataset-images">
        {ready ? formatCount(stats.images) : "—"}
      </td>
      <td className="num" data-testid="dataset-classes">
        {ready ? formatCount(dataset.classes.length) : "—"}
      </td>
      <td>
        {dataset.tasks.length ? (
          <span className="chips">
            {dataset.tasks.map((t) => (
              <span key={t} className="chip chip--task">
                {registry.title(t)}
              </span>
            ))}
          </span>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td className="muted nowrap" title={formatDateTime(dataset.created_at)}>
        {timeAgo(dataset.created_at)}
      </td>
    </tr>
  );
}

export function DatasetsPage() {
  const datasets = useDatasets();
  const registry = useTaskRegistry();
  return (
    <section className="page page--wide">
      <div className="page-head">
        <h1>Datasets</h1>
      </div>
      <p className="muted">Upload an annotated project as a zip; it is checked, imported and ready to browse, split and export.</p>

      <UploadPanel />

      <div className="card">
        <h2>Your datasets</h2>
        {datasets.isPending ? <Loading label="Loading datasets…" /> : null}
        {datasets.isError ? (
          <div className="banner banner--error" role="alert">
            Could not load datasets: {errorMessage(datasets.error)}
          </div>
        ) : null}
        {datasets.data && datasets.data.length === 0 ? (
          <p className="muted" data-testid="no-datasets">
            No datasets yet. Upload one above.
          </p>
        ) : null}
        {datasets.data && datasets.data.length > 0 ? (
          <div className="table-scroll">
            <table className="table" data-testid="datasets-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Version</th>
                  <th scope="col">Status</th>
                  <th scope="col">Format</th>
                  <th scope="col" className="num">Images</th>
                  <th scope="col" className="num">Classes</th>
                  <th scope="col">Tasks</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {datasets.data.map((d) => (
                  <DatasetRow key={d.id} dataset={d} registry={registry} />
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </div>
    </section>
  );
}
