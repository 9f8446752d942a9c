//! Server-side A4 PDF rendering of dxhub diagnostic reports.
//!
//! # Layout
//! A4 portrait (595.28 × 841.89 pt) with 18 mm margins and one text column.
//! Page 1 opens with the centred header (alliance, centre, report title with an optional
//! bold boxed "HR" mark), an optional red banner (draft / superseded), then the patient
//! block (4-column label：value grid) and exam block (2-column grid), separated by thin
//! rules. Then come the sections (findings, impression, recommendation, …) with bigger,
//! emboldened headings, the structured fields as a two-column table, the figures (scaled
//! to the column width and at most 90 mm high, caption underneath), the signed addenda,
//! the critical-value communication records, and finally the signature block (报告医师,
//! 审核医师, 签名时间, 签名指纹) beside a 28 mm QR code, with the verify URL printed
//! under it. Pages break automatically; every following page starts with a compact
//! one-line header (and the banner, if any), and every page ends with the footer text
//! and "第 x 页 / 共 y 页". Layout is done in a first pass into per-page drawing
//! operations so that the page total is known when the pages are written.
//!
//! Text is wrapped with UAX #14 break opportunities (a CJK character may break anywhere,
//! Latin words break at spaces, closing punctuation stays on its line, hard newlines are
//! kept) using widths measured from the font's shaped glyph advances (rustybuzz, as krilla
//! itself shapes when drawing); a run wider than the column on its own (a URL, a hash) is
//! split between characters, so nothing runs off the page.
//!
//! # Font
//! One CJK font draws everything (Chinese and Latin). [`find_font`] honours
//! `$DXHUB_PDF_FONT` (`path` or `path#index`), then tries WenQuanYi Micro Hei
//! (`/usr/share/fonts/truetype/wqy/wqy-microhei.ttc`, Debian `fonts-wqy-microhei`) and
//! Noto Sans CJK SC. WenQuanYi Micro Hei is dual-licensed Apache-2.0 / GPLv3 with a font
//! embedding exception; dxhub does not ship it: it is read from the installed package at run
//! time and krilla embeds only the subset of glyphs each generated PDF uses. The font has
//! no bold face, so headings are emboldened by stroking the glyph outlines with the fill.
//!
//! PDF writing (content streams, font subsetting, ToUnicode maps, images) is krilla's; the
//! QR matrix comes from `qrcode` and is drawn as filled vector rectangles.

mod font;
mod text;

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::image::Image;
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::TextDirection;

pub use font::{FONT_ENV, FontData, KNOWN_FONTS, find_font};
pub use text::break_lines;

/// A diagnostic report to print.
#[derive(Debug, Clone, Default)]
pub struct ReportPdf {
    /// Header line 1, e.g. "演示医共体".
    pub alliance: String,
    /// Header line 2, e.g. "县人民医院 医学影像中心".
    pub centre: String,
    /// Report title, e.g. "医学影像诊断报告".
    pub title: String,
    /// Patient label/value pairs.
    pub patient: Vec<(String, String)>,
    /// Exam label/value pairs.
    pub exam: Vec<(String, String)>,
    /// Red notice at the top (draft, superseded), repeated on every page.
    pub banner: Option<String>,
    /// Print a bold "HR" recognition mark beside the title.
    pub hr_mark: bool,
    /// Findings / impression / recommendation, in order.
    pub sections: Vec<Section>,
    /// Structured fields, printed as a two-column table.
    pub fields: Vec<(String, String)>,
    /// Key images or the ECG trace.
    pub figures: Vec<Figure>,
    /// Signed addenda, printed after the body.
    pub addenda: Vec<Section>,
    /// Critical-value communication records, one line each.
    pub communications: Vec<String>,
    pub signature: Option<SignatureBlock>,
    /// QR payload, also printed as text under the QR code.
    pub verify_url: Option<String>,
    /// Small text at the bottom of every page ("第 x 页 / 共 y 页" is appended).
    pub footer: String,
}

/// A heading with its (wrapped) body text.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub heading: String,
    pub text: String,
}

/// An image with its caption.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    pub caption: String,
    /// PNG or JPEG bytes.
    pub image: Vec<u8>,
}

/// Who signed the report, when, and the signature fingerprint.
#[derive(Debug, Clone, Default)]
pub struct SignatureBlock {
    pub author: String,
    pub verifier: String,
    pub signed_at: String,
    pub fingerprint: String,
}

/// Rendering failure.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("no CJK font found (tried {}); install fonts-wqy-microhei or set DXHUB_PDF_FONT", tried.join(", "))]
    FontNotFound { tried: Vec<String> },
    #[error("cannot read font {path}: {source}")]
    FontIo {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("invalid font: {0}")]
    InvalidFont(String),
    #[error("figure {index}: {reason}")]
    Image { index: usize, reason: String },
    #[error("QR code: {0}")]
    Qr(String),
    #[error("PDF writer: {0}")]
    Pdf(String),
}

/// A4 portrait, in points.
pub const PAGE_WIDTH: f32 = 595.276;
pub const PAGE_HEIGHT: f32 = 841.89;
const MM: f32 = 72.0 / 25.4;
const MARGIN: f32 = 18.0 * MM;
const COL_W: f32 = PAGE_WIDTH - 2.0 * MARGIN;
const LEFT: f32 = MARGIN;
const RIGHT: f32 = PAGE_WIDTH - MARGIN;
const TOP: f32 = MARGIN;

const BODY: f32 = 10.5;
const SMALL: f32 = 9.0;
const FOOT: f32 = 8.0;
const HEADING: f32 = 12.0;
const LEADING: f32 = 1.5;
const QR_SIZE: f32 = 28.0 * MM;
const FIGURE_MAX_H: f32 = 90.0 * MM;
/// Small images are enlarged at most this much (1.5 pt per pixel = 48 dpi).
const MAX_PT_PER_PIXEL: f32 = 1.5;

type Rgb = (u8, u8, u8);
const BLACK: Rgb = (0, 0, 0);
const GREY: Rgb = (90, 90, 90);
const RULE: Rgb = (150, 150, 150);
const RED: Rgb = (200, 0, 0);

#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Centre,
    Right,
}

enum Op {
    Text {
        x: f32,
        baseline: f32,
        size: f32,
        text: String,
        color: Rgb,
        bold: bool,
    },
    Line {
        x1: f32,
        x2: f32,
        y: f32,
        width: f32,
        color: Rgb,
    },
    Frame {
        rect: Rect,
        width: f32,
        color: Rgb,
    },
    Image {
        rect: Rect,
        image: Image,
    },
    Qr {
        x: f32,
        y: f32,
        module: f32,
        width: usize,
        dark: Vec<bool>,
    },
}

struct Layout<'a> {
    font: &'a FontData,
    report: &'a ReportPdf,
    pages: Vec<Vec<Op>>,
    y: f32,
    bottom: f32,
    /// Where the body starts below the compact header of pages after the first.
    compact_top: f32,
}

fn line_height(size: f32) -> f32 {
    size * LEADING
}

impl<'a> Layout<'a> {
    fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let n = self.pages.len() - 1;
        &mut self.pages[n]
    }

    fn page_top(&self) -> bool {
        self.pages.len() > 1 && self.y <= self.content_top() + 0.5
    }

    fn content_top(&self) -> f32 {
        // Recorded when the compact header was laid out; see new_page.
        self.compact_top
    }

    /// Start a new page with the compact header.
    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
        let r = self.report;
        let head = [r.alliance.as_str(), r.centre.as_str(), r.title.as_str()]
            .iter()
            .filter(|s| !s.trim().is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("  ");
        self.text_block(&head, LEFT, COL_W, SMALL, GREY, false, Align::Centre);
        if let Some(b) = r.banner.as_deref().filter(|b| !b.trim().is_empty()) {
            self.text_block(b, LEFT, COL_W, SMALL, RED, true, Align::Centre);
        }
        self.y += 2.0;
        self.rule(0.5);
        self.compact_top = self.y;
    }

    /// Make room for `h` points, breaking the page if needed (unless already at the top).
    fn ensure(&mut self, h: f32) {
        if self.y + h > self.bottom && !self.page_top() {
            self.new_page();
        }
    }

    fn rule(&mut self, width: f32) {
        let y = self.y + 3.0;
        self.ops().push(Op::Line {
            x1: LEFT,
            x2: RIGHT,
            y,
            width,
            color: RULE,
        });
        self.y = y + 5.0;
    }

    fn push_text(&mut self, x: f32, top: f32, size: f32, text: String, color: Rgb, bold: bool) {
        if text.is_empty() {
            return;
        }
        let lh = line_height(size);
        let baseline = top + (lh - self.font.extent(size)) / 2.0 + self.font.ascent(size);
        self.ops().push(Op::Text {
            x,
            baseline,
            size,
            text,
            color,
            bold,
        });
    }

    fn place_line(&mut self, line: String, x: f32, width: f32, size: f32, align: Align) -> f32 {
        match align {
            Align::Left => x,
            Align::Centre => x + (width - self.font.text_width(&line, size)).max(0.0) / 2.0,
            Align::Right => x + (width - self.font.text_width(&line, size)).max(0.0),
        }
    }

    /// Wrapped text flowing across pages, line by line.
    #[allow(clippy::too_many_arguments)]
    fn text_block(
        &mut self,
        text: &str,
        x: f32,
        width: f32,
        size: f32,
        color: Rgb,
        bold: bool,
        align: Align,
    ) {
        let lh = line_height(size);
        for line in self.font.wrap(text, size, width) {
            self.ensure(lh);
            let lx = self.place_line(line.clone(), x, width, size, align);
            let y = self.y;
            self.push_text(lx, y, size, line, color, bold);
            self.y += lh;
        }
    }

    /// Wrapped text at a fixed position (no page breaks); returns its height.
    #[allow(clippy::too_many_arguments)]
    fn text_at(
        &mut self,
        text: &str,
        x: f32,
        top: f32,
        width: f32,
        size: f32,
        color: Rgb,
        bold: bool,
        align: Align,
    ) -> f32 {
        let lh = line_height(size);
        let lines = self.font.wrap(text, size, width);
        let n = lines.len();
        for (i, line) in lines.into_iter().enumerate() {
            let lx = self.place_line(line.clone(), x, width, size, align);
            self.push_text(lx, top + i as f32 * lh, size, line, color, bold);
        }
        n as f32 * lh
    }

    fn max_body_h(&self) -> f32 {
        self.bottom - self.compact_top
    }

    /// label：value cells, `cols` per row; a row too tall for a page flows instead.
    fn grid(&mut self, pairs: &[(String, String)], cols: usize, size: f32) {
        let cols = cols.max(1);
        let gap = 8.0;
        let cell_w = (COL_W - gap * (cols as f32 - 1.0)) / cols as f32;
        let lh = line_height(size);
        for row in pairs.chunks(cols) {
            let cells: Vec<String> = row.iter().map(|(l, v)| cell_text(l, v)).collect();
            let rows = cells
                .iter()
                .map(|c| self.font.wrap(c, size, cell_w).len())
                .max()
                .unwrap_or(1);
            let h = rows as f32 * lh;
            if h > self.max_body_h() {
                for c in &cells {
                    self.text_block(c, LEFT, COL_W, size, BLACK, false, Align::Left);
                }
                continue;
            }
            self.ensure(h);
            let top = self.y;
            for (i, c) in cells.iter().enumerate() {
                let x = LEFT + i as f32 * (cell_w + gap);
                self.text_at(c, x, top, cell_w, size, BLACK, false, Align::Left);
            }
            self.y = top + h;
        }
    }

    fn heading(&mut self, text: &str, size: f32) {
        // Keep a heading with at least two lines of what follows.
        self.ensure(line_height(size) + 2.0 * line_height(BODY));
        self.y += 2.0;
        self.text_block(text, LEFT, COL_W, size, BLACK, true, Align::Left);
    }

    fn section(&mut self, s: &Section) {
        if !s.heading.trim().is_empty() {
            self.heading(&s.heading, HEADING);
        }
        if !s.text.trim().is_empty() {
            self.text_block(
                s.text.trim_end(),
                LEFT,
                COL_W,
                BODY,
                BLACK,
                false,
                Align::Left,
            );
        }
        self.y += 4.0;
    }

    fn fields_table(&mut self, fields: &[(String, String)]) {
        let size = SMALL;
        let lh = line_height(size);
        let pad = 4.0;
        let label_w = fields
            .iter()
            .map(|(l, _)| self.font.text_width(l, size))
            .fold(0.0f32, f32::max)
            .min(COL_W * 0.35)
            + 2.0 * pad;
        let value_x = LEFT + label_w + pad;
        let value_w = RIGHT - value_x - pad;
        self.table_rule();
        for (label, value) in fields {
            let labels = self.font.wrap(label, size, label_w - 2.0 * pad);
            let values = self.font.wrap(value, size, value_w);
            let n = labels.len().max(values.len());
            let h = n as f32 * lh + 2.0;
            if h <= self.max_body_h() {
                self.ensure(h);
            }
            let mut labels = labels.into_iter();
            let mut values = values.into_iter();
            for _ in 0..n {
                if self.y + lh > self.bottom {
                    self.new_page();
                    self.table_rule();
                }
                let top = self.y;
                if let Some(l) = labels.next() {
                    self.push_text(LEFT + pad, top, size, l, GREY, false);
                }
                if let Some(v) = values.next() {
                    self.push_text(value_x, top, size, v, BLACK, false);
                }
                self.y += lh;
            }
            self.y += 2.0;
            self.table_rule();
        }
        self.y += 4.0;
    }

    fn table_rule(&mut self) {
        let y = self.y;
        self.ops().push(Op::Line {
            x1: LEFT,
            x2: RIGHT,
            y,
            width: 0.3,
            color: RULE,
        });
        self.y += 1.0;
    }

    /// Figures scaled to the column (at most 90 mm high, at most 2 pt per pixel); two
    /// consecutive figures that each fit half the column share a row.
    fn figures(&mut self, figures: &[Figure]) -> Result<(), PdfError> {
        let gap = 12.0;
        let half = (COL_W - gap) / 2.0;
        let max_h = FIGURE_MAX_H.min(self.max_body_h() - 3.0 * line_height(SMALL));
        let mut placed = Vec::with_capacity(figures.len());
        for (index, fig) in figures.iter().enumerate() {
            let image = decode_image(index, &fig.image)?;
            let (pw, ph) = image.size();
            let (pw, ph) = (pw.max(1) as f32, ph.max(1) as f32);
            let scale = (COL_W / pw).min(max_h / ph).min(MAX_PT_PER_PIXEL);
            placed.push((image, pw * scale, ph * scale, fig.caption.trim()));
        }
        let mut i = 0;
        while i < placed.len() {
            let pair = placed.len() > i + 1 && placed[i].1 <= half && placed[i + 1].1 <= half;
            let row = if pair {
                &placed[i..i + 2]
            } else {
                &placed[i..i + 1]
            };
            let cell_w = if pair { half } else { COL_W };
            let img_h = row.iter().map(|f| f.2).fold(0.0f32, f32::max);
            let cap_h = row
                .iter()
                .map(|f| {
                    if f.3.is_empty() {
                        0.0
                    } else {
                        self.font.wrap(f.3, SMALL, cell_w).len() as f32 * line_height(SMALL)
                    }
                })
                .fold(0.0f32, f32::max);
            let fits_page = img_h + cap_h + 8.0 <= self.max_body_h();
            self.ensure(if fits_page {
                img_h + cap_h + 8.0
            } else {
                img_h + line_height(SMALL) + 8.0
            });
            let top = self.y + 2.0;
            let row: Vec<_> = row.iter().map(|f| (f.0.clone(), f.1, f.2, f.3)).collect();
            for (k, (image, w, h, caption)) in row.iter().enumerate() {
                let cell_x = LEFT + k as f32 * (half + gap);
                let rect = Rect::from_xywh(cell_x + (cell_w - w) / 2.0, top + img_h - h, *w, *h)
                    .ok_or_else(|| PdfError::Image {
                        index: i + k,
                        reason: "degenerate size".into(),
                    })?;
                self.ops().push(Op::Image {
                    rect,
                    image: image.clone(),
                });
                if fits_page && !caption.is_empty() {
                    self.text_at(
                        caption,
                        cell_x,
                        top + img_h + 2.0,
                        cell_w,
                        SMALL,
                        GREY,
                        false,
                        Align::Centre,
                    );
                }
            }
            self.y = top + img_h + 2.0;
            if fits_page {
                self.y += cap_h;
            } else {
                for (_, _, _, caption) in &row {
                    self.text_block(caption, LEFT, COL_W, SMALL, GREY, false, Align::Centre);
                }
            }
            self.y += 6.0;
            i += row.len();
        }
        Ok(())
    }

    /// Signature lines beside the QR code, the verify URL under it.
    fn closing(&mut self) -> Result<(), PdfError> {
        let r = self.report;
        let url = r.verify_url.as_deref().filter(|u| !u.is_empty());
        if r.signature.is_none() && url.is_none() {
            return Ok(());
        }
        let qr = url.map(qr_matrix).transpose()?;
        let qr_w = if qr.is_some() { QR_SIZE } else { 0.0 };
        // Quiet zone: four modules of white around the symbol.
        let module = qr.as_ref().map_or(0.0, |(w, _)| QR_SIZE / *w as f32);
        let gap = (4.0 * module + 2.0).max(12.0);
        let left_w = if qr.is_some() {
            COL_W - qr_w - gap
        } else {
            COL_W
        };
        let size = BODY;
        let lh = line_height(size);
        let mut lines: Vec<(String, bool)> = Vec::new();
        if let Some(s) = &r.signature {
            for (l, v, small) in [
                ("报告医师", &s.author, false),
                ("审核医师", &s.verifier, false),
                ("签名时间", &s.signed_at, false),
                ("签名指纹", &s.fingerprint, true),
            ] {
                if !v.trim().is_empty() {
                    lines.push((cell_text(l, v), small));
                }
            }
        }
        let left_h: f32 = lines
            .iter()
            .map(|(t, small)| {
                let sz = if *small { SMALL } else { size };
                self.font.wrap(t, sz, left_w).len() as f32 * line_height(sz)
            })
            .sum();
        let url_text = url.map(|u| format!("验证：{u}"));
        let url_h = url_text
            .as_deref()
            .map(|t| self.font.wrap(t, SMALL, COL_W).len() as f32 * line_height(SMALL))
            .unwrap_or(0.0);
        let block_h = left_h.max(qr_w + 8.0 * module) + url_h + 2.0 * lh;
        if block_h <= self.max_body_h() {
            self.ensure(block_h);
        }
        self.rule(0.5);
        let top = self.y;
        let mut y = top;
        for (t, small) in &lines {
            let sz = if *small { SMALL } else { size };
            y += self.text_at(t, LEFT, y, left_w, sz, BLACK, false, Align::Left);
        }
        if let Some((width, dark)) = qr {
            let qr_y = top + 4.0 * module;
            self.ops().push(Op::Qr {
                x: RIGHT - QR_SIZE,
                y: qr_y,
                module,
                width,
                dark,
            });
            y = y.max(qr_y + QR_SIZE + 4.0 * module);
        }
        self.y = y;
        if let Some(t) = url_text {
            self.text_block(&t, LEFT, COL_W, SMALL, BLACK, false, Align::Right);
        }
        Ok(())
    }
}

fn cell_text(label: &str, value: &str) -> String {
    if label.trim().is_empty() {
        value.to_owned()
    } else {
        format!("{label}：{value}")
    }
}

fn decode_image(index: usize, bytes: &[u8]) -> Result<Image, PdfError> {
    let data: krilla::Data = bytes.to_vec().into();
    let res = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Image::from_png(data, true)
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        Image::from_jpeg(data, true)
    } else {
        Err("not a PNG or JPEG image".to_owned())
    };
    res.map_err(|reason| PdfError::Image { index, reason })
}

/// QR matrix (width, dark modules row-major) at error-correction level M.
fn qr_matrix(payload: &str) -> Result<(usize, Vec<bool>), PdfError> {
    let code = qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| PdfError::Qr(e.to_string()))?;
    let width = code.width();
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    Ok((width, dark))
}

fn fill(color: Rgb) -> Fill {
    Fill {
        paint: rgb::Color::new(color.0, color.1, color.2).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

fn stroke(color: Rgb, width: f32) -> Stroke {
    Stroke {
        paint: rgb::Color::new(color.0, color.1, color.2).into(),
        width,
        ..Default::default()
    }
}

/// Render `report` as an A4 PDF with `font` embedded (subsetted).
pub fn render(report: &ReportPdf, font: &FontData) -> Result<Vec<u8>, PdfError> {
    let footer_w = COL_W - font.text_width("第 9999 页 / 共 9999 页", FOOT) - 12.0;
    let footer_lines = font.wrap(&report.footer, FOOT, footer_w.max(COL_W / 3.0));
    let footer_h = footer_lines.len() as f32 * line_height(FOOT);
    let footer_top = PAGE_HEIGHT - MARGIN - footer_h;
    let mut l = Layout {
        font,
        report,
        pages: vec![Vec::new()],
        y: TOP,
        bottom: footer_top - 8.0,
        compact_top: TOP,
    };
    // The compact-header height, for "does this fit on an empty page" decisions.
    {
        let mut probe = Layout {
            font,
            report,
            pages: Vec::new(),
            y: TOP,
            bottom: l.bottom,
            compact_top: TOP,
        };
        probe.new_page();
        l.compact_top = probe.compact_top;
    }

    // Full header on page 1.
    let r = report;
    if !r.alliance.trim().is_empty() {
        l.text_block(&r.alliance, LEFT, COL_W, 11.0, BLACK, false, Align::Centre);
    }
    if !r.centre.trim().is_empty() {
        l.text_block(&r.centre, LEFT, COL_W, 14.0, BLACK, true, Align::Centre);
    }
    l.y += 2.0;
    let title_size = 18.0;
    let hr_w = if r.hr_mark {
        font.text_width("HR", 12.0) + 8.0
    } else {
        0.0
    };
    let title_lines = font.wrap(&r.title, title_size, COL_W - 2.0 * (hr_w + 6.0));
    let title_top = l.y;
    for line in title_lines {
        let x = l.place_line(line.clone(), LEFT, COL_W, title_size, Align::Centre);
        let y = l.y;
        let w = font.text_width(&line, title_size);
        l.push_text(x, y, title_size, line, BLACK, true);
        if r.hr_mark && y == title_top {
            let bx = (x + w + 6.0).min(RIGHT - hr_w);
            let lh = line_height(title_size);
            let bh = line_height(12.0);
            let by = y + (lh - bh) / 2.0;
            l.push_text(bx + 4.0, by, 12.0, "HR".to_owned(), RED, true);
            if let Some(rect) = Rect::from_xywh(bx, by, hr_w, bh) {
                l.ops().push(Op::Frame {
                    rect,
                    width: 1.0,
                    color: RED,
                });
            }
        }
        l.y += line_height(title_size);
    }
    if let Some(b) = r.banner.as_deref().filter(|b| !b.trim().is_empty()) {
        l.y += 3.0;
        let top = l.y;
        let h = l.text_at(
            b,
            LEFT + 6.0,
            top + 2.0,
            COL_W - 12.0,
            11.0,
            RED,
            true,
            Align::Centre,
        );
        if let Some(rect) = Rect::from_xywh(LEFT, top, COL_W, h + 4.0) {
            l.ops().push(Op::Frame {
                rect,
                width: 0.8,
                color: RED,
            });
        }
        l.y = top + h + 6.0;
    }
    l.rule(0.8);
    if !r.patient.is_empty() {
        l.grid(&r.patient, 4, BODY);
        l.rule(0.3);
    }
    if !r.exam.is_empty() {
        l.grid(&r.exam, 2, BODY);
        l.rule(0.3);
    }
    for s in &r.sections {
        l.section(s);
    }
    if !r.fields.is_empty() {
        l.fields_table(&r.fields);
    }
    l.figures(&r.figures)?;
    if !r.addenda.is_empty() {
        l.rule(0.3);
        for s in &r.addenda {
            l.section(s);
        }
    }
    if !r.communications.is_empty() {
        l.rule(0.3);
        l.heading("危急值沟通记录", HEADING);
        for c in &r.communications {
            l.text_block(c, LEFT, COL_W, SMALL, BLACK, false, Align::Left);
        }
        l.y += 4.0;
    }
    l.closing()?;

    // Footer on every page, now that the total is known.
    let total = l.pages.len();
    for (i, ops) in l.pages.iter_mut().enumerate() {
        ops.push(Op::Line {
            x1: LEFT,
            x2: RIGHT,
            y: footer_top - 4.0,
            width: 0.3,
            color: RULE,
        });
        let label = format!("第 {} 页 / 共 {} 页", i + 1, total);
        let lh = line_height(FOOT);
        let baseline_of = |top: f32| top + (lh - font.extent(FOOT)) / 2.0 + font.ascent(FOOT);
        for (k, line) in footer_lines.iter().enumerate() {
            if !line.is_empty() {
                ops.push(Op::Text {
                    x: LEFT,
                    baseline: baseline_of(footer_top + k as f32 * lh),
                    size: FOOT,
                    text: line.clone(),
                    color: GREY,
                    bold: false,
                });
            }
        }
        ops.push(Op::Text {
            x: RIGHT - font.text_width(&label, FOOT),
            baseline: baseline_of(footer_top),
            size: FOOT,
            text: label,
            color: GREY,
            bold: false,
        });
    }

    write_pdf(report, font, &l.pages)
}

fn write_pdf(report: &ReportPdf, font: &FontData, pages: &[Vec<Op>]) -> Result<Vec<u8>, PdfError> {
    let mut doc = Document::new();
    let title = if report.title.trim().is_empty() {
        "诊断报告".to_owned()
    } else {
        report.title.clone()
    };
    let mut meta = Metadata::new()
        .title(title)
        .creator("dxhub".to_owned())
        .language("zh-CN".to_owned());
    if let Some(s) = &report.signature
        && !s.author.trim().is_empty()
    {
        meta = meta.authors(vec![s.author.clone()]);
    }
    doc.set_metadata(meta);
    let kfont = font.krilla();
    let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
        .ok_or_else(|| PdfError::Pdf("invalid page size".into()))?;
    for ops in pages {
        let mut page = doc.start_page_with(settings.clone());
        let mut surface = page.surface();
        for op in ops {
            draw(&mut surface, &kfont, op);
        }
        surface.finish();
        page.finish();
    }
    doc.finish().map_err(|e| PdfError::Pdf(format!("{e:?}")))
}

fn draw(surface: &mut Surface<'_>, font: &krilla::text::Font, op: &Op) {
    match op {
        Op::Text {
            x,
            baseline,
            size,
            text,
            color,
            bold,
        } => {
            surface.set_fill(Some(fill(*color)));
            surface.set_stroke(bold.then(|| stroke(*color, size * 0.04)));
            surface.draw_text(
                Point::from_xy(*x, *baseline),
                font.clone(),
                *size,
                text,
                false,
                TextDirection::Auto,
            );
            surface.set_stroke(None);
        }
        Op::Line {
            x1,
            x2,
            y,
            width,
            color,
        } => {
            let mut pb = PathBuilder::new();
            pb.move_to(*x1, *y);
            pb.line_to(*x2, *y);
            if let Some(path) = pb.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(stroke(*color, *width)));
                surface.draw_path(&path);
                surface.set_stroke(None);
            }
        }
        Op::Frame { rect, width, color } => {
            let mut pb = PathBuilder::new();
            pb.push_rect(*rect);
            if let Some(path) = pb.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(stroke(*color, *width)));
                surface.draw_path(&path);
                surface.set_stroke(None);
            }
        }
        Op::Image { rect, image } => {
            if let Some(size) = Size::from_wh(rect.width(), rect.height()) {
                surface.push_transform(&Transform::from_translate(rect.left(), rect.top()));
                surface.draw_image(image.clone(), size);
                surface.pop();
            }
        }
        Op::Qr {
            x,
            y,
            module,
            width,
            dark,
        } => {
            // One path of horizontal runs: no seams between neighbouring modules.
            let mut pb = PathBuilder::new();
            for (row, cells) in dark.chunks(*width).enumerate() {
                let mut col = 0;
                while col < cells.len() {
                    if cells[col] {
                        let start = col;
                        while col < cells.len() && cells[col] {
                            col += 1;
                        }
                        if let Some(r) = Rect::from_xywh(
                            x + start as f32 * module,
                            y + row as f32 * module,
                            (col - start) as f32 * module,
                            *module,
                        ) {
                            pb.push_rect(r);
                        }
                    } else {
                        col += 1;
                    }
                }
            }
            if let Some(path) = pb.finish() {
                surface.set_stroke(None);
                surface.set_fill(Some(fill(BLACK)));
                surface.draw_path(&path);
            }
        }
    }
}
