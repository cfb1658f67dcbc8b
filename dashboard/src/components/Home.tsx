/** The overview: projects, the goal form, every goal, and the circuit breakers, kept live. */
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, api } from "../api";
import { Coalescer } from "../coalesce";
import { useEventStream } from "../stream";
import { useToasts } from "../toasts";
import type { Breaker, BlitzEvent, Goal, Project } from "../types";
import { Breakers } from "./Breakers";
import { GoalForm } from "./GoalForm";
import { GoalsTable } from "./GoalsTable";
import { Projects } from "./Projects";
import { StreamBadge } from "./StreamBadge";

type Part = "projects" | "goals" | "breakers";

export function Home() {
  const toasts = useToasts();
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [goals, setGoals] = useState<Goal[] | null>(null);
  const [breakers, setBreakers] = useState<Breaker[]>([]);
  // One re-reader per part: events trigger them, bursts coalesce, answers stay in order.
  const readers = useRef<Record<Part, Coalescer> | null>(null);
  const refresh = useCallback((parts: Part[]) => {
    for (const p of parts) readers.current?.[p].trigger();
  }, []);

  useEffect(() => {
    const load = (part: Part) => async () => {
      try {
        if (part === "projects") setProjects(await api.projects());
        else if (part === "goals") setGoals(await api.goals());
        else setBreakers(await api.breakers());
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 401)) toasts.error(error, `loading ${part}`);
      }
    };
    const made = {
      projects: new Coalescer(load("projects"), 100),
      goals: new Coalescer(load("goals"), 100),
      breakers: new Coalescer(load("breakers"), 100),
    };
    readers.current = made;
    for (const c of Object.values(made)) c.trigger();
    return () => {
      for (const c of Object.values(made)) c.stop();
    };
  }, [toasts]);

  const status = useEventStream({
    onOpen: () => refresh(["projects", "goals", "breakers"]),
    onEvents: (events: BlitzEvent[]) => {
      const parts = new Set<Part>();
      for (const e of events) {
        if (e.kind.startsWith("project.") || e.kind === "budget.exceeded") parts.add("projects");
        if (e.kind.startsWith("breaker.")) parts.add("breakers");
        if (e.goal_id && e.kind !== "agent.message") parts.add("goals");
        if (e.kind === "attempt.finished") parts.add("projects"); // spend
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
        <GoalsTable goals={goals} onChanged={() => refresh(["goals"])} />
      </section>
      <section className="card">
        <h2>Circuit breakers</h2>
        <Breakers breakers={breakers} onChanged={() => refresh(["breakers"])} />
      </section>
    </div>
  );
}
