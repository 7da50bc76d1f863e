import { NavLink, Outlet, useNavigate } from "react-router";
import { useLogout, useMe } from "../api/queries";
import { errorMessage } from "../api/errors";

export function Layout() {
  const me = useMe();
  const logout = useLogout();
  const navigate = useNavigate();
  const user = me.data;

  const signOut = () => {
    logout.mutate(undefined, { onSuccess: () => navigate("/signin", { replace: true }) });
  };

  return (
    <div className="app">
      <header className="app-header">
        <div className="app-header__inner">
          <NavLink to="/" className="brand" aria-label="Studio home">
            <span className="brand__mark" aria-hidden="true">◆</span>
            Studio
          </NavLink>
          <nav aria-label="Main" className="main-nav">
            <NavLink to="/health">Health</NavLink>
            {user ? <NavLink to="/datasets">Datasets</NavLink> : null}
            {user ? <NavLink to="/runs/new">Train</NavLink> : null}
            {user ? <NavLink to="/jobs">Jobs</NavLink> : null}
            {user ? <NavLink to="/models">Models</NavLink> : null}
            {user ? <NavLink to="/tokens">Tokens</NavLink> : null}
          </nav>
          <div className="session" data-testid="session">
            {user ? (
              <>
                <span className="session__email" data-testid="user-email" title={user.email}>
                  {user.email}
                </span>
                <button type="button" className="button button--ghost" onClick={signOut} disabled={logout.isPending}>
                  Sign out
                </button>
              </>
            ) : me.isPending ? null : (
              <>
                <NavLink to="/signin">Sign in</NavLink>
                <NavLink to="/signup" className="button button--small">
                  Sign up
                </NavLink>
              </>
            )}
          </div>
        </div>
      </header>
      {logout.isError ? (
        <div className="banner banner--error" role="alert">
          Could not sign out: {errorMessage(logout.error)}
        </div>
      ) : null}
      <main className="app-main">
        <Outlet />
      </main>
    </div>
  );
}
