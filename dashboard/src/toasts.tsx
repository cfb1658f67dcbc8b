/** Banners for confirmations, and for API errors that have no form or row of their own to be
 * shown in (a failed background read, an action of the goal page): at the top right, each said
 * once. Errors of a form are shown next to what caused them (formProblem.ts), not here. */
import { createContext, useCallback, useContext, useMemo, useRef, useState } from "react";
import type { ReactNode } from "react";
import { ApiError } from "./api";

export interface Toast {
  id: number;
  kind: "error" | "info";
  title: string;
  detail: string;
}

interface Toaster {
  error: (error: unknown, context?: string) => void;
  info: (title: string, detail?: string) => void;
}

/** An error toast's words: what failed (and the HTTP status), then what the daemon said, once. */
export function errorText(error: unknown, context?: string): { title: string; detail: string } {
  if (!(error instanceof ApiError)) {
    return { title: context ?? "error", detail: error instanceof Error ? error.message : String(error) };
  }
  // The detail already says what the field errors say (the daemon joins them into it): one of
  // the two, never both; and no detail that only repeats the title.
  const p = error.problem;
  let title = context ? `${context}: ${p.title}` : p.title;
  let detail = p.detail || (p.errors ?? []).map((e) => `${e.field}: ${e.message}`).join("; ");
  if (detail === p.title) detail = "";
  if (p.status) title += ` (${p.status})`;
  return { title, detail };
}

const ToastContext = createContext<Toaster>({ error: () => {}, info: () => {} });

export function useToasts(): Toaster {
  return useContext(ToastContext);
}

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);

  const dismiss = useCallback((id: number) => {
    setToasts((list) => list.filter((t) => t.id !== id));
  }, []);

  const push = useCallback(
    (toast: Omit<Toast, "id">, lifetime: number) => {
      const id = next.current++;
      setToasts((list) => [...list.slice(-4), { ...toast, id }]);
      if (lifetime > 0) setTimeout(() => dismiss(id), lifetime);
    },
    [dismiss],
  );

  const toaster = useMemo<Toaster>(
    () => ({
      error: (error, context) => push({ kind: "error", ...errorText(error, context) }, 0),
      info: (title, detail = "") => push({ kind: "info", title, detail }, 4000),
    }),
    [push],
  );

  return (
    <ToastContext.Provider value={toaster}>
      {children}
      <div className="toasts" aria-live="polite">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.kind}`} data-testid={`toast-${t.kind}`} role="alert">
            <div className="toast-body">
              <strong>{t.title}</strong>
              {t.detail && <div className="toast-detail">{t.detail}</div>}
            </div>
            <button className="link" aria-label="dismiss" onClick={() => dismiss(t.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}
