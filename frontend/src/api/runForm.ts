/**
 * What the run form asks the studio beyond the schema and validation: the catalog for one dataset (with
 * each entry's defaults on this machine and the recommended entry), the presets, and the time estimate.
 */
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { api } from "./client";
import { unwrap } from "./errors";
import type { RunConfig } from "./training";
import type { components } from "./schema";
import type { TaskInfo } from "./types";

type Schemas = components["schemas"];

/** A task as `GET /api/tasks` describes it, with the dotted paths its run form shows first. */
export type RunFormTask = TaskInfo;
export type Machine = Schemas["MachineOut"];
/** A catalog entry with what a run of it gets on this machine unless the config says otherwise. */
export type RunCatalogItem = Schemas["CatalogItem"];
export type RunCatalog = Schemas["CatalogOut"];
export type Preset = Schemas["Preset"];
export type Estimate = Schemas["Estimate"];

export const runFormKeys = {
  catalog: (task: string, datasetId: number) => ["catalog", task, datasetId] as const,
  presets: (task: string, datasetId: number, architecture: string) => ["configs", "presets", task, datasetId, architecture] as const,
};

/** `GET /api/catalog?task=&dataset_id=`: entries with their defaults here, and the one recommended. */
export function useRunCatalog(task: string | null, datasetId: number | null) {
  return useQuery({
    queryKey: runFormKeys.catalog(task ?? "", datasetId ?? 0),
    queryFn: async ({ signal }): Promise<RunCatalog> =>
      unwrap(await api.GET("/api/catalog", { params: { query: { task: task as Schemas["Task"] } }, signal })),
    enabled: !!task && datasetId != null,
    // Another dataset of the same task: the cards stay while its catalog is asked for.
    placeholderData: (previous, query) => (query?.queryKey[1] === task ? keepPreviousData(previous) : undefined),
    // Parameter and FLOP counts are filled in by a worker job: ask again until they are there.
    refetchInterval: (query) => (query.state.data?.stats_pending ? 3000 : false),
  });
}

/** `GET /api/configs/presets`: "Quick look", "Balanced" and "Best" for this model and dataset. */
export function usePresets(task: string | null, datasetId: number | null, architecture: string | null) {
  return useQuery({
    queryKey: runFormKeys.presets(task ?? "", datasetId ?? 0, architecture ?? ""),
    queryFn: async ({ signal }): Promise<Preset[]> => {
      const query = { task: task!, dataset_id: datasetId!, architecture: architecture! };
      return unwrap(await api.GET("/api/configs/presets", { params: { query }, signal })).presets;
    },
    enabled: !!task && datasetId != null && !!architecture,
    staleTime: 60_000,
    retry: false,
  });
}

export const ESTIMATE_WAIT_S = 15;

/** `POST /api/configs/estimate?wait=15`: the measured time of a run of `config` (a 422 is thrown as an
 * ApiError naming the fields). */
export async function fetchEstimate(config: RunConfig, signal?: AbortSignal): Promise<Estimate> {
  return unwrap(
    await api.POST("/api/configs/estimate", { params: { query: { wait: ESTIMATE_WAIT_S } }, body: { config }, signal }),
  );
}
