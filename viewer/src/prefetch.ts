// The reading page's study data, requested as soon as the app starts on /read/{study}:
// the series list and each image series' WADO-RS metadata load while the image viewer's
// code (cornerstone3D, a few MB) is still downloading and compiling. The viewer takes
// these promises (once) instead of asking again.
import { api } from "./api";

export type Meta = Record<string, { vr: string; Value?: any[] }>;

export interface SeriesData {
  series: Meta;
  uid: string;
  modality: string;
  metas: Promise<Meta[]>;
}

const NOT_IMAGES = ["ECG", "SR", "DOC", "PR", "KO"];
const cache = new Map<string, Promise<SeriesData[]>>();

function fetchStudy(study: string): Promise<SeriesData[]> {
  return api<Meta[]>("GET", `/dicomweb/studies/${study}/series`).then((list) =>
    list
      .map((s) => ({ series: s, uid: s["0020000E"]?.Value?.[0] as string, modality: (s["00080060"]?.Value?.[0] ?? "") as string }))
      .filter((x) => x.uid && !NOT_IMAGES.includes(x.modality))
      .map((x) => ({ ...x, metas: api<Meta[]>("GET", `/dicomweb/studies/${study}/series/${x.uid}/metadata`) })),
  );
}

/// Start loading `study` (idempotent).
export function prefetchStudy(study: string): void {
  if (!cache.has(study)) {
    const p = fetchStudy(study);
    p.catch(() => cache.delete(study)); // a failure is not kept: the viewer asks again
    cache.set(study, p);
  }
}

/// The study's image series: the prefetched answer the first time, a new request after.
export function studySeries(study: string): Promise<SeriesData[]> {
  const p = cache.get(study);
  cache.delete(study);
  return p ?? fetchStudy(study);
}
