import { useState, type ReactNode } from "react";
import { Link } from "react-router";
import { errorMessage } from "../api/errors";
import {
  EVALUATION_PAGE,
  useEvaluationImages,
  type EvaluationImage,
  type EvaluationImages,
  type ExplainTarget,
} from "../api/training";
import { Loading } from "../components/Loading";

/** Previous and next over a list read ``EVALUATION_PAGE`` at a time; shown once there is more than one page. */
export function OffsetPager({
  offset,
  total,
  onMove,
  children,
}: {
  offset: number;
  total: number;
  onMove: (offset: number) => void;
  children: ReactNode;
}) {
  if (total <= EVALUATION_PAGE) return null;
  return (
    <div className="image-nav">
      <button type="button" className="button button--ghost" disabled={offset === 0} onClick={() => onMove(Math.max(0, offset - EVALUATION_PAGE))}>
        Previous
      </button>
      <span className="muted small">{children}</span>
      <button type="button" className="button button--ghost" disabled={offset + EVALUATION_PAGE >= total} onClick={() => onMove(offset + EVALUATION_PAGE)}>
        Next
      </button>
    </div>
  );
}

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
    case "missed":
      return `Missed ${target.class_name}: found by nothing at the model's score threshold`;
    case "false_detections":
      return `False ${target.class_name}: found where there is none`;
    case "highest_loss":
      return "Highest-loss images";
    case "detections":
      return `Boxes of ${target.class_name} scoring ${target.min_score.toFixed(2)} or more`;
  }
}

function order(target: ExplainTarget, scoreIs: string): string {
  if (target.view === "highest_loss") return "highest loss first";
  if (target.view === "lowest_iou") return "lowest IoU first";
  if (scoreIs === "found at score") return "those no box found first";
  if (scoreIs === "score") return "highest score first";
  return scoreIs === "pixels" ? "largest area first" : "most confident first";
}

function pixels(n: number | null | undefined): string {
  return n == null ? "—" : `${Math.round(n).toLocaleString("en")} px`;
}

function verdict(image: EvaluationImage, scoreIs: string): string {
  if (scoreIs === "found at score") {
    return image.score == null
      ? `${image.true_class} missed: no box found it`
      : `${image.true_class} missed: found only by a box scoring ${image.score.toFixed(2)}`;
  }
  if (scoreIs === "score") {
    const iou = (image.detail as { iou?: number } | null)?.iou;
    const at = `score ${image.score == null ? "—" : image.score.toFixed(2)}${iou != null ? ` · IoU ${iou.toFixed(2)}` : ""}`;
    if (image.true_class == null) return `false detection: ${image.predicted_class}, nothing there (${at})`;
    if (image.true_class === image.predicted_class) return `${image.true_class} found (${at})`;
    return `${image.true_class} detected as ${image.predicted_class} (${at})`;
  }
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
          The {what} could not be drawn; if every one fails, the inference lane may be down: <Link to="/health">Health</Link>
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

type Box = [number, number, number, number];
type Outline = [number, number][];

function bounds(points: Outline): Box {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/** The picture with a detection (blue) and its object (orange, dashed), boxes or a text detector's
 * outlines, whole or cropped around them; drawn in the browser from the shapes, over the picture. */
function BoxView({ image, crop, testId }: { image: EvaluationImage; crop: boolean; testId: string }) {
  const detail = (image.detail ?? {}) as { box?: Box; true_box?: Box; polygon?: Outline; true_polygon?: Outline };
  const w = image.width ?? 0;
  const h = image.height ?? 0;
  if (!image.image_url || !w || !h) return null;
  const found = detail.box ?? (detail.polygon ? bounds(detail.polygon) : undefined);
  const truth = detail.true_box ?? (detail.true_polygon ? bounds(detail.true_polygon) : undefined);
  const boxes = [found, truth].filter((b): b is Box => !!b);
  let view: Box = [0, 0, w, h];
  if (crop && boxes.length) {
    const x1 = Math.min(...boxes.map((b) => b[0]));
    const y1 = Math.min(...boxes.map((b) => b[1]));
    const x2 = Math.max(...boxes.map((b) => b[2]));
    const y2 = Math.max(...boxes.map((b) => b[3]));
    const side = Math.max(x2 - x1, y2 - y1, 8) * 1.5;
    view = [(x1 + x2) / 2 - side / 2, (y1 + y2) / 2 - side / 2, side, side];
  }
  const stroke = Math.max(1, (crop ? view[2] : Math.max(w, h)) / 80);
  const dashes = `${stroke * 3} ${stroke * 2}`;
  const shape = (box: Box | undefined, outline: Outline | undefined, className: string, dashed: boolean) => {
    const extra = { className, strokeWidth: stroke, strokeDasharray: dashed ? dashes : undefined };
    if (outline) return <polygon points={outline.map((p) => p.join(",")).join(" ")} {...extra} />;
    if (box) return <rect x={box[0]} y={box[1]} width={box[2] - box[0]} height={box[3] - box[1]} {...extra} />;
    return null;
  };
  return (
    <figure className="explain__cam">
      <svg className="explain__boxes" viewBox={view.join(" ")} role="img" aria-label={crop ? "The object, cropped" : "The picture with its boxes"} data-testid={testId}>
        <image href={image.image_url} x={0} y={0} width={w} height={h} preserveAspectRatio="none" />
        {shape(detail.true_box, detail.true_polygon, "explain__truth", true)}
        {shape(detail.box, detail.polygon, "explain__detection", false)}
      </svg>
      <figcaption className="small">
        {crop ? (
          "cropped"
        ) : (
          <>
            {truth ? <span className="swatch swatch--fn" /> : null}
            {truth ? " labelled " : ""}
            {found ? <span className="swatch swatch--fp" /> : null}
            {found ? " found" : ""}
          </>
        )}
      </figcaption>
    </figure>
  );
}

function Row({ image, scoreIs }: { image: EvaluationImage; scoreIs: string }) {
  const objects = scoreIs === "score" || scoreIs === "found at score";
  const name = image.source ?? image.file_name ?? `image ${image.image_id}`;
  const wrong = image.true_class !== image.predicted_class;
  const bad = scoreIs === "IoU" ? (image.score ?? 0) < 0.5 : wrong || image.true_class == null;
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
        {objects ? (
          <>
            <BoxView image={image} crop={false} testId="explain-boxes" />
            <BoxView image={image} crop testId="explain-crop" />
          </>
        ) : (
          <figure className="explain__cam">
            {image.image_url ? <img src={image.image_url} alt={name} loading="lazy" /> : <span className="muted">dataset deleted</span>}
            <figcaption className="small">the picture</figcaption>
          </figure>
        )}
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
        {objects ? (
          <>
            {image.cam_true_url && image.cam_method !== "eigencam" ? (
              <CamImage url={image.cam_true_url} label={image.true_class ?? image.predicted_class ?? "the picture"} testId="explain-cam-true" />
            ) : image.cam_true_url ? (
              <DrawnImage
                url={image.cam_true_url}
                alt={`EigenCAM of ${name}`}
                caption="EigenCAM: where it looks"
                what="EigenCAM"
                testId="explain-cam-true"
              />
            ) : null}
            {image.cam_predicted_url ? (
              <CamImage url={image.cam_predicted_url} label="this box" testId="explain-cam-predicted" />
            ) : null}
          </>
        ) : (
          <>
            {image.cam_true_url ? (
              <CamImage url={image.cam_true_url} label={wrong ? `${image.true_class} (true)` : `${image.true_class}`} testId="explain-cam-true" />
            ) : null}
            {image.cam_predicted_url && wrong ? (
              <CamImage url={image.cam_predicted_url} label={`${image.predicted_class} (predicted)`} testId="explain-cam-predicted" />
            ) : null}
          </>
        )}
      </div>
    </li>
  );
}

function countLine(data: EvaluationImages, offset: number, target: ExplainTarget): string {
  const noun = data.score_is === "score" ? ["box", "boxes"] : data.score_is === "found at score" ? ["object", "objects"] : ["image", "images"];
  const split = data.split ? `${data.split} ` : "";
  if (data.total === 0) return `No ${split}${noun[0]} is here.`;
  const shown = `${data.total} ${split}${data.total === 1 ? noun[0] : noun[1]}, ${order(target, data.score_is)}; showing ${offset + 1}–${Math.min(offset + data.images.length, data.total)}.`;
  const drawn = data.images.some((i) => i.cam_true_url || i.errors_url);
  return drawn ? `${shown} Grad-CAM and error maps are drawn the first time they are shown.` : shown;
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
          <p className="muted small" data-testid="explain-count">{countLine(data, offset, target)}</p>
          <ul className="worst">
            {data.images.map((image) => (
              <Row key={image.item_id} image={image} scoreIs={data.score_is} />
            ))}
          </ul>
          <OffsetPager offset={offset} total={data.total} onMove={move}>
            page {Math.floor(offset / EVALUATION_PAGE) + 1} of {Math.ceil(data.total / EVALUATION_PAGE)}
          </OffsetPager>
        </>
      ) : null}
    </section>
  );
}
