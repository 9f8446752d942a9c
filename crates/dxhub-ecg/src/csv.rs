//! # The CSV ECG form
//!
//! The [JSON form](crate::json) as a spreadsheet writes it, for devices and PC programs that
//! export a table of samples: header lines `#field=value` with the JSON form's fields (nested
//! ones by a dotted path), then one row of lead names and one row per sample time.
//!
//! ```text
//! #sample_rate_hz=500
//! #uv_per_lsb=4.88
//! #patient.id=0012345
//! #patient.name=张三
//! #patient.birth_date=1958-03-14
//! #patient.sex=M
//! #device.serial=SN20261122
//! #acquired_at=2026-11-22T08:15:00+08:00
//! #filters.notch_hz=50
//! #measurement=PR,160,ms
//! #statement=窦性心律
//! I,II,V1
//! 12,30,-8
//! 15,34,-9
//! 19,41,-12
//! ```
//!
//! | header field | required | as in the JSON form |
//! | --- | --- | --- |
//! | `sample_rate_hz`, `uv_per_lsb` | yes | the same fields |
//! | `patient.id`, `patient.name`, `patient.birth_date`, `patient.sex` | no | `patient` |
//! | `device.serial`, `device.model`, `device.manufacturer` | no | `device` |
//! | `acquired_at` | no | the same field |
//! | `filters.low_hz`, `filters.high_hz`, `filters.notch_hz` | no | `filters` |
//! | `measurement` | no, repeatable | one of `measurements`: `name,value[,unit]` |
//! | `statement` | no, repeatable | one of `statements` |
//!
//! The file must begin with a header line (`#`), which is how the hub recognises the form.
//! Blank lines are skipped; a header field given twice (but `measurement` and `statement`),
//! or one not listed, is refused. Columns are separated by commas, semicolons or tabs (the
//! lead-name row decides; fields may be quoted); every row has one integer per lead. The
//! text is UTF-8 (a BOM allowed) or, when it is not valid UTF-8, GB18030 (what spreadsheet
//! programs set to Chinese write). The result is checked exactly as a JSON form is (lead
//! names, lengths, ranges), and every error names its line.

use crate::json::{
    JsonDevice, JsonEcg, JsonEcgError, JsonFilters, JsonLead, JsonLeads, JsonMeasurement,
    JsonPatient, from_form,
};
use crate::model::Ecg;
use std::borrow::Cow;

#[derive(Debug, thiserror::Error)]
pub enum CsvEcgError {
    #[error("not a CSV ECG form: it begins with a header line such as \"#sample_rate_hz=500\"")]
    NotAForm,
    #[error("line {line}: {detail}")]
    Line { line: usize, detail: String },
    #[error("missing header field {0} (a line \"#{0}=…\")")]
    Missing(&'static str),
    #[error("no lead-name row after the header lines")]
    NoLeadRow,
    #[error(transparent)]
    Form(#[from] JsonEcgError),
}

/// Cheap sniff: the first byte after an optional UTF-8 BOM and blank lines is `#`, and a
/// `sample_rate_hz` field is among the first lines.
pub fn looks_like_csv_ecg(bytes: &[u8]) -> bool {
    let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let head = &b[..b.len().min(4096)];
    head.iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|c| *c == b'#')
        && head
            .windows(b"#sample_rate_hz".len())
            .any(|w| w == b"#sample_rate_hz")
}

/// Read a CSV ECG form into the model.
pub fn read_csv(bytes: &[u8]) -> Result<Ecg, CsvEcgError> {
    let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text: Cow<'_, str> = match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => encoding_rs::GB18030.decode_without_bom_handling(b).0,
    };
    let mut form = JsonEcg {
        sample_rate_hz: f64::NAN,
        uv_per_lsb: f64::NAN,
        leads: JsonLeads::default(),
        patient: None,
        device: None,
        acquired_at: None,
        filters: None,
        measurements: Vec::new(),
        statements: Vec::new(),
    };
    let lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut seen: Vec<String> = Vec::new();
    let mut saw_header = false;
    let mut data_start = None;
    for (line, raw) in lines {
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        let Some(field) = l.strip_prefix('#') else {
            data_start = Some((line, raw));
            break;
        };
        saw_header = true;
        let err = |detail: String| CsvEcgError::Line { line, detail };
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| err(format!("{l:?} is not a header field (#field=value)")))?;
        let (key, value) = (key.trim(), value.trim());
        if !matches!(key, "measurement" | "statement") {
            if seen.iter().any(|k| k == key) {
                return Err(err(format!("header field {key} is given twice")));
            }
            seen.push(key.to_owned());
        }
        let number = |what: &str| -> Result<f64, CsvEcgError> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| err(format!("{what} {value:?} is not a number")))
        };
        let text = || Some(value.to_owned()).filter(|v| !v.is_empty());
        match key {
            "sample_rate_hz" => form.sample_rate_hz = number(key)?,
            "uv_per_lsb" => form.uv_per_lsb = number(key)?,
            "acquired_at" => form.acquired_at = text(),
            "patient.id" => form_part::<JsonPatient>(&mut form.patient).id = text(),
            "patient.name" => form_part::<JsonPatient>(&mut form.patient).name = text(),
            "patient.birth_date" => {
                form_part::<JsonPatient>(&mut form.patient).birth_date = text();
            }
            "patient.sex" => form_part::<JsonPatient>(&mut form.patient).sex = text(),
            "device.serial" => form_part::<JsonDevice>(&mut form.device).serial = text(),
            "device.model" => form_part::<JsonDevice>(&mut form.device).model = text(),
            "device.manufacturer" => {
                form_part::<JsonDevice>(&mut form.device).manufacturer = text();
            }
            "filters.low_hz" => {
                form_part::<JsonFilters>(&mut form.filters).low_hz = Some(number(key)?)
            }
            "filters.high_hz" => {
                form_part::<JsonFilters>(&mut form.filters).high_hz = Some(number(key)?);
            }
            "filters.notch_hz" => {
                form_part::<JsonFilters>(&mut form.filters).notch_hz = Some(number(key)?);
            }
            "statement" => form.statements.extend(text()),
            "measurement" => {
                let mut parts = value.splitn(3, ',').map(str::trim);
                let (name, v, unit) = (parts.next(), parts.next(), parts.next());
                let (Some(name), Some(v)) = (name.filter(|n| !n.is_empty()), v) else {
                    return Err(err(format!(
                        "measurement {value:?} is not name,value[,unit]"
                    )));
                };
                let v = v
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| err(format!("measurement {name}: {v:?} is not a number")))?;
                form.measurements.push(JsonMeasurement {
                    name: name.to_owned(),
                    value: v,
                    unit: unit.unwrap_or_default().to_owned(),
                });
            }
            _ => {
                return Err(err(format!(
                    "unknown header field {:?} (known: sample_rate_hz, uv_per_lsb, \
                     patient.id, patient.name, patient.birth_date, patient.sex, \
                     device.serial, device.model, device.manufacturer, acquired_at, \
                     filters.low_hz, filters.high_hz, filters.notch_hz, measurement, statement)",
                    clip(key)
                )));
            }
        }
    }
    if !saw_header {
        return Err(CsvEcgError::NotAForm);
    }
    if form.sample_rate_hz.is_nan() {
        return Err(CsvEcgError::Missing("sample_rate_hz"));
    }
    if form.uv_per_lsb.is_nan() {
        return Err(CsvEcgError::Missing("uv_per_lsb"));
    }
    let Some((header_line, header)) = data_start else {
        return Err(CsvEcgError::NoLeadRow);
    };
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| header.bytes().filter(|b| b == d).count())
        .unwrap_or(b',');
    // the lead-name row and the rows after it (a slice of the text, not a copy), as the
    // csv crate reads them
    let rest = &text[header.as_ptr() as usize - text.as_ptr() as usize..];
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(rest.as_bytes());
    let mut records = reader.records();
    let names: Vec<String> = match records.next() {
        Some(Ok(r)) => r.iter().map(str::to_owned).collect(),
        Some(Err(e)) => {
            return Err(CsvEcgError::Line {
                line: header_line,
                detail: e.to_string(),
            });
        }
        None => return Err(CsvEcgError::NoLeadRow),
    };
    if names.iter().any(String::is_empty) {
        return Err(CsvEcgError::Line {
            line: header_line,
            detail: "a lead name is empty".into(),
        });
    }
    if names.len() > crate::json::MAX_LEADS {
        return Err(CsvEcgError::Line {
            line: header_line,
            detail: format!("{} leads, at most {}", names.len(), crate::json::MAX_LEADS),
        });
    }
    let mut samples: Vec<Vec<i32>> = vec![Vec::new(); names.len()];
    for record in records {
        let record = record.map_err(|e| CsvEcgError::Line {
            line: e
                .position()
                .map_or(header_line, |p| header_line + p.line() as usize - 1),
            detail: e.to_string(),
        })?;
        let line = record
            .position()
            .map_or(header_line, |p| header_line + p.line() as usize - 1);
        if record.len() == 1 && record.get(0) == Some("") {
            continue; // a blank line
        }
        if record.len() != names.len() {
            return Err(CsvEcgError::Line {
                line,
                detail: format!(
                    "{} values, the lead-name row has {} leads",
                    record.len(),
                    names.len()
                ),
            });
        }
        if samples[0].len() >= crate::json::MAX_SAMPLES_PER_LEAD {
            return Err(CsvEcgError::Line {
                line,
                detail: format!(
                    "more than {} samples per lead",
                    crate::json::MAX_SAMPLES_PER_LEAD
                ),
            });
        }
        for ((v, lead), name) in record.iter().zip(&mut samples).zip(&names) {
            let n = v.parse::<i32>().map_err(|_| CsvEcgError::Line {
                line,
                detail: format!("lead {:?}: {:?} is not an integer", clip(name), clip(v)),
            })?;
            lead.push(n);
        }
    }
    form.leads = JsonLeads(
        names
            .into_iter()
            .zip(samples)
            .map(|(name, samples)| JsonLead { name, samples })
            .collect(),
    );
    Ok(from_form(form)?)
}

/// The part of the form a dotted field fills, made when first named.
fn form_part<T: Default>(part: &mut Option<T>) -> &mut T {
    part.get_or_insert_with(T::default)
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::LeadCode;

    const FORM: &str = "#sample_rate_hz=500\n#uv_per_lsb=2.5\n#patient.id=0012345\n\
        #patient.name=张三\n#patient.birth_date=1958-03-14\n#patient.sex=M\n\
        #device.serial=SN-1\n#acquired_at=2026-11-22T08:15:00+08:00\n#filters.notch_hz=50\n\
        #measurement=PR,160,ms\n#statement=窦性心律\n#statement=正常心电图\n\
        I,II,V1\n12,30,-8\n15,34,-9\n\n19,41,-12\n";

    #[test]
    fn the_documented_form_reads_as_its_json_twin() {
        assert!(looks_like_csv_ecg(FORM.as_bytes()));
        let ecg = read_csv(FORM.as_bytes()).unwrap();
        let json = crate::json::read_json(
            r#"{"sample_rate_hz":500,"uv_per_lsb":2.5,
            "leads":{"I":[12,15,19],"II":[30,34,41],"V1":[-8,-9,-12]},
            "patient":{"id":"0012345","name":"张三","birth_date":"1958-03-14","sex":"M"},
            "device":{"serial":"SN-1"},"acquired_at":"2026-11-22T08:15:00+08:00",
            "filters":{"notch_hz":50},"measurements":[{"name":"PR","value":160,"unit":"ms"}],
            "statements":["窦性心律","正常心电图"]}"#
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(ecg, json);
        assert_eq!(
            ecg.lead(&LeadCode::V1).unwrap().samples_uv,
            [-20.0, -22.5, -30.0]
        );
    }

    #[test]
    fn semicolons_tabs_quotes_a_bom_and_gb18030() {
        let semi = "\u{feff}#sample_rate_hz=250\n#uv_per_lsb=1\n\"I\";\"II\"\n1;2\n3;4\n";
        let ecg = read_csv(semi.as_bytes()).unwrap();
        assert_eq!(ecg.sample_rate_hz, 250.0);
        assert_eq!(ecg.lead(&LeadCode::II).unwrap().samples_uv, [2.0, 4.0]);
        let tabs = "#sample_rate_hz=250\r\n#uv_per_lsb=1\r\nI\tII\r\n1\t2\r\n";
        assert_eq!(read_csv(tabs.as_bytes()).unwrap().samples_per_lead(), 1);
        let gb = encoding_rs::GB18030
            .encode("#sample_rate_hz=500\n#uv_per_lsb=1\n#patient.name=李四\nI\n5\n")
            .0;
        let ecg = read_csv(&gb).unwrap();
        assert_eq!(ecg.patient.name.as_deref(), Some("李四"));
    }

    #[test]
    fn every_prefix_reads_or_errs_without_panicking() {
        let gb = encoding_rs::GB18030.encode(FORM).0.into_owned();
        for bytes in [FORM.as_bytes(), &gb] {
            for n in 0..bytes.len() {
                let _ = read_csv(&bytes[..n]);
            }
        }
    }

    #[test]
    fn errors_name_the_line() {
        let e = |s: &str| read_csv(s.as_bytes()).unwrap_err().to_string();
        let head = "#sample_rate_hz=500\n#uv_per_lsb=1\n";
        assert_eq!(
            e(&format!("{head}I,II\n1,2\n3\n")),
            "line 5: 1 values, the lead-name row has 2 leads"
        );
        assert_eq!(
            e(&format!("{head}I,II\n1,2\n3,x\n")),
            "line 5: lead \"II\": \"x\" is not an integer"
        );
        assert_eq!(
            e(&format!("{head}I,II\n1,2\n3,1.5\n")),
            "line 5: lead \"II\": \"1.5\" is not an integer"
        );
        assert!(e(&format!("{head}I,V13\n1,2\n")).contains("unknown lead name \"V13\""));
        assert!(
            e("#sample_rate_hz=500\n#sample_rate=1\nI\n1\n")
                .starts_with("line 2: unknown header field \"sample_rate\"")
        );
        assert_eq!(
            e("#sample_rate_hz=500\n#sample_rate_hz=250\nI\n1\n"),
            "line 2: header field sample_rate_hz is given twice"
        );
        assert_eq!(
            e("#sample_rate_hz=500\nI\n1\n"),
            "missing header field uv_per_lsb (a line \"#uv_per_lsb=…\")"
        );
        assert_eq!(e(head), "no lead-name row after the header lines");
        assert_eq!(
            e("#sample_rate_hz=fast\n"),
            "line 1: sample_rate_hz \"fast\" is not a number"
        );
        assert!(
            e(&format!("{head}I\n")).contains("no samples"),
            "{}",
            e(&format!("{head}I\n"))
        );
        assert_eq!(
            e("#sample_rate_hz=20\n#uv_per_lsb=1\nI\n1\n"),
            "sample_rate_hz 20 is outside 50–10000 Hz"
        );
        assert_eq!(
            e(&format!("{head}#measurement=PR\nI\n1\n")),
            "line 3: measurement \"PR\" is not name,value[,unit]"
        );
        assert_eq!(
            e("I,II\n1,2\n"),
            "not a CSV ECG form: it begins with a header line such as \"#sample_rate_hz=500\""
        );
        assert!(!looks_like_csv_ecg(b"I,II\n1,2\n"));
        assert!(!looks_like_csv_ecg(b"# a comment\nI\n1\n"));
    }
}
