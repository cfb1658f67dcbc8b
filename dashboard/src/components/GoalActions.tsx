/** What a person may do with a goal that ended: publish it again (succeeded, and published or
 * pending already) and run it again (a new goal, with the plan it ran or planned afresh; the new
 * goal's page opens). What the daemon refuses is said here, next to the buttons, once. */
import { useState } from "react";
import { api } from "../api";
import { NO_PROBLEM, formProblem } from "../formProblem";
import type { FormProblem } from "../formProblem";
import { goalPath, navigate } from "../router";
import { useToasts } from "../toasts";
import { GOAL_DONE, publishPending } from "../types";
import type { Goal } from "../types";
import { FormError } from "./FieldError";

interface Props {
  goal: Goal;
  onChanged?: () => void;
  /** Whether to offer "Publish again" here (a page with its own publishing panel says no). */
  publish?: boolean;
}

export function GoalActions({ goal, onChanged, publish: offerPublish = true }: Props) {
  const toasts = useToasts();
  const [busy, setBusy] = useState(false);
  const [choosing, setChoosing] = useState(false);
  const [replanned, setReplanned] = useState(false);
  const [problem, setProblem] = useState<FormProblem>(NO_PROBLEM);
  const act = async (what: () => Promise<void>) => {
    setBusy(true);
    setProblem(NO_PROBLEM);
    try {
      await what();
    } catch (error) {
      setProblem(formProblem(error, ["allow_dirty", "plan"]));
    } finally {
      setBusy(false);
    }
  };
  const publish = () =>
    act(async () => {
      await api.publish(goal.id);
      toasts.info("publishing again", goal.title);
      onChanged?.();
    });
  const rerun = (replan: boolean, allowDirty = false) =>
    act(async () => {
      setReplanned(replan);
      const again = await api.rerun(goal.id, { replan, ...(allowDirty ? { allow_dirty: true } : {}) });
      setChoosing(false);
      onChanged?.();
      navigate(goalPath(again.id));
    });
  const pending = publishPending(goal);
  const fieldMessages = [...(problem.fields.plan ?? []), ...(problem.fields.allow_dirty ?? [])];
  return (
    <div className="row-actions">
      {offerPublish && goal.state === "succeeded" && goal.publish_state !== "" && (
        <button
          className={pending ? "small" : "small secondary"}
          disabled={busy}
          data-testid={pending ? `goal-publish-${goal.id}` : `goal-publish-again-${goal.id}`}
          title={pending ? "push the branch and open the pull request again" : "push the branch and open or find its pull request again"}
          onClick={() => void publish()}
        >
          Publish again
        </button>
      )}
      {GOAL_DONE.has(goal.state) &&
        (choosing ? (
          <span className="rerun-choice" data-testid={`goal-rerun-choice-${goal.id}`}>
            <button
              className="small"
              disabled={busy}
              title="a new goal running the plan this one ran"
              onClick={() => void rerun(false)}
              data-testid={`goal-rerun-same-${goal.id}`}
            >
              same plan
            </button>
            <button
              className="small secondary"
              disabled={busy}
              title="a new goal, planned afresh"
              onClick={() => void rerun(true)}
              data-testid={`goal-rerun-replan-${goal.id}`}
            >
              plan again
            </button>
            <button className="link small" aria-label="keep it" onClick={() => setChoosing(false)}>
              ×
            </button>
          </span>
        ) : (
          <button
            className="small secondary"
            title="run this goal again as a new goal, from its base branch as it is now"
            onClick={() => setChoosing(true)}
            data-testid={`goal-rerun-${goal.id}`}
          >
            Run again
          </button>
        ))}
      <FormError
        message={[...fieldMessages, problem.message].filter(Boolean).join("; ")}
        testid={`goal-row-error-${goal.id}`}
      />
      {problem.fields.allow_dirty && (
        <button
          className="small"
          disabled={busy}
          onClick={() => void rerun(replanned, true)}
          data-testid={`goal-rerun-dirty-${goal.id}`}
        >
          run without them
        </button>
      )}
    </div>
  );
}
