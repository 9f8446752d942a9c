// The dxhub HTTP API from the browser: the session cookie (HttpOnly, SameSite=Strict) is
// sent by the browser; writes carry the CSRF token from the `dxhub_csrf` cookie.
export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

function csrf(): string {
  const m = document.cookie.match(/(?:^|;\s*)dxhub_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

const REQUEST_TIMEOUT_MS = 60_000;

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["x-csrf-token"] = csrf();
  // a request on a dead mobile link must not hang for many minutes: 60 s, then "timeout"
  let r: Response;
  try {
    r = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    const timedOut = err instanceof DOMException && err.name === "TimeoutError";
    throw new ApiError(0, timedOut ? "timeout" : "network", String((err as Error)?.message ?? err));
  }
  const text = await r.text();
  // (a proxy's HTML error page is not JSON)
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    if (r.ok) throw new ApiError(r.status, "bad-response", "the answer is not JSON");
  }
  if (!r.ok) {
    const e = json?.error ?? {};
    throw new ApiError(r.status, e.code ?? String(r.status), e.message ?? r.statusText);
  }
  return json as T;
}

export interface Me {
  user: { id: number; login: string; role: string; institution_name?: string };
  totp_enrolled: boolean;
  totp_required: boolean;
}

export interface WorkItem {
  id: number;
  study_instance_uid: string;
  pool_id: number | null;
  priority: "stat" | "urgent" | "routine";
  state: string;
  critical: boolean;
  claimed_by: number | null;
  claimed_by_login: string | null;
  due_in_s: number;
  overdue: boolean;
  due_at_local: string;
  patient_name: string | null;
  patient_id: string | null;
  patient_sex: string | null;
  study_description: string | null;
  institution_name: string | null;
  modality: string | null;
}
