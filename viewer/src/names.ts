/// A DICOM person name as people read it: the ideographic group when there is one
/// ("王^小明=WANG^XIAOMING" → 王小明), components joined by a space otherwise.
export function personName(pn: string | null): string {
  if (!pn) return "—";
  const cjk = /[\u3400-\u9fff\uf900-\ufaff]/;
  const groups = pn.split("=");
  const g = groups.find((x) => cjk.test(x)) ?? groups[0];
  const parts = g.split("^").map((p) => p.trim()).filter(Boolean);
  return cjk.test(g) ? parts.join("") : parts.join(" ");
}
