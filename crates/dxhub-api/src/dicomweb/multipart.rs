//! Content negotiation (`Accept`) and `multipart/related` response bodies for WADO-RS.

use bytes::Bytes;

/// One media range of an `Accept` header, parameters lower-cased by name.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange {
    /// `type/subtype`, lower case.
    pub essence: String,
    pub params: Vec<(String, String)>,
    pub q: f32,
}

impl MediaRange {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_any(&self) -> bool {
        self.essence == "*/*"
    }
}

/// The media ranges of an `Accept` header, best first (none: `*/*`). A range with `q=0` is
/// "not acceptable" (RFC 9110 12.4.2) and left out; ranges of equal weight keep their order.
pub fn parse_accept(header: Option<&str>) -> Vec<MediaRange> {
    let Some(h) = header.filter(|h| !h.trim().is_empty()) else {
        return vec![MediaRange {
            essence: "*/*".into(),
            params: Vec::new(),
            q: 1.0,
        }];
    };
    let mut out: Vec<MediaRange> = Vec::new();
    for item in split_unquoted(h, ',') {
        let mut parts = split_unquoted(&item, ';').into_iter();
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        if essence.is_empty() {
            continue;
        }
        let mut params = Vec::new();
        let mut q = 1.0;
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim().trim_matches('"').to_owned();
            if k == "q" {
                q = v.parse::<f32>().map_or(1.0, |q| q.clamp(0.0, 1.0));
            } else {
                params.push((k, v));
            }
        }
        if q > 0.0 {
            out.push(MediaRange { essence, params, q });
        }
    }
    out.sort_by(|a, b| b.q.partial_cmp(&a.q).unwrap_or(std::cmp::Ordering::Equal));
    out
}

/// Whether an `Accept` header admits DICOM JSON (QIDO-RS results, `/metadata`).
pub fn accepts_dicom_json(header: Option<&str>) -> bool {
    parse_accept(header).iter().any(|r| {
        r.is_any()
            || matches!(
                r.essence.as_str(),
                "application/dicom+json" | "application/json" | "application/*"
            )
    })
}

/// Split on `sep` outside double quotes.
pub(crate) fn split_unquoted(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c == sep && !quoted {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// A fresh boundary.
pub fn boundary() -> String {
    use rand::Rng;
    let n: u128 = rand::thread_rng().r#gen();
    format!("dxhub-{n:032x}")
}

/// `multipart/related; type="{part_type}"; boundary={boundary}`.
pub fn content_type(part_type: &str, boundary: &str) -> String {
    format!("multipart/related; type=\"{part_type}\"; boundary={boundary}")
}

/// The header block that opens a part.
pub fn part_head(boundary: &str, content_type: &str, extra: &[(&str, String)]) -> Bytes {
    let mut s = format!("--{boundary}\r\nContent-Type: {content_type}\r\n");
    for (k, v) in extra {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    Bytes::from(s)
}

/// The line that ends a part's body.
pub const PART_END: &[u8] = b"\r\n";

/// The closing delimiter.
pub fn close(boundary: &str) -> Bytes {
    Bytes::from(format!("--{boundary}--\r\n"))
}

/// A whole multipart body from in-memory parts `(content type, bytes)`.
pub fn body(boundary: &str, parts: Vec<(String, Bytes)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.1.len() + 128).sum());
    for (ct, bytes) in parts {
        out.extend_from_slice(&part_head(
            boundary,
            &ct,
            &[("Content-Length", bytes.len().to_string())],
        ));
        out.extend_from_slice(&bytes);
        out.extend_from_slice(PART_END);
    }
    out.extend_from_slice(&close(boundary));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_with_quoted_parameters_and_q() {
        let a = parse_accept(Some(
            "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*, application/json;q=0.5",
        ));
        assert_eq!(a[0].essence, "multipart/related");
        assert_eq!(a[0].param("type"), Some("application/octet-stream"));
        assert_eq!(a[0].param("transfer-syntax"), Some("*"));
        assert_eq!(a[1].essence, "application/json");
        assert_eq!(a[1].q, 0.5);
        assert!(parse_accept(None)[0].is_any());
    }

    #[test]
    fn q_zero_is_not_acceptable_and_equal_weights_keep_their_order() {
        let a = parse_accept(Some(
            "image/jls, application/dicom;q=0, image/jp2, */*;q=0.1",
        ));
        let names: Vec<&str> = a.iter().map(|r| r.essence.as_str()).collect();
        assert_eq!(names, ["image/jls", "image/jp2", "*/*"]);
        assert!(parse_accept(Some("application/dicom;q=0")).is_empty());
    }

    #[test]
    fn multipart_body_frames_each_part() {
        let b = body(
            "B",
            vec![("application/octet-stream".into(), Bytes::from_static(b"xy"))],
        );
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "--B\r\nContent-Type: application/octet-stream\r\nContent-Length: 2\r\n\r\nxy\r\n--B--\r\n"
        );
    }
}
