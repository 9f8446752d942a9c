//! DICOMweb on the wire for the end-to-end tests: a `multipart/related` parser for WADO-RS
//! responses (written here, not borrowed from the hub, so that it checks the hub's framing)
//! and a body builder for STOW-RS requests.

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub struct Part {
    /// Header lines in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    /// A header by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }
}

/// The essence (`type/subtype`, lower case) of a media type.
pub fn media_essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A parameter of a media type (`boundary`, `type`, `transfer-syntax`), quotes removed.
pub fn media_param(media_type: &str, name: &str) -> Option<String> {
    let mut params = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in media_type.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c == ';' && !quoted {
            params.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    params.push(cur);
    params.into_iter().skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Split a `multipart/related` body (RFC 2046 5.1.1) by the `boundary` of `content_type`.
/// A part with a `Content-Length` header must be exactly that long.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    if !media_essence(content_type).starts_with("multipart/") {
        return Err(format!("not a multipart media type: {content_type}"));
    }
    let boundary = media_param(content_type, "boundary")
        .ok_or_else(|| format!("no boundary in {content_type}"))?;
    let dash = format!("--{boundary}").into_bytes();
    let delim = format!("\r\n--{boundary}").into_bytes();
    // the first delimiter may open the body or follow a preamble
    let mut at = if body.starts_with(&dash) {
        dash.len()
    } else {
        find(body, &delim, 0).ok_or("no opening delimiter")? + delim.len()
    };
    let mut parts = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(parts); // close delimiter
        }
        // transport padding, then CRLF
        let eol = find(body, b"\r\n", at).ok_or("delimiter line without CRLF")?;
        if body[at..eol].iter().any(|b| !b" \t".contains(b)) {
            return Err(format!("junk after a delimiter at byte {at}"));
        }
        let head_start = eol + 2;
        let (headers, body_start) = if body[head_start..].starts_with(b"\r\n") {
            (Vec::new(), head_start + 2)
        } else {
            let end =
                find(body, b"\r\n\r\n", head_start).ok_or("part headers without a blank line")?;
            let text = std::str::from_utf8(&body[head_start..end])
                .map_err(|_| "part headers are not UTF-8")?;
            let headers = text
                .split("\r\n")
                .map(|l| {
                    l.split_once(':')
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .ok_or_else(|| format!("bad header line {l:?}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            (headers, end + 4)
        };
        let end = find(body, &delim, body_start).ok_or("a part is not closed by a delimiter")?;
        let part = Part {
            headers,
            body: body[body_start..end].to_vec(),
        };
        if let Some(len) = part.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| format!("bad Content-Length {len}"))?;
            if len != part.body.len() {
                return Err(format!(
                    "part {} has Content-Length {len} but {} bytes",
                    parts.len() + 1,
                    part.body.len()
                ));
            }
        }
        parts.push(part);
        at = end + delim.len();
        if at >= body.len() {
            return Err("body ends without a close delimiter".into());
        }
    }
}

/// A `multipart/related` body of `(content type, bytes)` parts, for STOW-RS.
pub fn multipart_body(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ct, bytes) in parts {
        out.extend_from_slice(format!("--{boundary}\r\nContent-Type: {ct}\r\n\r\n").as_bytes());
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// The request `Content-Type` of a STOW-RS body of Part 10 files.
pub fn stow_content_type(boundary: &str) -> String {
    format!("multipart/related; type=\"application/dicom\"; boundary={boundary}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_binary_bodies() {
        let a: &[u8] = b"\r\n--not-the-boundary\r\n\x00\xff";
        let b: &[u8] = b"";
        let body = multipart_body("B0", &[("application/dicom", a), ("application/dicom", b)]);
        let ct = stow_content_type("B0");
        let parts = parse_multipart(&ct, &body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].body, a);
        assert_eq!(parts[1].body, b);
        assert_eq!(parts[0].content_type(), Some("application/dicom"));
        assert_eq!(
            media_param(&ct, "type").as_deref(),
            Some("application/dicom")
        );
    }

    #[test]
    fn content_length_must_match() {
        let body = b"--X\r\nContent-Length: 3\r\n\r\nab\r\n--X--\r\n";
        assert!(parse_multipart("multipart/related; boundary=X", body).is_err());
        let body = b"--X\r\nContent-Length: 2\r\n\r\nab\r\n--X--\r\n";
        assert_eq!(
            parse_multipart("multipart/related; boundary=\"X\"", body).unwrap()[0].body,
            b"ab"
        );
        assert!(parse_multipart("multipart/related; boundary=X", b"--X\r\n\r\nab").is_err());
    }
}
