import { useState, type ReactNode } from "react";
import { Link } from "react-router";
import { errorMessage } from "../api/errors";
import {
  EVALUATION_PAGE,
  useEvaluationImages,
  type EvaluationImage,
  type ExplainTarget,
} from "../api/training";
import { Loading } from "../components/Loading";

/** What a list of an evaluation's images holds, in words. */
export function targetTitle(target: ExplainTarget): string {
  switch (target.view) {
    case "cell":
      return target.true === target.predicted
        ? `${target.true}, predicted correctly`
        : `True ${target.true}, predicted ${target.predicted}`;
    case "false_positives":
      return `False positives of ${target.class_name}: predicted ${target.class_name}, another class in truth`;
    case "false_negatives":
      return `False negatives of ${target.class_name}: ${target.class_name} in truth, predicted as another class`;
    case "lowest_iou":
      return `Images of ${target.class_name}, lowest IoU first`;
    case "highest_loss":
      return "Highest-loss images";
  }
}

function order(target: ExplainTarget, scoreIs: string): string {
  if (target.view === "highest_loss") return "highest loss first";
  if (target.view === "lowest_iou") return "lowest IoU first";
  return scoreIs === "pixels" ? "largest area first" : "most confident first";
}

function pixels(n: number | null | undefined): string {
  return n == null ? "—" : `${Math.round(n).toLocaleString("en")} px`;
}

function verdict(image: EvaluationImage, scoreIs: string): string {
  if (scoreIs === "IoU") {
    const d = (image.detail ?? {}) as { fp?: number; fn?: number };
    return `${image.true_class}: IoU ${image.score == null ? "—" : image.score.toFixed(3)} · ${pixels(d.fn)} missed · ${pixels(d.fp)} wrongly painted`;
  }
  if (scoreIs === "pixels") return `true ${image.true_class} · predicted ${image.predicted_class} (${pixels(image.score)})`;
  return `true ${image.true_class ?? "—"} · predicted ${image.predicted_class ?? "—"} (${percent(image.score)})`;
}

function percent(value: number | null | undefined): string {
  return value == null ? "—" : `${(value * 100).toFixed(1)}%`;
}

/** A picture the studio draws on request (Grad-CAM, an error map): says so while it is being drawn, and
 * why it is missing when the lane did not answer. */
function DrawnImage({ url, alt, caption, what, testId }: { url: string; alt: string; caption: ReactNode; what: string; testId: string }) {
  const [state, setState] = useState<"drawing" | "done" | "failed">("drawing");
  return (
    <figure className="explain__cam">
      {state === "failed" ? (
        <span className="explain__missing muted small" role="note">
          The {what} did not come back: is the inference lane running? <Link to="/health">Health</Link>
        </span>
      ) : (
        <span className="explain__frame">
          {state === "drawing" ? (
            <span className="explain__drawing muted small" aria-live="polite">
              drawing the {what}…
            </span>
          ) : null}
          <img src={url} alt={alt} loading="lazy" data-testid={testId} onLoad={() => setState("done")} onError={() => setState("failed")} />
        </span>
      )}
      <figcaption className="small">{caption}</figcaption>
    </figure>
  );
}

function CamImage({ url, label, testId }: { url: string; label: string; testId: string }) {
  return <DrawnImage url={url} alt={`Grad-CAM for ${label}`} caption={`Grad-CAM: ${label}`} what="Grad-CAM" testId={testId} />;
}

function Row({ image, scoreIs }: { image: EvaluationImage; scoreIs: string }) {
  const name = image.source ?? image.file_name ?? `image ${image.image_id}`;
  const wrong = image.true_class !== image.predicted_class;
  const bad = scoreIs === "IoU" ? (image.score ?? 0) < 0.5 : wrong;
  return (
    <li className="explain__row" data-testid="explain-row" data-image-id={image.image_id}>
      <div className="worst__caption">
        {image.page_url ? (
          <Link className="worst__name" title={name} to={image.page_url} data-testid="explain-name">
            {name}
          </Link>
        ) : (
          <span className="worst__name" title={name} data-testid="explain-name">
            {name}
          </span>
        )}
        <span className={bad ? "worst__score" : "muted small"} data-testid="explain-verdict">
          {verdict(image, scoreIs)}
        </span>
        {scoreIs === "confidence" ? (
          <span className="muted small">
            {wrong && image.true_score != null ? `${image.true_class} scored ${percent(image.true_score)} · ` : ""}loss{" "}
            {image.loss == null ? "—" : image.loss.toFixed(3)}
          </span>
        ) : null}
      </div>
      <div className="worst__images">
        <figure className="explain__cam">
          {image.image_url ? <img src={image.image_url} alt={name} loading="lazy" /> : <span className="muted">dataset deleted</span>}
          <figcaption className="small">the picture</figcaption>
        </figure>
        {image.errors_url ? (
          <DrawnImage
            url={image.errors_url}
            alt={`Wrong pixels of ${name}`}
            what="error map"
            testId="explain-errors"
            caption={
              scoreIs === "IoU" ? (
                <>
                  <span className="swatch swatch--fn" /> missed <span className="swatch swatch--fp" /> wrongly painted
                </>
              ) : (
                <>
                  <span className="swatch swatch--cell" /> {image.true_class} painted as {image.predicted_class}
                </>
              )
            }
          />
        ) : null}
        {image.cam_true_url ? (
          <CamImage url={image.cam_true_url} label={wrong ? `${image.true_class} (true)` : `${image.true_class}`} testId="explain-cam-true" />
        ) : null}
        {image.cam_predicted_url && wrong ? (
          <CamImage url={image.cam_predicted_url} label={`${image.predicted_class} (predicted)`} testId="explain-cam-predicted" />
        ) : null}
      </div>
    </li>
  );
}

/** One page at a time of the images behind a figure, each with Grad-CAM for its true and predicted class. */
export function EvaluationImagesPanel({
  modelId,
  target,
  onClose,
}: {
  modelId: number;
  target: ExplainTarget;
  onClose: () => void;
}) {
  const [page, setPage] = useState({ key: JSON.stringify(target), offset: 0 });
  // A new figure starts at its first page.
  const offset = page.key === JSON.stringify(target) ? page.offset : 0;
  const move = (to: number) => setPage({ key: JSON.stringify(target), offset: Math.max(0, to) });
  const query = useEvaluationImages(modelId, target, offset);
  const data = query.data;
  return (
    <section className="explain" data-testid="explain-panel" aria-label="Images behind the figure">
      <div className="page-head page-head--wrap">
        <h3 data-testid="explain-title">{targetTitle(target)}</h3>
        <span className="page-head__spacer" />
        <button type="button" className="button button--ghost" onClick={onClose}>
          Close
        </button>
      </div>
      {query.isPending ? <Loading label="Reading the images of this evaluation…" /> : null}
      {query.isError ? (
        <p className="field__error" role="alert" data-testid="explain-error">
          {errorMessage(query.error)}
        </p>
      ) : null}
      {data ? (
        <>
          <p className="muted small" data-testid="explain-count">
            {data.total === 0
              ? `No ${data.split ?? ""} image is here.`
              : `${data.total} ${data.split ?? ""} image${data.total === 1 ? "" : "s"}, ${order(target, data.score_is)}; showing ${offset + 1}–${Math.min(offset + data.images.length, data.total)}. Grad-CAM is drawn the first time it is shown.`}
          </p>
          <ul className="worst">
            {data.images.map((image) => (
              <Row key={image.image_id} image={image} scoreIs={data.score_is} />
            ))}
          </ul>
          {data.total > EVALUATION_PAGE ? (
            <div className="image-nav">
              <button type="button" className="button button--ghost" disabled={offset === 0} onClick={() => move(offset - EVALUATION_PAGE)}>
                Previous
              </button>
              <span className="muted small">
                page {Math.floor(offset / EVALUATION_PAGE) + 1} of {Math.ceil(data.total / EVALUATION_PAGE)}
              </span>
              <button
                type="button"
                className="button button--ghost"
                disabled={offset + EVALUATION_PAGE >= data.total}
                onClick={() => move(offset + EVALUATION_PAGE)}
              >
                Next
              </button>
            </div>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
