//! The normalised waveform model every reader produces, and the lead arithmetic on it.

use std::fmt;

/// One resting or ambulatory ECG, whatever format it arrived in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ecg {
    /// The rhythm leads, in the order of the source. All have the same number of samples.
    pub leads: Vec<Lead>,
    pub sample_rate_hz: f64,
    pub filters: Filters,
    /// Measurements made by the acquiring device (PR, QRS, QT, axes…), as sent.
    pub device_measurements: Vec<Measurement>,
    /// The device's interpretation statements, as sent.
    pub statements: Vec<String>,
    pub patient: Patient,
    pub device: Device,
    /// Acquisition time: a DICOM DT (`YYYYMMDDHHMMSS.FFFFFF&ZZXX`) or RFC 3339, as sent.
    pub acquired_at: Option<String>,
    /// True when the source also carried median (representative) beats, which are not read.
    pub has_median_beats: bool,
}

impl Ecg {
    /// The lead with this code, if present.
    pub fn lead(&self, code: &LeadCode) -> Option<&Lead> {
        self.leads.iter().find(|l| &l.code == code)
    }

    /// Number of samples per lead (0 without leads).
    pub fn samples_per_lead(&self) -> usize {
        self.leads.first().map_or(0, |l| l.samples_uv.len())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    pub code: LeadCode,
    /// Samples in microvolts.
    pub samples_uv: Vec<f32>,
}

/// Filter settings in Hz; `None` when not stated (or, for the notch, not applied).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Filters {
    pub low_hz: Option<f64>,
    pub high_hz: Option<f64>,
    pub notch_hz: Option<f64>,
}

/// A device measurement: the concept as coded by the source, value and unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Code value of the concept (e.g. SCP-ECG `5.13.5-7`, or a name for formats without codes).
    pub code: String,
    /// Coding scheme designator (`SCPECG`, `MDC`…), empty when the source has none.
    pub scheme: String,
    /// Human-readable meaning (`PR Interval`).
    pub meaning: String,
    pub value: f64,
    /// UCUM unit (`ms`, `deg`, `/min`), empty when not stated.
    pub unit: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patient {
    pub id: Option<String>,
    pub name: Option<String>,
    /// DICOM DA `YYYYMMDD` or ISO 8601 date, as sent.
    pub birth_date: Option<String>,
    /// `M`, `F` or `O`, as sent.
    pub sex: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub serial: Option<String>,
    pub model: Option<String>,
    pub manufacturer: Option<String>,
}

/// A lead of the standard 12-lead ECG, or any other lead by its conventional name
/// (`V4R`, `V7`, `X`…) or, when unknown, by its source code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LeadCode {
    I,
    II,
    III,
    AVR,
    AVL,
    AVF,
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
    Other(String),
}

/// Leads beyond the 12 standard ones, by their index in the MDC ECG lead partition
/// (ISO/IEEE 11073-10101 partition 2, the same numbers SCP-ECG uses in DICOM CID 3001's
/// `5.6.3-9-n` codes).
const OTHER_MDC_LEADS: &[(u32, &str)] = &[
    (9, "V7"),
    (10, "V2R"),
    (11, "V3R"),
    (12, "V4R"),
    (13, "V5R"),
    (14, "V6R"),
    (15, "V7R"),
    (16, "X"),
    (17, "Y"),
    (18, "Z"),
    (19, "CC5"),
    (20, "CM5"),
    (21, "LA"),
    (22, "RA"),
    (23, "LL"),
    (65, "-aVR"),
    (66, "V8"),
    (67, "V9"),
    (68, "V8R"),
    (69, "V9R"),
];

impl LeadCode {
    /// The 12 standard leads in the conventional order.
    pub const STANDARD_12: [LeadCode; 12] = [
        LeadCode::I,
        LeadCode::II,
        LeadCode::III,
        LeadCode::AVR,
        LeadCode::AVL,
        LeadCode::AVF,
        LeadCode::V1,
        LeadCode::V2,
        LeadCode::V3,
        LeadCode::V4,
        LeadCode::V5,
        LeadCode::V6,
    ];

    /// The lead for an index of the MDC ECG lead partition (1 = I, 2 = II, 3–8 = V1–V6,
    /// 61–64 = III, aVR, aVL, aVF; others by name or as `MDC n`).
    pub fn from_mdc_index(n: u32) -> LeadCode {
        match n {
            1 => LeadCode::I,
            2 => LeadCode::II,
            3 => LeadCode::V1,
            4 => LeadCode::V2,
            5 => LeadCode::V3,
            6 => LeadCode::V4,
            7 => LeadCode::V5,
            8 => LeadCode::V6,
            61 => LeadCode::III,
            62 => LeadCode::AVR,
            63 => LeadCode::AVL,
            64 => LeadCode::AVF,
            _ => match OTHER_MDC_LEADS.iter().find(|(i, _)| *i == n) {
                Some((_, name)) => LeadCode::Other((*name).to_owned()),
                None => LeadCode::Other(format!("MDC 2:{n}")),
            },
        }
    }

    /// The lead for a code of DICOM CID 3001 (ECG Leads): SCP-ECG `5.6.3-9-n`, MDC `2:n`,
    /// the 32-bit MDC reference id (`131073` = 2·65536 + 1) or the MDC reference name
    /// (`MDC_ECG_LEAD_I`). `None` when the code is none of these.
    pub fn from_cid3001(code_value: &str) -> Option<LeadCode> {
        let v = code_value.trim();
        let index = if let Some(n) = v.strip_prefix("5.6.3-9-") {
            n.parse::<u32>().ok()
        } else if let Some(n) = v.strip_prefix("2:") {
            n.parse::<u32>().ok()
        } else if let Some(name) = v.strip_prefix("MDC_ECG_LEAD_") {
            return LeadCode::from_name(name);
        } else if let Ok(id) = v.parse::<u32>() {
            (id >> 16 == 2 && id & 0xFFFF != 0).then_some(id & 0xFFFF)
        } else {
            None
        };
        index.filter(|&n| n > 0).map(LeadCode::from_mdc_index)
    }

    /// The lead for a plain name: `I`, `II`, `III`, `aVR`, `aVL`, `aVF`, `V1`…`V6` (case
    /// insensitive, with an optional `Lead ` prefix, as in DICOM code meanings such as
    /// `Lead I (Einthoven)`), other known names (`V4R`, `V7`…). `None` for an empty name.
    pub fn from_name(name: &str) -> Option<LeadCode> {
        let mut n = name.trim();
        if n.len() > 5 && n[..5].eq_ignore_ascii_case("lead ") {
            n = n[5..].trim_start();
        }
        // Drop a parenthesised qualifier: "I (Einthoven)", "aVR (Goldberger)".
        if let Some(i) = n.find('(') {
            n = n[..i].trim_end();
        }
        if n.is_empty() {
            return None;
        }
        let upper = n.to_ascii_uppercase();
        let std = match upper.as_str() {
            "I" => Some(LeadCode::I),
            "II" => Some(LeadCode::II),
            "III" => Some(LeadCode::III),
            "AVR" => Some(LeadCode::AVR),
            "AVL" => Some(LeadCode::AVL),
            "AVF" => Some(LeadCode::AVF),
            "V1" => Some(LeadCode::V1),
            "V2" => Some(LeadCode::V2),
            "V3" => Some(LeadCode::V3),
            "V4" => Some(LeadCode::V4),
            "V5" => Some(LeadCode::V5),
            "V6" => Some(LeadCode::V6),
            _ => None,
        };
        if std.is_some() {
            return std;
        }
        let known = OTHER_MDC_LEADS
            .iter()
            .find(|(_, k)| k.eq_ignore_ascii_case(n))
            .map(|(_, k)| (*k).to_owned());
        Some(LeadCode::Other(known.unwrap_or_else(|| n.to_owned())))
    }

    /// The conventional name (`I`, `aVR`, `V1`, or the `Other` text).
    pub fn name(&self) -> &str {
        match self {
            LeadCode::I => "I",
            LeadCode::II => "II",
            LeadCode::III => "III",
            LeadCode::AVR => "aVR",
            LeadCode::AVL => "aVL",
            LeadCode::AVF => "aVF",
            LeadCode::V1 => "V1",
            LeadCode::V2 => "V2",
            LeadCode::V3 => "V3",
            LeadCode::V4 => "V4",
            LeadCode::V5 => "V5",
            LeadCode::V6 => "V6",
            LeadCode::Other(s) => s,
        }
    }
}

impl fmt::Display for LeadCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When leads I and II exist and none of III, aVR, aVL, aVF does, derive those four from
/// Einthoven's and Goldberger's relations and append them after II's neighbours in the
/// standard order: III = II − I, aVR = −(I + II)/2, aVL = I − II/2, aVF = II − I/2.
/// Returns true when the leads were derived. Any one of the four already present (or I or
/// II missing, or I and II of different lengths) leaves the ECG unchanged.
pub fn derive_limb_leads(ecg: &mut Ecg) -> bool {
    let derived = [LeadCode::III, LeadCode::AVR, LeadCode::AVL, LeadCode::AVF];
    if derived.iter().any(|c| ecg.lead(c).is_some()) {
        return false;
    }
    let (Some(i), Some(ii)) = (ecg.lead(&LeadCode::I), ecg.lead(&LeadCode::II)) else {
        return false;
    };
    if i.samples_uv.len() != ii.samples_uv.len() {
        return false;
    }
    let pairs = || i.samples_uv.iter().zip(&ii.samples_uv);
    let iii: Vec<f32> = pairs().map(|(a, b)| b - a).collect();
    let avr: Vec<f32> = pairs().map(|(a, b)| -(a + b) / 2.0).collect();
    let avl: Vec<f32> = pairs().map(|(a, b)| a - b / 2.0).collect();
    let avf: Vec<f32> = pairs().map(|(a, b)| b - a / 2.0).collect();
    let new = [iii, avr, avl, avf]
        .into_iter()
        .zip(derived)
        .map(|(samples_uv, code)| Lead { code, samples_uv });
    // Insert right after lead II (or after I, whichever comes later) to keep the usual
    // I, II, III, aVR, aVL, aVF, V1… order when the source had I, II, V1…
    let at = ecg
        .leads
        .iter()
        .rposition(|l| l.code == LeadCode::I || l.code == LeadCode::II)
        .map_or(ecg.leads.len(), |p| p + 1);
    let tail = ecg.leads.split_off(at);
    ecg.leads.extend(new);
    ecg.leads.extend(tail);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eight_lead() -> Ecg {
        let mut leads = vec![
            Lead {
                code: LeadCode::I,
                samples_uv: vec![100.0, -40.0, 0.0, 250.0],
            },
            Lead {
                code: LeadCode::II,
                samples_uv: vec![300.0, 60.0, -20.0, 50.0],
            },
        ];
        for code in [
            LeadCode::V1,
            LeadCode::V2,
            LeadCode::V3,
            LeadCode::V4,
            LeadCode::V5,
            LeadCode::V6,
        ] {
            leads.push(Lead {
                code,
                samples_uv: vec![1.0; 4],
            });
        }
        Ecg {
            leads,
            sample_rate_hz: 500.0,
            ..Ecg::default()
        }
    }

    fn samples<'a>(ecg: &'a Ecg, code: &LeadCode) -> &'a [f32] {
        &ecg.lead(code).expect("lead present").samples_uv
    }

    #[test]
    fn lead_iii_is_ii_minus_i() {
        let mut ecg = eight_lead();
        assert!(derive_limb_leads(&mut ecg));
        assert_eq!(
            samples(&ecg, &LeadCode::III),
            &[200.0, 100.0, -20.0, -200.0]
        );
    }

    #[test]
    fn avr_is_minus_half_sum() {
        let mut ecg = eight_lead();
        derive_limb_leads(&mut ecg);
        assert_eq!(
            samples(&ecg, &LeadCode::AVR),
            &[-200.0, -10.0, 10.0, -150.0]
        );
    }

    #[test]
    fn avl_is_i_minus_half_ii() {
        let mut ecg = eight_lead();
        derive_limb_leads(&mut ecg);
        assert_eq!(samples(&ecg, &LeadCode::AVL), &[-50.0, -70.0, 10.0, 225.0]);
    }

    #[test]
    fn avf_is_ii_minus_half_i() {
        let mut ecg = eight_lead();
        derive_limb_leads(&mut ecg);
        assert_eq!(samples(&ecg, &LeadCode::AVF), &[250.0, 80.0, -20.0, -75.0]);
    }

    #[test]
    fn derived_leads_take_the_standard_order() {
        let mut ecg = eight_lead();
        derive_limb_leads(&mut ecg);
        let order: Vec<&LeadCode> = ecg.leads.iter().map(|l| &l.code).collect();
        let expected: Vec<&LeadCode> = LeadCode::STANDARD_12.iter().collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn nothing_derived_when_any_limb_lead_is_present_or_i_missing() {
        let mut ecg = eight_lead();
        ecg.leads.push(Lead {
            code: LeadCode::AVF,
            samples_uv: vec![0.0; 4],
        });
        let before = ecg.clone();
        assert!(!derive_limb_leads(&mut ecg));
        assert_eq!(ecg, before);

        let mut ecg = eight_lead();
        ecg.leads.remove(0);
        assert!(!derive_limb_leads(&mut ecg));
        assert_eq!(ecg.leads.len(), 7);
    }

    #[test]
    fn scp_ecg_codes() {
        assert_eq!(LeadCode::from_cid3001("5.6.3-9-1"), Some(LeadCode::I));
        assert_eq!(LeadCode::from_cid3001("5.6.3-9-2"), Some(LeadCode::II));
        assert_eq!(LeadCode::from_cid3001("5.6.3-9-61"), Some(LeadCode::III));
        assert_eq!(LeadCode::from_cid3001("5.6.3-9-62"), Some(LeadCode::AVR));
        assert_eq!(LeadCode::from_cid3001("5.6.3-9-63"), Some(LeadCode::AVL));
        assert_eq!(LeadCode::from_cid3001("5.6.3-9-64"), Some(LeadCode::AVF));
        assert_eq!(LeadCode::from_cid3001("5.6.3-9-3"), Some(LeadCode::V1));
        assert_eq!(LeadCode::from_cid3001("5.6.3-9-8"), Some(LeadCode::V6));
        assert_eq!(
            LeadCode::from_cid3001("5.6.3-9-12"),
            Some(LeadCode::Other("V4R".into()))
        );
    }

    #[test]
    fn mdc_codes() {
        assert_eq!(LeadCode::from_cid3001("2:1"), Some(LeadCode::I));
        assert_eq!(LeadCode::from_cid3001("2:5"), Some(LeadCode::V3));
        assert_eq!(LeadCode::from_cid3001("2:64"), Some(LeadCode::AVF));
        assert_eq!(LeadCode::from_cid3001("131073"), Some(LeadCode::I));
        assert_eq!(LeadCode::from_cid3001("131133"), Some(LeadCode::III));
        assert_eq!(
            LeadCode::from_cid3001("MDC_ECG_LEAD_aVL"),
            Some(LeadCode::AVL)
        );
        assert_eq!(
            LeadCode::from_cid3001("2:66"),
            Some(LeadCode::Other("V8".into()))
        );
        assert_eq!(
            LeadCode::from_cid3001("2:200"),
            Some(LeadCode::Other("MDC 2:200".into()))
        );
        assert_eq!(LeadCode::from_cid3001("2:0"), None);
        assert_eq!(LeadCode::from_cid3001("12345"), None);
        assert_eq!(LeadCode::from_cid3001("LP7386-8"), None);
    }

    #[test]
    fn plain_names() {
        assert_eq!(LeadCode::from_name("I"), Some(LeadCode::I));
        assert_eq!(LeadCode::from_name("iii"), Some(LeadCode::III));
        assert_eq!(LeadCode::from_name("aVR"), Some(LeadCode::AVR));
        assert_eq!(LeadCode::from_name("AVL"), Some(LeadCode::AVL));
        assert_eq!(LeadCode::from_name("V1"), Some(LeadCode::V1));
        assert_eq!(LeadCode::from_name("Lead I (Einthoven)"), Some(LeadCode::I));
        assert_eq!(LeadCode::from_name("Lead aVF"), Some(LeadCode::AVF));
        assert_eq!(
            LeadCode::from_name("v4r"),
            Some(LeadCode::Other("V4R".into()))
        );
        assert_eq!(
            LeadCode::from_name("ECG1"),
            Some(LeadCode::Other("ECG1".into()))
        );
        assert_eq!(LeadCode::from_name("  "), None);
        for code in LeadCode::STANDARD_12 {
            assert_eq!(LeadCode::from_name(code.name()), Some(code));
        }
    }
}
