//! Reader of HL7 v3 annotated ECGs (aECG, ANSI/HL7 V3 ECG R1-2004, `PORT_MT020001`, the
//! XML form the FDA accepts for ECGs of clinical trials) into [`Ecg`].
//!
//! What is read, by element local name (any namespace prefix, any element order, unknown
//! elements ignored):
//!
//! - **Rhythm**: the first `component/series` of `AnnotatedECG` that is not a representative
//!   beat (code `REPRESENTATIVE_BEAT`) and has a `component/sequenceSet`; of that series, the
//!   first sequenceSet. Representative (median) beats in `series/derivation/derivedSeries`
//!   (or in a top-level `REPRESENTATIVE_BEAT` series) are not read; their presence sets
//!   [`Ecg::has_median_beats`].
//! - **Sampling rate**: from the time sequence of the sequenceSet (code `TIME_ABSOLUTE` or
//!   `TIME_RELATIVE`, value `GLIST_TS` or `GLIST_PQ`): 1 / `increment` (unit `s`, `ms`, `us`
//!   or `µs`), rounded to an integer when within 10⁻⁶ of one.
//! - **Leads**: every other sequence whose value has `digits` (`SLIST_PQ`). The lead is taken
//!   from the code: `MDC_ECG_LEAD_I`… (code system 2.16.840.1.113883.6.24; the part after
//!   `ECG_LEAD_` also for vendor prefixes, `AVRNEG` = −aVR), a CID 3001 code, or else the code
//!   text itself as an other lead. Sample in µV = `origin` + `scale` × digit, with `origin`
//!   and `scale` each converted from their own unit (`uV`, `µV`, `mV`, `V`, `nV`; an origin
//!   without a unit takes the scale's). Digits are whitespace-separated integers (decimals
//!   are accepted). All leads must have the same number of samples.
//! - **Patient**: `componentOf/timepointEvent/componentOf/subjectAssignment/subject/
//!   trialSubject`: `id` (extension, else root), `subjectDemographicPerson/name` (as DICOM
//!   PN `Family^Given` when it has parts, else its text), `administrativeGenderCode` (`M`,
//!   `F`; `UN` becomes `O`), `birthTime` (its `YYYYMMDD`).
//! - **Acquisition time**: `effectiveTime/low` (or `center`) of the document, else of the
//!   series, else the head of a `TIME_ABSOLUTE` sequence; an HL7 TS, which has the form of a
//!   DICOM DT.
//! - **Device**: `series/author/seriesAuthor`: `manufacturedSeriesDevice/id` (extension) as
//!   the serial, `manufacturedSeriesDevice/manufacturerModelName`,
//!   `manufacturerOrganization/name`.
//! - **Filters**: `controlVariable/controlVariable` of the series (else of the document) whose
//!   code ends in `_FILTER_LOW_PASS`, `_FILTER_HIGH_PASS` or `_FILTER_NOTCH` (the FDA's
//!   `MDC_ECG_CTL_VBL_ATTR_FILTER_…` and biosig's `MDC_ATTR_FILTER_…`), frequency from the
//!   nested controlVariable coded `…_CUTOFF_FREQ` / `…_NOTCH_FREQ` (Hz or kHz). The high-pass
//!   cutoff is [`Filters::low_hz`], the low-pass cutoff [`Filters::high_hz`] (the pass band's
//!   edges, as in DICOM). Non-numbers (`nan`) and values ≤ 0 mean not stated.
//! - **Annotations**: the `subjectOf/annotationSet`s of the rhythm series, then of its derived
//!   series, walked through nested `component/annotation`. Interpretation text
//!   (`MDC_ECG_INTERPRETATION_STATEMENT`, `…_SUMMARY`, or `MDC_ECG_INTERPRETATION` with a
//!   value) becomes statements; annotations with a numeric `value` (PQ: interval, duration,
//!   axis, rate…) become [`Measurement`]s (first one per code). Per-beat (`MDC_ECG_BEAT`),
//!   per-lead (a `support/supportingROI` bounded by a lead) and fiducial (`MDC_ECG_WAVC…`)
//!   annotations are skipped.
//!
//! Safety: the input is capped at [`MAX_AECG_BYTES`], the tree at [`MAX_XML_NODES`] nodes and
//! every lead at [`MAX_SAMPLES_PER_LEAD`] samples; a document type declaration is refused
//! outright, so no entity is ever expanded or fetched. The file may be UTF-8 (with or without
//! BOM), UTF-16 with BOM, or any encoding its XML declaration names that the WHATWG Encoding
//! Standard knows (GBK, ISO-8859-1…).

use crate::model::{Device, Ecg, Filters, Lead, LeadCode, Measurement, Patient};
use roxmltree::{Document, Node, ParsingOptions};
use std::borrow::Cow;

/// The largest aECG file read (256 MiB).
pub const MAX_AECG_BYTES: usize = 256 << 20;
/// The largest number of XML nodes (elements, text, comments…) of a file.
pub const MAX_XML_NODES: u32 = 2_000_000;
/// The largest number of samples of a lead (as for the JSON form).
pub const MAX_SAMPLES_PER_LEAD: usize = crate::json::MAX_SAMPLES_PER_LEAD;

const MDC_OID: &str = "2.16.840.1.113883.6.24";

#[derive(Debug, thiserror::Error)]
pub enum AecgError {
    #[error("the file is {size} bytes, more than the {max} bytes an aECG file may have")]
    TooLarge { size: usize, max: usize },
    #[error("the file is not valid {encoding}: {detail}")]
    Encoding {
        encoding: &'static str,
        detail: String,
    },
    #[error("the XML declaration names the encoding {0:?}, which is not supported")]
    UnknownEncoding(String),
    #[error(
        "the file has a document type declaration (<!DOCTYPE …>); aECG files have none and DTDs are refused (no entity expansion)"
    )]
    Dtd,
    #[error("the file has more than {max} XML nodes")]
    TooManyNodes { max: u32 },
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error("not an HL7 aECG: the root element is <{0}>, not <AnnotatedECG>")]
    NotAecg(String),
    #[error("no rhythm series: no component/series with sequenceSet")]
    NoRhythmSeries,
    #[error(
        "no time sequence: the rhythm sequenceSet has no sequence coded TIME_ABSOLUTE or TIME_RELATIVE"
    )]
    NoTimeSequence,
    #[error("time sequence {code}: {detail}")]
    BadTime { code: String, detail: String },
    #[error("no leads: the rhythm sequenceSet has no sequence with digits")]
    NoLeads,
    #[error("sequence {code}: {detail}")]
    BadSequence { code: String, detail: String },
    #[error("sequence {code}: sample {index} {text:?} is not an integer")]
    BadDigit {
        code: String,
        index: usize,
        text: String,
    },
    #[error("sequence {code}: more than {max} samples")]
    TooManySamples { code: String, max: usize },
    #[error("sequence {code}: no samples (empty digits)")]
    NoSamples { code: String },
    #[error("sequence {code}: {samples} samples, {others}")]
    LengthMismatch {
        code: String,
        samples: usize,
        others: String,
    },
    #[error("sequence {code}: lead {lead} appears a second time")]
    DuplicateLead { code: String, lead: String },
}

type Result<T, E = AecgError> = std::result::Result<T, E>;

// ---------------------------------------------------------------------------------------
// Sniffing and decoding
// ---------------------------------------------------------------------------------------

/// What precedes the root element: its qualified name and whether a DOCTYPE came first.
struct Prolog<'a> {
    root_qname: &'a str,
    doctype: bool,
}

/// Scan the prolog (XML declaration, processing instructions, comments, whitespace, a
/// DOCTYPE) up to the root start tag. `None` when the text does not reach a start tag.
fn scan_prolog(text: &str) -> Option<Prolog<'_>> {
    let mut s = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut doctype = false;
    loop {
        s = s.trim_start_matches([' ', '\t', '\r', '\n']);
        if let Some(rest) = s.strip_prefix("<?") {
            s = &rest[rest.find("?>")? + 2..];
        } else if let Some(rest) = s.strip_prefix("<!--") {
            s = &rest[rest.find("-->")? + 3..];
        } else if s.len() >= 9 && s[..9].eq_ignore_ascii_case("<!DOCTYPE") {
            doctype = true;
            let rest = &s[9..];
            let gt = rest.find('>')?;
            // An internal subset `[...]` may hold `>`: skip to the `]` that closes it.
            s = match rest.find('[') {
                Some(open) if open < gt => {
                    let close = rest[open..].find(']')? + open;
                    &rest[close + 1 + rest[close + 1..].find('>')? + 1..]
                }
                _ => &rest[gt + 1..],
            };
        } else if let Some(rest) = s.strip_prefix('<') {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(rest.len());
            if end == 0 || end == rest.len() {
                return None;
            }
            return Some(Prolog {
                root_qname: &rest[..end],
                doctype,
            });
        } else {
            return None;
        }
    }
}

fn local_name(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

/// Cheap sniff: after an optional BOM, XML declaration, comments and processing
/// instructions, the root element's local name is `AnnotatedECG` (looks at the first 64 KiB;
/// UTF-8 and UTF-16 with BOM).
pub fn looks_like_aecg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(64 << 10)];
    let text: Cow<'_, str> = if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(head) {
        if enc == encoding_rs::UTF_8 {
            String::from_utf8_lossy(&head[bom..])
        } else {
            enc.decode_without_bom_handling(&head[bom..]).0
        }
    } else {
        String::from_utf8_lossy(head)
    };
    scan_prolog(&text).is_some_and(|p| local_name(p.root_qname) == "AnnotatedECG")
}

/// The encoding label of an XML declaration at the start of an ASCII-compatible text.
fn declared_encoding(bytes: &[u8]) -> Option<&str> {
    let head = &bytes[..bytes.len().min(1024)];
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + 8..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].trim())
}

fn decode(bytes: &[u8]) -> Result<Cow<'_, str>> {
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let body = &bytes[bom..];
        if enc == encoding_rs::UTF_8 {
            return utf8(body).map(Cow::Borrowed);
        }
        return enc
            .decode_without_bom_handling_and_without_replacement(body)
            .ok_or_else(|| AecgError::Encoding {
                encoding: enc.name(),
                detail: "malformed byte sequence".into(),
            });
    }
    match declared_encoding(bytes) {
        None => utf8(bytes).map(Cow::Borrowed),
        Some(label) => {
            let enc = encoding_rs::Encoding::for_label(label.as_bytes())
                .ok_or_else(|| AecgError::UnknownEncoding(label.to_owned()))?;
            if enc == encoding_rs::UTF_8 {
                return utf8(bytes).map(Cow::Borrowed);
            }
            if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
                // An ASCII-readable declaration naming UTF-16 without a BOM contradicts itself.
                return Err(AecgError::Encoding {
                    encoding: enc.name(),
                    detail: "the declaration is not UTF-16 (no byte order mark)".into(),
                });
            }
            enc.decode_without_bom_handling_and_without_replacement(bytes)
                .ok_or_else(|| AecgError::Encoding {
                    encoding: enc.name(),
                    detail: "malformed byte sequence".into(),
                })
        }
    }
}

fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| AecgError::Encoding {
        encoding: "UTF-8",
        detail: format!("invalid byte sequence at byte {}", e.valid_up_to()),
    })
}

// ---------------------------------------------------------------------------------------
// Tree helpers: element local names, any namespace
// ---------------------------------------------------------------------------------------

type N<'a, 'i> = Node<'a, 'i>;

fn is(n: &N<'_, '_>, name: &str) -> bool {
    n.is_element() && n.tag_name().name() == name
}

fn kids<'a, 'i>(n: N<'a, 'i>, name: &'a str) -> impl Iterator<Item = N<'a, 'i>> + 'a {
    n.children().filter(move |c| is(c, name))
}

fn kid<'a, 'i>(n: N<'a, 'i>, name: &str) -> Option<N<'a, 'i>> {
    n.children().find(|c| is(c, name))
}

/// Every node at the end of `path` (element local names), in document order.
fn all_at<'a, 'i>(n: N<'a, 'i>, path: &[&str]) -> Vec<N<'a, 'i>> {
    let mut level = vec![n];
    for name in path {
        level = level
            .into_iter()
            .flat_map(|m| m.children().filter(|c| is(c, name)))
            .collect();
    }
    level
}

fn first_at<'a, 'i>(n: N<'a, 'i>, path: &[&str]) -> Option<N<'a, 'i>> {
    match path.split_first() {
        None => Some(n),
        Some((name, rest)) => n
            .children()
            .filter(|c| is(c, name))
            .find_map(|c| first_at(c, rest)),
    }
}

/// An attribute by local name, whatever its namespace (`xsi:type` is `type`).
fn attr<'a>(n: N<'a, '_>, name: &str) -> Option<&'a str> {
    n.attributes()
        .find(|a| a.name() == name)
        .map(|a| a.value().trim())
        .filter(|v| !v.is_empty())
}

fn code_of<'a>(n: N<'a, '_>) -> Option<&'a str> {
    kid(n, "code").and_then(|c| attr(c, "code"))
}

/// The text content of an element and its descendants, whitespace collapsed.
fn text_of(n: N<'_, '_>) -> Option<String> {
    let mut out = String::new();
    for t in n.descendants().filter(|d| d.is_text()) {
        for word in t.text().unwrap_or("").split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The text of an element's direct text children (split by comments or processing
/// instructions: concatenated, as XML defines it), borrowed when there is one.
fn raw_text<'a>(n: N<'a, '_>) -> Cow<'a, str> {
    let mut texts = n
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text());
    match (texts.next(), texts.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(t), None) => Cow::Borrowed(t),
        (Some(a), Some(b)) => {
            let mut s = String::from(a);
            s.push_str(b);
            s.extend(texts);
            Cow::Owned(s)
        }
    }
}

/// At most the first 64 characters of an input string, for messages.
fn clip(s: &str) -> &str {
    s.char_indices().nth(64).map_or(s, |(i, _)| &s[..i])
}

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// µV per unit of a UCUM voltage unit.
fn volts_to_uv(unit: &str) -> Option<f64> {
    match unit.trim() {
        "uV" | "µV" | "μV" => Some(1.0),
        "mV" => Some(1e3),
        "V" => Some(1e6),
        "nV" => Some(1e-3),
        _ => None,
    }
}

fn seconds_per(unit: &str) -> Option<f64> {
    match unit.trim() {
        "s" => Some(1.0),
        "ms" => Some(1e-3),
        "us" | "µs" | "μs" => Some(1e-6),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// The reader
// ---------------------------------------------------------------------------------------

/// Read an HL7 aECG file from its bytes.
pub fn read_aecg(bytes: &[u8]) -> Result<Ecg> {
    if bytes.len() > MAX_AECG_BYTES {
        return Err(AecgError::TooLarge {
            size: bytes.len(),
            max: MAX_AECG_BYTES,
        });
    }
    let text = decode(bytes)?;
    // Refuse a DOCTYPE before roxmltree sees it: it would accept an empty or external one.
    if let Some(p) = scan_prolog(&text) {
        if p.doctype {
            return Err(AecgError::Dtd);
        }
    } else if text.contains("<!DOCTYPE") {
        return Err(AecgError::Dtd);
    }
    let opts = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(&text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => AecgError::Dtd,
        roxmltree::Error::NodesLimitReached => AecgError::TooManyNodes { max: MAX_XML_NODES },
        e => AecgError::Xml(e.to_string()),
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "AnnotatedECG" {
        return Err(AecgError::NotAecg(clip(root.tag_name().name()).to_owned()));
    }

    let series: Vec<N<'_, '_>> = all_at(root, &["component", "series"]);
    let is_beat =
        |s: &N<'_, '_>| code_of(*s).is_some_and(|c| c.eq_ignore_ascii_case("REPRESENTATIVE_BEAT"));
    let has_set = |s: &N<'_, '_>| first_at(*s, &["component", "sequenceSet"]).is_some();
    let rhythm = series
        .iter()
        .copied()
        .find(|s| !is_beat(s) && has_set(s))
        .ok_or(AecgError::NoRhythmSeries)?;
    let derived = all_at(rhythm, &["derivation", "derivedSeries"]);
    let has_median_beats = series.iter().any(|s| is_beat(s) && has_set(s))
        || series.iter().any(|s| {
            all_at(*s, &["derivation", "derivedSeries"])
                .iter()
                .any(has_set)
        });

    let set = first_at(rhythm, &["component", "sequenceSet"]).ok_or(AecgError::NoRhythmSeries)?;
    let (leads, sample_rate_hz, time_head) = read_sequence_set(set)?;

    let acquired_at = [root, rhythm]
        .iter()
        .find_map(|n| {
            let et = kid(*n, "effectiveTime")?;
            kid(et, "low")
                .or_else(|| kid(et, "center"))
                .and_then(|l| attr(l, "value"))
        })
        .or(time_head)
        .map(str::to_owned);

    let mut device_measurements = Vec::new();
    let mut statements = Vec::new();
    for s in std::iter::once(rhythm).chain(derived.iter().copied()) {
        for set in all_at(s, &["subjectOf", "annotationSet"]) {
            for ann in all_at(set, &["component", "annotation"]) {
                walk_annotation(ann, 0, &mut device_measurements, &mut statements);
            }
        }
    }

    Ok(Ecg {
        leads,
        sample_rate_hz,
        filters: filters(rhythm)
            .or_else(|| filters(root))
            .unwrap_or_default(),
        device_measurements,
        statements,
        patient: patient(root),
        device: device(rhythm),
        acquired_at,
        has_median_beats,
    })
}

/// The leads, the sampling rate and the head of a TIME_ABSOLUTE sequence.
fn read_sequence_set<'a>(set: N<'a, '_>) -> Result<(Vec<Lead>, f64, Option<&'a str>)> {
    let mut rate = None;
    let mut head = None;
    let mut leads: Vec<(String, Lead)> = Vec::new();
    for seq in all_at(set, &["component", "sequence"]) {
        // No real code is longer; a longer one is cut so that messages stay short.
        let code = clip(code_of(seq).unwrap_or(""));
        let value = kid(seq, "value");
        if code.eq_ignore_ascii_case("TIME_ABSOLUTE") || code.eq_ignore_ascii_case("TIME_RELATIVE")
        {
            if rate.is_none() {
                let (r, h) = time_sequence(code, value)?;
                rate = Some(r);
                if code.eq_ignore_ascii_case("TIME_ABSOLUTE") {
                    head = h;
                }
            }
            continue;
        }
        let Some(value) = value.filter(|v| kid(*v, "digits").is_some()) else {
            continue; // neither time nor samples: some other observation
        };
        let code = if code.is_empty() { "(no code)" } else { code };
        let lead = lead_code(code);
        if leads.iter().any(|(_, l)| l.code == lead) {
            return Err(AecgError::DuplicateLead {
                code: code.to_owned(),
                lead: lead.to_string(),
            });
        }
        let samples_uv = samples(code, value)?;
        leads.push((
            code.to_owned(),
            Lead {
                code: lead,
                samples_uv,
            },
        ));
    }
    let rate = rate.ok_or(AecgError::NoTimeSequence)?;
    if leads.is_empty() {
        return Err(AecgError::NoLeads);
    }
    check_lengths(&leads)?;
    Ok((leads.into_iter().map(|(_, l)| l).collect(), rate, head))
}

fn check_lengths(leads: &[(String, Lead)]) -> Result<()> {
    let len = |i: usize| leads[i].1.samples_uv.len();
    if (1..leads.len()).all(|i| len(i) == len(0)) {
        return Ok(());
    }
    // The odd one out is the lead whose length differs from the most common one.
    let mut counts: Vec<(usize, usize)> = Vec::new();
    for i in 0..leads.len() {
        match counts.iter_mut().find(|(n, _)| *n == len(i)) {
            Some((_, c)) => *c += 1,
            None => counts.push((len(i), 1)),
        }
    }
    let (common, _) =
        counts.iter().copied().fold(
            (len(0), 0),
            |best, (n, c)| if c > best.1 { (n, c) } else { best },
        );
    let odd = (0..leads.len()).find(|&i| len(i) != common).unwrap_or(0);
    let others = if counts.len() == 2 {
        format!("{common} in the other leads")
    } else {
        format!("{common} in most other leads")
    };
    Err(AecgError::LengthMismatch {
        code: leads[odd].0.clone(),
        samples: len(odd),
        others,
    })
}

/// Sampling rate (Hz) and head value of a GLIST_TS / GLIST_PQ time sequence.
fn time_sequence<'a>(code: &str, value: Option<N<'a, '_>>) -> Result<(f64, Option<&'a str>)> {
    let bad = |detail: String| AecgError::BadTime {
        code: code.to_owned(),
        detail,
    };
    let value = value.ok_or_else(|| bad("no value".into()))?;
    let head = kid(value, "head").and_then(|h| attr(h, "value"));
    let inc = kid(value, "increment").ok_or_else(|| {
        bad(format!(
            "value {} has no increment",
            clip(attr(value, "type").unwrap_or("(no xsi:type)"))
        ))
    })?;
    let full = attr(inc, "value").ok_or_else(|| bad("the increment has no value".into()))?;
    let raw = clip(full);
    let step = number(full)
        .filter(|v| *v > 0.0)
        .ok_or_else(|| bad(format!("increment {raw:?} is not a positive number")))?;
    let unit = clip(attr(inc, "unit").unwrap_or(""));
    let per = seconds_per(unit)
        .ok_or_else(|| bad(format!("increment unit {unit:?} is not s, ms or us")))?;
    let mut rate = 1.0 / (step * per);
    if (rate - rate.round()).abs() <= 1e-6 * rate {
        rate = rate.round();
    }
    if !(1.0..=100_000.0).contains(&rate) {
        return Err(bad(format!(
            "increment {raw} {unit} is {} Hz, outside 1–100000 Hz",
            if rate < 1e15 {
                format!("{rate}")
            } else {
                format!("{rate:e}")
            }
        )));
    }
    Ok((rate, head))
}

/// The lead of a sequence code.
fn lead_code(code: &str) -> LeadCode {
    let upper = code.to_ascii_uppercase();
    if let Some(at) = upper.find("ECG_LEAD_") {
        let suffix = &code[at + "ECG_LEAD_".len()..];
        if suffix.eq_ignore_ascii_case("AVRNEG") {
            return LeadCode::from_name("-aVR").unwrap_or(LeadCode::Other("-aVR".into()));
        }
        if let Some(l) = LeadCode::from_name(suffix) {
            return l;
        }
    }
    LeadCode::from_cid3001(code)
        .or_else(|| LeadCode::from_name(code))
        .unwrap_or_else(|| LeadCode::Other(code.to_owned()))
}

/// The samples of an SLIST_PQ value, in µV.
fn samples(code: &str, value: N<'_, '_>) -> Result<Vec<f32>> {
    let bad = |detail: String| AecgError::BadSequence {
        code: code.to_owned(),
        detail,
    };
    let scale = kid(value, "scale").ok_or_else(|| bad("SLIST_PQ value without scale".into()))?;
    let quantity = |n: N<'_, '_>, what: &str, default_unit: Option<&str>| -> Result<f64> {
        let full = attr(n, "value").unwrap_or("");
        let raw = clip(full);
        let v = number(full).ok_or_else(|| bad(format!("{what} value {raw:?} is not a number")))?;
        let unit = clip(attr(n, "unit").or(default_unit).unwrap_or(""));
        let f = volts_to_uv(unit).ok_or_else(|| {
            bad(format!(
                "{what} unit {unit:?} is not a voltage (uV, mV, V, nV)"
            ))
        })?;
        Ok(v * f)
    };
    let scale_uv = quantity(scale, "scale", None)?;
    let origin_uv = match kid(value, "origin") {
        // An origin of 0 needs no unit; any other takes the scale's when it has none.
        Some(o) if attr(o, "value").and_then(number) == Some(0.0) => 0.0,
        Some(o) => quantity(o, "origin", attr(scale, "unit"))?,
        None => 0.0,
    };
    let digits = kid(value, "digits").map(raw_text).unwrap_or_default();
    let mut out = Vec::new();
    for (index, word) in digits.split_ascii_whitespace().enumerate() {
        if index >= MAX_SAMPLES_PER_LEAD {
            return Err(AecgError::TooManySamples {
                code: code.to_owned(),
                max: MAX_SAMPLES_PER_LEAD,
            });
        }
        let short = || clip(word).to_owned();
        let d = match word.parse::<i64>() {
            Ok(d) => d as f64,
            Err(_) => match word.parse::<f64>() {
                Ok(v) if v.is_finite() => v,
                // A number too large for any float, not a word such as "inf".
                Ok(v) if !v.is_nan() && word.bytes().all(|b| b"0123456789+-.eE".contains(&b)) => {
                    return Err(bad(format!("sample {index} ({}) is out of range", short())));
                }
                _ => {
                    return Err(AecgError::BadDigit {
                        code: code.to_owned(),
                        index,
                        text: short(),
                    });
                }
            },
        };
        let uv = (origin_uv + scale_uv * d) as f32;
        if !uv.is_finite() {
            return Err(bad(format!(
                "sample {index} ({}) is {:e} µV, out of range",
                short(),
                origin_uv + scale_uv * d
            )));
        }
        out.push(uv);
    }
    if out.is_empty() {
        return Err(AecgError::NoSamples {
            code: code.to_owned(),
        });
    }
    Ok(out)
}

fn patient(root: N<'_, '_>) -> Patient {
    let Some(subject) = first_at(
        root,
        &[
            "componentOf",
            "timepointEvent",
            "componentOf",
            "subjectAssignment",
            "subject",
            "trialSubject",
        ],
    ) else {
        return Patient::default();
    };
    let id = kid(subject, "id").and_then(|i| attr(i, "extension").or_else(|| attr(i, "root")));
    let person = kid(subject, "subjectDemographicPerson");
    let name = person.and_then(|p| kid(p, "name")).and_then(person_name);
    let sex = person
        .and_then(|p| kid(p, "administrativeGenderCode"))
        .and_then(|g| attr(g, "code"))
        .map(|c| match c.to_ascii_uppercase().as_str() {
            "UN" => "O".to_owned(),
            other => other.to_owned(),
        });
    let birth_date = person
        .and_then(|p| kid(p, "birthTime"))
        .and_then(|b| attr(b, "value"))
        .map(|v| {
            let date = v.get(..8).filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
            date.unwrap_or(v).to_owned()
        });
    Patient {
        id: id.map(str::to_owned),
        name,
        birth_date,
        sex,
    }
}

/// A PN: `Family^Given` (DICOM PN) when it has parts, else its text.
fn person_name(n: N<'_, '_>) -> Option<String> {
    let parts = |part: &str| {
        kids(n, part)
            .filter_map(text_of)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (family, given) = (parts("family"), parts("given"));
    if family.is_empty() && given.is_empty() {
        return text_of(n);
    }
    Some(if given.is_empty() {
        family
    } else {
        format!("{family}^{given}")
    })
}

fn device(series: N<'_, '_>) -> Device {
    let Some(author) = first_at(series, &["author", "seriesAuthor"]) else {
        return Device::default();
    };
    let dev = kid(author, "manufacturedSeriesDevice");
    Device {
        serial: dev
            .and_then(|d| kid(d, "id"))
            .and_then(|i| attr(i, "extension"))
            .map(str::to_owned),
        model: dev
            .and_then(|d| kid(d, "manufacturerModelName"))
            .and_then(text_of),
        manufacturer: first_at(author, &["manufacturerOrganization", "name"]).and_then(text_of),
    }
}

fn filters(n: N<'_, '_>) -> Option<Filters> {
    let mut f = Filters::default();
    let mut any = false;
    for cv in all_at(n, &["controlVariable", "controlVariable"]) {
        let kind = code_of(cv).unwrap_or("").to_ascii_uppercase();
        let slot = if kind.ends_with("_FILTER_LOW_PASS") {
            &mut f.high_hz
        } else if kind.ends_with("_FILTER_HIGH_PASS") {
            &mut f.low_hz
        } else if kind.ends_with("_FILTER_NOTCH") {
            &mut f.notch_hz
        } else {
            continue;
        };
        any = true;
        let freq = all_at(cv, &["component", "controlVariable"])
            .into_iter()
            .filter(|sub| {
                let c = code_of(*sub).unwrap_or("").to_ascii_uppercase();
                c.ends_with("_CUTOFF_FREQ") || c.ends_with("_NOTCH_FREQ")
            })
            .find_map(|sub| {
                let v = kid(sub, "value")?;
                let hz = number(attr(v, "value")?)?;
                let factor = match attr(v, "unit").unwrap_or("Hz") {
                    "Hz" => 1.0,
                    "kHz" => 1e3,
                    "mHz" => 1e-3,
                    _ => return None,
                };
                Some(hz * factor).filter(|v| *v > 0.0)
            });
        if slot.is_none() {
            *slot = freq;
        }
    }
    any.then_some(f)
}

fn is_statement_code(code: &str) -> bool {
    matches!(
        code,
        "MDC_ECG_INTERPRETATION"
            | "MDC_ECG_INTERPRETATION_STATEMENT"
            | "MDC_ECG_INTERPRETATION_SUMMARY"
    )
}

/// Annotations nest deeper than this are not read (real files nest 3 or 4 levels).
const MAX_ANNOTATION_DEPTH: usize = 32;

fn walk_annotation(
    ann: N<'_, '_>,
    depth: usize,
    measurements: &mut Vec<Measurement>,
    statements: &mut Vec<String>,
) {
    if depth > MAX_ANNOTATION_DEPTH {
        return;
    }
    let code_node = kid(ann, "code");
    let code = code_node.and_then(|c| attr(c, "code")).unwrap_or("");
    let upper = code.to_ascii_uppercase();
    if upper == "MDC_ECG_BEAT" || upper.starts_with("MDC_ECG_WAVC") {
        return; // per-beat values and fiducial points
    }
    let per_lead = all_at(ann, &["support", "supportingROI", "component", "boundary"])
        .into_iter()
        .filter_map(code_of)
        .any(|c| c.to_ascii_uppercase().contains("ECG_LEAD_"));
    if per_lead {
        return;
    }
    let value = kid(ann, "value");
    if is_statement_code(&upper) {
        if let Some(v) = value {
            let text = text_of(v)
                .or_else(|| attr(v, "displayName").map(str::to_owned))
                .or_else(|| attr(v, "code").map(str::to_owned));
            if let Some(t) = text
                && !statements.contains(&t)
            {
                statements.push(t);
            }
        }
    } else if let Some(v) = value
        && let Some(c) = code_node
        && !code.is_empty()
        && let Some(x) = attr(v, "value").and_then(number)
        && !measurements.iter().any(|m| m.code == code)
    {
        let scheme = match attr(c, "codeSystem") {
            Some(MDC_OID) => "MDC".to_owned(),
            Some(other) => attr(c, "codeSystemName").unwrap_or(other).to_owned(),
            None => attr(c, "codeSystemName").unwrap_or("").to_owned(),
        };
        let meaning = attr(c, "displayName")
            .map(str::to_owned)
            .unwrap_or_else(|| mdc_meaning(code).unwrap_or(code).to_owned());
        measurements.push(Measurement {
            code: code.to_owned(),
            scheme,
            meaning,
            value: x,
            unit: attr(v, "unit").unwrap_or("").to_owned(),
        });
    }
    for sub in all_at(ann, &["component", "annotation"]) {
        walk_annotation(sub, depth + 1, measurements, statements);
    }
}

/// Meanings of the common MDC global measurements (with or without the `_GL` suffix).
fn mdc_meaning(code: &str) -> Option<&'static str> {
    let c = code.strip_suffix("_GL").unwrap_or(code);
    Some(match c {
        "MDC_ECG_HEART_RATE" => "Heart Rate",
        "MDC_ECG_TIME_PD_RR" => "RR Interval",
        "MDC_ECG_TIME_PD_PP" => "PP Interval",
        "MDC_ECG_TIME_PD_P" => "P Duration",
        "MDC_ECG_TIME_PD_PR" => "PR Interval",
        "MDC_ECG_TIME_PD_PQ" => "PQ Interval",
        "MDC_ECG_TIME_PD_QRS" => "QRS Duration",
        "MDC_ECG_TIME_PD_QT" => "QT Interval",
        "MDC_ECG_TIME_PD_QTc" => "QTc Interval",
        "MDC_ECG_TIME_PD_QTcB" => "QTc Interval (Bazett)",
        "MDC_ECG_TIME_PD_QTcF" => "QTc Interval (Fridericia)",
        "MDC_ECG_ANGLE_P_FRONT" => "P Axis",
        "MDC_ECG_ANGLE_QRS_FRONT" => "QRS Axis",
        "MDC_ECG_ANGLE_T_FRONT" => "T Axis",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prolog_is_skipped() {
        let doc = "\u{feff}<?xml version=\"1.0\"?>\n<!-- a -- comment -->\n<?pi x?>\n<hl7:AnnotatedECG xmlns:hl7=\"urn:hl7-org:v3\">";
        assert!(looks_like_aecg(doc.as_bytes()));
        assert!(!looks_like_aecg(b"<?xml version=\"1.0\"?><AnnotatedECGX/>"));
        assert!(!looks_like_aecg(b"{\"leads\":{}}"));
        assert!(!looks_like_aecg(b""));
        let with_dtd = "<!DOCTYPE AnnotatedECG [<!ENTITY a \"<b>\">]><AnnotatedECG/>";
        let p = scan_prolog(with_dtd).expect("prolog");
        assert!(p.doctype);
        assert_eq!(p.root_qname, "AnnotatedECG");
    }

    #[test]
    fn declared_encoding_is_found() {
        assert_eq!(
            declared_encoding(b"<?xml version='1.0' encoding='GBK'?><a/>"),
            Some("GBK")
        );
        assert_eq!(declared_encoding(b"<?xml version=\"1.0\"?><a/>"), None);
    }

    #[test]
    fn lead_codes() {
        assert_eq!(lead_code("MDC_ECG_LEAD_I"), LeadCode::I);
        assert_eq!(lead_code("MDC_ECG_LEAD_AVR"), LeadCode::AVR);
        assert_eq!(lead_code("MDC_ECG_LEAD_aVF"), LeadCode::AVF);
        assert_eq!(lead_code("MINDRAY_ECG_LEAD_V2"), LeadCode::V2);
        assert_eq!(
            lead_code("MDC_ECG_LEAD_AVRNEG"),
            LeadCode::Other("-aVR".into())
        );
        assert_eq!(lead_code("MDC_ECG_LEAD_V4R"), LeadCode::Other("V4R".into()));
        assert_eq!(lead_code("ECG I"), LeadCode::Other("ECG I".into()));
    }
}
