//! Specific Character Set repair for the text dxhub indexes.
//!
//! dicom-rs decodes text with the *first* value of (0008,0005). That is right for
//! `ISO_IR 192`, `GB18030` and `GBK`, but not for code extensions: `\ISO 2022 IR 58`
//! (first value empty: the default repertoire, G1 designated to GB 2312 by escape
//! sequences, PS3.5 Annex K) is decoded as ISO 8859-1, and `ISO 2022 IR 58` leaves the
//! escape sequences in the text. Both are repaired here: text decoded as ISO 8859-1 is
//! turned back into its bytes (that mapping is lossless), escape sequences are removed and
//! the GR bytes are decoded as GB 2312 (EUC-CN, a subset of GBK).

/// What dicom-rs did with a data set's text, given its (0008,0005) values.
fn needs_iso2022_repair(charsets: &[String]) -> Option<Repair> {
    let has_ir58 = charsets.iter().any(|c| c.trim() == "ISO 2022 IR 58");
    if !has_ir58 {
        return None;
    }
    let first = charsets.first().map(|c| c.trim()).unwrap_or("");
    if first == "ISO 2022 IR 58" {
        // decoded as GBK already; only the escape sequences remain
        Some(Repair::StripEscapes)
    } else {
        // decoded with the default repertoire (ISO 8859-1 in dicom-rs)
        Some(Repair::Latin1ThenGb2312)
    }
}

enum Repair {
    StripEscapes,
    Latin1ThenGb2312,
}

/// Rejoin the values of one text element that dicom-rs split inside a character.
///
/// dicom-rs splits a text value on the byte 0x5C (`\`, the value delimiter) *before*
/// decoding it. In GBK and GB18030, 0x5C is also the second byte of some two-byte
/// characters (昞 is `95 5C`): such a name came back cut at that character, its lead byte
/// as dicom-rs's `\ooo` mark for an undecodable byte. When the data set's character set
/// is GB18030 or GBK (first value) and a value carries such a mark, the element's bytes
/// are rebuilt (values re-encoded, marks turned back into their bytes, 0x5C between them)
/// and split again where 0x5C stands on its own, then decoded. Otherwise the values are
/// returned as they are.
pub fn rejoin_gb_values(values: Vec<String>, charsets: &[String]) -> Vec<String> {
    let first = charsets.first().map(|c| c.trim()).unwrap_or("");
    let gb = matches!(first, "GB18030" | "GBK" | "ISO 2022 IR 58");
    if !gb || !values.iter().any(|v| v.contains('\\')) {
        return values;
    }
    let mut bytes = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            bytes.push(b'\\');
        }
        bytes.extend_from_slice(&gb_bytes_of(v));
    }
    split_gb(&bytes)
        .into_iter()
        .map(|part| {
            encoding_rs::GB18030
                .decode_without_bom_handling(part)
                .0
                .into_owned()
        })
        .collect()
}

/// A value decoded by dicom-rs back into GB18030 bytes: `\ooo` (octal; dicom-rs's mark for
/// a byte it could not decode) as that byte.
fn gb_bytes_of(value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('\\') {
        out.extend_from_slice(&encoding_rs::GB18030.encode(&rest[..i]).0);
        match rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            Some(b) => {
                out.push(b);
                rest = &rest[i + 4..];
            }
            None => {
                out.push(b'\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.extend_from_slice(&encoding_rs::GB18030.encode(rest).0);
    out
}

/// Split GB18030 bytes on the value delimiter 0x5C where it is a character of its own, not
/// the second byte of a two-byte character (lead 0x81–0xFE; four-byte characters have
/// 0x30–0x39 second and fourth bytes, never 0x5C).
fn split_gb(bytes: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' {
            parts.push(&bytes[start..i]);
            start = i + 1;
            i += 1;
        } else if (0x81..=0xFE).contains(&b) && i + 1 < bytes.len() {
            i += if (0x30..=0x39).contains(&bytes[i + 1]) {
                4
            } else {
                2
            };
        } else {
            i += 1;
        }
    }
    parts.push(&bytes[start.min(bytes.len())..]);
    parts
}

/// A text element's values as dicom-rs decoded them, made right: values cut inside a
/// GBK/GB18030 character rejoined, joined with `\\`, trimmed of padding, ISO 2022 IR 58
/// repaired. `None` when nothing is left.
pub fn text_of_values(values: Vec<String>, charsets: &[String]) -> Option<String> {
    let joined = rejoin_gb_values(values, charsets).join("\\");
    let s = joined.trim_matches(|c: char| c == ' ' || c == '\0');
    (!s.is_empty()).then(|| repair_text(s, charsets))
}

/// Repair text of a value decoded by dicom-rs, given the data set's Specific Character Set.
pub fn repair_text(decoded: &str, charsets: &[String]) -> String {
    match needs_iso2022_repair(charsets) {
        None => decoded.to_owned(),
        Some(Repair::StripEscapes) => {
            String::from_utf8_lossy(&strip_escapes(decoded.as_bytes())).into_owned()
        }
        Some(Repair::Latin1ThenGb2312) => {
            if decoded.chars().any(|c| c as u32 > 0xFF) {
                return decoded.to_owned();
            }
            let bytes: Vec<u8> = decoded.chars().map(|c| c as u32 as u8).collect();
            decode_iso2022_gb2312(&bytes)
        }
    }
}

/// Decode bytes in ISO 2022 with G0 = ISO-IR 6 and G1 = ISO-IR 58 (GB 2312 in GR).
pub fn decode_iso2022_gb2312(bytes: &[u8]) -> String {
    let clean = strip_escapes(bytes);
    let (text, _, _) = encoding_rs::GBK.decode(&clean);
    text.into_owned()
}

/// Remove ISO 2022 escape sequences (ESC, intermediates 0x20–0x2F, one final byte).
fn strip_escapes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1B {
            i += 1;
            while i < bytes.len() && (0x20..=0x2F).contains(&bytes[i]) {
                i += 1;
            }
            i += 1; // final byte
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gb2312_iso2022(s: &str) -> Vec<u8> {
        // ESC $ ) A designates GB 2312 to G1; EUC-CN bytes are in GR
        let (gb, _, _) = encoding_rs::GBK.encode(s);
        let mut out = b"\x1b$)A".to_vec();
        out.extend_from_slice(&gb);
        out
    }

    #[test]
    fn repairs_latin1_decoded_iso2022_ir58() {
        let mut raw = b"Zhang^San=".to_vec();
        raw.extend(gb2312_iso2022("张^三"));
        let as_latin1: String = raw.iter().map(|&b| b as char).collect();
        let cs = vec![String::new(), "ISO 2022 IR 58".to_owned()];
        assert_eq!(repair_text(&as_latin1, &cs), "Zhang^San=张^三");
    }

    #[test]
    fn strips_escapes_when_first_value_is_ir58() {
        let cs = vec!["ISO 2022 IR 58".to_owned()];
        assert_eq!(repair_text("\u{1b}$)A张三", &cs), "张三");
    }

    #[test]
    fn text_of_values_rejoins_trims_and_repairs() {
        let gb = vec!["GB18030".to_owned()];
        assert_eq!(
            text_of_values(vec!["王^\\225".to_owned(), " ".to_owned()], &gb).as_deref(),
            Some("王^昞")
        );
        let ir58 = vec![String::new(), "ISO 2022 IR 58".to_owned()];
        let mut raw = b"Li=".to_vec();
        raw.extend(gb2312_iso2022("李^雷"));
        let latin1: String = raw.iter().map(|&b| b as char).collect();
        assert_eq!(
            text_of_values(vec![latin1], &ir58).as_deref(),
            Some("Li=李^雷")
        );
        assert_eq!(text_of_values(vec![" \0".to_owned()], &gb), None);
    }

    #[test]
    fn leaves_other_charsets_alone() {
        let cs = vec!["ISO_IR 192".to_owned()];
        assert_eq!(repair_text("王^小东", &cs), "王^小东");
        assert_eq!(repair_text("Müller", &[]), "Müller");
    }

    /// 昞 is `95 5C` in GB18030/GBK: dicom-rs cut "王^昞" at its second byte.
    #[test]
    fn gb_names_cut_at_a_0x5c_second_byte_are_rejoined() {
        let cs = vec!["GB18030".to_owned()];
        let cut = vec!["王^\\225".to_owned(), String::new()];
        assert_eq!(rejoin_gb_values(cut, &cs), ["王^昞"]);
        // two values, the first with such a character, the second plain
        let cut = vec!["\\225".to_owned(), "A".to_owned(), "李^雷".to_owned()];
        assert_eq!(rejoin_gb_values(cut, &cs), ["昞A", "李^雷"]);
        // untouched: no mark, or another character set
        let fine = vec!["张^三".to_owned(), "B".to_owned()];
        assert_eq!(rejoin_gb_values(fine.clone(), &cs), fine);
        let other = vec!["a\\225".to_owned()];
        assert_eq!(
            rejoin_gb_values(other.clone(), &["ISO_IR 192".to_owned()]),
            other
        );
    }
}
