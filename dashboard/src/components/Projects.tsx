/** The registered projects, with pause / resume and a form to add a repository; what the daemon
 * refuses is said in the row or under the form it came from. */
import { useState } from "react";
import { api } from "../api";
import { money } from "../format";
import { formProblem } from "../formProblem";
import type { Project } from "../types";
import { FormError } from "./FieldError";

const ADD = "+add";

export function Projects({ projects, onChanged }: { projects: Project[] | null; onChanged: () => void }) {
  const [path, setPath] = useState("");
  const [busy, setBusy] = useState("");
  // What went wrong, by project name (ADD: adding one).
  const [errors, setErrors] = useState<Record<string, string>>({});

  const act = async (name: string, what: () => Promise<unknown>): Promise<boolean> => {
    setBusy(name);
    setErrors((e) => ({ ...e, [name]: "" }));
    try {
      await what();
      onChanged();
      return true;
    } catch (error) {
      const problem = formProblem(error, []);
      setErrors((e) => ({ ...e, [name]: problem.message }));
      return false;
    } finally {
      setBusy("");
    }
  };

  const add = async (e: React.FormEvent) => {
    e.preventDefault();
    if (await act(ADD, () => api.addProject(path.trim()))) setPath("");
  };

  if (projects === null) return <p className="muted">loading…</p>;
  return (
    <>
      {projects.length === 0 ? (
        <p className="muted" data-testid="no-projects">
          No projects yet. Add a repository below by its path on the daemon's machine.
        </p>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>name</th>
              <th>path</th>
              <th>backend</th>
              <th>spent</th>
              <th>state</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {projects.map((p) => (
              <tr key={p.id} data-testid={`project-${p.name}`} data-paused={p.paused ? "true" : "false"}>
                <td>
                  <strong>{p.name}</strong>
                  {p.require_plan_approval && (
                    <span className="tag" title="goals wait for a person to approve their plan">
                      approval
                    </span>
                  )}
                </td>
                <td className="mono path" title={p.path}>
                  {p.path}
                </td>
                <td>{p.backend}</td>
                <td>{money(p.usage.cost_usd)}</td>
                <td>
                  {p.paused ? (
                    <span className="badge badge-paused" data-testid={`project-paused-${p.name}`}>
                      paused{p.pause_reason ? `: ${p.pause_reason}` : ""}
                    </span>
                  ) : (
                    <span className="badge badge-active">active</span>
                  )}
                </td>
                <td className="right">
                  {p.paused ? (
                    <button
                      className="small"
                      disabled={busy === p.name}
                      data-testid={`project-resume-${p.name}`}
                      onClick={() => act(p.name, () => api.resumeProject(p.id))}
                    >
                      resume
                    </button>
                  ) : (
                    <button
                      className="small secondary"
                      disabled={busy === p.name}
                      data-testid={`project-pause-${p.name}`}
                      onClick={() => act(p.name, () => api.pauseProject(p.id, "paused from the dashboard"))}
                    >
                      pause
                    </button>
                  )}
                  <FormError message={errors[p.name] ?? ""} testid={`project-error-${p.name}`} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className={`inline-form${errors[ADD] ? " has-error" : ""}`} onSubmit={add}>
        <input
          placeholder="/absolute/path/to/a/git/repository"
          value={path}
          onChange={(e) => {
            setPath(e.target.value);
            setErrors((errs) => ({ ...errs, [ADD]: "" }));
          }}
          data-testid="project-path"
        />
        <button type="submit" className="secondary" disabled={!path.trim() || busy === ADD} data-testid="project-add">
          add project
        </button>
      </form>
      <FormError message={errors[ADD] ?? ""} testid="project-add-error" />
    </>
  );
}
