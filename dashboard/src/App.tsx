/** The shell: the login gate, the header, the two pages (overview and one goal), and the voice
 * panel, which stays open across pages. */
import { useEffect, useState } from "react";
import { describe, logout, setUnauthorizedHandler, storedToken } from "./api";
import { GoalPage } from "./components/GoalPage";
import { Home } from "./components/Home";
import { Login } from "./components/Login";
import { Voice } from "./components/Voice";
import { navigate, useRoute } from "./router";

export function App() {
  const [authed, setAuthed] = useState(() => storedToken() !== "");
  const [loginError, setLoginError] = useState("");
  const route = useRoute();

  useEffect(() => {
    setUnauthorizedHandler((problem) => {
      sessionStorage.removeItem("blitz.token");
      setLoginError(describe(problem));
      setAuthed(false);
    });
  }, []);

  if (!authed) {
    return (
      <Login
        initialError={loginError}
        onLoggedIn={() => {
          setLoginError("");
          setAuthed(true);
        }}
      />
    );
  }

  const goalMatch = /^\/goals\/([^/]+)\/?$/.exec(route.path);
  return (
    <div className="app">
      <header className="topbar">
        <a
          className="brand"
          href="/"
          onClick={(e) => {
            e.preventDefault();
            navigate("/");
          }}
        >
          <span className="bolt">⚡</span> blitz
        </a>
        <nav>
          <a
            href="/"
            data-testid="nav-home"
            onClick={(e) => {
              e.preventDefault();
              navigate("/");
            }}
          >
            goals &amp; projects
          </a>
        </nav>
        <Voice />
        <button
          className="ghost"
          data-testid="logout"
          onClick={() => {
            void logout();
            setAuthed(false);
          }}
        >
          log out
        </button>
      </header>
      <main>
        {goalMatch ? (
          <GoalPage
            key={goalMatch[1]}
            goalId={decodeURIComponent(goalMatch[1])}
            task={route.params.get("task") ?? ""}
            attempt={route.params.get("attempt") ?? ""}
          />
        ) : (
          <Home />
        )}
      </main>
    </div>
  );
}
