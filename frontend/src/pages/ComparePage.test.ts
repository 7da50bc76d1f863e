import { describe, expect, it } from "vitest";
import { comparedNames, parseIds } from "./ComparePage";

describe("compare runs", () => {
  it("overlays the losses, every validation metric any run logged, then the learning rate", () => {
    const cls = new Map([
      ["train/loss", new Map([[1, 1]])],
      ["train/lr", new Map([[1, 0.1]])],
      ["val/accuracy/top1", new Map([[1, 0.5]])],
    ]);
    const seg = new Map([
      ["train/loss", new Map([[1, 1]])],
      ["val/loss", new Map([[1, 1]])],
      ["val/mIoU", new Map([[1, 0.4]])],
      ["val/samples", new Map([[1, 16]])],
    ]);
    expect(comparedNames([cls, seg])).toEqual(["train/loss", "val/loss", "val/accuracy/top1", "val/mIoU", "train/lr"]);
    expect(comparedNames([])).toEqual([]);
  });

  it("reads distinct positive ids", () => {
    expect(parseIds("3, 5,3,x,-1,0")).toEqual([3, 5]);
  });
});
