import { describe, expect, it, vi } from "vitest";
import { CSRF_HEADER, createApiClient, readCookie } from "./client";
import { ApiError, toApiError, unwrap } from "./errors";

function recordingFetch(status = 200, body: unknown = {}) {
  const seen: Request[] = [];
  const fetch = vi.fn(async (req: Request) => {
    seen.push(req);
    return new Response(status === 204 ? null : JSON.stringify(body), {
      status,
      headers: { "Content-Type": "application/json" },
    });
  });
  return { seen, fetch };
}

describe("readCookie", () => {
  it("finds a cookie among several and decodes it", () => {
    expect(readCookie("studio_csrf", "a=1; studio_csrf=abc%3D%3D; b=2")).toBe("abc==");
  });
  it("does not match on a name suffix or prefix", () => {
    expect(readCookie("studio_csrf", "xstudio_csrf=no; studio_csrf_old=no")).toBeNull();
  });
  it("returns null when absent", () => {
    expect(readCookie("studio_csrf", "")).toBeNull();
  });
});

describe("CSRF middleware", () => {
  it("sends the studio_csrf cookie as X-CSRF-Token on POST, read at request time", async () => {
    let cookies = "";
    const { seen, fetch } = recordingFetch(204);
    const client = createApiClient({ baseUrl: "http://studio.test", fetch, getCookies: () => cookies });

    cookies = "studio_session=s; studio_csrf=token-1";
    await client.POST("/api/auth/logout");
    cookies = "studio_csrf=token-2";
    await client.DELETE("/api/tokens/{token_id}", { params: { path: { token_id: 7 } } });

    expect(seen[0]?.headers.get(CSRF_HEADER)).toBe("token-1");
    expect(seen[1]?.headers.get(CSRF_HEADER)).toBe("token-2");
    expect(new URL(seen[1]!.url).pathname).toBe("/api/tokens/7");
    expect(seen[0]?.credentials).toBe("same-origin");
  });

  it("does not add the header to GET requests", async () => {
    const { seen, fetch } = recordingFetch(200, { id: 1, email: "a@b.c", created_at: "2024-01-01T00:00:00Z" });
    const client = createApiClient({ baseUrl: "http://studio.test", fetch, getCookies: () => "studio_csrf=t" });
    await client.GET("/api/auth/me");
    expect(seen[0]?.headers.has(CSRF_HEADER)).toBe(false);
  });

  it("sends no header when there is no cookie", async () => {
    const { seen, fetch } = recordingFetch(200, {});
    const client = createApiClient({ baseUrl: "http://studio.test", fetch, getCookies: () => "" });
    await client.POST("/api/auth/login", { body: { email: "a@b.c", password: "x" } });
    expect(seen[0]?.headers.has(CSRF_HEADER)).toBe(false);
  });

  it("reads document.cookie by default", async () => {
    document.cookie = "studio_csrf=from-document; path=/";
    const { seen, fetch } = recordingFetch(201, {});
    const client = createApiClient({ baseUrl: "http://studio.test", fetch });
    await client.POST("/api/tokens", { body: { name: "ci" } });
    expect(seen[0]?.headers.get(CSRF_HEADER)).toBe("from-document");
  });
});

describe("API errors", () => {
  it("maps a 422 body's errors[].loc to field names", () => {
    const err = toApiError(422, {
      detail: "invalid request",
      code: "validation_error",
      errors: [
        { loc: ["body", "email"], msg: "not a valid email", type: "value_error" },
        { loc: ["body", "password"], msg: "too short", type: "string_too_short" },
      ],
    });
    expect(err.code).toBe("validation_error");
    expect(err.fieldErrors).toEqual({ email: "not a valid email", password: "too short" });
  });

  it("accepts FastAPI's stock 422 shape too", () => {
    const err = toApiError(422, { detail: [{ loc: ["body", "email"], msg: "bad", type: "x" }] });
    expect(err.fieldErrors).toEqual({ email: "bad" });
    expect(err.code).toBe("validation_error");
  });

  it("unwrap throws ApiError with detail and code", () => {
    const response = new Response(null, { status: 409 });
    expect(() =>
      unwrap({ error: { detail: "a user with email x already exists", code: "email_taken" }, response }),
    ).toThrowError(ApiError);
    try {
      unwrap({ error: { detail: "taken", code: "email_taken" }, response });
    } catch (e) {
      expect((e as ApiError).status).toBe(409);
      expect((e as ApiError).code).toBe("email_taken");
    }
  });

  it("gives a friendly message for bodies without detail", () => {
    expect(toApiError(429, null).detail).toMatch(/too many/i);
  });
});
