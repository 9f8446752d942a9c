// dxhub web app: the shell (login, header, language) and the reader's worklist.
import { render } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { message as errorText } from "./format";
import { api, ApiError, type Me, type WorkItem } from "./api";
import { duration, lang, setLang, t, type Key } from "./i18n";
import { useSignal } from "./state";
import { ClinicPortal } from "./clinic";
import { EcgViewer } from "./ecg";
import { ReportEditor } from "./report";
import { PriorPane, PriorsPanel, type Prior } from "./priors";
import { personName } from "./names";
import { prefetchStudy } from "./prefetch";
import { clearAllDrafts } from "./drafts";
import { useLiveEvents } from "./live";
import "./style.css";

function Login({ onDone }: { onDone: () => void }) {
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const [totp, setTotp] = useState("");
  const [needTotp, setNeedTotp] = useState(false);
  const [error, setError] = useState("");
  const submit = async (e: Event) => {
    e.preventDefault();
    setError("");
    try {
      await api("POST", "/api/v1/auth/login", {
        login,
        password,
        ...(needTotp ? { totp } : {}),
      });
      onDone();
    } catch (err) {
      if (err instanceof ApiError && err.code === "totp-required") {
        setNeedTotp(true);
        setError(t("totp_needed"));
      } else {
        setError(`${t("login_failed")}: ${errorText(err)}`);
      }
    }
  };
  return (
    <form class="login" onSubmit={submit}>
      <h1>{t("app_title")}</h1>
      <label>
        {t("login_name")}
        <input name="login" autocomplete="username" value={login} onInput={(e) => setLogin(e.currentTarget.value)} />
      </label>
      <label>
        {t("password")}
        <input
          name="password"
          type="password"
          autocomplete="current-password"
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
      </label>
      {needTotp && (
        <label>
          {t("totp")}
          <input name="totp" inputMode="numeric" autocomplete="one-time-code" value={totp} onInput={(e) => setTotp(e.currentTarget.value)} />
        </label>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      <button type="submit">{t("login")}</button>
    </form>
  );
}

/// Readers and admins must enrol a second factor before anything else (the API refuses
/// other routes until then): show the secret, take the first code.
function EnrolTotp({ onDone }: { onDone: () => void }) {
  const [secret, setSecret] = useState("");
  const [url, setUrl] = useState("");
  const [code, setCode] = useState("");
  const [error, setError] = useState("");
  useEffect(() => {
    api<{ secret: string; otpauth_url: string }>("POST", "/api/v1/auth/totp/enroll")
      .then((r) => {
        setSecret(r.secret);
        setUrl(r.otpauth_url);
      })
      .catch((e) => setError(errorText(e)));
  }, []);
  const confirm = async (e: Event) => {
    e.preventDefault();
    try {
      await api("POST", "/api/v1/auth/totp/confirm", { code });
      onDone();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form class="login" onSubmit={confirm}>
      <h1>{t("totp_enrol")}</h1>
      <p>{t("totp_enrol_hint")}</p>
      <code class="secret">{secret}</code>
      <small class="otpauth">{url}</small>
      <label>
        {t("totp")}
        <input name="totp" inputMode="numeric" value={code} onInput={(e) => setCode(e.currentTarget.value)} />
      </label>
      {error && <p class="error" role="alert">{error}</p>}
      <button type="submit">{t("confirm")}</button>
    </form>
  );
}

type Tab = "mine" | "queue" | "overdue";
const TABS: [Tab, Key][] = [
  ["mine", "tab_mine"],
  ["queue", "tab_queue"],
  ["overdue", "tab_overdue"],
];

/// Seconds since the page loaded, ticking: due countdowns are computed from the server's
/// `due_in_s` at fetch time.
function useNow(): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, []);
  return now;
}

const MODALITIES = ["CT", "MR", "CR", "DX", "MG", "US", "XA", "RF", "NM", "PT", "ECG"];
type SortKey = "priority" | "due" | "patient" | "institution" | "modality";
const PRIO_RANK: Record<string, number> = { stat: 0, urgent: 1, routine: 2 };

/// Sort keys of a work item (the server's order is priority, then due time).
const SORTS: Record<SortKey, (a: WorkItem, b: WorkItem) => number> = {
  priority: (a, b) => PRIO_RANK[a.priority] - PRIO_RANK[b.priority] || a.due_in_s - b.due_in_s,
  due: (a, b) => a.due_in_s - b.due_in_s,
  patient: (a, b) => personName(a.patient_name).localeCompare(personName(b.patient_name), "zh-CN"),
  institution: (a, b) => (a.institution_name ?? "").localeCompare(b.institution_name ?? "", "zh-CN"),
  modality: (a, b) => (a.modality ?? "").localeCompare(b.modality ?? ""),
};

function Worklist({ me }: { me: Me }) {
  const [tab, setTab] = useState<Tab>("queue");
  // filters: priority and modality by the API; institution and patient text in the page
  const [priority, setPriority] = useState("");
  const [modality, setModality] = useState("");
  const [institution, setInstitution] = useState("");
  const [text, setText] = useState("");
  const [sort, setSort] = useState<{ key: SortKey; asc: boolean }>({ key: "priority", asc: true });
  const filterRef = useRef({ priority, modality });
  filterRef.current = { priority, modality };
  const [items, setItems] = useState<WorkItem[]>([]);
  const [fetchedAt, setFetchedAt] = useState(Date.now());
  const [message, setMessage] = useState("");
  const now = useNow();
  const tabRef = useRef(tab);
  tabRef.current = tab;

  // a failed reload's message goes once a reload succeeds (not other messages)
  const loadFailed = useRef("");
  const load = useCallback(async (which: Tab = tabRef.current) => {
    try {
      const f = filterRef.current;
      const q = `tab=${which}${f.priority ? `&priority=${f.priority}` : ""}${f.modality ? `&modality=${f.modality}` : ""}`;
      const r = await api<{ items: WorkItem[] }>("GET", `/api/v1/worklist?${q}`);
      if (which === tabRef.current) {
        setItems(r.items);
        setFetchedAt(Date.now());
      }
      if (loadFailed.current) {
        const failed = loadFailed.current;
        loadFailed.current = "";
        setMessage((m) => (m === failed ? "" : m));
      }
    } catch (err) {
      loadFailed.current = errorText(err);
      setMessage(loadFailed.current);
    }
  }, []);

  useEffect(() => {
    load(tab);
  }, [tab, priority, modality, load]);

  // live updates: any worklist event reloads the tab (coalesced)
  const reloadTimer = useRef<number | undefined>(undefined);
  useEffect(() => () => clearTimeout(reloadTimer.current), []);
  const live = useLiveEvents(
    "/api/v1/worklist/events",
    [
      "queued", "claimed", "released", "lease-expired", "reassigned", "lock-broken", "cancelled",
      "priority-changed", "drafted", "submitted", "signed", "returned", "sla-warning",
      "sla-breach", "escalated", "new-images", "resync",
    ],
    () => {
      clearTimeout(reloadTimer.current);
      reloadTimer.current = window.setTimeout(() => load(), 150);
    },
  );

  const next = useCallback(async () => {
    setMessage("");
    try {
      await api("POST", "/api/v1/worklist/next");
      setTab("mine");
      await load("mine");
    } catch (err) {
      if (err instanceof ApiError && err.code === "nothing-queued") setMessage(t("nothing_queued"));
      else setMessage(errorText(err));
    }
  }, [load]);

  const act = async (item: WorkItem, what: "claim" | "release") => {
    setMessage("");
    try {
      await api("POST", `/api/v1/worklist/${item.id}/${what}`);
      await load();
    } catch (err) {
      setMessage(errorText(err));
    }
  };

  // "N" takes the next item (not while typing)
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const el = e.target as HTMLElement | null;
      if (el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable)) return;
      if ((e.key === "n" || e.key === "N") && !e.ctrlKey && !e.metaKey && !e.altKey) {
        e.preventDefault();
        next();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [next]);

  const elapsed = Math.floor((now - fetchedAt) / 1000);
  const institutions = [...new Set(items.map((it) => it.institution_name).filter((x): x is string => !!x))].sort();
  const needle = text.trim().toLowerCase();
  const shown = items
    .filter((it) => !institution || it.institution_name === institution)
    .filter(
      (it) =>
        !needle ||
        personName(it.patient_name).toLowerCase().includes(needle) ||
        (it.patient_name ?? "").toLowerCase().includes(needle) ||
        (it.patient_id ?? "").toLowerCase().includes(needle),
    )
    .sort((a, b) => (sort.asc ? 1 : -1) * SORTS[sort.key](a, b));
  const header = (key: SortKey, label: Key) => (
    <th
      class="sortable"
      data-sort={key}
      aria-sort={sort.key === key ? (sort.asc ? "ascending" : "descending") : "none"}
      onClick={() => setSort(sort.key === key ? { key, asc: !sort.asc } : { key, asc: true })}
    >
      {t(label)}
      {sort.key === key ? (sort.asc ? " ▲" : " ▼") : ""}
    </th>
  );
  return (
    <section class="worklist">
      <div class="toolbar">
        <nav class="tabs" role="tablist">
          {TABS.map(([k, label]) => (
            <button role="tab" aria-selected={tab === k} class={tab === k ? "tab active" : "tab"} data-tab={k} onClick={() => setTab(k)}>
              {t(label)}
            </button>
          ))}
        </nav>
        <button class="next" onClick={next} title={t("next_hint")}>
          {t("next")} <kbd>N</kbd>
        </button>
        <span class={live ? "live on" : "live"}>{live ? t("live") : t("offline")}</span>
      </div>
      <div class="filters worklist-filters">
        <select name="priority" value={priority} onChange={(e) => setPriority(e.currentTarget.value)} aria-label={t("priority")}>
          <option value="">{t("priority")}: {t("all")}</option>
          {(["stat", "urgent", "routine"] as const).map((p) => (
            <option value={p}>{t(p)}</option>
          ))}
        </select>
        <select name="modality" value={modality} onChange={(e) => setModality(e.currentTarget.value)} aria-label={t("modality")}>
          <option value="">{t("modality")}: {t("all")}</option>
          {MODALITIES.map((m) => (
            <option value={m}>{m}</option>
          ))}
        </select>
        <select name="institution" value={institution} onChange={(e) => setInstitution(e.currentTarget.value)} aria-label={t("institution")}>
          <option value="">{t("institution")}: {t("all")}</option>
          {institutions.map((i) => (
            <option value={i}>{i}</option>
          ))}
        </select>
        <input name="search" type="search" value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder={t("search_patient")} />
      </div>
      {message && <p class="message" role="status">{message}</p>}
      <table>
        <thead>
          <tr>
            {header("priority", "priority")}
            {header("due", "due")}
            {header("patient", "patient")}
            <th>{t("exam")}</th>
            {header("institution", "institution")}
            {header("modality", "modality")}
            <th>{t("state")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {shown.length === 0 && (
            <tr>
              <td colSpan={8} class="empty">{t("nothing")}</td>
            </tr>
          )}
          {shown.map((it) => (
            <tr data-item={it.id} data-study={it.study_instance_uid} class={it.overdue ? "overdue" : ""}>
              <td>
                <span class={`prio ${it.priority}`}>{t(it.priority)}</span>
                {it.critical && <span class="critical">!</span>}
              </td>
              <td class="due">{duration(it.due_in_s - elapsed)}</td>
              <td>
                <a class="open" href={`/read/${encodeURIComponent(it.study_instance_uid)}?item=${it.id}`}>
                  {personName(it.patient_name)}
                </a>{" "}
                {it.patient_sex ? `(${it.patient_sex})` : ""}
              </td>
              <td>{it.study_description ?? "—"}</td>
              <td>{it.institution_name ?? "—"}</td>
              <td>{it.modality ?? "—"}</td>
              <td>{t(`st_${it.state}` as Key)}</td>
              <td>
                {it.state === "queued" && <button onClick={() => act(it, "claim")}>{t("claim")}</button>}
                {it.claimed_by === me.user.id && ["claimed", "drafted", "returned"].includes(it.state) && (
                  <button onClick={() => act(it, "release")}>{t("release")}</button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

/// The image viewer (cornerstone3D, ~1 MB gzip) is loaded only on the reading page, so the
/// worklist and the clinic portal stay small on weak links.
type ImageProps = { study: string; keys?: boolean; compact?: boolean; onEmpty?: () => void };
// On a reading page the image viewer's code (cornerstone3D) starts loading with the app,
// not after the session check and the first render.
const imagesModule = location.pathname.startsWith("/read/") ? import("./images") : null;
// and its study's series and metadata start loading too (an ECG study answers with no
// image series; a 401 just leaves the viewer to ask again after login)
if (location.pathname.startsWith("/read/")) prefetchStudy(decodeURIComponent(location.pathname.slice("/read/".length)));

function LazyImages(props: ImageProps) {
  const [C, setC] = useState<null | ((p: ImageProps) => any)>(null);
  useEffect(() => {
    (imagesModule ?? import("./images")).then((m) => setC(() => m.ImageViewer));
  }, []);
  return C ? <C {...props} /> : null;
}

/// While the reader holds `item`, renew its lease (`POST …/heartbeat`, a third of the
/// lease each time; the first at once): reading images for minutes must not send the item
/// back to the queue. Returns a message once the lease is lost (expired or taken over).
function useLease(item: number | null, me: number): string {
  const [lost, setLost] = useState("");
  useEffect(() => {
    if (item == null) return;
    let timer: number | undefined;
    let stopped = false;
    let holder = false;
    const beat = async () => {
      let next = 30;
      try {
        if (!holder) {
          // only the holder's lease: a verifier opening a submitted report holds none
          const it = await api<WorkItem>("GET", `/api/v1/worklist/${item}`);
          if (it.claimed_by !== me || !["claimed", "drafted", "returned"].includes(it.state)) return;
          holder = true;
        }
        const r = await api<{ lease_ttl_s: number }>("POST", `/api/v1/worklist/${item}/heartbeat`);
        next = Math.max(3, Math.floor(r.lease_ttl_s / 3));
      } catch (err) {
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
          // the lease is gone (or the item is not this user's to keep): say so once
          if (holder) setLost(errorText(err));
          return;
        }
        next = 10; // a weak network or a hub restarting: try again soon
      }
      if (!stopped) timer = window.setTimeout(beat, next * 1000);
    };
    beat();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [item, me]);
  return lost;
}

/// The reading page of a study: its images or ECG, the report editor, and the priors panel;
/// a prior opened from the panel shows beside the current study.
function Reading({ study, role, me }: { study: string; role: string; me: number }) {
  const item = Number(new URLSearchParams(location.search).get("item")) || null;
  const leaseLost = useLease(item, me);
  const [prior, setPrior] = useState<Prior | null>(null);
  // neither images nor an ECG: say so (a study of only reports or documents, or one the
  // user may not see, which the hub answers as not found)
  const [noImages, setNoImages] = useState(false);
  const [noEcg, setNoEcg] = useState(false);
  return (
    <section class="reading">
      <p>
        <a href="/" class="back">← {t(role.startsWith("clinic_") ? "nav_clinic" : "worklist")}</a>
      </p>
      {leaseLost && (
        <p class="error lease-lost" role="alert">
          {leaseLost}
        </p>
      )}
      {noImages && noEcg && (
        <p class="empty-study" role="status">
          {t("study_nothing")}
        </p>
      )}
      <div class={prior ? "reading-split comparing" : "reading-split"}>
        <div class="left">
          <div class="panes">
            <div class="pane current">
              <LazyImages study={study} onEmpty={() => setNoImages(true)} />
              <EcgViewer study={study} onNone={() => setNoEcg(true)} />
            </div>
            {prior && (
              <PriorPane prior={prior} onClose={() => setPrior(null)}>
                <LazyImages key={prior.study_instance_uid} study={prior.study_instance_uid} keys={false} compact />
                <EcgViewer key={prior.study_instance_uid} study={prior.study_instance_uid} />
              </PriorPane>
            )}
          </div>
        </div>
        {item != null && (
          <div class="right">
            <PriorsPanel itemId={item} open={prior?.study_instance_uid ?? null} onOpen={setPrior} />
            <ReportEditor itemId={item} />
          </div>
        )}
      </div>
    </section>
  );
}

const SHORTCUTS: [string, Key][] = [
  ["N", "sc_next"],
  ["↑ ↓ / PageUp PageDown", "sc_scroll"],
  ["I", "sc_invert"],
  ["R", "sc_reset"],
  ["C", "sc_cine"],
  ["?", "sc_help"],
  ["Esc", "sc_close"],
];

/// The keyboard shortcuts, listed on "?" (or the header button); Esc closes.
function ShortcutHelp() {
  const [open, setOpen] = useState(false);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const el = e.target as HTMLElement | null;
      if (el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT")) return;
      if (e.key === "?") setOpen((o) => !o);
      else if (e.key === "Escape") setOpen(false);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  return (
    <>
      <button class="help" onClick={() => setOpen(true)} title="?">
        {t("shortcuts")}
      </button>
      {open && (
        <div class="shortcut-overlay" role="dialog" aria-label={t("shortcuts")} onClick={() => setOpen(false)}>
          <table onClick={(e) => e.stopPropagation()}>
            <caption>{t("shortcuts")}</caption>
            <tbody>
              {SHORTCUTS.map(([k, what]) => (
                <tr>
                  <td>
                    <kbd>{k}</kbd>
                  </td>
                  <td>{t(what)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

const isAdmin = (role: string) => role === "group_admin" || role === "superadmin";

/// The header's links to the pages the role has (full page loads: every page reloads).
function Nav({ role }: { role: string }) {
  const here = location.pathname;
  const links: [string, Key][] = role.startsWith("clinic_")
    ? [["/", "nav_clinic"]]
    : isAdmin(role)
      ? [
          ["/", "nav_worklist"],
          ["/admin", "nav_admin"],
          ["/dashboard", "nav_dashboard"],
        ]
      : [["/", "nav_worklist"]];
  if (links.length < 2) return null;
  return (
    <nav class="main-nav">
      {links.map(([href, label]) => (
        <a href={href} data-nav={href} class={(href === "/" ? here === "/" : here.startsWith(href)) ? "active" : ""}>
          {t(label)}
        </a>
      ))}
    </nav>
  );
}

/// The admin pages and the dashboard (with ECharts) load only when opened.
function lazyPage<P>(load: () => Promise<(p: P) => preact.JSX.Element>) {
  return function Lazy(props: P & {}) {
    const [C, setC] = useState<((p: P) => preact.JSX.Element) | null>(null);
    useEffect(() => {
      load().then((c) => setC(() => c));
    }, []);
    return C ? <C {...props} /> : <p class="message">{t("loading")}</p>;
  };
}
const LazyAdmin = lazyPage<{ page: string }>(async () => {
  const m = await import("./admin");
  return (p) => <m.Admin page={p.page} />;
});
const LazyDashboard = lazyPage<{}>(async () => (await import("./dashboard")).Dashboard);

function App() {
  useSignal(lang); // re-render on a language switch
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const whoami = useCallback(async () => {
    try {
      setMe(await api<Me>("GET", "/api/v1/auth/me"));
    } catch {
      setMe(null);
    }
  }, []);
  useEffect(() => {
    whoami();
  }, [whoami]);
  const logout = async () => {
    await api("POST", "/api/v1/auth/logout").catch(() => undefined);
    clearAllDrafts();
    setMe(null);
  };
  const switcher = (
    <button class="lang" onClick={() => setLang(lang.get() === "en" ? "zh-CN" : "en")}>
      {t("language")}
    </button>
  );
  if (me === undefined) return null;
  if (me === null)
    return (
      <main>
        <header>{switcher}</header>
        <Login onDone={whoami} />
      </main>
    );
  return (
    <main>
      <header>
        <strong>{t("app_title")}</strong>
        <span class="who">
          {me.user.login}
          {me.user.institution_name ? ` · ${me.user.institution_name}` : ""}
        </span>
        <Nav role={me.user.role} />
        <ShortcutHelp />
        {switcher}
        <button class="logout" onClick={logout}>{t("logout")}</button>
      </header>
      {me.totp_required && !me.totp_enrolled ? (
        <EnrolTotp onDone={whoami} />
      ) : (
        location.pathname.startsWith("/read/") ? (
          <Reading study={decodeURIComponent(location.pathname.slice("/read/".length))} role={me.user.role} me={me.user.id} />
        ) : isAdmin(me.user.role) && location.pathname.startsWith("/admin") ? (
          <LazyAdmin page={location.pathname.split("/")[2] ?? ""} />
        ) : isAdmin(me.user.role) && location.pathname.startsWith("/dashboard") ? (
          <LazyDashboard />
        ) : me.user.role.startsWith("clinic_") ? (
          <ClinicPortal role={me.user.role} />
        ) : (
          <>
            <h2>{t("worklist")}</h2>
            <Worklist me={me} />
          </>
        )
      )}
    </main>
  );
}

document.documentElement.lang = lang.get();
render(<App />, document.getElementById("app")!);
