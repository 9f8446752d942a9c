//! PNG: the SVG of [`svg()`](crate::render::svg()) rasterised with resvg, fonts from the system database.

use super::{MAX_PNG_SIDE_PX, RenderError, RenderOptions};
use crate::model::Ecg;
use resvg::tiny_skia::{Color, Pixmap, Transform};
use resvg::usvg::{self, fontdb};
use std::sync::{Arc, OnceLock};

/// Families tried, in order, as the database's `sans-serif`: CJK-capable first.
const SANS_SERIF_PREFERENCE: &[&str] = &[
    "WenQuanYi Micro Hei",
    "Noto Sans CJK SC",
    "Noto Sans CJK",
    "WenQuanYi Zen Hei",
    "Noto Sans",
    "DejaVu Sans",
    "Liberation Sans",
];

/// The system fonts, loaded on first use and shared by every later call.
fn fonts() -> &'static Arc<fontdb::Database> {
    static FONTS: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    FONTS.get_or_init(|| {
        let mut db = fontdb::Database::new();
        db.load_system_fonts();
        let has = |name: &str| {
            db.faces()
                .any(|f| f.families.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
        };
        if let Some(name) = SANS_SERIF_PREFERENCE.iter().find(|n| has(n)) {
            let name = (*name).to_owned();
            db.set_sans_serif_family(name);
        }
        Arc::new(db)
    })
}

/// The ECG on standard paper as a PNG of `px_per_mm` pixels per millimetre (4 ≈ 100 dpi,
/// 11.81 ≈ 300 dpi): the document of [`svg()`](crate::render::svg()), rasterised.
pub fn png(
    ecg: &Ecg,
    header: &[String],
    opts: &RenderOptions,
    px_per_mm: f32,
) -> Result<Vec<u8>, RenderError> {
    if !(px_per_mm.is_finite() && px_per_mm > 0.0) {
        return Err(RenderError::BadScale(px_per_mm));
    }
    let svg = super::svg(ecg, header, opts)?;
    let options = usvg::Options {
        // 25.4 dpi: 1 mm of the document is 1 unit of the tree's size.
        dpi: 25.4,
        font_family: "sans-serif".to_owned(),
        fontdb: Arc::clone(fonts()),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(&svg, &options).map_err(RenderError::Svg)?;
    let size = tree.size();
    let (w, h) = (
        (f64::from(size.width()) * f64::from(px_per_mm)).ceil(),
        (f64::from(size.height()) * f64::from(px_per_mm)).ceil(),
    );
    if w > f64::from(MAX_PNG_SIDE_PX) || h > f64::from(MAX_PNG_SIDE_PX) {
        return Err(RenderError::PngTooLarge {
            width: w,
            height: h,
            px_per_mm,
        });
    }
    let (w, h) = (w.max(1.0) as u32, h.max(1.0) as u32);
    let mut pixmap = Pixmap::new(w, h).ok_or(RenderError::PixmapAlloc {
        width: w,
        height: h,
    })?;
    pixmap.fill(Color::WHITE);
    resvg::render(
        &tree,
        Transform::from_scale(px_per_mm, px_per_mm),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| RenderError::PngEncode(Box::new(e)))
}
