// The image viewer of the reading page: cornerstone3D (core, tools, dicom-image-loader)
// on dxhub's DICOMweb — WADO-RS frames and metadata with the page's session cookie. Stack
// scroll (wheel, keys), window/level by drag and presets, zoom, pan, invert, reset,
// length / angle / rectangle ROI, series thumbnails (dxhub's rendered series thumbnail),
// cine (cornerstone3D's utilities.cine) for multi-frame instances and stacks, and an
// overlay with the patient, the study, the slice position, W/L and zoom.
import { useEffect, useRef, useState } from "preact/hooks";
import {
  Enums as csEnums,
  RenderingEngine,
  init as csInit,
  type Types,
} from "@cornerstonejs/core";
import {
  AngleTool,
  Enums as toolsEnums,
  LengthTool,
  PanTool,
  RectangleROITool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  ZoomTool,
  addTool,
  init as toolsInit,
  utilities as toolsUtilities,
} from "@cornerstonejs/tools";
import dicomImageLoader, { init as loaderInit } from "@cornerstonejs/dicom-image-loader";
import { api } from "./api";
import { message } from "./format";
import { lang, t, type Key } from "./i18n";
import { personName } from "./names";
import { type Meta, studySeries } from "./prefetch";

const { cine, stackPrefetch } = toolsUtilities;

/// What the overlay shows of one image id: its instance and frame, and where it lies.
interface ImageInfo {
  instance: number | null;
  frame: number;
  frames: number;
  sliceLocation: number | null;
  thickness: number | null;
}
interface Series {
  uid: string;
  number: number;
  description: string;
  modality: string;
  imageIds: string[];
  /// one multi-frame instance (US cine loops): frames, not slices
  multiframe: boolean;
  /// frames per second from the instance (Cine Rate, Frame Time, Recommended Display
  /// Frame Rate), else null
  fps: number | null;
  info: Map<string, ImageInfo>;
}
/// The patient and study lines of the overlay, from the first instance's header.
export interface StudyInfo {
  patientName: string;
  patientId: string;
  sex: string;
  age: string;
  studyDate: string;
  studyDescription: string;
  institution: string;
}

/// Window centre / width presets (HU).
const PRESETS: [string, number, number][] = [
  ["lung", -600, 1500],
  ["mediastinum", 40, 400],
  ["bone", 400, 1800],
  ["brain", 40, 80],
  ["abdomen", 40, 350],
];
const MEASURE = [LengthTool.toolName, AngleTool.toolName, RectangleROITool.toolName];

let ready: Promise<void> | null = null;
function initCornerstone(): Promise<void> {
  ready ??= (async () => {
    await csInit();
    // the wadors metadata provider fed from the series' WADO-RS metadata, as OHIF does
    loaderInit({
      maxWebWorkers: Math.max(1, Math.min(2, navigator.hardwareConcurrency || 1)),
      useLegacyMetadataProvider: true,
    } as any);
    await toolsInit();
    for (const tool of [StackScrollTool, WindowLevelTool, ZoomTool, PanTool, LengthTool, AngleTool, RectangleROITool]) {
      addTool(tool);
    }
  })();
  return ready;
}

const str = (m: Meta, tag: string) => m[tag]?.Value?.[0];
const num = (m: Meta, tag: string): number | null => {
  const v = Number(str(m, tag));
  return str(m, tag) == null || !Number.isFinite(v) ? null : v;
};
/// A DICOM JSON person name as the "Alphabetic=Ideographic=Phonetic" string of names.ts.
const pn = (m: Meta, tag: string): string | null => {
  const v = str(m, tag);
  if (v == null) return null;
  if (typeof v === "string") return v;
  return [v.Alphabetic ?? "", v.Ideographic ?? "", v.Phonetic ?? ""].join("=").replace(/=+$/, "");
};
const isoDate = (d: string | undefined) => (d && /^\d{8}$/.test(d) ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : d ?? "");

/// "045Y" → 45岁 / 45 y; else from the birth date and the study date.
function age(m: Meta): string {
  const a = str(m, "00101010") as string | undefined;
  const en = lang.get() === "en";
  const unit = (n: number, u: string) =>
    en ? `${n} ${({ Y: "y", M: "mo", W: "wk", D: "d" } as any)[u]}` : `${n}${({ Y: "岁", M: "月", W: "周", D: "天" } as any)[u]}`;
  if (a && /^\d{3}[YMWD]$/.test(a)) return unit(Number(a.slice(0, 3)), a[3]);
  const b = str(m, "00100030") as string | undefined;
  const d = str(m, "00080020") as string | undefined;
  if (b && d && /^\d{8}$/.test(b) && /^\d{8}$/.test(d)) {
    let y = Number(d.slice(0, 4)) - Number(b.slice(0, 4));
    if (d.slice(4) < b.slice(4)) y--;
    return unit(y, "Y");
  }
  return "";
}

function studyInfo(m: Meta): StudyInfo {
  const sex = str(m, "00100040") as string | undefined;
  return {
    patientName: personName(pn(m, "00100010")),
    patientId: str(m, "00100020") ?? "",
    sex: sex === "M" || sex === "F" || sex === "O" ? t(`sex_${sex}` as Key) : sex ?? "",
    age: age(m),
    studyDate: isoDate(str(m, "00080020")),
    studyDescription: str(m, "00081030") ?? "",
    institution: str(m, "00080080") ?? "",
  };
}

/// Frames per second of a cine instance: Cine Rate, else 1000 / Frame Time, else the
/// Recommended Display Frame Rate.
function cineRate(m: Meta): number | null {
  const rate = num(m, "00180040");
  if (rate && rate > 0) return rate;
  const ft = num(m, "00181063");
  if (ft && ft > 0) return Math.round((1000 / ft) * 10) / 10;
  const rec = num(m, "00082144");
  return rec && rec > 0 ? rec : null;
}

/// The study's image series as WADO-RS image ids, instances ordered by Instance Number,
/// a multi-frame instance frame by frame (`…/frames/N`); their metadata registered with
/// the loader (no second fetch per frame). And the patient/study lines of the overlay.
async function loadSeries(study: string): Promise<{ series: Series[]; info: StudyInfo | null }> {
  // The first image is what the reader waits for: the series list and every series'
  // metadata are fetched at once, while cornerstone3D initialises (codecs, workers).
  // (started by main.tsx when the app opened on this study's reading page)
  const base = `${location.origin}/dicomweb/studies/${study}`;
  // the loader's init purges its metadata: initialise first, then register
  const [, list] = await Promise.all([initCornerstone(), studySeries(study)]);
  const out: Series[] = [];
  let info: StudyInfo | null = null;
  for (const { series: s, uid, modality, metas: pending } of list) {
    const metas = await pending;
    metas.sort((a, b) => (str(a, "00200013") ?? 0) - (str(b, "00200013") ?? 0));
    const imageIds: string[] = [];
    const byId = new Map<string, ImageInfo>();
    let fps: number | null = null;
    let multiframe = false;
    for (const m of metas) {
      if (num(m, "00280010") == null) continue; // no pixels (no Rows)
      info ??= studyInfo(m);
      const frames = Number(str(m, "00280008") ?? 1);
      if (frames > 1) {
        multiframe = true;
        fps ??= cineRate(m);
      }
      for (let f = 1; f <= frames; f++) {
        const id = `wadors:${base}/series/${uid}/instances/${str(m, "00080018")}/frames/${f}`;
        // the instance's DICOM JSON for the wadors metadata provider (no fetch per frame)
        dicomImageLoader.wadors.metaDataManager.add(id, m as any);
        imageIds.push(id);
        byId.set(id, {
          instance: num(m, "00200013"),
          frame: f,
          frames,
          sliceLocation: num(m, "00201041"),
          thickness: num(m, "00180050"),
        });
      }
    }
    if (imageIds.length) {
      out.push({
        uid,
        number: Number(str(s, "00200011") ?? 0),
        description: str(s, "0008103E") ?? "",
        modality,
        imageIds,
        multiframe: multiframe && metas.length === 1,
        fps,
        info: byId,
      });
    }
  }
  return { series: out.sort((a, b) => a.number - b.number), info };
}

/// Frames per second when the instance says nothing.
const DEFAULT_FPS = 15;

let engineSeq = 0;

/// `keys`: this viewer takes the keyboard shortcuts (the current study's, not a prior's
/// shown beside it). `compact`: the narrower pane of a prior.
export function ImageViewer({
  study,
  keys = true,
  compact = false,
  onEmpty,
}: {
  study: string;
  keys?: boolean;
  compact?: boolean;
  /// called when the study has no image series (an ECG, a report, or one not found)
  onEmpty?: () => void;
}) {
  const element = useRef<HTMLDivElement>(null);
  const viewportRef = useRef<Types.IStackViewport | null>(null);
  const [series, setSeries] = useState<Series[] | null>(null);
  const [info, setInfo] = useState<StudyInfo | null>(null);
  const [current, setCurrent] = useState(0);
  const [slice, setSlice] = useState(0);
  const [voi, setVoi] = useState("");
  const [zoom, setZoom] = useState(1);
  const [tool, setTool] = useState(WindowLevelTool.toolName);
  const [playing, setPlaying] = useState(false);
  const [fps, setFps] = useState(DEFAULT_FPS);
  const [error, setError] = useState("");
  const ids = useRef({ engine: `dxhub-engine-${++engineSeq}`, viewport: "dxhub-stack", group: `dxhub-tools-${engineSeq}` });

  useEffect(() => {
    loadSeries(study)
      .then((r) => {
        setInfo(r.info);
        setSeries(r.series);
        if (!r.series.length) onEmpty?.();
        if (r.series[0]) setFps(r.series[0].fps ?? DEFAULT_FPS);
      })
      .catch((e) => setError(message(e)));
  }, [study]);

  // the viewport and its tools, once the series are known
  useEffect(() => {
    if (!series?.length || !element.current) return;
    let engine: RenderingEngine | null = null;
    const el = element.current;
    // the pane may close (a prior closed, another study opened) while this still awaits:
    // then nothing more is set up, and no prefetch starts for a stack nobody sees
    let closed = false;
    (async () => {
      await initCornerstone();
      if (closed) return;
      engine = new RenderingEngine(ids.current.engine);
      engine.enableElement({
        viewportId: ids.current.viewport,
        type: csEnums.ViewportType.STACK,
        element: el,
      });
      const vp = engine.getViewport(ids.current.viewport) as Types.IStackViewport;
      viewportRef.current = vp;
      const group = ToolGroupManager.createToolGroup(ids.current.group)!;
      for (const name of [StackScrollTool.toolName, WindowLevelTool.toolName, ZoomTool.toolName, PanTool.toolName, ...MEASURE]) {
        group.addTool(name);
      }
      group.addViewport(ids.current.viewport, ids.current.engine);
      const B = toolsEnums.MouseBindings;
      group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: B.Wheel }] });
      group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: B.Primary }] });
      group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: B.Auxiliary }] });
      group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: B.Secondary }] });
      el.addEventListener(csEnums.Events.STACK_NEW_IMAGE, () => setSlice(vp.getCurrentImageIdIndex()));
      el.addEventListener(csEnums.Events.VOI_MODIFIED, () => {
        const r = vp.getProperties().voiRange;
        if (r) setVoi(`W ${Math.round(r.upper - r.lower)} / L ${Math.round((r.upper + r.lower) / 2)}`);
      });
      el.addEventListener(csEnums.Events.CAMERA_MODIFIED, () => setZoom(vp.getZoom()));
      el.addEventListener(cine.Events.CLIP_STOPPED, () => setPlaying(false));
      await vp.setStack(series[0].imageIds, 0);
      if (closed) return;
      vp.render();
      setSlice(0);
      // then the rest of the stack in the background, nearest slices first
      stackPrefetch.enable(el);
    })().catch((e) => {
      if (!closed) setError(message(e));
    });
    return () => {
      closed = true;
      viewportRef.current = null;
      try {
        cine.stopClip(el);
        stackPrefetch.disable(el);
      } catch {
        /* not enabled */
      }
      ToolGroupManager.destroyToolGroup(ids.current.group);
      engine?.destroy();
    };
  }, [series]);

  const vp = () => viewportRef.current;
  /// cine with cornerstone3D's utilities.cine (its own timer, looping)
  const play = (rate = fps) => {
    if (!element.current || !vp()) return;
    cine.playClip(element.current, { framesPerSecond: rate, loop: true });
    setPlaying(true);
  };
  const stop = () => {
    if (element.current) cine.stopClip(element.current);
    setPlaying(false);
  };
  const toggleCine = () => (playing ? stop() : play());
  const changeFps = (v: number) => {
    const rate = Math.max(1, Math.min(60, Math.round(v) || DEFAULT_FPS));
    setFps(rate);
    if (playing) play(rate);
  };
  const show = async (i: number) => {
    const v = vp();
    if (!v || !series) return;
    stop();
    setCurrent(i);
    setFps(series[i].fps ?? DEFAULT_FPS);
    await v.setStack(series[i].imageIds, 0);
    // (the pane closed meanwhile: its viewport is gone, nothing to prefetch for)
    if (viewportRef.current !== v) return;
    if (element.current) stackPrefetch.enable(element.current);
    v.render();
    setSlice(0);
  };
  const scroll = (d: number) => {
    const v = vp();
    if (!v) return;
    const n = v.getImageIds().length;
    const i = Math.max(0, Math.min(n - 1, v.getCurrentImageIdIndex() + d));
    v.setImageIdIndex(i);
  };
  const preset = (c: number, w: number) => {
    vp()?.setProperties({ voiRange: { lower: c - w / 2, upper: c + w / 2 } });
    vp()?.render();
  };
  const choose = (name: string) => {
    const group = ToolGroupManager.getToolGroup(ids.current.group);
    if (!group) return;
    const B = toolsEnums.MouseBindings;
    for (const m of [WindowLevelTool.toolName, ...MEASURE]) if (m !== name) group.setToolPassive(m);
    group.setToolActive(name, { bindings: [{ mouseButton: B.Primary }] });
    setTool(name);
  };
  const invert = () => {
    const v = vp();
    if (!v) return;
    v.setProperties({ invert: !v.getProperties().invert });
    v.render();
  };
  const reset = () => {
    const v = vp();
    if (!v) return;
    v.resetProperties();
    v.resetCamera();
    v.render();
  };

  // keys: ↑/↓ scroll, I invert, R reset, C cine
  useEffect(() => {
    if (!keys) return;
    const onKey = (e: KeyboardEvent) => {
      const el = e.target as HTMLElement | null;
      if (el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT")) return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "ArrowDown" || e.key === "PageDown") scroll(1);
      else if (e.key === "ArrowUp" || e.key === "PageUp") scroll(-1);
      else if (e.key === "i" || e.key === "I") invert();
      else if (e.key === "r" || e.key === "R") reset();
      else if (e.key === "c" || e.key === "C") toggleCine();
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });

  if (error) return <p class="error">{error}</p>;
  // nothing while the series load: an ECG study has none, and its page must not shift
  if (!series) return null;
  if (!series.length) return null;
  const s = series[current];
  const here = s.info.get(s.imageIds[slice]);
  const n = s.imageIds.length;
  const position = s.multiframe
    ? `${t("frame")} ${slice + 1}/${n}`
    : `${t("image")} ${slice + 1}/${n}${here?.instance != null ? ` (#${here.instance})` : ""}`;
  const where = [
    here?.sliceLocation != null ? `${t("slice_location")} ${here.sliceLocation.toFixed(1)} mm` : "",
    here?.thickness != null ? `${t("slice_thickness")} ${here.thickness} mm` : "",
  ].filter(Boolean).join(" · ");
  return (
    <section class={compact ? "images compact" : "images"} data-study={study}>
      <div class="img-toolbar">
        {!compact &&
          PRESETS.map(([name, c, w]) => (
            <button type="button" data-preset={name} onClick={() => preset(c, w)}>
              {t(`preset_${name}` as any)}
            </button>
          ))}
        {!compact && <span class="sep" />}
        {[WindowLevelTool.toolName, ...MEASURE].map((name) => (
          <button type="button" data-tool={name} class={tool === name ? "active" : ""} onClick={() => choose(name)}>
            {t(`tool_${name}` as any)}
          </button>
        ))}
        <button type="button" data-action="invert" onClick={invert}>{t("invert")}</button>
        <button type="button" data-action="reset" onClick={reset}>{t("reset")}</button>
        {n > 1 && (
          <span class="cine">
            <button type="button" data-action="cine" class={playing ? "active" : ""} aria-pressed={playing} onClick={toggleCine} title={keys ? "C" : undefined}>
              {playing ? `■ ${t("cine_pause")}` : `▶ ${t("cine_play")}`}
            </button>
            <label>
              <input
                name="fps"
                type="number"
                min={1}
                max={60}
                value={fps}
                onChange={(e) => changeFps(Number(e.currentTarget.value))}
              />{" "}
              {t("fps")}
            </label>
          </span>
        )}
      </div>
      <div class="img-main">
        <div class="thumbs">
          {series.map((x, i) => (
            <button type="button" class={i === current ? "thumb active" : "thumb"} data-series={x.uid} onClick={() => show(i)}>
              <img
                src={`/dicomweb/studies/${study}/series/${x.uid}/thumbnail?viewport=96,96`}
                alt=""
                width={96}
                height={96}
                loading="lazy"
                onError={(e) => (e.currentTarget.style.visibility = "hidden")}
              />
              <span class="thumb-label">
                {x.modality} {x.number} · {x.imageIds.length}
                {x.multiframe ? ` ${t("frames")}` : ""}
                {x.description && <small>{x.description}</small>}
              </span>
            </button>
          ))}
        </div>
        <div class="viewport-wrap">
          <div ref={element} class="dx-viewport" onContextMenu={(e) => e.preventDefault()} />
          <div class="overlay" data-slice={slice + 1} data-slices={n} data-playing={playing ? "1" : "0"}>
            <div class="ov tl" data-ov="patient">
              {info && (
                <>
                  <strong>{info.patientName}</strong>
                  <br />
                  {info.patientId}
                  <br />
                  {[info.sex, info.age].filter(Boolean).join(" ")}
                </>
              )}
            </div>
            <div class="ov tr" data-ov="study">
              {info && (
                <>
                  {info.institution}
                  {info.institution && <br />}
                  {info.studyDate}
                  <br />
                  {info.studyDescription}
                </>
              )}
              <br />
              {s.modality} {s.number ? `#${s.number}` : ""} {s.description}
            </div>
            <div class="ov bl" data-ov="position">
              {position}
              {where && <br />}
              {where}
              {playing && (
                <>
                  <br />▶ {fps} {t("fps")}
                </>
              )}
            </div>
            <div class="ov br" data-ov="view">
              {voi}
              {voi && <br />}
              {t("zoom")} {zoom.toFixed(2)}×
            </div>
          </div>
        </div>
      </div>
    </section>
  );
}
