//! Line breaking: UAX #14 break opportunities (a CJK character may break anywhere, Latin
//! words at spaces, no break before closing punctuation such as "，" or "。"), greedy
//! filling by measured advances, and a forced per-character split for a run that is
//! wider than the line on its own (long URLs, hashes, identifiers).

use unicode_linebreak::{BreakOpportunity, linebreaks};

/// Normalise text for layout: CR/LF and Unicode line/paragraph separators become `\n`,
/// tabs become two spaces, other control characters are dropped.
pub(crate) fn clean(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\r' | '\u{2028}' | '\u{2029}' | '\u{0b}' | '\u{0c}' | '\u{85}' => out.push('\n'),
            '\t' => out.push_str("  "),
            '\n' => out.push('\n'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Wrap `text` into lines no wider than `max_width`, with `advance` giving each
/// character's width. Hard newlines are kept (an empty input line gives an empty output
/// line); there is always at least one line.
pub fn break_lines(text: &str, max_width: f32, advance: impl Fn(char) -> f32) -> Vec<String> {
    let text = clean(text);
    let mut out = Vec::new();
    for hard in text.split('\n') {
        let measured: Vec<(char, f32)> = hard.chars().map(|c| (c, advance(c))).collect();
        out.extend(break_measured(&measured, max_width));
    }
    out
}

/// Wrap one hard line given as characters with their advances. Never returns an empty
/// vector; every returned line fits `max_width` unless it is a single character.
pub(crate) fn break_measured(chars: &[(char, f32)], max_width: f32) -> Vec<String> {
    let max_width = if max_width.is_finite() {
        max_width.max(0.0)
    } else {
        f32::MAX
    };
    let s: String = chars.iter().map(|&(c, _)| c).collect();
    // Char index of every break opportunity (the segment ends before that char).
    let byte_to_char: Vec<usize> = {
        let mut v = vec![0usize; s.len() + 1];
        let mut ci = 0;
        for (bi, c) in s.char_indices() {
            for slot in v.iter_mut().skip(bi).take(c.len_utf8()) {
                *slot = ci;
            }
            ci += 1;
        }
        if let Some(last) = v.last_mut() {
            *last = ci;
        }
        v
    };
    let mut ends: Vec<usize> = linebreaks(&s)
        .filter(|&(_, op)| matches!(op, BreakOpportunity::Allowed | BreakOpportunity::Mandatory))
        .map(|(b, _)| byte_to_char.get(b).copied().unwrap_or(chars.len()))
        .collect();
    if ends.last() != Some(&chars.len()) {
        ends.push(chars.len());
    }

    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_w = 0.0f32;
    let mut start = 0usize;
    for end in ends {
        if end <= start {
            continue;
        }
        let seg = chars.get(start..end).unwrap_or(&[]);
        start = end;
        let trimmed_len = seg
            .iter()
            .rposition(|&(c, _)| !c.is_whitespace())
            .map_or(0, |p| p + 1);
        let trim_w: f32 = seg.iter().take(trimmed_len).map(|&(_, w)| w).sum();
        if !line.is_empty() && line_w + trim_w > max_width {
            lines.push(std::mem::take(&mut line).trim_end().to_owned());
            line_w = 0.0;
        }
        // A wrapped line does not start with the spaces that ended the previous one.
        let seg = if line.is_empty() && !lines.is_empty() {
            let lead = seg
                .iter()
                .position(|&(c, _)| !c.is_whitespace())
                .unwrap_or(seg.len());
            seg.get(lead..).unwrap_or(&[])
        } else {
            seg
        };
        let seg_trim_w: f32 = {
            let n = seg
                .iter()
                .rposition(|&(c, _)| !c.is_whitespace())
                .map_or(0, |p| p + 1);
            seg.iter().take(n).map(|&(_, w)| w).sum()
        };
        if line_w + seg_trim_w <= max_width {
            line.extend(seg.iter().map(|&(c, _)| c));
            line_w += seg.iter().map(|&(_, w)| w).sum::<f32>();
        } else {
            // Too wide on its own: split between characters.
            for &(c, w) in seg {
                if !line.is_empty() && !c.is_whitespace() && line_w + w > max_width {
                    lines.push(std::mem::take(&mut line).trim_end().to_owned());
                    line_w = 0.0;
                }
                if line.is_empty() && c.is_whitespace() && !lines.is_empty() {
                    continue;
                }
                line.push(c);
                line_w += w;
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line.trim_end().to_owned());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(c: char) -> f32 {
        if c.is_ascii() { 5.0 } else { 10.0 }
    }

    #[test]
    fn latin_breaks_at_spaces() {
        let l = break_lines("aaaa bbbb cccc", 50.0, w);
        assert_eq!(l, vec!["aaaa bbbb", "cccc"]);
    }

    #[test]
    fn cjk_breaks_anywhere_but_not_before_comma() {
        let l = break_lines("肺纹理增多，未见实变", 50.0, w);
        for line in &l {
            assert!(line.chars().map(w).sum::<f32>() <= 50.0, "{line}");
            assert!(!line.starts_with('，'));
        }
        assert_eq!(l.concat(), "肺纹理增多，未见实变");
    }

    #[test]
    fn hard_newlines_kept() {
        let l = break_lines("一\n\n二\r\n三", 100.0, w);
        assert_eq!(l, vec!["一", "", "二", "三"]);
    }
}
