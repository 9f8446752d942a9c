//! The ECG on standard paper: SVG (user units are millimetres) and PNG (the same SVG
//! rasterised with resvg).
//!
//! # Paper
//! - The SVG's `viewBox` is in mm and its `width`/`height` carry the `mm` unit, so printed at
//!   100 % it is real ECG paper: 1 mV is `gain_mm_per_mv` mm and 1 s is `speed_mm_s` mm in
//!   SVG coordinates.
//! - Grid: 1 mm minor lines (light pink) and 5 mm major lines (red), drawn as two `<path>`s
//!   whose origin is the grid's top-left corner, so every row's calibration pulse and every
//!   column start lies on them as on a printout.
//! - Each row starts with a 1 mV calibration pulse (`gain` mm high, 0.2 s wide) in a margin
//!   of 10 mm (25 mm/s) or 15 mm (50 mm/s) before the traces.
//! - The traced part of every row is 250 mm wide: 10 s at 25 mm/s, **5 s at 50 mm/s** (the
//!   first 5 s of the recording), so the paper keeps one width at both speeds.
//! - Samples are drawn relative to 0 µV (no baseline correction); points beyond the grid are
//!   clamped to its edge.
//!
//! # Layouts
//! - [`Layout::ThreeByFour`]: rows I/aVR/V1/V4, II/aVL/V2/V5, III/aVF/V3/V6; the four columns
//!   are consecutive windows of 2.5 s at 25 mm/s (0–2.5, 2.5–5, 5–7.5, 7.5–10 s) or of
//!   **1.25 s at 50 mm/s** (0–5 s in all), each 62.5 mm wide, with a short lead-change mark
//!   between columns; then a full-width lead II rhythm strip (10 s, or 5 s at 50 mm/s).
//!   Rows are 40 mm high at 10 mm/mV (30 mm at 5, 60 mm at 20).
//! - [`Layout::TwelveByOne`]: one full-width row per lead, the 12 standard leads in the order
//!   I, II, III, aVR, aVL, aVF, V1–V6, then any other lead of the recording (V4R, V7, X…) in
//!   its source order. Rows are 25 mm high at 10 mm/mV (20 mm at 5, 40 mm at 20).
//!
//! Traces may cross into the neighbouring rows, as on paper. A lead missing from the recording
//! keeps its label and an empty row or cell; a recording shorter than the layout is drawn as
//! far as it goes.
//!
//! # Text
//! The caller's `header` lines are printed above the grid (XML-escaped; control characters
//! become spaces); the footer states speed, gain, the filters of [`crate::Ecg::filters`] and
//! the sample rate. Text uses `font-family` "WenQuanYi Micro Hei, Noto Sans CJK SC, Noto Sans
//! CJK, Noto Sans, DejaVu Sans, sans-serif", so CJK header text renders wherever such a font
//! exists (Debian: fonts-wqy-microhei). Lines are 3.5 mm high and neither wrapped nor
//! clipped: text wider than the page (roughly 130 Latin or 70 CJK characters) runs off it.
//!
//! # SVG structure (stable, used by tests)
//! `path.grid-minor`, `path.grid-major`, one `path.cal` per row, `path.sep` (lead-change
//! marks), `text.header`, `text.lead-label` (with `data-lead`), one `path.trace` per cell
//! with data (with `data-lead`), `text.footer`. Paths use only `M`, `L` (with implicit
//! repetitions), `H` and `V` with absolute coordinates of at most 2 decimals.
//!
//! # Efficiency
//! The SVG is written into one pre-sized `String` with a hand-rolled fixed-point number
//! writer. When a 0.1 mm column of paper holds more than two samples (e.g. 1000 Hz at
//! 25 mm/s) only each column's minimum and maximum are kept, in their time order, so peaks
//! survive exactly. A 10 s, 12-lead, 500 Hz recording takes about 0.5 ms in 3×4 (255 kB of
//! SVG) and 1.5 ms in 12×1 (770 kB) in release builds on the 2-core CI machine
//! (`cargo run --release -p dxhub-ecg --example render_bench`).
//!
//! # PNG
//! [`png`] parses that SVG with usvg (fonts from the system font database, loaded once per
//! process) and renders it with resvg/tiny-skia at `px_per_mm`: about 70 ms (3×4) to 180 ms
//! (12×1) at 4 px/mm, mostly rasterising and PNG compression.

mod png;
mod svg;

pub use png::png;
pub use svg::svg;

/// Arrangement of the leads on the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// 3 rows × 4 columns of 2.5 s (1.25 s at 50 mm/s) and a lead II rhythm strip.
    #[default]
    ThreeByFour,
    /// One full-width row per lead.
    TwelveByOne,
}

/// Paper speed, gain and layout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderOptions {
    /// Paper speed in mm/s: 25 or 50.
    pub speed_mm_s: f64,
    /// Gain in mm/mV: 5, 10 or 20.
    pub gain_mm_per_mv: f64,
    pub layout: Layout,
}

impl Default for RenderOptions {
    /// 25 mm/s, 10 mm/mV, 3×4 with a lead II rhythm strip.
    fn default() -> Self {
        RenderOptions {
            speed_mm_s: 25.0,
            gain_mm_per_mv: 10.0,
            layout: Layout::ThreeByFour,
        }
    }
}

impl RenderOptions {
    /// The speeds of standard paper (25, 50 mm/s) and the standard gains (5, 10, 20 mm/mV)
    /// only.
    pub fn validate(&self) -> Result<(), RenderError> {
        if self.speed_mm_s != 25.0 && self.speed_mm_s != 50.0 {
            return Err(RenderError::UnsupportedSpeed(self.speed_mm_s));
        }
        if ![5.0, 10.0, 20.0].contains(&self.gain_mm_per_mv) {
            return Err(RenderError::UnsupportedGain(self.gain_mm_per_mv));
        }
        Ok(())
    }
}

/// Largest side of a PNG, in pixels.
pub const MAX_PNG_SIDE_PX: u32 = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("paper speed {0} mm/s is not supported: use 25 or 50 mm/s")]
    UnsupportedSpeed(f64),
    #[error("gain {0} mm/mV is not supported: use 5, 10 or 20 mm/mV")]
    UnsupportedGain(f64),
    #[error("the ECG's sample rate {0} Hz is not a positive finite number")]
    BadSampleRate(f64),
    #[error("PNG scale {0} px/mm is not a positive finite number")]
    BadScale(f32),
    #[error(
        "a PNG of {width}×{height} px ({px_per_mm} px/mm) exceeds the limit of {MAX_PNG_SIDE_PX} px per side"
    )]
    PngTooLarge {
        width: f64,
        height: f64,
        px_per_mm: f32,
    },
    #[error("cannot allocate a {width}×{height} px image")]
    PixmapAlloc { width: u32, height: u32 },
    #[error("cannot read back the generated SVG for rasterising: {0}")]
    Svg(#[source] resvg::usvg::Error),
    #[error("cannot encode the PNG: {0}")]
    PngEncode(#[source] Box<dyn std::error::Error + Send + Sync>),
}
