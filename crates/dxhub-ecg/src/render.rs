//! TEMPORARY STUB (replaced by the ecg-render branch at merge).
use crate::model::Ecg;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    ThreeByFour,
    TwelveByOne,
}
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderOptions {
    pub speed_mm_s: f64,
    pub gain_mm_per_mv: f64,
    pub layout: Layout,
}
impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            speed_mm_s: 25.0,
            gain_mm_per_mv: 10.0,
            layout: Layout::ThreeByFour,
        }
    }
}
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Options(String),
}
impl RenderOptions {
    pub fn validate(&self) -> Result<(), RenderError> {
        Ok(())
    }
}
pub fn svg(_ecg: &Ecg, _header: &[String], _opts: &RenderOptions) -> Result<String, RenderError> {
    Ok(String::new())
}
pub fn png(
    _ecg: &Ecg,
    _header: &[String],
    _opts: &RenderOptions,
    _px_per_mm: f32,
) -> Result<Vec<u8>, RenderError> {
    Ok(vec![])
}
