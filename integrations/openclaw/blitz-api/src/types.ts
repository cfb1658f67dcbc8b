/** Names for the records of blitz's API, all taken from the generated `schema.d.ts`. */
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];

export type Project = Schemas["ProjectOut"];
export type Goal = Schemas["GoalOut"];
export type GoalDetail = Schemas["GoalDetailOut"];
export type GoalState = Schemas["GoalState"];
export type Task = Schemas["TaskOut"];
export type TaskDetail = Schemas["TaskDetailOut"];
export type Attempt = Schemas["AttemptOut"];
export type Action = Schemas["ActionOut"];
export type BlitzEvent = Schemas["EventOut"];
export type Health = Schemas["HealthOut"];

/** The body of `POST /api/goals`. */
export type NewGoal = paths["/api/goals"]["post"]["requestBody"]["content"]["application/json"];
/** The query of `GET /api/goals`. */
export type GoalQuery = NonNullable<paths["/api/goals"]["get"]["parameters"]["query"]>;
/** The body of `POST /api/goals/{goal}/approve` (empty: the plan as planned). */
export type Approval = Schemas["ApproveIn"];

/** The states in which a goal has ended. */
export const ENDED: readonly GoalState[] = ["succeeded", "failed", "cancelled"];
