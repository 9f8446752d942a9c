// The image viewer of the reading page: cornerstone3D (core, tools, dicom-image-loader)
// on dxhub's DICOMweb — WADO-RS frames and metadata with the page's session cookie. Stack
// scroll (wheel, keys), window/level by drag and presets, zoom, pan, invert, reset,
// length / angle / rectangle ROI, series thumbnails and an overlay with the slice.
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
} from "@cornerstonejs/tools";
import dicomImageLoader, { init as loaderInit } from "@cornerstonejs/dicom-image-loader";
import { api } from "./api";
import { t } from "./i18n";

type Meta = Record<string, { vr: string; Value?: any[] }>;
interface Series {
  uid: string;
  number: number;
  description: string;
  modality: string;
  imageIds: string[];
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

/// The study's image series as WADO-RS image ids, instances ordered by Instance Number;
/// their metadata registered with the loader (no second fetch per frame).
async function loadSeries(study: string): Promise<Series[]> {
  // the loader's init purges its metadata: initialise first, then register
  await initCornerstone();
  const base = `${location.origin}/dicomweb/studies/${study}`;
  const list = await api<Meta[]>("GET", `/dicomweb/studies/${study}/series`);
  const out: Series[] = [];
  for (const s of list) {
    const uid = str(s, "0020000E");
    const modality = str(s, "00080060") ?? "";
    if (!uid || ["ECG", "SR", "DOC", "PR", "KO"].includes(modality)) continue;
    const metas = await api<Meta[]>("GET", `/dicomweb/studies/${study}/series/${uid}/metadata`);
    metas.sort((a, b) => (str(a, "00200013") ?? 0) - (str(b, "00200013") ?? 0));
    const imageIds: string[] = [];
    for (const m of metas) {
      const frames = Number(str(m, "00280008") ?? 1);
      for (let f = 1; f <= frames; f++) {
        const id = `wadors:${base}/series/${uid}/instances/${str(m, "00080018")}/frames/${f}`;
        // the instance's DICOM JSON for the wadors metadata provider (no fetch per frame)
        dicomImageLoader.wadors.metaDataManager.add(id, m as any);
        imageIds.push(id);
      }
    }
    if (imageIds.length) {
      out.push({ uid, number: Number(str(s, "00200011") ?? 0), description: str(s, "0008103E") ?? "", modality, imageIds });
    }
  }
  return out.sort((a, b) => a.number - b.number);
}

let engineSeq = 0;

export function ImageViewer({ study }: { study: string }) {
  const element = useRef<HTMLDivElement>(null);
  const viewportRef = useRef<Types.IStackViewport | null>(null);
  const [series, setSeries] = useState<Series[] | null>(null);
  const [current, setCurrent] = useState(0);
  const [slice, setSlice] = useState(0);
  const [voi, setVoi] = useState("");
  const [tool, setTool] = useState(WindowLevelTool.toolName);
  const [error, setError] = useState("");
  const ids = useRef({ engine: `dxhub-engine-${++engineSeq}`, viewport: "dxhub-stack", group: `dxhub-tools-${engineSeq}` });

  useEffect(() => {
    loadSeries(study).then(setSeries).catch((e) => setError(String(e.message ?? e)));
  }, [study]);

  // the viewport and its tools, once the series are known
  useEffect(() => {
    if (!series?.length || !element.current) return;
    let engine: RenderingEngine | null = null;
    (async () => {
      await initCornerstone();
      engine = new RenderingEngine(ids.current.engine);
      engine.enableElement({
        viewportId: ids.current.viewport,
        type: csEnums.ViewportType.STACK,
        element: element.current!,
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
      element.current!.addEventListener(csEnums.Events.STACK_NEW_IMAGE, () => setSlice(vp.getCurrentImageIdIndex()));
      element.current!.addEventListener(csEnums.Events.VOI_MODIFIED, () => {
        const r = vp.getProperties().voiRange;
        if (r) setVoi(`W ${Math.round(r.upper - r.lower)} / L ${Math.round((r.upper + r.lower) / 2)}`);
      });
      await vp.setStack(series[0].imageIds, 0);
      vp.render();
      setSlice(0);
    })().catch((e) => setError(String(e.message ?? e)));
    return () => {
      ToolGroupManager.destroyToolGroup(ids.current.group);
      engine?.destroy();
    };
  }, [series]);

  const vp = () => viewportRef.current;
  const show = async (i: number) => {
    const v = vp();
    if (!v || !series) return;
    setCurrent(i);
    await v.setStack(series[i].imageIds, 0);
    v.render();
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

  // keys: ↑/↓ scroll, I invert, R reset
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const el = e.target as HTMLElement | null;
      if (el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT")) return;
      if (e.key === "ArrowDown" || e.key === "PageDown") scroll(1);
      else if (e.key === "ArrowUp" || e.key === "PageUp") scroll(-1);
      else if (e.key === "i" || e.key === "I") invert();
      else if (e.key === "r" || e.key === "R") reset();
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
  return (
    <section class="images">
      <div class="img-toolbar">
        {PRESETS.map(([name, c, w]) => (
          <button type="button" data-preset={name} onClick={() => preset(c, w)}>
            {t(`preset_${name}` as any)}
          </button>
        ))}
        <span class="sep" />
        {[WindowLevelTool.toolName, ...MEASURE].map((name) => (
          <button type="button" data-tool={name} class={tool === name ? "active" : ""} onClick={() => choose(name)}>
            {t(`tool_${name}` as any)}
          </button>
        ))}
        <button type="button" data-action="invert" onClick={invert}>{t("invert")}</button>
        <button type="button" data-action="reset" onClick={reset}>{t("reset")}</button>
      </div>
      <div class="img-main">
        <div class="thumbs">
          {series.map((x, i) => (
            <button type="button" class={i === current ? "thumb active" : "thumb"} data-series={x.uid} onClick={() => show(i)}>
              {x.modality} {x.number} · {x.imageIds.length}
              <br />
              <small>{x.description}</small>
            </button>
          ))}
        </div>
        <div class="viewport-wrap">
          <div ref={element} class="dx-viewport" onContextMenu={(e) => e.preventDefault()} />
          <div class="overlay" data-slice={slice + 1} data-slices={s.imageIds.length}>
            {s.modality} · {t("slice")} {slice + 1}/{s.imageIds.length}
            {voi && ` · ${voi}`}
          </div>
        </div>
      </div>
    </section>
  );
}
