/** Normalized API error, from the `{detail, code, errors?}` error body. */
export interface FieldErrorItem {
  loc: (string | number)[];
  msg: string;
  type?: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  /** Field name (last `loc` element after "body"/"query"/...) → message. */
  readonly fieldErrors: Record<string, string>;

  constructor(status: number, code: string, detail: string, fieldErrors: Record<string, string> = {}) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.fieldErrors = fieldErrors;
  }
}

const LOCATION_PREFIXES = new Set(["body", "query", "path", "header", "cookie"]);

function fieldName(loc: unknown): string | null {
  if (!Array.isArray(loc) || loc.length === 0) return null;
  const parts = loc.filter((p, i) => !(i === 0 && typeof p === "string" && LOCATION_PREFIXES.has(p)));
  if (parts.length === 0) return null;
  return parts.map(String).join(".");
}

function collectFieldErrors(items: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(items)) return out;
  for (const item of items) {
    if (!item || typeof item !== "object") continue;
    const { loc, msg } = item as { loc?: unknown; msg?: unknown };
    const name = fieldName(loc);
    if (name && typeof msg === "string" && !(name in out)) out[name] = msg;
  }
  return out;
}

function defaultMessage(status: number): string {
  if (status === 401) return "You are not signed in.";
  if (status === 403) return "The request was refused (missing or stale security token). Reload the page and try again.";
  if (status === 429) return "Too many attempts. Please wait a moment and try again.";
  if (status >= 500) return "The server had a problem. Please try again.";
  return `Request failed (HTTP ${status}).`;
}

/** Build an ApiError from an HTTP status and whatever body the server sent. */
export function toApiError(status: number, body: unknown): ApiError {
  if (body && typeof body === "object") {
    const b = body as { detail?: unknown; code?: unknown; errors?: unknown };
    const code = typeof b.code === "string" ? b.code : status === 422 ? "validation_error" : `http_${status}`;
    // FastAPI's stock 422 puts the error list in `detail`; accept that too.
    const fieldErrors = collectFieldErrors(Array.isArray(b.detail) ? b.detail : b.errors);
    const detail = typeof b.detail === "string" && b.detail ? b.detail : defaultMessage(status);
    return new ApiError(status, code, detail, fieldErrors);
  }
  if (typeof body === "string" && body.trim() && body.length < 300) {
    return new ApiError(status, `http_${status}`, body.trim());
  }
  return new ApiError(status, `http_${status}`, defaultMessage(status));
}

/** Message for any thrown value (ApiError, network failure, ...). */
export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.detail;
  if (err instanceof TypeError) return "Could not reach the server. Check your connection and try again.";
  if (err instanceof Error) return err.message;
  return "Something went wrong.";
}

/**
 * Turn an openapi-fetch result into data or a thrown ApiError.
 * `data` is returned as-is (undefined for 204 responses).
 */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok) return result.data as T;
  throw toApiError(result.response.status, result.error);
}
