//! Mutual recognition (检查检验结果互认) of reports within the alliance, the pure part:
//! image/ECG quality grades, the exam catalogue (which examinations are eligible and for
//! how long a result stays valid), the "HR" (互认) mark a report carries, and the age of
//! a study in days.
//!
//! No national rule fixes a validity period for every examination: the catalogue's
//! default is no limit (`validity_days: None`) and each alliance sets its own.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::report_template::{ReportKind, default_templates};

/// The quality-control grade of an examination: 甲/乙/丙 for images (甲级片、乙级片、
/// 丙级片), acceptable/unacceptable for an ECG tracing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QcGrade {
    /// 甲级
    #[serde(rename = "jia")]
    Jia,
    /// 乙级
    #[serde(rename = "yi")]
    Yi,
    /// 丙级
    #[serde(rename = "bing")]
    Bing,
    #[serde(rename = "acceptable")]
    EcgAcceptable,
    #[serde(rename = "unacceptable")]
    EcgUnacceptable,
}

impl QcGrade {
    pub const ALL: [QcGrade; 5] = [
        Self::Jia,
        Self::Yi,
        Self::Bing,
        Self::EcgAcceptable,
        Self::EcgUnacceptable,
    ];

    /// The serde / storage spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Jia => "jia",
            Self::Yi => "yi",
            Self::Bing => "bing",
            Self::EcgAcceptable => "acceptable",
            Self::EcgUnacceptable => "unacceptable",
        }
    }

    /// Label in Simplified Chinese.
    pub const fn label_zh(self) -> &'static str {
        match self {
            Self::Jia => "甲级",
            Self::Yi => "乙级",
            Self::Bing => "丙级",
            Self::EcgAcceptable => "合格",
            Self::EcgUnacceptable => "不合格",
        }
    }

    /// Good enough for mutual recognition: 甲, 乙, acceptable.
    pub const fn passes(self) -> bool {
        matches!(self, Self::Jia | Self::Yi | Self::EcgAcceptable)
    }

    /// Whether this grade applies to reports of `kind` (甲/乙/丙 to images,
    /// acceptable/unacceptable to ECGs).
    pub const fn valid_for(self, kind: ReportKind) -> bool {
        match kind {
            ReportKind::Imaging => matches!(self, Self::Jia | Self::Yi | Self::Bing),
            ReportKind::Ecg => matches!(self, Self::EcgAcceptable | Self::EcgUnacceptable),
        }
    }
}

impl fmt::Display for QcGrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown QC grade spelling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown QC grade {0:?}")]
pub struct ParseQcGradeError(pub String);

impl FromStr for QcGrade {
    type Err = ParseQcGradeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| ParseQcGradeError(s.to_owned()))
    }
}

/// One examination of the alliance's catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamType {
    /// Stable ASCII code (the default catalogue uses the template codes).
    pub code: String,
    /// Name in Simplified Chinese.
    pub name: String,
    pub name_en: String,
    /// The main DICOM modality.
    pub modality: String,
    /// DICOM Body Part Examined, if any.
    pub body_part: Option<String>,
    pub kind: ReportKind,
    /// The report template ([`crate::report_template::Template::code`]).
    pub template_code: String,
    /// Results of this examination may be mutually recognised.
    pub recognition_eligible: bool,
    /// How many days after the study its result is recognised; None: no limit.
    pub validity_days: Option<u32>,
}

/// The default catalogue: one exam type per default template, all eligible for
/// recognition, no validity limit.
pub fn default_exam_catalogue() -> Vec<ExamType> {
    default_templates()
        .into_iter()
        .map(|t| ExamType {
            modality: t.modality.first().cloned().unwrap_or_default(),
            code: t.code.clone(),
            name: t.name,
            name_en: t.name_en,
            body_part: t.body_part,
            kind: t.kind,
            template_code: t.code,
            recognition_eligible: true,
            validity_days: None,
        })
        .collect()
}

/// Whether a report version carries the HR (互认) mark: its exam type is eligible, it is
/// signed, not superseded by a correction, and its QC grade passes. No grade, no mark.
pub fn hr_mark(eligible: bool, signed: bool, superseded: bool, qc: Option<QcGrade>) -> bool {
    eligible && signed && !superseded && qc.is_some_and(QcGrade::passes)
}

/// Days since 0000-03-01 of the proleptic Gregorian calendar shifted to the Unix epoch
/// (1970-01-01 = 0), for a valid date.
pub(crate) fn days_from_civil(y: i32, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The age in days of a study dated `study_date` (DICOM DA `YYYYMMDD`; surrounding
/// spaces, as DICOM pads, are ignored) on `today` (`(year, month, day)`, local date).
///
/// None when either date is not a valid calendar date. A study dated after `today`
/// gives a negative age (a clock or data error: [`within_validity`] refuses it).
pub fn age_days(study_date: &str, today: (i32, u32, u32)) -> Option<i64> {
    let s = study_date.trim();
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i32 = s[0..4].parse().ok()?;
    let m: u32 = s[4..6].parse().ok()?;
    let d: u32 = s[6..8].parse().ok()?;
    let study = days_from_civil(y, m, d)?;
    let now = days_from_civil(today.0, today.1, today.2)?;
    Some(now - study)
}

/// Whether a result `age_days` old is still recognised under `validity_days` (None: no
/// limit; the last valid day is `validity_days` itself). A negative age (a study dated in
/// the future) is never within validity.
pub fn within_validity(age_days: i64, validity_days: Option<u32>) -> bool {
    age_days >= 0 && validity_days.is_none_or(|v| age_days <= i64::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_serde_and_rules() {
        for (g, s) in [
            (QcGrade::Jia, "\"jia\""),
            (QcGrade::Yi, "\"yi\""),
            (QcGrade::Bing, "\"bing\""),
            (QcGrade::EcgAcceptable, "\"acceptable\""),
            (QcGrade::EcgUnacceptable, "\"unacceptable\""),
        ] {
            assert_eq!(serde_json::to_string(&g).unwrap(), s);
            assert_eq!(serde_json::from_str::<QcGrade>(s).unwrap(), g);
            assert_eq!(g.as_str().parse::<QcGrade>().unwrap(), g);
        }
        assert!("甲".parse::<QcGrade>().is_err());
        let passing: Vec<QcGrade> = QcGrade::ALL.into_iter().filter(|g| g.passes()).collect();
        assert_eq!(passing, [QcGrade::Jia, QcGrade::Yi, QcGrade::EcgAcceptable]);
        assert!(QcGrade::Bing.valid_for(ReportKind::Imaging));
        assert!(!QcGrade::Bing.valid_for(ReportKind::Ecg));
        assert!(QcGrade::EcgUnacceptable.valid_for(ReportKind::Ecg));
        assert!(!QcGrade::EcgAcceptable.valid_for(ReportKind::Imaging));
        assert!(!QcGrade::Jia.valid_for(ReportKind::Ecg));
        assert_eq!(QcGrade::Yi.label_zh(), "乙级");
    }

    #[test]
    fn catalogue_matches_templates() {
        let cat = default_exam_catalogue();
        let templates = default_templates();
        assert_eq!(cat.len(), templates.len());
        for e in &cat {
            let t = templates
                .iter()
                .find(|t| t.code == e.template_code)
                .unwrap();
            assert!(t.modality.contains(&e.modality));
            assert_eq!(e.kind, t.kind);
            assert!(e.recognition_eligible);
            assert_eq!(e.validity_days, None);
        }
        assert!(
            cat.iter()
                .any(|e| e.modality == "ECG" && e.body_part.is_none())
        );
    }

    #[test]
    fn hr_mark_rules() {
        let ok = Some(QcGrade::Jia);
        assert!(hr_mark(true, true, false, ok));
        assert!(hr_mark(true, true, false, Some(QcGrade::Yi)));
        assert!(hr_mark(true, true, false, Some(QcGrade::EcgAcceptable)));
        assert!(!hr_mark(false, true, false, ok));
        assert!(!hr_mark(true, false, false, ok));
        assert!(!hr_mark(true, true, true, ok));
        assert!(!hr_mark(true, true, false, None));
        assert!(!hr_mark(true, true, false, Some(QcGrade::Bing)));
        assert!(!hr_mark(true, true, false, Some(QcGrade::EcgUnacceptable)));
    }

    #[test]
    fn day_arithmetic() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(days_from_civil(1969, 12, 31), Some(-1));
        assert_eq!(age_days("20240115", (2024, 1, 15)), Some(0));
        assert_eq!(age_days("20240115 ", (2024, 1, 16)), Some(1));
        // 2024 is a leap year: Feb has 29 days.
        assert_eq!(age_days("20240228", (2024, 3, 1)), Some(2));
        assert_eq!(age_days("20240229", (2025, 2, 28)), Some(365));
        // 2023 is not; 1900 is not; 2000 is.
        assert_eq!(age_days("20230228", (2023, 3, 1)), Some(1));
        assert_eq!(age_days("20230229", (2023, 3, 1)), None);
        assert_eq!(age_days("19000229", (2023, 3, 1)), None);
        assert_eq!(age_days("20000229", (2000, 3, 1)), Some(1));
        assert_eq!(age_days("20231231", (2024, 12, 31)), Some(366));
        assert_eq!(age_days("20230101", (2024, 1, 1)), Some(365));
        // Invalid input.
        for bad in [
            "",
            "2024011",
            "2024-01-15",
            "20241301",
            "20240100",
            "2024011a",
        ] {
            assert_eq!(age_days(bad, (2024, 1, 15)), None, "{bad:?}");
        }
        assert_eq!(age_days("20240115", (2024, 2, 30)), None);
        // The future: negative.
        assert_eq!(age_days("20240116", (2024, 1, 15)), Some(-1));
    }

    #[test]
    fn validity() {
        assert!(within_validity(0, None));
        assert!(within_validity(10_000, None));
        assert!(within_validity(30, Some(30)));
        assert!(!within_validity(31, Some(30)));
        assert!(within_validity(0, Some(0)));
        assert!(!within_validity(-1, None));
        assert!(!within_validity(-1, Some(30)));
    }
}
