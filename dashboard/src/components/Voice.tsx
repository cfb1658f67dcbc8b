/** Talking to blitz: a header button opening a side panel with push-to-talk, a hands-free
 * toggle, the conversation's transcript, typed commands and yes/no answers. The session
 * (voice.ts) lives as long as the app, so it survives page changes and keeps speaking up while
 * the panel is closed. */
import { useEffect, useRef, useState } from "react";
import type { FormEvent, KeyboardEvent } from "react";
import { VoiceSession, type Entry, type Phase, type VoiceView } from "../voice";
import { voiceUrl } from "../voiceProtocol";
import { Microphone, Player, audioContext } from "../voiceAudio";

const LABEL: Record<Phase, string> = {
  off: "off",
  connecting: "connecting…",
  reconnecting: "reconnecting…",
  "signed-out": "not signed in",
  closed: "closed by blitz",
  "mic-refused": "microphone refused",
  listening: "listening",
  speaking: "speaking",
  thinking: "thinking…",
  error: "error",
  ready: "ready",
};

/** The session, made when the panel first opens and closed when the app goes (log out). */
function useVoiceSession(wanted: boolean): [VoiceSession | null, VoiceView | null] {
  const [started, setStarted] = useState(false);
  const [session, setSession] = useState<VoiceSession | null>(null);
  const [view, setView] = useState<VoiceView | null>(null);
  if (wanted && !started) setStarted(true);
  useEffect(() => {
    if (!started) return;
    const made = new VoiceSession({
      url: voiceUrl(window.location),
      connect: (url) => new WebSocket(url),
      microphone: new Microphone(),
      player: new Player(),
    });
    made.onChange = setView;
    made.start();
    setSession(made);
    return () => made.close();
  }, [started]);
  return [session, view];
}

export function VoiceButton({ open, phase, onClick }: { open: boolean; phase: Phase; onClick: () => void }) {
  return (
    <button
      className={`ghost voice-toggle voice-${phase}${open ? " on" : ""}`}
      data-testid="voice-open"
      aria-pressed={open}
      title="talk to blitz"
      onClick={onClick}
    >
      <span className="dot" /> voice
    </button>
  );
}

/** The header button and the side panel, one component so that they share the session. */
export function Voice() {
  const [open, setOpen] = useState(false);
  const [session, view] = useVoiceSession(open);
  const phase = view?.phase ?? "off";
  return (
    <>
      <VoiceButton
        open={open}
        phase={phase}
        onClick={() => {
          audioContext(); // made (or resumed) on a click, so the answers may play
          setOpen(!open);
        }}
      />
      {session && view && (
        <VoicePanel session={session} view={view} hidden={!open} onClose={() => setOpen(false)} />
      )}
    </>
  );
}

function VoicePanel({
  session,
  view,
  hidden,
  onClose,
}: {
  session: VoiceSession;
  view: VoiceView;
  hidden: boolean;
  onClose: () => void;
}) {
  const [typed, setTyped] = useState("");
  const list = useRef<HTMLOListElement>(null);
  const usable = !["off", "connecting", "reconnecting", "signed-out", "closed"].includes(view.phase);
  const stopped = view.phase === "signed-out" || view.phase === "closed";
  const pressing = view.phase === "listening" && !view.handsFree;

  useEffect(() => {
    list.current?.scrollTo({ top: list.current.scrollHeight });
  }, [view.entries]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    session.sendText(typed);
    setTyped("");
  };
  const key = (e: KeyboardEvent, down: boolean) => {
    if (e.key !== " ") return;
    e.preventDefault();
    if (down && !e.repeat) session.press();
    if (!down) session.release();
  };

  return (
    <aside className="voice-panel" hidden={hidden} data-testid="voice-panel" data-phase={view.phase}>
      <div className="voice-head">
        <h2>Voice</h2>
        <span className={`voice-phase voice-${view.phase}`} data-testid="voice-phase" data-phase={view.phase}>
          <span className="dot" /> {LABEL[view.phase]}
        </span>
        <button className="ghost small" data-testid="voice-close" onClick={onClose} title="close (the session goes on)">
          ×
        </button>
      </div>
      {view.detail && (
        <div className="error-banner small" data-testid="voice-detail">
          {view.detail}
        </div>
      )}
      {stopped && (
        <button className="secondary small" data-testid="voice-reconnect" onClick={() => session.reconnect()}>
          Reconnect
        </button>
      )}
      <ol className="voice-transcript" ref={list} data-testid="voice-transcript">
        {view.entries.length === 0 && (
          <li className="muted small">
            Hold the button (or Space) and say, for example, “start a goal on the api project: add rate
            limiting”, “how is it going?”, “approve the plan”.
          </li>
        )}
        {view.entries.map((entry) => (
          <TranscriptEntry key={entry.n} entry={entry} />
        ))}
      </ol>
      {view.confirm && (
        <div className="voice-confirm" data-testid="voice-confirm">
          <span>{view.confirm}</span>
          <button data-testid="voice-yes" onClick={() => session.answer(true)}>
            Yes
          </button>
          <button className="secondary" data-testid="voice-no" onClick={() => session.answer(false)}>
            No
          </button>
        </div>
      )}
      <div className="voice-controls">
        <button
          className={`voice-talk${pressing ? " pressed" : ""}`}
          data-testid="voice-talk"
          disabled={!usable}
          onPointerDown={(e) => {
            e.currentTarget.setPointerCapture(e.pointerId);
            session.press();
          }}
          onPointerUp={() => session.release()}
          onPointerCancel={() => session.release()}
          onLostPointerCapture={() => session.release()}
          onKeyDown={(e) => key(e, true)}
          onKeyUp={(e) => key(e, false)}
          onBlur={() => session.release()}
        >
          {pressing ? "listening… release to send" : "hold to talk"}
        </button>
        <label className="voice-handsfree">
          <input
            type="checkbox"
            data-testid="voice-handsfree"
            checked={view.handsFree}
            disabled={!usable}
            onChange={(e) => session.setHandsFree(e.target.checked)}
          />
          hands-free
        </label>
      </div>
      <form className="inline-form voice-typed" onSubmit={submit}>
        <input
          data-testid="voice-text"
          placeholder="or type a command"
          value={typed}
          disabled={!usable}
          onChange={(e) => setTyped(e.target.value)}
        />
        <button className="secondary" data-testid="voice-send" disabled={!usable || !typed.trim()}>
          Send
        </button>
      </form>
    </aside>
  );
}

function TranscriptEntry({ entry }: { entry: Entry }) {
  const who = { you: "you", blitz: "blitz", event: "event", error: "error" }[entry.who];
  return (
    <li
      className={`voice-entry voice-entry-${entry.who}`}
      data-testid={`voice-${entry.who}`}
      data-kind={entry.kind}
      data-seconds={entry.seconds?.toFixed(2)}
      data-cut={entry.cut ? "true" : undefined}
    >
      <span className="who">{who}</span>
      <span className="text">{entry.text}</span>
      {entry.seconds !== undefined && entry.seconds > 0 && (
        <span className="muted small" title="speech played">
          {" "}
          · spoken {entry.seconds.toFixed(1)} s{entry.cut ? ", cut off" : ""}
        </span>
      )}
    </li>
  );
}
