/**
 * What can go wrong talking to a blitz daemon, as messages a person can act on. The token is
 * never part of one.
 */

/** Why a call failed: who must act differs (start the daemon, fix the token, fix the id...). */
export type ErrorKind =
  | "unreachable" // nothing answers at the URL (daemon down, wrong URL)
  | "unauthorized" // no token, or a wrong one
  | "not_found" // unknown project, goal, task
  | "conflict" // the thing is in the wrong state (409)
  | "invalid" // the request was refused as invalid (400, 422)
  | "unavailable" // the daemon is shutting down (503)
  | "failed"; // anything else the daemon answered

/** A refused or failed call to the daemon; `message` is meant for the person. */
export class BlitzApiError extends Error {
  override readonly name = "BlitzApiError";
  readonly kind: ErrorKind;
  /** The HTTP status, when the daemon answered. */
  readonly status: number | undefined;

  constructor(kind: ErrorKind, message: string, status?: number) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/** An RFC 9457 problem, as the daemon sends every error (docs/api.md, "Errors"). */
interface Problem {
  title?: string;
  detail?: string;
  errors?: { field: string; message: string }[];
}

function isProblem(body: unknown): body is Problem {
  return typeof body === "object" && body !== null && ("title" in body || "detail" in body);
}

/** The error for a daemon's non-2xx answer. */
export function fromResponse(status: number, body: unknown, daemon: string): BlitzApiError {
  const problem: Problem = isProblem(body) ? body : {};
  const said = [problem.title, problem.detail].filter(Boolean).join(": ");
  const fields = (problem.errors ?? []).map((e) => `${e.field}: ${e.message}`).join("; ");
  const text = [said || `HTTP ${status}`, fields].filter(Boolean).join(" (") + (fields ? ")" : "");
  switch (status) {
    case 401:
      return new BlitzApiError(
        "unauthorized",
        `The blitz daemon at ${daemon} refused the token (${said || "401"}). Set the plugin's ` +
          "token to the one `blitz serve` printed, or make a new one with `blitz token`.",
        status,
      );
    case 404:
      return new BlitzApiError("not_found", `Not found: ${problem.detail ?? said}`, status);
    case 409:
      return new BlitzApiError("conflict", `Refused: ${problem.detail ?? said}`, status);
    case 400:
    case 422:
      return new BlitzApiError("invalid", `Refused: ${text}`, status);
    case 503:
      return new BlitzApiError(
        "unavailable",
        `The blitz daemon at ${daemon} is shutting down and takes no new work; try again when it is back.`,
        status,
      );
    default:
      return new BlitzApiError("failed", `The blitz daemon at ${daemon} answered ${text}`, status);
  }
}

/** The error for a call that got no answer at all. */
export function unreachable(daemon: string, cause: unknown): BlitzApiError {
  const why = describe(cause);
  return new BlitzApiError(
    "unreachable",
    `No blitz daemon answers at ${daemon} (${why}). Is \`blitz serve\` running there?`,
  );
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause as Error & { cause?: unknown }).cause;
    if (inner instanceof Error && "code" in inner && typeof inner.code === "string") {
      return inner.code; // ECONNREFUSED, ENOTFOUND...
    }
    if (cause.name === "TimeoutError") return "no answer in time";
    return cause.message;
  }
  return String(cause);
}
