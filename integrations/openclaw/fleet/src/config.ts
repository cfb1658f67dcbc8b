/** The plugin's settings (`plugins.entries.blitz-fleet.config`), read through `api.pluginConfig`. */

export interface FleetConfig {
  /** The daemon's URL. */
  url: string;
  /** The daemon's token; never printed. */
  token: string;
  /** Whether the background service follows the daemon's events. */
  notify: boolean;
}

/** The settings, or a message saying what to set (never the token's value). */
export function readConfig(raw: Record<string, unknown> | undefined): FleetConfig | string {
  const url = typeof raw?.url === "string" ? raw.url.trim() : "";
  const token = typeof raw?.token === "string" ? raw.token.trim() : "";
  const missing = [url ? "" : "url", token ? "" : "token"].filter(Boolean);
  if (missing.length > 0) {
    return (
      `blitz is not set up: set plugins.entries.blitz-fleet.config.${missing.join(" and ")} ` +
      "(the URL and token `blitz serve` prints)."
    );
  }
  if (!/^https?:\/\//.test(url)) {
    return `blitz's url must start with http:// or https://, not ${JSON.stringify(url)}.`;
  }
  return { url, token, notify: raw?.notify !== false };
}
