/**
 * The two OpenAI-shaped speech calls: `POST {url}/audio/speech` (Kokoro-compatible: JSON
 * `model`, `voice`, `input`, `response_format`) and `POST {url}/audio/transcriptions`
 * (Whisper-compatible: multipart `file`, `model`). The one place a request to a speech
 * service is sent and its failures become {@link SpeechServiceError}s that say what happened
 * and which setting to look at. A key is sent only as `Authorization: Bearer`, never shown.
 */

import type { SpeechService } from "./config.js";

/** How a speech request failed: the service cannot be reached, did not answer in time,
 * refused the key or the request, or failed itself (5xx). */
export type SpeechFailure = "unreachable" | "timeout" | "unauthorized" | "refused" | "failed";

export class SpeechServiceError extends Error {
  override name = "SpeechServiceError";

  constructor(
    message: string,
    readonly failure: SpeechFailure,
    readonly status = 0,
  ) {
    super(message);
  }
}

/** The formats OpenAI's speech API names; blitz's bundled server makes `wav` and `pcm`. */
export type AudioFormat = "wav" | "mp3" | "opus" | "flac" | "aac" | "pcm";

export async function synthesize(
  service: SpeechService & { readonly voice: string },
  input: string,
  format: AudioFormat,
  timeoutMs = service.timeoutMs,
): Promise<Buffer> {
  const body = JSON.stringify({
    model: service.model,
    voice: service.voice,
    input,
    response_format: format,
  });
  return post(service, "/audio/speech", body, { "Content-Type": "application/json" }, timeoutMs, (r) =>
    r.arrayBuffer().then((data) => Buffer.from(data)),
  );
}

export interface Recording {
  readonly audio: Uint8Array;
  readonly fileName: string;
  readonly mime?: string;
  readonly language?: string;
  readonly prompt?: string;
}

export async function transcribe(
  service: SpeechService,
  recording: Recording,
  timeoutMs = service.timeoutMs,
): Promise<string> {
  const form = new FormData();
  const type = recording.mime ?? "application/octet-stream";
  form.append("file", new Blob([new Uint8Array(recording.audio)], { type }), recording.fileName);
  form.append("model", service.model);
  form.append("response_format", "json");
  if (recording.language) form.append("language", recording.language);
  if (recording.prompt) form.append("prompt", recording.prompt);
  return post(service, "/audio/transcriptions", form, {}, timeoutMs, async (response) => {
    const answer: unknown = await response.json();
    if (!isRecord(answer) || typeof answer["text"] !== "string") {
      throw new SpeechServiceError(
        `the transcription service at ${where(service, "/audio/transcriptions")} answered without a text`,
        "failed",
        response.status,
      );
    }
    return answer["text"].trim();
  });
}

function where(service: SpeechService, path: string): string {
  return service.url + path;
}

async function post<T>(
  service: SpeechService,
  path: string,
  body: string | FormData,
  headers: Record<string, string>,
  timeoutMs: number,
  read: (response: Response) => Promise<T>,
): Promise<T> {
  const url = where(service, path);
  const sent = { ...headers, ...(service.apiKey ? { Authorization: `Bearer ${service.apiKey}` } : {}) };
  // One deadline for the answer and its body: a server that stalls mid-audio is slow too.
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetch(url, { method: "POST", headers: sent, body, signal });
    if (!response.ok) throw await refusal(service, url, response);
    return await read(response);
  } catch (error) {
    if (error instanceof SpeechServiceError) throw error;
    if (signal.aborted) {
      throw new SpeechServiceError(
        `the speech service at ${url} did not answer within ${timeoutMs / 1000}s (${service.setting}; timeoutMs sets the limit)`,
        "timeout",
      );
    }
    throw new SpeechServiceError(
      `cannot reach the speech service at ${url} (${service.setting}): ${cause(error)}`,
      "unreachable",
    );
  }
}

async function refusal(service: SpeechService, url: string, response: Response): Promise<SpeechServiceError> {
  const status = response.status;
  const { message, code } = await said(response);
  const key = service.setting === "speechUrl" ? "speechApiKey" : "transcriptionApiKey";
  if (status === 401 || status === 403) {
    return new SpeechServiceError(
      `the speech service at ${url} refused the key (${status}: ${message}); set ${key}`,
      "unauthorized",
      status,
    );
  }
  if (code === "voice_not_found") {
    return new SpeechServiceError(`the speech service at ${url} says: ${message} (speechVoice)`, "refused", status);
  }
  if (code === "model_not_found" || (status === 404 && /model/i.test(message))) {
    const setting = url.endsWith("/audio/speech") ? "speechModel" : "transcriptionModel";
    return new SpeechServiceError(`the speech service at ${url} says: ${message} (${setting})`, "refused", status);
  }
  if (status === 404) {
    return new SpeechServiceError(
      `no speech API at ${url} (404); ${service.setting} is the API's base, e.g. http://127.0.0.1:8766/v1`,
      "refused",
      status,
    );
  }
  if (status >= 500 || status === 429) {
    return new SpeechServiceError(`the speech service at ${url} failed (${status}: ${message})`, "failed", status);
  }
  return new SpeechServiceError(`the speech service at ${url} refused (${status}: ${message})`, "refused", status);
}

/** What the server said: OpenAI's `{"error": {"message", "code"}}`, FastAPI's `{"detail"}`,
 * or the start of its text. */
async function said(response: Response): Promise<{ message: string; code: string }> {
  const body = (await response.text().catch(() => "")).slice(0, 2000);
  try {
    const parsed: unknown = JSON.parse(body);
    if (isRecord(parsed)) {
      const error = parsed["error"];
      if (isRecord(error) && typeof error["message"] === "string") {
        return { message: error["message"].slice(0, 300), code: typeof error["code"] === "string" ? error["code"] : "" };
      }
      if (typeof parsed["detail"] === "string") return { message: parsed["detail"].slice(0, 300), code: "" };
    }
  } catch {
    // not JSON: its text is the message
  }
  return { message: body.trim().slice(0, 300) || response.statusText, code: "" };
}

/** The root cause of a failed `fetch` (Node's `TypeError: fetch failed` hides it). */
function cause(error: unknown): string {
  let current: unknown = error;
  while (isRecord(current) && current["cause"] !== undefined) current = current["cause"];
  if (isRecord(current) && typeof current["code"] === "string") return current["code"];
  return current instanceof Error ? current.message : String(current);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}
