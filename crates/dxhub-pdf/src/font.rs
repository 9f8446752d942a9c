//! Font discovery, loading and text measurement.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::PdfError;
use crate::text::break_measured;

/// Environment variable overriding the font: a path, optionally followed by `#index`
/// (face index inside a TrueType/OpenType collection).
pub const FONT_ENV: &str = "DXHUB_PDF_FONT";

/// Installed CJK fonts tried in order by [`find_font`] (path, face index).
/// NotoSansCJK-Regular.ttc holds JP, KR, SC, TC, HK in that order: index 2 is SC.
pub const KNOWN_FONTS: &[(&str, u32)] = &[
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    (
        "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
        0,
    ),
    ("/usr/share/fonts/opentype/noto/NotoSansSC-Regular.otf", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
];

/// A parsed font (TrueType/OpenType, or one face of a collection) ready for
/// measurement and for embedding. Cloning is cheap.
#[derive(Clone)]
pub struct FontData {
    bytes: Arc<Vec<u8>>,
    index: u32,
    font: krilla::text::Font,
    /// Ascender and descender (negative) in em.
    ascent: f32,
    descent: f32,
}

impl std::fmt::Debug for FontData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FontData")
            .field("len", &self.bytes.len())
            .field("index", &self.index)
            .finish()
    }
}

impl FontData {
    /// Parse font bytes; `index` selects the face of a collection (0 otherwise).
    pub fn from_bytes(bytes: Vec<u8>, index: u32) -> Result<Self, PdfError> {
        let bytes = Arc::new(bytes);
        let (ascent, descent) = {
            let face = rustybuzz::Face::from_slice(&bytes, index)
                .ok_or_else(|| PdfError::InvalidFont(format!("cannot parse font face {index}")))?;
            let upem = face.units_per_em().max(1) as f32;
            (
                f32::from(face.ascender()) / upem,
                f32::from(face.descender()) / upem,
            )
        };
        let font = krilla::text::Font::new(bytes.clone().into(), index)
            .ok_or_else(|| PdfError::InvalidFont(format!("krilla rejected font face {index}")))?;
        Ok(Self {
            bytes,
            index,
            font,
            ascent,
            descent,
        })
    }

    /// Read and parse a font file.
    pub fn from_path(path: &Path, index: u32) -> Result<Self, PdfError> {
        let bytes = std::fs::read(path).map_err(|source| PdfError::FontIo {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(bytes, index)
    }

    /// The face index inside the font file.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Whether the font maps `c` to a real glyph.
    pub fn has_glyph(&self, c: char) -> bool {
        rustybuzz::Face::from_slice(&self.bytes, self.index)
            .and_then(|f| f.glyph_index(c))
            .is_some_and(|g| g.0 != 0)
    }

    pub(crate) fn krilla(&self) -> krilla::text::Font {
        self.font.clone()
    }

    /// Ascender above the baseline, in points, at `size`.
    pub(crate) fn ascent(&self, size: f32) -> f32 {
        self.ascent * size
    }

    /// Height between ascender and descender, in points, at `size`.
    pub(crate) fn extent(&self, size: f32) -> f32 {
        (self.ascent - self.descent) * size
    }

    /// Shape `text` (as krilla does when drawing) and return each char with the advance
    /// (points at `size`) of the glyphs of the cluster it starts; other chars of a
    /// cluster get 0.
    pub fn advances(&self, text: &str, size: f32) -> Vec<(char, f32)> {
        let mut out: Vec<(usize, char, f32)> =
            text.char_indices().map(|(i, c)| (i, c, 0.0)).collect();
        let Some(face) = rustybuzz::Face::from_slice(&self.bytes, self.index) else {
            return out.into_iter().map(|(_, c, _)| (c, size * 0.5)).collect();
        };
        let upem = face.units_per_em().max(1) as f32;
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let shaped = rustybuzz::shape(&face, &[], buffer);
        for (info, pos) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
            let cluster = info.cluster as usize;
            let k = out.partition_point(|&(i, _, _)| i < cluster);
            if let Some(slot) = out.get_mut(k) {
                slot.2 += pos.x_advance as f32 / upem * size;
            }
        }
        out.into_iter().map(|(_, c, w)| (c, w)).collect()
    }

    /// Width of `text` on one line, in points, at `size`.
    pub fn text_width(&self, text: &str, size: f32) -> f32 {
        self.advances(text, size).iter().map(|&(_, w)| w).sum()
    }

    /// Wrap `text` to `max_width` points at `size` (see [`crate::break_lines`]).
    pub fn wrap(&self, text: &str, size: f32, max_width: f32) -> Vec<String> {
        let text = crate::text::clean(text);
        let mut out = Vec::new();
        for hard in text.split('\n') {
            let measured = self.advances(hard, size);
            out.extend(break_measured(&measured, max_width));
        }
        out
    }
}

fn parse_spec(spec: &str) -> (PathBuf, u32) {
    if let Some((path, idx)) = spec.rsplit_once('#')
        && let Ok(i) = idx.trim().parse::<u32>()
    {
        return (PathBuf::from(path), i);
    }
    (PathBuf::from(spec), 0)
}

/// Find the CJK font to embed: `$DXHUB_PDF_FONT` (`path` or `path#index`) when set,
/// otherwise the first of [`KNOWN_FONTS`] that exists and parses.
pub fn find_font() -> Result<FontData, PdfError> {
    if let Ok(spec) = std::env::var(FONT_ENV)
        && !spec.trim().is_empty()
    {
        let (path, index) = parse_spec(spec.trim());
        return FontData::from_path(&path, index);
    }
    let mut tried = Vec::new();
    for &(path, index) in KNOWN_FONTS {
        let p = Path::new(path);
        tried.push(format!("{path}#{index}"));
        if !p.is_file() {
            continue;
        }
        match FontData::from_path(p, index) {
            Ok(f) if f.has_glyph('医') => return Ok(f),
            _ => continue,
        }
    }
    Err(PdfError::FontNotFound { tried })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        assert_eq!(parse_spec("/a/b.ttc#2"), (PathBuf::from("/a/b.ttc"), 2));
        assert_eq!(parse_spec("/a/b.ttf"), (PathBuf::from("/a/b.ttf"), 0));
        assert_eq!(parse_spec("/a/#x/b.ttf"), (PathBuf::from("/a/#x/b.ttf"), 0));
    }
}
