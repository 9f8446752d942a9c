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

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["x-csrf-token"] = csrf();
  const r = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  const json = text ? JSON.parse(text) : null;
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
