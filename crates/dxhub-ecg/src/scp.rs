//! SCP-ECG reader (EN 1064 / ISO 11073-91064; protocol versions 1.x, 2.x and the 3.0 draft as
//! far as they differ) into [`Ecg`].
//!
//! A record is a CRC (CRC-CCITT, polynomial 0x1021, initial value 0xFFFF, of every byte after
//! it), the record length, then sections: each a 16-byte header (CRC of the section after its
//! first two bytes, section number, length, section and protocol versions, six reserved bytes,
//! "SCPECG" in section 0) and its body. Section 0 points to the others (number, length,
//! 1-based byte index). Every CRC is checked; a mismatch is an error.
//!
//! What is read:
//! - section 1 (header tags): last/first/second last name → `Patient::name` as a DICOM PN
//!   (`Last^First`), patient ID (2), birth date (5) → `YYYYMMDD`, sex (8: 1 → `M`, 2 → `F`,
//!   9 → `O`), acquiring device (14: manufacturer code, model, serial number, trade name),
//!   acquisition date (25) and time (26) → `YYYYMMDDHHMMSS`, with the offset of tag 34 as
//!   `+HHMM` when stated; baseline filter (27, 0.01 Hz) → `Filters::low_hz`, low-pass filter
//!   (28, Hz) → `Filters::high_hz`, filter bitmap (29: bit 0 60 Hz notch, bit 1 50 Hz notch).
//!   Text (here and in the statements of sections 8 and 11) is in the character set that
//!   the language support code of tag 14 (its byte 17) states: 0x01 ISO 8859-1, 0x03 8859-2,
//!   0x0B 8859-4, 0x13 8859-5, 0x1B 8859-6, 0x23 8859-7, 0x2B 8859-8, 0x33 8859-11, 0x3B
//!   8859-15, 0x0F/0x17/0x1F JIS (read as EUC-JP), 0x27 GB 2312 (read as GB18030, its
//!   superset), 0x2F KS C 5601 (EUC-KR), 0x37 UTF-8. With no code, "ASCII only" (bit 0
//!   clear) or a code not listed, text is UTF-8 when valid, else GB18030 when it decodes
//!   without error (what Chinese devices write without saying so), else Latin-1.
//! - section 2: Huffman tables, the default table (19999) or stored tables with switching
//!   (see [`huffman`]). Without section 2 the data are 16-bit little-endian samples.
//! - section 3: leads (SCP lead codes = MDC partition 2 indices, mapped by
//!   [`LeadCode::from_mdc_index`]: 1 = I, 2 = II, 3–8 = V1–V6, 61–64 = III, aVR, aVL, aVF…;
//!   0, "unspecified", becomes `SCP lead 0`), their first/last sample numbers and the flag
//!   "reference beat subtracted". Leads with different sample ranges are placed on one time
//!   axis, the samples outside a lead's range being 0 µV.
//! - section 4 (QRS subtraction and protected zones) and section 5 (reference beat: AVM,
//!   sample interval, difference encoding), when the reference beat was subtracted or bimodal
//!   compression was used; the reference beat is added back in the subtraction zone of every
//!   type 0 QRS, aligned on its fiducial point, with its own AVM. A reference beat whose sample
//!   interval is an integer multiple (2–16) of the rhythm's is upsampled by linear
//!   interpolation before the addition.
//! - section 6: rhythm data (AVM in nV, sample interval in µs, difference encoding 0/1/2,
//!   bimodal flag, bytes per lead). Bimodal compression (versions 1.x/2.x): the rhythm's sample
//!   interval is `k` (2–16) times the reference beat's; outside the protected zones of section
//!   4 each stored value stands for `k` samples. They are expanded as the SCP-AV decoder of the
//!   standard's authors (used by biosig) does: linear interpolation between block centres, then
//!   a 3-sample moving average outside the protected zones (see [`reconstruct`]); the result is
//!   at the reference beat's rate. In version 3 byte 6 of section 6 is not a bimodal flag.
//! - section 12 (version 3 long-term rhythm data): multiplexed samples of 1–4 bytes with an AVM
//!   per lead, laid out as biosig writes and reads it (70-byte header: sampling rate, lead
//!   count, samples per lead, bytes per sample…, then 4 bytes per lead: lead code, AVM). Used
//!   when section 6 is absent.
//! - section 7 (global measurements of reference beat type 0): P onset/offset, QRS onset/offset,
//!   T offset (ms from the start of the reference beat), P/QRS/T axes (°), average RR and PP
//!   intervals, and ventricular rate, atrial rate and QTc when present, coded as DICOM codes
//!   them (scheme `SCPECG`: `5.10.3-1`… `5.10.2.1-3`, `5.10.2.5-1`…); PR interval, QRS duration,
//!   QT interval and P duration are derived from the onsets and offsets (`5.13.5-7`, `-9`, `-11`,
//!   `-5`). Values 19999 and above (not computed, rejected) are skipped.
//! - sections 8 and 11: the interpretation statements, section 8's then section 11's (coded
//!   statements as their text fields joined by spaces).
//!
//! Samples in µV = value × AVM (nV) / 1000. Limb leads are not derived: the model leaves
//! [`crate::model::derive_limb_leads`] to the caller (as the DICOM reader does). Every length
//! is checked against the bytes received before anything is allocated from it; nothing panics
//! on hostile input.

pub mod huffman;
pub mod reconstruct;

use crate::model::{Device, Ecg, Filters, Lead, LeadCode, Measurement, Patient};
use huffman::Tables;
use reconstruct::Beat;

#[derive(Debug, thiserror::Error)]
pub enum ScpError {
    #[error("{len} bytes are too few for an SCP-ECG record (at least {min})")]
    TooShort { len: usize, min: usize },
    #[error("record length {declared} exceeds the {received} bytes received")]
    RecordTooLong { declared: u64, received: usize },
    #[error("record length {declared} is shorter than the {min} bytes of a record with section 0")]
    RecordTooShort { declared: u64, min: usize },
    #[error("record CRC mismatch (stored {stored:#06x}, computed {computed:#06x})")]
    RecordCrc { stored: u16, computed: u16 },
    #[error("section {section}: CRC mismatch (stored {stored:#06x}, computed {computed:#06x})")]
    SectionCrc {
        section: u16,
        stored: u16,
        computed: u16,
    },
    #[error("section {section} is missing: {why}")]
    Missing { section: u16, why: &'static str },
    #[error("section {section}: {detail}")]
    Invalid { section: u16, detail: String },
    #[error("section {section}: not supported: {detail}")]
    Unsupported { section: u16, detail: String },
    #[error("no rhythm data: the record has neither section 6 nor section 12")]
    NoRhythm,
}

type Result<T, E = ScpError> = std::result::Result<T, E>;

/// Bytes 11–16 of section 0's header, at offset 16 of the record.
const MAGIC: &[u8; 6] = b"SCPECG";
/// Record header (CRC + length) and section header sizes.
const RECORD_HEADER: usize = 6;
const SECTION_HEADER: usize = 16;

/// Cheap content sniff: "SCPECG" in section 0's header at offset 16, section 0 numbered 0,
/// and a record length at bytes 2..6 that is the input's length or at least a plausible one
/// (header and section 0 fit in it; a truncated record still sniffs as SCP and fails in
/// [`read_scp`] with a precise error). CRCs are checked by [`read_scp`], not here.
pub fn looks_like_scp(bytes: &[u8]) -> bool {
    if bytes.len() < RECORD_HEADER + SECTION_HEADER || &bytes[16..22] != MAGIC {
        return false;
    }
    let declared = le32(bytes, 2) as usize;
    let section_id = le16(bytes, 8);
    section_id == 0
        && (declared == bytes.len()
            || (RECORD_HEADER + SECTION_HEADER..=1 << 30).contains(&declared))
}

/// Read an SCP-ECG record.
pub fn read_scp(bytes: &[u8]) -> Result<Ecg> {
    let record = Record::parse(bytes)?;
    let version = record.protocol_version();

    let header = match record.body(1) {
        Some(body) => parse_section1(body)?,
        None => Header::default(),
    };
    let tables = record.body(2).map(Tables::parse).transpose()?;
    let leads = match record.body(3) {
        Some(body) => Some(parse_section3(body)?),
        None => None,
    };

    let mut ecg = if let Some(body6) = record.body(6) {
        let leads = leads.ok_or(ScpError::Missing {
            section: 3,
            why: "section 6 needs the lead definitions",
        })?;
        rhythm_from_section6(&record, body6, &leads, tables.as_ref(), version)?
    } else if let Some(body12) = record.body(12) {
        rhythm_from_section12(body12)?
    } else {
        return Err(ScpError::NoRhythm);
    };

    ecg.filters = header.filters;
    ecg.patient = header.patient;
    ecg.device = header.device;
    ecg.acquired_at = header.acquired_at;
    ecg.has_median_beats = record.body(5).is_some_and(|b| !b.is_empty());
    if let Some(body) = record.body(7) {
        ecg.device_measurements = parse_section7(body);
    }
    let mut statements = Vec::new();
    for id in [8u16, 11] {
        if let Some(body) = record.body(id) {
            for s in parse_statements(body, id == 11, header.charset) {
                if !statements.contains(&s) {
                    statements.push(s);
                }
            }
        }
    }
    ecg.statements = statements;
    Ok(ecg)
}

// ---------------------------------------------------------------------------------------------
// Record and sections

/// CRC-CCITT as SCP-ECG uses it (CRC-16/CCITT-FALSE: polynomial 0x1021, initial 0xFFFF).
pub fn crc_ccitt(data: &[u8]) -> u16 {
    CRC_CCITT.checksum(data)
}

/// CRC-CCITT as SCP-ECG uses it: polynomial 0x1021, initial value 0xFFFF, no reflection,
/// no final XOR (the `crc` crate's CRC-16/IBM-3740, a.k.a. CCITT-FALSE; table driven).
const CRC_CCITT: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);

fn le16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

struct Section<'a> {
    id: u16,
    /// Section version (header byte 9) and protocol version (byte 10).
    section_version: u8,
    protocol_version: u8,
    /// The bytes after the 16-byte header.
    body: &'a [u8],
}

struct Record<'a> {
    section0_protocol: u8,
    sections: Vec<Section<'a>>,
}

impl<'a> Record<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Record<'a>> {
        let min = RECORD_HEADER + SECTION_HEADER;
        if bytes.len() < RECORD_HEADER {
            return Err(ScpError::TooShort {
                len: bytes.len(),
                min,
            });
        }
        let declared = u64::from(le32(bytes, 2));
        if declared > bytes.len() as u64 {
            return Err(ScpError::RecordTooLong {
                declared,
                received: bytes.len(),
            });
        }
        if declared < min as u64 {
            return Err(ScpError::RecordTooShort { declared, min });
        }
        let rec = &bytes[..declared as usize];
        let stored = le16(rec, 0);
        let computed = crc_ccitt(&rec[2..]);
        if stored != computed {
            return Err(ScpError::RecordCrc { stored, computed });
        }

        // Section 0 at byte 7 (offset 6).
        let s0 = section_at(
            rec,
            0,
            RECORD_HEADER,
            u64::from(le32(rec, RECORD_HEADER + 4)),
        )?;
        if s0.id != 0 {
            return Err(ScpError::Invalid {
                section: 0,
                detail: format!("the first section is numbered {}", s0.id),
            });
        }
        let section0_protocol = s0.protocol_version;
        let mut sections: Vec<Section<'a>> = Vec::new();
        for (i, entry) in s0.body.chunks_exact(10).enumerate() {
            let id = le16(entry, 0);
            let length = u64::from(le32(entry, 2));
            let index = u64::from(le32(entry, 6));
            if length == 0 || id == 0 {
                continue;
            }
            if index == 0 {
                return Err(ScpError::Invalid {
                    section: 0,
                    detail: format!("pointer {i} to section {id} has index 0 (indices start at 1)"),
                });
            }
            if sections.iter().any(|s| s.id == id) {
                return Err(ScpError::Invalid {
                    section: 0,
                    detail: format!("section {id} is listed twice"),
                });
            }
            let s = section_at(rec, id, (index - 1).min(usize::MAX as u64) as usize, length)?;
            sections.push(s);
        }
        Ok(Record {
            section0_protocol,
            sections,
        })
    }

    fn body(&self, id: u16) -> Option<&'a [u8]> {
        self.sections.iter().find(|s| s.id == id).map(|s| s.body)
    }

    fn section(&self, id: u16) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// Protocol version ×10 (10–13 for 1.x, 20 for 2.x, 29/30 for 3.0): section 0's, or the
    /// highest of the other sections' when section 0 states none.
    fn protocol_version(&self) -> u8 {
        if self.section0_protocol != 0 {
            return self.section0_protocol;
        }
        self.sections
            .iter()
            .map(|s| s.protocol_version.max(s.section_version))
            .max()
            .unwrap_or(0)
    }
}

/// The section `id` at byte offset `start` with the length stated by the pointer, checked
/// against the record, its own header and its CRC.
fn section_at(rec: &[u8], id: u16, start: usize, length: u64) -> Result<Section<'_>> {
    if length < SECTION_HEADER as u64 {
        return Err(ScpError::Invalid {
            section: id,
            detail: format!("length {length} is shorter than the 16-byte section header"),
        });
    }
    let end = start as u64 + length;
    if end > rec.len() as u64 {
        return Err(ScpError::Invalid {
            section: id,
            detail: format!(
                "bytes {}..{end} run past the end of the {}-byte record",
                start + 1,
                rec.len()
            ),
        });
    }
    let s = &rec[start..end as usize];
    let header_id = le16(s, 2);
    if header_id != id {
        return Err(ScpError::Invalid {
            section: id,
            detail: format!("the section found there is numbered {header_id}"),
        });
    }
    let header_len = u64::from(le32(s, 4));
    if header_len != length {
        return Err(ScpError::Invalid {
            section: id,
            detail: format!(
                "its header states {header_len} bytes, section 0 points to {length} bytes"
            ),
        });
    }
    let stored = le16(s, 0);
    let computed = crc_ccitt(&s[2..]);
    if stored != computed {
        return Err(ScpError::SectionCrc {
            section: id,
            stored,
            computed,
        });
    }
    Ok(Section {
        id,
        section_version: s[8],
        protocol_version: s[9],
        body: &s[SECTION_HEADER..],
    })
}

// ---------------------------------------------------------------------------------------------
// Section 1

#[derive(Debug, Default)]
struct Header {
    patient: Patient,
    device: Device,
    filters: Filters,
    acquired_at: Option<String>,
    charset: Charset,
}

/// The character set of a record's text, from the language support code of tag 14.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Charset {
    /// No code, "ASCII only" or a code not known: UTF-8, GB18030 or Latin-1, the first that
    /// decodes the bytes.
    #[default]
    Unstated,
    Latin1,
    Stated(&'static encoding_rs::Encoding),
}

impl Charset {
    fn from_language_support_code(code: u8) -> Self {
        use encoding_rs as e;
        if code & 0x01 == 0 {
            return Charset::Unstated;
        }
        if code & 0x03 == 0x01 {
            return Charset::Latin1;
        }
        Charset::Stated(match code {
            0x03 => e::ISO_8859_2,
            0x0B => e::ISO_8859_4,
            0x13 => e::ISO_8859_5,
            0x1B => e::ISO_8859_6,
            0x23 => e::ISO_8859_7,
            0x2B => e::ISO_8859_8,
            // windows-874 is ISO 8859-11 with a few more characters in 0x80–0x9F
            0x33 => e::WINDOWS_874,
            0x3B => e::ISO_8859_15,
            0x0F | 0x17 | 0x1F => e::EUC_JP,
            0x27 => e::GB18030,
            0x2F => e::EUC_KR,
            0x37 => e::UTF_8,
            _ => return Charset::Unstated,
        })
    }

    /// The language support code of section 1's tag 14, when present; a malformed section
    /// is left for [`parse_section1`] to report.
    fn of_section1(body: &[u8]) -> Self {
        let mut pos = 0usize;
        while pos + 3 <= body.len() && body[pos] != 255 {
            let len = usize::from(le16(body, pos + 1));
            let Some(v) = body.get(pos + 3..pos + 3 + len) else {
                break;
            };
            if body[pos] == 14 {
                return v
                    .get(16)
                    .map_or(Charset::Unstated, |c| Self::from_language_support_code(*c));
            }
            pos += 3 + len;
        }
        Charset::Unstated
    }

    fn decode(self, bytes: &[u8]) -> String {
        let latin1 = |b: &[u8]| b.iter().map(|&b| char::from(b)).collect::<String>();
        match self {
            Charset::Latin1 => latin1(bytes),
            Charset::Stated(enc) => enc.decode_without_bom_handling(bytes).0.into_owned(),
            Charset::Unstated => match std::str::from_utf8(bytes) {
                Ok(s) => s.to_owned(),
                Err(_) => encoding_rs::GB18030
                    .decode_without_bom_handling_and_without_replacement(bytes)
                    .map_or_else(|| latin1(bytes), |s| s.into_owned()),
            },
        }
    }
}

/// Manufacturer codes of tag 14, byte 8.
const MANUFACTURERS: &[&str] = &[
    "",
    "Burdick",
    "Cambridge",
    "Compumed",
    "Datamed",
    "Fukuda",
    "Hewlett-Packard",
    "Marquette Electronics",
    "Mortara Instruments",
    "Nihon Kohden",
    "Okin",
    "Quinton",
    "Siemens",
    "Spacelabs",
    "Telemed",
    "Hellige",
    "ESA-OTE",
    "Schiller",
    "Picker-Schwarzer",
    "Elettronica-Trentina",
    "Zwönitz",
];

/// Text of a field: up to the first NUL, in `cs`; trimmed; `None` when empty.
fn text(bytes: &[u8], cs: Charset) -> Option<String> {
    let bytes = bytes.split(|b| *b == 0).next().unwrap_or(&[]);
    let s = cs.decode(bytes);
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn parse_section1(body: &[u8]) -> Result<Header> {
    let cs = Charset::of_section1(body);
    let text = |v: &[u8]| text(v, cs);
    let mut h = Header {
        charset: cs,
        ..Header::default()
    };
    let (mut last, mut first, mut second_last) = (None, None, None);
    let mut date: Option<(u16, u8, u8)> = None;
    let mut time: Option<(u8, u8, u8)> = None;
    let mut tz: Option<i16> = None;
    let mut pos = 0usize;
    while pos < body.len() {
        let tag = body[pos];
        if tag == 255 {
            break;
        }
        if pos + 3 > body.len() {
            return Err(ScpError::Invalid {
                section: 1,
                detail: format!("tag {tag} at byte {pos} has no length"),
            });
        }
        let len = usize::from(le16(body, pos + 1));
        let Some(v) = body.get(pos + 3..pos + 3 + len) else {
            return Err(ScpError::Invalid {
                section: 1,
                detail: format!(
                    "tag {tag} at byte {pos} declares {len} bytes, only {} remain",
                    body.len() - pos - 3
                ),
            });
        };
        pos += 3 + len;
        match tag {
            0 => last = text(v),
            1 => first = text(v),
            2 => h.patient.id = text(v),
            3 => second_last = text(v),
            5 if v.len() >= 4 => {
                let (y, m, d) = (le16(v, 0), v[2], v[3]);
                if y != 0 && (1..=12).contains(&m) && (1..=31).contains(&d) {
                    h.patient.birth_date = Some(format!("{y:04}{m:02}{d:02}"));
                }
            }
            8 if !v.is_empty() => {
                h.patient.sex = match v[0] {
                    1 => Some("M".into()),
                    2 => Some("F".into()),
                    9 => Some("O".into()),
                    _ => None,
                }
            }
            14 => parse_device(v, &mut h.device, cs),
            25 if v.len() >= 4 => {
                let (y, m, d) = (le16(v, 0), v[2], v[3]);
                if y != 0 && (1..=12).contains(&m) && (1..=31).contains(&d) {
                    date = Some((y, m, d));
                }
            }
            26 if v.len() >= 3 && v[0] < 24 && v[1] < 60 && v[2] < 61 => {
                time = Some((v[0], v[1], v[2]));
            }
            27 if v.len() >= 2 => {
                let centi_hz = le16(v, 0);
                if centi_hz != 0 && centi_hz != 0xFFFF {
                    h.filters.low_hz = Some(f64::from(centi_hz) / 100.0);
                }
            }
            28 if v.len() >= 2 => {
                let hz = le16(v, 0);
                if hz != 0 && hz != 0xFFFF {
                    h.filters.high_hz = Some(f64::from(hz));
                }
            }
            29 if !v.is_empty() => {
                h.filters.notch_hz = if v[0] & 0x01 != 0 {
                    Some(60.0)
                } else if v[0] & 0x02 != 0 {
                    Some(50.0)
                } else {
                    None
                }
            }
            34 if v.len() >= 2 => {
                let offset = i16::from_le_bytes([v[0], v[1]]);
                if offset != 0x7FFF && offset.abs() <= 24 * 60 {
                    tz = Some(offset);
                }
            }
            _ => {}
        }
    }
    let mut family = last.unwrap_or_default();
    if let Some(s) = second_last {
        if !family.is_empty() {
            family.push(' ');
        }
        family.push_str(&s);
    }
    h.patient.name = match (family.is_empty(), first) {
        (true, None) => None,
        (_, None) => Some(family),
        (_, Some(f)) => Some(format!("{family}^{f}")),
    };
    h.acquired_at = date.map(|(y, m, d)| {
        let mut s = format!("{y:04}{m:02}{d:02}");
        if let Some((hh, mm, ss)) = time {
            s.push_str(&format!("{hh:02}{mm:02}{ss:02}"));
            if let Some(tz) = tz {
                let sign = if tz < 0 { '-' } else { '+' };
                let a = tz.unsigned_abs();
                s.push_str(&format!("{sign}{:02}{:02}", a / 60, a % 60));
            }
        }
        s
    });
    Ok(h)
}

/// Tag 14, acquiring device: bytes 1–2 institution, 3–4 department, 5–6 device ID, 7 type,
/// 8 manufacturer code, 9–14 model description, 15 protocol revision, 16 compatibility level,
/// 17 language support, 18 capabilities, 19 mains frequency, 20–35 reserved, 36 length of the
/// analysing program revision string, then that string and NUL-terminated serial number,
/// system software ID, SCP implementation software ID and manufacturer trade name.
fn parse_device(v: &[u8], device: &mut Device, cs: Charset) {
    if v.len() < 14 {
        return;
    }
    device.model = text(&v[8..14], cs);
    let code = usize::from(v[7]);
    let mut strings: Vec<Option<String>> = Vec::new();
    if v.len() > 35 {
        let rev_len = usize::from(v[35]);
        let mut pos = (36 + rev_len).min(v.len());
        // When the length byte is 0 but a NUL-terminated revision follows, the serial number
        // still starts after that string: step over it only if the length says so.
        while pos < v.len() && strings.len() < 4 {
            let end = v[pos..]
                .iter()
                .position(|b| *b == 0)
                .map_or(v.len(), |e| pos + e);
            strings.push(text(&v[pos..end], cs));
            pos = end + 1;
        }
    }
    device.serial = strings.first().cloned().flatten();
    let trade_name = strings.get(3).cloned().flatten();
    device.manufacturer = trade_name.or_else(|| {
        MANUFACTURERS
            .get(code)
            .filter(|n| !n.is_empty())
            .map(|n| (*n).to_owned())
    });
}

// ---------------------------------------------------------------------------------------------
// Section 3

#[derive(Debug, Clone)]
struct LeadDef {
    /// First and last sample numbers (1-based).
    start: u64,
    end: u64,
    code: u8,
}

#[derive(Debug, Clone)]
struct Leads {
    defs: Vec<LeadDef>,
    reference_beat_subtracted: bool,
}

fn parse_section3(body: &[u8]) -> Result<Leads> {
    let err = |detail: String| ScpError::Invalid { section: 3, detail };
    if body.len() < 2 {
        return Err(err("no lead count".into()));
    }
    let n = usize::from(body[0]);
    if n == 0 {
        return Err(err("0 leads".into()));
    }
    if 2 + 9 * n > body.len() {
        return Err(err(format!(
            "{n} leads need {} bytes, the section has {}",
            2 + 9 * n,
            body.len()
        )));
    }
    let flags = body[1];
    let defs = body[2..2 + 9 * n]
        .chunks_exact(9)
        .enumerate()
        .map(|(i, c)| {
            let (start, end) = (u64::from(le32(c, 0)), u64::from(le32(c, 4)));
            if start == 0 || end < start {
                return Err(err(format!(
                    "lead {}: sample range {start}..{end} is empty or starts at 0",
                    i + 1
                )));
            }
            Ok(LeadDef {
                start,
                end,
                code: c[8],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Leads {
        defs,
        reference_beat_subtracted: flags & 0x01 != 0,
    })
}

fn lead_code(code: u8) -> LeadCode {
    if code == 0 {
        LeadCode::Other("SCP lead 0".into())
    } else {
        LeadCode::from_mdc_index(u32::from(code))
    }
}

// ---------------------------------------------------------------------------------------------
// Sections 4, 5, 6

struct QrsLocations {
    /// Length of the reference beat in ms.
    reference_ms: u16,
    /// 1-based sample of the reference beat's fiducial point.
    fiducial: u16,
    beats: Vec<Beat>,
}

fn parse_section4(body: &[u8]) -> Result<QrsLocations> {
    let err = |detail: String| ScpError::Invalid { section: 4, detail };
    if body.len() < 6 {
        return Err(err(format!("{} bytes, at least 6 expected", body.len())));
    }
    let reference_ms = le16(body, 0);
    let fiducial = le16(body, 2);
    let n = usize::from(le16(body, 4));
    if 6 + 14 * n > body.len() {
        return Err(err(format!(
            "{n} QRS complexes need {} bytes, the section has {}",
            6 + 14 * n,
            body.len()
        )));
    }
    // Protected zones follow (8 bytes each) from version 1.3 on; earlier records use the
    // subtraction zones.
    let with_protected = 6 + 22 * n <= body.len();
    let mut beats = Vec::with_capacity(n);
    for i in 0..n {
        let at = 6 + 14 * i;
        let (kind, sb, fc, se) = (
            le16(body, at),
            u64::from(le32(body, at + 2)),
            u64::from(le32(body, at + 6)),
            u64::from(le32(body, at + 10)),
        );
        let (qb, qe) = if with_protected {
            let at = 6 + 14 * n + 8 * i;
            (u64::from(le32(body, at)), u64::from(le32(body, at + 4)))
        } else {
            (sb, se)
        };
        beats.push(Beat {
            kind,
            sb,
            fc,
            se,
            qb,
            qe,
        });
    }
    Ok(QrsLocations {
        reference_ms,
        fiducial,
        beats,
    })
}

/// The common header of sections 5 and 6 and the per-lead data.
struct Encoded<'a> {
    avm_nv: u16,
    interval_us: u16,
    difference: u8,
    byte6: u8,
    data: Vec<&'a [u8]>,
}

fn parse_encoded(section: u16, body: &[u8], n_leads: usize) -> Result<Encoded<'_>> {
    let err = |detail: String| ScpError::Invalid { section, detail };
    let head = 6 + 2 * n_leads;
    if body.len() < head {
        return Err(err(format!(
            "{} bytes cannot hold the header and the byte counts of {n_leads} leads",
            body.len()
        )));
    }
    let avm_nv = le16(body, 0);
    let interval_us = le16(body, 2);
    let difference = body[4];
    let byte6 = body[5];
    if avm_nv == 0 {
        return Err(err("amplitude value multiplier is 0 nV".into()));
    }
    if interval_us == 0 {
        return Err(err("sample time interval is 0 µs".into()));
    }
    if difference > 2 {
        return Err(err(format!(
            "difference encoding {difference} (0, 1 or 2 expected)"
        )));
    }
    let mut data = Vec::with_capacity(n_leads);
    let mut pos = head;
    for i in 0..n_leads {
        let n = usize::from(le16(body, 6 + 2 * i));
        let Some(d) = body.get(pos..pos + n) else {
            return Err(err(format!(
                "lead {}: {n} bytes of data run past the end of the section ({} bytes left)",
                i + 1,
                body.len().saturating_sub(pos)
            )));
        };
        data.push(d);
        pos += n;
    }
    Ok(Encoded {
        avm_nv,
        interval_us,
        difference,
        byte6,
        data,
    })
}

/// Decode `count` values of one lead: Huffman with `tables`, else 16-bit little-endian.
fn decode_lead(
    section: u16,
    lead: usize,
    data: &[u8],
    count: u64,
    tables: Option<&Tables>,
) -> Result<Vec<i64>> {
    match tables {
        Some(t) => {
            if count > data.len() as u64 * 8 {
                return Err(ScpError::Invalid {
                    section,
                    detail: format!(
                        "lead {lead}: {count} samples cannot fit in {} bytes of Huffman-coded data",
                        data.len()
                    ),
                });
            }
            t.decode(data, count as usize, section, lead)
        }
        None => {
            if count > data.len() as u64 / 2 {
                return Err(ScpError::Invalid {
                    section,
                    detail: format!(
                        "lead {lead}: {count} samples need {} bytes, {} stored",
                        count * 2,
                        data.len()
                    ),
                });
            }
            Ok(data
                .chunks_exact(2)
                .take(count as usize)
                .map(|c| i64::from(i16::from_le_bytes([c[0], c[1]])))
                .collect())
        }
    }
}

/// Linear upsampling by an integer factor: sample `i·k + j` = `v[i] + j·(v[i+1] − v[i])/k`,
/// the last value held.
fn upsample(v: &[f64], k: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len() * k);
    for (i, &a) in v.iter().enumerate() {
        let b = v.get(i + 1).copied().unwrap_or(a);
        for j in 0..k {
            out.push(a + (b - a) * j as f64 / k as f64);
        }
    }
    out
}

fn rhythm_from_section6(
    record: &Record<'_>,
    body6: &[u8],
    leads: &Leads,
    tables: Option<&Tables>,
    version: u8,
) -> Result<Ecg> {
    let n_leads = leads.defs.len();
    let rhythm = parse_encoded(6, body6, n_leads)?;
    let v3 = version >= 25
        || record
            .section(6)
            .is_some_and(|s| s.section_version >= 25 || s.protocol_version >= 25);
    let bimodal_flag = !v3 && rhythm.byte6 == 1;
    let needs_reference = leads.reference_beat_subtracted || bimodal_flag;

    let qrs = if needs_reference {
        let body4 = record.body(4).ok_or(ScpError::Missing {
            section: 4,
            why: if leads.reference_beat_subtracted {
                "section 3 flags reference beat subtraction, which needs the QRS locations"
            } else {
                "section 6 flags bimodal compression, which needs the protected zones"
            },
        })?;
        let q = parse_section4(body4)?;
        check_beats(&q.beats)?;
        Some(q)
    } else {
        None
    };
    let reference = if needs_reference {
        let body5 = record.body(5).ok_or(ScpError::Missing {
            section: 5,
            why: if leads.reference_beat_subtracted {
                "section 3 flags reference beat subtraction but the reference beat is absent"
            } else {
                "bimodal compression needs the full sampling interval of the reference beat"
            },
        })?;
        Some(parse_encoded(5, body5, n_leads)?)
    } else {
        None
    };

    // Decimation factor of bimodal compression.
    let mut k = 1u64;
    if bimodal_flag && let Some(r) = &reference {
        if rhythm.interval_us % r.interval_us != 0 {
            return Err(ScpError::Unsupported {
                section: 6,
                detail: format!(
                    "bimodal compression with a sample interval of {} µs that is not a multiple of the reference beat's {} µs",
                    rhythm.interval_us, r.interval_us
                ),
            });
        }
        k = u64::from(rhythm.interval_us / r.interval_us);
        if k > 16 {
            return Err(ScpError::Unsupported {
                section: 6,
                detail: format!("bimodal decimation factor {k} (at most 16)"),
            });
        }
    }
    if !bimodal_flag
        && leads.reference_beat_subtracted
        && let Some(r) = &reference
        && r.interval_us < rhythm.interval_us
    {
        return Err(ScpError::Unsupported {
            section: 6,
            detail: format!(
                "rhythm sample interval {} µs is longer than the reference beat's {} µs without bimodal compression",
                rhythm.interval_us, r.interval_us
            ),
        });
    }
    let out_interval_us = if k > 1 {
        reference
            .as_ref()
            .map_or(rhythm.interval_us, |r| r.interval_us)
    } else {
        rhythm.interval_us
    };

    // Every lead on one time axis from the first start to the last end. A lead can't hold
    // more samples than its bytes justify (≥ 1 bit per Huffman value, 2 bytes raw; × k for
    // bimodal), and the axis can't be longer than the leads together.
    let axis_start = leads.defs.iter().map(|d| d.start).min().unwrap_or(1);
    let axis_end = leads.defs.iter().map(|d| d.end).max().unwrap_or(0);
    let mut justified = 0u64;
    for (i, d) in leads.defs.iter().enumerate() {
        let bytes = rhythm.data[i].len() as u64;
        let per_value = if tables.is_some() { 8 } else { 1 };
        let max = bytes
            .saturating_mul(per_value)
            .saturating_div(if tables.is_some() { 1 } else { 2 })
            .saturating_mul(k.max(1))
            .saturating_add(k);
        let count = d.end - d.start + 1;
        if count > max {
            return Err(ScpError::Invalid {
                section: 6,
                detail: format!(
                    "lead {}: section 3 declares {count} samples but its {bytes} bytes of data hold at most {max}",
                    i + 1
                ),
            });
        }
        justified = justified.saturating_add(count);
    }
    // Leads recorded in groups one after the other span more than each holds, but the whole
    // output (every lead over the common axis) stays within 4 times what the leads hold.
    let axis_len = axis_end - axis_start + 1;
    if axis_len.saturating_mul(n_leads as u64) > justified.saturating_mul(4) {
        return Err(ScpError::Invalid {
            section: 3,
            detail: format!(
                "{n_leads} leads spanning samples {axis_start}..{axis_end} would need more than 4 times the {justified} samples they hold"
            ),
        });
    }

    // Reference beat, in nV per lead, at the output rate.
    let mut reference_nv: Option<(Vec<Vec<f64>>, u64)> = None;
    if leads.reference_beat_subtracted
        && let (Some(r), Some(q)) = (&reference, &qrs)
    {
        let samples = u64::from(q.reference_ms) * 1000 / u64::from(r.interval_us);
        if samples == 0 {
            return Err(ScpError::Invalid {
                section: 4,
                detail: format!(
                    "reference beat of {} ms at {} µs per sample has no samples",
                    q.reference_ms, r.interval_us
                ),
            });
        }
        let mut up = 1usize;
        if r.interval_us > out_interval_us {
            if r.interval_us % out_interval_us != 0 || r.interval_us / out_interval_us > 16 {
                return Err(ScpError::Unsupported {
                    section: 5,
                    detail: format!(
                        "reference beat sample interval {} µs is not 2–16 times the rhythm's {} µs",
                        r.interval_us, out_interval_us
                    ),
                });
            }
            up = usize::from(r.interval_us / out_interval_us);
        }
        let mut per_lead = Vec::with_capacity(n_leads);
        for (i, data) in r.data.iter().enumerate() {
            let mut v = decode_lead(5, i + 1, data, samples, tables)?;
            reconstruct::undo_differences(&mut v, r.difference);
            let nv: Vec<f64> = v.iter().map(|&x| x as f64 * f64::from(r.avm_nv)).collect();
            per_lead.push(if up > 1 { upsample(&nv, up) } else { nv });
        }
        let fiducial = (u64::from(q.fiducial).max(1) - 1) * up as u64 + 1;
        reference_nv = Some((per_lead, fiducial));
    }

    let mut out_leads = Vec::with_capacity(n_leads);
    for (i, d) in leads.defs.iter().enumerate() {
        let beats = qrs.as_ref().map_or(&[][..], |q| &q.beats[..]);
        let full = d.end - d.start + 1;
        let stored = if k > 1 {
            reconstruct::bimodal_stored_count(d.start, d.end, beats, k)
        } else {
            full
        };
        let mut v = decode_lead(6, i + 1, rhythm.data[i], stored, tables)?;
        reconstruct::undo_differences(&mut v, rhythm.difference);
        if k > 1 {
            v = reconstruct::bimodal_expand(&v, d.start, d.end, beats, k);
            reconstruct::bimodal_smooth(&mut v, d.start, d.end, beats);
        }
        let mut nv: Vec<f64> = v
            .iter()
            .map(|&x| x as f64 * f64::from(rhythm.avm_nv))
            .collect();
        if let (Some((refs, fiducial)), Some(q)) = (&reference_nv, &qrs) {
            reconstruct::add_reference_beat(&mut nv, d.start, &refs[i], *fiducial, &q.beats);
        }
        let mut samples_uv = vec![0f32; axis_len as usize];
        let offset = (d.start - axis_start) as usize;
        for (j, x) in nv.iter().enumerate() {
            samples_uv[offset + j] = (x / 1000.0) as f32;
        }
        out_leads.push(Lead {
            code: lead_code(d.code),
            samples_uv,
        });
    }
    Ok(Ecg {
        leads: out_leads,
        sample_rate_hz: 1e6 / f64::from(out_interval_us),
        ..Ecg::default()
    })
}

/// QRS complexes must be in order with sane zones.
fn check_beats(beats: &[Beat]) -> Result<()> {
    let mut prev_qe = 0u64;
    for (i, b) in beats.iter().enumerate() {
        let n = i + 1;
        if b.sb > b.se || b.fc < b.sb || b.fc > b.se {
            return Err(ScpError::Invalid {
                section: 4,
                detail: format!(
                    "QRS {n}: fiducial {} outside its subtraction zone {}..{}",
                    b.fc, b.sb, b.se
                ),
            });
        }
        if b.qb > b.qe {
            return Err(ScpError::Invalid {
                section: 4,
                detail: format!("QRS {n}: protected zone {}..{} is reversed", b.qb, b.qe),
            });
        }
        if b.qb <= prev_qe && i > 0 {
            return Err(ScpError::Invalid {
                section: 4,
                detail: format!(
                    "QRS {n}: protected zone {}..{} overlaps or precedes the previous one",
                    b.qb, b.qe
                ),
            });
        }
        prev_qe = b.qe;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Section 12 (version 3)

fn rhythm_from_section12(body: &[u8]) -> Result<Ecg> {
    let err = |detail: String| ScpError::Invalid {
        section: 12,
        detail,
    };
    if body.len() < 70 {
        return Err(err(format!(
            "{} bytes, the header alone has 70",
            body.len()
        )));
    }
    let rate = le32(body, 0);
    let n = usize::from(body[4]);
    let samples = u64::from(le32(body, 5));
    let bps = usize::from(body[9]);
    if rate == 0 {
        return Err(err("sampling rate 0 Hz".into()));
    }
    if n == 0 {
        return Err(err("0 leads".into()));
    }
    if !(1..=4).contains(&bps) {
        return Err(err(format!("{bps} bytes per sample (1 to 4 expected)")));
    }
    let leads_at = 70u64 + u64::from(le32(body, 62)) + u64::from(le32(body, 66));
    let data_at = leads_at + 4 * n as u64;
    let need = samples
        .saturating_mul(n as u64)
        .saturating_mul(bps as u64)
        .saturating_add(data_at);
    if need > body.len() as u64 {
        return Err(err(format!(
            "{n} leads of {samples} samples of {bps} bytes need {need} bytes, the section has {}",
            body.len()
        )));
    }
    let (leads_at, data_at) = (leads_at as usize, data_at as usize);
    let mut leads = Vec::with_capacity(n);
    for i in 0..n {
        let at = leads_at + 4 * i;
        let avm = le16(body, at + 1);
        if avm == 0 {
            return Err(err(format!(
                "lead {}: amplitude value multiplier 0 nV",
                i + 1
            )));
        }
        leads.push((lead_code(body[at]), f64::from(avm)));
    }
    let frame = n * bps;
    let mut out: Vec<Lead> = leads
        .iter()
        .map(|(code, _)| Lead {
            code: code.clone(),
            samples_uv: Vec::with_capacity(samples as usize),
        })
        .collect();
    // µV per sample unit of each lead (AVM in nV / 1000)
    let scale: Vec<f64> = leads.iter().map(|(_, avm)| avm / 1000.0).collect();
    let data = &body[data_at..data_at + samples as usize * frame];
    if bps == 2 {
        // the usual case, without the generic sign extension per sample
        for f in data.chunks_exact(frame) {
            for ((lead, pair), k) in out.iter_mut().zip(f.chunks_exact(2)).zip(&scale) {
                let v = i16::from_le_bytes([pair[0], pair[1]]);
                lead.samples_uv.push((f64::from(v) * k) as f32);
            }
        }
    } else {
        // Sign-extend from bps bytes.
        let shift = 32 - 8 * bps as u32;
        for f in data.chunks_exact(frame) {
            for ((lead, s), k) in out.iter_mut().zip(f.chunks_exact(bps)).zip(&scale) {
                let mut raw = [0u8; 4];
                raw[..bps].copy_from_slice(s);
                let v = (i32::from_le_bytes(raw) << shift) >> shift;
                lead.samples_uv.push((f64::from(v) * k) as f32);
            }
        }
    }
    Ok(Ecg {
        leads: out,
        sample_rate_hz: f64::from(rate),
        ..Ecg::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Section 7

fn parse_section7(body: &[u8]) -> Vec<Measurement> {
    let mut out = Vec::new();
    let ms = |code: &str, meaning: &str, value: f64| Measurement {
        code: code.to_owned(),
        scheme: "SCPECG".to_owned(),
        meaning: meaning.to_owned(),
        value,
        unit: "ms".to_owned(),
    };
    let valid = |v: u16| v < 19999;
    if body.len() < 6 {
        return out;
    }
    let n_blocks = usize::from(body[0]);
    let n_spikes = usize::from(body[1]);
    let rr = le16(body, 2);
    let pp = le16(body, 4);
    if rr != 0 && valid(rr) {
        out.push(ms("5.10.2.1-3", "RR Interval", f64::from(rr)));
    }
    if pp != 0 && valid(pp) {
        out.push(ms("5.10.2.1-5", "PP Interval", f64::from(pp)));
    }
    // Block of reference beat type 0.
    if n_blocks >= 1 && body.len() >= 6 + 16 {
        let b = &body[6..22];
        let [p_on, p_off, qrs_on, qrs_off, t_off] = [0, 2, 4, 6, 8].map(|o| le16(b, o));
        let points = [
            ("5.10.3-1", "P Onset", p_on),
            ("5.10.3-2", "P Offset", p_off),
            ("5.10.3-3", "QRS Onset", qrs_on),
            ("5.10.3-4", "QRS Offset", qrs_off),
            ("5.10.3-5", "T Offset", t_off),
        ];
        for (code, meaning, v) in points {
            if valid(v) {
                out.push(ms(code, meaning, f64::from(v)));
            }
        }
        let interval = |from: u16, to: u16| {
            (valid(from) && valid(to) && to >= from).then(|| f64::from(to - from))
        };
        let derived = [
            ("5.13.5-5", "P Duration", interval(p_on, p_off)),
            ("5.13.5-7", "PR Interval", interval(p_on, qrs_on)),
            ("5.13.5-9", "QRS Duration", interval(qrs_on, qrs_off)),
            ("5.13.5-11", "QT Interval", interval(qrs_on, t_off)),
        ];
        for (code, meaning, v) in derived {
            // A P onset equal to its offset means no P wave was found.
            if let Some(v) = v
                && !(v == 0.0 && code != "5.13.5-9" && p_on == p_off)
            {
                out.push(ms(code, meaning, v));
            }
        }
        let axes = [
            ("5.10.3-11", "P Axis", 10),
            ("5.10.3-13", "QRS Axis", 12),
            ("5.10.3-15", "T Axis", 14),
        ];
        for (code, meaning, o) in axes {
            let v = i16::from_le_bytes([b[o], b[o + 1]]);
            if (-360..=360).contains(&v) {
                out.push(Measurement {
                    code: code.to_owned(),
                    scheme: "SCPECG".to_owned(),
                    meaning: meaning.to_owned(),
                    value: f64::from(v),
                    unit: "deg".to_owned(),
                });
            }
        }
    }
    // Pacemaker spikes (4 + 6 bytes each), QRS types, then the additional measurements.
    let mut pos = 6 + 16 * n_blocks + 10 * n_spikes;
    if pos + 2 > body.len() {
        return out;
    }
    let n_qrs = usize::from(le16(body, pos));
    pos += 2 + n_qrs;
    if pos + 6 > body.len() {
        return out;
    }
    let extra = [
        ("5.10.2.5-1", "Ventricular Heart Rate", "/min"),
        ("5.10.2.5-3", "Atrial Heart Rate", "/min"),
        ("5.10.2.5-5", "QTc Interval", "ms"),
    ];
    for (i, (code, meaning, unit)) in extra.into_iter().enumerate() {
        let v = le16(body, pos + 2 * i);
        if v != 0 && valid(v) {
            out.push(Measurement {
                code: code.to_owned(),
                scheme: "SCPECG".to_owned(),
                meaning: meaning.to_owned(),
                value: f64::from(v),
                unit: unit.to_owned(),
            });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Sections 8 and 11

/// Statements: confirmation byte, date (4), time (3), count, then per statement a sequence
/// number, a 2-byte length and that many bytes: text (section 8) or, in section 11, a type
/// byte (1 coded, 2 text, 3 logic) and NUL-separated fields, joined here by spaces.
fn parse_statements(body: &[u8], section11: bool, cs: Charset) -> Vec<String> {
    let mut out = Vec::new();
    if body.len() < 9 {
        return out;
    }
    let n = usize::from(body[8]);
    let mut pos = 9usize;
    for _ in 0..n {
        if pos + 3 > body.len() {
            break;
        }
        let len = usize::from(le16(body, pos + 1));
        let Some(mut v) = body.get(pos + 3..pos + 3 + len) else {
            break;
        };
        pos += 3 + len;
        if section11 && v.len() > 1 && (1..=3).contains(&v[0]) {
            v = &v[1..];
        }
        let fields: Vec<String> = v.split(|b| *b == 0).filter_map(|f| text(f, cs)).collect();
        if !fields.is_empty() {
            out.push(fields.join(" "));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_ccitt_check_value() {
        // CRC-16/CCITT-FALSE check value of "123456789".
        assert_eq!(crc_ccitt(b"123456789"), 0x29B1);
    }

    #[test]
    fn sniff() {
        let mut b = vec![0u8; 40];
        b[2..6].copy_from_slice(&40u32.to_le_bytes());
        b[16..22].copy_from_slice(b"SCPECG");
        assert!(looks_like_scp(&b));
        b[16] = b'X';
        assert!(!looks_like_scp(&b));
        assert!(!looks_like_scp(b"SCPECG"));
    }

    #[test]
    fn lead_codes() {
        assert_eq!(lead_code(1), LeadCode::I);
        assert_eq!(lead_code(61), LeadCode::III);
        assert_eq!(lead_code(64), LeadCode::AVF);
        assert_eq!(lead_code(8), LeadCode::V6);
        assert_eq!(lead_code(0), LeadCode::Other("SCP lead 0".into()));
    }

    #[test]
    fn text_in_the_stated_or_a_guessed_charset() {
        let latin1 = Charset::from_language_support_code(0x01);
        assert_eq!(latin1, Charset::Latin1);
        assert_eq!(text(b"M\xfcller\0junk", latin1).as_deref(), Some("Müller"));
        let gb = encoding_rs::GBK.encode("王").0.into_owned();
        assert_eq!(
            text(&gb, Charset::from_language_support_code(0x27)).as_deref(),
            Some("王")
        );
        let greek = Charset::from_language_support_code(0x23);
        assert_eq!(
            text(b"\xc1\xe8\xde\xed\xe1", greek).as_deref(),
            Some("Αθήνα")
        );
        // unstated: UTF-8, else GB18030, else Latin-1
        let unstated = Charset::from_language_support_code(0x00);
        assert_eq!(unstated, Charset::Unstated);
        assert_eq!(
            text("Müller".as_bytes(), unstated).as_deref(),
            Some("Müller")
        );
        assert_eq!(text(&gb, unstated).as_deref(), Some("王"));
        assert_eq!(text(b"Andr\xe9", unstated).as_deref(), Some("André"));
        assert_eq!(text(b"  \0", unstated), None);
        assert_eq!(Charset::from_language_support_code(0x47), Charset::Unstated);
    }

    /// A section 1 whose tag 14 (after the names) states GB 2312: the names and the
    /// device's strings are read in it.
    #[test]
    fn section1_names_in_the_language_of_tag_14() {
        let gb = |s: &str| {
            let mut b = encoding_rs::GB18030.encode(s).0.into_owned();
            b.push(0);
            b
        };
        let tag = |t: u8, v: &[u8]| {
            let mut b = vec![t];
            b.extend((v.len() as u16).to_le_bytes());
            b.extend(v);
            b
        };
        let mut dev = vec![1, 0, 2, 0, 3, 0, 0, 8];
        dev.extend(b"ECG-12");
        dev.extend([20, 0xA0, 0x27, 0xD0, 1]);
        dev.extend([0u8; 16]);
        dev.extend([4]);
        dev.extend(b"1.0\0SN-1\0SYS\0IMPL\0");
        dev.extend(gb("心电图机"));
        let mut body = tag(0, &gb("欧阳"));
        body.extend(tag(1, &gb("娜娜")));
        body.extend(tag(14, &dev));
        body.extend(tag(255, &[]));
        let h = parse_section1(&body).unwrap();
        assert_eq!(h.charset, Charset::Stated(encoding_rs::GB18030));
        assert_eq!(h.patient.name.as_deref(), Some("欧阳^娜娜"));
        assert_eq!(h.device.manufacturer.as_deref(), Some("心电图机"));
        assert_eq!(h.device.serial.as_deref(), Some("SN-1"));
        // the same bytes stated Latin-1 read as Latin-1
        // tag 14's value ends 3 bytes (tag 255) before the end; the code is its byte 17
        let at = body.len() - 3 - dev.len() + 16;
        let mut latin = body.clone();
        latin[at] = 0x01;
        let h = parse_section1(&latin).unwrap();
        assert_eq!(h.charset, Charset::Latin1);
        assert_ne!(h.patient.name.as_deref(), Some("欧阳^娜娜"));
    }

    #[test]
    fn section7_measurements() {
        let mut b = vec![1u8, 0];
        b.extend(900u16.to_le_bytes());
        b.extend(29999u16.to_le_bytes());
        for v in [100u16, 210, 260, 350, 640] {
            b.extend(v.to_le_bytes());
        }
        for v in [60i16, -30, 19999] {
            b.extend(v.to_le_bytes());
        }
        b.extend(0u16.to_le_bytes()); // no QRS types
        for v in [67u16, 29999, 420] {
            b.extend(v.to_le_bytes());
        }
        let m = parse_section7(&b);
        let get = |meaning: &str| {
            m.iter()
                .find(|x| x.meaning == meaning)
                .map(|x| (x.value, x.unit.as_str(), x.code.as_str()))
        };
        assert_eq!(get("RR Interval"), Some((900.0, "ms", "5.10.2.1-3")));
        assert_eq!(get("PP Interval"), None);
        assert_eq!(get("PR Interval"), Some((160.0, "ms", "5.13.5-7")));
        assert_eq!(get("QRS Duration"), Some((90.0, "ms", "5.13.5-9")));
        assert_eq!(get("QT Interval"), Some((380.0, "ms", "5.13.5-11")));
        assert_eq!(get("P Axis"), Some((60.0, "deg", "5.10.3-11")));
        assert_eq!(get("QRS Axis"), Some((-30.0, "deg", "5.10.3-13")));
        assert_eq!(get("T Axis"), None);
        assert_eq!(
            get("Ventricular Heart Rate"),
            Some((67.0, "/min", "5.10.2.5-1"))
        );
        assert_eq!(get("Atrial Heart Rate"), None);
        assert_eq!(get("QTc Interval"), Some((420.0, "ms", "5.10.2.5-5")));
    }

    #[test]
    fn statements_of_sections_8_and_11() {
        let mut b = vec![0u8, 0xe8, 0x07, 1, 2, 3, 4, 5, 2];
        b.extend([1, 14, 0]);
        b.extend(b"SINUS RHYTHM\0\0");
        b.extend([2, 8, 0]);
        b.extend(b"NORMAL\0\0");
        assert_eq!(
            parse_statements(&b, false, Charset::Unstated),
            ["SINUS RHYTHM", "NORMAL"]
        );
        let mut b = vec![0u8; 8];
        b.push(1);
        b.extend([1, 9, 0, 1]);
        b.extend(b"22\0LVH\0\0");
        assert_eq!(parse_statements(&b, true, Charset::Unstated), ["22 LVH"]);
    }
}
