import type { components, paths } from "./schema";

type JsonOf<R> = R extends { content: { "application/json": infer T } } ? T : never;

export type User = JsonOf<paths["/api/auth/me"]["get"]["responses"][200]>;
export type AuthResult = JsonOf<paths["/api/auth/login"]["post"]["responses"][200]>;
export type Credentials = NonNullable<paths["/api/auth/login"]["post"]["requestBody"]>["content"]["application/json"];
export type Health = JsonOf<paths["/api/health"]["get"]["responses"][200]>;
export type LaneHealth = Health["lanes"][string];
export type WorkerInfo = LaneHealth["workers"][number];
export type ApiToken = JsonOf<paths["/api/tokens"]["get"]["responses"][200]>[number];
export type CreatedToken = JsonOf<paths["/api/tokens"]["post"]["responses"][201]>;

type Schemas = components["schemas"];

export type Dataset = Schemas["DatasetOut"];
export type DatasetDetail = Schemas["DatasetDetail"];
export type ImportStarted = Schemas["ImportStarted"];
/** Reports written before shapes could be skipped have no `skipped`: read it as false. */
export type Finding = Omit<Schemas["Finding"], "skipped"> & { skipped?: boolean };
export type ImagePage = Schemas["ImagePage"];
export type ImageNeighbours = Schemas["ImageNeighbours"];
export type ExportReady = Schemas["ExportReady"];
export type ImageSummary = Schemas["ImageSummary"];
export type ImageDetail = Schemas["ImageDetail"];
export type Annotation = Schemas["Annotation"];
export type Job = Schemas["JobOut"];
export type JobStatus = Schemas["JobStatus"];
export type QueuePosition = Schemas["QueuePosition"];
export type Split = ImageSummary["split"];
/** A task the studio trains, as `GET /api/tasks` describes it. */
export type TaskInfo = Schemas["TaskOut"];
export type UploadFormat = NonNullable<
  NonNullable<paths["/api/datasets"]["post"]["requestBody"]>["content"]["multipart/form-data"]["format"]
>;
