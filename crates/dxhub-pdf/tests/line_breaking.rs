//! The line breaker on pathological input: pure Rust, no font or external tool needed.

use dxhub_pdf::break_lines;

/// Rough advances at 10 pt: CJK full width, Latin proportional.
fn adv(c: char) -> f32 {
    if c.is_ascii() {
        match c {
            'i' | 'l' | '.' | ':' | '/' | ' ' => 2.8,
            'm' | 'w' | 'W' | 'M' => 8.3,
            _ => 5.6,
        }
    } else {
        10.0
    }
}

fn width(s: &str) -> f32 {
    s.chars().map(adv).sum()
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn long_unbreakable_latin_is_split_between_characters() {
    let s = "SM3:".to_owned() + &"ab12cd34ef56".repeat(400);
    let lines = break_lines(&s, 120.0, adv);
    assert!(lines.len() > 100, "{} lines", lines.len());
    for l in &lines {
        assert!(width(l) <= 120.0 + 1e-3, "line too wide: {l}");
        assert!(!l.is_empty());
    }
    assert_eq!(lines.concat(), s);
}

#[test]
fn long_url_and_words_wrap_within_width() {
    let s = format!(
        "Patient name Wolfeschlegelsteinhausenbergerdorff{} https://hub.example.cn/api/v1/reports/42/verify?v=3&token={}",
        "x".repeat(300),
        "Z".repeat(500)
    );
    let lines = break_lines(&s, 200.0, adv);
    for l in &lines {
        assert!(width(l) <= 200.0 + 1e-3, "line too wide: {l}");
    }
    assert_eq!(squash(&lines.concat()), squash(&s));
    // Ordinary words are not split.
    assert_eq!(lines[0], "Patient name");
}

#[test]
fn very_long_chinese_paragraph_wraps_anywhere() {
    let para =
        "双肺纹理增多、增粗，右下肺见斑片状模糊影，边缘不清；心影大小形态正常。".repeat(2000);
    let lines = break_lines(&para, 480.0, adv);
    assert!(lines.len() > 1400, "{} lines", lines.len());
    for l in &lines {
        assert!(width(l) <= 480.0 + 1e-3);
        // Closing punctuation never starts a line (UAX #14).
        assert!(!l.starts_with('，') && !l.starts_with('。') && !l.starts_with('；'));
    }
    // Most lines are nearly full: breaking between ideographs is allowed.
    let full = lines.iter().filter(|l| width(l) >= 460.0).count();
    assert!(full * 10 >= lines.len() * 9, "{full} of {}", lines.len());
    assert_eq!(lines.concat(), para);
}

#[test]
fn degenerate_widths_and_inputs_do_not_panic() {
    for w in [0.0, -5.0, f32::NAN, f32::INFINITY, 1.0] {
        let lines = break_lines("中文 text\n\n\tmore", w, adv);
        assert!(!lines.is_empty());
        assert!(lines.iter().all(|l| l.chars().count() <= 10));
    }
    assert_eq!(break_lines("", 100.0, adv), vec![String::new()]);
    assert_eq!(
        break_lines("第一行\n\n第三行", 100.0, adv),
        vec!["第一行", "", "第三行"]
    );
}
