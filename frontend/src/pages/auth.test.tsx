import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { App } from "../App";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

const user = { id: 1, email: "ada@example.com", created_at: "2024-05-01T10:00:00Z" };
const health = {
  status: "ok",
  database: { ok: true, detail: "connected" },
  broker: { ok: true, detail: "reachable", transport: "filesystem" },
  lanes: {
    training: { workers: [], queued: 0, running: 0 },
    light: { workers: [], queued: 0, running: 0 },
    inference: { workers: [], queued: 0, running: 0 },
  },
};

describe("routing", () => {
  it("redirects / to sign-in when signed out", async () => {
    mockApi({ "GET /api/auth/me": () => jsonResponse(401, { detail: "not signed in", code: "not_authenticated" }) });
    renderWithProviders(<App />, { route: "/" });
    expect(await screen.findByRole("heading", { name: "Sign in" })).toBeInTheDocument();
    const nav = screen.getByRole("navigation", { name: "Main" });
    expect(within(nav).getByRole("link", { name: "Health" })).toBeInTheDocument();
  });
});

describe("sign in", () => {
  it("shows the API's wrong-credentials error in place", async () => {
    mockApi({
      "GET /api/auth/me": () => jsonResponse(401, { detail: "not signed in", code: "not_authenticated" }),
      "POST /api/auth/login": () => jsonResponse(401, { detail: "wrong email or password", code: "bad_credentials" }),
    });
    renderWithProviders(<App />, { route: "/signin" });
    const form = await screen.findByRole("form", { name: "Sign in" });
    await userEvent.type(within(form).getByLabelText("Email"), "ada@example.com");
    await userEvent.type(within(form).getByLabelText("Password"), "wrongpass");
    await userEvent.click(within(form).getByRole("button", { name: "Sign in" }));
    expect(await within(form).findByRole("alert")).toHaveTextContent("wrong email or password");
  });

  it("signs in, lands on health and shows the email in the header", async () => {
    const { requests } = mockApi({
      "GET /api/auth/me": () => jsonResponse(401, { detail: "not signed in", code: "not_authenticated" }),
      "POST /api/auth/login": () => {
        document.cookie = "studio_csrf=csrf-abc; path=/";
        return jsonResponse(200, { user, csrf_token: "csrf-abc" });
      },
      "GET /api/health": () => jsonResponse(200, health),
      "POST /api/auth/logout": () => jsonResponse(204, undefined),
    });
    renderWithProviders(<App />, { route: "/signin" });
    const form = await screen.findByRole("form", { name: "Sign in" });
    await userEvent.type(within(form).getByLabelText("Email"), "ada@example.com");
    await userEvent.type(within(form).getByLabelText("Password"), "correct horse");
    await userEvent.click(within(form).getByRole("button", { name: "Sign in" }));

    expect(await screen.findByRole("heading", { name: "System health" })).toBeInTheDocument();
    expect(screen.getByTestId("user-email")).toHaveTextContent("ada@example.com");

    const login = requests.find((r) => r.url.endsWith("/api/auth/login"))!;
    expect(await login.json()).toEqual({ email: "ada@example.com", password: "correct horse" });

    await userEvent.click(screen.getByRole("button", { name: "Sign out" }));
    expect(await screen.findByRole("heading", { name: "Sign in" })).toBeInTheDocument();
    const logout = requests.find((r) => r.url.endsWith("/api/auth/logout"))!;
    expect(logout.headers.get("X-CSRF-Token")).toBe("csrf-abc");
    expect(screen.queryByTestId("user-email")).not.toBeInTheDocument();
  });
});

describe("sign up", () => {
  it("validates locally before calling the API", async () => {
    const { requests } = mockApi({
      "GET /api/auth/me": () => jsonResponse(401, { detail: "not signed in", code: "not_authenticated" }),
    });
    renderWithProviders(<App />, { route: "/signup" });
    const form = await screen.findByRole("form", { name: "Sign up" });
    await userEvent.type(within(form).getByLabelText("Email"), "ada@example.com");
    await userEvent.type(within(form).getByLabelText("Password"), "short");
    await userEvent.type(within(form).getByLabelText("Confirm password"), "different");
    await userEvent.click(within(form).getByRole("button", { name: "Sign up" }));
    expect(screen.getByTestId("error-password")).toHaveTextContent("at least 8 characters");
    expect(screen.getByTestId("error-confirm")).toHaveTextContent("do not match");
    expect(within(form).getByLabelText("Password")).toHaveAttribute("aria-invalid", "true");
    expect(requests.filter((r) => r.method === "POST")).toHaveLength(0);
  });

  it("shows 422 and 409 errors next to the field they name", async () => {
    let calls = 0;
    mockApi({
      "GET /api/auth/me": () => jsonResponse(401, { detail: "not signed in", code: "not_authenticated" }),
      "POST /api/auth/register": () => {
        calls += 1;
        return calls === 1
          ? jsonResponse(422, {
              detail: "invalid request",
              code: "validation_error",
              errors: [{ loc: ["body", "email"], msg: "value is not a valid email address", type: "value_error" }],
            })
          : jsonResponse(409, { detail: "a user with email <b>ada</b> already exists", code: "email_taken" });
      },
    });
    renderWithProviders(<App />, { route: "/signup" });
    const form = await screen.findByRole("form", { name: "Sign up" });
    await userEvent.type(within(form).getByLabelText("Email"), "ada@example");
    await userEvent.type(within(form).getByLabelText("Password"), "longenough");
    await userEvent.type(within(form).getByLabelText("Confirm password"), "longenough");
    await userEvent.click(within(form).getByRole("button", { name: "Sign up" }));
    expect(await screen.findByTestId("error-email")).toHaveTextContent("value is not a valid email address");

    await userEvent.click(within(form).getByRole("button", { name: "Sign up" }));
    await waitFor(() => expect(screen.getByTestId("error-email")).toHaveTextContent("already exists"));
    // Server text is rendered as text, never as markup.
    expect(screen.getByTestId("error-email").querySelector("b")).toBeNull();
    expect(screen.getByTestId("error-email").textContent).toContain("<b>ada</b>");
  });
});
