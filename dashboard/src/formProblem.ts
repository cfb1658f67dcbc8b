/**
 * An error of the API made into what a form shows next to what caused it: a message under each
 * field the daemon named (RFC 9457 `errors`, e.g. `plan`, `project`, `body.title`), and one
 * message for the rest, each said once. The problem's `detail` repeats the field errors for
 * other clients; it is shown only when no field of the form says it.
 */
import { ApiError } from "./api";

export interface FormProblem {
  /** Messages by field of the form. */
  fields: Record<string, string[]>;
  /** What belongs to no field of the form ("" when the fields say it all). */
  message: string;
}

export const NO_PROBLEM: FormProblem = { fields: {}, message: "" };

/** The field of the request an error names: `body.plan.tasks.0.id` and `plan` are `plan`. */
export function fieldOf(path: string): string {
  const parts = path.split(".");
  if (parts.length > 1 && (parts[0] === "body" || parts[0] === "query")) parts.shift();
  return parts[0] ?? "";
}

/** Where the problem's pieces go in a form with `fields`. */
export function formProblem(error: unknown, fields: readonly string[]): FormProblem {
  if (!(error instanceof ApiError)) {
    return { fields: {}, message: error instanceof Error ? error.message : String(error) };
  }
  const problem = error.problem;
  const found: Record<string, string[]> = {};
  const elsewhere: string[] = [];
  for (const e of problem.errors ?? []) {
    const field = fieldOf(e.field);
    if (fields.includes(field)) {
      const messages = (found[field] ??= []);
      if (!messages.includes(e.message)) messages.push(e.message);
    } else {
      elsewhere.push(e.field ? `${e.field}: ${e.message}` : e.message);
    }
  }
  let message: string;
  if (Object.keys(found).length === 0) message = problem.detail || problem.title || "the request failed";
  else message = elsewhere.join("; ");
  if (problem.status === 0 && message !== problem.title) message = `${problem.title}: ${message}`;
  return { fields: found, message };
}
