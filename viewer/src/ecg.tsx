// The ECG viewer: the standard paper (1 mm / 5 mm grid), 3×4 with a lead II rhythm strip
// or 12×1, 25/50 mm/s and 5/10/20 mm/mV, calipers reading ms and bpm, the machine
// measurements and the critical flags of the analysis.
import { useEffect, useMemo, useState } from "preact/hooks";
import { message } from "./format";
import { api, ApiError } from "./api";
import { lang, t } from "./i18n";

interface Waveform {
  sample_rate_hz: number;
  samples_per_lead: number;
  leads: { code: string; samples_uv: number[] }[];
}

interface Flag {
  code: string;
  message: string;
  message_zh: string;
  lead?: string | null;
  value?: number | null;
  unit?: string | null;
}

interface Analysis {
  heart_rate_bpm?: number | null;
  rr_mean_ms?: number | null;
  pr_ms?: number | null;
  qrs_ms?: number | null;
  qt_ms?: number | null;
  qtc_bazett_ms?: number | null;
  qtc_fridericia_ms?: number | null;
  p_axis_deg?: number | null;
  qrs_axis_deg?: number | null;
  t_axis_deg?: number | null;
  critical?: Flag[];
}

interface EcgRecord {
  id: number;
  sample_rate_hz: number;
  critical: boolean;
  analysis: Analysis | null;
}

/// Pixels per millimetre of paper.
const PX_PER_MM = 4;
const STANDARD: string[][] = [
  ["I", "aVR", "V1", "V4"],
  ["II", "aVL", "V2", "V5"],
  ["III", "aVF", "V3", "V6"],
];
const ALL12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"];

type Layout = "3x4" | "12x1";

function Grid({ width, height }: { width: number; height: number }) {
  const minor: string[] = [];
  const major: string[] = [];
  for (let mm = 0; mm * PX_PER_MM <= width; mm++) {
    (mm % 5 === 0 ? major : minor).push(`M${mm * PX_PER_MM} 0V${height}`);
  }
  for (let mm = 0; mm * PX_PER_MM <= height; mm++) {
    (mm % 5 === 0 ? major : minor).push(`M0 ${mm * PX_PER_MM}H${width}`);
  }
  return (
    <g class="grid">
      <path d={minor.join("")} stroke="#f6c9c9" stroke-width="0.5" />
      <path d={major.join("")} stroke="#e89a9a" stroke-width="1" />
    </g>
  );
}

/// One lead's trace: `seconds` from `from_s`, at x0, baseline y0.
function trace(
  w: Waveform,
  code: string,
  fromS: number,
  seconds: number,
  x0: number,
  y0: number,
  speed: number,
  gain: number,
): string {
  const lead = w.leads.find((l) => l.code === code);
  if (!lead) return "";
  const fs = w.sample_rate_hz;
  const a = Math.max(0, Math.floor(fromS * fs));
  const b = Math.min(lead.samples_uv.length, Math.floor((fromS + seconds) * fs));
  const pxPerSample = (speed * PX_PER_MM) / fs;
  const pxPerUv = (gain * PX_PER_MM) / 1000;
  const pts: string[] = [];
  for (let i = a; i < b; i++) {
    pts.push(`${(x0 + (i - a) * pxPerSample).toFixed(2)},${(y0 - lead.samples_uv[i] * pxPerUv).toFixed(2)}`);
  }
  return pts.join(" ");
}

/// `onNone`: called when the study has no ECG (or is not found).
export function EcgViewer({ study, onNone }: { study: string; onNone?: () => void }) {
  const [ecg, setEcg] = useState<EcgRecord | null>(null);
  const [wave, setWave] = useState<Waveform | null>(null);
  const [error, setError] = useState("");
  const [layout, setLayout] = useState<Layout>("3x4");
  const [speed, setSpeed] = useState(25);
  const [gain, setGain] = useState(10);
  const [calipers, setCalipers] = useState<number[]>([]);
  const [none, setNone] = useState(false);

  useEffect(() => {
    (async () => {
      try {
        const list = await api<{ ecgs: EcgRecord[] }>("GET", `/api/v1/ecg?study=${encodeURIComponent(study)}`).catch(
          (e) => {
            // a study without an ECG: nothing to show here
            if (e instanceof ApiError && e.status === 404) return { ecgs: [] };
            throw e;
          },
        );
        const first = list.ecgs[0];
        if (!first) {
          setNone(true);
          onNone?.();
          return;
        }
        setEcg(first);
        setWave(await api<Waveform>("GET", `/api/v1/ecg/${first.id}/waveform`));
      } catch (err) {
        setError(message(err));
      }
    })();
  }, [study]);

  const duration = wave ? wave.samples_per_lead / wave.sample_rate_hz : 0;
  const rowMm = gain * 3; // three millivolts of paper per row
  const geometry = useMemo(() => {
    if (layout === "3x4") {
      const width = Math.ceil(speed * duration) * PX_PER_MM;
      const height = (STANDARD.length + 1) * rowMm * PX_PER_MM;
      return { width, height };
    }
    return { width: Math.ceil(speed * duration) * PX_PER_MM, height: ALL12.length * rowMm * PX_PER_MM };
  }, [layout, speed, duration, rowMm]);

  if (error) return <p class="error">{error}</p>;
  if (none) return null;
  if (!wave || !ecg) return <p>{t("loading")}</p>;

  const rowPx = rowMm * PX_PER_MM;
  const traces: { code: string; points: string; x: number; y: number; rhythm?: boolean }[] = [];
  if (layout === "3x4") {
    const colS = duration / 4;
    STANDARD.forEach((row, r) =>
      row.forEach((code, c) => {
        const x = c * colS * speed * PX_PER_MM;
        const y = (r + 0.5) * rowPx;
        traces.push({ code, points: trace(wave, code, c * colS, colS, x, y, speed, gain), x, y });
      }),
    );
    const y = (STANDARD.length + 0.5) * rowPx;
    traces.push({ code: "II", points: trace(wave, "II", 0, duration, 0, y, speed, gain), x: 0, y, rhythm: true });
  } else {
    ALL12.forEach((code, r) => {
      const y = (r + 0.5) * rowPx;
      traces.push({ code, points: trace(wave, code, 0, duration, 0, y, speed, gain), x: 0, y });
    });
  }

  // calipers: two clicks on the paper; the interval in ms and as a rate
  const msPerPx = 1000 / (speed * PX_PER_MM);
  const onClick = (e: MouseEvent) => {
    const svg = e.currentTarget as SVGSVGElement;
    const box = svg.getBoundingClientRect();
    const x = ((e.clientX - box.left) * geometry.width) / box.width;
    setCalipers((c) => (c.length >= 2 ? [x] : [...c, x]));
  };
  const interval = calipers.length === 2 ? Math.abs(calipers[1] - calipers[0]) * msPerPx : null;
  const a = ecg.analysis ?? {};
  const num = (v: number | null | undefined, unit: string) => (v == null ? "—" : `${Math.round(v)} ${unit}`);
  const flags = a.critical ?? [];

  return (
    <section class="ecg">
      {flags.length > 0 && (
        <div class="ecg-flags" role="alert">
          {flags.map((f) => (
            <p class="flag" data-flag={f.code}>
              {lang.get() === "en" ? f.message : f.message_zh}
              {f.lead ? ` (${f.lead}${f.value != null ? ` ${f.value}${f.unit ?? ""}` : ""})` : ""}
            </p>
          ))}
        </div>
      )}
      <div class="ecg-controls">
        <label>
          {t("layout")}
          <select name="layout" value={layout} onChange={(e) => setLayout(e.currentTarget.value as Layout)}>
            <option value="3x4">3×4 + II</option>
            <option value="12x1">12×1</option>
          </select>
        </label>
        <label>
          {t("speed")}
          <select name="speed" value={speed} onChange={(e) => { setSpeed(Number(e.currentTarget.value)); setCalipers([]); }}>
            <option value="25">25 mm/s</option>
            <option value="50">50 mm/s</option>
          </select>
        </label>
        <label>
          {t("gain")}
          <select name="gain" value={gain} onChange={(e) => setGain(Number(e.currentTarget.value))}>
            <option value="5">5 mm/mV</option>
            <option value="10">10 mm/mV</option>
            <option value="20">20 mm/mV</option>
          </select>
        </label>
        <span class="caliper" data-ms={interval == null ? "" : interval.toFixed(1)}>
          {t("caliper")}：
          {interval == null ? t("caliper_hint") : `${Math.round(interval)} ms · ${Math.round(60000 / interval)} bpm`}
        </span>
      </div>
      <div class="paper">
        <svg
          width={geometry.width}
          height={geometry.height}
          viewBox={`0 0 ${geometry.width} ${geometry.height}`}
          data-px-per-mm={PX_PER_MM}
          data-speed={speed}
          data-gain={gain}
          onClick={onClick}
        >
          <Grid width={geometry.width} height={geometry.height} />
          {traces.map((tr) => (
            <g class="lead" data-lead={tr.code} data-rhythm={tr.rhythm ? "1" : undefined}>
              <polyline points={tr.points} fill="none" stroke="#111" stroke-width="1" />
              <text x={tr.x + 4} y={tr.y - rowPx / 2 + 14} font-size="12">{tr.code}</text>
            </g>
          ))}
          {calipers.map((x) => (
            <line class="caliper-line" x1={x} x2={x} y1={0} y2={geometry.height} stroke="#1f5fa8" stroke-width="1.5" />
          ))}
        </svg>
      </div>
      <table class="measurements">
        <tbody>
          <tr><th>{t("hr_bpm")}</th><td data-m="heart_rate">{num(a.heart_rate_bpm, "bpm")}</td>
            <th>RR</th><td>{num(a.rr_mean_ms, "ms")}</td>
            <th>PR</th><td>{num(a.pr_ms, "ms")}</td>
            <th>QRS</th><td>{num(a.qrs_ms, "ms")}</td></tr>
          <tr><th>QT</th><td>{num(a.qt_ms, "ms")}</td>
            <th>QTc (Bazett)</th><td>{num(a.qtc_bazett_ms, "ms")}</td>
            <th>QTc (Fridericia)</th><td>{num(a.qtc_fridericia_ms, "ms")}</td>
            <th>{t("axis")} P/QRS/T</th><td>{[a.p_axis_deg, a.qrs_axis_deg, a.t_axis_deg].map((v) => (v == null ? "—" : `${Math.round(v)}°`)).join(" / ")}</td></tr>
        </tbody>
      </table>
    </section>
  );
}
