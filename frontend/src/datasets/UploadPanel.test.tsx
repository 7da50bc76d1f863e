import { fireEvent, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes, useParams } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { UploadPanel } from "./UploadPanel";
import { jsonResponse, mockApi, renderWithProviders } from "../test/utils";

/** A stand-in XMLHttpRequest the test drives by hand. */
class FakeXhr {
  static last: FakeXhr | null = null;
  method = "";
  url = "";
  headers: Record<string, string> = {};
  body: FormData | null = null;
  status = 0;
  responseText = "";
  responseType = "";
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null } = {
    onprogress: null,
  };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;

  constructor() {
    FakeXhr.last = this;
  }
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  send(body: FormData) {
    this.body = body;
  }
  abort() {
    this.onabort?.();
  }
  progress(loaded: number, total: number) {
    this.upload.onprogress?.({ loaded, total, lengthComputable: true });
  }
  respond(status: number, body: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(body);
    this.onload?.();
  }
}

function Landed() {
  const { id } = useParams();
  return <p data-testid="landed">dataset {id}</p>;
}

function renderPanel() {
  return renderWithProviders(
    <Routes>
      <Route path="/datasets" element={<UploadPanel />} />
      <Route path="/datasets/:id" element={<Landed />} />
    </Routes>,
    { route: "/datasets" },
  );
}

const zip = () => new File([new Uint8Array([80, 75, 3, 4, 1, 2, 3])], "my shapes.zip", { type: "application/zip" });

beforeEach(() => {
  FakeXhr.last = null;
  vi.stubGlobal("XMLHttpRequest", FakeXhr);
});
afterEach(() => {
  vi.unstubAllGlobals();
});

describe("UploadPanel", () => {
  it("shows the server's error in place, with its code and the entry it names", async () => {
    mockApi({});
    renderPanel();
    await userEvent.upload(screen.getByLabelText("Zip file"), zip());
    expect(screen.getByTestId("chosen-file")).toHaveTextContent("my shapes.zip");
    await userEvent.click(screen.getByRole("button", { name: "Upload and import" }));

    const xhr = FakeXhr.last!;
    expect(xhr.method).toBe("POST");
    expect(xhr.url).toBe("/api/datasets");
    xhr.respond(422, {
      detail: "evil.zip: entry '../evil.json' is a path that climbs out with '..'",
      code: "archive_path_traversal",
      entry: "../evil.json",
    });

    const box = await screen.findByTestId("upload-error");
    expect(box).toHaveAttribute("role", "alert");
    expect(screen.getByTestId("upload-error-code")).toHaveTextContent("archive_path_traversal");
    expect(screen.getByTestId("upload-error-entry")).toHaveTextContent("../evil.json");
    expect(screen.getByTestId("upload-error-message")).toHaveTextContent("climbs out with '..'");
    // The form is usable again.
    expect(screen.getByRole("button", { name: "Upload and import" })).toBeEnabled();
  });

  it("sends the form with the CSRF token, shows upload then import progress, then opens the dataset", async () => {
    document.cookie = "studio_csrf=tok-9; path=/";
    let polls = 0;
    const { requests } = mockApi({
      "GET /api/jobs/7": () => {
        polls += 1;
        const done = polls > 1;
        return jsonResponse(200, {
          id: 7,
          status: done ? "succeeded" : "running",
          progress: done ? 1 : 0.4,
          message: done ? "saving" : "reading annotations",
          error: null,
        });
      },
      "GET /api/datasets": () => jsonResponse(200, []),
    });
    renderPanel();
    await userEvent.upload(screen.getByLabelText("Zip file"), zip());
    await userEvent.selectOptions(screen.getByLabelText("Format"), "labelme");
    await userEvent.click(screen.getByRole("button", { name: "Upload and import" }));

    const xhr = FakeXhr.last!;
    expect(xhr.headers["X-CSRF-Token"]).toBe("tok-9");
    expect(xhr.body?.get("name")).toBe("my shapes"); // from the file name when left empty
    expect(xhr.body?.get("format")).toBe("labelme");
    expect((xhr.body?.get("file") as File).name).toBe("my shapes.zip");
    expect(xhr.body?.get("skip_bad_shapes")).toBeNull(); // one bad shape fails the import, unless asked

    xhr.progress(50, 200);
    const bar = await screen.findByRole("progressbar", { name: "Upload progress" });
    await waitFor(() => expect(bar).toHaveAttribute("aria-valuenow", "25"));
    expect(screen.getByTestId("upload-progress")).toHaveTextContent("Uploading… 25%");

    xhr.respond(201, {
      dataset: { id: 5, name: "my shapes", version: 1, status: "importing" },
      job_id: 7,
    });
    expect(await screen.findByRole("progressbar", { name: "Import progress" })).toBeInTheDocument();
    expect(await screen.findByTestId("landed", {}, { timeout: 4000 })).toHaveTextContent("dataset 5");
    expect(requests.some((r) => new URL(r.url).pathname === "/api/jobs/7")).toBe(true);
  });

  it("asks the server to skip bad shapes when the box is ticked", async () => {
    mockApi({ "GET /api/datasets": () => jsonResponse(200, []) });
    renderPanel();
    await userEvent.upload(screen.getByLabelText("Zip file"), zip());
    await userEvent.click(screen.getByRole("checkbox", { name: "Skip bad shapes" }));
    await userEvent.click(screen.getByRole("button", { name: "Upload and import" }));
    expect(FakeXhr.last!.body?.get("skip_bad_shapes")).toBe("true");
  });

  it("asks for a file before uploading", async () => {
    mockApi({});
    renderPanel();
    const form = screen.getByRole("form", { name: "Upload dataset" });
    form.dispatchEvent(new Event("submit", { bubbles: true, cancelable: true }));
    expect(await screen.findByTestId("error-file")).toHaveTextContent("Choose a zip file");
    expect(FakeXhr.last).toBeNull();
  });

  it("takes a file dropped on the drop zone", async () => {
    mockApi({});
    renderPanel();
    const zone = screen.getByTestId("dropzone");
    const file = zip();
    fireEvent.dragEnter(zone, { dataTransfer: { files: [file], dropEffect: "none" } });
    expect(zone).toHaveClass("dropzone--active");
    fireEvent.drop(zone, { dataTransfer: { files: [file] } });
    expect(zone).not.toHaveClass("dropzone--active");
    expect(screen.getByTestId("chosen-file")).toHaveTextContent("my shapes.zip");
    expect(screen.getByLabelText("Name")).toHaveAttribute("placeholder", "my shapes");
  });
});
