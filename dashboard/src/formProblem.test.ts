import { describe, expect, it } from "vitest";
import { ApiError } from "./api";
import { fieldOf, formProblem } from "./formProblem";

const FIELDS = ["project", "title", "plan", "allow_dirty"];

describe("formProblem", () => {
  it("puts each field error under its field and does not repeat it in the message", () => {
    const error = new ApiError({
      title: "invalid plan",
      status: 422,
      detail: "invalid plan:\n  - cycle: a -> b -> a\n  - task 'c': unknown dependency 'x'",
      errors: [
        { field: "plan", message: "cycle: a -> b -> a" },
        { field: "plan", message: "task 'c': unknown dependency 'x'" },
      ],
    });
    expect(formProblem(error, FIELDS)).toEqual({
      fields: { plan: ["cycle: a -> b -> a", "task 'c': unknown dependency 'x'"] },
      message: "",
    });
  });

  it("names request fields the way the form does", () => {
    expect(fieldOf("body.title")).toBe("title");
    expect(fieldOf("body.plan.tasks.0.id")).toBe("plan");
    expect(fieldOf("query.q")).toBe("q");
    expect(fieldOf("plan")).toBe("plan");
    const error = new ApiError({
      title: "invalid request",
      status: 422,
      detail: "body.title: String should have at least 1 character; body.explore: too big",
      errors: [
        { field: "body.title", message: "String should have at least 1 character" },
        { field: "body.explore", message: "too big" },
      ],
    });
    expect(formProblem(error, FIELDS)).toEqual({
      fields: { title: ["String should have at least 1 character"] },
      message: "body.explore: too big",
    });
  });

  it("keeps the detail when no field of the form is named", () => {
    const error = new ApiError({ title: "conflict", status: 409, detail: "goal g-1 is running" });
    expect(formProblem(error, FIELDS)).toEqual({ fields: {}, message: "goal g-1 is running" });
    const bare = new ApiError({ title: "internal error", status: 500 });
    expect(formProblem(bare, FIELDS).message).toBe("internal error");
  });

  it("says when the daemon could not be reached", () => {
    const error = new ApiError({ title: "daemon unreachable", status: 0, detail: "Failed to fetch" });
    expect(formProblem(error, FIELDS).message).toBe("daemon unreachable: Failed to fetch");
    expect(formProblem(new Error("boom"), FIELDS)).toEqual({ fields: {}, message: "boom" });
  });
});
