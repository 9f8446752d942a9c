// The alliance's indicators dashboard (group admins): charts (ECharts, loaded only on this
// page) over `GET /api/v1/stats/...`, with a date range and an institution filter; every
// panel links the same figures as CSV for export.
import { useEffect, useRef, useState } from "preact/hooks";
import * as echarts from "echarts/core";
import { BarChart, LineChart } from "echarts/charts";
import { GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import { message } from "./format";
import { api } from "./api";
import { lang, t, type Key } from "./i18n";

echarts.use([BarChart, LineChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

interface Institution {
  id: number;
  name: string;
  level: string;
}

/// `YYYY-MM-DD` of a day in UTC+8, `offset` days from today.
function day(offset = 0): string {
  return new Date(Date.now() + 8 * 3600_000 + offset * 86_400_000).toISOString().slice(0, 10);
}

/// Every day from `from` to `to` inclusive.
function days(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = Date.parse(`${from}T00:00:00Z`); d <= Date.parse(`${to}T00:00:00Z`) && out.length < 400; d += 86_400_000) {
    out.push(new Date(d).toISOString().slice(0, 10));
  }
  return out;
}

function Chart({ name, option }: { name: string; option: echarts.EChartsCoreOption | null }) {
  const el = useRef<HTMLDivElement>(null);
  // options are rebuilt on every render; redraw only when their content changes
  const key = option ? JSON.stringify(option) : "";
  useEffect(() => {
    if (!el.current || !option) return;
    const chart = echarts.init(el.current, undefined, { renderer: "canvas" });
    chart.setOption(option);
    const resize = () => chart.resize();
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      chart.dispose();
    };
  }, [key]);
  // how many non-zero values the chart plots (tests: "every chart with data")
  const points = ((option as any)?.series ?? []).reduce(
    (n: number, se: any) => n + (se.data ?? []).filter((x: unknown) => typeof x === "number" && x !== 0).length,
    0,
  );
  return <div class="chart" data-chart={name} data-points={points} ref={el} />;
}

function Panel({ title, name, csv, children }: { title: Key; name: string; csv?: string; children: preact.ComponentChildren }) {
  return (
    <section class="panel" data-panel={name}>
      <header>
        <h3>{t(title)}</h3>
        {csv && (
          <a class="csv" href={csv} download>
            {t("export_csv")}
          </a>
        )}
      </header>
      {children}
    </section>
  );
}

const fmt = (x: number | null | undefined, digits = 1) => (x == null ? "—" : Number(x).toFixed(digits));
const pct = (x: number | null | undefined) => (x == null ? "—" : `${(x * 100).toFixed(1)}%`);

export function Dashboard() {
  const [from, setFrom] = useState(day(-29));
  const [to, setTo] = useState(day());
  const [inst, setInst] = useState("");
  const [institutions, setInstitutions] = useState<Institution[]>([]);
  const [categories, setCategories] = useState<{ code: string; label: string; label_en: string }[]>([]);
  const [data, setData] = useState<Record<string, any>>({});
  const [error, setError] = useState("");
  const query = `from=${from}&to=${to}${inst ? `&institution_id=${inst}` : ""}`;
  const load = async () => {
    setError("");
    const names = ["volumes", "turnaround", "remote-reads", "grassroots", "criticals", "recognition"];
    try {
      const [cov, ...rest] = await Promise.all([
        api("GET", "/api/v1/stats/ecg-coverage"),
        ...names.map((n) => api("GET", `/api/v1/stats/${n}?${query}`)),
      ]);
      const next: Record<string, any> = { "ecg-coverage": cov };
      names.forEach((n, i) => (next[n] = rest[i]));
      setData(next);
    } catch (err) {
      setError(message(err));
    }
  };
  useEffect(() => {
    api<{ institutions: Institution[] }>("GET", "/api/v1/institutions")
      .then((r) => setInstitutions(r.institutions))
      .catch(() => undefined);
    api<{ categories: { code: string; label: string; label_en: string }[] }>("GET", "/api/v1/critical-categories")
      .then((r) => setCategories(r.categories))
      .catch(() => undefined);
    load();
  }, []);
  const csv = (name: string) => `/api/v1/stats/${name}?${query}&format=csv`;
  const axisDays = days(data.volumes?.from ?? from, data.volumes?.to ?? to);
  const en = lang.get() === "en";

  // volumes: stacked bars per day, one series per modality
  const vol = data.volumes;
  const volOption = vol
    ? (() => {
        const mods = [...new Set<string>(vol.rows.map((r: any) => r.modality ?? "—"))].sort();
        return {
          tooltip: { trigger: "axis" },
          legend: { top: 0 },
          grid: { left: 40, right: 16, top: 32, bottom: 24 },
          xAxis: { type: "category", data: axisDays.map((d) => d.slice(5)) },
          yAxis: { type: "value", minInterval: 1 },
          series: mods.map((m) => ({
            name: m,
            type: "bar",
            stack: "v",
            data: axisDays.map((d) => vol.rows.filter((r: any) => r.day === d && (r.modality ?? "—") === m).reduce((a: number, r: any) => a + r.studies, 0)),
          })),
        };
      })()
    : null;
  // studies per institution over the range
  const byInst: [string, number][] = vol
    ? Object.entries(
        vol.rows.reduce((acc: Record<string, number>, r: any) => {
          const k = r.institution ?? "—";
          acc[k] = (acc[k] ?? 0) + r.studies;
          return acc;
        }, {}),
      )
    : [];

  const tat = data.turnaround;
  const tatOption = tat
    ? {
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 40, right: 40, top: 32, bottom: 24 },
        xAxis: { type: "category", data: tat.rows.map((r: any) => r.pool) },
        yAxis: [{ type: "value", name: en ? "min" : "分钟" }, { type: "value", max: 1, axisLabel: { formatter: (v: number) => `${v * 100}%` } }],
        series: [
          { name: t("p50"), type: "bar", data: tat.rows.map((r: any) => r.p50_minutes) },
          { name: t("p90"), type: "bar", data: tat.rows.map((r: any) => r.p90_minutes) },
          { name: t("breach_rate"), type: "line", yAxisIndex: 1, data: tat.rows.map((r: any) => r.breach_rate) },
        ],
      }
    : null;

  const rr = data["remote-reads"];
  const rrOption = rr
    ? {
        tooltip: { trigger: "axis" },
        grid: { left: 40, right: 16, top: 16, bottom: 48 },
        xAxis: { type: "category", data: rr.rows.map((r: any) => r.institution), axisLabel: { rotate: 20 } },
        yAxis: { type: "value" },
        series: [{ name: t("per_10k"), type: "bar", data: rr.rows.map((r: any) => r.per_10k) }],
      }
    : null;

  const gr = data.grassroots;
  const grOption = gr
    ? {
        tooltip: { trigger: "axis" },
        grid: { left: 40, right: 16, top: 16, bottom: 24 },
        xAxis: { type: "category", data: axisDays.map((d) => d.slice(5)) },
        yAxis: { type: "value", minInterval: 1 },
        series: [{ name: t("patients_n"), type: "line", data: axisDays.map((d) => gr.rows.find((r: any) => r.day === d)?.patients ?? 0) }],
      }
    : null;

  const cr = data.criticals;
  const crOption = cr
    ? {
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 40, right: 16, top: 32, bottom: 48 },
        xAxis: {
          type: "category",
          data: cr.rows.map((r: any) => {
            const c = categories.find((x) => x.code === r.category);
            return c ? (en ? c.label_en : c.label) : r.category;
          }),
          axisLabel: { rotate: 20 },
        },
        yAxis: [{ type: "value", minInterval: 1 }, { type: "value", name: en ? "min" : "分钟" }],
        series: [
          { name: t("raised"), type: "bar", data: cr.rows.map((r: any) => r.raised) },
          { name: t("acknowledged"), type: "bar", data: cr.rows.map((r: any) => r.acknowledged) },
          { name: t("ack_p50"), type: "line", yAxisIndex: 1, data: cr.rows.map((r: any) => r.ack_p50_minutes) },
        ],
      }
    : null;

  const rec = data.recognition;
  const recOption = rec
    ? {
        tooltip: { trigger: "axis" },
        grid: { left: 40, right: 16, top: 16, bottom: 24 },
        xAxis: { type: "category", data: axisDays.map((d) => d.slice(5)) },
        yAxis: { type: "value", minInterval: 1 },
        series: [
          {
            name: t("lookups"),
            type: "bar",
            data: axisDays.map((d) => rec.rows.filter((r: any) => r.day === d).reduce((a: number, r: any) => a + r.lookups, 0)),
          },
        ],
      }
    : null;

  const cov = data["ecg-coverage"]?.alliances?.[0];
  const covOption = cov
    ? {
        tooltip: { trigger: "item" },
        grid: { left: 40, right: 16, top: 16, bottom: 24 },
        xAxis: { type: "category", data: [t("level_village"), t("level_township")] },
        yAxis: { type: "value", max: 1, axisLabel: { formatter: (v: number) => `${v * 100}%` } },
        series: [{ name: t("coverage"), type: "bar", data: [cov.coverage, cov.township_coverage] }],
      }
    : null;

  return (
    <section class="dashboard">
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          load();
        }}
      >
        <label>
          {t("date_from")} <input type="date" name="from" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          {t("date_to")} <input type="date" name="to" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <select name="institution" value={inst} onChange={(e) => setInst(e.currentTarget.value)}>
          <option value="">{t("all_institutions")}</option>
          {institutions.map((i) => (
            <option value={i.id}>{i.name}</option>
          ))}
        </select>
        <button type="submit">{t("apply")}</button>
        {error && <span class="error">{error}</span>}
      </form>
      <div class="kpis">
        <div class="kpi" data-kpi="studies">
          <span>{t("studies_n")}</span>
          <strong>{vol?.totals?.studies ?? "—"}</strong>
        </div>
        <div class="kpi" data-kpi="per_10k">
          <span>{t("st_remote")}</span>
          <strong>{fmt(rr?.alliance?.per_10k, 2)}</strong>
        </div>
        <div class="kpi" data-kpi="coverage">
          <span>{t("st_coverage")}</span>
          <strong>{pct(cov?.coverage)}</strong>
          <small>{cov ? `${cov.villages_with_device}/${cov.village_clinics}` : ""}</small>
        </div>
        <div class="kpi" data-kpi="grassroots">
          <span>{t("st_grassroots")}</span>
          <strong>{gr?.totals?.patients ?? "—"}</strong>
        </div>
        <div class="kpi" data-kpi="turnaround">
          <span>{t("p50")}</span>
          <strong>{fmt(tat?.overall?.p50_minutes)}</strong>
          <small>
            {t("breach_rate")} {pct(tat?.overall?.breach_rate)}
          </small>
        </div>
        <div class="kpi" data-kpi="criticals">
          <span>{t("st_criticals")}</span>
          <strong>{cr?.overall?.raised ?? "—"}</strong>
          <small>
            {t("ack_p50")} {fmt(cr?.overall?.ack_p50_minutes)}
          </small>
        </div>
        <div class="kpi" data-kpi="lookups">
          <span>{t("st_recognition")}</span>
          <strong>{rec?.totals?.lookups ?? "—"}</strong>
        </div>
      </div>
      <div class="panels">
        <Panel title="st_volumes" name="volumes" csv={csv("volumes")}>
          <Chart name="volumes" option={volOption} />
          <table class="mini" data-table="volumes-by-institution">
            <tbody>
              {byInst.map(([name, n]) => (
                <tr>
                  <td>{name}</td>
                  <td class="num">{n}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Panel>
        <Panel title="st_turnaround" name="turnaround" csv={csv("turnaround")}>
          <Chart name="turnaround" option={tatOption} />
        </Panel>
        <Panel title="st_remote" name="remote-reads" csv={csv("remote-reads")}>
          <Chart name="remote-reads" option={rrOption} />
        </Panel>
        <Panel title="st_coverage" name="ecg-coverage">
          <Chart name="ecg-coverage" option={covOption} />
        </Panel>
        <Panel title="st_grassroots" name="grassroots" csv={csv("grassroots")}>
          <Chart name="grassroots" option={grOption} />
        </Panel>
        <Panel title="st_criticals" name="criticals" csv={csv("criticals")}>
          <Chart name="criticals" option={crOption} />
        </Panel>
        <Panel title="st_recognition" name="recognition" csv={csv("recognition")}>
          <Chart name="recognition" option={recOption} />
        </Panel>
      </div>
    </section>
  );
}
