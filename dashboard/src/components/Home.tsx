/** The overview: projects, the goal form, the goals found by the search in the address, and the
 * circuit breakers, kept live. */
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, api } from "../api";
import { Coalescer } from "../coalesce";
import { formProblem } from "../formProblem";
import { fetchGoals, pageCount, queryFromParams, queryToSearch } from "../goalQuery";
import type { GoalPage, GoalQuery } from "../goalQuery";
import "../home.css";
import { navigate, useRoute } from "../router";
import { useEventStream } from "../stream";
import { useToasts } from "../toasts";
import type { Breaker, BlitzEvent, Project, Workers as WorkersAnswer } from "../types";
import { Breakers } from "./Breakers";
import { GoalForm } from "./GoalForm";
import { GoalsTable } from "./GoalsTable";
import { Projects } from "./Projects";
import { StreamBadge } from "./StreamBadge";
import { Workers } from "./Workers";

type Part = "projects" | "goals" | "breakers" | "workers";

/** Milliseconds between looks at the workers (a node's heartbeat is not an event). */
const WORKERS_EVERY = 10_000;

export function Home() {
  const toasts = useToasts();
  const route = useRoute();
  const search = route.params.toString();
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [goals, setGoals] = useState<GoalPage | null>(null);
  const [goalsError, setGoalsError] = useState("");
  const [breakers, setBreakers] = useState<Breaker[]>([]);
  const [workers, setWorkers] = useState<WorkersAnswer | null>(null);
  // The search lives in the address; the reader of the goals reads it when it runs.
  const query = queryFromParams(new URLSearchParams(search));
  const asked = useRef(query);
  asked.current = query;
  // One re-reader per part: events trigger them, bursts coalesce, answers stay in order.
  const readers = useRef<Record<Part, Coalescer> | null>(null);
  const refresh = useCallback((parts: Part[]) => {
    for (const p of parts) readers.current?.[p].trigger();
  }, []);

  useEffect(() => {
    const readGoals = async () => {
      const wanted = asked.current;
      try {
        const found = await fetchGoals(wanted);
        setGoals(found);
        setGoalsError("");
        if (found.goals.length === 0 && found.total > 0 && wanted.page > 1) {
          // Past the last page (goals went away, or an old link): show the last one.
          showQuery({ ...wanted, page: pageCount(found.total) });
        }
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 401)) setGoalsError(formProblem(error, []).message);
      }
    };
    const load = (part: Part) => async () => {
      if (part === "goals") return readGoals();
      try {
        if (part === "projects") setProjects(await api.projects());
        else if (part === "workers") setWorkers(await api.workers());
        else setBreakers(await api.breakers());
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 401)) toasts.error(error, `loading ${part}`);
      }
    };
    const made = {
      projects: new Coalescer(load("projects"), 100),
      goals: new Coalescer(load("goals"), 100),
      breakers: new Coalescer(load("breakers"), 100),
      workers: new Coalescer(load("workers"), 100),
    };
    readers.current = made;
    for (const c of Object.values(made)) c.trigger();
    const ticking = window.setInterval(() => made.workers.trigger(), WORKERS_EVERY);
    return () => {
      window.clearInterval(ticking);
      for (const c of Object.values(made)) c.stop();
    };
  }, [toasts]);

  // A new search reads the goals again (typing coalesces into one read after the last key).
  useEffect(() => {
    refresh(["goals"]);
  }, [search, refresh]);

  const status = useEventStream({
    onOpen: () => refresh(["projects", "goals", "breakers", "workers"]),
    onEvents: (events: BlitzEvent[]) => {
      const parts = new Set<Part>();
      for (const e of events) {
        if (e.kind.startsWith("project.") || e.kind === "budget.exceeded") parts.add("projects");
        if (e.kind.startsWith("breaker.")) parts.add("breakers");
        if (e.goal_id && e.kind !== "agent.message") parts.add("goals");
        if (e.kind === "attempt.finished") parts.add("projects"); // spend
        if (e.kind === "attempt.placed" || e.kind === "attempt.finished") parts.add("workers");
      }
      refresh([...parts]);
    },
  });

  return (
    <div className="home">
      <div className="home-head">
        <h1>Overview</h1>
        <StreamBadge status={status} />
      </div>
      <div className="home-grid">
        <section className="card" data-testid="projects-panel">
          <h2>Projects</h2>
          <Projects projects={projects} onChanged={() => refresh(["projects"])} />
        </section>
        <section className="card">
          <h2>New goal</h2>
          <GoalForm projects={projects ?? []} onSubmitted={() => refresh(["goals"])} />
        </section>
      </div>
      <section className="card" data-testid="goals-panel">
        <h2>Goals</h2>
        <GoalsTable
          page={goals}
          query={query}
          onQuery={showQuery}
          projects={projects ?? []}
          error={goalsError}
          onChanged={() => refresh(["goals"])}
        />
      </section>
      <section className="card">
        <h2>Circuit breakers</h2>
        <Breakers breakers={breakers} onChanged={() => refresh(["breakers"])} />
      </section>
      <section className="card" data-testid="workers-panel">
        <h2>Workers</h2>
        <Workers answer={workers} />
      </section>
    </div>
  );
}

/** Puts `query` in the overview's address (replacing it: a search is not a page to go back to). */
function showQuery(query: GoalQuery): void {
  navigate(`/${queryToSearch(query)}`, true);
}
