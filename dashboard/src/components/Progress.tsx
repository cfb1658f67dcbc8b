/** A progress bar of a goal's tasks, segmented by state. */
const ORDER = ["succeeded", "skipped", "replaced", "cancelled", "running", "failed", "crashed", "ready"];

export function Progress({ done, total, byState }: { done: number; total: number; byState: Record<string, number> }) {
  return (
    <div className="progress" data-testid="progress" title={JSON.stringify(byState)}>
      <div className="progress-bar">
        {total > 0 &&
          ORDER.filter((s) => byState[s]).map((s) => (
            <span key={s} className={`seg fill-${s}`} style={{ width: `${(100 * byState[s]) / total}%` }} />
          ))}
      </div>
      <span className="progress-text">
        {done}/{total}
      </span>
    </div>
  );
}
