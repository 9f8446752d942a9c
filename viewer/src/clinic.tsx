// The clinic portal: open critical values to acknowledge, the signed reports of the
// clinic (and the villages it heads) with their PDF, and the recognition lookup.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError } from "./api";
import { useLiveEvents } from "./live";
import { isoDate, localTime, message } from "./format";
import { type Key, lang, reasonLabel, t } from "./i18n";
import { personName } from "./names";

interface Report {
  id: number;
  study_instance_uid: string;
  institution_name: string | null;
  template_code: string;
  state: string;
  patient_id: string;
  patient_name: string | null;
  study_date: string | null;
  study_description: string | null;
  modalities_in_study: string | null;
  signed_at_local?: string;
  open_critical: boolean;
  links: { pdf: string };
}

interface Critical {
  id: number;
  report_id: number;
  study_instance_uid: string;
  institution_name: string | null;
  category: string;
  note: string | null;
  state: string;
}

interface Recognised {
  hr: boolean;
  /// Why a result listed with `all=true` is not recognised now.
  not_recognised_because?: string[];
  report_id: number;
  study_instance_uid: string;
  /// The exam type's name (常规十二导联心电图 …); `exam` is its whole definition.
  exam_name: string | null;
  modalities: string | null;
  institution: string | null;
  study_date: string | null;
  age_days: number | null;
  /// 甲 `jia` / 乙 `yi` / 丙 `bing`, or `acceptable` / `unacceptable` for an ECG.
  qc_grade: string | null;
  conclusion: string | null;
  /// whether this caller may open it (images, report, PDF)
  opens?: boolean;
  links?: { pdf?: string } | null;
}

/// A study of `GET /api/v1/studies` with its place in the reading workflow.
interface SentStudy {
  id: number;
  study_instance_uid: string;
  patient_id: string;
  patient_name: string | null;
  study_date: string | null;
  study_description: string | null;
  modalities_in_study: string | null;
  num_instances: number;
  received_at: number;
  workflow: {
    status: "received" | "queued" | "reading" | "reported" | "cancelled";
    priority: string | null;
    critical: boolean;
    due_at_local: string | null;
    overdue: boolean;
    report_id: number | null;
  };
}

interface Category {
  code: string;
  label: string;
  label_en: string;
}

function CriticalBanner({ c, label, onAck }: { c: Critical; label: string; onAck: () => void }) {
  const [name, setName] = useState("");
  const [action, setAction] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const ack = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    try {
      await api("POST", `/api/v1/critical-values/${c.id}/ack`, { name, action });
      onAck();
    } catch (err) {
      // acknowledged meanwhile (a colleague, or this click's twin): done as well
      if (err instanceof ApiError && err.code === "already-acknowledged") onAck();
      else setError(message(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="critical-banner" role="alert" data-critical={c.id} onSubmit={ack}>
      <strong>
        {t("critical_value")}：{label}
      </strong>
      <span>{c.note}</span>
      <span class="src">{c.institution_name}</span>
      <input name="ack_name" placeholder={t("ack_name")} value={name} onInput={(e) => setName(e.currentTarget.value)} required />
      <input name="ack_action" placeholder={t("ack_action")} value={action} onInput={(e) => setAction(e.currentTarget.value)} required />
      <button type="submit" disabled={busy}>{t("acknowledge")}</button>
      {error && <span class="error">{error}</span>}
    </form>
  );
}

function Recognition() {
  const [patient, setPatient] = useState("");
  const [results, setResults] = useState<Recognised[] | null>(null);
  const [error, setError] = useState("");
  const lookup = async (e: Event) => {
    e.preventDefault();
    setError("");
    try {
      const r = await api<{ results: Recognised[] }>("GET", `/api/v1/recognition?patient=${encodeURIComponent(patient)}`);
      setResults(r.results);
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <section class="recognition">
      <h3>{t("recognition")}</h3>
      <form onSubmit={lookup}>
        <input name="patient" placeholder={t("patient_id")} value={patient} onInput={(e) => setPatient(e.currentTarget.value)} />
        <button type="submit">{t("lookup")}</button>
      </form>
      {error && <p class="error">{error}</p>}
      {results && (
        <table>
          <thead>
            <tr>
              <th>{t("hr")}</th>
              <th>{t("exam")}</th>
              <th>{t("institution")}</th>
              <th>{t("study_date")}</th>
              <th>{t("age_days")}</th>
              <th>{t("qc_grade")}</th>
              <th>{t("conclusion")}</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {results.length === 0 && (
              <tr>
                <td colSpan={8} class="empty">{t("nothing")}</td>
              </tr>
            )}
            {results.map((r) => (
              <tr data-report={r.report_id}>
                <td>{r.hr ? <span class="hr">HR</span> : <span title={(r.not_recognised_because ?? []).map(reasonLabel).join("; ")}>—</span>}</td>
                <td class="exam">{r.exam_name ?? r.modalities ?? "—"}</td>
                <td>{r.institution ?? "—"}</td>
                <td>{r.study_date ? isoDate(r.study_date) : "—"}</td>
                <td class="age">{r.age_days ?? "—"}</td>
                <td class="qc">{r.qc_grade ? t(`qc_${r.qc_grade}` as Key) : "—"}</td>
                <td>{r.conclusion ?? "—"}</td>
                <td class="links">
                  {r.opens !== false && (
                    <a class="images" href={`/read/${encodeURIComponent(r.study_instance_uid)}`} target="_blank" rel="noopener">
                      {t("open_images")}
                    </a>
                  )}{" "}
                  {r.links?.pdf && (
                    <a class="pdf" href={r.links.pdf} target="_blank" rel="noopener">
                      {t("pdf")}
                    </a>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

const STEPS = ["received", "queued", "reading", "reported"] as const;

/// received → queued → reading → reported, the current step highlighted.
function Progress({ status }: { status: SentStudy["workflow"]["status"] }) {
  if (status === "cancelled") return <span class="step cancelled">{t("status_cancelled")}</span>;
  const at = STEPS.indexOf(status);
  return (
    <span class="steps" data-status={status}>
      {STEPS.map((s, i) => (
        <span class={`step${i < at ? " done" : ""}${i === at ? " now" : ""}`}>{t(`status_${s}`)}</span>
      ))}
    </span>
  );
}

/// The studies the clinic (and the villages it heads) sent, newest first, with status,
/// due time and the report when signed.
function SentStudies({ studies, pdfOf }: { studies: SentStudy[]; pdfOf: (id: number) => string | undefined }) {
  return (
    <section class="sent">
      <h2>{t("sent_studies")}</h2>
      <table class="sent-studies">
        <thead>
          <tr>
            <th>{t("patient")}</th>
            <th>{t("exam")}</th>
            <th>{t("received_at")}</th>
            <th>{t("status")}</th>
            <th>{t("due_time")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {studies.length === 0 && (
            <tr>
              <td colSpan={6} class="empty">{t("nothing")}</td>
            </tr>
          )}
          {studies.map((s) => {
            const w = s.workflow;
            const pdf = w.report_id != null ? pdfOf(w.report_id) ?? `/api/v1/reports/${w.report_id}/pdf` : undefined;
            return (
              <tr data-study={s.study_instance_uid} data-status={w.status} class={w.overdue ? "overdue" : ""}>
                <td>
                  {personName(s.patient_name)} <small>{s.patient_id}</small>
                  {w.critical && <span class="critical">{t("critical_short")}</span>}
                </td>
                <td>{s.study_description ?? s.modalities_in_study ?? "—"}</td>
                <td>{localTime(s.received_at)}</td>
                <td>
                  <Progress status={w.status} />
                </td>
                <td class="due">
                  {w.status === "reported" || !w.due_at_local ? "—" : w.due_at_local.replace("T", " ").slice(0, 16)}
                  {w.overdue && <span class="critical">{t("overdue")}</span>}
                </td>
                <td>
                  {pdf && w.status === "reported" && (
                    <a class="pdf" href={pdf} target="_blank" rel="noopener">
                      {t("report_link")}
                    </a>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

interface SetupDevice {
  serial: string;
  model: string | null;
  kind: string;
  institution_name: string;
  last_seen_at: number | null;
  revoked_at: number | null;
  uploads: number;
}

interface SetupAe {
  ae_title: string;
  host: string | null;
  institution_name: string;
}

/// The clinic's (and its villages') ECG devices and DICOM AE titles, as registered at the
/// hub: what to check when a device or modality cannot send.
function Setup() {
  const [devices, setDevices] = useState<SetupDevice[]>([]);
  const [aes, setAes] = useState<SetupAe[]>([]);
  useEffect(() => {
    api<{ devices: SetupDevice[] }>("GET", "/api/v1/devices")
      .then((r) => setDevices(r.devices))
      .catch(() => undefined);
    api<{ ae_titles: SetupAe[] }>("GET", "/api/v1/ae-titles")
      .then((r) => setAes(r.ae_titles))
      .catch(() => undefined);
  }, []);
  return (
    <section class="setup">
      <h3>{t("clinic_setup")}</h3>
      <table class="setup-devices">
        <thead>
          <tr>
            <th>{t("serial")}</th>
            <th>{t("model")}</th>
            <th>{t("institution")}</th>
            <th>{t("last_seen")}</th>
            <th>{t("uploads")}</th>
          </tr>
        </thead>
        <tbody>
          {devices.length === 0 && (
            <tr>
              <td colSpan={5} class="empty">{t("nothing")}</td>
            </tr>
          )}
          {devices.map((d) => (
            <tr data-serial={d.serial} class={d.revoked_at ? "disabled" : ""}>
              <td>
                {d.serial} {d.revoked_at ? <small>({t("revoked")})</small> : null}
              </td>
              <td>{d.model ?? d.kind}</td>
              <td>{d.institution_name}</td>
              <td>{localTime(d.last_seen_at)}</td>
              <td>{d.uploads}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <table class="setup-aes">
        <thead>
          <tr>
            <th>{t("ae_title")}</th>
            <th>{t("host")}</th>
            <th>{t("institution")}</th>
          </tr>
        </thead>
        <tbody>
          {aes.length === 0 && (
            <tr>
              <td colSpan={3} class="empty">{t("nothing")}</td>
            </tr>
          )}
          {aes.map((a) => (
            <tr data-ae={a.ae_title}>
              <td>{a.ae_title}</td>
              <td>{a.host ?? "—"}</td>
              <td>{a.institution_name}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function ClinicPortal({ role }: { role: string }) {
  const [reports, setReports] = useState<Report[]>([]);
  const [criticals, setCriticals] = useState<Critical[]>([]);
  const [categories, setCategories] = useState<Category[]>([]);
  useEffect(() => {
    api<{ categories: Category[] }>("GET", "/api/v1/critical-categories")
      .then((r) => setCategories(r.categories))
      .catch(() => undefined);
  }, []);
  const label = (code: string) => {
    const c = categories.find((x) => x.code === code);
    return c ? (lang.get() === "en" ? c.label_en : c.label) : code;
  };
  const [error, setError] = useState("");
  const [sent, setSent] = useState<SentStudy[]>([]);
  // older pages the user asked for (the reloads refresh the newest page only)
  const [older, setOlder] = useState<SentStudy[]>([]);
  const [more, setMore] = useState<number | null>(null);
  const olderLoaded = useRef(false);
  const load = useCallback(async () => {
    try {
      const [r, c, s] = await Promise.all([
        api<{ reports: Report[] }>("GET", "/api/v1/reports?state=signed&limit=200"),
        api<{ critical_values: { critical: Critical }[] }>("GET", "/api/v1/critical-values?state=open"),
        api<{ studies: SentStudy[]; next_after_id: number | null }>("GET", "/api/v1/studies?order=desc&limit=100"),
      ]);
      setReports(r.reports);
      setCriticals(c.critical_values.map((x) => x.critical));
      setSent(s.studies);
      if (!olderLoaded.current) setMore(s.next_after_id);
      setError("");
    } catch (err) {
      setError(message(err));
    }
  }, []);
  // signed reports and critical values arrive live (the stream comes back after a break)
  const reloadTimer = useRef<number | undefined>(undefined);
  useLiveEvents(
    "/api/v1/reports/events",
    ["report_signed", "report_corrected", "report_addendum", "critical_raised", "critical_escalated", "critical_acknowledged", "resync"],
    () => {
      clearTimeout(reloadTimer.current);
      reloadTimer.current = window.setTimeout(load, 150);
    },
  );
  useEffect(() => {
    load();
    // the queue's progress (claimed, drafted) has no clinic stream: look again each minute
    const poll = window.setInterval(load, 60_000);
    return () => {
      clearTimeout(reloadTimer.current);
      clearInterval(poll);
    };
  }, [load]);
  return (
    <section class="clinic">
      {criticals.map((c) => (
        <CriticalBanner key={c.id} c={c} label={label(c.category)} onAck={load} />
      ))}
      {error && <p class="error">{error}</p>}
      <SentStudies
        studies={[...sent, ...older.filter((o) => !sent.some((x) => x.id === o.id))]}
        pdfOf={(id) => reports.find((r) => r.id === id)?.links.pdf}
      />
      {more != null && (
        <button
          class="more"
          onClick={async () => {
            try {
              const r = await api<{ studies: SentStudy[]; next_after_id: number | null }>(
                "GET",
                `/api/v1/studies?order=desc&limit=100&after_id=${more}`,
              );
              olderLoaded.current = true;
              setOlder((o) => [...o, ...r.studies]);
              setMore(r.next_after_id);
            } catch (err) {
              setError(message(err));
            }
          }}
        >
          {t("load_more")}
        </button>
      )}
      <h2>{t("reports")}</h2>
      <table class="reports">
        <thead>
          <tr>
            <th>{t("patient")}</th>
            <th>{t("exam")}</th>
            <th>{t("institution")}</th>
            <th>{t("study_date")}</th>
            <th>{t("signed_at")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {reports.length === 0 && (
            <tr>
              <td colSpan={6} class="empty">{t("nothing")}</td>
            </tr>
          )}
          {reports.map((r) => (
            <tr data-report={r.id} data-study={r.study_instance_uid}>
              <td>
                {personName(r.patient_name)} <small>{r.patient_id}</small>
              </td>
              <td>{r.study_description ?? r.modalities_in_study ?? "—"}</td>
              <td>{r.institution_name ?? "—"}</td>
              <td>{r.study_date ? isoDate(r.study_date) : "—"}</td>
              <td>{r.signed_at_local?.replace("T", " ").slice(0, 16) ?? "—"}</td>
              <td>
                <a class="pdf" href={r.links.pdf} target="_blank" rel="noopener">
                  {t("pdf")}
                </a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {role === "clinic_doctor" && <Recognition />}
      <Setup />
    </section>
  );
}
