import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";

export const CSRF_COOKIE = "studio_csrf";
export const CSRF_HEADER = "X-CSRF-Token";

const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Read one cookie by name from a `document.cookie`-style string. */
export function readCookie(
  name: string,
  cookieString: string = typeof document === "undefined" ? "" : document.cookie,
): string | null {
  for (const part of cookieString.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return null;
}

/**
 * Adds `X-CSRF-Token: <studio_csrf cookie>` to every state-changing request.
 * The cookie is read when the request is made, so a token rotated by
 * sign-in/sign-up is picked up without rebuilding the client.
 */
export function csrfMiddleware(getCookies: () => string = () => document.cookie): Middleware {
  return {
    onRequest({ request }) {
      if (!UNSAFE_METHODS.has(request.method.toUpperCase())) return undefined;
      const token = readCookie(CSRF_COOKIE, getCookies());
      if (token && !request.headers.has(CSRF_HEADER)) {
        request.headers.set(CSRF_HEADER, token);
      }
      return request;
    },
  };
}

export interface ApiClientOptions {
  baseUrl?: string;
  fetch?: (input: Request) => Promise<Response>;
  getCookies?: () => string;
}

export function createApiClient(options: ApiClientOptions = {}) {
  const client = createClient<paths>({
    // Same origin. An absolute base keeps `new Request()` valid outside browsers (tests).
    baseUrl: options.baseUrl ?? (typeof window !== "undefined" ? window.location.origin : ""),
    credentials: "same-origin",
    // Resolve fetch lazily so tests can stub globalThis.fetch.
    fetch: options.fetch ?? ((input: Request) => globalThis.fetch(input)),
  });
  client.use(csrfMiddleware(options.getCookies));
  return client;
}

export type ApiClient = ReturnType<typeof createApiClient>;

/** The shared client used by the app (same origin: `/api/...`). */
export const api = createApiClient();
