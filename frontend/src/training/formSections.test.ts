import { describe, expect, it } from "vitest";
import { changedPaths, userChanges } from "./configDiff";
import { alternativesIn, changedIn, errorsIn, optionsSchema, sectionsOf, simpleFieldsIn, topLevelFields } from "./formSections";
import { RUN_SCHEMA, baseConfig } from "./runFormFixtures";
import { fieldLabel, setIn } from "./schema";

const SIMPLE = ["schedule.epochs", "data.input_size", "data.batch_size", "model.pretrained"];

describe("form sections", () => {
  it("keeps the simple fields the schema has, the classification four when the task names none", () => {
    expect(simpleFieldsIn(RUN_SCHEMA, undefined)).toEqual(SIMPLE);
    expect(simpleFieldsIn(RUN_SCHEMA, ["schedule.epochs", "data.scales"])).toEqual(["schedule.epochs"]);
    expect(alternativesIn(RUN_SCHEMA)).toEqual({ "schedule.epochs": ["schedule.iterations"] });
    expect(topLevelFields(RUN_SCHEMA)).toEqual(["name"]);
  });

  it("has one section per top-level object, the pipeline its own, and none left empty", () => {
    const sections = sectionsOf(RUN_SCHEMA, [...SIMPLE, "name"], alternativesIn(RUN_SCHEMA));
    expect(sections.map((s) => [s.path, s.title])).toEqual([
      ["model", "Model"], // its options (architecture is the cards, pretrained a simple field)
      ["data", "Data"],
      ["data.augment", "Augment"],
      ["loss", "Loss"],
      ["schedule", "Schedule"],
      ["runtime", "Runtime"],
    ]);
    expect(sectionsOf(RUN_SCHEMA, [...SIMPLE, "model.options"]).map((s) => s.path)).not.toContain("model"); // nothing left in it
    const data = sections[1]!;
    expect(data.hidden).toEqual(expect.arrayContaining(["data.input_size", "data.batch_size", "data.dataset_id", "data.augment"]));
    expect(sections[4]!.hidden).toEqual(expect.arrayContaining(["schedule.epochs", "schedule.iterations"]));
  });

  it("counts the leaf fields that differ from the base config inside each section, and its errors", () => {
    const sections = sectionsOf(RUN_SCHEMA, SIMPLE, alternativesIn(RUN_SCHEMA));
    const [, data, augment, loss, schedule] = sections;
    let c: unknown = baseConfig();
    c = setIn(c, ["data", "workers"], 0);
    c = setIn(c, ["data", "batch_size"], 8); // a simple field: counted nowhere below
    c = setIn(c, ["data", "augment", 1, "p"], 0.2);
    c = setIn(c, ["loss", "name"], "focal");
    c = setIn(c, ["loss", "label_smoothing"], 0.1);
    expect(changedIn(data!, baseConfig(), c)).toBe(1);
    expect(changedIn(augment!, baseConfig(), c)).toBe(1);
    expect(changedIn(loss!, baseConfig(), c)).toBe(2);
    expect(changedIn(schedule!, baseConfig(), c)).toBe(0);
    const errors = { "schedule.lr": "must be > 0", "schedule.epochs": "must be ≥ 1", "data.augment.0.p": "bad" };
    expect(errorsIn(schedule!, errors)).toEqual(["schedule.lr"]);
    expect(errorsIn(augment!, errors)).toEqual(["data.augment.0.p"]);
    expect(errorsIn(data!, errors)).toEqual([]);
  });

  it("labels a path in words with its unit", () => {
    expect(fieldLabel(RUN_SCHEMA, "runtime.eval_interval")).toEqual({ label: "Evaluate every", unit: "epochs" });
    expect(fieldLabel(RUN_SCHEMA, "data.workers")).toEqual({ label: "Workers", unit: undefined });
    expect(fieldLabel(RUN_SCHEMA, "schedule.epochs")).toEqual({ label: "Epochs", unit: "epochs" });
  });

  it("turns a catalog entry's options into fields", () => {
    const s = optionsSchema([{ name: "drop_rate", type: "float", default: 0, minimum: 0, maximum: 0.9, description: "Dropout" }]);
    expect(s?.properties?.drop_rate).toEqual({ title: "Drop rate", type: "number", default: 0, minimum: 0, maximum: 0.9, description: "Dropout" });
    expect(optionsSchema([])).toBeNull();
  });
});

describe("what the user changed", () => {
  it("lists changed leaves; carries a whole list when one of its items changed", () => {
    let c: unknown = baseConfig();
    c = setIn(c, ["schedule", "lr"], 0.01);
    c = setIn(c, ["data", "augment", 1, "p"], 0.2);
    c = setIn(c, ["model", "options"], { dropout: 0.1 });
    expect(changedPaths(baseConfig(), c)).toEqual(["data.augment.1.p", "model.options.dropout", "schedule.lr"]);
    expect(userChanges(baseConfig(), c, ["model.options", "model.architecture"])).toEqual(["data.augment", "schedule.lr"]);
  });
});
