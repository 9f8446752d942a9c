// Administration of the alliance (group admins; superadmins): institutions, users (role,
// TOTP reset, password, disable), ECG devices, AE titles, reader pools and members,
// routing rules with their SLA and a dry run, report templates and the exam catalogue.
// Every page is a thin form over the `/api/v1` routes of the same name.
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { api } from "./api";
import { attempt, localTime, message } from "./format";
import { t, type Key } from "./i18n";

const PAGES = ["institutions", "users", "devices", "ae", "pools", "rules", "templates", "exams"] as const;
type Page = (typeof PAGES)[number];

const ROLES = ["clinic_tech", "clinic_doctor", "reader", "senior_reader", "group_admin", "auditor"] as const;
const LEVELS = ["county", "township", "village"] as const;
const PRIORITIES = ["stat", "urgent", "routine"] as const;

interface Institution {
  id: number;
  alliance_id: number;
  alliance_name: string;
  name: string;
  level: string;
  parent_id: number | null;
  parent_name: string | null;
  population: number | null;
}

/// Loads `path` and keeps it with a reload; `error` is the last failure.
function useList<T>(path: string, key: string): [T[], () => Promise<void>, string] {
  const [rows, setRows] = useState<T[]>([]);
  const [error, setError] = useState("");
  const load = useCallback(async () => {
    try {
      const r = await api<Record<string, T[]>>("GET", path);
      setRows(r[key] ?? []);
      setError("");
    } catch (err) {
      setError(message(err));
    }
  }, [path, key]);
  useEffect(() => {
    load();
  }, [load]);
  return [rows, load, error];
}

/// A form whose submit runs `action`, shows its error and resets on success.
function Form({ name, action, children }: { name: string; action: (f: FormData) => Promise<void>; children: ComponentChildren }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    setBusy(true);
    setError("");
    try {
      await action(new FormData(form));
      form.reset();
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="adm-form" data-form={name} onSubmit={submit}>
      {children}
      <button type="submit" disabled={busy}>
        {t("add")}
      </button>
      {error && <span class="error">{error}</span>}
    </form>
  );
}

function Field({ label, children }: { label: Key; children: ComponentChildren }) {
  return (
    <label>
      <span>{t(label)}</span>
      {children}
    </label>
  );
}

const str = (f: FormData, k: string) => {
  const v = String(f.get(k) ?? "").trim();
  return v === "" ? undefined : v;
};
const num = (f: FormData, k: string) => {
  const v = str(f, k);
  return v === undefined ? undefined : Number(v);
};

function InstitutionSelect({ institutions, name = "institution", required = true }: { institutions: Institution[]; name?: string; required?: boolean }) {
  return (
    <select name={name} required={required}>
      {!required && <option value="">{t("none")}</option>}
      {institutions.map((i) => (
        <option value={i.name}>{i.name}</option>
      ))}
    </select>
  );
}

// ---------------------------------------------------------------- institutions

function Institutions({ institutions, reload }: { institutions: Institution[]; reload: () => Promise<void> }) {
  const [error, setError] = useState("");
  // a group admin has one alliance; a superadmin picks one
  const alliances = [...new Set(institutions.map((i) => i.alliance_name))];
  const setPopulation = async (i: Institution, value: string) => {
    try {
      await api("PATCH", `/api/v1/institutions/${i.id}`, { population: value === "" ? null : Number(value) });
      await reload();
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <>
      <table class="adm-table" data-table="institutions">
        <thead>
          <tr>
            <th>{t("name")}</th>
            <th>{t("level")}</th>
            <th>{t("parent")}</th>
            <th>{t("population")}</th>
          </tr>
        </thead>
        <tbody>
          {institutions.map((i) => (
            <tr data-id={i.id} data-name={i.name}>
              <td>{i.name}</td>
              <td>{t(`level_${i.level}` as Key)}</td>
              <td>{i.parent_name ?? "—"}</td>
              <td>
                <input
                  class="population"
                  type="number"
                  min={0}
                  value={i.population ?? ""}
                  onChange={(e) => setPopulation(i, e.currentTarget.value)}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {error && <p class="error">{error}</p>}
      <Form
        name="institution"
        action={async (f) => {
          await api("POST", "/api/v1/institutions", {
            alliance: str(f, "alliance") ?? alliances[0],
            name: str(f, "name"),
            level: str(f, "level"),
            parent: str(f, "parent"),
            population: num(f, "population"),
          });
          await reload();
        }}
      >
        {alliances.length > 1 && (
          <Field label="alliance">
            <select name="alliance">
              {alliances.map((a) => (
                <option value={a}>{a}</option>
              ))}
            </select>
          </Field>
        )}
        <Field label="name">
          <input name="name" required />
        </Field>
        <Field label="level">
          <select name="level">
            {LEVELS.map((l) => (
              <option value={l}>{t(`level_${l}` as Key)}</option>
            ))}
          </select>
        </Field>
        <Field label="parent">
          <InstitutionSelect institutions={institutions} name="parent" required={false} />
        </Field>
        <Field label="population">
          <input name="population" type="number" min={0} />
        </Field>
      </Form>
    </>
  );
}

// ---------------------------------------------------------------- users

interface User {
  id: number;
  login: string;
  role: string;
  institution_name: string;
  totp_enrolled: boolean;
  locked_until: number | null;
  disabled: boolean;
  duty_schedule: string | null;
}

const CLINIC_ROLES = ["clinic_doctor", "clinic_tech"];

function Users({ institutions }: { institutions: Institution[] }) {
  const [users, reload, loadError] = useList<User>("/api/v1/users", "users");
  const [error, setError] = useState("");
  const [note, setNote] = useState("");
  const act = async (f: () => Promise<unknown>, done: string) => {
    setError("");
    try {
      await f();
      setNote(done);
      await reload();
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <>
      <table class="adm-table" data-table="users">
        <thead>
          <tr>
            <th>{t("login_col")}</th>
            <th>{t("role")}</th>
            <th>{t("institution")}</th>
            <th>{t("totp_col")}</th>
            <th title={t("duty_hint")}>{t("duty_col")}</th>
            <th>{t("state")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr data-login={u.login} class={u.disabled ? "disabled" : ""}>
              <td>{u.login}</td>
              <td>
                <select
                  class="role"
                  value={u.role}
                  disabled={u.disabled || u.role === "superadmin"}
                  onChange={(e) => act(() => api("POST", `/api/v1/users/${u.id}/role`, { role: e.currentTarget.value }), `${u.login}: ${t("save_ok")}`)}
                >
                  {[...ROLES, ...(u.role === "superadmin" ? ["superadmin"] : [])].map((r) => (
                    <option value={r}>{t(`role_${r}` as Key)}</option>
                  ))}
                </select>
              </td>
              <td>{u.institution_name}</td>
              <td class="totp">{u.totp_enrolled ? t("enrolled") : t("not_enrolled")}</td>
              <td>
                {CLINIC_ROLES.includes(u.role) && (
                  <input
                    class="duty"
                    value={u.duty_schedule ?? ""}
                    title={u.duty_schedule ?? t("duty_hint")}
                    size={34}
                    placeholder={t("duty_hint")}
                    disabled={u.disabled}
                    onChange={(e) =>
                      act(
                        () => api("PUT", `/api/v1/users/${u.id}/duty-schedule`, { schedule: e.currentTarget.value.trim() || null }),
                        `${u.login}: ${t("save_ok")}`,
                      )
                    }
                  />
                )}
              </td>
              <td>
                {u.disabled ? t("disabled") : u.locked_until && u.locked_until * 1 > Date.now() * 1000 ? t("locked") : "—"}
              </td>
              <td class="actions">
                {!u.disabled && (
                  <>
                    <button
                      class="reset-totp"
                      onClick={() => confirm(t("confirm_reset_totp")) && act(() => api("POST", `/api/v1/users/${u.id}/totp/reset`), `${u.login}: ${t("save_ok")}`)}
                    >
                      {t("reset_totp")}
                    </button>
                    <button
                      class="set-password"
                      onClick={() => {
                        const p = prompt(`${u.login}: ${t("new_password")}`);
                        if (p) act(() => api("POST", `/api/v1/users/${u.id}/password`, { password: p }), `${u.login}: ${t("save_ok")}`);
                      }}
                    >
                      {t("set_password")}
                    </button>
                    <button class="disable" onClick={() => confirm(t("confirm_disable")) && act(() => api("POST", `/api/v1/users/${u.id}/disable`), `${u.login}: ${t("disabled")}`)}>
                      {t("disable")}
                    </button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {(error || loadError) && <p class="error">{error || loadError}</p>}
      {note && <p class="status">{note}</p>}
      <Form
        name="user"
        action={async (f) => {
          await api("POST", "/api/v1/users", {
            institution: str(f, "institution"),
            login: str(f, "login"),
            role: str(f, "role"),
            password: str(f, "password"),
          });
          await reload();
        }}
      >
        <Field label="login_col">
          <input name="login" required autocomplete="off" />
        </Field>
        <Field label="role">
          <select name="role">
            {ROLES.map((r) => (
              <option value={r}>{t(`role_${r}` as Key)}</option>
            ))}
          </select>
        </Field>
        <Field label="institution">
          <InstitutionSelect institutions={institutions} />
        </Field>
        <Field label="password">
          <input name="password" type="password" required autocomplete="new-password" />
        </Field>
      </Form>
    </>
  );
}

// ---------------------------------------------------------------- devices

interface Device {
  id: number;
  serial: string;
  model: string | null;
  kind: string;
  institution_name: string;
  last_seen_at: number | null;
  revoked_at: number | null;
  uploads: number;
}

function Devices({ institutions }: { institutions: Institution[] }) {
  const [devices, reload, loadError] = useList<Device>("/api/v1/devices", "devices");
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  return (
    <>
      <table class="adm-table" data-table="devices">
        <thead>
          <tr>
            <th>{t("serial")}</th>
            <th>{t("model")}</th>
            <th>{t("kind")}</th>
            <th>{t("institution")}</th>
            <th>{t("last_seen")}</th>
            <th>{t("uploads")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {devices.map((d) => (
            <tr data-serial={d.serial} class={d.revoked_at ? "disabled" : ""}>
              <td>{d.serial}</td>
              <td>{d.model ?? "—"}</td>
              <td>{d.kind}</td>
              <td>{d.institution_name}</td>
              <td>{localTime(d.last_seen_at)}</td>
              <td>{d.uploads}</td>
              <td>
                {d.revoked_at ? (
                  t("revoked")
                ) : (
                  <button
                    class="revoke"
                    onClick={() =>
                      attempt(setError, async () => {
                        await api("POST", `/api/v1/devices/${d.id}/revoke`);
                        await reload();
                      })
                    }
                  >
                    {t("revoke")}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {(error || loadError) && <p class="error">{error || loadError}</p>}
      {token && (
        <p class="token">
          {t("device_token")}: <code>{token}</code>
        </p>
      )}
      <Form
        name="device"
        action={async (f) => {
          const d = await api<{ token: string }>("POST", "/api/v1/devices", {
            institution: str(f, "institution"),
            serial: str(f, "serial"),
            model: str(f, "model"),
            kind: str(f, "kind"),
          });
          setToken(d.token);
          await reload();
        }}
      >
        <Field label="serial">
          <input name="serial" required />
        </Field>
        <Field label="model">
          <input name="model" />
        </Field>
        <Field label="kind">
          <select name="kind">
            <option value="ecg">ecg</option>
            <option value="gateway">gateway</option>
          </select>
        </Field>
        <Field label="institution">
          <InstitutionSelect institutions={institutions} />
        </Field>
      </Form>
    </>
  );
}

// ---------------------------------------------------------------- AE titles

interface AeTitle {
  id: number;
  ae_title: string;
  host: string | null;
  institution_name: string;
  priority?: string | null;
}

function AeTitles({ institutions }: { institutions: Institution[] }) {
  const [aes, reload, loadError] = useList<AeTitle>("/api/v1/ae-titles", "ae_titles");
  const [error, setError] = useState("");
  return (
    <>
      <table class="adm-table" data-table="ae">
        <thead>
          <tr>
            <th>{t("ae_title")}</th>
            <th>{t("host")}</th>
            <th>{t("institution")}</th>
            <th>{t("sender_priority")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {aes.map((a) => (
            <tr data-ae={a.ae_title}>
              <td>{a.ae_title}</td>
              <td>{a.host ?? "—"}</td>
              <td>{a.institution_name}</td>
              <td>{a.priority ? t(a.priority as Key) : "—"}</td>
              <td>
                <button
                  class="remove"
                  onClick={() =>
                    attempt(setError, async () => {
                      await api("DELETE", `/api/v1/ae-titles/${a.id}`);
                      await reload();
                    })
                  }
                >
                  {t("remove")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {(error || loadError) && <p class="error">{error || loadError}</p>}
      <Form
        name="ae"
        action={async (f) => {
          await api("POST", "/api/v1/ae-titles", {
            institution: str(f, "institution"),
            ae_title: str(f, "ae_title"),
            host: str(f, "host"),
            priority: str(f, "priority"),
          });
          await reload();
        }}
      >
        <Field label="ae_title">
          <input name="ae_title" required maxLength={16} pattern="[ -~]{1,16}" />
        </Field>
        <Field label="host">
          <input name="host" />
        </Field>
        <Field label="institution">
          <InstitutionSelect institutions={institutions} />
        </Field>
        <Field label="sender_priority">
          <select name="priority">
            <option value="">{t("none")}</option>
            {PRIORITIES.map((p) => (
              <option value={p}>{t(p)}</option>
            ))}
          </select>
        </Field>
      </Form>
    </>
  );
}

// ---------------------------------------------------------------- pools

interface Pool {
  id: number;
  name: string;
  label: string | null;
  escalation_pool_id: number | null;
}

interface Member {
  user_id: number;
  login: string;
  role: string;
  subspecialty: string | null;
  max_open_claims: number;
  schedule: string | null;
  on_duty: boolean;
}

function Pools() {
  const [pools, reload, loadError] = useList<Pool>("/api/v1/pools", "pools");
  const [users] = useList<User>("/api/v1/users", "users");
  const [open, setOpen] = useState<number | null>(null);
  const [members, setMembers] = useState<Member[]>([]);
  const [error, setError] = useState("");
  const loadMembers = useCallback(async (id: number) => {
    try {
      setMembers((await api<{ members: Member[] }>("GET", `/api/v1/pools/${id}/members`)).members);
    } catch (err) {
      setError(message(err));
    }
  }, []);
  useEffect(() => {
    if (open != null) loadMembers(open);
  }, [open, loadMembers]);
  const poolName = (id: number | null) => pools.find((p) => p.id === id)?.label ?? pools.find((p) => p.id === id)?.name ?? "—";
  const readers = users.filter((u) => (u.role === "reader" || u.role === "senior_reader") && !u.disabled);
  return (
    <>
      <table class="adm-table" data-table="pools">
        <thead>
          <tr>
            <th>{t("pool")}</th>
            <th>{t("label")}</th>
            <th>{t("escalation")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {pools.map((p) => (
            <tr data-pool={p.name} class={open === p.id ? "active" : ""}>
              <td>{p.name}</td>
              <td>{p.label ?? "—"}</td>
              <td>
                <select
                  class="escalation"
                  value={p.escalation_pool_id ?? ""}
                  onChange={async (e) => {
                    const v = e.currentTarget.value;
                    try {
                      await api("PATCH", `/api/v1/pools/${p.id}`, { escalation_pool_id: v === "" ? null : Number(v) });
                      await reload();
                    } catch (err) {
                      setError(message(err));
                    }
                  }}
                >
                  <option value="">{t("none")}</option>
                  {pools
                    .filter((x) => x.id !== p.id)
                    .map((x) => (
                      <option value={x.id}>{x.label ?? x.name}</option>
                    ))}
                </select>
              </td>
              <td>
                <button class="members" onClick={() => setOpen(open === p.id ? null : p.id)}>
                  {t("members")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {(error || loadError) && <p class="error">{error || loadError}</p>}
      {open != null && (
        <section class="pool-members" data-pool-id={open}>
          <h3>
            {poolName(open)} · {t("members")}
          </h3>
          <table class="adm-table" data-table="members">
            <thead>
              <tr>
                <th>{t("login_col")}</th>
                <th>{t("role")}</th>
                <th>{t("subspecialty")}</th>
                <th>{t("max_claims")}</th>
                <th>{t("schedule")}</th>
                <th>{t("on_duty")}</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {members.map((m) => (
                <tr data-member={m.login}>
                  <td>{m.login}</td>
                  <td>{t(`role_${m.role}` as Key)}</td>
                  <td>{m.subspecialty ?? "—"}</td>
                  <td>{m.max_open_claims}</td>
                  <td>{m.schedule ?? "—"}</td>
                  <td>{m.on_duty ? "✓" : "—"}</td>
                  <td>
                    <button
                      class="remove"
                      onClick={() =>
                        attempt(setError, async () => {
                          await api("DELETE", `/api/v1/pools/${open}/members/${m.user_id}`);
                          await loadMembers(open);
                        })
                      }
                    >
                      {t("remove")}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Form
            name="member"
            action={async (f) => {
              await api("PUT", `/api/v1/pools/${open}/members/${str(f, "user")}`, {
                subspecialty: str(f, "subspecialty"),
                max_open_claims: num(f, "max_open_claims"),
                schedule: str(f, "schedule"),
              });
              await loadMembers(open);
            }}
          >
            <Field label="login_col">
              <select name="user" required>
                {readers.map((u) => (
                  <option value={u.id}>{u.login}</option>
                ))}
              </select>
            </Field>
            <Field label="subspecialty">
              <input name="subspecialty" />
            </Field>
            <Field label="max_claims">
              <input name="max_open_claims" type="number" min={1} max={1000} placeholder="5" />
            </Field>
            <Field label="schedule">
              <input name="schedule" placeholder="Mon-Fri 08:00-17:30" />
            </Field>
          </Form>
        </section>
      )}
      <Form
        name="pool"
        action={async (f) => {
          await api("POST", "/api/v1/pools", { name: str(f, "name"), label: str(f, "label") });
          await reload();
        }}
      >
        <Field label="pool">
          <input name="name" required pattern="[a-z0-9_\-]+" />
        </Field>
        <Field label="label">
          <input name="label" />
        </Field>
      </Form>
    </>
  );
}

// ---------------------------------------------------------------- routing rules

interface Rule {
  id: number;
  position: number;
  name: string;
  enabled: boolean;
  conditions: Record<string, unknown>;
  pool_id: number;
  priority: string;
  sla_minutes: number;
}

/// `{"modalities":["CT"]}` → `modalities: CT`.
function conditionText(c: Record<string, unknown>): string {
  const parts = Object.entries(c ?? {})
    .filter(([, v]) => v != null && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : JSON.stringify(v)}`);
  return parts.length ? parts.join("; ") : "*";
}

function RuleEditor({ rule, pools, onDone }: { rule: Rule; pools: Pool[]; onDone: () => void }) {
  const [draft, setDraft] = useState({ ...rule, conditionsText: JSON.stringify(rule.conditions ?? {}) });
  const [error, setError] = useState("");
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await api("PUT", `/api/v1/routing-rules/${rule.id}`, {
        position: Number(draft.position),
        name: draft.name,
        enabled: draft.enabled,
        conditions: JSON.parse(draft.conditionsText || "{}"),
        pool_id: Number(draft.pool_id),
        priority: draft.priority,
        sla_minutes: Number(draft.sla_minutes),
      });
      onDone();
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <form class="adm-form rule-editor" data-form="rule-edit" onSubmit={save}>
      <Field label="position">
        <input type="number" value={draft.position} onInput={(e) => setDraft({ ...draft, position: Number(e.currentTarget.value) })} />
      </Field>
      <Field label="name">
        <input value={draft.name} onInput={(e) => setDraft({ ...draft, name: e.currentTarget.value })} />
      </Field>
      <Field label="enabled">
        <input type="checkbox" checked={draft.enabled} onChange={(e) => setDraft({ ...draft, enabled: e.currentTarget.checked })} />
      </Field>
      <Field label="pool">
        <select value={draft.pool_id} onChange={(e) => setDraft({ ...draft, pool_id: Number(e.currentTarget.value) })}>
          {pools.map((p) => (
            <option value={p.id}>{p.label ?? p.name}</option>
          ))}
        </select>
      </Field>
      <Field label="priority">
        <select value={draft.priority} onChange={(e) => setDraft({ ...draft, priority: e.currentTarget.value })}>
          {PRIORITIES.map((p) => (
            <option value={p}>{t(p)}</option>
          ))}
        </select>
      </Field>
      <Field label="sla_minutes">
        <input name="sla_minutes" type="number" min={1} value={draft.sla_minutes} onInput={(e) => setDraft({ ...draft, sla_minutes: Number(e.currentTarget.value) })} />
      </Field>
      <Field label="conditions">
        <textarea name="conditions" rows={3} cols={48} value={draft.conditionsText} onInput={(e) => setDraft({ ...draft, conditionsText: e.currentTarget.value })} />
      </Field>
      <button type="submit">{t("save")}</button>
      <button type="button" onClick={onDone}>
        {t("cancel")}
      </button>
      {error && <span class="error">{error}</span>}
    </form>
  );
}

function DryRun({ rules }: { rules: Rule[] }) {
  const [result, setResult] = useState<any>(null);
  const [error, setError] = useState("");
  const run = async (e: Event) => {
    e.preventDefault();
    const uid = String(new FormData(e.currentTarget as HTMLFormElement).get("study") ?? "").trim();
    setError("");
    try {
      setResult(await api("POST", "/api/v1/routing-rules/dry-run", { study_instance_uid: uid }));
    } catch (err) {
      setResult(null);
      setError(message(err));
    }
  };
  const rule = result?.rule;
  const ruleName = rule ? (rule.name ?? rules.find((r) => r.id === rule.id)?.name ?? `#${rule.id}`) : null;
  return (
    <section class="dry-run">
      <h3>{t("dry_run")}</h3>
      <form class="adm-form" data-form="dry-run" onSubmit={run}>
        <Field label="study_uid">
          <input name="study" required size={48} />
        </Field>
        <button type="submit">{t("dry_run")}</button>
        {error && <span class="error">{error}</span>}
      </form>
      {result && (
        <div class="dry-run-result">
          <p>
            {t("matched_rule")}: <strong class="rule-name">{ruleName ?? t("no_rule")}</strong>
            {result.priority && <> · {t(result.priority as Key)}</>}
            {rule?.sla_minutes != null && (
              <>
                {" "}
                · {t("sla_minutes")} {rule.sla_minutes}
              </>
            )}
          </p>
          <pre class="facts">{JSON.stringify(result.facts, null, 1)}</pre>
        </div>
      )}
    </section>
  );
}

function Rules() {
  const [rules, reload, loadError] = useList<Rule>("/api/v1/routing-rules", "rules");
  const [pools] = useList<Pool>("/api/v1/pools", "pools");
  const [editing, setEditing] = useState<number | null>(null);
  const [error, setError] = useState("");
  const poolName = (id: number) => {
    const p = pools.find((x) => x.id === id);
    return p ? p.label ?? p.name : `#${id}`;
  };
  return (
    <>
      <table class="adm-table" data-table="rules">
        <thead>
          <tr>
            <th>{t("position")}</th>
            <th>{t("name")}</th>
            <th>{t("enabled")}</th>
            <th>{t("conditions")}</th>
            <th>{t("pool")}</th>
            <th>{t("priority")}</th>
            <th>{t("sla_minutes")}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rules.map((r) =>
            editing === r.id ? (
              <tr data-rule={r.name}>
                <td colSpan={8}>
                  <RuleEditor
                    rule={r}
                    pools={pools}
                    onDone={() => {
                      setEditing(null);
                      reload();
                    }}
                  />
                </td>
              </tr>
            ) : (
              <tr data-rule={r.name} class={r.enabled ? "" : "disabled"}>
                <td>{r.position}</td>
                <td>{r.name}</td>
                <td>{r.enabled ? "✓" : "—"}</td>
                <td class="conditions">{conditionText(r.conditions)}</td>
                <td>{poolName(r.pool_id)}</td>
                <td>
                  <span class={`prio ${r.priority}`}>{t(r.priority as Key)}</span>
                </td>
                <td class="sla">{r.sla_minutes}</td>
                <td>
                  <button class="edit" onClick={() => setEditing(r.id)}>
                    {t("edit")}
                  </button>
                  <button
                    class="remove"
                    onClick={() =>
                      attempt(setError, async () => {
                        await api("DELETE", `/api/v1/routing-rules/${r.id}`);
                        await reload();
                      })
                    }
                  >
                    {t("remove")}
                  </button>
                </td>
              </tr>
            ),
          )}
        </tbody>
      </table>
      {(error || loadError) && <p class="error">{error || loadError}</p>}
      <Form
        name="rule"
        action={async (f) => {
          await api("POST", "/api/v1/routing-rules", {
            position: num(f, "position"),
            name: str(f, "name"),
            enabled: true,
            conditions: JSON.parse(str(f, "conditions") ?? "{}"),
            pool_id: num(f, "pool"),
            priority: str(f, "priority"),
            sla_minutes: num(f, "sla_minutes"),
          });
          await reload();
        }}
      >
        <Field label="position">
          <input name="position" type="number" required />
        </Field>
        <Field label="name">
          <input name="name" required />
        </Field>
        <Field label="conditions">
          <input name="conditions" size={32} placeholder='{"modalities":["CT"]}' />
        </Field>
        <Field label="pool">
          <select name="pool">
            {pools.map((p) => (
              <option value={p.id}>{p.label ?? p.name}</option>
            ))}
          </select>
        </Field>
        <Field label="priority">
          <select name="priority">
            {PRIORITIES.map((p) => (
              <option value={p}>{t(p)}</option>
            ))}
          </select>
        </Field>
        <Field label="sla_minutes">
          <input name="sla_minutes" type="number" min={1} required />
        </Field>
      </Form>
      <DryRun rules={rules} />
    </>
  );
}

// ---------------------------------------------------------------- templates and exams

/// A catalogue of JSON definitions (report templates or exam types): a table, and an
/// editor for one definition that the API validates (422 names every problem).
function Catalogue<T extends { code: string; definition: any }>({
  path,
  listKey: key,
  columns,
  body,
}: {
  path: string;
  /// The list's field in the response (not `key`, which Preact keeps for itself).
  listKey: string;
  columns: [Key, (row: T) => ComponentChildren][];
  body: (row: T, definition: unknown) => unknown;
}) {
  const [rows, reload, loadError] = useList<T>(path, key);
  const [editing, setEditing] = useState<T | null>(null);
  const [text, setText] = useState("");
  const [error, setError] = useState("");
  const [note, setNote] = useState("");
  const save = async (e: Event) => {
    e.preventDefault();
    if (!editing) return;
    setError("");
    try {
      await api("PUT", `${path}/${encodeURIComponent(editing.code)}`, body(editing, JSON.parse(text)));
      setNote(`${editing.code}: ${t("save_ok")}`);
      setEditing(null);
      await reload();
    } catch (err) {
      setError(message(err));
    }
  };
  return (
    <>
      <table class="adm-table" data-table={key}>
        <thead>
          <tr>
            <th>{t("code")}</th>
            {columns.map(([k]) => (
              <th>{t(k)}</th>
            ))}
            <th />
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr data-code={r.code}>
              <td>{r.code}</td>
              {columns.map(([, f]) => (
                <td>{f(r)}</td>
              ))}
              <td>
                <button
                  class="edit"
                  onClick={() => {
                    setEditing(r);
                    setText(JSON.stringify(r.definition, null, 2));
                    setNote("");
                  }}
                >
                  {t("edit")}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {(error || loadError) && <p class="error">{error || loadError}</p>}
      {note && <p class="status">{note}</p>}
      {editing && (
        <form class="adm-form json-editor" data-form="definition" onSubmit={save}>
          <Field label="definition">
            <textarea name="definition" rows={18} cols={90} value={text} onInput={(e) => setText(e.currentTarget.value)} />
          </Field>
          <button type="submit">{t("save")}</button>
          <button type="button" onClick={() => setEditing(null)}>
            {t("cancel")}
          </button>
        </form>
      )}
    </>
  );
}

interface Template {
  code: string;
  name: string;
  enabled: boolean;
  definition: any;
}

interface ExamType {
  code: string;
  recognition_eligible: boolean;
  validity_days: number | null;
  definition: any;
}

function Templates() {
  return (
    <Catalogue<Template>
      path="/api/v1/report-templates"
      listKey="templates"
      columns={[
        ["name", (r) => r.name],
        ["modality", (r) => r.definition?.modality?.join?.(", ") ?? "—"],
        ["enabled", (r) => (r.enabled ? "✓" : "—")],
      ]}
      body={(r, definition) => ({ definition, enabled: r.enabled })}
    />
  );
}

function Exams() {
  return (
    <Catalogue<ExamType>
      path="/api/v1/exam-types"
      listKey="exam_types"
      columns={[
        ["name", (r) => r.definition?.name ?? "—"],
        ["modality", (r) => r.definition?.modality ?? "—"],
        ["eligible", (r) => (r.recognition_eligible ? "✓" : "—")],
        ["validity_days", (r) => r.validity_days ?? "—"],
      ]}
      body={(_r, definition) => ({ definition })}
    />
  );
}

// ---------------------------------------------------------------- the page

export function Admin({ page }: { page: string }) {
  const pick = (p: string): Page => ((PAGES as readonly string[]).includes(p) ? (p as Page) : "institutions");
  const [current, setCurrent] = useState<Page>(pick(page));
  useEffect(() => {
    const back = () => setCurrent(pick(location.pathname.split("/")[2] ?? ""));
    addEventListener("popstate", back);
    return () => removeEventListener("popstate", back);
  }, []);
  const go = (p: Page) => {
    history.pushState(null, "", `/admin/${p}`);
    setCurrent(p);
  };
  const [institutions, reloadInstitutions, error] = useList<Institution>("/api/v1/institutions", "institutions");
  return (
    <section class="admin">
      <nav class="tabs adm-tabs">
        {PAGES.map((p) => (
          <button class={`tab${p === current ? " active" : ""}`} data-page={p} onClick={() => go(p)}>
            {t(`adm_${p}` as Key)}
          </button>
        ))}
      </nav>
      {error && <p class="error">{error}</p>}
      {current === "institutions" && <Institutions institutions={institutions} reload={reloadInstitutions} />}
      {current === "users" && <Users institutions={institutions} />}
      {current === "devices" && <Devices institutions={institutions} />}
      {current === "ae" && <AeTitles institutions={institutions} />}
      {current === "pools" && <Pools />}
      {current === "rules" && <Rules />}
      {current === "templates" && <Templates />}
      {current === "exams" && <Exams />}
    </section>
  );
}
