import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TrainPage } from "./TrainPage";
import { FAKE_TASKS, tasksRoute } from "../test/tasks";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";
import { CATALOG, ESTIMATE, PRESETS, RUN_SCHEMA, baseConfig } from "../training/runFormFixtures";

const dataset = {
  id: 4,
  name: "shapes",
  version: 1,
  parent_id: null,
  status: "ready",
  source_format: "folder",
  classes: ["circle", "square"],
  tasks: ["classification"],
  created_at: "2024-05-01T10:00:00Z",
  stats: {},
};

type Obj = Record<string, unknown>;
function merge(a: unknown, b: unknown): unknown {
  if (!b || typeof b !== "object" || Array.isArray(b) || !a || typeof a !== "object" || Array.isArray(a)) return b;
  const out: Obj = { ...(a as Obj) };
  for (const [k, v] of Object.entries(b as Obj)) out[k] = merge(out[k], v);
  return out;
}

const TASKS = [{ ...FAKE_TASKS[0]!, simple_fields: ["schedule.epochs", "data.input_size", "data.batch_size", "model.pretrained"] }, ...FAKE_TASKS.slice(1)];

function routes(refuse?: (body: Obj) => Response | null) {
  return mockApi({
    ...tasksRoute(TASKS),
    "GET /api/datasets": () => jsonResponse(200, [dataset]),
    "GET /api/schema/train-config": () => jsonResponse(200, RUN_SCHEMA),
    "GET /api/catalog": () => jsonResponse(200, CATALOG),
    "GET /api/configs/presets": () => jsonResponse(200, { presets: PRESETS }),
    "POST /api/configs/estimate": () => jsonResponse(200, ESTIMATE),
    "POST /api/configs/validate": async (req) => {
      const body = (await req.json()) as Obj;
      const refused = refuse?.(body);
      if (refused) return refused;
      const arch = ((body.model as Obj | undefined)?.architecture as string | undefined) ?? "resnet18";
      const config = merge(baseConfig(arch), body);
      return jsonResponse(200, { config, yaml: "" });
    },
    "POST /api/jobs": () => jsonResponse(201, { id: 77 }),
  });
}

async function bodies(requests: Request[], key: string): Promise<Obj[]> {
  const out: Obj[] = [];
  for (const r of requests) if (`${r.method} ${new URL(r.url).pathname}` === key) out.push((await r.clone().json()) as Obj);
  return out;
}

const form = () => screen.getByRole("form", { name: "Run config" });
const section = (path: string) => screen.getByTestId(`section-${path}`);

// Whole-page tests: slow on a busy machine.
describe("TrainPage: the run form", { timeout: 30_000 }, () => {
  afterEach(() => vi.unstubAllGlobals());

  it("starts simple: the recommended model, the task's few fields, every other section folded", async () => {
    const { requests } = routes();
    renderWithProviders(<TrainPage />);
    const tiny = (await screen.findAllByTestId("catalog-row")).find((c) => c.dataset.name === "tiny_cnn")!;
    await waitFor(() => expect(within(tiny).getByRole("radio")).toBeChecked());
    expect(within(tiny).getByTestId("recommended")).toHaveTextContent("Recommended: Light enough to train on this CPU in minutes");
    // The server's defaults for the recommended entry, asked for once: the page invents none.
    expect((await bodies(requests, "POST /api/configs/validate"))[0]).toEqual({ task: "classification", data: { dataset_id: 4 }, model: { architecture: "tiny_cnn" } });

    const simple = within(form()).getAllByTestId("schema-form")[0]!;
    expect(within(simple).getAllByText(/./, { selector: "label" }).map((l) => l.textContent?.trim())).toEqual(["Epochs", "Input size", "Batch size", "Pretrained"]);
    expect(within(simple).getByLabelText("Input size")).toHaveValue("64");
    expect(within(simple).getByText("px")).toBeInTheDocument();
    expect(within(simple).getByText("data.input_size")).toHaveClass("sf-code");
    expect(within(simple).getByText("Input size")).toHaveAttribute("title", "data.input_size");
    expect(within(simple).getByText(/Square side the images are resized to/)).toBeInTheDocument();

    for (const path of ["data", "data.augment", "loss", "schedule", "runtime"]) {
      expect(section(path)).not.toHaveAttribute("open");
    }
    expect(screen.queryByTestId("section-model")).not.toBeInTheDocument(); // tiny_cnn has no options: nothing left in it
    expect(screen.getByLabelText("Workers")).not.toBeVisible();
    expect(screen.getByLabelText("Learning rate")).not.toBeVisible();
    expect(within(form().querySelector<HTMLElement>(".run-actions")!).getByLabelText("Name")).toBeVisible(); // the run's name, beside Start
    expect(screen.getByRole("button", { name: "Start training" })).toBeVisible();
    expect(await screen.findByTestId("estimate-text", {}, { timeout: 3000 })).toHaveTextContent("About 0.41 s per iteration on the CPU");
  });

  it("picks another model from the server, keeping what the user changed", async () => {
    const user = userEvent.setup();
    const { requests } = routes();
    renderWithProviders(<TrainPage />);
    const batch = await within(await screen.findByRole("form", { name: "Run config" })).findByLabelText("Batch size");
    await user.clear(batch);
    await user.type(batch, "8");
    const resnet = screen.getAllByTestId("catalog-row").find((c) => c.dataset.name === "resnet50")!;
    await user.click(within(resnet).getByRole("radio"));
    await waitFor(() => expect(within(form()).getByLabelText("Input size")).toHaveValue("224"));
    expect(within(form()).getByLabelText("Batch size")).toHaveValue("8");
    const asked = (await bodies(requests, "POST /api/configs/validate")).slice(1);
    expect(asked).toEqual(
      expect.arrayContaining([
        { task: "classification", data: { dataset_id: 4 }, model: { architecture: "resnet50" } },
        { task: "classification", data: { dataset_id: 4, batch_size: 8 }, model: { architecture: "resnet50" } },
      ]),
    );
    // resnet50 has an option: the model section is there, its option a field of its own.
    expect(within(section("model")).getByLabelText("Dropout")).toBeInTheDocument();
    expect(within(section("data")).queryByTestId("section-changed")).not.toBeInTheDocument(); // batch size is above, not in it
  });

  it("counts changes in a folded section's summary and switches epochs to iterations", async () => {
    const user = userEvent.setup();
    routes();
    renderWithProviders(<TrainPage />);
    await screen.findByRole("form", { name: "Run config" });
    const runtime = section("runtime");
    await user.click(within(runtime).getByText("Runtime"));
    await waitFor(() => expect(runtime).toHaveAttribute("open"));
    const every = within(runtime).getByLabelText("Evaluate every");
    expect(within(runtime).getByText("runtime.eval_interval")).toBeInTheDocument();
    await user.clear(every);
    await user.type(every, "2");
    expect(within(runtime).getByTestId("section-changed")).toHaveTextContent("1 changed");

    // The same length of training, by the measured iterations per epoch (12): nothing made up.
    await screen.findByTestId("estimate-text", {}, { timeout: 3000 });
    await user.click(within(form()).getByRole("button", { name: "Count iterations instead" }));
    const iterations = within(form()).getByLabelText("Iterations");
    expect(iterations).toHaveValue("120");
    expect(within(form()).queryByLabelText("Epochs")).not.toBeInTheDocument();
    await user.click(within(form()).getByRole("button", { name: "Count epochs instead" }));
    expect(within(form()).getByLabelText("Epochs")).toHaveValue("10");
  });

  it("applies a preset and opens a folded section to show the server's error by its field", async () => {
    const user = userEvent.setup();
    const refuseLr = (body: Obj) =>
      body.version !== undefined && (body.schedule as Obj | undefined)?.lr === 0
        ? jsonResponse(422, {
            detail: "schedule.lr: Input should be greater than 0",
            code: "validation_error",
            errors: [{ loc: ["body", "config", "schedule", "lr"], msg: "Input should be greater than 0" }],
          })
        : null;
    const { requests } = routes(refuseLr);
    renderWithProviders(<TrainPage />);
    await screen.findByRole("form", { name: "Run config" });
    const quick = await screen.findByRole("button", { name: /Quick look/ });
    expect(quick).toHaveTextContent("Epochs 10 → 3 epochs, Input size 64 → 128 px");
    await user.click(quick);
    expect(within(form()).getByLabelText("Epochs")).toHaveValue("3");
    expect(within(form()).getByLabelText("Input size")).toHaveValue("128");
    expect(quick).toHaveAttribute("aria-pressed", "true");

    // A value the browser's checks let through (here: typed into YAML) that the server refuses.
    const schedule = section("schedule");
    expect(schedule).not.toHaveAttribute("open");
    const lr = within(schedule).getByLabelText("Learning rate");
    await user.click(within(schedule).getByText("Schedule"));
    await user.clear(lr);
    await user.type(lr, "0");
    expect(within(schedule).getByTestId("error-schedule.lr")).toHaveTextContent("must be > 0");
    await user.click(within(schedule).getByText("Schedule")); // folded again before checking
    await waitFor(() => expect(schedule).not.toHaveAttribute("open"));
    await user.click(within(form()).getByRole("button", { name: "Check config" }));
    await waitFor(() => expect(schedule).toHaveAttribute("open"));
    expect(within(schedule).getByTestId("error-schedule.lr")).toHaveTextContent("Input should be greater than 0");
    expect(within(schedule).getByTestId("section-errors")).toHaveTextContent("1 error");
    expect(screen.getByTestId("server-errors")).toHaveTextContent("schedule.lr");
    expect((await bodies(requests, "POST /api/configs/validate")).at(-1)).toMatchObject({ schedule: { lr: 0, epochs: 3 }, data: { input_size: 128 } });
  });
});

const multiTaskDataset = {
  id: 4,
  name: "pets",
  version: 1,
  parent_id: null,
  status: "ready",
  source_format: "coco",
  classes: ["cat", "dog"],
  tasks: ["object_detection", "text_detection", "classification"],
  created_at: "2024-05-01T10:00:00Z",
  stats: {},
};

function unsupportedRoutes(tasks = FAKE_TASKS) {
  return {
    ...tasksRoute(tasks),
    "GET /api/datasets": () => jsonResponse(200, [multiTaskDataset]),
    // This studio trains none of them here: the page says so, in the task's words.
    "GET /api/schema/train-config": () => jsonResponse(422, { detail: "not trained", code: "unknown_task" }),
  };
}

describe("TrainPage: the task", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("picks the dataset's first task in the registry's order and titles every choice", async () => {
    mockApi(unsupportedRoutes());
    renderWithProviders(<TrainPage />);
    const select = await screen.findByLabelText("Task");
    await waitFor(() => expect(select).toHaveValue("classification"));
    expect([...(select as HTMLSelectElement).options].map((o) => o.textContent)).toEqual([
      "Object detection",
      "Text detection",
      "Classification",
    ]);
    expect(await screen.findByTestId("task-unsupported")).toHaveTextContent("Training for Classification is not available yet.");
  });

  it("follows the registry's order, not a task name the page knows", async () => {
    const reordered = [FAKE_TASKS[2]!, FAKE_TASKS[0]!, FAKE_TASKS[1]!, FAKE_TASKS[3]!];
    mockApi(unsupportedRoutes(reordered));
    renderWithProviders(<TrainPage />);
    const select = await screen.findByLabelText("Task");
    await waitFor(() => expect(select).toHaveValue("object_detection"));
  });
});
