// Small formatting helpers shared by the pages.

/// Epoch µs as `YYYY-MM-DD HH:MM` in the hub's users' time zone (UTC+8); "—" when absent.
export function localTime(us: number | null | undefined): string {
  if (us == null) return "—";
  return new Date(us / 1000 + 8 * 3600_000).toISOString().slice(0, 16).replace("T", " ");
}

/// An error's message for the page.
export function message(err: unknown): string {
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
