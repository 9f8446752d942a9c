//! `render::png`: decodes, has the pixel size of the page at `px_per_mm`, shows the pink/red
//! grid and the black traces, and prints CJK header text (a CJK font, Debian's
//! fonts-wqy-microhei, is a test peer: missing, the test is skipped, or fails under
//! `CI=true`). The real-data test renders pydicom's `waveform_ecg.dcm` from
//! `DXHUB_TEST_CORPUS` (same skip/CI rule) and leaves SVGs and PNGs in
//! `target/test-artifacts/ecg/` (`DXHUB_TEST_ARTIFACTS` overrides the root) for people to
//! look at.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::render::{Layout, RenderError, RenderOptions, png, svg};
use dxhub_ecg::{Ecg, Filters, Lead, LeadCode, read_dicom};
use image::RgbImage;
use std::path::{Path, PathBuf};

fn ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Returns false (the test returns early) when a peer is missing outside CI; panics in CI.
fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if ci() {
        panic!(
            "peer {what} is missing (CI=true: a missing peer is a failure); run the tests with scripts/test.sh"
        );
    }
    eprintln!("SKIPPING: peer {what} is missing; run the tests with scripts/test.sh");
    false
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn artifacts() -> PathBuf {
    let root = match std::env::var_os("DXHUB_TEST_ARTIFACTS").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("CARGO_TARGET_DIR") {
            Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
            Some(d) => repo_root().join(d),
            None => repo_root().join("target"),
        }
        .join("test-artifacts"),
    };
    let dir = root.join("ecg");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A synthetic 12-lead ECG, 10 s at 500 Hz: a beat every second (lead k scaled by
/// (k + 1)/6) with a 1 mV R wave.
fn synthetic() -> Ecg {
    let fs = 500.0;
    let leads = LeadCode::STANDARD_12
        .iter()
        .enumerate()
        .map(|(k, code)| Lead {
            code: code.clone(),
            samples_uv: (0..5000)
                .map(|i| {
                    let t = (i as f64 / fs) % 1.0;
                    let r = (-((t - 0.3) / 0.012).powi(2)).exp() * 1000.0;
                    let tw = (-((t - 0.6) / 0.05).powi(2)).exp() * 250.0;
                    ((r + tw) * (k as f64 + 1.0) / 6.0) as f32
                })
                .collect(),
        })
        .collect();
    Ecg {
        leads,
        sample_rate_hz: fs,
        filters: Filters {
            low_hz: Some(0.05),
            high_hz: Some(150.0),
            notch_hz: None,
        },
        ..Ecg::default()
    }
}

/// Page size in mm from the SVG's viewBox.
fn page_mm(ecg: &Ecg, header: &[String], opts: &RenderOptions) -> (f64, f64) {
    let s = svg(ecg, header, opts).unwrap();
    let vb = s.split("viewBox=\"").nth(1).unwrap();
    let vb: Vec<f64> = vb[..vb.find('"').unwrap()]
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    (vb[2], vb[3])
}

/// y (mm) of the top of the grid, from the SVG.
fn grid_top_mm(ecg: &Ecg, header: &[String]) -> f64 {
    let s = svg(ecg, header, &RenderOptions::default()).unwrap();
    let d = s.split("class=\"grid-major\"").nth(1).unwrap();
    let d = d.split(" d=\"M").nth(1).unwrap();
    // "x,yV…": the first vertical line starts at the top.
    d.split(',')
        .nth(1)
        .unwrap()
        .split('V')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn decode(bytes: &[u8]) -> RgbImage {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .unwrap()
        .to_rgb8()
}

fn is_grid(p: &image::Rgb<u8>) -> bool {
    let [r, g, b] = p.0;
    r > 180 && i32::from(r) - i32::from(g) > 25 && i32::from(r) - i32::from(b) > 25
}

fn is_ink(p: &image::Rgb<u8>) -> bool {
    p.0.iter().all(|&c| c < 90)
}

#[test]
fn png_has_the_page_size_grid_and_traces() {
    let ecg = synthetic();
    let header = vec!["Test Patient  M  45 y".to_owned()];
    for (opts, ppm) in [
        (RenderOptions::default(), 4.0f32),
        (
            RenderOptions {
                speed_mm_s: 50.0,
                gain_mm_per_mv: 20.0,
                layout: Layout::TwelveByOne,
            },
            3.0,
        ),
    ] {
        let bytes = png(&ecg, &header, &opts, ppm).unwrap();
        let img = decode(&bytes);
        let (w, h) = page_mm(&ecg, &header, &opts);
        assert_eq!(
            (img.width(), img.height()),
            (
                (w * f64::from(ppm)).ceil() as u32,
                (h * f64::from(ppm)).ceil() as u32
            ),
            "{opts:?} at {ppm} px/mm"
        );
        let grid = img.pixels().filter(|p| is_grid(p)).count();
        let ink = img.pixels().filter(|p| is_ink(p)).count();
        let total = (img.width() * img.height()) as usize;
        assert!(grid > total / 20, "{opts:?}: {grid} grid pixels of {total}");
        assert!(ink > 2000, "{opts:?}: {ink} trace pixels");
        let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        assert!(white > total / 10, "paper between grid lines is white");
    }
}

#[test]
fn png_rejects_bad_scales() {
    let ecg = synthetic();
    let opts = RenderOptions::default();
    for bad in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
        assert!(matches!(
            png(&ecg, &[], &opts, bad),
            Err(RenderError::BadScale(_))
        ));
    }
    let err = png(&ecg, &[], &opts, 100.0).unwrap_err();
    assert!(matches!(err, RenderError::PngTooLarge { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("exceeds the limit of 16384 px per side")
    );
    let err = png(
        &ecg,
        &[],
        &RenderOptions {
            gain_mm_per_mv: 15.0,
            ..opts
        },
        4.0,
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::UnsupportedGain(_)));
}

const CJK_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
];

#[test]
fn chinese_header_is_printed() {
    let present = CJK_FONTS.iter().any(|p| Path::new(p).exists());
    if !require("a CJK font (apt-get install fonts-wqy-microhei)", present) {
        return;
    }
    let ecg = synthetic();
    let opts = RenderOptions::default();
    let ppm = 6.0f32;
    let header_ink = |line: &str| {
        let header = vec![line.to_owned()];
        let img = decode(&png(&ecg, &header, &opts, ppm).unwrap());
        let top = (grid_top_mm(&ecg, &header) * f64::from(ppm)) as u32 - 2;
        let mut band = Vec::new();
        for y in 0..top {
            for x in 0..img.width() {
                band.push(is_ink(img.get_pixel(x, y)));
            }
        }
        band
    };
    let a = header_ink("张三 男 患者");
    let b = header_ink("李四 女 病人");
    let dark = |v: &[bool]| v.iter().filter(|&&d| d).count();
    assert!(
        dark(&a) > 150,
        "no glyphs drawn for the Chinese header: {}",
        dark(&a)
    );
    assert!(dark(&b) > 150);
    // Missing glyphs would be drawn as identical .notdef boxes; real glyphs differ.
    let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert!(
        differing > 100,
        "two different Chinese headers render the same ({differing} pixels differ): no CJK glyphs"
    );
    // And the band is clean without header text: the ink above is the text's.
    let empty = header_ink("");
    assert_eq!(dark(&empty), 0, "ink in an empty header");
}

fn corpus() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_CORPUS")
        .map(PathBuf::from)
        .filter(|p| p.join("pydicom").is_dir())
}

#[test]
fn pydicom_waveform_ecg_renders() {
    let corpus = corpus();
    if !require("DXHUB_TEST_CORPUS (with pydicom/)", corpus.is_some()) {
        return;
    }
    let path = corpus.unwrap().join("pydicom/waveform_ecg.dcm");
    assert!(
        path.exists(),
        "{} is missing from the corpus",
        path.display()
    );
    let mut ecg = read_dicom(&std::fs::read(&path).unwrap()).unwrap();
    dxhub_ecg::derive_limb_leads(&mut ecg);
    let header = vec![
        format!(
            "{}   ID {}   {}",
            ecg.patient.name.as_deref().unwrap_or("—"),
            ecg.patient.id.as_deref().unwrap_or("—"),
            ecg.acquired_at.as_deref().unwrap_or("")
        ),
        "张三 男 45岁 (synthetic header) <test> & co".to_owned(),
        ecg.device_measurements
            .iter()
            .map(|m| format!("{} {} {}", m.meaning, m.value, m.unit))
            .collect::<Vec<_>>()
            .join("   "),
        ecg.statements.join("; "),
    ];
    let dir = artifacts();
    for (name, opts) in [
        ("waveform_ecg_3x4_25", RenderOptions::default()),
        (
            "waveform_ecg_3x4_50",
            RenderOptions {
                speed_mm_s: 50.0,
                ..RenderOptions::default()
            },
        ),
        (
            "waveform_ecg_12x1_25",
            RenderOptions {
                layout: Layout::TwelveByOne,
                ..RenderOptions::default()
            },
        ),
    ] {
        let s = svg(&ecg, &header, &opts).unwrap();
        let traces = s.matches("class=\"trace\"").count();
        let expected = if opts.layout == Layout::ThreeByFour {
            13
        } else {
            12
        };
        assert_eq!(traces, expected, "{name}: traces drawn");
        let bytes = png(&ecg, &header, &opts, 8.0).unwrap();
        let img = decode(&bytes);
        assert!(
            img.pixels().filter(|p| is_ink(p)).count() > 5000,
            "{name}: no traces"
        );
        assert!(
            img.pixels().filter(|p| is_grid(p)).count() > 100_000,
            "{name}: no grid"
        );
        std::fs::write(dir.join(format!("{name}.svg")), &s).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &bytes).unwrap();
        eprintln!(
            "{name}: {} (SVG {} bytes)",
            dir.join(format!("{name}.png")).display(),
            s.len()
        );
    }
}
