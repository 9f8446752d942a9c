//! TEMPORARY STUB (replaced by the ecg-analysis branch at merge).
use crate::model::Ecg;
use serde::{Deserialize, Serialize};
pub const LABEL: &str = "machine measurements, unconfirmed";
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriticalFlag {
    pub code: String,
    pub message: String,
    pub message_zh: String,
    pub lead: Option<String>,
    pub value: Option<f64>,
    pub unit: Option<String>,
}
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub label: String,
    pub heart_rate_bpm: Option<f64>,
    pub pr_ms: Option<f64>,
    pub qrs_ms: Option<f64>,
    pub qt_ms: Option<f64>,
    pub qtc_bazett_ms: Option<f64>,
    pub qtc_fridericia_ms: Option<f64>,
    pub p_axis_deg: Option<f64>,
    pub qrs_axis_deg: Option<f64>,
    pub t_axis_deg: Option<f64>,
    pub critical: Vec<CriticalFlag>,
}
impl Analysis {
    pub fn is_critical(&self) -> bool {
        !self.critical.is_empty()
    }
}
pub fn analyse(_ecg: &Ecg) -> Analysis {
    Analysis {
        label: LABEL.into(),
        heart_rate_bpm: None,
        pr_ms: None,
        qrs_ms: None,
        qt_ms: None,
        qtc_bazett_ms: None,
        qtc_fridericia_ms: None,
        p_axis_deg: None,
        qrs_axis_deg: None,
        t_axis_deg: None,
        critical: vec![],
    }
}
