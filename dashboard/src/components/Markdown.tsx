/** Markdown rendered as React elements (src/markdown.ts): no HTML string reaches the page. */
import type { ReactNode } from "react";
import { parseMarkdown } from "../markdown";
import type { Block, Inline } from "../markdown";

export function Markdown({ source, testId }: { source: string; testId?: string }) {
  return (
    <div className="markdown" data-testid={testId}>
      {parseMarkdown(source).map(block)}
    </div>
  );
}

function block(b: Block, key: number): ReactNode {
  switch (b.t) {
    case "heading": {
      const Tag = `h${Math.min(6, b.level)}` as "h1";
      return <Tag key={key}>{inline(b.c)}</Tag>;
    }
    case "para":
      return <p key={key}>{inline(b.c)}</p>;
    case "code":
      return (
        <pre key={key} className="md-code" data-lang={b.lang || undefined}>
          <code>{b.v}</code>
        </pre>
      );
    case "list": {
      const items = b.items.map((item, i) => <li key={i}>{tight(item)}</li>);
      return b.ordered ? (
        <ol key={key} start={b.start}>
          {items}
        </ol>
      ) : (
        <ul key={key}>{items}</ul>
      );
    }
    case "table":
      return (
        <div key={key} className="md-table-wrap">
          <table className="md-table">
            <thead>
              <tr>
                {b.head.map((cell, i) => (
                  <th key={i} style={b.align[i] ? { textAlign: b.align[i] } : undefined}>
                    {inline(cell)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {b.rows.map((row, r) => (
                <tr key={r}>
                  {row.map((cell, i) => (
                    <td key={i} style={b.align[i] ? { textAlign: b.align[i] } : undefined}>
                      {inline(cell)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      );
    case "quote":
      return (
        <blockquote key={key} className={b.alert ? `md-alert md-alert-${b.alert}` : undefined}>
          {b.alert && <div className="md-alert-title">{b.alert}</div>}
          {b.c.map(block)}
        </blockquote>
      );
    case "details":
      return (
        <details key={key} className="md-details" open={b.open}>
          <summary>{inline(b.summary)}</summary>
          {b.c.map(block)}
        </details>
      );
    case "hr":
      return <hr key={key} />;
  }
}

/** A list item of one paragraph renders without the paragraph's margins. */
function tight(item: Block[]): ReactNode {
  if (item.length === 1 && item[0].t === "para") return inline(item[0].c);
  return item.map(block);
}

function inline(nodes: Inline[]): ReactNode[] {
  return nodes.map((n, i) => {
    switch (n.t) {
      case "text":
        return n.v;
      case "code":
        return <code key={i}>{n.v}</code>;
      case "strong":
        return <strong key={i}>{inline(n.c)}</strong>;
      case "em":
        return <em key={i}>{inline(n.c)}</em>;
      case "del":
        return <del key={i}>{inline(n.c)}</del>;
      case "sub":
        return <sub key={i}>{inline(n.c)}</sub>;
      case "link":
        return (
          <a key={i} href={n.href} target="_blank" rel="noreferrer noopener">
            {inline(n.c)}
          </a>
        );
      case "br":
        return <br key={i} />;
    }
  });
}
