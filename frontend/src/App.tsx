import type { ReactNode } from "react";
import { Navigate, Route, Routes, useLocation, useSearchParams } from "react-router";
import { safeNext } from "./auth/formErrors";
import { useMe } from "./api/queries";
import { Layout } from "./components/Layout";
import { Loading } from "./components/Loading";
import { DatasetPage } from "./pages/DatasetPage";
import { DatasetsPage } from "./pages/DatasetsPage";
import { HealthPage } from "./pages/HealthPage";
import { ImagePage } from "./pages/ImagePage";
import { ComparePage } from "./pages/ComparePage";
import { JobPage } from "./pages/JobPage";
import { JobsPage } from "./pages/JobsPage";
import { ModelPage } from "./pages/ModelPage";
import { ModelsPage } from "./pages/ModelsPage";
import { TrainPage } from "./pages/TrainPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { SignInPage } from "./pages/SignInPage";
import { SignUpPage } from "./pages/SignUpPage";
import { TokensPage } from "./pages/TokensPage";

/** Renders children only when signed in; otherwise sends the user to sign-in. */
function RequireAuth({ children }: { children: ReactNode }) {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <Loading label="Checking your session…" />;
  if (!me.data) {
    const next = location.pathname + location.search;
    return <Navigate to={next === "/" ? "/signin" : `/signin?next=${encodeURIComponent(next)}`} replace />;
  }
  return <>{children}</>;
}

/** Sign-in/up pages: a signed-in user goes straight to the app. */
function GuestOnly({ children }: { children: ReactNode }) {
  const me = useMe();
  const [params] = useSearchParams();
  if (me.isPending) return <Loading label="Checking your session…" />;
  if (me.data) return <Navigate to={safeNext(params.get("next"))} replace />;
  return <>{children}</>;
}

export function App() {
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route
          index
          element={
            <RequireAuth>
              <Navigate to="/health" replace />
            </RequireAuth>
          }
        />
        <Route path="signin" element={<GuestOnly><SignInPage /></GuestOnly>} />
        <Route path="signup" element={<GuestOnly><SignUpPage /></GuestOnly>} />
        <Route path="health" element={<HealthPage />} />
        <Route path="tokens" element={<RequireAuth><TokensPage /></RequireAuth>} />
        <Route path="datasets" element={<RequireAuth><DatasetsPage /></RequireAuth>} />
        <Route path="datasets/:id" element={<RequireAuth><DatasetPage /></RequireAuth>} />
        <Route path="datasets/:id/images/:imageId" element={<RequireAuth><ImagePage /></RequireAuth>} />
        <Route path="runs/new" element={<RequireAuth><TrainPage /></RequireAuth>} />
        <Route path="jobs" element={<RequireAuth><JobsPage /></RequireAuth>} />
        <Route path="jobs/compare" element={<RequireAuth><ComparePage /></RequireAuth>} />
        <Route path="jobs/:id" element={<RequireAuth><JobPage /></RequireAuth>} />
        <Route path="models" element={<RequireAuth><ModelsPage /></RequireAuth>} />
        <Route path="models/:id" element={<RequireAuth><ModelPage /></RequireAuth>} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}
