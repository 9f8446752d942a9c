//! Plain-text tables for `admin … list`: columns padded by display width, so Chinese
//! names (two columns per character in a terminal) line up.

use std::fmt::Display;
use unicode_width::UnicodeWidthStr;

/// `value` left-aligned in a column `width` terminal cells wide (never truncated).
pub fn cell(value: impl Display, width: usize) -> String {
    let s = value.to_string();
    let w = UnicodeWidthStr::width(s.as_str());
    let mut out = s;
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_by_display_width() {
        assert_eq!(cell("县人民医院", 12), "县人民医院  ");
        assert_eq!(cell("abc", 5), "abc  ");
        assert_eq!(cell("toolongvalue", 4), "toolongvalue");
    }
}
