import { useQuery } from "@tanstack/react-query";
import { api } from "./client";
import { unwrap } from "./errors";
import type { TaskInfo } from "./types";

export type { TaskInfo } from "./types";

export const taskKeys = {
  all: ["tasks"] as const,
};

/** What a page shows for a task's words while the registry is still being asked for. */
export const TASKS_LOADING = "loading…";

/** `GET /api/tasks`: every task the studio trains, in the registry's order. */
export async function fetchTasks(): Promise<TaskInfo[]> {
  return unwrap(await api.GET("/api/tasks"));
}

/** The task registry: it changes only with the backend, so it is asked for once a session. */
export function useTasks() {
  return useQuery({
    queryKey: taskKeys.all,
    queryFn: fetchTasks,
    staleTime: Infinity,
    gcTime: Infinity,
  });
}

export interface TaskRegistry {
  /** The tasks, in the registry's order (empty until it has answered). */
  tasks: TaskInfo[];
  /** Still being asked for. */
  loading: boolean;
  /** It could not be fetched: pages show tasks by their raw names. */
  failed: boolean;
  /** The task named `name`, once the registry has answered and lists it. */
  get(name: string): TaskInfo | undefined;
  /** The task in words: its title; "loading…" while asked for; its raw name if the registry failed. */
  title(name: string): string;
}

/** "text_detection" → "Text detection": a name the registry does not list (e.g. a dataset's), in words. */
function inWords(name: string): string {
  const words = name.replace(/_/g, " ").trim();
  return words ? words[0]!.toUpperCase() + words.slice(1) : name;
}

export function taskRegistry(tasks: TaskInfo[] | undefined, state: { loading: boolean; failed: boolean }): TaskRegistry {
  const list = tasks ?? [];
  const byName = new Map(list.map((t) => [t.name, t]));
  return {
    tasks: list,
    loading: state.loading,
    failed: state.failed,
    get: (name) => byName.get(name),
    title: (name) => {
      const task = byName.get(name);
      if (task) return task.title;
      if (state.loading) return TASKS_LOADING;
      if (state.failed || !tasks) return name;
      return inWords(name);
    },
  };
}

export function useTaskRegistry(): TaskRegistry {
  const query = useTasks();
  return taskRegistry(query.data, { loading: query.isPending, failed: query.isError });
}
