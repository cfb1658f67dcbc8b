/** Banners for API errors and confirmations, shown at the top right until dismissed. */
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
      error: (error, context) => {
        let title = context ?? "error";
        let detail = error instanceof Error ? error.message : String(error);
        if (error instanceof ApiError) {
          const p = error.problem;
          title = context ? `${context}: ${p.title}` : p.title;
          detail = p.detail ?? "";
          if (p.errors?.length) {
            detail += (detail ? " — " : "") + p.errors.map((e) => `${e.field}: ${e.message}`).join("; ");
          }
          if (p.status) title += ` (${p.status})`;
        }
        push({ kind: "error", title, detail }, 0);
      },
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
