import { createConnection, createServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { BlitzClient, follow, type BlitzApiError, type BlitzEvent, type Follower } from "@blitz/api";
import { client, deadUrl, plan, PROJECT, TOKEN, URL, waitFor } from "./daemon.js";

/** A TCP proxy to the daemon whose open connections can be cut (a network drop). */
async function cuttableProxy(): Promise<{ url: string; cut(): void; connections(): number; close(): Promise<void> }> {
  const target = new globalThis.URL(URL);
  const open = new Set<Socket>();
  let count = 0;
  const server = createServer((inbound) => {
    count += 1;
    const outbound = createConnection(Number(target.port), target.hostname);
    for (const s of [inbound, outbound]) {
      open.add(s);
      s.on("close", () => open.delete(s));
      s.on("error", () => { s.destroy(); });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    cut() {
      for (const s of open) s.destroy();
    },
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => { resolve(); });
      }),
  };
}

const followers: Follower[] = [];
afterEach(async () => {
  await Promise.all(followers.splice(0).map((f) => f.stop()));
});

describe("follow: the event stream with Last-Event-ID resume", () => {
  it("misses and repeats nothing across cut connections", async () => {
    const proxy = await cuttableProxy();
    const goal = await client.submit({ project: PROJECT, title: "Greet", plan: plan("hello", "world") });
    const seen: BlitzEvent[] = [];
    const errors: BlitzApiError[] = [];
    let cuts = 0;
    const via = new BlitzClient({ url: proxy.url, token: TOKEN });
    followers.push(
      follow(via, {
        goal: goal.id,
        retryMs: 20,
        onError: (e) => errors.push(e),
        onEvent(event) {
          seen.push(event);
          if (seen.length % 3 === 0 && cuts < 4) {
            cuts += 1;
            proxy.cut(); // drop the stream every third event
          }
        },
      }),
    );
    await waitFor(goal.id, ["succeeded", "failed"]);
    const all = await client.request<BlitzEvent[]>("GET", `/api/goals/${goal.id}/events?limit=500`);
    const last = all[all.length - 1];
    while ((seen[seen.length - 1]?.id ?? 0) < (last?.id ?? 0)) await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(cuts).toBeGreaterThan(0);
    expect(proxy.connections()).toBeGreaterThan(1); // it reconnected
    expect(errors.every((e) => e.kind === "unreachable")).toBe(true);
    await proxy.close();
  });

  it("resumes after the id it is given", async () => {
    const goal = await client.submit({ project: PROJECT, title: "Greet", plan: plan("hello") });
    await waitFor(goal.id, ["succeeded", "failed"]);
    const all = await client.request<BlitzEvent[]>("GET", `/api/goals/${goal.id}/events?limit=500`);
    const middle = all[Math.floor(all.length / 2)];
    if (!middle) throw new Error("no events");
    const seen: number[] = [];
    const follower = follow(client, { goal: goal.id, lastEventId: middle.id, onEvent: (e) => { seen.push(e.id); } });
    followers.push(follower);
    const expected = all.filter((e) => e.id > middle.id).map((e) => e.id);
    while (seen.length < expected.length) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(expected);
    expect(follower.lastEventId).toBe(expected[expected.length - 1]);
  });

  it("reports a daemon that is down and keeps trying, and a wrong token", async () => {
    const down: BlitzApiError[] = [];
    followers.push(follow(new BlitzClient({ url: await deadUrl(), token: TOKEN }), {
      retryMs: 10, maxRetryMs: 20, onEvent: () => undefined, onError: (e) => down.push(e),
    }));
    const refused: BlitzApiError[] = [];
    followers.push(follow(new BlitzClient({ url: URL, token: "blitz_wrong" }), {
      retryMs: 10, maxRetryMs: 20, onEvent: () => undefined, onError: (e) => refused.push(e),
    }));
    while (down.length < 2 || refused.length < 2) await new Promise((r) => setTimeout(r, 10));
    expect(down[0]?.kind).toBe("unreachable");
    expect(refused[0]?.kind).toBe("unauthorized");
    expect(refused[0]?.message).not.toContain("blitz_wrong");
  });
});
