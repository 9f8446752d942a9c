//! The SVG writer: page geometry, grid, calibration pulses, labels, traces, header and footer.

use super::{Layout, RenderError, RenderOptions};
use crate::model::{Ecg, LeadCode};
use std::fmt::Write as _;

/// Width of the traced part of every row, mm (10 s at 25 mm/s, 5 s at 50 mm/s).
pub(super) const TRACE_W_MM: f64 = 250.0;
/// Page margin, mm.
const MARGIN: f64 = 5.0;
/// Header line pitch and font size, mm.
const HEADER_PITCH: f64 = 5.0;
const HEADER_FONT: f64 = 3.5;
const LABEL_FONT: f64 = 3.5;
const FOOTER_FONT: f64 = 3.0;
/// Width of one decimation column, mm.
const COLUMN_MM: f64 = 0.1;

pub(super) const FONT_FAMILY: &str =
    "'WenQuanYi Micro Hei','Noto Sans CJK SC','Noto Sans CJK',Noto Sans,'DejaVu Sans',sans-serif";
const MINOR_COLOUR: &str = "#f7c4c4";
const MAJOR_COLOUR: &str = "#e8787a";
const TRACE_COLOUR: &str = "#000";

/// The 3×4 arrangement, by row.
const THREE_BY_FOUR: [[LeadCode; 4]; 3] = [
    [LeadCode::I, LeadCode::AVR, LeadCode::V1, LeadCode::V4],
    [LeadCode::II, LeadCode::AVL, LeadCode::V2, LeadCode::V5],
    [LeadCode::III, LeadCode::AVF, LeadCode::V3, LeadCode::V6],
];

/// One labelled window of one lead on the paper.
struct Cell {
    lead: LeadCode,
    /// Left edge of the cell, mm.
    x: f64,
    /// Start of the window in the recording, s.
    t0: f64,
    /// Length of the window, s.
    dur: f64,
}

struct Row {
    /// Top of the row, mm.
    top: f64,
    /// The 0 mV line, mm.
    baseline: f64,
    cells: Vec<Cell>,
}

struct Page {
    width: f64,
    height: f64,
    grid_x: f64,
    grid_y: f64,
    grid_w: f64,
    grid_h: f64,
    /// Start of the traces (after the calibration margin), mm.
    trace_x: f64,
    rows: Vec<Row>,
    /// Column boundaries that get a lead-change mark: (x, row index).
    separators: Vec<(f64, usize)>,
}

impl Page {
    fn new(ecg: &Ecg, n_header: usize, opts: &RenderOptions) -> Page {
        let speed = opts.speed_mm_s;
        let gain = opts.gain_mm_per_mv;
        let window = TRACE_W_MM / speed;
        // Calibration margin: the 0.2 s pulse with at least 2 mm either side, whole 5 mm.
        let cal_w = ((0.2 * speed + 4.0) / 5.0).ceil() * 5.0;
        let grid_x = MARGIN;
        let grid_y = if n_header == 0 {
            MARGIN
        } else {
            MARGIN + n_header as f64 * HEADER_PITCH + 2.0
        };
        let trace_x = grid_x + cal_w;
        let (row_h, baseline_off) = match (opts.layout, gain as u32) {
            (Layout::ThreeByFour, 5) => (30.0, 20.0),
            (Layout::ThreeByFour, 20) => (60.0, 35.0),
            (Layout::ThreeByFour, _) => (40.0, 25.0),
            (Layout::TwelveByOne, 5) => (20.0, 12.0),
            (Layout::TwelveByOne, 20) => (40.0, 25.0),
            (Layout::TwelveByOne, _) => (25.0, 15.0),
        };
        let row = |i: usize, cells: Vec<Cell>| {
            let top = grid_y + i as f64 * row_h;
            Row {
                top,
                baseline: top + baseline_off,
                cells,
            }
        };
        let mut rows = Vec::new();
        let mut separators = Vec::new();
        match opts.layout {
            Layout::ThreeByFour => {
                let col_w = TRACE_W_MM / 4.0;
                let col_t = window / 4.0;
                for (r, leads) in THREE_BY_FOUR.iter().enumerate() {
                    let cells = leads
                        .iter()
                        .enumerate()
                        .map(|(c, lead)| Cell {
                            lead: lead.clone(),
                            x: trace_x + c as f64 * col_w,
                            t0: c as f64 * col_t,
                            dur: col_t,
                        })
                        .collect();
                    rows.push(row(r, cells));
                    separators.extend((1..4).map(|c| (trace_x + c as f64 * col_w, r)));
                }
                let strip = Cell {
                    lead: LeadCode::II,
                    x: trace_x,
                    t0: 0.0,
                    dur: window,
                };
                rows.push(row(3, vec![strip]));
            }
            Layout::TwelveByOne => {
                let others = ecg
                    .leads
                    .iter()
                    .map(|l| &l.code)
                    .filter(|c| matches!(c, LeadCode::Other(_)));
                for (r, lead) in LeadCode::STANDARD_12.iter().chain(others).enumerate() {
                    let cell = Cell {
                        lead: lead.clone(),
                        x: trace_x,
                        t0: 0.0,
                        dur: window,
                    };
                    rows.push(row(r, vec![cell]));
                }
            }
        }
        let grid_w = cal_w + TRACE_W_MM;
        let grid_h = rows.len() as f64 * row_h;
        Page {
            width: grid_x + grid_w + MARGIN,
            height: grid_y + grid_h + 2.0 + FOOTER_FONT + MARGIN,
            grid_x,
            grid_y,
            grid_w,
            grid_h,
            trace_x,
            rows,
            separators,
        }
    }
}

/// The ECG on standard paper as an SVG document (see the [module documentation](super)).
pub fn svg(ecg: &Ecg, header: &[String], opts: &RenderOptions) -> Result<String, RenderError> {
    opts.validate()?;
    let fs = ecg.sample_rate_hz;
    let has_samples = ecg.leads.iter().any(|l| !l.samples_uv.is_empty());
    if has_samples && !(fs.is_finite() && fs > 0.0) {
        return Err(RenderError::BadSampleRate(fs));
    }
    let page = Page::new(ecg, header.len(), opts);
    let speed = opts.speed_mm_s;
    let gain = opts.gain_mm_per_mv;

    // Points drawn: at most two per decimation column or one per sample.
    let mut points = 0usize;
    for row in &page.rows {
        for cell in &row.cells {
            if let Some(lead) = ecg.lead(&cell.lead) {
                let (a, b) = window(lead.samples_uv.len(), fs, cell.t0, cell.dur);
                let columns = (cell.dur * speed / COLUMN_MM) as usize * 2;
                points += (b - a).min(columns + 2);
            }
        }
    }
    let mut out = String::with_capacity(24_000 + points * 14 + header.len() * 128);
    // Writing into a String cannot fail.
    let _ = write_page(&mut out, ecg, header, opts, &page, fs, speed, gain);
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn write_page(
    out: &mut String,
    ecg: &Ecg,
    header: &[String],
    opts: &RenderOptions,
    page: &Page,
    fs: f64,
    speed: f64,
    gain: f64,
) -> std::fmt::Result {
    let (w, h) = (page.width, page.height);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"");
    num(out, w);
    out.push_str("mm\" height=\"");
    num(out, h);
    out.push_str("mm\" viewBox=\"0 0 ");
    num(out, w);
    out.push(' ');
    num(out, h);
    write!(
        out,
        "\" font-family=\"{FONT_FAMILY}\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n"
    )?;

    // Grid: every 1 mm line not on a 5 mm line, then the 5 mm lines (borders included).
    let (gx, gy, gw, gh) = (page.grid_x, page.grid_y, page.grid_w, page.grid_h);
    let (nx, ny) = (gw.round() as i64, gh.round() as i64);
    for (class, colour, width, major) in [
        ("grid-minor", MINOR_COLOUR, "0.1", false),
        ("grid-major", MAJOR_COLOUR, "0.2", true),
    ] {
        write!(
            out,
            "<path class=\"{class}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\" d=\""
        )?;
        for k in (0..=nx).filter(|k| (k % 5 == 0) == major) {
            out.push('M');
            num(out, gx + k as f64);
            out.push(',');
            num(out, gy);
            out.push('V');
            num(out, gy + gh);
        }
        for k in (0..=ny).filter(|k| (k % 5 == 0) == major) {
            out.push('M');
            num(out, gx);
            out.push(',');
            num(out, gy + k as f64);
            out.push('H');
            num(out, gx + gw);
        }
        out.push_str("\"/>\n");
    }

    // Header.
    for (i, line) in header.iter().enumerate() {
        out.push_str("<text class=\"header\" xml:space=\"preserve\" x=\"");
        num(out, gx);
        out.push_str("\" y=\"");
        num(out, MARGIN + HEADER_FONT + i as f64 * HEADER_PITCH);
        out.push_str("\" font-size=\"");
        num(out, HEADER_FONT);
        out.push_str("\">");
        escape(out, line);
        out.push_str("</text>\n");
    }

    // Calibration pulses and lead-change marks.
    writeln!(
        out,
        "<g fill=\"none\" stroke=\"{TRACE_COLOUR}\" stroke-width=\"0.3\" stroke-linejoin=\"round\" stroke-linecap=\"round\">"
    )?;
    let pulse_w = 0.2 * speed;
    let pulse_x = gx + (page.trace_x - gx - pulse_w) / 2.0;
    for row in &page.rows {
        let b = row.baseline;
        out.push_str("<path class=\"cal\" d=\"M");
        for (i, (x, y)) in [
            (gx + 1.0, b),
            (pulse_x, b),
            (pulse_x, b - gain),
            (pulse_x + pulse_w, b - gain),
            (pulse_x + pulse_w, b),
            (page.trace_x - 1.0, b),
        ]
        .into_iter()
        .enumerate()
        {
            out.push_str(match i {
                0 => "",
                1 => "L",
                _ => " ",
            });
            num(out, x);
            out.push(',');
            num(out, y);
        }
        out.push_str("\"/>\n");
    }
    if !page.separators.is_empty() {
        out.push_str("<path class=\"sep\" stroke-width=\"0.2\" d=\"");
        for &(x, r) in &page.separators {
            let b = page.rows[r].baseline;
            out.push('M');
            num(out, x);
            out.push(',');
            num(out, b - 2.5);
            out.push('V');
            num(out, b + 2.5);
        }
        out.push_str("\"/>\n");
    }

    // Traces, one path per cell with samples.
    let (ymin, ymax) = (gy, gy + gh);
    for row in &page.rows {
        for cell in &row.cells {
            let Some(lead) = ecg.lead(&cell.lead) else {
                continue;
            };
            let (a, b) = window(lead.samples_uv.len(), fs, cell.t0, cell.dur);
            if a >= b {
                continue;
            }
            out.push_str("<path class=\"trace\" data-lead=\"");
            escape(out, cell.lead.name());
            out.push_str("\" d=\"");
            let trace = Trace {
                fs,
                t0: cell.t0,
                x0: cell.x,
                baseline: row.baseline,
                mm_per_uv: gain / 1000.0,
                speed,
                ymin,
                ymax,
            };
            trace.write(out, &lead.samples_uv, a, b);
            out.push_str("\"/>\n");
        }
    }
    out.push_str("</g>\n");

    // Lead labels.
    writeln!(
        out,
        "<g font-size=\"{LABEL_FONT}\" fill=\"{TRACE_COLOUR}\">"
    )?;
    for row in &page.rows {
        for cell in &row.cells {
            out.push_str("<text class=\"lead-label\" data-lead=\"");
            escape(out, cell.lead.name());
            out.push_str("\" x=\"");
            num(out, cell.x + 1.0);
            out.push_str("\" y=\"");
            num(out, row.top + 1.0 + LABEL_FONT);
            out.push_str("\">");
            escape(out, cell.lead.name());
            out.push_str("</text>\n");
        }
    }
    out.push_str("</g>\n");

    // Footer.
    out.push_str("<text class=\"footer\" xml:space=\"preserve\" x=\"");
    num(out, gx);
    out.push_str("\" y=\"");
    num(out, gy + gh + 2.0 + FOOTER_FONT);
    out.push_str("\" font-size=\"");
    num(out, FOOTER_FONT);
    out.push_str("\">");
    let footer = footer(ecg, opts);
    escape(out, &footer);
    out.push_str("</text>\n</svg>\n");
    Ok(())
}

/// "25 mm/s   10 mm/mV   Filters: 0.05–150 Hz, notch 50 Hz   Sample rate: 500 Hz   3×4 + II".
fn footer(ecg: &Ecg, opts: &RenderOptions) -> String {
    let f = &ecg.filters;
    let filters = match (f.low_hz, f.high_hz, f.notch_hz) {
        (None, None, None) => "Filters: not stated".to_owned(),
        (low, high, notch) => {
            let hz = |v: Option<f64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
            let mut s = if low.is_none() && high.is_none() {
                "Filters: band not stated".to_owned()
            } else {
                format!("Filters: {}–{} Hz", hz(low), hz(high))
            };
            if let Some(n) = notch {
                let _ = write!(s, ", notch {n} Hz");
            }
            s
        }
    };
    let rate = if ecg.sample_rate_hz > 0.0 && ecg.sample_rate_hz.is_finite() {
        format!("Sample rate: {} Hz", ecg.sample_rate_hz)
    } else {
        "Sample rate: not stated".to_owned()
    };
    let layout = match opts.layout {
        Layout::ThreeByFour => "3×4 + II rhythm",
        Layout::TwelveByOne => "12×1",
    };
    format!(
        "{} mm/s   {} mm/mV   {filters}   {rate}   {layout}",
        opts.speed_mm_s, opts.gain_mm_per_mv
    )
}

/// Sample indices `[a, b)` of the window `[t0, t0 + dur)` s, within `n` samples.
fn window(n: usize, fs: f64, t0: f64, dur: f64) -> (usize, usize) {
    if !(fs.is_finite() && fs > 0.0) {
        return (0, 0);
    }
    let idx = |t: f64| ((t * fs - 1e-9).ceil().max(0.0) as usize).min(n);
    (idx(t0), idx(t0 + dur))
}

/// How one window of samples maps onto the paper.
struct Trace {
    fs: f64,
    t0: f64,
    x0: f64,
    baseline: f64,
    mm_per_uv: f64,
    speed: f64,
    ymin: f64,
    ymax: f64,
}

impl Trace {
    fn x(&self, i: usize) -> f64 {
        self.x0 + (i as f64 / self.fs - self.t0) * self.speed
    }

    fn y(&self, uv: f32) -> f64 {
        (self.baseline - f64::from(uv) * self.mm_per_uv).clamp(self.ymin, self.ymax)
    }

    /// Path data of samples `[a, b)`: every sample, or when a 0.1 mm column holds more than
    /// two, each column's extremes in time order. Non-finite samples break the line.
    fn write(&self, out: &mut String, s: &[f32], a: usize, b: usize) {
        let mut pen = Pen::default();
        let per_column = self.fs * COLUMN_MM / self.speed;
        if per_column <= 2.0 {
            for (i, &v) in s.iter().enumerate().take(b).skip(a) {
                if v.is_finite() {
                    pen.point(out, self.x(i), self.y(v));
                } else {
                    pen.lift();
                }
            }
            pen.finish(out);
            return;
        }
        // Min/max per column: (index, value) of the extremes of the current column.
        let col_of = |i: usize| ((i - a) as f64 / per_column) as usize;
        let mut col = usize::MAX;
        let mut lo = (0usize, f32::INFINITY);
        let mut hi = (0usize, f32::NEG_INFINITY);
        let flush = |out: &mut String, pen: &mut Pen, lo: (usize, f32), hi: (usize, f32)| {
            if lo.1 > hi.1 {
                return; // empty column
            }
            let (first, second) = if lo.0 <= hi.0 { (lo, hi) } else { (hi, lo) };
            pen.point(out, self.x(first.0), self.y(first.1));
            if second.0 != first.0 {
                pen.point(out, self.x(second.0), self.y(second.1));
            }
        };
        for (i, &v) in s.iter().enumerate().take(b).skip(a) {
            if !v.is_finite() {
                flush(out, &mut pen, lo, hi);
                lo = (0, f32::INFINITY);
                hi = (0, f32::NEG_INFINITY);
                pen.lift();
                continue;
            }
            let c = col_of(i);
            if c != col {
                flush(out, &mut pen, lo, hi);
                col = c;
                lo = (i, v);
                hi = (i, v);
                continue;
            }
            if v < lo.1 {
                lo = (i, v);
            }
            if v > hi.1 {
                hi = (i, v);
            }
        }
        flush(out, &mut pen, lo, hi);
        pen.finish(out);
    }
}

/// Writes path points as `Mx,yLx,y x,y…`, dropping repeats of the last point (in 0.01 mm),
/// through a 4 KiB buffer: [`Pen::finish`] writes out the rest.
#[derive(Default)]
struct Pen {
    /// 0 = pen up, 1 = after the M point, 2 = drawing.
    state: u8,
    last: (i64, i64),
    /// A subpath was written before: the next `M` needs a separator.
    any: bool,
    buf: Ascii<4096>,
}

impl Pen {
    fn lift(&mut self) {
        self.state = 0;
    }

    fn finish(&mut self, out: &mut String) {
        self.buf.flush(out);
    }

    fn point(&mut self, out: &mut String, x: f64, y: f64) {
        let p = (hundredths(x), hundredths(y));
        // One point is at most 2 × 24 + 3 bytes.
        if self.buf.len > 4096 - 64 {
            self.buf.flush(out);
        }
        let a = &mut self.buf;
        match self.state {
            0 => {
                if self.any {
                    a.byte(b' ');
                }
                a.byte(b'M');
                self.state = 1;
                self.any = true;
            }
            _ if p == self.last => return,
            1 => {
                a.byte(b'L');
                self.state = 2;
            }
            _ => a.byte(b' '),
        }
        a.hundredths(p.0);
        a.byte(b',');
        a.hundredths(p.1);
        self.last = p;
    }
}

/// `v` in hundredths, rounded half away from zero (by hand: `f64::round` is a libm call on
/// baseline x86-64, and this runs twice per point). Saturates for huge values.
fn hundredths(v: f64) -> i64 {
    let t = v * 100.0;
    (if t >= 0.0 { t + 0.5 } else { t - 0.5 }) as i64
}

/// `v` with at most 2 decimals.
fn num(out: &mut String, v: f64) {
    write_hundredths(out, hundredths(v));
}

/// A number given in hundredths, as decimal text without trailing zeros: 2550 → `25.5`,
/// -7 → `-0.07`, 300 → `3`.
fn write_hundredths(out: &mut String, h: i64) {
    let mut a = Ascii::<24>::default();
    a.hundredths(h);
    a.flush(out);
}

/// ASCII bytes gathered on the stack and appended to the output in one go: one capacity
/// check, copy and UTF-8 check per buffer instead of per character.
struct Ascii<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Ascii<N> {
    fn default() -> Self {
        Ascii {
            buf: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> Ascii<N> {
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// See [`write_hundredths`]; at most 24 bytes.
    fn hundredths(&mut self, h: i64) {
        if h < 0 {
            self.byte(b'-');
        }
        let h = h.unsigned_abs();
        let (int, frac) = (h / 100, h % 100);
        let mut digits = 1;
        let mut n = int;
        while n >= 10 {
            n /= 10;
            digits += 1;
        }
        let mut n = int;
        for i in (self.len..self.len + digits).rev() {
            self.buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += digits;
        if frac != 0 {
            self.byte(b'.');
            self.byte(b'0' + (frac / 10) as u8);
            if frac % 10 != 0 {
                self.byte(b'0' + (frac % 10) as u8);
            }
        }
    }

    fn flush(&mut self, out: &mut String) {
        // Only ASCII digits, signs and separators were written.
        out.push_str(std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default());
        self.len = 0;
    }
}

/// XML text/attribute escaping; characters XML 1.0 forbids become spaces.
fn escape(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push(' '),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: i64) -> String {
        let mut s = String::new();
        write_hundredths(&mut s, v);
        s
    }

    #[test]
    fn numbers_have_at_most_two_decimals_and_no_trailing_zeros() {
        assert_eq!(h(0), "0");
        assert_eq!(h(2550), "25.5");
        assert_eq!(h(2505), "25.05");
        assert_eq!(h(-7), "-0.07");
        assert_eq!(h(-100), "-1");
        assert_eq!(h(123_456_789), "1234567.89");
        let mut s = String::new();
        num(&mut s, 12.344_999);
        assert_eq!(s, "12.34");
    }

    #[test]
    fn escaping() {
        let mut s = String::new();
        escape(&mut s, "a<b & \"c\" 'd'>\u{1}张");
        assert_eq!(s, "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt; 张");
    }

    #[test]
    fn window_indices() {
        assert_eq!(window(5000, 500.0, 0.0, 2.5), (0, 1250));
        assert_eq!(window(5000, 500.0, 2.5, 2.5), (1250, 2500));
        assert_eq!(window(1500, 500.0, 2.5, 2.5), (1250, 1500));
        assert_eq!(window(1000, 500.0, 2.5, 2.5), (1000, 1000));
        assert_eq!(window(5000, 250.0, 1.25, 1.25), (313, 625));
    }

    #[test]
    fn decimation_keeps_extremes_in_time_order() {
        // 1000 Hz at 25 mm/s: 4 samples per 0.1 mm column.
        let t = Trace {
            fs: 1000.0,
            t0: 0.0,
            x0: 0.0,
            baseline: 50.0,
            mm_per_uv: 0.01,
            speed: 25.0,
            ymin: 0.0,
            ymax: 100.0,
        };
        let s = [0.0, 100.0, -300.0, 0.0, 0.0, 0.0, 0.0, 2000.0];
        let mut out = String::new();
        t.write(&mut out, &s, 0, s.len());
        // Column 0: max 100 at i=1 (x 0.03 → 0.03), min -300 at i=2; column 1: 0 at i=4,
        // then 2000 at i=7.
        assert_eq!(out, "M0.03,49L0.05,53 0.1,50 0.18,30");
    }
}
