/** Unified diffs split into lines that the task panel colours. */

export type DiffLineKind = "file" | "hunk" | "add" | "del" | "context" | "meta";

export interface DiffLine {
  kind: DiffLineKind;
  text: string;
}

export function classifyDiff(diff: string): DiffLine[] {
  if (!diff) return [];
  return diff.split("\n").map((text) => ({ kind: kindOf(text), text }));
}

function kindOf(line: string): DiffLineKind {
  if (line.startsWith("diff --git") || line.startsWith("+++ ") || line.startsWith("--- ")) {
    return "file";
  }
  if (line.startsWith("@@")) return "hunk";
  if (line.startsWith("+")) return "add";
  if (line.startsWith("-")) return "del";
  if (/^(index |new file|deleted file|similarity|rename |old mode|new mode|Binary)/.test(line)) {
    return "meta";
  }
  return "context";
}

/** Lines added and removed, counted from the diff itself. */
export function diffCounts(lines: DiffLine[]): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const line of lines) {
    if (line.kind === "add") added += 1;
    else if (line.kind === "del") removed += 1;
  }
  return { added, removed };
}

/** A patch cut at each file's `diff --git` line: the file's path (its new name) and its lines. */
export function splitByFile(lines: DiffLine[]): { path: string; lines: DiffLine[] }[] {
  const files: { path: string; lines: DiffLine[] }[] = [];
  for (const line of lines) {
    if (line.text.startsWith("diff --git ")) {
      const match = / b\/(.*)$/.exec(line.text);
      files.push({ path: match ? match[1] : line.text.slice(11), lines: [line] });
    } else if (files.length) {
      files[files.length - 1].lines.push(line);
    } else {
      files.push({ path: "", lines: [line] });
    }
  }
  return files;
}
