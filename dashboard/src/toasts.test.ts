import { describe, expect, it } from "vitest";
import { ApiError } from "./api";
import { errorText } from "./toasts";

describe("an error toast", () => {
  it("says the daemon's detail once, not again as field errors", () => {
    const error = new ApiError({
      title: "invalid request",
      status: 422,
      detail: "body.title: Field required",
      errors: [{ field: "body.title", message: "Field required" }],
    });
    expect(errorText(error, "submitting")).toEqual({
      title: "submitting: invalid request (422)",
      detail: "body.title: Field required",
    });
  });

  it("falls back on the field errors, and drops a detail that repeats the title", () => {
    const fields = new ApiError({ title: "invalid plan", status: 422, errors: [{ field: "plan", message: "cycle" }] });
    expect(errorText(fields).detail).toBe("plan: cycle");
    const same = new ApiError({ title: "not found", status: 404, detail: "not found" });
    expect(errorText(same)).toEqual({ title: "not found (404)", detail: "" });
    expect(errorText(new Error("boom"), "loading")).toEqual({ title: "loading", detail: "boom" });
  });
});
