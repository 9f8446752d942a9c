//! Report content, the pure part: report templates (sections with their "normal" text and
//! structured fields), the default templates a new alliance starts from, the
//! critical-value categories, and the machine-measurement prefill of ECG reports with the
//! reader's confirmation of every machine value.
//!
//! Templates travel as JSON over the API and are stored as JSON per alliance; the defaults
//! here are written as a Chinese radiologist / ECG physician writes a normal report. A
//! report body is two string maps: sections (`findings`, `impression`, `recommendation`)
//! and structured fields by [`FieldDef::key`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The section keys a template may use, in report order.
pub const SECTION_KEYS: [&str; 3] = ["findings", "impression", "recommendation"];

/// What is being reported: images (DX/CR/CT/MR/US …) or an ECG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    Imaging,
    Ecg,
}

/// A report template for one kind of examination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Stable ASCII code (`dx_chest_pa` …), unique within an alliance.
    pub code: String,
    /// Name in Simplified Chinese, as printed on the report.
    pub name: String,
    pub name_en: String,
    /// DICOM modalities (0008,0060) the template applies to.
    pub modality: Vec<String>,
    /// DICOM Body Part Examined (0018,0015), if the template is for one body part.
    pub body_part: Option<String>,
    pub kind: ReportKind,
    pub sections: Vec<SectionDef>,
    pub fields: Vec<FieldDef>,
}

/// One free-text section of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionDef {
    /// One of [`SECTION_KEYS`].
    pub key: String,
    /// Label in Simplified Chinese (`影像所见` …).
    pub label: String,
    pub label_en: String,
    /// The text of a normal examination ("normal fill"); may be empty.
    pub normal: String,
}

/// One structured field of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    /// ASCII snake_case key, unique within the template.
    pub key: String,
    /// Label in Simplified Chinese.
    pub label: String,
    pub label_en: String,
    pub kind: FieldKind,
    /// Must be filled in before the report is submitted.
    pub required: bool,
    /// The value of a normal examination, if there is one (measurements have none).
    pub normal: Option<String>,
}

/// The type of a structured field. Values are always strings in the report body: numbers
/// in plain decimal, booleans `true`/`false`, choices one of the options verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    /// A number in `unit` (`bpm`, `ms`, `deg`, `mm` …; empty for a ratio), within
    /// `min..=max` where given.
    Number {
        unit: String,
        min: Option<f64>,
        max: Option<f64>,
    },
    Choice {
        options: Vec<String>,
    },
    Bool,
}

/// Why a template is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template code must be non-empty ASCII [a-z0-9_]")]
    BadCode,
    #[error("template has no modality")]
    NoModality,
    #[error("unknown section key {0:?} (expected findings, impression or recommendation)")]
    UnknownSection(String),
    #[error("section {0:?} appears more than once")]
    DuplicateSection(String),
    #[error("template has no impression section")]
    NoImpression,
    #[error("field key {0:?} must be non-empty ASCII [a-z0-9_]")]
    BadFieldKey(String),
    #[error("field {0:?} appears more than once")]
    DuplicateField(String),
    #[error("field {0:?}: min is greater than max, or a bound is not finite")]
    BadRange(String),
    #[error("field {0:?}: a choice needs at least one option, all distinct and non-empty")]
    BadChoice(String),
    #[error("field {key:?}: the normal value is not valid: {reason}")]
    BadNormal { key: String, reason: String },
}

/// Why a structured field value (or a machine-value confirmation) is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum FieldError {
    #[error("unknown field {key:?}")]
    Unknown { key: String },
    #[error("required field {key:?} is missing")]
    Missing { key: String },
    #[error("field {key:?}: {value:?} is not a number")]
    NotANumber { key: String, value: String },
    #[error("field {key:?}: {value} is outside {min}..{max}")]
    OutOfRange {
        key: String,
        value: String,
        /// The bounds as written (empty when open).
        min: String,
        max: String,
    },
    #[error("field {key:?}: {value:?} is not one of the options")]
    NotAChoice { key: String, value: String },
    #[error("field {key:?}: {value:?} is not true or false")]
    NotABool { key: String, value: String },
    #[error("machine values neither confirmed nor edited: {}", keys.join(", "))]
    Unconfirmed { keys: Vec<String> },
}

fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn fmt_bound(b: Option<f64>) -> String {
    b.map(|v| v.to_string()).unwrap_or_default()
}

impl FieldDef {
    /// Checks one non-empty value against the field's kind.
    pub fn check_value(&self, value: &str) -> Result<(), FieldError> {
        let key = self.key.clone();
        let v = value.trim();
        match &self.kind {
            FieldKind::Text => Ok(()),
            FieldKind::Number { min, max, .. } => {
                let n: f64 = v
                    .parse()
                    .ok()
                    .filter(|n: &f64| n.is_finite())
                    .ok_or_else(|| FieldError::NotANumber {
                        key: key.clone(),
                        value: value.to_owned(),
                    })?;
                if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                    return Err(FieldError::OutOfRange {
                        key,
                        value: v.to_owned(),
                        min: fmt_bound(*min),
                        max: fmt_bound(*max),
                    });
                }
                Ok(())
            }
            FieldKind::Choice { options } => {
                if options.iter().any(|o| o == v) {
                    Ok(())
                } else {
                    Err(FieldError::NotAChoice {
                        key,
                        value: value.to_owned(),
                    })
                }
            }
            FieldKind::Bool => match v {
                "true" | "false" => Ok(()),
                _ => Err(FieldError::NotABool {
                    key,
                    value: value.to_owned(),
                }),
            },
        }
    }
}

impl Template {
    /// Checks the template itself: codes, unknown or repeated sections (an `impression`
    /// is required: it is the report's conclusion), repeated field keys, number ranges
    /// (`min <= max`, finite), non-empty distinct choices, and that every normal value is
    /// a valid value of its field.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if !is_code(&self.code) {
            return Err(TemplateError::BadCode);
        }
        if self.modality.iter().all(|m| m.trim().is_empty()) {
            return Err(TemplateError::NoModality);
        }
        let mut seen = BTreeSet::new();
        for s in &self.sections {
            if !SECTION_KEYS.contains(&s.key.as_str()) {
                return Err(TemplateError::UnknownSection(s.key.clone()));
            }
            if !seen.insert(s.key.as_str()) {
                return Err(TemplateError::DuplicateSection(s.key.clone()));
            }
        }
        if !seen.contains("impression") {
            return Err(TemplateError::NoImpression);
        }
        let mut seen = BTreeSet::new();
        for f in &self.fields {
            if !is_code(&f.key) {
                return Err(TemplateError::BadFieldKey(f.key.clone()));
            }
            if !seen.insert(f.key.as_str()) {
                return Err(TemplateError::DuplicateField(f.key.clone()));
            }
            match &f.kind {
                FieldKind::Number { min, max, .. } => {
                    let finite = min.is_none_or(f64::is_finite) && max.is_none_or(f64::is_finite);
                    if !finite || matches!((min, max), (Some(a), Some(b)) if a > b) {
                        return Err(TemplateError::BadRange(f.key.clone()));
                    }
                }
                FieldKind::Choice { options } => {
                    let distinct: BTreeSet<&str> = options.iter().map(|o| o.trim()).collect();
                    if options.is_empty()
                        || distinct.len() != options.len()
                        || distinct.contains("")
                    {
                        return Err(TemplateError::BadChoice(f.key.clone()));
                    }
                }
                FieldKind::Text | FieldKind::Bool => {}
            }
            if let Some(n) = &f.normal {
                f.check_value(n).map_err(|e| TemplateError::BadNormal {
                    key: f.key.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(())
    }

    /// The field definition of `key`.
    pub fn field(&self, key: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// Checks the structured fields of a report against the template and returns every
    /// problem found: unknown keys, values of the wrong type (numbers: parse and range;
    /// choices: membership; booleans: `true`/`false`) and, when `submitting`, required
    /// fields that are missing. An empty (or blank) value counts as missing and is
    /// otherwise accepted, so a draft may hold half-filled fields.
    pub fn check_fields(
        &self,
        fields: &BTreeMap<String, String>,
        submitting: bool,
    ) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (key, value) in fields {
            match self.field(key) {
                None => errors.push(FieldError::Unknown { key: key.clone() }),
                Some(def) if !value.trim().is_empty() => {
                    if let Err(e) = def.check_value(value) {
                        errors.push(e);
                    }
                }
                Some(_) => {}
            }
        }
        if submitting {
            for def in self.fields.iter().filter(|f| f.required) {
                if fields.get(&def.key).is_none_or(|v| v.trim().is_empty()) {
                    errors.push(FieldError::Missing {
                        key: def.key.clone(),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The "normal fill": every section's normal text (empty ones included) and every
    /// field that has a normal value.
    pub fn normal_fill(&self) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let sections = self
            .sections
            .iter()
            .map(|s| (s.key.clone(), s.normal.clone()))
            .collect();
        let fields = self
            .fields
            .iter()
            .filter_map(|f| f.normal.clone().map(|n| (f.key.clone(), n)))
            .collect();
        (sections, fields)
    }
}

// ---- default templates ----

fn section(key: &str, label: &str, label_en: &str, normal: &str) -> SectionDef {
    SectionDef {
        key: key.to_owned(),
        label: label.to_owned(),
        label_en: label_en.to_owned(),
        normal: normal.to_owned(),
    }
}

fn imaging_sections(findings: &str, impression: &str) -> Vec<SectionDef> {
    vec![
        section("findings", "影像所见", "Findings", findings),
        section("impression", "诊断意见", "Impression", impression),
        section("recommendation", "建议", "Recommendation", ""),
    ]
}

fn field(
    key: &str,
    label: &str,
    label_en: &str,
    kind: FieldKind,
    required: bool,
    normal: Option<&str>,
) -> FieldDef {
    FieldDef {
        key: key.to_owned(),
        label: label.to_owned(),
        label_en: label_en.to_owned(),
        kind,
        required,
        normal: normal.map(str::to_owned),
    }
}

fn number(unit: &str, min: f64, max: f64) -> FieldKind {
    FieldKind::Number {
        unit: unit.to_owned(),
        min: Some(min),
        max: Some(max),
    }
}

fn choice(options: &[&str]) -> FieldKind {
    FieldKind::Choice {
        options: options.iter().map(|o| (*o).to_owned()).collect(),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

const EFFUSION: [&str; 4] = ["无", "少量", "中量", "大量"];

/// Template code of the resting 12-lead ECG.
pub const ECG_TEMPLATE_CODE: &str = "ecg_12_lead";

/// ECG template field keys (also the keys of [`ecg_prefill`]).
pub mod ecg_keys {
    pub const HEART_RATE: &str = "heart_rate";
    pub const RHYTHM: &str = "rhythm";
    pub const PR_INTERVAL: &str = "pr_interval";
    pub const QRS_DURATION: &str = "qrs_duration";
    pub const QT_INTERVAL: &str = "qt_interval";
    /// QTc by Bazett (the one reported by default in China).
    pub const QTC_INTERVAL: &str = "qtc_interval";
    pub const QTC_FRIDERICIA: &str = "qtc_fridericia";
    pub const P_AXIS: &str = "p_axis";
    pub const QRS_AXIS: &str = "qrs_axis";
    pub const T_AXIS: &str = "t_axis";
    /// Critical-value category codes, comma-separated (see [`super::default_critical_categories`]).
    pub const CRITICAL: &str = "critical";
}

/// The rhythm options of the ECG template.
pub const ECG_RHYTHMS: [&str; 12] = [
    "窦性心律",
    "窦性心动过缓",
    "窦性心动过速",
    "窦性心律不齐",
    "心房颤动",
    "心房扑动",
    "室上性心动过速",
    "交界性心律",
    "室性心动过速",
    "心室扑动/心室颤动",
    "起搏心律",
    "其他",
];

/// The templates a new alliance starts from: 胸部正位片, 头颅CT平扫, 腹部超声, 常规十二导联
/// 心电图, 胸部CT平扫, 腰椎正侧位片. Each one passes [`Template::validate`].
pub fn default_templates() -> Vec<Template> {
    use ecg_keys as k;
    vec![
        Template {
            code: "dx_chest_pa".into(),
            name: "胸部正位片".into(),
            name_en: "Chest radiograph, PA view".into(),
            modality: strings(&["DX", "CR"]),
            body_part: Some("CHEST".into()),
            kind: ReportKind::Imaging,
            sections: imaging_sections(
                "胸廓对称。两肺纹理清晰，走行自然，两肺野内未见明显实质性病变。两肺门影不大。\
                 心影大小、形态未见异常。纵隔居中，未见增宽。两膈面光整，两侧肋膈角锐利。\
                 所见骨质未见明显异常。",
                "胸部正位片未见明显异常。",
            ),
            fields: vec![
                field(
                    "projection",
                    "投照体位",
                    "Projection",
                    choice(&["后前位", "前后位"]),
                    false,
                    Some("后前位"),
                ),
                field(
                    "cardiothoracic_ratio",
                    "心胸比",
                    "Cardiothoracic ratio",
                    number("", 0.2, 0.9),
                    false,
                    None,
                ),
                field(
                    "pneumothorax",
                    "气胸",
                    "Pneumothorax",
                    FieldKind::Bool,
                    true,
                    Some("false"),
                ),
                field(
                    "pleural_effusion",
                    "胸腔积液",
                    "Pleural effusion",
                    choice(&EFFUSION),
                    true,
                    Some("无"),
                ),
            ],
        },
        Template {
            code: "ct_head_plain".into(),
            name: "头颅CT平扫".into(),
            name_en: "CT head without contrast".into(),
            modality: strings(&["CT"]),
            body_part: Some("HEAD".into()),
            kind: ReportKind::Imaging,
            sections: imaging_sections(
                "脑实质内未见明显异常密度影，灰白质分界清楚。各脑室、脑池大小及形态未见异常，\
                 脑沟、脑裂未见增宽、加深。中线结构居中。颅骨骨质未见明显异常。",
                "头颅CT平扫未见明显异常。",
            ),
            fields: vec![
                field(
                    "intracranial_hemorrhage",
                    "颅内出血",
                    "Intracranial haemorrhage",
                    FieldKind::Bool,
                    true,
                    Some("false"),
                ),
                field(
                    "hemorrhage_volume_ml",
                    "出血量（估算）",
                    "Estimated haemorrhage volume",
                    number("mL", 0.0, 300.0),
                    false,
                    None,
                ),
                field(
                    "midline_shift_mm",
                    "中线移位",
                    "Midline shift",
                    number("mm", 0.0, 30.0),
                    false,
                    Some("0"),
                ),
            ],
        },
        Template {
            code: "us_abdomen".into(),
            name: "腹部超声（肝、胆、胰、脾）".into(),
            name_en: "Ultrasound, upper abdomen (liver, gallbladder, pancreas, spleen)".into(),
            modality: strings(&["US"]),
            body_part: Some("ABDOMEN".into()),
            kind: ReportKind::Imaging,
            sections: vec![
                section(
                    "findings",
                    "超声所见",
                    "Findings",
                    "肝脏：形态大小正常，包膜光整，实质回声均匀，肝内管道结构清晰，\
                     门静脉主干内径正常。\n\
                     胆囊：大小、形态正常，囊壁光滑，囊内透声好，未见明显异常回声。\
                     胆总管未见扩张。\n\
                     胰腺：形态大小正常，实质回声均匀，主胰管未见扩张。\n\
                     脾脏：形态大小正常，实质回声均匀。",
                ),
                section(
                    "impression",
                    "超声提示",
                    "Impression",
                    "肝、胆、胰、脾超声检查未见明显异常。",
                ),
                section("recommendation", "建议", "Recommendation", ""),
            ],
            fields: vec![
                field(
                    "portal_vein_mm",
                    "门静脉主干内径",
                    "Main portal vein diameter",
                    number("mm", 3.0, 30.0),
                    false,
                    None,
                ),
                field(
                    "cbd_mm",
                    "胆总管内径",
                    "Common bile duct diameter",
                    number("mm", 1.0, 30.0),
                    false,
                    None,
                ),
                field(
                    "spleen_thickness_mm",
                    "脾脏厚径",
                    "Spleen thickness",
                    number("mm", 10.0, 120.0),
                    false,
                    None,
                ),
                field(
                    "gallbladder_stone",
                    "胆囊结石",
                    "Gallbladder stone",
                    FieldKind::Bool,
                    true,
                    Some("false"),
                ),
                field(
                    "ascites",
                    "腹腔积液",
                    "Ascites",
                    choice(&EFFUSION),
                    true,
                    Some("无"),
                ),
            ],
        },
        Template {
            code: ECG_TEMPLATE_CODE.into(),
            name: "常规十二导联心电图".into(),
            name_en: "Resting 12-lead ECG".into(),
            modality: strings(&["ECG"]),
            body_part: None,
            kind: ReportKind::Ecg,
            sections: vec![
                section(
                    "findings",
                    "心电图所见",
                    "Findings",
                    "窦性P波规律出现，PR间期、QRS时限及QT间期在正常范围内，\
                     各导联ST段未见明显偏移，T波未见明显异常。",
                ),
                section(
                    "impression",
                    "心电图诊断",
                    "Interpretation",
                    "1. 窦性心律\n2. 正常心电图",
                ),
                section("recommendation", "建议", "Recommendation", ""),
            ],
            fields: vec![
                field(
                    k::HEART_RATE,
                    "心率",
                    "Heart rate",
                    number("bpm", 10.0, 350.0),
                    true,
                    None,
                ),
                field(
                    k::RHYTHM,
                    "节律",
                    "Rhythm",
                    choice(&ECG_RHYTHMS),
                    true,
                    Some("窦性心律"),
                ),
                field(
                    k::PR_INTERVAL,
                    "PR间期",
                    "PR interval",
                    number("ms", 40.0, 600.0),
                    false,
                    None,
                ),
                field(
                    k::QRS_DURATION,
                    "QRS时限",
                    "QRS duration",
                    number("ms", 40.0, 300.0),
                    true,
                    None,
                ),
                field(
                    k::QT_INTERVAL,
                    "QT间期",
                    "QT interval",
                    number("ms", 150.0, 800.0),
                    true,
                    None,
                ),
                field(
                    k::QTC_INTERVAL,
                    "QTc间期（Bazett）",
                    "QTc (Bazett)",
                    number("ms", 150.0, 800.0),
                    true,
                    None,
                ),
                field(
                    k::QTC_FRIDERICIA,
                    "QTc间期（Fridericia）",
                    "QTc (Fridericia)",
                    number("ms", 150.0, 800.0),
                    false,
                    None,
                ),
                field(
                    k::P_AXIS,
                    "P电轴",
                    "P axis",
                    number("deg", -180.0, 180.0),
                    false,
                    None,
                ),
                field(
                    k::QRS_AXIS,
                    "QRS电轴",
                    "QRS axis",
                    number("deg", -180.0, 180.0),
                    true,
                    None,
                ),
                field(
                    k::T_AXIS,
                    "T电轴",
                    "T axis",
                    number("deg", -180.0, 180.0),
                    false,
                    None,
                ),
                field(
                    k::CRITICAL,
                    "危急值",
                    "Critical values",
                    FieldKind::Text,
                    false,
                    None,
                ),
            ],
        },
        Template {
            code: "ct_chest_plain".into(),
            name: "胸部CT平扫".into(),
            name_en: "CT chest without contrast".into(),
            modality: strings(&["CT"]),
            body_part: Some("CHEST".into()),
            kind: ReportKind::Imaging,
            sections: imaging_sections(
                "胸廓对称。两肺纹理清晰，走行自然，两肺野内未见明显实质性病变及结节影。\
                 气管及各级支气管通畅，管壁未见增厚。两肺门不大，纵隔居中，\
                 纵隔内未见明显肿大淋巴结。心脏大小、形态未见异常，心包未见积液。\
                 两侧胸腔未见积液，胸膜未见增厚。所见骨质未见明显异常。",
                "胸部CT平扫未见明显异常。",
            ),
            fields: vec![
                field(
                    "largest_nodule_mm",
                    "最大结节直径",
                    "Largest nodule diameter",
                    number("mm", 1.0, 100.0),
                    false,
                    None,
                ),
                field(
                    "pneumothorax",
                    "气胸",
                    "Pneumothorax",
                    FieldKind::Bool,
                    true,
                    Some("false"),
                ),
                field(
                    "pleural_effusion",
                    "胸腔积液",
                    "Pleural effusion",
                    choice(&EFFUSION),
                    true,
                    Some("无"),
                ),
            ],
        },
        Template {
            code: "dx_lumbar_ap_lat".into(),
            name: "腰椎正侧位片".into(),
            name_en: "Lumbar spine radiographs, AP and lateral".into(),
            modality: strings(&["DX", "CR"]),
            body_part: Some("LSPINE".into()),
            kind: ReportKind::Imaging,
            sections: imaging_sections(
                "腰椎生理曲度存在，序列整齐。各椎体形态、大小未见异常，骨质结构完整，\
                 未见明显骨质破坏及骨折征象。各椎间隙未见明显狭窄，椎弓根影清晰。\
                 椎旁软组织未见异常。",
                "腰椎正侧位片未见明显异常。",
            ),
            fields: vec![
                field(
                    "spondylolisthesis",
                    "椎体滑脱",
                    "Spondylolisthesis (Meyerding grade)",
                    choice(&["无", "Ⅰ度", "Ⅱ度", "Ⅲ度", "Ⅳ度"]),
                    true,
                    Some("无"),
                ),
                field(
                    "compression_fracture",
                    "椎体压缩性骨折",
                    "Vertebral compression fracture",
                    FieldKind::Bool,
                    true,
                    Some("false"),
                ),
                field(
                    "osteophytes",
                    "骨质增生",
                    "Osteophytes",
                    FieldKind::Bool,
                    false,
                    Some("false"),
                ),
            ],
        },
    ]
}

// ---- critical-value categories ----

/// A critical-value (危急值) category a report can be flagged with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriticalCategory {
    /// Stable ASCII snake_case code.
    pub code: String,
    /// Label in Simplified Chinese.
    pub label: String,
    pub label_en: String,
    pub kind: ReportKind,
}

/// Category codes the ECG machine flags map to (see [`ecg_flag_category`]).
pub mod critical_codes {
    pub const ECG_ACUTE_MI: &str = "ecg_acute_mi";
    pub const ECG_VF_FLUTTER: &str = "ecg_vf_flutter";
    pub const ECG_VT: &str = "ecg_vt";
    pub const ECG_SVT_200: &str = "ecg_svt_200";
    pub const ECG_SEVERE_BRADY_AVB: &str = "ecg_severe_bradycardia_av_block";
    pub const ECG_LONG_RR: &str = "ecg_long_rr";
}

/// The default critical-value categories.
///
/// ECG: the items of 《心电图危急值2017中国专家共识》 (four groups: suspected acute coronary
/// syndrome; severe tachyarrhythmias; severe bradyarrhythmias; others), with the
/// consensus's thresholds in the labels. Imaging: the items common to Chinese hospitals'
/// radiology/ultrasound critical-value lists (no single national list exists).
pub fn default_critical_categories() -> Vec<CriticalCategory> {
    use ReportKind::{Ecg, Imaging};
    use critical_codes as c;
    let items: [(&str, &str, &str, ReportKind); 32] = [
        // 1 疑似急性冠状动脉综合征
        (
            c::ECG_ACUTE_MI,
            "首次发现疑似急性心肌梗死的心电图改变（含急性ST段抬高型心肌梗死）",
            "First finding of ECG changes suggesting acute myocardial infarction (incl. STEMI)",
            Ecg,
        ),
        (
            "ecg_acute_ischemia",
            "首次发现疑似各种急性心肌缺血的心电图改变",
            "First finding of ECG changes suggesting acute myocardial ischaemia",
            Ecg,
        ),
        (
            "ecg_recurrent_mi",
            "再发急性心肌梗死的心电图改变",
            "ECG changes of recurrent acute myocardial infarction",
            Ecg,
        ),
        // 2 严重快速性心律失常
        (
            c::ECG_VF_FLUTTER,
            "心室扑动、心室颤动",
            "Ventricular flutter or fibrillation",
            Ecg,
        ),
        (
            c::ECG_VT,
            "室性心动过速，心室率≥150次/分，持续≥30 s或持续不足30 s伴血流动力学障碍",
            "Ventricular tachycardia ≥150/min lasting ≥30 s, or shorter with haemodynamic compromise",
            Ecg,
        ),
        (
            "ecg_tdp_polymorphic_vt",
            "尖端扭转型室性心动过速、多形性室性心动过速、双向性室性心动过速",
            "Torsades de pointes, polymorphic or bidirectional ventricular tachycardia",
            Ecg,
        ),
        (
            c::ECG_SVT_200,
            "各种类型室上性心动过速，心室率≥200次/分",
            "Supraventricular tachycardia of any type with ventricular rate ≥200/min",
            Ecg,
        ),
        (
            "ecg_preexcited_af",
            "心房颤动伴心室预激，最短RR间期≤250 ms",
            "Pre-excited atrial fibrillation with shortest RR interval ≤250 ms",
            Ecg,
        ),
        // 3 严重缓慢性心律失常
        (
            c::ECG_SEVERE_BRADY_AVB,
            "严重心动过缓、高度及三度房室阻滞，平均心室率≤35次/分",
            "Severe bradycardia, high-grade or third-degree AV block, mean ventricular rate ≤35/min",
            Ecg,
        ),
        (
            c::ECG_LONG_RR,
            "长RR间期：伴症状≥3.0 s，无症状≥5.0 s",
            "Long RR interval ≥3.0 s with symptoms, ≥5.0 s without",
            Ecg,
        ),
        // 4 其他
        (
            "ecg_severe_hypokalemia",
            "提示严重低钾血症的心电图表现（QT(U)显著延长、出现快速性心律失常，结合临床实验室检查）",
            "ECG suggesting severe hypokalaemia (markedly prolonged QT(U), tachyarrhythmia; with laboratory results)",
            Ecg,
        ),
        (
            "ecg_severe_hyperkalemia",
            "提示严重高钾血症的心电图表现（窦室传导，结合临床实验室检查）",
            "ECG suggesting severe hyperkalaemia (sinoventricular conduction; with laboratory results)",
            Ecg,
        ),
        (
            "ecg_acute_pe",
            "疑似急性肺栓塞的心电图表现（结合临床及相关检查）",
            "ECG suggesting acute pulmonary embolism (with clinical findings)",
            Ecg,
        ),
        (
            "ecg_qtc_550",
            "QT间期延长：QTc≥550 ms",
            "QT prolongation: QTc ≥550 ms",
            Ecg,
        ),
        (
            "ecg_t_wave_alternans",
            "显性T波电交替",
            "Macroscopic T-wave alternans",
            Ecg,
        ),
        (
            "ecg_r_on_t",
            "R on T型室性早搏",
            "R-on-T premature ventricular complexes",
            Ecg,
        ),
        // imaging
        (
            "img_intracranial_hemorrhage",
            "急性颅内出血（脑实质出血、蛛网膜下腔出血、急性硬膜外/硬膜下血肿）",
            "Acute intracranial haemorrhage (parenchymal, subarachnoid, acute epidural/subdural)",
            Imaging,
        ),
        (
            "img_large_cerebral_infarction",
            "大面积脑梗死",
            "Large-territory cerebral infarction",
            Imaging,
        ),
        (
            "img_brain_herniation",
            "颅内高压、脑疝",
            "Raised intracranial pressure, brain herniation",
            Imaging,
        ),
        (
            "img_tension_pneumothorax",
            "张力性气胸、大量气胸",
            "Tension or large pneumothorax",
            Imaging,
        ),
        (
            "img_airway_foreign_body",
            "气管、支气管异物",
            "Tracheal or bronchial foreign body",
            Imaging,
        ),
        (
            "img_pulmonary_embolism",
            "肺动脉栓塞",
            "Pulmonary embolism",
            Imaging,
        ),
        (
            "img_aortic_dissection",
            "主动脉夹层",
            "Aortic dissection",
            Imaging,
        ),
        (
            "img_aortic_aneurysm_rupture",
            "主动脉瘤破裂",
            "Ruptured aortic aneurysm",
            Imaging,
        ),
        (
            "img_pericardial_tamponade",
            "大量心包积液伴心脏压塞",
            "Large pericardial effusion with cardiac tamponade",
            Imaging,
        ),
        (
            "img_gi_perforation",
            "消化道穿孔",
            "Gastrointestinal perforation",
            Imaging,
        ),
        (
            "img_acute_bowel_obstruction",
            "急性肠梗阻（含肠套叠）",
            "Acute bowel obstruction (incl. intussusception)",
            Imaging,
        ),
        (
            "img_solid_organ_rupture",
            "肝、脾、肾等实质脏器破裂，腹腔大出血",
            "Rupture of liver, spleen, kidney or other solid organ; massive intra-abdominal haemorrhage",
            Imaging,
        ),
        (
            "img_ectopic_pregnancy_rupture",
            "异位妊娠（宫外孕）破裂伴腹腔内出血",
            "Ruptured ectopic pregnancy with intra-abdominal haemorrhage",
            Imaging,
        ),
        (
            "img_acute_necrotizing_pancreatitis",
            "急性出血坏死性胰腺炎",
            "Acute haemorrhagic necrotising pancreatitis",
            Imaging,
        ),
        (
            "img_esophageal_foreign_body",
            "食管异物",
            "Oesophageal foreign body",
            Imaging,
        ),
        (
            "img_unstable_spine_fracture",
            "颈椎骨折、脱位等不稳定性脊柱损伤",
            "Unstable spinal injury (cervical fracture or dislocation)",
            Imaging,
        ),
    ];
    items
        .into_iter()
        .map(|(code, label, label_en, kind)| CriticalCategory {
            code: code.to_owned(),
            label: label.to_owned(),
            label_en: label_en.to_owned(),
            kind,
        })
        .collect()
}

/// The critical-value category of a `dxhub_ecg` machine flag code (`CriticalFlag::code`).
///
/// The machine's thresholds are screening thresholds, not the consensus's: `hr-below-40`
/// (< 40/min; consensus ≤ 35/min), `hr-above-180` (> 180/min; consensus ≥ 200/min for
/// SVT) and `pause-3s` (≥ 3 s without symptoms known; consensus ≥ 5 s without symptoms)
/// flag earlier, and the reader decides.
pub fn ecg_flag_category(flag_code: &str) -> Option<&'static str> {
    use critical_codes as c;
    Some(match flag_code {
        "vf-flutter" => c::ECG_VF_FLUTTER,
        "pause-3s" => c::ECG_LONG_RR,
        "ventricular-tachycardia" => c::ECG_VT,
        "av-block-3" | "hr-below-40" => c::ECG_SEVERE_BRADY_AVB,
        "stemi" => c::ECG_ACUTE_MI,
        "hr-above-180" => c::ECG_SVT_200,
        _ => return None,
    })
}

// ---- ECG machine prefill and confirmation ----

/// Where every [`MachineValue`] comes from.
pub const MACHINE_SOURCE: &str = "machine";

/// One machine measurement offered for an ECG template field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineValue {
    /// The ECG template field key ([`ecg_keys`]).
    pub key: String,
    /// Label in Simplified Chinese (the template field's).
    pub label: String,
    /// The value as the field would hold it (numbers rounded to whole units); None when
    /// the machine could not measure it.
    pub value: Option<String>,
    /// Unit of a numeric value (`bpm`, `ms`, `deg`); empty otherwise.
    pub unit: String,
    /// Always [`MACHINE_SOURCE`].
    pub source: String,
}

fn json_f64(v: &serde_json::Value, key: &str) -> Option<f64> {
    v.get(key)?.as_f64().filter(|x| x.is_finite())
}

fn json_bool(v: &serde_json::Value, key: &str) -> bool {
    v.get(key).and_then(serde_json::Value::as_bool) == Some(true)
}

/// A whole number, without "-0".
fn whole(x: f64) -> String {
    let r = x.round();
    if r == 0.0 {
        "0".to_owned()
    } else {
        format!("{r:.0}")
    }
}

/// The rhythm option the machine's rhythm statements suggest, if any.
fn machine_rhythm(r: &serde_json::Value) -> Option<&'static str> {
    if json_bool(r, "ventricular_fibrillation_suspected") {
        Some("心室扑动/心室颤动")
    } else if json_bool(r, "wide_qrs_tachycardia") {
        Some("室性心动过速")
    } else if json_bool(r, "atrial_fibrillation_suspected") {
        Some("心房颤动")
    } else if json_bool(r, "sinus_bradycardia") {
        Some("窦性心动过缓")
    } else if json_bool(r, "sinus_tachycardia") {
        Some("窦性心动过速")
    } else if json_bool(r, "sinus_rhythm") {
        Some(if json_bool(r, "irregular") {
            "窦性心律不齐"
        } else {
            "窦性心律"
        })
    } else {
        None
    }
}

/// The machine values of an ECG, from the JSON of a `dxhub_ecg::analysis::Analysis`, one
/// per measured field of the ECG template (in template order): heart rate, rhythm, PR,
/// QRS, QT, QTc (Bazett, and Fridericia), P/QRS/T axes, and the critical-value
/// categories of its machine flags (comma-separated codes, see [`ecg_flag_category`]; None
/// without flags). Missing or non-numeric members give `value: None`.
pub fn ecg_prefill(analysis: &serde_json::Value) -> Vec<MachineValue> {
    use ecg_keys as k;
    let rhythm = analysis
        .get("rhythm")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let mut critical: Vec<&'static str> = Vec::new();
    for code in analysis
        .get("critical")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("code").and_then(serde_json::Value::as_str))
        .filter_map(ecg_flag_category)
    {
        if !critical.contains(&code) {
            critical.push(code);
        }
    }
    let num = |member: &str| json_f64(analysis, member).map(whole);
    let rows: [(&str, Option<String>); 11] = [
        (k::HEART_RATE, num("heart_rate_bpm")),
        (k::RHYTHM, machine_rhythm(&rhythm).map(str::to_owned)),
        (k::PR_INTERVAL, num("pr_ms")),
        (k::QRS_DURATION, num("qrs_ms")),
        (k::QT_INTERVAL, num("qt_ms")),
        (k::QTC_INTERVAL, num("qtc_bazett_ms")),
        (k::QTC_FRIDERICIA, num("qtc_fridericia_ms")),
        (k::P_AXIS, num("p_axis_deg")),
        (k::QRS_AXIS, num("qrs_axis_deg")),
        (k::T_AXIS, num("t_axis_deg")),
        (
            k::CRITICAL,
            (!critical.is_empty()).then(|| critical.join(",")),
        ),
    ];
    let templates = default_templates();
    let ecg = templates.iter().find(|t| t.code == ECG_TEMPLATE_CODE);
    rows.into_iter()
        .map(|(key, value)| {
            let def = ecg.and_then(|t| t.field(key));
            MachineValue {
                key: key.to_owned(),
                label: def.map(|d| d.label.clone()).unwrap_or_default(),
                value,
                unit: match def.map(|d| &d.kind) {
                    Some(FieldKind::Number { unit, .. }) => unit.clone(),
                    _ => String::new(),
                },
                source: MACHINE_SOURCE.to_owned(),
            }
        })
        .collect()
}

/// How the reader dealt with one machine value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationStatus {
    /// Ticked, and the final value is the machine's.
    Confirmed,
    /// The final value differs from the machine's (or the machine had none).
    Edited,
}

/// The record, kept with the report, of one machine value and what was signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub key: String,
    pub machine_value: Option<String>,
    /// The report's value (empty when the reader removed it).
    pub final_value: String,
    pub status: ConfirmationStatus,
}

fn same_value(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (a.parse::<f64>(), b.parse::<f64>()),
            (Ok(x), Ok(y)) if x.is_finite() && x == y
        )
}

/// What became of every machine value at submission.
///
/// A machine value is `confirmed` when its key is in `confirmed_keys` and the final value
/// equals it (numbers compare numerically: `72` = `72.0`), `edited` when the final value
/// differs (ticked or not). A machine value that equals the final value but was not ticked
/// is neither: all such keys are returned in [`FieldError::Unconfirmed`]. A machine value
/// of None needs no confirmation; if the reader entered a value there it is `edited`.
pub fn confirmations(
    machine: &[MachineValue],
    final_fields: &BTreeMap<String, String>,
    confirmed_keys: &[String],
) -> Result<Vec<Confirmation>, FieldError> {
    let mut out = Vec::new();
    let mut unconfirmed = Vec::new();
    for m in machine {
        let final_value = final_fields
            .get(&m.key)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        let status = match &m.value {
            None if final_value.is_empty() => continue,
            None => ConfirmationStatus::Edited,
            Some(mv) if same_value(mv.trim(), &final_value) => {
                if confirmed_keys.contains(&m.key) {
                    ConfirmationStatus::Confirmed
                } else {
                    unconfirmed.push(m.key.clone());
                    continue;
                }
            }
            Some(_) => ConfirmationStatus::Edited,
        };
        out.push(Confirmation {
            key: m.key.clone(),
            machine_value: m.value.clone(),
            final_value,
            status,
        });
    }
    if unconfirmed.is_empty() {
        Ok(out)
    } else {
        Err(FieldError::Unconfirmed { keys: unconfirmed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecg() -> Template {
        default_templates()
            .into_iter()
            .find(|t| t.code == ECG_TEMPLATE_CODE)
            .unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn default_templates_are_valid_and_distinct() {
        let all = default_templates();
        assert!(all.len() >= 6);
        let codes: BTreeSet<&str> = all.iter().map(|t| t.code.as_str()).collect();
        assert_eq!(codes.len(), all.len());
        for name in [
            "胸部正位片",
            "头颅CT平扫",
            "常规十二导联心电图",
            "胸部CT平扫",
            "腰椎正侧位片",
        ] {
            assert!(all.iter().any(|t| t.name == name), "{name}");
        }
        assert!(all.iter().any(|t| t.name.starts_with("腹部超声")));
        for t in &all {
            t.validate().unwrap_or_else(|e| panic!("{}: {e}", t.code));
            let (sections, fields) = t.normal_fill();
            assert!(!sections["findings"].is_empty(), "{}", t.code);
            assert!(!sections["impression"].is_empty(), "{}", t.code);
            // The normal fill is a valid draft.
            t.check_fields(&fields, false).unwrap();
        }
    }

    #[test]
    fn chest_normal_text() {
        let t = &default_templates()[0];
        let (s, f) = t.normal_fill();
        assert_eq!(s["impression"], "胸部正位片未见明显异常。");
        assert!(s["findings"].contains("肋膈角锐利"));
        assert_eq!(f["pneumothorax"], "false");
        assert_eq!(s["recommendation"], "");
    }

    #[test]
    fn template_roundtrips_as_json() {
        let t = ecg();
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["kind"], "ecg");
        assert_eq!(json["fields"][0]["kind"]["type"], "number");
        assert_eq!(json["fields"][0]["kind"]["unit"], "bpm");
        let back: Template = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn validate_rejects_bad_templates() {
        let base = ecg();
        let mut t = base.clone();
        t.sections[2].key = "conclusion".into();
        assert_eq!(
            t.validate(),
            Err(TemplateError::UnknownSection("conclusion".into()))
        );
        let mut t = base.clone();
        t.sections[2].key = "findings".into();
        assert_eq!(
            t.validate(),
            Err(TemplateError::DuplicateSection("findings".into()))
        );
        let mut t = base.clone();
        t.sections.retain(|s| s.key != "impression");
        assert_eq!(t.validate(), Err(TemplateError::NoImpression));
        let mut t = base.clone();
        t.fields[1].key = "heart_rate".into();
        assert_eq!(
            t.validate(),
            Err(TemplateError::DuplicateField("heart_rate".into()))
        );
        let mut t = base.clone();
        t.fields[0].kind = number("bpm", 300.0, 20.0);
        assert_eq!(
            t.validate(),
            Err(TemplateError::BadRange("heart_rate".into()))
        );
        let mut t = base.clone();
        t.fields[0].kind = FieldKind::Number {
            unit: "bpm".into(),
            min: Some(f64::NAN),
            max: None,
        };
        assert_eq!(
            t.validate(),
            Err(TemplateError::BadRange("heart_rate".into()))
        );
        let mut t = base.clone();
        t.fields[1].kind = choice(&[]);
        assert_eq!(t.validate(), Err(TemplateError::BadChoice("rhythm".into())));
        let mut t = base.clone();
        t.fields[1].kind = choice(&["a", "a"]);
        assert_eq!(t.validate(), Err(TemplateError::BadChoice("rhythm".into())));
        let mut t = base.clone();
        t.fields[1].normal = Some("不存在".into());
        assert!(matches!(t.validate(), Err(TemplateError::BadNormal { .. })));
        let mut t = base.clone();
        t.fields[1].key = "Rhythm".into();
        assert!(matches!(t.validate(), Err(TemplateError::BadFieldKey(_))));
        let mut t = base;
        t.code = "心电图".into();
        assert_eq!(t.validate(), Err(TemplateError::BadCode));
    }

    #[test]
    fn check_fields_reports_every_problem() {
        let t = ecg();
        let fields = map(&[
            ("heart_rate", "abc"),
            ("qrs_duration", "900"),
            ("rhythm", "窦性节律"),
            ("bogus", "1"),
            ("qt_interval", "400"),
        ]);
        let errs = t.check_fields(&fields, false).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs.contains(&FieldError::Unknown {
            key: "bogus".into()
        }));
        assert!(errs.contains(&FieldError::NotANumber {
            key: "heart_rate".into(),
            value: "abc".into()
        }));
        assert!(errs.contains(&FieldError::OutOfRange {
            key: "qrs_duration".into(),
            value: "900".into(),
            min: "40".into(),
            max: "300".into()
        }));
        assert!(errs.contains(&FieldError::NotAChoice {
            key: "rhythm".into(),
            value: "窦性节律".into()
        }));
    }

    #[test]
    fn required_only_on_submit() {
        let t = ecg();
        let draft = map(&[("heart_rate", "72"), ("qrs_axis", "")]);
        assert!(t.check_fields(&draft, false).is_ok());
        let errs = t.check_fields(&draft, true).unwrap_err();
        let missing: Vec<&str> = errs
            .iter()
            .filter_map(|e| match e {
                FieldError::Missing { key } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            missing,
            [
                "rhythm",
                "qrs_duration",
                "qt_interval",
                "qtc_interval",
                "qrs_axis"
            ]
        );
        let full = map(&[
            ("heart_rate", "72"),
            ("rhythm", "窦性心律"),
            ("qrs_duration", "92"),
            ("qt_interval", "380"),
            ("qtc_interval", "415.5"),
            ("qrs_axis", "-15"),
        ]);
        assert!(t.check_fields(&full, true).is_ok());
    }

    #[test]
    fn bool_values() {
        let t = &default_templates()[0];
        assert!(
            t.check_fields(&map(&[("pneumothorax", "true")]), false)
                .is_ok()
        );
        assert_eq!(
            t.check_fields(&map(&[("pneumothorax", "是")]), false),
            Err(vec![FieldError::NotABool {
                key: "pneumothorax".into(),
                value: "是".into()
            }])
        );
    }

    #[test]
    fn critical_categories_are_unique_and_cover_machine_flags() {
        let cats = default_critical_categories();
        let codes: BTreeSet<&str> = cats.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes.len(), cats.len());
        for c in &cats {
            assert!(is_code(&c.code), "{}", c.code);
            let prefix = match c.kind {
                ReportKind::Ecg => "ecg_",
                ReportKind::Imaging => "img_",
            };
            assert!(c.code.starts_with(prefix), "{}", c.code);
        }
        for flag in [
            "pause-3s",
            "ventricular-tachycardia",
            "vf-flutter",
            "av-block-3",
            "stemi",
            "hr-below-40",
            "hr-above-180",
        ] {
            let code = ecg_flag_category(flag).unwrap();
            assert!(codes.contains(code), "{flag} → {code}");
        }
        assert_eq!(ecg_flag_category("nonsense"), None);
        assert!(cats.iter().any(|c| c.label == "QT间期延长：QTc≥550 ms"));
    }

    fn analysis() -> serde_json::Value {
        serde_json::json!({
            "label": "machine measurements, unconfirmed",
            "heart_rate_bpm": 71.6,
            "pr_ms": 158.0,
            "qrs_ms": 92.4,
            "qt_ms": 382.0,
            "qtc_bazett_ms": 417.3,
            "qtc_fridericia_ms": 405.1,
            "p_axis_deg": 54.0,
            "qrs_axis_deg": -0.4,
            "t_axis_deg": null,
            "rhythm": {"sinus_rhythm": true, "irregular": false},
            "critical": [
                {"code": "stemi", "message": "", "message_zh": ""},
                {"code": "hr-below-40", "message": "", "message_zh": ""},
                {"code": "av-block-3", "message": "", "message_zh": ""}
            ]
        })
    }

    #[test]
    fn prefill_reads_the_analysis() {
        let m = ecg_prefill(&analysis());
        let get = |k: &str| m.iter().find(|v| v.key == k).unwrap();
        assert_eq!(get("heart_rate").value.as_deref(), Some("72"));
        assert_eq!(get("heart_rate").unit, "bpm");
        assert_eq!(get("heart_rate").label, "心率");
        assert_eq!(get("rhythm").value.as_deref(), Some("窦性心律"));
        assert_eq!(get("qrs_axis").value.as_deref(), Some("0"));
        assert_eq!(get("qtc_interval").value.as_deref(), Some("417"));
        assert_eq!(get("t_axis").value, None);
        assert_eq!(
            get("critical").value.as_deref(),
            Some("ecg_acute_mi,ecg_severe_bradycardia_av_block")
        );
        assert!(m.iter().all(|v| v.source == "machine"));
        // Every key is an ECG template field, and every value is valid there.
        let t = ecg();
        let fields: BTreeMap<String, String> = m
            .iter()
            .filter_map(|v| v.value.clone().map(|x| (v.key.clone(), x)))
            .collect();
        t.check_fields(&fields, false).unwrap();
        assert!(m.iter().all(|v| t.field(&v.key).is_some()));
        // An empty analysis gives no values but no panic.
        assert!(
            ecg_prefill(&serde_json::json!({}))
                .iter()
                .all(|v| v.value.is_none())
        );
    }

    #[test]
    fn confirmations_need_every_machine_value() {
        let m = ecg_prefill(&analysis());
        let mut fin = map(&[
            ("heart_rate", "72"),
            ("rhythm", "窦性心律"),
            ("pr_interval", "158.0"),
            ("qrs_duration", "96"),
            ("qt_interval", "382"),
            ("qtc_interval", "417"),
            ("qtc_fridericia", "405"),
            ("p_axis", "54"),
            ("qrs_axis", "0"),
            ("critical", "ecg_acute_mi"),
        ]);
        let ticked: Vec<String> = [
            "heart_rate",
            "rhythm",
            "pr_interval",
            "qt_interval",
            "qtc_interval",
            "qtc_fridericia",
            "p_axis",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // qrs_axis equals the machine value but was not ticked.
        assert_eq!(
            confirmations(&m, &fin, &ticked),
            Err(FieldError::Unconfirmed {
                keys: vec!["qrs_axis".into()]
            })
        );
        let mut all = ticked.clone();
        all.push("qrs_axis".into());
        fin.insert("t_axis".into(), "40".into());
        let c = confirmations(&m, &fin, &all).unwrap();
        let status = |k: &str| c.iter().find(|x| x.key == k).map(|x| x.status);
        assert_eq!(status("heart_rate"), Some(ConfirmationStatus::Confirmed));
        assert_eq!(status("pr_interval"), Some(ConfirmationStatus::Confirmed));
        assert_eq!(status("qrs_duration"), Some(ConfirmationStatus::Edited));
        assert_eq!(status("critical"), Some(ConfirmationStatus::Edited));
        // No machine value, reader entered one: edited.
        assert_eq!(status("t_axis"), Some(ConfirmationStatus::Edited));
        assert_eq!(c.len(), 11);
        let json = serde_json::to_value(&c[0]).unwrap();
        assert_eq!(json["status"], "confirmed");
        let err = serde_json::to_value(FieldError::Unconfirmed {
            keys: vec!["a".into()],
        })
        .unwrap();
        assert_eq!(err["error"], "unconfirmed");
    }
}
