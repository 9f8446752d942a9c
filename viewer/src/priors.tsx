// The priors of the reading page: the patient's earlier studies with their work state and
// report (`GET /api/v1/worklist/{id}/priors`), on a side panel; opening one shows it beside
// the current study (its images or ECG, and its report's text) without leaving the page.
import { useEffect, useState } from "preact/hooks";
import { api } from "./api";
import { isoDate as isoDay, localStamp, message } from "./format";
import { t, type Key } from "./i18n";

export interface Prior {
  study_instance_uid: string;
  institution_name: string | null;
  study_date: string | null;
  study_description: string | null;
  modalities_in_study: string | null;
  work_item_id: number | null;
  work_state: string | null;
  reported_at: number | null;
}

export const isoDate = (d: string | null | undefined) => isoDay(d) || "—";

const modalities = (m: string | null) => (m ?? "").split(/[\\,]/).filter(Boolean).join("/") || "—";

export function PriorsPanel({
  itemId,
  open,
  onOpen,
}: {
  itemId: number;
  open: string | null;
  onOpen: (p: Prior | null) => void;
}) {
  const [priors, setPriors] = useState<Prior[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api<{ priors: Prior[] }>("GET", `/api/v1/worklist/${itemId}/priors`)
      .then((r) => setPriors(r.priors))
      .catch((e) => setError(message(e)));
  }, [itemId]);
  return (
    <details class="priors" open>
      <summary>
        {t("priors")} {priors ? `(${priors.length})` : ""}
      </summary>
      {error && <p class="error">{error}</p>}
      {priors && priors.length === 0 && <p class="empty">{t("no_priors")}</p>}
      {priors && priors.length > 0 && (
        <ul>
          {priors.map((p) => (
            <li data-prior={p.study_instance_uid} class={open === p.study_instance_uid ? "open" : ""}>
              <span>
                <strong>{isoDate(p.study_date)}</strong> {modalities(p.modalities_in_study)} · {p.study_description ?? "—"}
                <br />
                <small>
                  {p.institution_name ?? "—"} · {p.work_state ? t(`st_${p.work_state}` as Key) : t("no_work_item")}
                </small>
              </span>
              <button
                type="button"
                class="compare"
                aria-pressed={open === p.study_instance_uid}
                onClick={() => onOpen(open === p.study_instance_uid ? null : p)}
              >
                {open === p.study_instance_uid ? t("close") : t("compare")}
              </button>
            </li>
          ))}
        </ul>
      )}
    </details>
  );
}

interface PriorReport {
  report: { id: number; state: string; signed_version: number | null; signed_at_local?: string; author_login: string; template_code: string };
  current: { version: number; body: { sections?: Record<string, string> }; verifier_login?: string | null } | null;
  addenda: { id: number; text: string; author_login: string }[];
}

const SECTION_ORDER = ["findings", "impression", "recommendation"];

/// The report of a prior study (the version in force, else the current one) as text.
export function PriorReportText({ study }: { study: string }) {
  const [rep, setRep] = useState<PriorReport | null | undefined>(undefined);
  const [error, setError] = useState("");
  useEffect(() => {
    (async () => {
      try {
        const list = await api<{ reports: { id: number }[] }>("GET", `/api/v1/reports?study=${encodeURIComponent(study)}`);
        if (!list.reports.length) return setRep(null);
        setRep(await api<PriorReport>("GET", `/api/v1/reports/${list.reports[0].id}`));
      } catch (e) {
        setError(message(e));
      }
    })();
  }, [study]);
  if (error) return <p class="error">{error}</p>;
  if (rep === undefined) return <p>{t("loading")}</p>;
  if (rep === null) return <p class="empty prior-report">{t("no_report")}</p>;
  const sections = rep.current?.body?.sections ?? {};
  const keys = [...SECTION_ORDER.filter((k) => sections[k]), ...Object.keys(sections).filter((k) => !SECTION_ORDER.includes(k) && sections[k])];
  return (
    <div class="prior-report" data-report={rep.report.id} data-state={rep.report.state}>
      <p class="meta">
        {t(`st_${rep.report.state === "draft" ? "drafted" : rep.report.state}` as Key)} · {rep.report.author_login}
        {rep.current?.verifier_login ? ` · ${t("signed_by")} ${rep.current.verifier_login}` : ""}
        {rep.report.signed_at_local ? ` · ${localStamp(rep.report.signed_at_local)}` : ""}
        {rep.report.signed_version != null && (
          <>
            {" · "}
            <a href={`/api/v1/reports/${rep.report.id}/pdf?version=${rep.report.signed_version}`} target="_blank" rel="noopener">
              {t("pdf")}
            </a>
          </>
        )}
      </p>
      {keys.map((k) => (
        <div class="prior-section" data-section={k}>
          <strong>{SECTION_ORDER.includes(k) ? t(`sec_${k}` as Key) : k}</strong>
          <p>{sections[k]}</p>
        </div>
      ))}
      {rep.addenda.map((a) => (
        <div class="prior-section">
          <strong>{t("addendum")}</strong> ({a.author_login})<p>{a.text}</p>
        </div>
      ))}
    </div>
  );
}

/// A prior opened beside the current study: its header, its images or ECG (`children`,
/// given by the reading page so the lazily loaded viewer is shared) and its report.
export function PriorPane({ prior, onClose, children }: { prior: Prior; onClose: () => void; children?: any }) {
  return (
    <section class="prior-pane" data-prior={prior.study_instance_uid} aria-label={t("prior")}>
      <header class="prior-head">
        <strong>
          {t("prior")} · {isoDate(prior.study_date)}
        </strong>{" "}
        {modalities(prior.modalities_in_study)} · {prior.study_description ?? "—"} · {prior.institution_name ?? "—"}
        <button type="button" class="close-prior" onClick={onClose} title={t("close")}>
          ✕
        </button>
      </header>
      {children}
      <PriorReportText study={prior.study_instance_uid} />
    </section>
  );
}
