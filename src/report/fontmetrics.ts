/**
 * Text widths for Vega's layout. Without a canvas, Vega estimates every character as 0.8 em wide, which
 * spreads legends and panel headers and drops axis labels that would fit. The plots are drawn in DejaVu
 * Sans, so the layout uses its advance widths (measured with resvg from DejaVu Sans 2.37, in thousandths
 * of an em, for the printable ASCII characters and a few others).
 */
import * as vega from "vega";

// prettier-ignore
const REGULAR = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636, 636,
  636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 709, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863,
  748, 787, 603, 787, 695, 635, 595, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635,
  615, 344, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 395, 521, 392, 634, 592, 818, 592, 592, 525, 636,
  337, 636, 838,
];
// prettier-ignore
const BOLD = [
  348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696, 696, 696, 696,
  696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683, 683, 821, 837, 372, 372, 775, 637, 995,
  837, 850, 733, 850, 770, 680, 703, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716,
  678, 405, 716, 712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712,
  365, 712, 838,
];
const OTHER: Record<string, [number, number]> = {
  "·": [318, 380],
  "–": [500, 500],
  "—": [1000, 1000],
  "±": [838, 838],
  "…": [1000, 1000],
  "%": [950, 1002],
};
/** width of a character not in the tables (an average lower-case letter) */
const FALLBACK: [number, number] = [620, 690];

/** The width in pixels of `text` in DejaVu Sans at `fontSize` pixels. */
export function textWidth(text: string, fontSize: number, bold = false): number {
  const table = bold ? BOLD : REGULAR;
  let w = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0) as number;
    if (c >= 32 && c <= 126) w += table[c - 32] as number;
    else w += (OTHER[ch] ?? FALLBACK)[bold ? 1 : 0];
  }
  return (w / 1000) * fontSize;
}

function isBold(weight: unknown): boolean {
  if (typeof weight === "number") return weight >= 600;
  return typeof weight === "string" && (weight === "bold" || weight === "bolder" || Number(weight) >= 600);
}

interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
  limit?: number;
}

let installed = false;

/** Makes Vega measure text with DejaVu Sans's widths (once per process; Vega's own measure is an estimate). */
export function useDejaVuMetrics(): void {
  if (installed) return;
  installed = true;
  const metrics = (vega as unknown as { textMetrics: { width: (item: TextItem, text: unknown) => number } })
    .textMetrics;
  metrics.width = (item: TextItem, text: unknown) => {
    const s = text == null ? "" : String(text).trim();
    const size = item.fontSize != null ? +item.fontSize || 0 : 11;
    const w = textWidth(s, size, isBold(item.fontWeight));
    return item.limit && item.limit > 0 ? Math.min(w, item.limit) : w;
  };
}
