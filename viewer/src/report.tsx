// The report editor of the reading page: template sections and structured fields, the
// ECG machine values to confirm or edit, QC grade, critical value, autosave (every save a
// version), normal quick-fill, submit, and signing with re-authentication; the template
// picker (the alliance's templates of the study's kind and modality), return with a reason
// (a senior reader), signed addenda, and the version history (who, when, why).
import { useEffect, useRef, useState } from "preact/hooks";
import { localStamp, message } from "./format";
import { api, ApiError } from "./api";
import { lang, t, type Key } from "./i18n";
import { clearDraft, readDraft, sameContent, writeDraft, type DraftContent, type LocalDraft } from "./drafts";

interface SectionDef {
  key: string;
  label: string;
  label_en: string;
  normal: string;
}
interface FieldDef {
  key: string;
  label: string;
  label_en: string;
  required: boolean;
  normal?: string | null;
  kind: { type: "text" | "number" | "choice" | "bool"; unit?: string; options?: string[] };
}
interface Template {
  code: string;
  name: string;
  name_en: string;
  modality?: string[];
  kind: "imaging" | "ecg";
  sections: SectionDef[];
  fields: FieldDef[];
}
interface Machine {
  key: string;
  label: string;
  value: string | null;
  unit: string;
}
interface Prefill {
  template: Template;
  normal: { sections: Record<string, string>; fields: Record<string, string> };
  machine: Machine[] | null;
  report: { id: number; current_version: number; state: string } | null;
}
interface Version {
  version: number;
  kind: string;
  state: string;
  author_login: string;
  written_at_local?: string;
  submitted_at_local?: string;
  signed_at_local?: string;
  returned_at_local?: string;
  returned_at?: number | null;
  returned_by?: number | null;
  returned_by_login?: string | null;
  reason?: string | null;
  verifier_login?: string | null;
  superseded_at?: number | null;
}
interface Addendum {
  id: number;
  version: number;
  text: string;
  author_login: string;
  signed_at: number;
}
interface Detail {
  report: {
    id: number;
    state: string;
    current_version: number;
    signed_version: number | null;
    author_id: number;
    author_login: string;
    template_code: string;
  };
  current: any;
  versions: Version[];
  addenda: Addendum[];
}
interface ItemEvent {
  kind: string;
  actor: string | null;
  created_at: number;
}
interface Category {
  code: string;
  label: string;
  label_en: string;
  kind: string;
}

const label = (x: { label: string; label_en: string }) => (lang.get() === "en" ? x.label_en : x.label);
/// An API time (µs since the epoch) in Beijing time.
const fmtUs = (us: number) =>
  new Date(us / 1000).toLocaleString(lang.get() === "en" ? "en-GB" : "zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
const stateLabel = (s: string) => t(`st_${s === "draft" ? "drafted" : s}` as Key);

/// The version history of a report: each version with its author, times, who returned it
/// and why, who signed it; then the signed addenda.
function History({ detail, events }: { detail: Detail; events: ItemEvent[] }) {
  const returner = (v: Version) => {
    if (v.returned_at == null) return "";
    if (v.returned_by_login) return v.returned_by_login;
    // (hubs before returned_by_login: the worklist event of the return carries the login)
    // the worklist event of the return carries the login (the version only the user id)
    const e = events
      .filter((x) => x.kind === "returned")
      .sort((a, b) => Math.abs(a.created_at - v.returned_at!) - Math.abs(b.created_at - v.returned_at!))[0];
    // (the event's actor is "user:LOGIN")
    return e?.actor?.replace(/^user:/, "") ?? (v.returned_by != null ? `#${v.returned_by}` : "");
  };
  return (
    <details class="history" open>
      <summary>{t("history")}</summary>
      <ol>
        {[...detail.versions].reverse().map((v) => (
          <li data-version={v.version} data-vstate={v.state}>
            <strong>v{v.version}</strong> · {stateLabel(v.state)}
            {v.kind === "correction" ? ` · ${t("correction")}` : ""} · {v.author_login} · {localStamp(v.written_at_local)}
            {v.submitted_at_local && (
              <div>
                {t("submitted_at")} {localStamp(v.submitted_at_local)}
              </div>
            )}
            {v.returned_at_local && (
              <div class="returned" data-returned-by={returner(v)}>
                {t("returned_by")} {returner(v)} · {localStamp(v.returned_at_local)}：{v.reason}
              </div>
            )}
            {v.signed_at_local && (
              <div>
                {t("signed_by")} {v.verifier_login} · {localStamp(v.signed_at_local)}
              </div>
            )}
            {v.superseded_at != null && <div>{t("superseded")}</div>}
          </li>
        ))}
      </ol>
      {detail.addenda.length > 0 && (
        <ul class="addenda">
          {detail.addenda.map((a) => (
            <li data-addendum={a.id}>
              <strong>{t("addendum")}</strong> (v{a.version}) · {a.author_login} · {fmtUs(a.signed_at)}
              <div class="addendum-text">{a.text}</div>
            </li>
          ))}
        </ul>
      )}
    </details>
  );
}

export function ReportEditor({ itemId }: { itemId: number }) {
  const [pre, setPre] = useState<Prefill | null>(null);
  const [sections, setSections] = useState<Record<string, string>>({});
  const [fields, setFields] = useState<Record<string, string>>({});
  const [confirmed, setConfirmed] = useState<string[]>([]);
  const [qc, setQc] = useState("");
  const [critical, setCritical] = useState(false);
  const [category, setCategory] = useState("");
  const [categories, setCategories] = useState<Category[]>([]);
  const [reportId, setReportId] = useState<number | null>(null);
  const [version, setVersion] = useState<number | null>(null);
  const [state, setState] = useState("");
  const [status, setStatus] = useState("");
  const [signing, setSigning] = useState(false);
  const [password, setPassword] = useState("");
  const [totp, setTotp] = useState("");
  const [me, setMe] = useState<{ id: number; role: string } | null>(null);
  const [templates, setTemplates] = useState<Template[]>([]);
  const [modality, setModality] = useState<string | null>(null);
  const [detail, setDetail] = useState<Detail | null>(null);
  const [events, setEvents] = useState<ItemEvent[]>([]);
  const [returning, setReturning] = useState(false);
  const [reason, setReason] = useState("");
  const [adding, setAdding] = useState(false);
  const [addendum, setAddendum] = useState("");
  // unsaved text this workstation kept for the item (see drafts.ts), offered back once
  const [offer, setOffer] = useState<LocalDraft | null>(null);
  // the item whose report is loaded: drafts are written and removed for it only
  const loadedItem = useRef<number | null>(null);
  // Edits made, and how many of them the last successful save covered: text typed while a
  // save is on its way stays unsaved (and is saved next) instead of being marked saved.
  const edits = useRef(0);
  const savedEdits = useRef(0);
  const isDirty = () => edits.current !== savedEdits.current;
  // the version the next save builds on (state lags behind a save's answer)
  const versionRef = useRef<number | null>(null);
  const setVer = (v: number | null) => {
    versionRef.current = v;
    setVersion(v);
  };
  // one save at a time: a second waits for the first and then sends what is on screen
  const inFlight = useRef<Promise<{ id: number; version: number } | null> | null>(null);

  const detailSeq = useRef(0);
  /// The report with its versions and addenda, and the work item's events (who returned);
  /// `full`: also the editor's state and version (not after an autosave, which a submit
  /// may follow before this answer comes). An answer overtaken by a later call is dropped.
  const reloadDetail = async (id: number, full = true) => {
    const seq = ++detailSeq.current;
    const [d, item] = await Promise.all([
      api<Detail>("GET", `/api/v1/reports/${id}`),
      api<{ events?: ItemEvent[] }>("GET", `/api/v1/worklist/${itemId}`).catch(() => ({ events: [] })),
    ]);
    if (seq !== detailSeq.current) return d;
    setDetail(d);
    setEvents(item.events ?? []);
    if (full) {
      setState(d.report.state);
      setVer(d.current?.version ?? d.report.current_version);
    }
    return d;
  };

  useEffect(() => {
    loadedItem.current = null;
    setOffer(null);
    (async () => {
      try {
        let p = await api<Prefill>("GET", `/api/v1/worklist/${itemId}/report-prefill`);
        const [who, item, tl] = await Promise.all([
          api<{ user: { id: number; role: string } }>("GET", "/api/v1/auth/me"),
          api<{ modality: string | null; events?: ItemEvent[] }>("GET", `/api/v1/worklist/${itemId}`).catch(() => null),
          api<{ templates: { code: string; enabled: boolean; definition: Template }[] }>("GET", "/api/v1/report-templates"),
        ]);
        setMe(who.user);
        setModality(item?.modality ?? null);
        setTemplates(tl.templates.filter((x) => x.enabled).map((x) => x.definition));
        // a draft saved with another template than the exam's: edit it in that template
        let r: any = null;
        if (p.report) {
          r = await api<any>("GET", `/api/v1/reports/${p.report.id}`);
          if (r.report.template_code && r.report.template_code !== p.template.code) {
            p = await api<Prefill>(
              "GET",
              `/api/v1/worklist/${itemId}/report-prefill?template=${encodeURIComponent(r.report.template_code)}`,
            );
          }
        }
        setPre(p);
        const cats = await api<{ categories: Category[] }>("GET", "/api/v1/critical-categories");
        setCategories(cats.categories.filter((c) => c.kind === p.template.kind));
        // machine values start as the field values, unconfirmed
        const f: Record<string, string> = {};
        for (const m of p.machine ?? []) if (m.value != null) f[m.key] = m.value;
        setFields(f);
        // what the hub has, as the editor shows it (to compare a kept draft with)
        const cur0 = p.report && r ? r.current : null;
        const onHub: DraftContent = {
          template_code: p.template.code,
          sections: cur0?.body?.sections ?? {},
          fields: { ...f, ...(cur0?.body?.fields ?? {}) },
          confirmed: Array.isArray(cur0?.confirmations) ? cur0.confirmations : [],
          qc: cur0?.qc_grade ?? "",
          critical: !!cur0?.critical,
          category: cur0?.critical_category ?? "",
        };
        const kept = readDraft(who.user.id, itemId);
        const editable = !(r && ["submitted", "signed"].includes(r.report.state));
        if (kept && (!editable || sameContent(kept, onHub))) clearDraft(who.user.id, itemId);
        else if (kept) setOffer(kept);
        loadedItem.current = itemId;
        if (p.report && r) {
          setDetail(r);
          setEvents(item?.events ?? []);
          const cur = r.current;
          setReportId(p.report.id);
          setVer(cur?.version ?? p.report.current_version);
          setState(r.report.state);
          if (cur?.body) {
            setSections(cur.body.sections ?? {});
            setFields({ ...f, ...(cur.body.fields ?? {}) });
          }
          setConfirmed(Array.isArray(cur?.confirmations) ? cur.confirmations : []);
          setQc(cur?.qc_grade ?? "");
          setCritical(!!cur?.critical);
          setCategory(cur?.critical_category ?? "");
        }
      } catch (err) {
        setStatus(message(err));
      }
    })();
  }, [itemId]);

  const body = () => ({
    template_code: pre!.template.code,
    sections,
    fields,
    confirmed,
    ...(versionRef.current != null ? { base_version: versionRef.current } : {}),
    ...(qc ? { qc_grade: qc } : {}),
    critical,
    ...(critical && category ? { critical_category: category } : {}),
  });

  const bodyRef = useRef(body);
  bodyRef.current = body;

  const saveOnce = async (): Promise<{ id: number; version: number } | null> => {
    if (!pre) return null;
    const upto = edits.current;
    try {
      const r = await api<{ report: { id: number; state: string }; version: { version: number } }>(
        "POST",
        `/api/v1/worklist/${itemId}/report`,
        bodyRef.current(),
      );
      savedEdits.current = Math.max(savedEdits.current, upto);
      setReportId(r.report.id);
      setVer(r.version.version);
      setState(r.report.state);
      setStatus(`${t("saved")} v${r.version.version}`);
      reloadDetail(r.report.id, false).catch(() => undefined);
      return { id: r.report.id, version: r.version.version };
    } catch (err) {
      if (err instanceof ApiError && err.code === "stale-version" && reportId != null) {
        // saved meanwhile (another tab, an earlier save): build on the newest version,
        // keeping the text on screen, which the next save sends
        const d = await reloadDetail(reportId, false).catch(() => null);
        if (d) versionRef.current = d.current?.version ?? d.report.current_version;
        setStatus(`${message(err)} · ${t("kept_text")}`);
        return null;
      }
      setStatus(message(err));
      return null;
    }
  };

  const save = async (): Promise<{ id: number; version: number } | null> => {
    while (inFlight.current) await inFlight.current.catch(() => null);
    const p = saveOnce();
    inFlight.current = p;
    try {
      return await p;
    } finally {
      if (inFlight.current === p) inFlight.current = null;
    }
  };

  // unsaved text is kept on this workstation until a save covers it
  useEffect(() => {
    if (!pre || !me || loadedItem.current !== itemId) return;
    if (isDirty()) {
      writeDraft({
        user: me.id,
        item: itemId,
        base_version: versionRef.current,
        template_code: pre.template.code,
        sections,
        fields,
        confirmed,
        qc,
        critical,
        category,
        at: Date.now(),
      });
    } else if (!offer) {
      clearDraft(me.id, itemId);
    }
  });
  /// Put the kept draft into the editor (in its template); the autosave then stores it
  /// on the newest version.
  const restoreDraft = async () => {
    const d = offer;
    if (!d || !pre) return;
    let p = pre;
    if (d.template_code !== pre.template.code) {
      try {
        p = await api<Prefill>(
          "GET",
          `/api/v1/worklist/${itemId}/report-prefill?template=${encodeURIComponent(d.template_code)}`,
        );
      } catch (err) {
        setStatus(message(err));
        return;
      }
    }
    edits.current++;
    setPre(p);
    setSections(d.sections ?? {});
    setFields(d.fields ?? {});
    setConfirmed(d.confirmed ?? []);
    setQc(d.qc ?? "");
    setCritical(!!d.critical);
    setCategory(d.category ?? "");
    setOffer(null);
    setStatus(t("draft_restored"));
  };
  const discardDraft = () => {
    if (me) clearDraft(me.id, itemId);
    setOffer(null);
  };

  // autosave two seconds after the last edit
  useEffect(() => {
    if (!isDirty()) return;
    const id = setTimeout(save, 2000);
    return () => clearTimeout(id);
  });
  // leaving with unsaved text: the browser asks first; the editor going away saves it
  const saveRef = useRef(save);
  saveRef.current = save;
  useEffect(() => {
    const warn = (e: BeforeUnloadEvent) => {
      if (!isDirty()) return;
      e.preventDefault();
      e.returnValue = "";
    };
    window.addEventListener("beforeunload", warn);
    return () => {
      window.removeEventListener("beforeunload", warn);
      if (isDirty()) saveRef.current().catch(() => undefined);
    };
  }, []);
  // one action at a time (a double click sends one submit, one signature)
  const [busy, setBusy] = useState(false);
  const busyRef = useRef(false);
  const once =
    <A extends unknown[]>(f: (...a: A) => Promise<unknown>) =>
    async (...a: A) => {
      const ev = a[0] as Event | undefined;
      if (ev && typeof ev.preventDefault === "function") ev.preventDefault();
      if (busyRef.current) return;
      busyRef.current = true;
      setBusy(true);
      try {
        await f(...a);
      } finally {
        busyRef.current = false;
        setBusy(false);
      }
    };

  const edit = <T,>(set: (v: T) => void) => (v: T) => {
    edits.current++;
    set(v);
  };

  const normalFill = () => {
    if (!pre) return;
    edits.current++;
    setSections({ ...pre.normal.sections });
    setFields((f) => ({ ...pre.normal.fields, ...f }));
  };

  const submit = async () => {
    // after any save on its way, which may have moved the version
    await inFlight.current?.catch(() => null);
    const saved =
      isDirty() || versionRef.current == null || reportId == null
        ? await save()
        : { id: reportId, version: versionRef.current };
    if (saved == null) return;
    try {
      const r = await api<{ report: { state: string } }>("POST", `/api/v1/reports/${saved.id}/submit`, {
        version: saved.version,
      });
      await reloadDetail(saved.id).catch(() => undefined);
      setState(r.report.state);
      setStatus(t("submitted_ok"));
    } catch (err) {
      setStatus(message(err));
    }
  };

  const sign = async (e: Event) => {
    e.preventDefault();
    if (reportId == null || version == null) return;
    try {
      const r = await api<{ report: { state: string }; fingerprint: string }>("POST", `/api/v1/reports/${reportId}/sign`, {
        version,
        password,
        totp,
      });
      await reloadDetail(reportId).catch(() => undefined);
      setState(r.report.state);
      setSigning(false);
      setPassword("");
      setTotp("");
      setStatus(`${t("signed_ok")} ${r.fingerprint}`);
    } catch (err) {
      setStatus(message(err));
    }
  };

  /// Switch the draft to another template: its sections and fields (the text of sections
  /// both have is kept); the next save stores the draft under the new template.
  const switchTemplate = async (code: string) => {
    if (!pre || code === pre.template.code) return;
    try {
      const p = await api<Prefill>("GET", `/api/v1/worklist/${itemId}/report-prefill?template=${encodeURIComponent(code)}`);
      const keepS: Record<string, string> = {};
      for (const sec of p.template.sections) if (sections[sec.key] != null) keepS[sec.key] = sections[sec.key];
      const allowed = new Set([...p.template.fields.map((f) => f.key), ...(p.machine ?? []).map((m) => m.key)]);
      const keepF: Record<string, string> = {};
      for (const [k, v] of Object.entries(fields)) if (allowed.has(k)) keepF[k] = v;
      edits.current++;
      setPre(p);
      setSections(keepS);
      setFields(keepF);
      setStatus(`${t("template_switched")} ${lang.get() === "en" ? p.template.name_en : p.template.name}`);
    } catch (err) {
      setStatus(message(err));
    }
  };

  const returnReport = async (e: Event) => {
    e.preventDefault();
    if (reportId == null || version == null) return;
    try {
      await api("POST", `/api/v1/reports/${reportId}/return`, { version, reason });
      setReturning(false);
      setReason("");
      await reloadDetail(reportId);
      setStatus(t("returned_ok"));
    } catch (err) {
      setStatus(message(err));
    }
  };

  const addAddendum = async (e: Event) => {
    e.preventDefault();
    const signed = detail?.report.signed_version;
    if (reportId == null || signed == null) return;
    try {
      await api("POST", `/api/v1/reports/${reportId}/addenda`, { version: signed, text: addendum, password, totp });
      setAdding(false);
      setAddendum("");
      setPassword("");
      setTotp("");
      await reloadDetail(reportId);
      setStatus(t("addendum_ok"));
    } catch (err) {
      setStatus(message(err));
    }
  };

  if (!pre) return <aside class="report">{status || t("loading")}</aside>;
  const machine = pre.machine ?? [];
  const machineKeys = new Set(machine.map((m) => m.key));
  const qcOptions = pre.template.kind === "ecg" ? ["acceptable", "unacceptable"] : ["jia", "yi", "bing"];
  const locked = state === "submitted" || state === "signed";
  // the alliance's templates of this kind that apply to the study's modality
  const mods = (modality ?? "").split(/[\\,\s]+/).filter(Boolean);
  const choices = templates.filter(
    (x) =>
      x.kind === pre.template.kind &&
      (x.code === pre.template.code || !x.modality?.length || !mods.length || mods.some((m) => x.modality!.includes(m))),
  );
  if (!choices.some((x) => x.code === pre.template.code)) choices.unshift(pre.template);
  const author = detail?.report.author_id;
  const senior = me?.role === "senior_reader";
  const canReturn = state === "submitted" && senior && author != null && me?.id !== author;
  const canAddendum = state === "signed" && detail?.report.signed_version != null && (senior || me?.id === author);
  return (
    <aside class="report" data-state={state} data-template={pre.template.code}>
      <h3>
        {lang.get() === "en" ? pre.template.name_en : pre.template.name}
        {state && <span class="rstate"> · {stateLabel(state)}</span>}
      </h3>
      {offer && !locked && (
        <div class="local-draft" role="alert" data-base-version={offer.base_version ?? ""}>
          {t("local_draft")} ({new Date(offer.at).toLocaleString(lang.get())})
          {offer.base_version != null && version != null && offer.base_version < version ? ` ${t("local_draft_older")}` : ""}{" "}
          <button type="button" class="restore-draft" onClick={restoreDraft}>
            {t("restore_draft")}
          </button>{" "}
          <button type="button" class="discard-draft" onClick={discardDraft}>
            {t("discard_draft")}
          </button>
        </div>
      )}
      <label class="field template-picker">
        {t("template")}
        <select name="template" value={pre.template.code} disabled={locked} onChange={(e) => switchTemplate(e.currentTarget.value)}>
          {choices.map((x) => (
            <option value={x.code}>{lang.get() === "en" ? x.name_en : x.name}</option>
          ))}
        </select>
      </label>
      <button type="button" class="normal-fill" onClick={normalFill} disabled={locked}>
        {t("normal_fill")}
      </button>
      {machine.length > 0 && (
        <table class="machine">
          <thead>
            <tr>
              <th>{t("machine_value")}</th>
              <th>{t("value")}</th>
              <th>{t("confirm")}</th>
            </tr>
          </thead>
          <tbody>
            {machine.map((m) => (
              <tr data-machine={m.key}>
                <td>{m.label}</td>
                <td>
                  <input
                    value={fields[m.key] ?? ""}
                    disabled={locked}
                    onInput={(e) => edit(setFields)({ ...fields, [m.key]: e.currentTarget.value })}
                  />{" "}
                  {m.unit}
                  {m.value != null && fields[m.key] !== m.value && <small class="edited"> ({t("edited")}: {m.value})</small>}
                </td>
                <td>
                  <input
                    type="checkbox"
                    name={`confirm-${m.key}`}
                    checked={confirmed.includes(m.key)}
                    disabled={locked}
                    onChange={(e) =>
                      edit(setConfirmed)(
                        e.currentTarget.checked ? [...confirmed, m.key] : confirmed.filter((k) => k !== m.key),
                      )
                    }
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pre.template.fields
        .filter((f) => !machineKeys.has(f.key))
        .map((f) => (
          <label class="field">
            {label(f)}
            {f.kind.type === "choice" ? (
              <select name={f.key} value={fields[f.key] ?? ""} disabled={locked} onChange={(e) => edit(setFields)({ ...fields, [f.key]: e.currentTarget.value })}>
                <option value="" />
                {(f.kind.options ?? []).map((o) => (
                  <option value={o}>{o}</option>
                ))}
              </select>
            ) : f.kind.type === "bool" ? (
              <input type="checkbox" name={f.key} checked={fields[f.key] === "true"} disabled={locked} onChange={(e) => edit(setFields)({ ...fields, [f.key]: String(e.currentTarget.checked) })} />
            ) : (
              <input name={f.key} value={fields[f.key] ?? ""} disabled={locked} onInput={(e) => edit(setFields)({ ...fields, [f.key]: e.currentTarget.value })} />
            )}
            {f.kind.unit ? ` ${f.kind.unit}` : ""}
          </label>
        ))}
      {pre.template.sections.map((s) => (
        <label class="section">
          {label(s)}
          <textarea name={`section-${s.key}`} rows={4} value={sections[s.key] ?? ""} disabled={locked} onInput={(e) => edit(setSections)({ ...sections, [s.key]: e.currentTarget.value })} />
        </label>
      ))}
      <label class="field">
        {t("qc_grade")}
        <select name="qc" value={qc} disabled={locked} onChange={(e) => edit(setQc)(e.currentTarget.value)}>
          <option value="" />
          {qcOptions.map((o) => (
            <option value={o}>{t(`qc_${o}` as any)}</option>
          ))}
        </select>
      </label>
      <label class="field">
        <input type="checkbox" name="critical" checked={critical} disabled={locked} onChange={(e) => edit(setCritical)(e.currentTarget.checked)} />
        {t("critical_value")}
        {critical && (
          <select name="critical_category" value={category} disabled={locked} onChange={(e) => edit(setCategory)(e.currentTarget.value)}>
            <option value="" />
            {categories.map((c) => (
              <option value={c.code}>{label(c)}</option>
            ))}
          </select>
        )}
      </label>
      <div class="actions">
        <button type="button" class="save" onClick={once(save)} disabled={locked || busy}>{t("save")}</button>
        <button type="button" class="submit" onClick={once(submit)} disabled={locked || busy}>{t("submit")}</button>
        {state === "submitted" && (
          <button type="button" class="sign" onClick={() => setSigning(true)}>{t("sign")}</button>
        )}
        {canReturn && (
          <button type="button" class="return" onClick={() => setReturning(true)}>{t("return")}</button>
        )}
        {canAddendum && (
          <button type="button" class="add-addendum" onClick={() => setAdding(true)}>{t("addendum_add")}</button>
        )}
        {reportId != null && version != null && (
          <a class="pdf" href={`/api/v1/reports/${reportId}/pdf?version=${version}`} target="_blank" rel="noopener">
            {t("pdf_preview")}
          </a>
        )}
      </div>
      {signing && (
        <form class="reauth" onSubmit={once(sign)}>
          <p>{t("reauth_hint")}</p>
          <input name="sign-password" type="password" autocomplete="current-password" placeholder={t("password")} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          <input name="sign-totp" inputMode="numeric" placeholder={t("totp")} value={totp} onInput={(e) => setTotp(e.currentTarget.value)} />
          <button type="submit" disabled={busy}>{t("sign")}</button>
        </form>
      )}
      {returning && (
        <form class="reauth return-form" onSubmit={once(returnReport)}>
          <label class="section">
            {t("return_reason")}
            <textarea name="return-reason" rows={3} required value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={busy || !reason.trim()}>{t("return")}</button>
        </form>
      )}
      {adding && (
        <form class="reauth addendum-form" onSubmit={once(addAddendum)}>
          <label class="section">
            {t("addendum")}
            <textarea name="addendum-text" rows={3} required value={addendum} onInput={(e) => setAddendum(e.currentTarget.value)} />
          </label>
          <p>{t("reauth_hint_addendum")}</p>
          <input name="addendum-password" type="password" autocomplete="current-password" placeholder={t("password")} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          <input name="addendum-totp" inputMode="numeric" placeholder={t("totp")} value={totp} onInput={(e) => setTotp(e.currentTarget.value)} />
          <button type="submit" disabled={busy || !addendum.trim()}>{t("addendum_sign")}</button>
        </form>
      )}
      {detail && <History detail={detail} events={events} />}
      {status && <p class="status" role="status">{status}</p>}
    </aside>
  );
}
