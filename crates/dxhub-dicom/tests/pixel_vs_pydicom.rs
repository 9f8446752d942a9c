//! `dxhub_dicom::pixel` and `render` checked against pydicom on the pydicom test files.
//!
//! tests/py/decode_frames.py decodes every frame with pydicom (plugins pinned in
//! tests/py/requirements.txt) and writes the raw arrays; here each frame from
//! `decoded_frame` must equal pydicom's bytes exactly, except for lossy JPEG (Baseline and
//! Extended), where decoders may round the IDCT differently: there every sample may differ
//! by at most `LOSSY_JPEG_TOLERANCE`. `original_frame` of encapsulated files must equal
//! the frames `pydicom.encaps.generate_frames` yields, byte for byte.
//!
//! Needs DXHUB_TEST_PYTHON (an interpreter with pydicom) and DXHUB_TEST_CORPUS (the test
//! corpus, with pydicom/ inside): skipped when missing, a failure under CI=true.

#![allow(clippy::unwrap_used)]

use dicom_dictionary_std::tags;
use dxhub_dicom::pixel::{
    PixelError, decoded_frame, frame_count, frame_index, original_frame, transcode_explicit_le,
};
use dxhub_dicom::render::{ImageFormat, RenderOptions, render};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Lossy JPEG (Baseline 4.50, Extended 4.51): jpeg-decoder (dicom-pixeldata) and libjpeg
/// (pylibjpeg) round the IDCT and the chroma upsampling differently. On
/// examples_ybr_color (YBR_FULL_422, 30 frames) 98.3% of the samples are equal, 1.7% off
/// by 1, 0.33% off by 2 and 0.004% off by 3: allow at most 3, and at most 1% of the
/// samples off by 2 or more.
const LOSSY_JPEG_TOLERANCE: i64 = 3;
const LOSSY_JPEG_SHARE_OFF_BY_2: f64 = 0.01;

/// Files whose pixel data dxhub cannot decode: decoded_frame, render and
/// transcode_explicit_le must say Unsupported (HTTP 406); original_frame still serves the
/// stored bytes. JPGExtended: JPEG Extended with 12-bit DCT samples, which jpeg-decoder
/// does not implement.
const KNOWN_UNSUPPORTED: &[&str] = &["JPGExtended.dcm"];

const FILES: &[&str] = &[
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "ExplVR_BigEnd.dcm",
    "image_dfl.dcm",
    "liver_1frame.dcm",
    "liver_expb_1frame.dcm",
    "dicomdir_cr_6154.dcm",
    "rtdose.dcm",
    "MR_small_RLE.dcm",
    "SC_rgb_rle.dcm",
    "rtdose_rle_1frame.dcm",
    "JPGExtended.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "examples_ybr_color.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "JPEGLSNearLossless_08.dcm",
    "MR_small_jp2klossless.dcm",
    "JPEG2000.dcm",
    "693_J2KI.dcm",
    "examples_jpeg2k.dcm",
];

// --- peers: the logic of tests/src/peers.rs (this crate cannot depend on it) ---

fn ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if ci() {
        panic!("{what} is missing (CI=true: a missing peer is a failure); run scripts/test.sh");
    }
    eprintln!("SKIPPING: {what} is missing; run the tests with scripts/test.sh");
    false
}

fn python() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

fn corpus() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_CORPUS")
        .map(PathBuf::from)
        .filter(|p| p.join("manifest.json").exists())
}

fn peers() -> Option<(PathBuf, PathBuf)> {
    let py = python();
    let corpus = corpus();
    if !require("DXHUB_TEST_PYTHON (python with pydicom)", py.is_some())
        || !require("DXHUB_TEST_CORPUS (test corpus)", corpus.is_some())
    {
        return None;
    }
    Some((py?, corpus?.join("pydicom")))
}

// --- pydicom ---

struct Pydicom {
    files: Vec<Value>,
    _dir: tempfile::TempDir,
}

fn pydicom(py: &Path, corpus: &Path, names: &[&str]) -> Pydicom {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/py/decode_frames.py");
    let out = Command::new(py)
        .arg(&script)
        .arg(dir.path())
        .args(names.iter().map(|n| corpus.join(n)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "decode_frames.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(files.len(), names.len());
    Pydicom { files, _dir: dir }
}

fn paths(v: &Value) -> Vec<PathBuf> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p["path"].as_str().unwrap()))
        .collect()
}

/// Max |a − b| over samples of `bytes_per_sample` little-endian bytes (unsigned).
fn max_abs_diff(a: &[u8], b: &[u8], bytes_per_sample: usize) -> i64 {
    assert_eq!(a.len(), b.len());
    a.chunks(bytes_per_sample)
        .zip(b.chunks(bytes_per_sample))
        .map(|(x, y)| {
            let v = |c: &[u8]| c.iter().rev().fold(0i64, |acc, &b| acc << 8 | i64::from(b));
            (v(x) - v(y)).abs()
        })
        .max()
        .unwrap_or(0)
}

/// Share of samples whose |a − b| is 2 or more.
fn share_off_by_more_than_one(a: &[u8], b: &[u8], bytes_per_sample: usize) -> f64 {
    let v = |c: &[u8]| c.iter().rev().fold(0i64, |acc, &b| acc << 8 | i64::from(b));
    let samples = a.len() / bytes_per_sample;
    let off = a
        .chunks(bytes_per_sample)
        .zip(b.chunks(bytes_per_sample))
        .filter(|(x, y)| (v(x) - v(y)).abs() > 1)
        .count();
    off as f64 / samples.max(1) as f64
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Check one file against pydicom's output; returns the number of frames compared.
fn check_file(name: &str, exp: &Value, corpus: &Path) -> Result<usize, String> {
    ensure!(exp.get("error").is_none(), "pydicom: {}", exp["error"]);
    let file = std::fs::read(corpus.join(name)).map_err(|e| e.to_string())?;
    let ts = exp["transfer_syntax_uid"].as_str().unwrap_or_default();
    let frames = exp["frames"].as_u64().unwrap_or_default() as u32;
    let decoded = paths(&exp["decoded"]);
    ensure!(
        decoded.len() as u32 == frames,
        "pydicom wrote {} frames",
        decoded.len()
    );

    ensure!(
        frame_count(&file).map_err(|e| format!("frame_count: {e}"))? == frames,
        "frame_count differs from pydicom's {frames}"
    );
    if ts != "1.2.840.10008.1.2.1.99" {
        let idx = frame_index(&file).map_err(|e| format!("frame_index: {e}"))?;
        ensure!(
            idx.frames.len() as u32 == frames,
            "frame_index found {} frames, pydicom {frames}",
            idx.frames.len()
        );
        ensure!(
            idx.transfer_syntax_uid == ts,
            "frame_index TS {}",
            idx.transfer_syntax_uid
        );
    }
    ensure!(
        matches!(
            decoded_frame(&file, frames + 1),
            Err(PixelError::FrameOutOfRange(f, n)) if f == frames + 1 && n == frames
        ),
        "frame {} is not out of range",
        frames + 1
    );

    let lossy = ts == "1.2.840.10008.1.2.4.50" || ts == "1.2.840.10008.1.2.4.51";
    let dtype = exp["dtype"].as_str().unwrap_or_default();
    let bytes_per_sample = match dtype.trim_start_matches(['<', '>', '=', '|']) {
        "uint8" | "int8" | "u1" | "i1" => 1,
        "uint16" | "int16" | "u2" | "i2" => 2,
        "uint32" | "int32" | "u4" | "i4" => 4,
        other => return Err(format!("dtype {other}")),
    };
    if KNOWN_UNSUPPORTED.contains(&name) {
        ensure!(
            matches!(decoded_frame(&file, 1), Err(PixelError::Unsupported(_))),
            "decoded_frame is not Unsupported"
        );
        ensure!(
            matches!(
                render(&file, &RenderOptions::default()),
                Err(PixelError::Unsupported(_))
            ),
            "render is not Unsupported"
        );
        ensure!(
            matches!(
                transcode_explicit_le(&file),
                Err(PixelError::Unsupported(_))
            ),
            "transcode_explicit_le is not Unsupported"
        );
    }
    for (n, path) in decoded.iter().enumerate() {
        if KNOWN_UNSUPPORTED.contains(&name) {
            break;
        }
        let frame = n as u32 + 1;
        let want = std::fs::read(path).map_err(|e| e.to_string())?;
        let got = decoded_frame(&file, frame)
            .map_err(|e| format!("frame {frame}: decoded_frame: {e}"))?;
        ensure!(
            got.len() == want.len(),
            "frame {frame}: {} bytes, pydicom {}",
            got.len(),
            want.len()
        );
        let d = max_abs_diff(&got, &want, bytes_per_sample);
        if lossy {
            let off = share_off_by_more_than_one(&got, &want, bytes_per_sample);
            ensure!(
                d <= LOSSY_JPEG_TOLERANCE && off <= LOSSY_JPEG_SHARE_OFF_BY_2,
                "frame {frame}: max abs difference {d} (at most {LOSSY_JPEG_TOLERANCE}), \
                 {off:.4} of the samples off by 2 or more (at most {LOSSY_JPEG_SHARE_OFF_BY_2})"
            );
        } else {
            ensure!(
                got == want,
                "frame {frame}: differs from pydicom at byte {:?} (max abs diff {d})",
                first_difference(&got, &want)
            );
        }
    }

    let (first, label) = original_frame(&file, 1).map_err(|e| format!("original_frame: {e}"))?;
    if exp["original"].is_null() {
        ensure!(label == "1.2.840.10008.1.2.1", "native label {label}");
        // native with Planar Configuration 0 (ExplVR_BigEnd is the planar one): the
        // original frame is the decoded one
        if name != "ExplVR_BigEnd.dcm" {
            let want = std::fs::read(&decoded[0]).map_err(|e| e.to_string())?;
            ensure!(
                first == want,
                "original frame 1 differs from pydicom at byte {:?}",
                first_difference(&first, &want)
            );
        }
    } else {
        ensure!(label == ts, "encapsulated label {label}");
        let originals = paths(&exp["original"]);
        ensure!(originals.len() as u32 == frames, "generate_frames count");
        for (n, path) in originals.iter().enumerate() {
            let (got, _) = original_frame(&file, n as u32 + 1).map_err(|e| e.to_string())?;
            ensure!(
                got == std::fs::read(path).map_err(|e| e.to_string())?,
                "frame {}: original bytes differ from generate_frames",
                n + 1
            );
        }
    }
    Ok(if KNOWN_UNSUPPORTED.contains(&name) {
        0
    } else {
        decoded.len()
    })
}

#[test]
fn decoded_and_original_frames_equal_pydicom() {
    let Some((py, corpus)) = peers() else { return };
    let expected = pydicom(&py, &corpus, FILES);
    let mut frames = 0;
    let mut failures = Vec::new();
    for (name, exp) in FILES.iter().zip(&expected.files) {
        match check_file(name, exp, &corpus) {
            Ok(n) => frames += n,
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // every decodable file, plus the 29 more frames of examples_ybr_color and 14 of rtdose
    assert_eq!(frames, FILES.len() - KNOWN_UNSUPPORTED.len() + 29 + 14);
}

#[test]
fn transcoded_files_decode_to_the_same_frames() {
    let Some((_py, corpus)) = peers() else { return };
    for name in [
        "MR_small_RLE.dcm",
        "SC_rgb_jpeg_gdcm.dcm",
        "examples_ybr_color.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_bigendian.dcm",
        "image_dfl.dcm",
        "rtdose_rle_1frame.dcm",
        "rtdose.dcm",
    ] {
        let file = std::fs::read(corpus.join(name)).unwrap();
        let out = transcode_explicit_le(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let idx = frame_index(&out).unwrap();
        assert_eq!(idx.transfer_syntax_uid, "1.2.840.10008.1.2.1", "{name}");
        assert!(!idx.encapsulated);
        for frame in 1..=idx.frames.len() as u32 {
            let a = decoded_frame(&file, frame).unwrap();
            let b = decoded_frame(&out, frame).unwrap();
            assert!(a == b, "{name} frame {frame}: transcoded pixels differ");
        }
        let obj = dicom_object::OpenFileOptions::new()
            .read_preamble(dicom_object::file::ReadPreamble::Never)
            .from_reader(&out[128..])
            .unwrap();
        let spp: u16 = obj
            .element(tags::SAMPLES_PER_PIXEL)
            .unwrap()
            .to_int()
            .unwrap();
        if spp == 3 {
            let pi = obj
                .element(tags::PHOTOMETRIC_INTERPRETATION)
                .unwrap()
                .to_str()
                .unwrap()
                .trim()
                .to_owned();
            assert_eq!(pi, "RGB", "{name}");
            let pc: u16 = obj
                .element(tags::PLANAR_CONFIGURATION)
                .unwrap()
                .to_int()
                .unwrap();
            assert_eq!(pc, 0, "{name}");
        }
    }
}

/// PS3.3 C.11.2.1.2.1 LINEAR, written out again here to check the renderer.
fn linear(x: f64, c: f64, w: f64) -> u8 {
    if x <= c - 0.5 - (w - 1.0) / 2.0 {
        0
    } else if x > c - 0.5 + (w - 1.0) / 2.0 {
        255
    } else {
        (((x - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0).round() as u8
    }
}

fn png(file: &[u8], opts: &RenderOptions) -> image::DynamicImage {
    let out = render(file, opts).unwrap();
    assert!(out.starts_with(b"\x89PNG"));
    image::load_from_memory_with_format(&out, image::ImageFormat::Png).unwrap()
}

fn rescale(file: &[u8]) -> (f64, f64) {
    let obj = dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .from_reader(&file[128..])
        .unwrap();
    let f = |t| obj.element(t).ok().map(|e| e.to_float64().unwrap());
    (
        f(tags::RESCALE_SLOPE).unwrap_or(1.0),
        f(tags::RESCALE_INTERCEPT).unwrap_or(0.0),
    )
}

#[test]
fn rendered_ct_applies_rescale_and_window() {
    let Some((py, corpus)) = peers() else { return };
    let exp = pydicom(&py, &corpus, &["CT_small.dcm"]);
    let raw = std::fs::read(&paths(&exp.files[0]["decoded"])[0]).unwrap();
    let stored: Vec<i16> = raw
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    let file = std::fs::read(corpus.join("CT_small.dcm")).unwrap();
    let (slope, intercept) = rescale(&file);
    let hu: Vec<f64> = stored
        .iter()
        .map(|&v| f64::from(v) * slope + intercept)
        .collect();
    let opts = RenderOptions {
        window: Some((40.0, 400.0)),
        format: ImageFormat::Png,
        ..RenderOptions::default()
    };
    let img = png(&file, &opts).to_luma8();
    assert_eq!(img.dimensions(), (128, 128));
    let expected: Vec<u8> = hu.iter().map(|&x| linear(x, 40.0, 400.0)).collect();
    let below = hu
        .iter()
        .position(|&x| x < -160.0)
        .expect("a pixel below the window");
    let above = hu
        .iter()
        .position(|&x| x > 240.0)
        .expect("a pixel above the window");
    let inside = hu
        .iter()
        .position(|&x| x > -100.0 && x < 200.0)
        .expect("a pixel inside the window");
    for i in [below, above, inside, 0, 64 * 128 + 64, 128 * 128 - 1] {
        let (x, y) = ((i % 128) as u32, (i / 128) as u32);
        assert_eq!(
            img.get_pixel(x, y).0[0],
            expected[i],
            "pixel ({x},{y}) HU {}",
            hu[i]
        );
    }
    assert_eq!(expected[below], 0);
    assert_eq!(expected[above], 255);
    assert!(expected[inside] > 0 && expected[inside] < 255);
    assert_eq!(img.into_raw(), expected, "the whole image");

    // a narrower window changes the picture: the window is really applied
    let narrow = png(
        &file,
        &RenderOptions {
            window: Some((40.0, 80.0)),
            ..opts.clone()
        },
    )
    .to_luma8();
    assert_ne!(narrow.into_raw(), expected);
}

#[test]
fn rendered_monochrome1_is_inverted() {
    let Some((py, corpus)) = peers() else { return };
    let name = "dicomdir_cr_6154.dcm"; // MONOCHROME1, 16 × 16, 12 bits stored
    let exp = pydicom(&py, &corpus, &[name]);
    assert_eq!(exp.files[0]["photometric_interpretation"], "MONOCHROME1");
    let raw = std::fs::read(&paths(&exp.files[0]["decoded"])[0]).unwrap();
    let file = std::fs::read(corpus.join(name)).unwrap();
    let (slope, intercept) = rescale(&file);
    let values: Vec<f64> = raw
        .chunks_exact(2)
        .map(|c| f64::from(u16::from_le_bytes([c[0], c[1]])) * slope + intercept)
        .collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(hi > lo);
    let (c, w) = ((lo + hi) / 2.0, hi - lo);
    let img = png(
        &file,
        &RenderOptions {
            window: Some((c, w)),
            format: ImageFormat::Png,
            ..RenderOptions::default()
        },
    )
    .to_luma8();
    let expected: Vec<u8> = values.iter().map(|&x| 255 - linear(x, c, w)).collect();
    assert_eq!(img.into_raw(), expected);
    // the darkest stored value is white, the brightest black
    let lo_at = values.iter().position(|&v| v == lo).unwrap();
    let hi_at = values.iter().position(|&v| v == hi).unwrap();
    assert_eq!(expected[lo_at], 255);
    assert_eq!(expected[hi_at], 0);
}

#[test]
fn thumbnails_fit_the_viewport_and_are_jpeg() {
    let Some((_py, corpus)) = peers() else { return };
    for (name, viewport, want) in [
        ("JPEG2000.dcm", (128, 128), (32, 128)), // 256 wide × 1024 high
        ("CT_small.dcm", (64, 64), (64, 64)),
        ("SC_rgb_rle.dcm", (50, 200), (50, 50)),
        ("examples_ybr_color.dcm", (160, 160), (160, 120)),
        ("MR_small.dcm", (0, 128), (128, 128)),
    ] {
        let file = std::fs::read(corpus.join(name)).unwrap();
        let out = render(
            &file,
            &RenderOptions {
                viewport: Some(viewport),
                quality: 70,
                ..RenderOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(out.starts_with(&[0xFF, 0xD8, 0xFF]), "{name}: not JPEG");
        let img = image::load_from_memory_with_format(&out, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((img.width(), img.height()), want, "{name}");
    }
}

#[test]
fn rendered_rgb_keeps_the_colours() {
    let Some((py, corpus)) = peers() else { return };
    let name = "SC_rgb_rle.dcm";
    let exp = pydicom(&py, &corpus, &[name]);
    let raw = std::fs::read(&paths(&exp.files[0]["decoded"])[0]).unwrap();
    let file = std::fs::read(corpus.join(name)).unwrap();
    let img = png(
        &file,
        &RenderOptions {
            format: ImageFormat::Png,
            ..RenderOptions::default()
        },
    );
    assert!(matches!(img, image::DynamicImage::ImageRgb8(_)));
    assert_eq!(img.into_rgb8().into_raw(), raw);
}
