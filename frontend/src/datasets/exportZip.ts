import { prepareExport, type ExportFormat } from "../api/datasets";
import { ApiError } from "../api/errors";
import { waitForJob } from "../api/training";
import type { ExportReady, Job } from "../api/types";

/** Why an export was refused, readable: the API's reasons start with "format: ", which says nothing here. */
export function exportReason(reason: string): string {
  return reason.replace(/^format:\s*/i, "").trim() || reason;
}

function readable(err: unknown): unknown {
  return err instanceof ApiError ? new ApiError(err.status, err.code, exportReason(err.detail), err.fieldErrors) : err;
}

/**
 * The export, ready to download: when the zip is not built yet, the light-lane job writing it is followed
 * (`onJob` sees it at each look) and the export asked for again once it has succeeded. A job that failed
 * is an ApiError with its reason; so is a format the dataset cannot take.
 */
export async function readyExport(
  datasetId: number,
  format: ExportFormat,
  onJob: (job: Job) => void,
  signal?: AbortSignal,
  intervalMs = 1000,
): Promise<ExportReady> {
  for (let asked = 0; asked < 3; asked++) {
    const state = await prepareExport(datasetId, format).catch((err: unknown) => {
      throw readable(err);
    });
    if (state.ready) return state;
    if (state.job_id == null) break;
    const job = await waitForJob(state.job_id, signal, intervalMs, onJob);
    if (job.status !== "succeeded") {
      throw new ApiError(422, "export_failed", exportReason(job.error ?? `the export job was ${job.status}`));
    }
  }
  throw new Error("The export is still not ready; try again in a moment.");
}
