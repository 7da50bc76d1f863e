import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/errors";
import { ConfirmDelete } from "./ConfirmDelete";

describe("ConfirmDelete", () => {
  it("asks first, deletes on the second click, can be cancelled, and shows a refusal in place", async () => {
    const onConfirm = vi.fn();
    const { rerender } = render(<ConfirmDelete label="Delete model" pending={false} error={null} onConfirm={onConfirm} />);
    await userEvent.click(screen.getByRole("button", { name: "Delete…" }));
    await userEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(onConfirm).not.toHaveBeenCalled();
    await userEvent.click(screen.getByRole("button", { name: "Delete…" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete model" }));
    expect(onConfirm).toHaveBeenCalledOnce();

    rerender(<ConfirmDelete label="Delete model" pending error={null} onConfirm={onConfirm} />);
    expect(screen.getByRole("button", { name: "Deleting…" })).toBeDisabled();
    const refusal = new ApiError(409, "model_busy", "model 3 is still importing");
    rerender(<ConfirmDelete label="Delete model" pending={false} error={refusal} onConfirm={onConfirm} />);
    expect(screen.getByText(/model 3 is still importing/)).toBeInTheDocument();
  });
});
