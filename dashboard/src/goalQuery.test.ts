import { describe, expect, it } from "vitest";
import { NO_QUERY, apiPath, isFiltered, pageCount, queryFromParams, queryToSearch } from "./goalQuery";

describe("the goals list's query", () => {
  it("asks the API for one page, a state group as its states", () => {
    const path = apiPath({ q: "  rate limit ", state: "active", project: "p-1", page: 3 }, 20);
    const params = new URL(path, "http://x").searchParams;
    expect(params.get("q")).toBe("rate limit");
    expect(params.getAll("state")).toEqual(["planning", "awaiting_approval", "running", "finishing"]);
    expect(params.get("project")).toBe("p-1");
    expect([params.get("limit"), params.get("offset")]).toEqual(["20", "40"]);
    expect(apiPath(NO_QUERY, 20)).toBe("/api/goals?limit=20&offset=0");
    expect(new URL(apiPath({ ...NO_QUERY, state: "failed" }), "http://x").searchParams.getAll("state")).toEqual([
      "failed",
    ]);
  });

  it("lives in the address and comes back from it, nonsense dropped", () => {
    const query = { q: "login form", state: "ended", project: "p-2", page: 2 };
    expect(queryFromParams(new URLSearchParams(queryToSearch(query)))).toEqual(query);
    expect(queryToSearch(NO_QUERY)).toBe("");
    expect(queryFromParams(new URLSearchParams("state=bogus&page=-4"))).toEqual(NO_QUERY);
    expect(queryFromParams(new URLSearchParams("page=2.5"))).toEqual(NO_QUERY);
  });

  it("counts pages and knows a filter from none", () => {
    expect([pageCount(0, 20), pageCount(20, 20), pageCount(21, 20)]).toEqual([1, 1, 2]);
    expect(isFiltered(NO_QUERY)).toBe(false);
    expect(isFiltered({ ...NO_QUERY, page: 4 })).toBe(false);
    expect(isFiltered({ ...NO_QUERY, q: " x" })).toBe(true);
  });
});
