/**
 * The Markdown of a pull request description (GitHub's flavour, the part blitz writes) as a
 * tree the page renders with React: headings, paragraphs, lists, tables, quotes and alerts,
 * code blocks, `<details>` blocks, rules; code spans, emphasis, links and `<sub>` inline.
 *
 * No HTML is passed through: what is not understood stays text, which React escapes, so a
 * description quoting an agent's output cannot put markup or script in the page.
 */

export type Inline =
  | { t: "text"; v: string }
  | { t: "code"; v: string }
  | { t: "strong" | "em" | "del" | "sub"; c: Inline[] }
  | { t: "link"; href: string; c: Inline[] }
  | { t: "br" };

export type Align = "left" | "right" | "center" | "";

export type Block =
  | { t: "heading"; level: number; c: Inline[] }
  | { t: "para"; c: Inline[] }
  | { t: "code"; lang: string; v: string }
  | { t: "list"; ordered: boolean; start: number; items: Block[][] }
  | { t: "table"; align: Align[]; head: Inline[][]; rows: Inline[][][] }
  | { t: "quote"; alert: string; c: Block[] }
  | { t: "details"; summary: Inline[]; open: boolean; c: Block[] }
  | { t: "hr" };

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const ITEM = /^( {0,3})([-*+]|(\d{1,9})[.)])(\s+|$)/;
const TABLE_RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
const DETAILS_OPEN = /^\s*<details(\s+open)?\s*>/i;
const DETAILS_CLOSE = /<\/details\s*>/i;
const SUMMARY = /<summary>([\s\S]*?)<\/summary>/i;
const ALERT = /^\[!(NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]\s*$/i;

/** The blocks of a Markdown document. */
export function parseMarkdown(source: string): Block[] {
  return blocks(source.replace(/\r\n?/g, "\n").split("\n"));
}

function blocks(lines: string[]): Block[] {
  const out: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const mark = fence[1];
      const body: string[] = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(mark)) body.push(lines[i++]);
      i += 1; // the closing fence (or the end)
      out.push({ t: "code", lang: fence[2], v: body.join("\n") });
      continue;
    }
    const details = DETAILS_OPEN.exec(line);
    if (details) {
      const [inner, next] = detailsBody(lines, i);
      const joined = inner.join("\n");
      const summary = SUMMARY.exec(joined);
      const rest = summary ? joined.replace(SUMMARY, "") : joined;
      out.push({
        t: "details",
        open: Boolean(details[1]),
        summary: parseInline(summary ? summary[1].trim() : "details"),
        c: blocks(rest.split("\n")),
      });
      i = next;
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      out.push({ t: "heading", level: heading[1].length, c: parseInline(heading[2]) });
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      out.push({ t: "hr" });
      i += 1;
      continue;
    }
    if (/^ {0,3}>/.test(line)) {
      const body: string[] = [];
      while (i < lines.length && /^ {0,3}>/.test(lines[i])) body.push(lines[i++].replace(/^ {0,3}> ?/, ""));
      const alert = body.length ? ALERT.exec(body[0].trim()) : null;
      out.push({ t: "quote", alert: alert ? alert[1].toLowerCase() : "", c: blocks(alert ? body.slice(1) : body) });
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]) && lines[i + 1].includes("-")) {
      const head = cells(line);
      const align = cells(lines[i + 1]).map(alignment);
      const rows: Inline[][][] = [];
      i += 2;
      while (i < lines.length && lines[i].trim() && lines[i].includes("|")) {
        const row = cells(lines[i++]);
        rows.push(head.map((_, k) => parseInline(row[k] ?? "")));
      }
      out.push({ t: "table", align: head.map((_, k) => align[k] ?? ""), head: head.map(parseInline), rows });
      continue;
    }
    const item = ITEM.exec(line);
    if (item) {
      const ordered = item[3] !== undefined;
      const items: Block[][] = [];
      while (i < lines.length) {
        const found = ITEM.exec(lines[i]);
        if (!found || (found[3] !== undefined) !== ordered) break;
        const indent = found[0].length;
        const body = [lines[i].slice(indent)];
        i += 1;
        // Continuation: indented lines, or lazy lines of the same paragraph.
        while (i < lines.length) {
          const next = lines[i];
          if (!next.trim()) {
            if (i + 1 < lines.length && /^\s{2,}\S/.test(lines[i + 1]) && !ITEM.exec(lines[i + 1])) {
              body.push("");
              i += 1;
              continue;
            }
            break;
          }
          if (/^\s{2,}/.test(next)) body.push(next.replace(/^\s{1,4}/, ""));
          else if (!ITEM.exec(next) && !startsBlock(next)) body.push(next);
          else break;
          i += 1;
        }
        items.push(blocks(body));
      }
      out.push({ t: "list", ordered, start: ordered ? Number(item[3]) : 1, items });
      continue;
    }
    const para: string[] = [line.trim()];
    i += 1;
    while (i < lines.length && lines[i].trim() && !startsBlock(lines[i])) para.push(lines[i++].trim());
    out.push({ t: "para", c: parseInline(para.join("\n")) });
  }
  return out;
}

function startsBlock(line: string): boolean {
  return (
    FENCE.test(line) ||
    HEADING.test(line) ||
    RULE.test(line) ||
    /^ {0,3}>/.test(line) ||
    ITEM.test(line) ||
    DETAILS_OPEN.test(line)
  );
}

/** The lines inside the `<details>` opening at ``start`` (nested ones kept whole), and the
 * index after its closing tag. */
function detailsBody(lines: string[], start: number): [string[], number] {
  const inner: string[] = [];
  let depth = 0;
  for (let i = start; i < lines.length; i++) {
    let line = lines[i];
    if (i === start) line = line.replace(DETAILS_OPEN, "");
    else if (DETAILS_OPEN.test(line)) depth += 1;
    if (DETAILS_CLOSE.test(line)) {
      if (depth === 0) {
        inner.push(line.replace(DETAILS_CLOSE, ""));
        return [inner, i + 1];
      }
      depth -= 1;
    }
    inner.push(line);
  }
  return [inner, lines.length];
}

/** A table row's cells: split on pipes that are not escaped, outer pipes dropped. */
function cells(row: string): string[] {
  let text = row.trim();
  if (text.startsWith("|")) text = text.slice(1);
  if (text.endsWith("|") && !text.endsWith("\\|")) text = text.slice(0, -1);
  const found: string[] = [];
  let cell = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "\\" && text[i + 1] === "|") {
      cell += "|";
      i += 1;
    } else if (text[i] === "|") {
      found.push(cell.trim());
      cell = "";
    } else {
      cell += text[i];
    }
  }
  found.push(cell.trim());
  return found;
}

function alignment(rule: string): Align {
  const left = rule.startsWith(":");
  const right = rule.endsWith(":");
  return left && right ? "center" : right ? "right" : left ? "left" : "";
}

const SAFE_HREF = /^(https?:\/\/|mailto:|#)/i;
const ESCAPABLE = /[!-/:-@[-`{-~]/;

/** The inline content of a paragraph, a heading or a cell. */
export function parseInline(source: string): Inline[] {
  const out: Inline[] = [];
  let text = "";
  const flush = () => {
    if (text) out.push({ t: "text", v: text });
    text = "";
  };
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    const rest = source.slice(i);
    if (c === "\\" && i + 1 < source.length && ESCAPABLE.test(source[i + 1])) {
      text += source[i + 1];
      i += 2;
      continue;
    }
    if (c === "\n") {
      text += " ";
      i += 1;
      continue;
    }
    if (c === "`") {
      let n = 1;
      while (source[i + n] === "`") n += 1;
      const mark = "`".repeat(n);
      const end = source.indexOf(mark, i + n);
      if (end > 0) {
        flush();
        let v = source.slice(i + n, end).replace(/\n/g, " ");
        if (v.length > 2 && v.startsWith(" ") && v.endsWith(" ")) v = v.slice(1, -1);
        out.push({ t: "code", v });
        i = end + n;
        continue;
      }
      text += mark;
      i += n;
      continue;
    }
    if (c === "*" || c === "_" || c === "~") {
      const double = source[i + 1] === c;
      const mark = double ? c + c : c;
      const before = i > 0 ? source[i - 1] : " ";
      const opens = source[i + mark.length] && !/\s/.test(source[i + mark.length]);
      const wordy = c === "_" && /[\p{L}\p{N}]/u.test(before);
      const end = closing(source, mark, i + mark.length);
      if ((c !== "~" || double) && opens && !wordy && end > 0) {
        flush();
        const inner = parseInline(source.slice(i + mark.length, end));
        out.push({ t: c === "~" ? "del" : double ? "strong" : "em", c: inner });
        i = end + mark.length;
        continue;
      }
    }
    if (c === "[") {
      const link = /^\[([^\]]*)\]\(([^)\s]*)\)/.exec(rest);
      if (link) {
        flush();
        const label = parseInline(link[1]);
        if (SAFE_HREF.test(link[2])) out.push({ t: "link", href: link[2], c: label });
        else out.push(...label);
        i += link[0].length;
        continue;
      }
    }
    if (c === "<") {
      const auto = /^<(https?:\/\/[^>\s]+)>/.exec(rest);
      if (auto) {
        flush();
        out.push({ t: "link", href: auto[1], c: [{ t: "text", v: auto[1] }] });
        i += auto[0].length;
        continue;
      }
      const tag = /^<(sub|b|strong|i|em|code)>([\s\S]*?)<\/\1>/i.exec(rest);
      if (tag) {
        flush();
        const name = tag[1].toLowerCase();
        if (name === "code") out.push({ t: "code", v: tag[2] });
        else out.push({ t: name === "sub" ? "sub" : name === "i" || name === "em" ? "em" : "strong", c: parseInline(tag[2]) });
        i += tag[0].length;
        continue;
      }
      const br = /^<br\s*\/?>/i.exec(rest);
      if (br) {
        flush();
        out.push({ t: "br" });
        i += br[0].length;
        continue;
      }
    }
    text += c;
    i += 1;
  }
  flush();
  return out;
}

/** Where ``mark`` closes an emphasis opened before ``from`` (-1: it does not). */
function closing(source: string, mark: string, from: number): number {
  let at = source.indexOf(mark, from);
  while (at > from) {
    const after = source[at + mark.length] ?? " ";
    const fine = !/\s/.test(source[at - 1]) && (mark[0] !== "_" || !/[\p{L}\p{N}]/u.test(after));
    // `**` must not close a single `*`.
    const exact = mark.length === 2 || source[at + 1] !== mark[0];
    if (fine && exact && source[at - 1] !== "\\") return at;
    at = source.indexOf(mark, at + 1);
  }
  return -1;
}

/** The text of inline content, for titles and tests. */
export function plainText(inline: Inline[]): string {
  return inline
    .map((n) => (n.t === "text" || n.t === "code" ? n.v : n.t === "br" ? "\n" : plainText(n.c)))
    .join("");
}
