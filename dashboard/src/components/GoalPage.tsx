/**
 * One goal, live: its header and actions, the plan awaiting approval, the task graph beside the
 * chosen task's panel (full height, resizable), the timeline of attempts, the goal's whole
 * change, its pull request, breakers, cost over time, recoveries and the event log. Everything is re-read
 * from the API when the goal's event stream says it changed; nothing polls.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, api } from "../api";
import { Coalescer } from "../coalesce";
import { age, clock, money } from "../format";
import { goalPath, navigate } from "../router";
import { useEventStream } from "../stream";
import { useToasts } from "../toasts";
import { taskTimes } from "../timeline";
import { GOAL_DONE, publishPending } from "../types";
import { waitingTasks, workerWaitingTasks } from "../waiting";
import type { AttemptSummary, BlitzEvent, Breaker, GoalDetail, TaskDetail } from "../types";
import { Breakers } from "./Breakers";
import { CostChart } from "./CostChart";
import { Dag } from "./Dag";
import type { DagCandidate } from "./Dag";
import { GoalActions } from "./GoalActions";
import { GoalChanges } from "./GoalChanges";
import { useNow } from "./GoalsTable";
import { PlanReview } from "./PlanReview";
import { Progress } from "./Progress";
import { PullRequest } from "./PullRequest";
import { Split } from "./Split";
import { StreamBadge } from "./StreamBadge";
import { TaskPanel } from "./TaskPanel";
import { Timeline } from "./Timeline";

const MAX_EVENTS = 20000;

interface Props {
  goalId: string;
  task: string;
  attempt: string;
}

export function GoalPage({ goalId, task: selectedTask, attempt: selectedAttempt }: Props) {
  const toasts = useToasts();
  const [goal, setGoal] = useState<GoalDetail | null>(null);
  const [missing, setMissing] = useState("");
  const [events, setEvents] = useState<BlitzEvent[]>([]);
  const [details, setDetails] = useState<Record<string, TaskDetail>>({});
  const [breakers, setBreakers] = useState<Breaker[]>([]);
  const [wide, setWide] = useState(false);
  // Each second while the goal runs (durations of running tasks), rarely once it has ended.
  const now = useNow(goal && GOAL_DONE.has(goal.state) ? 30_000 : 1000);

  const goalRef = useRef<GoalDetail | null>(null);
  goalRef.current = goal;
  const selectedRef = useRef(selectedTask);
  selectedRef.current = selectedTask;

  // -- readers, triggered by events ---------------------------------------------------------
  const goalReader = useRef<Coalescer | null>(null);
  const breakerReader = useRef<Coalescer | null>(null);
  const taskReaders = useRef(new Map<string, Coalescer>());

  const report = useCallback(
    (error: unknown, what: string) => {
      if (!(error instanceof ApiError && error.status === 401)) toasts.error(error, what);
    },
    [toasts],
  );

  const readTask = useCallback(
    (task: string) => {
      let reader = taskReaders.current.get(task);
      if (!reader) {
        reader = new Coalescer(async () => {
          try {
            const detail = await api.task(goalId, task);
            setDetails((all) => ({ ...all, [task]: detail }));
          } catch (error) {
            if (error instanceof ApiError && error.status === 404) return; // replaced plan
            report(error, `loading task ${task}`);
          }
        }, 80);
        taskReaders.current.set(task, reader);
      }
      reader.trigger();
    },
    [goalId, report],
  );

  useEffect(() => {
    const readers = taskReaders.current;
    goalReader.current = new Coalescer(async () => {
      try {
        setGoal(await api.goal(goalId));
        setMissing("");
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) setMissing(error.message);
        else report(error, "loading the goal");
      }
    }, 80);
    breakerReader.current = new Coalescer(async () => {
      try {
        setBreakers(await api.breakers());
      } catch (error) {
        report(error, "loading the breakers");
      }
    }, 200);
    goalReader.current.trigger();
    breakerReader.current.trigger();
    return () => {
      goalReader.current?.stop();
      breakerReader.current?.stop();
      for (const r of readers.values()) r.stop();
      readers.clear();
    };
  }, [goalId, report]);

  /** Tasks whose detail the page shows: the open one, the whole plan while it awaits approval,
   * and tasks with several attempts (their candidates are drawn in the graph). */
  const wanted = useCallback((g: GoalDetail | null, open: string): string[] => {
    if (!g) return open ? [open] : [];
    const ids = new Set<string>();
    if (open) ids.add(open);
    const explore = g.explore > 1;
    for (const t of g.tasks) {
      if (g.state === "awaiting_approval") ids.add(t.id);
      else if (!g.attempts && (explore || t.attempts > 1) && t.attempts > 0) ids.add(t.id);
    }
    return [...ids];
  }, []);

  // Load details the page needs but does not have yet (a new selection, a new task).
  useEffect(() => {
    for (const id of wanted(goal, selectedTask)) if (!details[id]) readTask(id);
  }, [goal, selectedTask, details, wanted, readTask]);

  const status = useEventStream({
    goal: goalId,
    onOpen: () => {
      goalReader.current?.trigger();
      breakerReader.current?.trigger();
    },
    onEvents: (batch) => {
      setEvents((list) => {
        const seen = list.length ? list[list.length - 1].id : 0;
        const fresh = batch.filter((e) => e.id > seen);
        if (!fresh.length) return list;
        const next = list.concat(fresh);
        return next.length > MAX_EVENTS ? next.slice(next.length - MAX_EVENTS) : next;
      });
      const touched = new Set<string>();
      let goalChanged = false;
      for (const e of batch) {
        if (e.kind === "agent.message") continue; // shown from the stream itself
        goalChanged = true;
        if (e.task_id) touched.add(e.task_id);
        if (e.kind.startsWith("breaker.")) breakerReader.current?.trigger();
        if (e.kind === "task.injected" || e.kind === "plan.created") {
          for (const id of Object.keys(details)) touched.add(id);
        }
      }
      if (goalChanged) goalReader.current?.trigger();
      const want = new Set(wanted(goalRef.current, selectedRef.current));
      for (const id of touched) if (want.has(id)) readTask(id);
    },
  });

  // -- derived ------------------------------------------------------------------------------
  const candidates = useMemo<DagCandidate[]>(() => {
    if (!goal) return [];
    const attempts: AttemptSummary[] = goal.attempts ?? Object.values(details).flatMap((d) => d.attempts_list);
    return attempts
      .filter((a) => a.candidate > 0)
      .map((a) => ({ id: a.id, task: a.task_id, candidate: a.candidate, state: a.state, selected: a.selected }));
  }, [goal, details]);

  /** Tasks parked until their model provider takes calls again (from `task.waiting`). */
  const waits = useMemo(
    () => waitingTasks(events, now / 1000, new Map((goal?.tasks ?? []).map((t) => [t.id, t.state]))),
    [events, now, goal],
  );
  const [publishing, setPublishing] = useState(false);
  const allAttempts = useMemo(
    () => goal?.attempts ?? Object.values(details).flatMap((d) => d.attempts_list),
    [goal, details],
  );
  /** Tasks whose running attempt waits for a worker node (from `attempt.waiting`). */
  const workerWaits = useMemo(
    () => workerWaitingTasks(events, new Set(allAttempts.filter((a) => a.state === "running").map((a) => a.id))),
    [events, allAttempts],
  );
  const finishedAt = goal && GOAL_DONE.has(goal.state) && goal.finished_at ? goal.finished_at : 0;
  // The clock matters to durations only while an attempt runs: otherwise the nodes stay as they are.
  const running = allAttempts.some((a) => a.started_at > 0 && !(a.finished_at > 0));
  const clockForTimes = running ? finishedAt || now / 1000 : 0;
  const times = useMemo(() => taskTimes(allAttempts, clockForTimes), [allAttempts, clockForTimes]);

  const select = useCallback(
    (task: string, attempt?: string) => {
      navigate(goalPath(goalId, task, attempt), true);
    },
    [goalId],
  );

  if (missing) {
    return (
      <div className="card error-page" data-testid="goal-missing">
        <h2>Goal not found</h2>
        <p>{missing}</p>
        <button onClick={() => navigate("/")}>back to the overview</button>
      </div>
    );
  }
  if (!goal) return <p className="muted">loading the goal…</p>;

  const done = GOAL_DONE.has(goal.state);
  const detail = selectedTask ? details[selectedTask] ?? null : null;

  const cancel = async (reason: string) => {
    try {
      const action = await api.cancel(goal.id, reason);
      toasts.info("cancel requested", action.applied === "queued" ? "queued for the process that runs the goal" : "");
      goalReader.current?.trigger();
    } catch (error) {
      toasts.error(error, "cancel");
    }
  };

  const publish = async () => {
    setPublishing(true);
    try {
      await api.publish(goal.id);
      toasts.info("publishing again", "the branch is pushed and its pull request opened once more");
      goalReader.current?.trigger();
    } catch (error) {
      toasts.error(error, "publish again");
    } finally {
      setPublishing(false);
    }
  };
  const tries = (n: number) => `${n} ${n === 1 ? "try" : "tries"}`;

  return (
    <div className="goal-page" data-testid="goal-page" data-goal={goal.id}>
      <section className="card goal-head">
        <div className="goal-title-row">
          <div>
            <div className="muted small">
              <a
                href="/"
                onClick={(e) => {
                  e.preventDefault();
                  navigate("/");
                }}
              >
                overview
              </a>{" "}
              / {goal.project} / <span className="mono">{goal.id}</span>
            </div>
            <h1 data-testid="goal-title">{goal.title}</h1>
          </div>
          <div className="goal-actions">
            <StreamBadge status={status} />
            <span className={`badge big state-${goal.state}`} data-testid="goal-state" data-state={goal.state}>
              {goal.state.replace("_", " ")}
            </span>
            {!done && (
              <button
                className="danger"
                data-testid="goal-cancel"
                onClick={() => {
                  if (window.confirm("Cancel this goal? Running attempts are stopped.")) void cancel("cancelled from the dashboard");
                }}
              >
                cancel goal
              </button>
            )}
            {done && <GoalActions goal={goal} publish={false} onChanged={() => goalReader.current?.trigger()} />}
          </div>
        </div>
        <div className="facts">
          <Progress done={goal.progress.done} total={goal.progress.total} byState={goal.progress.by_state} />
          <span>
            cost <strong data-testid="goal-cost">{money(goal.usage.cost_usd)}</strong>
          </span>
          <span>backend {goal.backend}</span>
          {goal.explore > 1 && <span>best of {goal.explore}</span>}
          <span className="mono small">{goal.branch}</span>
          {goal.follows && (
            <span data-testid="goal-follows">
              follows{" "}
              <a
                href={goalPath(goal.follows)}
                onClick={(e) => {
                  e.preventDefault();
                  navigate(goalPath(goal.follows));
                }}
              >
                {goal.follows}
              </a>
            </span>
          )}
          <span className="muted">
            started {age(now / 1000 - goal.created_at)} ago
            {goal.finished_at > 0 && `, finished at ${clock(goal.finished_at)}`}
          </span>
          {goal.pr_url && (
            <span data-testid="goal-pr">
              {/^https?:\/\//.test(goal.pr_url) ? (
                <>
                  PR:{" "}
                  <a href={goal.pr_url} target="_blank" rel="noreferrer">
                    {goal.pr_url}
                  </a>
                </>
              ) : (
                <a
                  href="#pull-request"
                  onClick={(e) => {
                    e.preventDefault();
                    document.getElementById("pull-request")?.scrollIntoView({ block: "start" });
                  }}
                >
                  pull request description
                </a>
              )}
            </span>
          )}
        </div>
        {goal.error && (
          <div className="note note-bad" data-testid="goal-error">
            {goal.error}
          </div>
        )}
        {publishPending(goal) && (
          <div
            className="note note-warn"
            data-testid="goal-publish-pending"
            data-attempts={goal.publish_attempts}
          >
            <div>
              <strong>publishing pending</strong> after {tries(goal.publish_attempts)}: {goal.publish_error || "(no reason given)"}
            </div>
            <div className="muted small">
              Every task succeeded; the branch still has to be pushed and its pull request opened.
            </div>
            <button className="small" disabled={publishing} onClick={() => void publish()} data-testid="goal-publish">
              {publishing ? "publishing…" : "Publish again"}
            </button>
          </div>
        )}
        {goal.state === "finishing" && goal.publish_state === "pending" && goal.publish_attempts > 0 && (
          <div className="note note-warn" data-testid="goal-publish-retrying">
            publishing failed ({tries(goal.publish_attempts)}), trying again: {goal.publish_error}
          </div>
        )}
        {goal.summary && <p className="summary">{goal.summary}</p>}
      </section>

      {goal.state === "awaiting_approval" && (
        <PlanReview
          goal={goal}
          details={details}
          approve={(plan) => api.approve(goal.id, plan)}
          reject={(reason) => api.reject(goal.id, reason)}
          onDone={() => goalReader.current?.trigger()}
        />
      )}

      <Split
        wide={wide && Boolean(selectedTask)}
        graph={
          <section className="card dag-card">
            <div className="card-head">
              <h2>Tasks</h2>
              <span className="muted small">click a task for its attempts, transcript and diff</span>
            </div>
            {goal.tasks.length === 0 ? (
              <p className="muted" data-testid="no-tasks">
                {goal.state === "planning" ? "Planning…" : "No tasks."}
              </p>
            ) : (
              <Dag
                tasks={goal.tasks}
                candidates={candidates}
                selectedTask={selectedTask}
                selectedAttempt={selectedAttempt}
                onSelect={select}
                waits={waits}
                workerWaits={workerWaits}
                times={times}
                frame={selectedTask ? "panel" : "full"}
              />
            )}
          </section>
        }
        panel={
          selectedTask ? (
            <TaskPanel
              goalId={goal.id}
              goalDone={done}
              detail={detail}
              attemptId={selectedAttempt}
              events={events}
              wait={waits.get(selectedTask)}
              wide={wide}
              onWide={setWide}
              onSelectAttempt={(a) => select(selectedTask, a)}
              onClose={() => {
                setWide(false);
                navigate(goalPath(goal.id), true);
              }}
            />
          ) : null
        }
      />

      <section className="card timeline-card">
        <div className="card-head">
          <h2>Timeline</h2>
          <span className="muted small">each attempt from its start to its end; click one to open it</span>
        </div>
        <Timeline
          tasks={goal.tasks}
          attempts={allAttempts}
          start={goal.created_at}
          end={finishedAt || now / 1000}
          selectedTask={selectedTask}
          selectedAttempt={selectedAttempt}
          onSelect={select}
        />
      </section>

      <section className="card" data-testid="changes-card">
        <h2>Changes</h2>
        <GoalChanges goalId={goal.id} version={goal.tasks.map((t) => t.commit).join(",")} onError={report} />
      </section>

      <section className="card" id="pull-request" data-testid="pull-request-card">
        <h2>Pull request</h2>
        <PullRequest
          goalId={goal.id}
          version={`${goal.state}/${goal.publish_state}/${goal.publish_attempts}/${goal.pr_url}`}
          onError={report}
        />
      </section>

      <div className="lower">
        <section className="card">
          <h2>Cost over time</h2>
          <CostChart events={events} planningCost={goal.planning_usage.cost_usd} total={goal.usage.cost_usd} now={done && goal.finished_at ? goal.finished_at : now / 1000} />
          <p className="small muted">
            {goal.usage.input_tokens} tokens in ({goal.usage.cached_tokens} cached), {goal.usage.output_tokens} out ·
            planning {money(goal.planning_usage.cost_usd)}
          </p>
        </section>
        <section className="card">
          <h2>Circuit breakers</h2>
          <Breakers breakers={breakers} onChanged={() => breakerReader.current?.trigger()} />
        </section>
        {goal.recoveries.length > 0 && (
          <section className="card" data-testid="recoveries">
            <h2>Recoveries</h2>
            <ul className="plain">
              {goal.recoveries.map((r) => (
                <li key={r.id}>
                  <button className="link" onClick={() => select(r.task_id)}>
                    {r.task_id}
                  </button>{" "}
                  <span className="tag tag-recovery">{r.action}</span> {r.root_cause}
                  {r.new_tasks.length > 0 && <span className="muted"> → {r.new_tasks.join(", ")}</span>}
                </li>
              ))}
            </ul>
          </section>
        )}
        <section className="card events-card">
          <h2>Events</h2>
          <EventLog events={events} onSelect={select} />
        </section>
      </div>
    </div>
  );
}

function EventLog({ events, onSelect }: { events: BlitzEvent[]; onSelect: (task: string) => void }) {
  const shown = events.filter((e) => e.kind !== "agent.message").slice(-150).reverse();
  if (!shown.length) return <p className="muted">No events yet.</p>;
  return (
    <ol className="event-log" data-testid="event-log">
      {shown.map((e) => (
        <li key={e.id} className={`ev ev-${e.kind.split(".")[0]}`} data-kind={e.kind}>
          <span className="muted mono small">{clock(e.ts)}</span>
          <span className="ev-kind mono small">{e.kind}</span>
          {e.task_id && (
            <button className="link mono small" onClick={() => onSelect(e.task_id)}>
              {e.task_id}
            </button>
          )}
          <span className="ev-msg">{eventText(e)}</span>
        </li>
      ))}
    </ol>
  );
}

/** An event's message in the page's terms: the description's file on the daemon's machine is
 * not a place a person can open from here (the page shows the description itself). */
function eventText(e: BlitzEvent): string {
  if (e.kind === "pr.written") return "pull request description written (under Pull request, below)";
  return e.message;
}
