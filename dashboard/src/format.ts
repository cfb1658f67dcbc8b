/** Small formatting helpers shared by the views. */

export function money(usd: number): string {
  if (usd === 0) return "$0.00";
  if (usd < 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

export function age(seconds: number): string {
  const s = Math.max(0, seconds);
  for (const [unit, size] of [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
  ] as const) {
    if (s >= size) return `${Math.floor(s / size)}${unit}`;
  }
  return `${Math.floor(s)}s`;
}

export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  return age(seconds);
}

export function clock(ts: number): string {
  return new Date(ts * 1000).toLocaleTimeString([], { hour12: false });
}

export function shortSha(sha: string): string {
  return sha.slice(0, 10);
}
