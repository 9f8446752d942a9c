//! Format detection by content sniffing (never by file name) and dispatch to the readers.
//!
//! | format     | recognised by                                                        |
//! |------------|----------------------------------------------------------------------|
//! | `dicom`    | `DICM` at offset 128 (Part 10 with preamble) or at offset 0          |
//! | `scp-ecg`  | record length at bytes 2–5 and `SCPECG` in section 0's header (16)   |
//! | `hl7-aecg` | an XML document whose root element is `AnnotatedECG`                 |
//! | `json`     | a JSON object (first non-blank byte `{`): the device form of `json`  |
//! | `csv`      | a header line first (`#`) and `#sample_rate_hz` among the first lines: the form of `csv` |
//!
//! Input that matches none is [`ReadError::Unsupported`] (HTTP 415); input that matches
//! one but that its reader rejects is [`ReadError::Malformed`] (HTTP 422) with the reader's
//! precise message.

use crate::model::Ecg;
use crate::{aecg, csv, dicom, json, scp};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Dicom,
    ScpEcg,
    Hl7Aecg,
    Json,
    Csv,
}

impl Format {
    /// The name used in API responses and the index.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Dicom => "dicom",
            Format::ScpEcg => "scp-ecg",
            Format::Hl7Aecg => "hl7-aecg",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }

    /// Media type of the original bytes.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Dicom => "application/dicom",
            Format::ScpEcg => "application/octet-stream",
            Format::Hl7Aecg => "application/xml",
            Format::Json => "application/json",
            Format::Csv => "text/csv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "unrecognised ECG format (expected DICOM ECG waveform, SCP-ECG, HL7 aECG XML, the JSON form or the CSV form); the content starts with {0}"
    )]
    Unsupported(String),
    #[error("{format}: {message}")]
    Malformed { format: Format, message: String },
}

/// The format of `bytes`, from their content alone.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    if (bytes.len() >= 132 && &bytes[128..132] == b"DICM") || bytes.starts_with(b"DICM") {
        return Some(Format::Dicom);
    }
    if scp::looks_like_scp(bytes) {
        return Some(Format::ScpEcg);
    }
    if aecg::looks_like_aecg(bytes) {
        return Some(Format::Hl7Aecg);
    }
    if json::looks_like_json_ecg(bytes) {
        return Some(Format::Json);
    }
    if csv::looks_like_csv_ecg(bytes) {
        return Some(Format::Csv);
    }
    None
}

/// Detect and read.
pub fn read(bytes: &[u8]) -> Result<(Format, Ecg), ReadError> {
    let format = detect(bytes).ok_or_else(|| ReadError::Unsupported(describe_start(bytes)))?;
    let malformed = |message: String| ReadError::Malformed { format, message };
    let ecg = match format {
        Format::Dicom => dicom::read_dicom(bytes).map_err(|e| malformed(e.to_string()))?,
        Format::ScpEcg => scp::read_scp(bytes).map_err(|e| malformed(e.to_string()))?,
        Format::Hl7Aecg => aecg::read_aecg(bytes).map_err(|e| malformed(e.to_string()))?,
        Format::Json => json::read_json(bytes).map_err(|e| malformed(e.to_string()))?,
        Format::Csv => csv::read_csv(bytes).map_err(|e| malformed(e.to_string()))?,
    };
    if ecg.leads.is_empty() || ecg.samples_per_lead() == 0 {
        return Err(malformed("no samples".into()));
    }
    Ok((format, ecg))
}

/// The first bytes, for the error message: printable ASCII as text, otherwise hex.
fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing (the body is empty)".into();
    }
    let head = &bytes[..bytes.len().min(16)];
    if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(head))
    } else {
        let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
        format!("bytes {}", hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_content_is_unsupported_with_its_start() {
        let e = read(b"%PDF-1.7 ...").unwrap_err();
        assert!(matches!(e, ReadError::Unsupported(_)));
        assert!(e.to_string().contains("%PDF-1.7"), "{e}");
        let e = read(&[0u8, 1, 2, 0xff]).unwrap_err();
        assert!(e.to_string().contains("bytes 00 01 02 ff"), "{e}");
        assert!(read(b"").unwrap_err().to_string().contains("empty"));
    }

    #[test]
    fn dicom_is_detected_with_and_without_preamble() {
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        assert_eq!(detect(&b), Some(Format::Dicom));
        assert_eq!(detect(b"DICM\x02\x00"), Some(Format::Dicom));
        // broken DICOM is malformed, not unsupported
        let e = read(&b).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::Malformed {
                    format: Format::Dicom,
                    ..
                }
            ),
            "{e}"
        );
    }
}
