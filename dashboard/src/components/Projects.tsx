/** The registered projects, with pause / resume and a form to add a repository. */
import { useState } from "react";
import { api } from "../api";
import { money } from "../format";
import { useToasts } from "../toasts";
import type { Project } from "../types";

export function Projects({ projects, onChanged }: { projects: Project[] | null; onChanged: () => void }) {
  const toasts = useToasts();
  const [path, setPath] = useState("");
  const [busy, setBusy] = useState("");

  const act = async (name: string, what: () => Promise<unknown>, label: string) => {
    setBusy(name);
    try {
      await what();
      onChanged();
    } catch (error) {
      toasts.error(error, label);
    } finally {
      setBusy("");
    }
  };

  const add = async (e: React.FormEvent) => {
    e.preventDefault();
    await act("+add", () => api.addProject(path.trim()), "adding the project");
    setPath("");
  };

  if (projects === null) return <p className="muted">loading…</p>;
  return (
    <>
      {projects.length === 0 ? (
        <p className="muted" data-testid="no-projects">
          No projects yet. Add a repository below, or run <code>blitz run</code> in one.
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
                      onClick={() => act(p.name, () => api.resumeProject(p.id), "resuming the project")}
                    >
                      resume
                    </button>
                  ) : (
                    <button
                      className="small secondary"
                      disabled={busy === p.name}
                      data-testid={`project-pause-${p.name}`}
                      onClick={() =>
                        act(p.name, () => api.pauseProject(p.id, "paused from the dashboard"), "pausing the project")
                      }
                    >
                      pause
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="inline-form" onSubmit={add}>
        <input
          placeholder="/absolute/path/to/a/git/repository"
          value={path}
          onChange={(e) => setPath(e.target.value)}
          data-testid="project-path"
        />
        <button type="submit" className="secondary" disabled={!path.trim() || busy === "+add"} data-testid="project-add">
          add project
        </button>
      </form>
    </>
  );
}
