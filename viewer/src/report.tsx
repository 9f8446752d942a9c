// The report editor of the reading page: template sections and structured fields, the
// ECG machine values to confirm or edit, QC grade, critical value, autosave (every save a
// version), normal quick-fill, submit, and signing with re-authentication.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError } from "./api";
import { lang, t } from "./i18n";

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
interface Category {
  code: string;
  label: string;
  label_en: string;
  kind: string;
}

const label = (x: { label: string; label_en: string }) => (lang.get() === "en" ? x.label_en : x.label);

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
  const dirty = useRef(false);

  useEffect(() => {
    (async () => {
      try {
        const p = await api<Prefill>("GET", `/api/v1/worklist/${itemId}/report-prefill`);
        setPre(p);
        const cats = await api<{ categories: Category[] }>("GET", "/api/v1/critical-categories");
        setCategories(cats.categories.filter((c) => c.kind === p.template.kind));
        // machine values start as the field values, unconfirmed
        const f: Record<string, string> = {};
        for (const m of p.machine ?? []) if (m.value != null) f[m.key] = m.value;
        setFields(f);
        if (p.report) {
          const r = await api<any>("GET", `/api/v1/reports/${p.report.id}`);
          const cur = r.current;
          setReportId(p.report.id);
          setVersion(cur?.version ?? p.report.current_version);
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
        setStatus(err instanceof Error ? err.message : String(err));
      }
    })();
  }, [itemId]);

  const body = () => ({
    template_code: pre!.template.code,
    sections,
    fields,
    confirmed,
    ...(version != null ? { base_version: version } : {}),
    ...(qc ? { qc_grade: qc } : {}),
    critical,
    ...(critical && category ? { critical_category: category } : {}),
  });

  const save = async (): Promise<{ id: number; version: number } | null> => {
    if (!pre) return null;
    try {
      const r = await api<{ report: { id: number; state: string }; version: { version: number } }>(
        "POST",
        `/api/v1/worklist/${itemId}/report`,
        body(),
      );
      dirty.current = false;
      setReportId(r.report.id);
      setVersion(r.version.version);
      setState(r.report.state);
      setStatus(`${t("saved")} v${r.version.version}`);
      return { id: r.report.id, version: r.version.version };
    } catch (err) {
      setStatus(err instanceof Error ? err.message : String(err));
      return null;
    }
  };

  // autosave two seconds after the last edit
  useEffect(() => {
    if (!dirty.current) return;
    const id = setTimeout(save, 2000);
    return () => clearTimeout(id);
  });
  const edit = <T,>(set: (v: T) => void) => (v: T) => {
    dirty.current = true;
    set(v);
  };

  const normalFill = () => {
    if (!pre) return;
    dirty.current = true;
    setSections({ ...pre.normal.sections });
    setFields((f) => ({ ...pre.normal.fields, ...f }));
  };

  const submit = async () => {
    const saved =
      dirty.current || version == null || reportId == null ? await save() : { id: reportId, version };
    if (saved == null) return;
    try {
      const r = await api<{ report: { state: string } }>("POST", `/api/v1/reports/${saved.id}/submit`, {
        version: saved.version,
      });
      setState(r.report.state);
      setStatus(t("submitted_ok"));
    } catch (err) {
      setStatus(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
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
      setState(r.report.state);
      setSigning(false);
      setPassword("");
      setTotp("");
      setStatus(`${t("signed_ok")} ${r.fingerprint}`);
    } catch (err) {
      setStatus(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
    }
  };

  if (!pre) return <aside class="report">{status || t("loading")}</aside>;
  const machine = pre.machine ?? [];
  const machineKeys = new Set(machine.map((m) => m.key));
  const qcOptions = pre.template.kind === "ecg" ? ["acceptable", "unacceptable"] : ["jia", "yi", "bing"];
  const locked = state === "submitted" || state === "signed";
  return (
    <aside class="report" data-state={state}>
      <h3>
        {lang.get() === "en" ? pre.template.name_en : pre.template.name}
        {state && <span class="rstate"> · {t(`st_${state === "draft" ? "drafted" : state}` as any)}</span>}
      </h3>
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
          <select name="critical_category" value={category} onChange={(e) => edit(setCategory)(e.currentTarget.value)}>
            <option value="" />
            {categories.map((c) => (
              <option value={c.code}>{label(c)}</option>
            ))}
          </select>
        )}
      </label>
      <div class="actions">
        <button type="button" class="save" onClick={save} disabled={locked}>{t("save")}</button>
        <button type="button" class="submit" onClick={submit} disabled={locked}>{t("submit")}</button>
        {state === "submitted" && (
          <button type="button" class="sign" onClick={() => setSigning(true)}>{t("sign")}</button>
        )}
        {reportId != null && version != null && (
          <a class="pdf" href={`/api/v1/reports/${reportId}/pdf?version=${version}`} target="_blank" rel="noopener">
            {t("pdf_preview")}
          </a>
        )}
      </div>
      {signing && (
        <form class="reauth" onSubmit={sign}>
          <p>{t("reauth_hint")}</p>
          <input name="sign-password" type="password" autocomplete="current-password" placeholder={t("password")} value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          <input name="sign-totp" inputMode="numeric" placeholder={t("totp")} value={totp} onInput={(e) => setTotp(e.currentTarget.value)} />
          <button type="submit">{t("sign")}</button>
        </form>
      )}
      {status && <p class="status" role="status">{status}</p>}
    </aside>
  );
}
