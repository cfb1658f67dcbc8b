/** The token form. The token is checked with POST /api/login and kept in sessionStorage. */
import { useState } from "react";
import { ApiError, describe, login } from "../api";

export function Login({ initialError, onLoggedIn }: { initialError: string; onLoggedIn: () => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(initialError);
  const [busy, setBusy] = useState(false);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await login(token.trim());
      onLoggedIn();
    } catch (err) {
      setError(err instanceof ApiError ? describe(err.problem) : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="login-page">
      <form className="card login" onSubmit={submit} data-testid="login-form">
        <h1>
          <span className="bolt">⚡</span> blitz
        </h1>
        <p className="muted">
          Paste the token <code>blitz serve</code> printed when it first started (or make a new one
          with <code>blitz token</code>).
        </p>
        <label>
          token
          <input
            type="password"
            autoFocus
            autoComplete="current-password"
            value={token}
            onChange={(e) => setToken(e.target.value)}
            data-testid="login-token"
          />
        </label>
        {error && (
          <div className="error-banner" role="alert" data-testid="login-error">
            {error}
          </div>
        )}
        <button type="submit" disabled={busy || !token.trim()} data-testid="login-submit">
          {busy ? "checking…" : "log in"}
        </button>
      </form>
    </div>
  );
}
