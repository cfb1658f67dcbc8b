/** Gate output streamed while gates run, gathered per gate (components/LiveGates.tsx). */

/** Characters of a gate's output kept in the page (its end). */
const KEEP = 200_000;

export interface LiveGate {
  name: string;
  command: string;
  text: string;
  ended: boolean;
}

export interface Update {
  gate: string;
  command: string;
  text: string;
  skipped: number;
  ended: boolean;
}

/** ``gates`` with ``update`` applied: more output for a running gate, or a gate that started. */
export function applyUpdate(gates: LiveGate[], update: Update): LiveGate[] {
  let at = gates.length - 1;
  while (at >= 0 && !(gates[at].name === update.gate && !gates[at].ended)) at -= 1;
  const skipped = update.skipped ? `[… ${update.skipped} bytes left out …]\n` : "";
  if (at < 0) {
    const text = (skipped + update.text).slice(-KEEP);
    return [...gates, { name: update.gate, command: update.command, text, ended: update.ended }];
  }
  const gate = gates[at];
  const next = { ...gate, text: (gate.text + skipped + update.text).slice(-KEEP), ended: update.ended };
  return gates.map((g, i) => (i === at ? next : g));
}
