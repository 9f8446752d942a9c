// A server-sent event stream that comes back after failures.
import { useEffect, useRef, useState } from "preact/hooks";

/// Follow the SSE stream at `url`: `onEvent` for every event (of `kinds`, or unnamed) and
/// after each reconnection (what was missed is reloaded). The browser reconnects by itself
/// after a dropped connection, but not after an error answer (a 401 once the session idled
/// out, a 502 from a proxy): then a new stream is opened after a backoff (5 s, doubling to
/// 60 s, with jitter), and `poll` (if given) reloads meanwhile. Returns whether it is live.
export function useLiveEvents(url: string, kinds: string[], onEvent: () => void, pollMs = 30_000): boolean {
  const [live, setLive] = useState(false);
  const cb = useRef(onEvent);
  cb.current = onEvent;
  useEffect(() => {
    let es: EventSource | null = null;
    let retry: number | undefined;
    let poll: number | undefined;
    let delay = 5000;
    let stopped = false;
    let opened = false;
    const fire = () => cb.current();
    const down = () => {
      setLive(false);
      if (poll === undefined && pollMs > 0) poll = window.setInterval(fire, pollMs);
    };
    const open = () => {
      es = new EventSource(url);
      es.onopen = () => {
        setLive(true);
        delay = 5000;
        if (poll !== undefined) {
          clearInterval(poll);
          poll = undefined;
        }
        if (opened) fire(); // back after a break: catch up
        opened = true;
      };
      es.onerror = () => {
        down();
        if (es && es.readyState === EventSource.CLOSED && !stopped) {
          es.close();
          retry = window.setTimeout(open, delay + Math.random() * 1000);
          delay = Math.min(delay * 2, 60_000);
        }
      };
      es.onmessage = fire;
      for (const k of kinds) es.addEventListener(k, fire);
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(retry);
      clearInterval(poll);
      es?.close();
    };
  }, [url]);
  return live;
}
