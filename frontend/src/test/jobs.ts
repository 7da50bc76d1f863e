/** A job row as `GET /api/jobs/{id}` answers it: a queued training run unless `fields` say otherwise. */
export function jobRow(fields: Record<string, unknown> = {}) {
  return {
    id: 1,
    kind: "train",
    status: "queued",
    queue: "training",
    progress: 0,
    message: null,
    error: null,
    config: {},
    result: null,
    attempt: 0,
    worker: null,
    cancel_requested: false,
    created_at: "2024-05-01T10:00:00Z",
    started_at: null,
    finished_at: null,
    queue_position: null,
    ...fields,
  };
}
