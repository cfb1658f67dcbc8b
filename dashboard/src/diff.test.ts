import { describe, expect, it } from "vitest";
import { classifyDiff, diffCounts, splitByFile } from "./diff";

const DIFF = `diff --git a/hello.txt b/hello.txt
new file mode 100644
index 0000000..ce01362
--- /dev/null
+++ b/hello.txt
@@ -0,0 +1 @@
+hello
-gone
 same`;

describe("classifyDiff", () => {
  it("tells files, hunks, additions, removals and context apart", () => {
    const kinds = classifyDiff(DIFF).map((l) => l.kind);
    expect(kinds).toEqual(["file", "meta", "meta", "file", "file", "hunk", "add", "del", "context"]);
    expect(diffCounts(classifyDiff(DIFF))).toEqual({ added: 1, removed: 1 });
  });

  it("gives nothing for no diff", () => {
    expect(classifyDiff("")).toEqual([]);
  });
});

describe("splitByFile", () => {
  it("cuts a patch at each file", () => {
    const two = `${DIFF}\ndiff --git a/dir/b c.txt b/dir/b c.txt\n--- a/dir/b c.txt\n+++ b/dir/b c.txt\n+x`;
    const files = splitByFile(classifyDiff(two));
    expect(files.map((f) => [f.path, f.lines.length])).toEqual([
      ["hello.txt", 9],
      ["dir/b c.txt", 4],
    ]);
  });
});
