import { useEffect, useState, type FormEvent } from "react";
import { Link, useLocation, useNavigate, useParams } from "react-router";
import {
  classColour,
  PAGE_SIZE,
  renderUrl,
  SPLITS,
  useChangeSplits,
  useDataset,
  useImageDetail,
  useImageNeighbours,
} from "../api/datasets";
import { ApiError, errorMessage } from "../api/errors";
import type { Annotation, ImageDetail, Split } from "../api/types";
import { Loading } from "../components/Loading";
import { StatusBadge } from "../components/StatusBadge";
import { formatCount } from "../datasets/format";
import { filtersFromParams } from "../datasets/ImageGrid";
import { splitLabel } from "../datasets/SplitPanel";
import { NotFoundPage } from "./NotFoundPage";

function round(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function className(ann: Annotation, classes: string[]): string {
  if (ann.ignore || ann.category_id === 0) return "(ignore)";
  return classes[ann.category_id - 1] ?? `class ${ann.category_id}`;
}

function ShapesTable({ detail }: { detail: ImageDetail }) {
  if (detail.annotations.length === 0) return <p className="muted">No shapes on this image.</p>;
  return (
    <div className="table-scroll">
      <table className="table table--compact" data-testid="shapes-table">
        <thead>
          <tr>
            <th scope="col" className="num">#</th>
            <th scope="col">Class</th>
            <th scope="col">Type</th>
            <th scope="col">Box (x, y, w × h)</th>
            <th scope="col" className="num">Area</th>
            <th scope="col">Group</th>
            <th scope="col">Notes</th>
          </tr>
        </thead>
        <tbody>
          {detail.annotations.map((a, i) => {
            const [x = 0, y = 0, w = 0, h = 0] = a.bbox;
            const notes = [a.iscrowd ? "crowd" : null, a.text != null ? `text: ${a.text}` : null].filter(Boolean).join(" · ");
            return (
              <tr key={a.id} data-testid="shape-row">
                <td className="num muted">{i}</td>
                <td data-testid="shape-class">
                  <span
                    className="swatch"
                    style={{ background: a.ignore || a.category_id === 0 ? "#999" : classColour(a.category_id) }}
                    aria-hidden="true"
                  />{" "}
                  {className(a, detail.classes)}
                </td>
                <td>{a.shape_type}</td>
                <td className="num-text nowrap">
                  {round(x)}, {round(y)}, {round(w)} × {round(h)}
                </td>
                <td className="num">{formatCount(Math.round(a.area))}</td>
                <td>{a.group_id ?? <span className="muted">—</span>}</td>
                <td className="muted">{notes || "—"}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function MoveSplit({ datasetId, detail }: { datasetId: number; detail: ImageDetail }) {
  const navigate = useNavigate();
  const location = useLocation();
  const change = useChangeSplits(datasetId);
  const [target, setTarget] = useState<Split>(detail.image.split);
  const imageId = detail.image.id;

  const onSubmit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (target === detail.image.split) return;
    change.mutate(
      { assign: { [String(imageId)]: target } },
      {
        onSuccess: (created) =>
          navigate(`/datasets/${created.id}/images/${imageId}`, {
            state: { back: `/datasets/${created.id}`, movedFrom: location.pathname },
          }),
      },
    );
  };

  return (
    <form onSubmit={onSubmit} aria-label="Move to split" className="move-split">
      <div className="field field--inline">
        <label htmlFor="image-split">Move to</label>
        <select id="image-split" value={target} onChange={(e) => setTarget(e.target.value as Split)} disabled={change.isPending}>
          {SPLITS.map((s) => (
            <option key={s} value={s}>
              {splitLabel(s)}
            </option>
          ))}
        </select>
      </div>
      <button type="submit" className="button button--primary" disabled={change.isPending || target === detail.image.split}>
        {change.isPending ? "Moving…" : "Move (new version)"}
      </button>
      {change.isError ? (
        <p className="form__error" role="alert">
          {errorMessage(change.error)}
        </p>
      ) : null}
    </form>
  );
}

/** The grid's URL with the page that holds the image at ``position`` (1-based) under its filters. */
function backAt(back: string, position: number): string {
  const url = new URL(back, "http://studio.local");
  const page = Math.max(1, Math.ceil(position / PAGE_SIZE));
  if (page > 1) url.searchParams.set("page", String(page));
  else url.searchParams.delete("page");
  const query = url.searchParams.toString();
  return `${url.pathname}${query ? `?${query}` : ""}`;
}

/** Previous / next under the grid's filters, also by the arrow keys. */
function ImageNav({ datasetId, imageId, back }: { datasetId: number; imageId: number; back: string }) {
  const navigate = useNavigate();
  const filters = filtersFromParams(new URL(back, "http://studio.local").searchParams);
  const nav = useImageNeighbours(datasetId, imageId, filters);
  const n = nav.data;
  const go = (target: number | null | undefined, position: number) => {
    if (target == null) return;
    navigate(`/datasets/${datasetId}/images/${target}`, { state: { back: backAt(back, position) } });
  };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const el = e.target as HTMLElement | null;
      if (e.altKey || e.ctrlKey || e.metaKey || (el && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName))) return;
      if (!n?.position) return;
      if (e.key === "ArrowLeft") go(n.previous, n.position - 1);
      if (e.key === "ArrowRight") go(n.next, n.position + 1);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });
  if (!n || n.position == null) return null;
  return (
    <nav className="image-nav" aria-label="Images" data-testid="image-nav">
      <button type="button" className="button button--ghost" disabled={n.previous == null} onClick={() => go(n.previous, n.position! - 1)}>
        ← Previous
      </button>
      <span className="muted small" data-testid="image-position">
        {formatCount(n.position)} of {formatCount(n.total)}
      </span>
      <button type="button" className="button button--ghost" disabled={n.next == null} onClick={() => go(n.next, n.position! + 1)}>
        Next →
      </button>
    </nav>
  );
}

export function ImagePage() {
  const params = useParams();
  const location = useLocation();
  const datasetId = Number(params.id);
  const imageId = Number(params.imageId);
  const dataset = useDataset(datasetId);
  const detail = useImageDetail(datasetId, imageId);
  const [overlay, setOverlay] = useState(true);

  const state = location.state as { back?: unknown; movedFrom?: unknown } | null;
  const back = typeof state?.back === "string" && state.back.startsWith("/datasets/") ? state.back : `/datasets/${datasetId}`;

  if (!Number.isInteger(datasetId) || !Number.isInteger(imageId)) return <NotFoundPage />;
  if (detail.isPending) return <Loading label="Loading image…" />;
  if (detail.isError) {
    if (detail.error instanceof ApiError && detail.error.status === 404) return <NotFoundPage />;
    return (
      <div className="banner banner--error" role="alert">
        Could not load the image: {errorMessage(detail.error)}
      </div>
    );
  }
  const d = detail.data;
  const src = renderUrl(datasetId, imageId, overlay);

  return (
    <section className="page page--wide" data-testid="image-page">
      <p className="breadcrumb">
        <Link to="/datasets">Datasets</Link> /{" "}
        <Link to={back} data-testid="back-to-dataset">
          {dataset.data ? `${dataset.data.name} v${dataset.data.version}` : `dataset ${datasetId}`}
        </Link>{" "}
        /
      </p>
      <div className="page-head page-head--wrap">
        <h1 className="image-title" data-testid="image-title">
          {d.image.source}
        </h1>
        <span className={`split-tag split-tag--${d.image.split}`} data-testid="image-split">
          {d.image.split}
        </span>
        <span className="page-head__spacer" />
        <ImageNav datasetId={datasetId} imageId={imageId} back={back} />
      </div>
      {typeof state?.movedFrom === "string" ? (
        <p className="banner banner--ok" role="status" data-testid="moved-note">
          Moved to {splitLabel(d.image.split)} in this new version ({dataset.data ? `v${dataset.data.version}` : "new version"}).
        </p>
      ) : null}

      <div className="image-view">
        <figure className="image-view__figure card">
          <div className="image-view__canvas">
            <img
              key={src}
              src={src}
              alt={`${d.image.source}${overlay ? " with its labels" : ""}`}
              width={d.image.width}
              height={d.image.height}
              style={{ maxWidth: `${Math.max(d.image.width * 6, 320)}px` }}
              data-testid="rendered-image"
            />
          </div>
          <figcaption className="image-view__caption">
            <label className="checkbox">
              <input type="checkbox" checked={overlay} onChange={(e) => setOverlay(e.target.checked)} /> Show labels
            </label>
            <span className="muted small">
              {d.image.width} × {d.image.height} px · <span className="mono">{d.image.file_name}</span>
            </span>
          </figcaption>
        </figure>

        <aside className="image-view__side">
          <div className="card">
            <h2>Split</h2>
            <MoveSplit key={`${datasetId}-${imageId}`} datasetId={datasetId} detail={d} />
            <p className="muted small">Datasets are versioned: moving an image makes a new version with the same images.</p>
          </div>
          {d.image.tags && d.image.tags.length > 0 ? (
            <div className="card">
              <h2>Image classes</h2>
              <span className="chips">
                {d.image.tags.map((t) => (
                  <span key={t} className="chip">
                    {t}
                  </span>
                ))}
              </span>
            </div>
          ) : null}
          <div className="card" data-testid="image-findings">
            <h2>Findings</h2>
            {d.findings.length === 0 ? (
              <p className="muted">No problems found in this image’s file.</p>
            ) : (
              <ul className="findings">
                {d.findings.map((f, i) => (
                  <li key={i} className="finding" data-testid="finding">
                    <p className="finding__message">
                      <StatusBadge tone={f.level === "error" ? "bad" : "warn"}>{f.level}</StatusBadge> <code>{f.code}</code>
                    </p>
                    <p className="finding__message">{f.message}</p>
                    {f.shape != null || f.field ? (
                      <p className="finding__where">
                        {f.shape != null ? (
                          <span>
                            shape <code>{f.shape}</code>
                          </span>
                        ) : null}
                        {f.field ? (
                          <span>
                            field <code>{f.field}</code>
                          </span>
                        ) : null}
                      </p>
                    ) : null}
                  </li>
                ))}
              </ul>
            )}
          </div>
        </aside>
      </div>

      <div className="card">
        <h2>Shapes ({d.annotations.length})</h2>
        <ShapesTable detail={d} />
      </div>
    </section>
  );
}
