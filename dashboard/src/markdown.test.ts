import { describe, expect, it } from "vitest";
import { parseInline, parseMarkdown, plainText } from "./markdown";
import type { Block } from "./markdown";

describe("parseMarkdown", () => {
  it("reads what blitz writes in a pull request description", () => {
    const text = [
      "# blitz: Greet the world",
      "",
      "> [!NOTE]",
      "> **Demo run.** Canned output.",
      "",
      "## Tasks",
      "",
      "| Task | Title | Status | Attempts |",
      "| --- | --- | --- | ---: |",
      "| `hello` | Write a \\| pipe | succeeded | 1 |",
      "",
      "- `world` Append world (failed): it broke",
      "- second",
      "",
      "<details><summary>full output of <code>test</code></summary>",
      "",
      "```",
      "FAILED tests/test_x.py::test_y - <script>alert(1)</script>",
      "```",
      "",
      "</details>",
      "",
      "---",
      "<sub>Opened by blitz for goal `g-1`.</sub>",
    ].join("\n");
    const blocks = parseMarkdown(text);
    expect(blocks.map((b) => b.t)).toEqual(["heading", "quote", "heading", "table", "list", "details", "hr", "para"]);
    const quote = blocks[1] as Extract<Block, { t: "quote" }>;
    expect(quote.alert).toBe("note");
    const table = blocks[3] as Extract<Block, { t: "table" }>;
    expect(table.align).toEqual(["", "", "", "right"]);
    expect(table.rows[0].map(plainText)).toEqual(["hello", "Write a | pipe", "succeeded", "1"]);
    expect(table.rows[0][0][0]).toEqual({ t: "code", v: "hello" });
    const list = blocks[4] as Extract<Block, { t: "list" }>;
    expect(list.items).toHaveLength(2);
    const details = blocks[5] as Extract<Block, { t: "details" }>;
    expect(plainText(details.summary)).toBe("full output of test");
    expect(details.c).toEqual([{ t: "code", lang: "", v: "FAILED tests/test_x.py::test_y - <script>alert(1)</script>" }]);
    const footer = blocks[7] as Extract<Block, { t: "para" }>;
    expect(footer.c[0].t).toBe("sub");
  });

  it("keeps HTML it does not know as text", () => {
    const [para] = parseMarkdown('<img src=x onerror="alert(1)"> and <b>bold</b>');
    expect(para).toEqual({
      t: "para",
      c: [
        { t: "text", v: '<img src=x onerror="alert(1)"> and ' },
        { t: "strong", c: [{ t: "text", v: "bold" }] },
      ],
    });
  });

  it("nests details and reads ordered lists", () => {
    const blocks = parseMarkdown("<details open>\n<summary>a</summary>\n\n<details>\ninner\n</details>\nafter\n</details>\n\n3. three\n4. four");
    expect(blocks.map((b) => b.t)).toEqual(["details", "list"]);
    const outer = blocks[0] as Extract<Block, { t: "details" }>;
    expect(outer.open).toBe(true);
    expect(outer.c.map((b) => b.t)).toEqual(["details", "para"]);
    expect(blocks[1]).toMatchObject({ ordered: true, start: 3 });
  });
});

describe("parseInline", () => {
  it("reads emphasis, code and links, and refuses links that are not web addresses", () => {
    expect(parseInline("**bold** and *it* `a*b` [x](https://e.test) [y](javascript:alert)")).toEqual([
      { t: "strong", c: [{ t: "text", v: "bold" }] },
      { t: "text", v: " and " },
      { t: "em", c: [{ t: "text", v: "it" }] },
      { t: "text", v: " " },
      { t: "code", v: "a*b" },
      { t: "text", v: " " },
      { t: "link", href: "https://e.test", c: [{ t: "text", v: "x" }] },
      { t: "text", v: " " },
      { t: "text", v: "y" },
    ]);
  });

  it("leaves underscores inside words alone", () => {
    expect(plainText(parseInline("test_one_two and _em_"))).toBe("test_one_two and em");
    expect(parseInline("snake_case_name")).toEqual([{ t: "text", v: "snake_case_name" }]);
  });
});
