import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { TokensPage } from "./TokensPage";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

describe("TokensPage", () => {
  it("creates a token, shows it once, lists and revokes", async () => {
    document.cookie = "studio_csrf=csrf-1; path=/";
    let tokens = [{ id: 3, name: "old <script>", created_at: "2024-01-01T00:00:00Z", last_used_at: null as string | null }];
    const { requests } = mockApi({
      "GET /api/tokens": () => jsonResponse(200, tokens),
      "POST /api/tokens": () => {
        const t = { id: 4, name: "ci", created_at: "2024-02-01T00:00:00Z", last_used_at: null };
        tokens = [...tokens, t];
        return jsonResponse(201, { ...t, token: "stu_secret_value" });
      },
      "DELETE /api/tokens/3": () => {
        tokens = tokens.filter((t) => t.id !== 3);
        return jsonResponse(204, undefined);
      },
    });
    renderWithProviders(<TokensPage />, { route: "/tokens" });
    expect(await screen.findByText("old <script>")).toBeInTheDocument();

    await userEvent.type(screen.getByLabelText("Token name"), "ci");
    await userEvent.click(screen.getByRole("button", { name: "Create token" }));
    expect(await screen.findByTestId("new-token-value")).toHaveTextContent("stu_secret_value");
    await waitFor(() => expect(screen.getAllByTestId("token-row")).toHaveLength(2));

    await userEvent.click(screen.getByRole("button", { name: "Revoke old <script>" }));
    await userEvent.click(screen.getByRole("button", { name: "Confirm revoking old <script>" }));
    await waitFor(() => expect(screen.getAllByTestId("token-row")).toHaveLength(1));
    expect(within(screen.getByTestId("tokens-table")).queryByText("old <script>")).not.toBeInTheDocument();

    const mutations = requests.filter((r) => r.method !== "GET");
    expect(mutations.map((r) => [r.method, r.headers.get("X-CSRF-Token")])).toEqual([
      ["POST", "csrf-1"],
      ["DELETE", "csrf-1"],
    ]);

    await userEvent.click(screen.getByRole("button", { name: "Done" }));
    expect(screen.queryByTestId("new-token-value")).not.toBeInTheDocument();
  });
});
