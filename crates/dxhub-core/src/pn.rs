//! Person Name (PN) search keys for QIDO-RS matching.
//!
//! A PN value has up to three component groups separated by `=`: alphabetic, ideographic
//! and phonetic (`Zhang^XiaoDong=张^小东=zhāng^xiǎodōng`), each with components separated
//! by `^`. The index keeps two keys per name:
//! - [`groups_key`]: `|whole|group1|group2|…|` as received, for single-value and wildcard
//!   matching of a value against the whole name or any one group (case-sensitive);
//! - [`fuzzy_key`]: `|token|token|…|` where the tokens are each group and each of its
//!   components, NFKC-normalised (full-width ↔ half-width) and lower-cased, for
//!   `fuzzymatching=true`: a query matches when it is a prefix of any token, so `wang`,
//!   `ＷＡＮＧ`, `王` and `小明` all find `Wang^XiaoMing=王^小明`.

use unicode_normalization::UnicodeNormalization;

/// The key used for single-value and wildcard matching.
pub fn groups_key(name: &str) -> String {
    let name = name.trim_end_matches([' ', '\0']);
    let mut out = String::with_capacity(name.len() * 2 + 4);
    out.push('|');
    out.push_str(&clean(name));
    out.push('|');
    let groups: Vec<&str> = name.split('=').collect();
    if groups.len() > 1 {
        for g in groups.iter().map(|g| clean(g)).filter(|g| !g.is_empty()) {
            out.push_str(&g);
            out.push('|');
        }
    }
    out
}

/// The key used for fuzzy matching.
pub fn fuzzy_key(name: &str) -> String {
    let mut tokens: Vec<String> = Vec::new();
    for group in name.split('=') {
        let g = fuzzy_normalize(group);
        let g = g.trim_end_matches('^').to_owned();
        if g.is_empty() {
            continue;
        }
        let components: Vec<&str> = g.split(['^', ' ']).filter(|c| !c.is_empty()).collect();
        tokens.push(g.clone());
        for c in components {
            if c != g {
                tokens.push(c.to_owned());
            }
        }
    }
    tokens.dedup();
    if tokens.is_empty() {
        return String::new();
    }
    format!("|{}|", tokens.join("|"))
}

/// NFKC + lower case + trimmed: applied to both the stored name and a fuzzy query.
pub fn fuzzy_normalize(s: &str) -> String {
    s.nfkc()
        .collect::<String>()
        .to_lowercase()
        .trim_matches([' ', '\0', '\u{3000}'])
        .replace('|', "")
}

fn clean(s: &str) -> String {
    s.trim_matches([' ', '\0']).replace('|', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_key_lists_whole_value_and_each_group() {
        assert_eq!(
            groups_key("Zhang^XiaoDong=张^小东="),
            "|Zhang^XiaoDong=张^小东=|Zhang^XiaoDong|张^小东|"
        );
        assert_eq!(groups_key("张^小明"), "|张^小明|");
        assert_eq!(groups_key("DOE^JOHN "), "|DOE^JOHN|");
    }

    #[test]
    fn fuzzy_key_tokens_are_normalised_groups_and_components() {
        assert_eq!(
            fuzzy_key("Wang^XiaoMing=王^小明=wáng^xiǎomíng"),
            "|wang^xiaoming|wang|xiaoming|王^小明|王|小明|wáng^xiǎomíng|wáng|xiǎomíng|"
        );
        // full-width Latin letters fold to ASCII, half-width katakana to full-width
        assert_eq!(fuzzy_key("ＷＡＮＧ^ｼﾞｮﾝ"), "|wang^ジョン|wang|ジョン|");
        assert_eq!(fuzzy_normalize("ＷａＮｇ "), "wang");
        assert_eq!(fuzzy_key(""), "");
        assert_eq!(fuzzy_key("^^"), "");
    }
}
