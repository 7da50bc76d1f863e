import { act, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Estimate, estimateSentence, formatDuration } from "./Estimate";
import { ESTIMATE, baseConfig } from "./runFormFixtures";
import { setIn } from "./schema";
import { jsonResponse, mockApi } from "../test/utils";

describe("the estimate in words", () => {
  it("formats durations and the whole sentence", () => {
    expect(formatDuration(4.9)).toBe("5 s");
    expect(formatDuration(61)).toBe("1 min");
    expect(formatDuration(4000)).toBe("1 h 7 min");
    expect(estimateSentence(ESTIMATE, baseConfig())).toBe(
      "About 0.41 s per iteration on the CPU → 12 iterations per epoch ≈ 5 s; 10 epochs ≈ 49 s (+ 10 evaluations ≈ 20 s)",
    );
    const byIterations = setIn(setIn(baseConfig(), ["schedule", "epochs"], null), ["schedule", "iterations"], 500);
    expect(estimateSentence({ ...ESTIMATE, device: "cuda", total_iterations: 500, evaluations: 0 }, byIterations)).toBe(
      "About 0.41 s per iteration on the GPU → 500 iterations ≈ 3 min",
    );
  });
});

describe("Estimate", () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("asks after a pause, polls every 2 s while the worker measures, then shows the answer", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let calls = 0;
    const { requests } = mockApi({
      "POST /api/configs/estimate": () => {
        calls += 1;
        return calls < 3
          ? jsonResponse(200, { ...ESTIMATE, status: "pending", job_id: 9, seconds_per_iteration: null })
          : jsonResponse(200, { ...ESTIMATE, busy: true, memory_mb: 1536 });
      },
    });
    const { rerender } = render(<Estimate config={baseConfig()} enabled />);
    expect(calls).toBe(0);
    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(await screen.findByTestId("estimate-pending")).toHaveTextContent("Measuring on the worker (job #9)…");
    await act(() => vi.advanceTimersByTimeAsync(2000));
    expect(calls).toBe(2);
    await act(() => vi.advanceTimersByTimeAsync(2000));
    expect(await screen.findByTestId("estimate-text")).toHaveTextContent("About 0.41 s per iteration on the CPU → 12 iterations per epoch");
    expect(screen.getByTestId("estimate")).toHaveTextContent("Memory: about 1.5 GB");
    expect(screen.getByTestId("estimate-busy")).toHaveTextContent("expect it to be faster");
    expect(new URL(requests[0]!.url).search).toBe("?wait=15");
    expect(await requests[0]!.json()).toEqual({ config: baseConfig() });

    // Another input: asked again (after the pause); an unrelated field is not.
    rerender(<Estimate config={setIn(baseConfig(), ["runtime", "seed"], 3) as Record<string, unknown>} enabled />);
    await act(() => vi.advanceTimersByTimeAsync(3000));
    expect(calls).toBe(3);
    rerender(<Estimate config={setIn(baseConfig(), ["data", "batch_size"], 8) as Record<string, unknown>} enabled />);
    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(calls).toBe(4);
  });

  it("stops polling when it unmounts, says so when the config is refused, and names a failure", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let calls = 0;
    mockApi({
      "POST /api/configs/estimate": () => {
        calls += 1;
        return jsonResponse(200, { ...ESTIMATE, status: "pending" });
      },
    });
    const { unmount } = render(<Estimate config={baseConfig()} enabled />);
    await act(() => vi.advanceTimersByTimeAsync(1000));
    await screen.findByTestId("estimate-pending");
    unmount();
    await act(() => vi.advanceTimersByTimeAsync(6000));
    expect(calls).toBe(1);

    mockApi({ "POST /api/configs/estimate": () => jsonResponse(422, { detail: "bad", code: "validation_error", errors: [{ loc: ["body", "config", "schedule", "lr"], msg: "too small" }] }) });
    const refused = render(<Estimate config={baseConfig()} enabled />);
    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(await screen.findByText("Fix the fields first to get a time estimate.")).toBeInTheDocument();
    refused.unmount();

    mockApi({ "POST /api/configs/estimate": () => jsonResponse(404, { detail: "config.data.dataset_id: dataset 4 not found", code: "not_found" }) });
    render(<Estimate config={baseConfig()} enabled />);
    await act(() => vi.advanceTimersByTimeAsync(1500));
    expect(await screen.findByTestId("estimate-failed")).toHaveTextContent("dataset 4 not found");
  });
});
