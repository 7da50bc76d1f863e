import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "./client";
import { ApiError, toApiError, unwrap } from "./errors";
import type { ApiToken, AuthResult, Credentials, CreatedToken, Health, User } from "./types";

export const queryKeys = {
  me: ["auth", "me"] as const,
  health: ["health"] as const,
  tokens: ["tokens"] as const,
};

export const HEALTH_REFRESH_MS = 5000;

/** Current user, or `null` when signed out (401). */
export async function fetchMe(): Promise<User | null> {
  const result = await api.GET("/api/auth/me");
  if (result.response.status === 401) return null;
  return unwrap(result);
}

export function useMe() {
  return useQuery({
    queryKey: queryKeys.me,
    queryFn: fetchMe,
    staleTime: 60_000,
  });
}

/** Health; a 503 carries the same body (database down), so it is data, not an error. */
export async function fetchHealth(): Promise<Health> {
  const result = await api.GET("/api/health");
  const body: unknown = result.data ?? result.error;
  if (result.response.status === 503 && body && typeof body === "object" && "status" in body) {
    return body as Health;
  }
  return unwrap(result);
}

export function useHealth() {
  return useQuery({
    queryKey: queryKeys.health,
    queryFn: fetchHealth,
    refetchInterval: HEALTH_REFRESH_MS,
    refetchIntervalInBackground: false,
  });
}

function useAuthMutation(run: (body: Credentials) => Promise<AuthResult>) {
  const qc = useQueryClient();
  return useMutation<AuthResult, ApiError | Error, Credentials>({
    mutationFn: run,
    onSuccess: (result) => {
      qc.removeQueries({ queryKey: queryKeys.tokens });
      qc.setQueryData(queryKeys.me, result.user);
    },
  });
}

export function useLogin() {
  return useAuthMutation(async (body) => unwrap(await api.POST("/api/auth/login", { body })));
}

export function useRegister() {
  return useAuthMutation(async (body) => unwrap(await api.POST("/api/auth/register", { body })));
}

export function useLogout() {
  const qc = useQueryClient();
  return useMutation<void, ApiError | Error>({
    mutationFn: async () => {
      const result = await api.POST("/api/auth/logout");
      // Already signed out counts as success.
      if (!result.response.ok && result.response.status !== 401) {
        throw toApiError(result.response.status, result.error);
      }
    },
    onSuccess: () => {
      qc.removeQueries({ queryKey: queryKeys.tokens });
      qc.setQueryData(queryKeys.me, null);
    },
  });
}

export function useTokens(enabled = true) {
  return useQuery({
    queryKey: queryKeys.tokens,
    queryFn: async (): Promise<ApiToken[]> => unwrap(await api.GET("/api/tokens")),
    enabled,
  });
}

export function useCreateToken() {
  const qc = useQueryClient();
  return useMutation<CreatedToken, ApiError | Error, string>({
    mutationFn: async (name) => unwrap(await api.POST("/api/tokens", { body: { name } })),
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.tokens }),
  });
}

export function useRevokeToken() {
  const qc = useQueryClient();
  return useMutation<void, ApiError | Error, number>({
    mutationFn: async (id) => {
      unwrap(await api.DELETE("/api/tokens/{token_id}", { params: { path: { token_id: id } } }));
    },
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.tokens }),
  });
}
