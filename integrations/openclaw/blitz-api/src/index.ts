/** A typed client of blitz's HTTP API and event stream, for blitz's OpenClaw plugins. */
export { BlitzClient, type ClientOptions } from "./client.js";
export { BlitzApiError, type ErrorKind } from "./errors.js";
export { follow, messages, type Follower, type FollowOptions } from "./follower.js";
export type * from "./types.js";
export { ENDED } from "./types.js";
export type { components, paths } from "./schema.js";
