import { useId, useRef } from "react";
import { Link, useSearchParams } from "react-router";
import { SPLITS, thumbnailUrl, useDatasetImages, type ImageFilters } from "../api/datasets";
import { errorMessage } from "../api/errors";
import type { ImageSummary, Split } from "../api/types";
import { Loading } from "../components/Loading";
import { formatCount } from "./format";
import { splitLabel } from "./SplitPanel";

/** The grid's filters from the page's query string (`split`, `class`, `problem`, `page`). */
export function filtersFromParams(params: URLSearchParams): ImageFilters {
  const split = params.get("split");
  const page = Number(params.get("page") ?? "1");
  return {
    split: SPLITS.includes(split as Split) ? (split as Split) : undefined,
    className: params.get("class") || undefined,
    problem: params.get("problem") || undefined,
    page: Number.isInteger(page) && page > 0 ? page : 1,
  };
}

function Thumb({ datasetId, image, back }: { datasetId: number; image: ImageSummary; back: string }) {
  const problems = image.problems ?? [];
  return (
    <li className="thumb" data-testid="thumb" data-image-id={image.id}>
      <Link
        to={`/datasets/${datasetId}/images/${image.id}`}
        state={{ back }}
        className="thumb__link"
        aria-label={`Open ${image.source}`}
      >
        <span className="thumb__frame">
          <img
            src={thumbnailUrl(datasetId, image.id)}
            alt={`${image.source} with its labels`}
            loading="lazy"
            decoding="async"
            data-testid="thumb-img"
          />
          {problems.length > 0 ? (
            <span className="thumb__problem" title={problems.join(", ")} data-testid="thumb-problem">
              ⚠ {problems.length}
            </span>
          ) : null}
        </span>
        <span className="thumb__caption">
          <span className="thumb__name" title={image.source}>
            {image.source}
          </span>
          <span className="thumb__meta">
            <span className={`split-tag split-tag--${image.split}`} data-testid="thumb-split">
              {image.split}
            </span>
            <span className="muted" title={image.classes.join(", ")}>
              {image.annotations} {image.annotations === 1 ? "shape" : "shapes"}
            </span>
          </span>
        </span>
      </Link>
    </li>
  );
}

interface ImageGridProps {
  datasetId: number;
  classes: string[];
  /** Codes of the findings that name images, for the problem filter. */
  problemCodes: string[];
  enabled: boolean;
}

/** Thumbnails with labels drawn, filtered by split, class and problem, a server page at a time. */
export function ImageGrid({ datasetId, classes, problemCodes, enabled }: ImageGridProps) {
  const id = useId();
  const top = useRef<HTMLElement>(null);
  const [params, setParams] = useSearchParams();
  const filters = filtersFromParams(params);
  const images = useDatasetImages(datasetId, filters, enabled);
  const data = images.data;
  const page = filters.page ?? 1;
  const pages = data ? Math.max(1, Math.ceil(data.total / data.page_size)) : 1;

  const setFilter = (key: "split" | "class" | "problem", value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    next.delete("page");
    setParams(next, { replace: true });
  };

  const goTo = (target: number) => {
    const next = new URLSearchParams(params);
    if (target > 1) next.set("page", String(target));
    else next.delete("page");
    setParams(next);
    // Back to the top of the grid when the pager at its bottom was used.
    const el = top.current;
    if (el && el.getBoundingClientRect().top < 0) el.scrollIntoView?.({ block: "start" });
  };

  const back = `/datasets/${datasetId}${params.toString() ? `?${params.toString()}` : ""}`;
  const first = data && data.total > 0 ? (page - 1) * data.page_size + 1 : 0;
  const last = data ? Math.min(data.total, page * data.page_size) : 0;
  const filtered = !!(filters.split || filters.className || filters.problem);

  return (
    <section className="card" aria-labelledby={`${id}-title`} data-testid="image-grid" ref={top}>
      <div className="section-head">
        <h2 id={`${id}-title`}>Images</h2>
        {data ? (
          <span className="muted small" data-testid="grid-count">
            {data.total === 0 ? "No images" : `${formatCount(first)}–${formatCount(last)} of ${formatCount(data.total)}`}
            {filtered ? " (filtered)" : ""}
          </span>
        ) : null}
      </div>
      <div className="filters" role="group" aria-label="Filter images">
        <div className="field field--inline">
          <label htmlFor={`${id}-split`}>Split</label>
          <select id={`${id}-split`} value={filters.split ?? ""} onChange={(e) => setFilter("split", e.target.value)}>
            <option value="">All splits</option>
            {SPLITS.map((s) => (
              <option key={s} value={s}>
                {splitLabel(s)}
              </option>
            ))}
          </select>
        </div>
        <div className="field field--inline">
          <label htmlFor={`${id}-class`}>Class</label>
          <select id={`${id}-class`} value={filters.className ?? ""} onChange={(e) => setFilter("class", e.target.value)}>
            <option value="">All classes</option>
            {classes.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </div>
        <div className="field field--inline">
          <label htmlFor={`${id}-problem`}>Problems</label>
          <select id={`${id}-problem`} value={filters.problem ?? ""} onChange={(e) => setFilter("problem", e.target.value)}>
            <option value="">Any image</option>
            <option value="any">With a problem</option>
            {problemCodes.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </div>
        {filtered ? (
          <button type="button" className="link-button" onClick={() => setParams(new URLSearchParams(), { replace: true })}>
            Clear filters
          </button>
        ) : null}
      </div>

      {images.isPending && enabled ? <Loading label="Loading images…" /> : null}
      {images.isError ? (
        <div className="banner banner--error" role="alert">
          Could not load images: {errorMessage(images.error)}
        </div>
      ) : null}
      {data && data.images.length === 0 ? (
        <p className="muted empty">{filtered ? "No image matches these filters." : "This dataset has no images."}</p>
      ) : null}
      {data && data.images.length > 0 ? (
        <ul className={`thumbs${images.isPlaceholderData ? " thumbs--stale" : ""}`} aria-busy={images.isFetching}>
          {data.images.map((image) => (
            <Thumb key={image.id} datasetId={datasetId} image={image} back={back} />
          ))}
        </ul>
      ) : null}
      {data && pages > 1 ? (
        <nav className="pager" aria-label="Image pages">
          <button type="button" className="button" disabled={page <= 1} onClick={() => goTo(page - 1)}>
            ← Previous
          </button>
          <span className="pager__where" data-testid="pager-where">
            Page {formatCount(page)} of {formatCount(pages)}
          </span>
          <button type="button" className="button" disabled={page >= pages} onClick={() => goTo(page + 1)}>
            Next →
          </button>
        </nav>
      ) : null}
    </section>
  );
}
