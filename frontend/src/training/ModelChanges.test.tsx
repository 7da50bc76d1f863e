import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ModelChangesCard } from "./ModelChanges";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

function answer(change: string, images: { image_id: number; before: string; after: string; change: number }[]) {
  return {
    model_id: 4,
    other: 9,
    dataset_id: 2,
    split: "val",
    change,
    total: images.length,
    fixed: 1,
    broken: 2,
    offset: 0,
    limit: 12,
    images: images.map((im) => ({
      ...im,
      source: `pics/${im.image_id}.jpg`,
      image_url: `/api/datasets/2/images/${im.image_id}/render`,
      page_url: `/datasets/2/images/${im.image_id}`,
    })),
  };
}

describe("ModelChangesCard", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("lists what the second model fixed, then what it broke, each before and after", async () => {
    const { requests } = mockApi({
      "GET /api/models/4/evaluation/changes": (request) =>
        new URL(request.url).searchParams.get("change") === "broken"
          ? jsonResponse(200, answer("broken", [{ image_id: 5, before: "right: predicted cat (90%)", after: "wrong: predicted dog (60%)", change: -1.2 }]))
          : jsonResponse(200, answer("fixed", [{ image_id: 3, before: "wrong: predicted dog (70%)", after: "right: predicted cat (80%)", change: 1.1 }])),
    });
    renderWithProviders(<ModelChangesCard first={4} second={9} labels={["#10", "#11"]} />);
    const row = await screen.findByTestId("change-row");
    expect(within(row).getByTestId("change-name")).toHaveAttribute("href", "/datasets/2/images/3");
    expect(within(row).getByTestId("change-text")).toHaveTextContent("#10: wrong: predicted dog (70%) → #11: right: predicted cat (80%)");
    expect(screen.getByTestId("changes-broken")).toHaveTextContent("Broken (2)");
    await userEvent.click(screen.getByTestId("changes-broken"));
    expect(await screen.findByText(/#11: wrong: predicted dog/)).toBeInTheDocument();
    expect(new URL(requests.at(-1)!.url).searchParams.get("other")).toBe("9");
  });

  it("says why two models cannot be compared", async () => {
    mockApi({
      "GET /api/models/4/evaluation/changes": () =>
        jsonResponse(422, { detail: "other: model 9 was evaluated on dataset 3 (val), model 4 on dataset 2 (val)", code: "invalid_field" }),
    });
    renderWithProviders(<ModelChangesCard first={4} second={9} labels={["#10", "#11"]} />);
    expect(await screen.findByTestId("changes-error")).toHaveTextContent("evaluated on dataset 3 (val)");
  });
});
