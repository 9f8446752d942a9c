//! `render::svg` on synthetic ECGs whose samples are known, read back by parsing the SVG
//! (roxmltree) and the path data: paper units in mm, grid spacing, calibration pulse, the
//! voltage and time scale of the traces, the 3×4 and 12×1 layouts, missing leads, short
//! recordings, header escaping and option validation.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::render::{Layout, RenderError, RenderOptions, svg};
use dxhub_ecg::{Ecg, Filters, Lead, LeadCode};
use roxmltree::{Document, Node};

const EPS: f64 = 0.0051; // coordinates have 2 decimals

/// An ECG of `secs` seconds at `fs` Hz whose lead `k` (of `codes`) is `f(k, t)` µV.
fn ecg(fs: f64, secs: f64, codes: &[LeadCode], f: impl Fn(usize, f64) -> f32) -> Ecg {
    let n = (secs * fs).round() as usize;
    Ecg {
        leads: codes
            .iter()
            .enumerate()
            .map(|(k, code)| Lead {
                code: code.clone(),
                samples_uv: (0..n).map(|i| f(k, i as f64 / fs)).collect(),
            })
            .collect(),
        sample_rate_hz: fs,
        filters: Filters {
            low_hz: Some(0.05),
            high_hz: Some(150.0),
            notch_hz: Some(50.0),
        },
        ..Ecg::default()
    }
}

fn opts(speed: f64, gain: f64, layout: Layout) -> RenderOptions {
    RenderOptions {
        speed_mm_s: speed,
        gain_mm_per_mv: gain,
        layout,
    }
}

/// Subpaths of path data made of absolute `M`, `L`, `H`, `V` (and implicit repetitions).
fn subpaths(d: &str) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cmd = ' ';
    let mut nums: Vec<f64> = Vec::new();
    let mut tok = String::new();
    let mut cur = (0.0, 0.0);
    let mut apply = |cmd: char, nums: &mut Vec<f64>, out: &mut Vec<Vec<(f64, f64)>>| {
        match cmd {
            'M' | 'L' => {
                assert!(
                    nums.chunks_exact(2).remainder().is_empty(),
                    "odd coordinates in {d}"
                );
                for (j, p) in nums.chunks(2).enumerate() {
                    cur = (p[0], p[1]);
                    if cmd == 'M' && j == 0 {
                        out.push(vec![cur]);
                    } else {
                        out.last_mut().unwrap().push(cur);
                    }
                }
            }
            'H' => {
                for &x in nums.iter() {
                    cur.0 = x;
                    out.last_mut().unwrap().push(cur);
                }
            }
            'V' => {
                for &y in nums.iter() {
                    cur.1 = y;
                    out.last_mut().unwrap().push(cur);
                }
            }
            ' ' => assert!(nums.is_empty()),
            c => panic!("unexpected path command {c} in {d}"),
        }
        nums.clear();
    };
    for ch in d.chars().chain(std::iter::once(' ')) {
        if ch.is_ascii_alphabetic() {
            if !tok.is_empty() {
                nums.push(tok.parse().unwrap());
                tok.clear();
            }
            apply(cmd, &mut nums, &mut out);
            cmd = ch;
        } else if ch == ',' || ch.is_whitespace() {
            if !tok.is_empty() {
                nums.push(tok.parse().unwrap());
                tok.clear();
            }
        } else {
            tok.push(ch);
        }
    }
    apply(cmd, &mut nums, &mut out);
    out
}

fn points(d: &str) -> Vec<(f64, f64)> {
    subpaths(d).concat()
}

fn by_class<'a>(doc: &'a Document, class: &str) -> Vec<Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| n.attribute("class") == Some(class))
        .collect()
}

fn num_attr(n: &Node, name: &str) -> f64 {
    n.attribute(name).unwrap().parse().unwrap()
}

/// Baselines (y of the 0 mV line) of the rows, from their calibration pulses, top to bottom.
fn baselines(doc: &Document) -> Vec<f64> {
    by_class(doc, "cal")
        .iter()
        .map(|n| points(n.attribute("d").unwrap())[0].1)
        .collect()
}

/// (lead, points) of every trace path.
fn traces(doc: &Document) -> Vec<(String, Vec<(f64, f64)>)> {
    by_class(doc, "trace")
        .iter()
        .map(|n| {
            (
                n.attribute("data-lead").unwrap().to_owned(),
                points(n.attribute("d").unwrap()),
            )
        })
        .collect()
}

fn y_range(p: &[(f64, f64)]) -> (f64, f64) {
    p.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, y)| {
            (lo.min(y), hi.max(y))
        })
}

fn x_range(p: &[(f64, f64)]) -> (f64, f64) {
    p.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(x, _)| {
            (lo.min(x), hi.max(x))
        })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= EPS
}

/// Square wave: 0 µV, 1000 µV on [0.5, 1.5) s, 0 after.
fn pulse(_: usize, t: f64) -> f32 {
    if (0.5..1.5).contains(&t) { 1000.0 } else { 0.0 }
}

#[test]
fn paper_units_are_millimetres() {
    let e = ecg(500.0, 10.0, &LeadCode::STANDARD_12, |_, _| 0.0);
    for (speed, width) in [(25.0, 270.0), (50.0, 275.0)] {
        let s = svg(&e, &["a".into()], &opts(speed, 10.0, Layout::ThreeByFour)).unwrap();
        let doc = Document::parse(&s).unwrap();
        let root = doc.root_element();
        let w = root.attribute("width").unwrap();
        let h = root.attribute("height").unwrap();
        let vb: Vec<f64> = root
            .attribute("viewBox")
            .unwrap()
            .split(' ')
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(w.strip_suffix("mm").unwrap().parse::<f64>().unwrap(), vb[2]);
        assert_eq!(h.strip_suffix("mm").unwrap().parse::<f64>().unwrap(), vb[3]);
        assert_eq!(&vb[..2], &[0.0, 0.0]);
        assert_eq!(vb[2], width, "page width at {speed} mm/s");
        // Header, 4 rows of 40 mm, footer: a landscape page.
        assert!(vb[3] > 160.0 && vb[3] < 210.0, "page height {}", vb[3]);
    }
}

#[test]
fn calibration_pulse_is_gain_high_and_a_fifth_of_a_second_wide() {
    let e = ecg(500.0, 10.0, &LeadCode::STANDARD_12, |_, _| 0.0);
    for layout in [Layout::ThreeByFour, Layout::TwelveByOne] {
        for speed in [25.0, 50.0] {
            for gain in [5.0, 10.0, 20.0] {
                let s = svg(&e, &[], &opts(speed, gain, layout)).unwrap();
                let doc = Document::parse(&s).unwrap();
                let cals = by_class(&doc, "cal");
                let rows = if layout == Layout::ThreeByFour { 4 } else { 12 };
                assert_eq!(cals.len(), rows, "{layout:?}: one pulse per row");
                for c in cals {
                    let p = points(c.attribute("d").unwrap());
                    let base = p[0].1;
                    let (lo, hi) = y_range(&p);
                    assert!(close(hi, base), "pulse goes below its baseline");
                    assert!(
                        close(base - lo, gain),
                        "{layout:?} {speed} mm/s: pulse {} mm high at {gain} mm/mV",
                        base - lo
                    );
                    let top: Vec<f64> = p.iter().filter(|q| close(q.1, lo)).map(|q| q.0).collect();
                    assert_eq!(top.len(), 2);
                    assert!(
                        close(top[1] - top[0], 0.2 * speed),
                        "pulse {} mm wide at {speed} mm/s",
                        top[1] - top[0]
                    );
                }
            }
        }
    }
}

#[test]
fn grid_is_1mm_minor_and_5mm_major() {
    let e = ecg(500.0, 10.0, &LeadCode::STANDARD_12, |_, _| 0.0);
    for layout in [Layout::ThreeByFour, Layout::TwelveByOne] {
        let s = svg(&e, &["x".into()], &opts(25.0, 10.0, layout)).unwrap();
        let doc = Document::parse(&s).unwrap();
        let lines = |class: &str| {
            let nodes = by_class(&doc, class);
            assert_eq!(nodes.len(), 1, "one {class} path");
            let (mut xs, mut ys) = (Vec::new(), Vec::new());
            for sp in subpaths(nodes[0].attribute("d").unwrap()) {
                assert_eq!(sp.len(), 2);
                let ((x0, y0), (x1, y1)) = (sp[0], sp[1]);
                if x0 == x1 {
                    xs.push(x0);
                } else {
                    assert_eq!(y0, y1, "grid lines are horizontal or vertical");
                    ys.push(y0);
                }
            }
            (xs, ys)
        };
        let (minor_x, minor_y) = lines("grid-minor");
        let (major_x, major_y) = lines("grid-major");
        for (minor, major, axis) in [(&minor_x, &major_x, "x"), (&minor_y, &major_y, "y")] {
            let steps = |v: &[f64]| {
                let mut v = v.to_vec();
                v.sort_by(f64::total_cmp);
                v.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
            };
            assert!(major.len() > 10, "{axis}: {} major lines", major.len());
            assert!(
                steps(major).iter().all(|&d| close(d, 5.0)),
                "{axis}: major lines not 5 mm apart: {:?}",
                steps(major)
            );
            let all: Vec<f64> = minor.iter().chain(major.iter()).copied().collect();
            assert!(
                steps(&all).iter().all(|&d| close(d, 1.0)),
                "{axis}: grid lines not 1 mm apart"
            );
            assert_eq!(
                minor.len(),
                (major.len() - 1) * 4,
                "{axis}: 4 minor per major"
            );
        }
        // Every row's baseline lies on a major line, and the traces start on one.
        for b in baselines(&doc) {
            assert!(
                major_y.iter().any(|&y| close(y, b)),
                "baseline {b} off the grid"
            );
        }
        for (lead, p) in traces(&doc) {
            let x0 = p[0].0;
            if layout == Layout::TwelveByOne || lead == "I" {
                assert!(
                    major_x.iter().any(|&x| close(x, x0)),
                    "{lead} starts at {x0}"
                );
            }
        }
    }
}

#[test]
fn one_millivolt_is_gain_mm_in_the_trace() {
    for fs in [500.0, 1000.0] {
        let e = ecg(fs, 10.0, &LeadCode::STANDARD_12, pulse);
        for layout in [Layout::ThreeByFour, Layout::TwelveByOne] {
            for gain in [5.0, 10.0, 20.0] {
                let s = svg(&e, &[], &opts(25.0, gain, layout)).unwrap();
                let doc = Document::parse(&s).unwrap();
                let base = baselines(&doc);
                let tr = traces(&doc);
                // Lead I's first cell is the top row in both layouts.
                let (_, p) = tr.iter().find(|(l, _)| l == "I").unwrap();
                let mut ys: Vec<f64> = p.iter().map(|q| q.1).collect();
                ys.sort_by(f64::total_cmp);
                ys.dedup_by(|a, b| close(*a, *b));
                assert_eq!(ys.len(), 2, "{fs} Hz, {gain} mm/mV: levels {ys:?}");
                assert!(close(ys[1], base[0]), "0 mV on the row's baseline");
                assert!(
                    close(ys[1] - ys[0], gain),
                    "{fs} Hz {layout:?}: 1 mV drawn as {} mm at {gain} mm/mV",
                    ys[1] - ys[0]
                );
            }
        }
    }
}

/// x of the first point at 1 mV and of the first point back at 0 mV after it.
fn edges(p: &[(f64, f64)], base: f64) -> (f64, f64) {
    let up = p.iter().position(|q| q.1 < base - 1.0).unwrap();
    let down = up + p[up..].iter().position(|q| close(q.1, base)).unwrap();
    (p[up].0, p[down].0)
}

#[test]
fn one_second_spans_speed_mm() {
    for fs in [500.0, 1000.0] {
        let e = ecg(fs, 10.0, &LeadCode::STANDARD_12, pulse);
        for speed in [25.0, 50.0] {
            for layout in [Layout::ThreeByFour, Layout::TwelveByOne] {
                let s = svg(&e, &[], &opts(speed, 10.0, layout)).unwrap();
                let doc = Document::parse(&s).unwrap();
                let base = baselines(&doc);
                let tr = traces(&doc);
                // The lead II rhythm strip (last II path) or 12×1's row II.
                let (_, p) = tr.iter().rev().find(|(l, _)| l == "II").unwrap();
                let row_base = if layout == Layout::ThreeByFour {
                    base[3]
                } else {
                    base[1]
                };
                let (up, down) = edges(p, row_base);
                assert!(
                    close(down - up, speed),
                    "{fs} Hz {layout:?}: 1 s spans {} mm at {speed} mm/s",
                    down - up
                );
                // The pulse starts 0.5 s after the trace's first sample.
                assert!(close(up - p[0].0, 0.5 * speed));
            }
        }
    }
}

/// Lead k is a constant (k + 1) × 50 µV with a 1 mV spike at 3.0–3.02 s, so a trace tells
/// its lead by its level and its time window by where the spike is.
fn marked(k: usize, t: f64) -> f32 {
    let level = (k + 1) as f32 * 50.0;
    if (3.0..3.02).contains(&t) {
        level + 1000.0
    } else {
        level
    }
}

/// The highest voltage (µV) a trace reaches, relative to its row's baseline.
fn peak_uv(p: &[(f64, f64)], base: f64, gain: f64) -> f64 {
    let (top, _) = y_range(p);
    ((base - top) / gain * 1000.0).round()
}

#[test]
fn three_by_four_cells_and_rhythm_strip() {
    let codes = LeadCode::STANDARD_12;
    let e = ecg(500.0, 10.0, &codes, marked);
    let level_of = |name: &str| {
        let k = codes.iter().position(|c| c.name() == name).unwrap();
        (k + 1) as f64 * 50.0
    };
    for speed in [25.0, 50.0] {
        let gain = 10.0;
        let s = svg(&e, &[], &opts(speed, gain, Layout::ThreeByFour)).unwrap();
        let doc = Document::parse(&s).unwrap();
        let base = baselines(&doc);
        assert_eq!(base.len(), 4);

        // Labels, grouped into rows by y and ordered by x.
        let mut labels: Vec<(f64, f64, String)> = by_class(&doc, "lead-label")
            .iter()
            .map(|n| {
                (
                    num_attr(n, "y"),
                    num_attr(n, "x"),
                    n.text().unwrap().to_owned(),
                )
            })
            .collect();
        labels.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let rows: Vec<Vec<&str>> = {
            let mut rows: Vec<Vec<&str>> = Vec::new();
            let mut last_y = f64::NAN;
            for (y, _, name) in &labels {
                if *y != last_y {
                    rows.push(Vec::new());
                    last_y = *y;
                }
                rows.last_mut().unwrap().push(name);
            }
            rows
        };
        assert_eq!(
            rows,
            vec![
                vec!["I", "aVR", "V1", "V4"],
                vec!["II", "aVL", "V2", "V5"],
                vec!["III", "aVF", "V3", "V6"],
                vec!["II"],
            ]
        );
        // Each label sits in its row, above the baseline.
        for (i, row_labels) in labels.chunks(4).take(3).enumerate() {
            for (y, _, _) in row_labels {
                assert!(*y < base[i] && base[i] - y < 30.0, "label row {i}");
            }
        }

        let tr = traces(&doc);
        assert_eq!(tr.len(), 13, "12 cells and the rhythm strip");
        let col_w = 62.5;
        let col_t = 250.0 / speed / 4.0;
        let x0 = tr[0].1[0].0;
        for (i, (lead, p)) in tr.iter().enumerate() {
            let (row, col) = if i < 12 { (i / 4, i % 4) } else { (3, 0) };
            let expected = if row == 3 { "II" } else { rows[row][col] };
            assert_eq!(lead, expected, "trace {i}");
            // The right lead's samples: its level, on its row's baseline.
            let (_, bottom) = y_range(p);
            assert!(
                close((base[row] - bottom) / gain * 1000.0, level_of(lead)),
                "cell ({row},{col}) {lead}: level {} µV",
                (base[row] - bottom) / gain * 1000.0
            );
            // Its column and time window.
            let (xa, xb) = x_range(p);
            assert!(
                close(xa, x0 + col as f64 * col_w),
                "cell ({row},{col}) starts at {xa}"
            );
            let width = if row == 3 { 250.0 } else { col_w };
            assert!(
                xb < xa + width && xb > xa + width - 1.0,
                "cell ({row},{col}) ends at {xb}"
            );
            let t0 = if row == 3 { 0.0 } else { col as f64 * col_t };
            let t1 = t0 + if row == 3 { 250.0 / speed } else { col_t };
            let level_y = base[row] - level_of(lead) / 1000.0 * gain;
            let spike = p.iter().find(|q| q.1 < level_y - 5.0);
            if (t0..t1).contains(&3.0) {
                let x = spike
                    .unwrap_or_else(|| panic!("cell ({row},{col}): no spike"))
                    .0;
                assert!(
                    close(x, xa + (3.0 - t0) * speed),
                    "cell ({row},{col}): spike at {x}"
                );
                assert_eq!(peak_uv(p, base[row], gain), level_of(lead) + 1000.0);
            } else {
                assert!(spike.is_none(), "cell ({row},{col}) {t0}–{t1} s shows 3 s");
            }
        }
        // Lead-change marks between the columns of the three rows.
        let sep = by_class(&doc, "sep");
        assert_eq!(subpaths(sep[0].attribute("d").unwrap()).len(), 9);
    }
}

#[test]
fn twelve_by_one_has_a_row_per_lead() {
    let codes = LeadCode::STANDARD_12;
    // Source order differs from the standard order: the layout reorders.
    let mut shuffled = codes.to_vec();
    shuffled.reverse();
    let e = ecg(500.0, 10.0, &shuffled, |k, t| marked(11 - k, t));
    let gain = 10.0;
    let s = svg(&e, &[], &opts(25.0, gain, Layout::TwelveByOne)).unwrap();
    let doc = Document::parse(&s).unwrap();
    let base = baselines(&doc);
    assert_eq!(base.len(), 12);
    assert!(base.windows(2).all(|w| w[1] > w[0]));
    let labels: Vec<(f64, String)> = by_class(&doc, "lead-label")
        .iter()
        .map(|n| (num_attr(n, "y"), n.text().unwrap().to_owned()))
        .collect();
    let names: Vec<&str> = labels.iter().map(|(_, n)| n.as_str()).collect();
    let standard: Vec<&str> = codes.iter().map(|c| c.name()).collect();
    assert_eq!(names, standard);
    for (i, (y, _)) in labels.iter().enumerate() {
        assert!(
            *y < base[i] && (i == 0 || *y > base[i - 1]),
            "label {i} in its row"
        );
    }
    let tr = traces(&doc);
    assert_eq!(tr.len(), 12);
    for (i, (lead, p)) in tr.iter().enumerate() {
        assert_eq!(lead, standard[i]);
        let (lo, _) = y_range(p);
        let (_, hi) = y_range(p);
        assert!(
            close((base[i] - hi) / gain * 1000.0, (i + 1) as f64 * 50.0),
            "row {i}"
        );
        assert!(close(
            base[i] - lo,
            ((i + 1) as f64 * 50.0 + 1000.0) / 1000.0 * gain
        ));
        // 10 s at 25 mm/s: 250 mm less one sample.
        let (xa, xb) = x_range(p);
        assert!(
            close(xb - xa, 250.0 - 25.0 / 500.0),
            "row {i}: {} mm",
            xb - xa
        );
    }
}

#[test]
fn twelve_by_one_appends_other_leads() {
    let codes = [LeadCode::I, LeadCode::Other("V4R".into()), LeadCode::II];
    let e = ecg(500.0, 2.0, &codes, |_, _| 100.0);
    let s = svg(&e, &[], &opts(25.0, 10.0, Layout::TwelveByOne)).unwrap();
    let doc = Document::parse(&s).unwrap();
    let names: Vec<String> = by_class(&doc, "lead-label")
        .iter()
        .map(|n| n.text().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 13);
    assert_eq!(names[12], "V4R");
    assert_eq!(baselines(&doc).len(), 13);
    let leads: Vec<String> = traces(&doc).into_iter().map(|(l, _)| l).collect();
    assert_eq!(leads, ["I", "II", "V4R"]);
}

#[test]
fn missing_leads_keep_their_label_and_an_empty_cell() {
    // Eight leads as many devices send them; III, aVR, aVL, aVF not derived.
    let codes = [
        LeadCode::I,
        LeadCode::II,
        LeadCode::V1,
        LeadCode::V2,
        LeadCode::V3,
        LeadCode::V4,
        LeadCode::V5,
        LeadCode::V6,
    ];
    let e = ecg(500.0, 10.0, &codes, marked);
    for (layout, n_labels) in [(Layout::ThreeByFour, 13), (Layout::TwelveByOne, 12)] {
        let s = svg(&e, &[], &opts(25.0, 10.0, layout)).unwrap();
        let doc = Document::parse(&s).unwrap();
        let labels: Vec<String> = by_class(&doc, "lead-label")
            .iter()
            .map(|n| n.text().unwrap().to_owned())
            .collect();
        assert_eq!(labels.len(), n_labels);
        for name in ["III", "aVR", "aVL", "aVF"] {
            assert!(labels.iter().any(|l| l == name), "{layout:?}: label {name}");
        }
        let leads: Vec<String> = traces(&doc).into_iter().map(|(l, _)| l).collect();
        assert!(
            !leads
                .iter()
                .any(|l| ["III", "aVR", "aVL", "aVF"].contains(&l.as_str()))
        );
        let expected = if layout == Layout::ThreeByFour { 9 } else { 8 };
        assert_eq!(leads.len(), expected, "{layout:?}: {leads:?}");
    }
    // The rhythm strip without lead II: its label, no trace.
    let e = ecg(500.0, 10.0, &[LeadCode::I], marked);
    let s = svg(&e, &[], &RenderOptions::default()).unwrap();
    let doc = Document::parse(&s).unwrap();
    assert_eq!(by_class(&doc, "lead-label").len(), 13);
    assert_eq!(traces(&doc).len(), 1);
}

#[test]
fn a_short_recording_is_drawn_as_far_as_it_goes() {
    let e = ecg(500.0, 3.0, &LeadCode::STANDARD_12, marked);
    let s = svg(&e, &[], &RenderOptions::default()).unwrap();
    let doc = Document::parse(&s).unwrap();
    let tr = traces(&doc);
    // Columns 0 (0–2.5 s) and 1 (2.5–3 s) of each row, and the strip.
    let leads: Vec<&str> = tr.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(leads, ["I", "aVR", "II", "aVL", "III", "aVF", "II"]);
    let span = |i: usize| {
        let (a, b) = x_range(&tr[i].1);
        b - a
    };
    assert!(close(span(0), 62.5 - 0.05));
    assert!(close(span(1), 12.5 - 0.05), "0.5 s of aVR: {} mm", span(1));
    assert!(close(span(6), 75.0 - 0.05), "3 s of II: {} mm", span(6));
    // No samples at all: paper, labels and pulses only.
    let e = ecg(500.0, 0.0, &LeadCode::STANDARD_12, marked);
    let s = svg(&e, &[], &RenderOptions::default()).unwrap();
    let doc = Document::parse(&s).unwrap();
    assert!(traces(&doc).is_empty());
    assert_eq!(by_class(&doc, "lead-label").len(), 13);
    let s = svg(&Ecg::default(), &[], &RenderOptions::default()).unwrap();
    assert!(Document::parse(&s).is_ok());
}

#[test]
fn header_text_is_escaped_and_present() {
    let header = vec![
        "张三 男 45岁".to_owned(),
        "ID <42> & \"quoted\" 'x'".to_owned(),
        "HR 72 /min  PR 160 ms".to_owned(),
    ];
    let e = ecg(500.0, 10.0, &LeadCode::STANDARD_12, pulse);
    let s = svg(&e, &header, &RenderOptions::default()).unwrap();
    assert!(s.contains("ID &lt;42&gt; &amp; &quot;quoted&quot; &apos;x&apos;"));
    assert!(!s.contains("<42>"));
    let doc = Document::parse(&s).unwrap();
    let texts: Vec<String> = by_class(&doc, "header")
        .iter()
        .map(|n| n.text().unwrap().to_owned())
        .collect();
    assert_eq!(texts, header);
    // Above the grid, top to bottom.
    let ys: Vec<f64> = by_class(&doc, "header")
        .iter()
        .map(|n| num_attr(n, "y"))
        .collect();
    assert!(ys.windows(2).all(|w| w[1] > w[0]));
    let grid_top = y_range(&points(
        by_class(&doc, "grid-major")[0].attribute("d").unwrap(),
    ))
    .0;
    assert!(ys.iter().all(|&y| y < grid_top));
    // A control character would make the document invalid XML.
    let s = svg(&e, &["a\u{1}b\u{0}".into()], &RenderOptions::default()).unwrap();
    assert!(Document::parse(&s).is_ok());
}

#[test]
fn footer_states_speed_gain_filters_and_rate() {
    let e = ecg(500.0, 1.0, &LeadCode::STANDARD_12, pulse);
    let s = svg(&e, &[], &opts(50.0, 20.0, Layout::TwelveByOne)).unwrap();
    let doc = Document::parse(&s).unwrap();
    let footer = by_class(&doc, "footer")[0].text().unwrap().to_owned();
    for part in [
        "50 mm/s",
        "20 mm/mV",
        "0.05–150 Hz",
        "notch 50 Hz",
        "500 Hz",
    ] {
        assert!(footer.contains(part), "{part:?} not in {footer:?}");
    }
    let mut e = e;
    e.filters = Filters::default();
    let s = svg(&e, &[], &RenderOptions::default()).unwrap();
    assert!(s.contains("Filters: not stated"));
}

#[test]
fn out_of_range_samples_stay_on_the_paper_and_gaps_break_the_line() {
    let e = ecg(500.0, 10.0, &LeadCode::STANDARD_12, |_, t| {
        if t < 1.0 {
            1e7
        } else if t < 2.0 {
            f32::NAN
        } else {
            -1e7
        }
    });
    let s = svg(&e, &[], &RenderOptions::default()).unwrap();
    let doc = Document::parse(&s).unwrap();
    let root = doc.root_element();
    let h: f64 = root
        .attribute("viewBox")
        .unwrap()
        .split(' ')
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    for n in by_class(&doc, "trace") {
        let sp = subpaths(n.attribute("d").unwrap());
        for (_, y) in sp.concat() {
            assert!(y > 0.0 && y < h);
        }
        if n.attribute("data-lead") == Some("I") && sp[0][0].0 < 30.0 {
            assert_eq!(sp.len(), 2, "the NaN second splits the first cell's trace");
        }
    }
}

#[test]
fn options_are_validated() {
    let d = RenderOptions::default();
    assert_eq!(d.speed_mm_s, 25.0);
    assert_eq!(d.gain_mm_per_mv, 10.0);
    assert_eq!(d.layout, Layout::ThreeByFour);
    for speed in [25.0, 50.0] {
        for gain in [5.0, 10.0, 20.0] {
            assert!(opts(speed, gain, Layout::TwelveByOne).validate().is_ok());
        }
    }
    let e = ecg(500.0, 1.0, &LeadCode::STANDARD_12, pulse);
    let err = svg(&e, &[], &opts(12.5, 10.0, Layout::ThreeByFour)).unwrap_err();
    assert!(matches!(err, RenderError::UnsupportedSpeed(v) if v == 12.5));
    assert_eq!(
        err.to_string(),
        "paper speed 12.5 mm/s is not supported: use 25 or 50 mm/s"
    );
    let err = opts(25.0, 2.5, Layout::ThreeByFour).validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "gain 2.5 mm/mV is not supported: use 5, 10 or 20 mm/mV"
    );
    assert!(
        opts(f64::NAN, 10.0, Layout::ThreeByFour)
            .validate()
            .is_err()
    );
    let mut bad = e.clone();
    bad.sample_rate_hz = 0.0;
    let err = svg(&bad, &[], &RenderOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the ECG's sample rate 0 Hz is not a positive finite number"
    );
}
