//! Rendered (consumer) images for WADO-RS `/rendered` and `/thumbnail`: one frame through
//! the Modality LUT (rescale slope and intercept) and a VOI window to 8-bit grey, or to
//! RGB for colour, then fitted into a viewport and encoded as JPEG or PNG.
//!
//! Samples come from [`crate::pixel`] (decoded by dicom-pixeldata); the grey-scale
//! pipeline is done here so that every bit depth (1, 8, 16, 32) and MONOCHROME1 are
//! handled the same way.

use crate::pixel::{FrameMeta, PixelError, decode};
use dicom_pixeldata::{PhotometricInterpretation, VoiLutFunction};
use image::{DynamicImage, GrayImage, RgbImage, imageops::FilterType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

impl ImageFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// 1-based.
    pub frame: u32,
    /// (center, width) in modality units, applied with the LINEAR function. A width
    /// below 1 is taken as 1.
    pub window: Option<(f64, f64)>,
    /// (width, height) to fit inside, keeping the aspect ratio (scaling down, or up to
    /// [`MAX_UPSCALED_SIDE`]). A zero leaves that dimension unconstrained.
    pub viewport: Option<(u32, u32)>,
    /// JPEG quality, 1..=100 (clamped); ignored for PNG.
    pub quality: u8,
    pub format: ImageFormat,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            frame: 1,
            window: None,
            viewport: None,
            quality: 90,
            format: ImageFormat::Jpeg,
        }
    }
}

/// Render one frame of a stored Part 10 file as a JPEG or PNG image.
///
/// Grey scale: Modality LUT (Rescale Slope/Intercept), then the VOI window: `opts.window`
/// if given, else the file's first Window Center/Width (with its VOI LUT Function), else
/// the frame's minimum and maximum; MONOCHROME1 is inverted. Colour: RGB (YBR_FULL is
/// converted; 16-bit samples are narrowed to their top 8 stored bits).
pub fn render(file: &[u8], opts: &RenderOptions) -> Result<Vec<u8>, PixelError> {
    let (bytes, meta) = decode(file, opts.frame, true)?;
    let meta = meta.ok_or_else(|| PixelError::Invalid("frame attributes missing".into()))?;
    let image = to_image(&bytes, &meta, opts.window)?;
    let image = fit(image, opts.viewport);
    encode(&image, opts.format, opts.quality)
}

fn unsupported(what: impl Into<String>) -> PixelError {
    PixelError::Unsupported(what.into())
}

pub(crate) fn to_image(
    bytes: &[u8],
    meta: &FrameMeta,
    window: Option<(f64, f64)>,
) -> Result<DynamicImage, PixelError> {
    let (w, h) = (meta.columns, meta.rows);
    let pixels = w as usize * h as usize;
    let too_short = || PixelError::Invalid("decoded frame shorter than its dimensions".into());
    match (meta.samples_per_pixel, &meta.photometric) {
        (1, PhotometricInterpretation::Monochrome1 | PhotometricInterpretation::Monochrome2) => {
            let values = modality_values(bytes, meta, pixels)?;
            let mut grey = voi(&values, meta, window);
            if meta.photometric == PhotometricInterpretation::Monochrome1 {
                for v in &mut grey {
                    *v = 255 - *v;
                }
            }
            GrayImage::from_raw(w, h, grey)
                .map(DynamicImage::ImageLuma8)
                .ok_or_else(too_short)
        }
        (1, PhotometricInterpretation::PaletteColor) => {
            let pal = meta.palette.as_ref().ok_or_else(|| {
                unsupported("PALETTE COLOR without a readable palette (segmented palettes)")
            })?;
            let last = pal.red.len() as i64 - 1;
            let mut rgb = Vec::with_capacity(pixels * 3);
            for v in stored_values(bytes, meta, pixels)? {
                let i = (v - pal.first_mapped).clamp(0, last) as usize;
                rgb.extend_from_slice(&[pal.red[i], pal.green[i], pal.blue[i]]);
            }
            RgbImage::from_raw(w, h, rgb)
                .map(DynamicImage::ImageRgb8)
                .ok_or_else(too_short)
        }
        (1, pi) => Err(unsupported(format!("rendering of {pi}"))),
        (3, PhotometricInterpretation::YbrFull422) if meta.bits_allocated == 8 => {
            // native: Y1 Y2 Cb Cr for each pair of pixels along a row
            let stored = bytes.get(..pixels * 2).ok_or_else(too_short)?;
            let mut ybr = Vec::with_capacity(pixels * 3);
            for row in stored.chunks(w as usize * 2) {
                for (i, quad) in row.chunks(4).enumerate() {
                    let (cb, cr) = (
                        quad.get(2).copied().unwrap_or(128),
                        quad.get(3).copied().unwrap_or(128),
                    );
                    ybr.extend_from_slice(&[quad[0], cb, cr]);
                    if 2 * i + 1 < w as usize {
                        ybr.extend_from_slice(&[quad.get(1).copied().unwrap_or(quad[0]), cb, cr]);
                    }
                }
            }
            ybr_full_to_rgb(&mut ybr);
            RgbImage::from_raw(w, h, ybr)
                .map(DynamicImage::ImageRgb8)
                .ok_or_else(too_short)
        }
        (3, pi) => {
            let mut rgb: Vec<u8> = match meta.bits_allocated {
                8 => bytes.get(..pixels * 3).ok_or_else(too_short)?.to_vec(),
                16 => {
                    let shift = meta.bits_stored.saturating_sub(8).min(8);
                    bytes
                        .get(..pixels * 6)
                        .ok_or_else(too_short)?
                        .chunks_exact(2)
                        .map(|c| (u16::from_le_bytes([c[0], c[1]]) >> shift).min(255) as u8)
                        .collect()
                }
                ba => return Err(unsupported(format!("colour with Bits Allocated {ba}"))),
            };
            match pi {
                PhotometricInterpretation::Rgb => {}
                PhotometricInterpretation::YbrFull => ybr_full_to_rgb(&mut rgb),
                pi => return Err(unsupported(format!("rendering of native {pi}"))),
            }
            RgbImage::from_raw(w, h, rgb)
                .map(DynamicImage::ImageRgb8)
                .ok_or_else(too_short)
        }
        (spp, _) => Err(unsupported(format!("rendering of {spp} samples per pixel"))),
    }
}

/// Stored values, masked to Bits Stored and sign-extended when signed.
fn stored_values(bytes: &[u8], meta: &FrameMeta, pixels: usize) -> Result<Vec<i64>, PixelError> {
    let stored = u32::from(meta.bits_stored.clamp(1, 32));
    let raw: Vec<u32> = match meta.bits_allocated {
        1 => (0..pixels)
            .map(|i| bytes.get(i / 8).map(|b| u32::from((b >> (i % 8)) & 1)))
            .collect::<Option<_>>(),
        8 => bytes
            .get(..pixels)
            .map(|b| b.iter().map(|&v| u32::from(v)).collect()),
        16 => bytes.get(..pixels * 2).map(|b| {
            b.chunks_exact(2)
                .map(|c| u32::from(u16::from_le_bytes([c[0], c[1]])))
                .collect()
        }),
        32 => bytes.get(..pixels * 4).map(|b| {
            b.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }),
        ba => return Err(unsupported(format!("Bits Allocated {ba}"))),
    }
    .ok_or_else(|| PixelError::Invalid("decoded frame shorter than its dimensions".into()))?;
    let mask = if stored >= 32 {
        u32::MAX
    } else {
        (1u32 << stored) - 1
    };
    Ok(raw
        .into_iter()
        .map(|v| {
            let v = v & mask;
            if meta.signed && (v >> (stored - 1)) & 1 == 1 {
                i64::from(v) - i64::from(mask) - 1
            } else {
                i64::from(v)
            }
        })
        .collect())
}

/// Stored values through the Modality LUT (Rescale Slope and Intercept).
fn modality_values(bytes: &[u8], meta: &FrameMeta, pixels: usize) -> Result<Vec<f64>, PixelError> {
    let (slope, intercept) = (meta.rescale.slope, meta.rescale.intercept);
    Ok(stored_values(bytes, meta, pixels)?
        .into_iter()
        .map(|v| v as f64 * slope + intercept)
        .collect())
}

/// VOI LUT to 8 bits (PS3.3 C.11.2.1.2).
fn voi(values: &[f64], meta: &FrameMeta, window: Option<(f64, f64)>) -> Vec<u8> {
    let (center, width, function) = match (window, meta.window) {
        (Some((c, w)), _) => (c, w, VoiLutFunction::Linear),
        (None, Some(wl)) => (wl.center, wl.width, meta.voi_lut_function),
        (None, None) => {
            let (lo, hi) = values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            if hi <= lo || !(hi - lo).is_finite() {
                return vec![0; values.len()];
            }
            return values
                .iter()
                .map(|&v| (((v - lo) / (hi - lo)) * 255.0).round().clamp(0.0, 255.0) as u8)
                .collect();
        }
    };
    values
        .iter()
        .map(|&x| window_value(x, center, width, function))
        .collect()
}

/// One value through a window, to 0..=255.
pub(crate) fn window_value(x: f64, center: f64, width: f64, function: VoiLutFunction) -> u8 {
    let y = match function {
        VoiLutFunction::Linear => {
            let w = width.max(1.0);
            let c = center - 0.5;
            if x <= c - (w - 1.0) / 2.0 {
                0.0
            } else if x > c + (w - 1.0) / 2.0 {
                255.0
            } else {
                ((x - c) / (w - 1.0) + 0.5) * 255.0
            }
        }
        VoiLutFunction::LinearExact => {
            let w = if width > 0.0 {
                width
            } else {
                f64::MIN_POSITIVE
            };
            if x <= center - w / 2.0 {
                0.0
            } else if x > center + w / 2.0 {
                255.0
            } else {
                ((x - center) / w + 0.5) * 255.0
            }
        }
        VoiLutFunction::Sigmoid => {
            let w = if width > 0.0 {
                width
            } else {
                f64::MIN_POSITIVE
            };
            255.0 / (1.0 + (-4.0 * (x - center) / w).exp())
        }
    };
    y.round().clamp(0.0, 255.0) as u8
}

/// YBR_FULL to RGB (PS3.3 C.7.6.3.1.2), in place on interleaved 8-bit samples.
fn ybr_full_to_rgb(px: &mut [u8]) {
    for c in px.chunks_exact_mut(3) {
        let y = f64::from(c[0]);
        let cb = f64::from(c[1]) - 128.0;
        let cr = f64::from(c[2]) - 128.0;
        let r = y + 1.402 * cr;
        let g = y - 0.344_136 * cb - 0.714_136 * cr;
        let b = y + 1.772 * cb;
        c[0] = r.round().clamp(0.0, 255.0) as u8;
        c[1] = g.round().clamp(0.0, 255.0) as u8;
        c[2] = b.round().clamp(0.0, 255.0) as u8;
    }
}

/// The longest side a viewport may scale a frame up to.
pub const MAX_UPSCALED_SIDE: u32 = 4096;

/// Fit inside the viewport keeping the aspect ratio.
fn fit(image: DynamicImage, viewport: Option<(u32, u32)>) -> DynamicImage {
    let Some((vw, vh)) = viewport else {
        return image;
    };
    let (w, h) = (f64::from(image.width()), f64::from(image.height()));
    let sx = if vw == 0 {
        f64::INFINITY
    } else {
        f64::from(vw) / w
    };
    let sy = if vh == 0 {
        f64::INFINITY
    } else {
        f64::from(vh) / h
    };
    // scaling up stops at MAX_UPSCALED_SIDE (a viewport of 65535 × 65535 must not
    // allocate gigabytes); frames larger than that are only ever scaled down
    let longest = w.max(h);
    let cap = (f64::from(MAX_UPSCALED_SIDE) / longest).max(1.0);
    let scale = sx.min(sy);
    if !scale.is_finite() {
        return image;
    }
    let scale = scale.min(cap);
    if (scale - 1.0).abs() < f64::EPSILON {
        return image;
    }
    let nw = ((w * scale).round() as u32).max(1);
    let nh = ((h * scale).round() as u32).max(1);
    image.resize_exact(nw, nh, FilterType::Triangle)
}

fn encode(image: &DynamicImage, format: ImageFormat, quality: u8) -> Result<Vec<u8>, PixelError> {
    let mut out = Vec::new();
    let failed = |e: image::ImageError| PixelError::Invalid(format!("cannot encode image: {e}"));
    match format {
        ImageFormat::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
                .encode_image(image)
                .map_err(failed)?;
        }
        ImageFormat::Png => {
            image
                .write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
                .map_err(failed)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixel::tests::Ds;
    use crate::ts::EXPLICIT_VR_LE;
    use dicom_pixeldata::Rescale;

    fn png(file: &[u8], window: Option<(f64, f64)>) -> DynamicImage {
        let out = render(
            file,
            &RenderOptions {
                window,
                format: ImageFormat::Png,
                ..RenderOptions::default()
            },
        )
        .unwrap();
        image::load_from_memory_with_format(&out, image::ImageFormat::Png).unwrap()
    }

    #[test]
    fn linear_window_follows_ps3_3() {
        let f = VoiLutFunction::Linear;
        // c = 40, w = 400: x <= -160 is 0, x > 239 is 255
        assert_eq!(window_value(-160.0, 40.0, 400.0, f), 0);
        assert_eq!(window_value(-159.0, 40.0, 400.0, f), 1);
        assert_eq!(window_value(40.0, 40.0, 400.0, f), 128);
        assert_eq!(window_value(239.0, 40.0, 400.0, f), 255);
        assert_eq!(window_value(1000.0, 40.0, 400.0, f), 255);
        // width 1 is a threshold
        assert_eq!(window_value(9.0, 10.0, 1.0, f), 0);
        assert_eq!(window_value(10.0, 10.0, 1.0, f), 255);
        assert_eq!(window_value(0.0, 0.0, 100.0, VoiLutFunction::Sigmoid), 128);
        assert_eq!(
            window_value(50.0, 0.0, 100.0, VoiLutFunction::LinearExact),
            255
        );
    }

    #[test]
    fn monochrome1_is_inverted_and_monochrome2_is_not() {
        let data = [0u8, 100, 200, 255];
        for (pi, want) in [
            ("MONOCHROME1", [255u8, 155, 55, 0]),
            ("MONOCHROME2", [0, 100, 200, 255]),
        ] {
            let (file, _) = Ds::new(EXPLICIT_VR_LE)
                .image_pi(2, 2, 1, 8, 1, pi, 0)
                .native(b"OB", &data);
            // no window in the file: min/max
            assert_eq!(png(&file, None).to_luma8().into_raw(), want, "{pi}");
        }
    }

    #[test]
    fn signed_samples_are_sign_extended_from_bits_stored() {
        // 12 bits stored, signed: 0x0FFF is -1, 0x0800 is -2048, 0x07FF is 2047
        let bytes: Vec<u8> = [0x0FFFu16, 0x0800, 0x07FF, 0xF000]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let meta = FrameMeta {
            rows: 2,
            columns: 2,
            samples_per_pixel: 1,
            bits_allocated: 16,
            bits_stored: 12,
            signed: true,
            photometric: PhotometricInterpretation::Monochrome2,
            rescale: Rescale {
                slope: 2.0,
                intercept: 10.0,
            },
            window: None,
            voi_lut_function: VoiLutFunction::Linear,
            palette: None,
        };
        // modality values 8, -4086, 4104, 10: window centred on 8, width 3 (6.5..9.5)
        let img = to_image(&bytes, &meta, Some((8.5, 3.0))).unwrap();
        assert_eq!(img.to_luma8().into_raw(), [128, 0, 255, 255]);
    }

    #[test]
    fn palette_color_is_looked_up() {
        let desc: Vec<u8> = [4u16, 1, 16].iter().flat_map(|v| v.to_le_bytes()).collect();
        let lut = |v: [u16; 4]| -> Vec<u8> { v.iter().flat_map(|v| v.to_le_bytes()).collect() };
        let (file, _) = Ds::new(EXPLICIT_VR_LE)
            .image_pi(1, 3, 1, 8, 1, "PALETTE COLOR", 0)
            .raw((0x0028, 0x1101), b"US", &desc)
            .raw((0x0028, 0x1102), b"US", &desc)
            .raw((0x0028, 0x1103), b"US", &desc)
            .raw(
                (0x0028, 0x1201),
                b"OW",
                &lut([0x0000, 0xFF00, 0x0000, 0x8000]),
            )
            .raw(
                (0x0028, 0x1202),
                b"OW",
                &lut([0x0000, 0x0000, 0xFF00, 0x8000]),
            )
            .raw(
                (0x0028, 0x1203),
                b"OW",
                &lut([0xFF00, 0x0000, 0x0000, 0x8000]),
            )
            // 0 is below the first mapped value (1): the first entry
            .native(b"OB", &[0, 2, 4, 0]);
        let img = png(&file, None);
        assert_eq!(
            img.to_rgb8().into_raw(),
            [0, 0, 255, 255, 0, 0, 128, 128, 128]
        );
    }

    #[test]
    fn viewport_fits_and_caps_upscaling() {
        let img = DynamicImage::ImageLuma8(GrayImage::new(400, 100));
        let dims = |v| {
            let i = fit(img.clone(), v);
            (i.width(), i.height())
        };
        assert_eq!(dims(None), (400, 100));
        assert_eq!(dims(Some((100, 100))), (100, 25));
        assert_eq!(dims(Some((0, 50))), (200, 50));
        assert_eq!(dims(Some((800, 0))), (800, 200));
        assert_eq!(dims(Some((0, 0))), (400, 100));
        assert_eq!(dims(Some((65535, 65535))), (MAX_UPSCALED_SIDE, 1024));
    }

    #[test]
    fn native_ybr_full_422_is_sized_and_converted() {
        // two pixels: Y1 Y2 Cb Cr, neutral chroma
        let (file, at) = Ds::new(EXPLICIT_VR_LE)
            .image_pi(1, 2, 3, 8, 1, "YBR_FULL_422", 0)
            .native(b"OB", &[100, 200, 128, 128]);
        let idx = crate::pixel::frame_index(&file).unwrap();
        let at = at as u64;
        assert_eq!(idx.frames, vec![vec![at..at + 4]]);
        assert_eq!(
            png(&file, None).to_rgb8().into_raw(),
            [100, 100, 100, 200, 200, 200]
        );
    }
}
