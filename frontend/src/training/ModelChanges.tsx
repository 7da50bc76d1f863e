import { useState } from "react";
import { Link } from "react-router";
import { errorMessage } from "../api/errors";
import { useModelChanges } from "../api/training";
import { Loading } from "../components/Loading";
import { OffsetPager } from "./EvaluationImages";

/** What the second run's model fixed and broke against the first's, image by image. */
export function ModelChangesCard({ first, second, labels }: { first: number; second: number; labels: [string, string] }) {
  const [change, setChange] = useState<"fixed" | "broken">("fixed");
  const [offset, setOffset] = useState(0);
  const query = useModelChanges(first, second, change, offset);
  const data = query.data;
  const pick = (to: "fixed" | "broken") => {
    setChange(to);
    setOffset(0);
  };
  return (
    <div className="card" data-testid="model-changes">
      <h2>
        What {labels[1]} fixed and broke against {labels[0]}
      </h2>
      <p className="muted small">
        Image by image on the split both models were measured on: a classifier's images that turned right or wrong, a
        segmenter's mean IoU, a detector's objects found. Largest change first.
      </p>
      {query.isError ? (
        <p className="field__error" role="alert" data-testid="changes-error">
          {errorMessage(query.error)}
        </p>
      ) : null}
      {query.isPending ? <Loading label="Comparing the two models' evaluations…" /> : null}
      {data ? (
        <>
          <div className="image-nav" role="group" aria-label="Fixed or broken">
            <button type="button" className={change === "fixed" ? "button button--primary" : "button"} aria-pressed={change === "fixed"} onClick={() => pick("fixed")} data-testid="changes-fixed">
              Fixed ({data.fixed})
            </button>
            <button type="button" className={change === "broken" ? "button button--primary" : "button"} aria-pressed={change === "broken"} onClick={() => pick("broken")} data-testid="changes-broken">
              Broken ({data.broken})
            </button>
          </div>
          {data.total === 0 ? (
            <p className="muted" data-testid="changes-none">
              No {data.split} image was {change === "fixed" ? "fixed" : "broken"}.
            </p>
          ) : (
            <ul className="worst">
              {data.images.map((im) => (
                <li key={im.image_id} className="explain__row" data-testid="change-row">
                  <div className="worst__caption">
                    {im.page_url ? (
                      <Link className="worst__name" to={im.page_url} data-testid="change-name">
                        {im.source ?? `image ${im.image_id}`}
                      </Link>
                    ) : (
                      <span className="worst__name">{im.source ?? `image ${im.image_id}`}</span>
                    )}
                    <span className={change === "broken" ? "worst__score" : "small"} data-testid="change-text">
                      {labels[0]}: {im.before} → {labels[1]}: {im.after}
                    </span>
                  </div>
                  {im.image_url ? (
                    <div className="worst__images">
                      <img src={im.image_url} alt={im.source ?? "image"} loading="lazy" />
                    </div>
                  ) : null}
                </li>
              ))}
            </ul>
          )}
          <OffsetPager offset={offset} total={data.total} onMove={setOffset}>
            {offset + 1}–{Math.min(offset + data.images.length, data.total)} of {data.total}
          </OffsetPager>
        </>
      ) : null}
    </div>
  );
}
