// Report text not yet saved on the hub, kept on this workstation (localStorage) while a
// save cannot get through: a dead link, a closed tab, a crashed browser or a power cut
// does not lose what the reader typed. One entry per user and work item, written on every edit
// that is not saved yet and removed once a save covers it. The editor offers it back
// (restore or discard) when it differs from the report on the hub; entries older than three days are dropped, and logging out
// removes them all (patient data does not stay on a shared workstation).

export interface DraftContent {
  template_code: string;
  sections: Record<string, string>;
  fields: Record<string, string>;
  confirmed: string[];
  qc: string;
  critical: boolean;
  category: string;
}

export interface LocalDraft extends DraftContent {
  user: number;
  item: number;
  /// The report version the text was written on (null: no report yet).
  base_version: number | null;
  /// When it was written (ms since the epoch).
  at: number;
}

const PREFIX = "dxhub.draft.";
const MAX_AGE_MS = 72 * 3600 * 1000;

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null; // storage disabled: the editor works as before, without the safety net
  }
}

const keyOf = (user: number, item: number) => `${PREFIX}${user}.${item}`;

/// The draft a user keeps for a work item, if any and not too old.
export function readDraft(user: number, item: number): LocalDraft | null {
  const s = storage();
  const key = keyOf(user, item);
  const raw = s?.getItem(key);
  if (!raw) return null;
  try {
    const d = JSON.parse(raw) as LocalDraft;
    if (d.user !== user || d.item !== item || typeof d.at !== "number" || Date.now() - d.at > MAX_AGE_MS) {
      s!.removeItem(key);
      return null;
    }
    return d;
  } catch {
    s!.removeItem(key);
    return null;
  }
}

export function writeDraft(d: LocalDraft): void {
  try {
    storage()?.setItem(keyOf(d.user, d.item), JSON.stringify(d));
  } catch {
    // full or disabled: the hub's autosave is the record
  }
}

export function clearDraft(user: number, item: number): void {
  storage()?.removeItem(keyOf(user, item));
}

/// At logout: every kept draft (they hold patient data).
export function clearAllDrafts(): void {
  const s = storage();
  if (!s) return;
  const keys: string[] = [];
  for (let i = 0; i < s.length; i++) {
    const k = s.key(i);
    if (k?.startsWith(PREFIX)) keys.push(k);
  }
  for (const k of keys) s.removeItem(k);
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .filter((k) => o[k] !== "" && o[k] != null)
        .sort()
        .map((k) => [k, canonical(o[k])]),
    );
  }
  return v;
}

/// Whether two editor states say the same (empty values count as absent).
export function sameContent(a: DraftContent, b: DraftContent): boolean {
  const pick = (x: DraftContent) => ({
    template_code: x.template_code,
    sections: x.sections,
    fields: x.fields,
    confirmed: [...x.confirmed].sort(),
    qc: x.qc,
    critical: x.critical,
    category: x.critical ? x.category : "",
  });
  return JSON.stringify(canonical(pick(a))) === JSON.stringify(canonical(pick(b)));
}
