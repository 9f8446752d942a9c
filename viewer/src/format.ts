// Small formatting helpers shared by the pages.
import { ApiError } from "./api";
import { errorLabel } from "./i18n";

/// Epoch µs as `YYYY-MM-DD HH:MM` in the hub's users' time zone (UTC+8); "—" when absent.
export function localTime(us: number | null | undefined): string {
  if (us == null) return "—";
  return new Date(us / 1000 + 8 * 3600_000).toISOString().slice(0, 16).replace("T", " ");
}

/// An error's message for the page: the hub's stable error code in the page's language
/// when it has a translation (with the server's detail where that says more), else the
/// server's message.
export function message(err: unknown): string {
  if (err instanceof ApiError) return errorLabel(err.code, err.message) ?? err.message;
  return err instanceof Error ? err.message : String(err);
}

/// Run `f`; a failure goes to `setError` (for buttons whose action has no form).
export async function attempt(setError: (m: string) => void, f: () => Promise<unknown>): Promise<void> {
  try {
    await f();
  } catch (err) {
    setError(message(err));
  }
}

/// A DICOM date `YYYYMMDD` as `YYYY-MM-DD` (anything else as it is).
export const isoDate = (d: string | null | undefined) =>
  d && /^\d{8}$/.test(d) ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : (d ?? "");

/// The hub's `*_local` times (`2026-11-22T21:00:00+08:00`) as `2026-11-22 21:00`.
export const localStamp = (s: string | null | undefined) => (s ? s.slice(0, 16).replace("T", " ") : "");
