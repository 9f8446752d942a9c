//! `scp::read_scp` on Huffman-coded, difference-encoded, reference-beat-subtracted and
//! bimodally compressed SCP-ECG records. No packaged third-party tool writes such records
//! (biosig's writer stores uncompressed data only), so `tests/py/scp_encode.py` — our own
//! encoder in Python, written from the record layout of EN 1064, sharing no code with the
//! reader — writes them at test time from the 12-lead rhythm of pydicom's `waveform_ecg.dcm`;
//! the original samples are the truth (every record is lossless but `bimodal.scp`, exact only
//! inside the protected zones).
//!
//! A third-party reader checks that those records are what the standard says: PixelMed's
//! SCP-ECG decoder (Debian `libpixelmed-java`, driven by `tests/py/scp_pixelmed_dump.py`)
//! must decode the default-table record to the same samples as ours, and the
//! reference-beat record to the same rhythm but for its alignment of the reference beat, one
//! sample later than SCP-AV's and the ECG toolkit's (and ours).
//!
//! Peers: `DXHUB_TEST_PYTHON` (pydicom, numpy), `DXHUB_TEST_CORPUS` (with pydicom/); for the
//! PixelMed test also `javac`/`java` and the jar (`DXHUB_TEST_PIXELMED_JAR`, default
//! `/usr/share/java/pixelmed.jar`). Missing → skipped, or a failure under `CI=true`.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::scp::{crc_ccitt, read_scp};
use dxhub_ecg::{Ecg, LeadCode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

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
        panic!(
            "peer {what} is missing (CI=true: a missing peer is a failure); run the tests with scripts/test.sh"
        );
    }
    eprintln!("SKIPPING: peer {what} is missing; run the tests with scripts/test.sh");
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
        .filter(|p| p.join("pydicom").is_dir())
}

fn script(name: &str) -> PathBuf {
    std::env::var_os("DXHUB_TEST_PY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/py"))
        .join(name)
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Encode the records into a temporary directory; `None` when a peer is missing.
fn encoded() -> Option<(tempfile::TempDir, Value, PathBuf)> {
    let python = python();
    if !require("DXHUB_TEST_PYTHON (python with pydicom)", python.is_some()) {
        return None;
    }
    let corpus = corpus();
    if !require("DXHUB_TEST_CORPUS (with pydicom/)", corpus.is_some()) {
        return None;
    }
    let python = python.unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(Command::new(&python)
        .arg(script("scp_encode.py"))
        .arg(corpus.unwrap().join("pydicom/waveform_ecg.dcm"))
        .arg(dir.path()));
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("truth.json")).unwrap()).unwrap();
    Some((dir, truth, python))
}

fn read(dir: &Path, name: &str) -> (Vec<u8>, Ecg) {
    let bytes = std::fs::read(dir.join(name)).unwrap();
    let ecg = read_scp(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    (bytes, ecg)
}

fn truth_raw(truth: &Value) -> Vec<Vec<i64>> {
    truth["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["raw"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect()
        })
        .collect()
}

/// Every sample equals the original (raw × AVM), to f32 precision.
fn assert_lossless(name: &str, ecg: &Ecg, truth: &Value) {
    let step = truth["avm_nv"].as_f64().unwrap() / 1000.0;
    let names: Vec<&str> = truth["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    let ours: Vec<&str> = ecg.leads.iter().map(|l| l.code.name()).collect();
    assert_eq!(ours, names, "{name}: leads");
    assert_eq!(ecg.sample_rate_hz, 1000.0, "{name}: sample rate");
    for (lead, raw) in ecg.leads.iter().zip(truth_raw(truth)) {
        assert_eq!(lead.samples_uv.len(), raw.len(), "{name}: {}", lead.code);
        for (i, (o, r)) in lead.samples_uv.iter().zip(&raw).enumerate() {
            let expected = *r as f64 * step;
            assert!(
                (f64::from(*o) - expected).abs() <= 1e-3,
                "{name}: lead {} sample {i}: {o} µV, original {expected} µV",
                lead.code
            );
        }
    }
}

/// Damage a valid record — every byte of the first 300 (record header, section 0, the start
/// of the next sections) and 30 places spread over the rest set to 0x00, 0xFF or with its low
/// bit flipped —, fix the CRCs so that the damage reaches the section parsers, and read: errors
/// are fine, panics are not. Also read 30 truncations, as they are and claiming to be whole.
/// (Exhaustive damage of a small record is in scp_hostile.rs; these records have sections
/// 4 and 5 too.)
fn damage_without_panic(bytes: &[u8]) {
    let stride = (bytes.len() / 30).max(1);
    for len in (6..bytes.len()).step_by(stride) {
        let mut b = bytes[..len].to_vec();
        let _ = read_scp(&b);
        b[2..6].copy_from_slice(&(len as u32).to_le_bytes());
        fix_crcs(&mut b);
        let _ = read_scp(&b);
    }
    let places: Vec<usize> = (6..bytes.len().min(300))
        .chain((300..bytes.len()).step_by(stride))
        .collect();
    for at in places {
        for value in [0x00u8, 0xFF, bytes[at] ^ 0x01] {
            let mut b = bytes.to_vec();
            b[at] = value;
            fix_crcs(&mut b);
            let _ = read_scp(&b);
        }
    }
}

/// Recompute the CRC of every section section 0 points to, then the record's.
fn fix_crcs(b: &mut [u8]) {
    let le32 = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])) as usize
    };
    let s0_len = le32(b, 10);
    let mut starts = vec![(6usize, s0_len)];
    let mut p = 22;
    while p + 10 <= (6 + s0_len).min(b.len()) {
        let (len, index) = (le32(b, p + 2), le32(b, p + 6));
        if len >= 16 && index >= 1 {
            starts.push((index - 1, len));
        }
        p += 10;
    }
    for (start, len) in starts {
        if len >= 2 && start + len <= b.len() {
            let crc = crc_ccitt(&b[start + 2..start + len]);
            b[start..start + 2].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let total = le32(b, 2).min(b.len());
    if total > 2 {
        let crc = crc_ccitt(&b[2..total]);
        b[..2].copy_from_slice(&crc.to_le_bytes());
    }
}

#[test]
fn huffman_differences_and_reference_beat_records_are_lossless() {
    let Some((dir, truth, _)) = encoded() else {
        return;
    };
    let dir = dir.path();
    for name in [
        "default_d2.scp",
        "gb2312.scp",
        "custom_d1.scp",
        "raw_v13.scp",
        "refbeat.scp",
    ] {
        let (_, ecg) = read(dir, name);
        assert_lossless(name, &ecg, &truth);
        assert_eq!(ecg.has_median_beats, name == "refbeat.scp", "{name}");
    }

    // Header, measurements and statements (the same in every record).
    let (_, ecg) = read(dir, "default_d2.scp");
    assert_eq!(ecg.patient.name.as_deref(), Some("Rossi^Maria"));
    assert_eq!(ecg.patient.id.as_deref(), Some("642341"));
    assert_eq!(ecg.patient.birth_date.as_deref(), Some("19710123"));
    assert_eq!(ecg.patient.sex.as_deref(), Some("F"));
    assert_eq!(
        ecg.device.manufacturer.as_deref(),
        Some("Mortara Instrument")
    );
    assert_eq!(ecg.device.model.as_deref(), Some("ELI250"));
    assert_eq!(ecg.device.serial.as_deref(), Some("SN-4711"));
    assert_eq!(ecg.acquired_at.as_deref(), Some("20130125105919+0100"));
    assert_eq!(ecg.filters.low_hz, Some(0.05));
    assert_eq!(ecg.filters.high_hz, Some(150.0));
    assert_eq!(ecg.filters.notch_hz, Some(50.0));
    assert_eq!(
        ecg.statements,
        ["RITMO SINUSALE", "ECG NORMALE", "1 SINUS RHYTHM"]
    );
    let m = |meaning: &str| {
        ecg.device_measurements
            .iter()
            .find(|m| m.meaning == meaning)
            .map(|m| (m.code.as_str(), m.value, m.unit.as_str()))
    };
    assert_eq!(m("PR Interval"), Some(("5.13.5-7", 161.0, "ms")));
    assert_eq!(m("QRS Duration"), Some(("5.13.5-9", 75.0, "ms")));
    assert_eq!(m("QT Interval"), Some(("5.13.5-11", 368.0, "ms")));
    assert_eq!(m("RR Interval"), Some(("5.10.2.1-3", 982.0, "ms")));
    assert_eq!(m("PP Interval"), None);
    assert_eq!(m("QTc Interval"), Some(("5.10.2.5-5", 370.0, "ms")));
    assert_eq!(
        m("Ventricular Heart Rate"),
        Some(("5.10.2.5-1", 61.0, "/min"))
    );
    assert_eq!(m("P Axis"), Some(("5.10.3-11", 74.0, "deg")));
    assert_eq!(m("QRS Axis"), Some(("5.10.3-13", 52.0, "deg")));
    assert_eq!(m("T Axis"), Some(("5.10.3-15", 57.0, "deg")));
    assert_eq!(m("QRS Onset"), Some(("5.10.3-3", 261.0, "ms")));
    assert!(ecg.device_measurements.iter().all(|m| m.scheme == "SCPECG"));
    assert_eq!(ecg.lead(&LeadCode::AVF).unwrap().samples_uv.len(), 10_000);

    // Text in the character set section 1 states (GB 2312, language support code 0x27).
    let (_, gb) = read(dir, "gb2312.scp");
    assert_eq!(gb.patient.name.as_deref(), Some("欧阳^娜娜"));
    assert_eq!(gb.statements, ["窦性心律", "正常心电图", "1 窦性心律"]);

    // The reference beat matters: without the subtraction flag the residual comes out, and it
    // differs from the original in the QRS complexes.
    let (ref_bytes, _) = read(dir, "refbeat.scp");
    let mut residual = ref_bytes.clone();
    let s3 = find_section(&residual, 3).unwrap();
    residual[s3 + 16 + 1] &= !0x01;
    fix_crcs(&mut residual);
    let res = read_scp(&residual).unwrap();
    let raw = truth_raw(&truth);
    let differ = res.leads[1]
        .samples_uv
        .iter()
        .zip(&raw[1])
        .filter(|(o, r)| (f64::from(**o) - **r as f64 * 1.25).abs() > 1.0)
        .count();
    assert!(
        differ > 1000,
        "only {differ} samples differ without the reference beat"
    );

    for name in ["small_custom_d1.scp", "small_refbeat.scp"] {
        damage_without_panic(&std::fs::read(dir.join(name)).unwrap());
    }
}

/// Byte offset of section `id` (0-based), from section 0's pointers.
fn find_section(b: &[u8], id: u16) -> Option<usize> {
    let s0_len = u32::from_le_bytes(b[10..14].try_into().unwrap()) as usize;
    (22..6 + s0_len).step_by(10).find_map(|p| {
        let sid = u16::from_le_bytes(b[p..p + 2].try_into().unwrap());
        let index = u32::from_le_bytes(b[p + 6..p + 10].try_into().unwrap()) as usize;
        (sid == id && index > 0).then(|| index - 1)
    })
}

#[test]
fn bimodal_record_is_exact_in_protected_zones_and_close_elsewhere() {
    let Some((dir, truth, _)) = encoded() else {
        return;
    };
    let (_, ecg) = read(dir.path(), "bimodal.scp");
    // Reconstructed at the reference beat's rate (1 ms), from 4 ms outside the zones.
    assert_eq!(ecg.sample_rate_hz, 1000.0);
    let raw = truth_raw(&truth);
    let zones: Vec<(usize, usize)> = truth["protected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| {
            (
                z[0].as_u64().unwrap() as usize,
                z[1].as_u64().unwrap() as usize,
            )
        })
        .collect();
    let inside = |t: usize| zones.iter().any(|&(qb, qe)| t > qb && t < qe);
    // Subtraction zones end where the reference beat is not 0: the residual jumps there, and
    // decimation smears the jump over a few blocks. Away from every zone boundary the error
    // is that of 4× decimation and linear interpolation alone (≈ 40 µV at worst on this ECG).
    let mut boundaries: Vec<usize> = zones.iter().flat_map(|&(qb, qe)| [qb, qe]).collect();
    for b in truth["beats"].as_array().unwrap() {
        boundaries.push(b[0].as_u64().unwrap() as usize);
        boundaries.push(b[2].as_u64().unwrap() as usize);
    }
    let far = |t: usize| boundaries.iter().all(|&b| t.abs_diff(b) > 8);
    let (mut exact, mut sq, mut n, mut worst, mut worst_far) = (0usize, 0f64, 0usize, 0f64, 0f64);
    for (lead, r) in ecg.leads.iter().zip(&raw) {
        assert_eq!(lead.samples_uv.len(), r.len());
        for (i, (o, r)) in lead.samples_uv.iter().zip(r).enumerate() {
            let err = (f64::from(*o) - *r as f64 * 1.25).abs();
            if inside(i + 1) {
                assert!(
                    err <= 1e-3,
                    "lead {} sample {i}: {o} µV in a protected zone, original {} µV",
                    lead.code,
                    *r as f64 * 1.25
                );
                exact += 1;
            } else {
                sq += err * err;
                n += 1;
                worst = worst.max(err);
                if far(i + 1) {
                    worst_far = worst_far.max(err);
                }
            }
        }
    }
    let rms = (sq / n as f64).sqrt();
    eprintln!(
        "bimodal: {exact} samples exact in protected zones; elsewhere RMS {rms:.2} µV, worst {worst:.1} µV ({worst_far:.1} µV away from zone boundaries)"
    );
    assert!(
        exact > 12 * 8 * 90,
        "only {exact} samples in protected zones"
    );
    assert!(rms < 8.0, "RMS error {rms} µV outside the protected zones");
    assert!(
        worst_far < 45.0,
        "worst error {worst_far} µV away from the zone boundaries"
    );
    assert!(
        worst < 150.0,
        "worst error {worst} µV outside the protected zones"
    );
    damage_without_panic(&std::fs::read(dir.path().join("small_bimodal.scp")).unwrap());
}

#[test]
fn pixelmed_decodes_our_records_like_us() {
    let Some((dir, truth, python)) = encoded() else {
        return;
    };
    let jar = std::env::var_os("DXHUB_TEST_PIXELMED_JAR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/java/pixelmed.jar"));
    let javac = Command::new("javac")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !require("javac (JDK)", javac) || !require("PixelMed jar (libpixelmed-java)", jar.exists()) {
        return;
    }
    let out = run(Command::new(&python)
        .arg(script("scp_pixelmed_dump.py"))
        .arg(&jar)
        .arg(dir.path().join("default_d2.scp"))
        .arg(dir.path().join("refbeat.scp")));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let samples = |v: &Value, key: &str| -> Vec<Vec<i64>> {
        assert!(v.get("__error__").is_none(), "PixelMed: {v}");
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                l.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect()
            })
            .collect()
    };
    let step = truth["avm_nv"].as_f64().unwrap() / 1000.0;

    // Default table, second differences: PixelMed's samples are ours.
    let (_, ecg) = read(dir.path(), "default_d2.scp");
    let pm = samples(&lines[0], "samples");
    assert_eq!(lines[0]["interval_us"].as_i64(), Some(1000));
    let codes: Vec<i64> = lines[0]["lead_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(codes, [1, 2, 61, 62, 63, 64, 3, 4, 5, 6, 7, 8]);
    for (lead, p) in ecg.leads.iter().zip(&pm) {
        assert_eq!(lead.samples_uv.len(), p.len());
        for (i, (o, p)) in lead.samples_uv.iter().zip(p).enumerate() {
            assert!(
                (f64::from(*o) - *p as f64 * step).abs() <= 1e-3,
                "default_d2 lead {} sample {i}: {o} µV, PixelMed {} µV",
                lead.code,
                *p as f64 * step
            );
        }
    }

    // Reference beat: PixelMed adds reference sample `fiducial + t − fc` (section 4's 1-based
    // fiducial taken as a 0-based index), SCP-AV and the ECG toolkit `fiducial − 1 + t − fc`.
    // Moving PixelMed's addition by that one sample gives our samples exactly.
    let (_, ecg) = read(dir.path(), "refbeat.scp");
    let mut pm = samples(&lines[1], "samples");
    let reference = samples(&lines[1], "reference_beat");
    let beats: Vec<(i64, i64, i64)> = truth["beats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b[0].as_i64().unwrap(),
                b[1].as_i64().unwrap(),
                b[2].as_i64().unwrap(),
            )
        })
        .collect();
    let fiducial = 251i64;
    for (l, lead) in pm.iter_mut().enumerate() {
        let r = &reference[l];
        let at = |k: i64| {
            usize::try_from(k)
                .ok()
                .and_then(|k| r.get(k))
                .copied()
                .unwrap_or(0)
        };
        for &(sb, fc, se) in &beats {
            for t in sb..=se {
                lead[(t - 1) as usize] += at(fiducial - 1 + t - fc) - at(fiducial + t - fc);
            }
        }
    }
    let mut compared = 0;
    for (lead, p) in ecg.leads.iter().zip(&pm) {
        for (i, (o, p)) in lead.samples_uv.iter().zip(p).enumerate() {
            assert!(
                (f64::from(*o) - *p as f64 * step).abs() <= 1e-3,
                "refbeat lead {} sample {i}: {o} µV, PixelMed (realigned) {} µV",
                lead.code,
                *p as f64 * step
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 12 * 10_000);
}
