/** A tiny history-API router: the daemon answers index.html for every client route. */
import { useEffect, useState } from "react";

export interface Route {
  path: string;
  params: URLSearchParams;
}

function current(): Route {
  return { path: window.location.pathname, params: new URLSearchParams(window.location.search) };
}

export function navigate(to: string, replace = false): void {
  if (replace) window.history.replaceState(null, "", to);
  else window.history.pushState(null, "", to);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const update = () => setRoute(current());
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return route;
}

export function goalPath(goal: string, task?: string, attempt?: string): string {
  const params = new URLSearchParams();
  if (task) params.set("task", task);
  if (attempt) params.set("attempt", attempt);
  const query = params.toString();
  return `/goals/${encodeURIComponent(goal)}${query ? `?${query}` : ""}`;
}
