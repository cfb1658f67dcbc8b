/** The daemon the tests run against (started by pytest: tests/openclaw/conftest.py). */
import { BlitzClient, type GoalDetail } from "@blitz/api";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through pytest tests/openclaw`);
  return value;
}

export const URL = required("BLITZ_URL");
export const TOKEN = required("BLITZ_TOKEN");
/** A project whose goals run straight away. */
export const PROJECT = required("BLITZ_PROJECT");
/** A project whose plans wait for approval. */
export const GATED = required("BLITZ_GATED_PROJECT");
/** A project whose goals may spend $1. */
export const METERED = required("BLITZ_METERED_PROJECT");

export const client = new BlitzClient({ url: URL, token: TOKEN });

/** A plan (the plan-file format) of the scenario's tasks: hello, world, broken, slow, costly. */
export function plan(...tasks: string[]): string {
  return JSON.stringify({
    summary: `Run ${tasks.join(", ")}`,
    tasks: tasks.map((id, i) => ({
      id,
      title: `Do ${id}`,
      ...(i > 0 ? { depends_on: [tasks[i - 1]] } : {}),
    })),
  });
}

/** The goal once it is in one of `states`. */
export async function waitFor(goal: string, states: string[]): Promise<GoalDetail> {
  for (;;) {
    const found = await client.goal(goal);
    if (states.includes(found.state)) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A URL where nothing listens (a port just released). */
export async function deadUrl(): Promise<string> {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  await new Promise<void>((resolve) => server.close(() => { resolve(); }));
  return `http://127.0.0.1:${address.port}`;
}
