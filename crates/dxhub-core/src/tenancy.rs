//! Alliance (医共体) → institutions → (later) users.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The level of a member institution in a county medical alliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstitutionLevel {
    /// County lead hospital (县级牵头医院).
    County,
    /// Township health centre (乡镇卫生院).
    Township,
    /// Village clinic (村卫生室).
    Village,
}

impl InstitutionLevel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::County => "county",
            Self::Township => "township",
            Self::Village => "village",
        }
    }

    /// Whether an institution of level `self` may be the parent of one of level `child`.
    /// A county hospital heads townships (and may directly head villages); a township heads
    /// villages; a village heads nobody.
    pub const fn may_parent(self, child: Self) -> bool {
        matches!(
            (self, child),
            (Self::County, Self::Township)
                | (Self::County, Self::Village)
                | (Self::Township, Self::Village)
        )
    }
}

impl fmt::Display for InstitutionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown institution level {0:?} (expected county, township or village)")]
pub struct ParseLevelError(pub String);

impl FromStr for InstitutionLevel {
    type Err = ParseLevelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "county" => Ok(Self::County),
            "township" => Ok(Self::Township),
            "village" => Ok(Self::Village),
            other => Err(ParseLevelError(other.to_owned())),
        }
    }
}

/// Normalise an AE title as DICOM compares them: leading/trailing spaces are not significant.
pub fn normalize_ae_title(ae: &str) -> String {
    ae.trim_matches(|c: char| c == ' ' || c == '\0').to_owned()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AeTitleError {
    #[error("AE title is empty")]
    Empty,
    #[error("AE title is longer than 16 characters")]
    TooLong,
    #[error("AE title may only hold printable ASCII except backslash")]
    BadCharacter,
}

/// Validate an AE title (PS3.5 AE VR: ≤ 16 chars of the default repertoire, no backslash,
/// no control characters).
pub fn validate_ae_title(ae: &str) -> Result<String, AeTitleError> {
    let ae = normalize_ae_title(ae);
    if ae.is_empty() {
        return Err(AeTitleError::Empty);
    }
    if ae.len() > 16 {
        return Err(AeTitleError::TooLong);
    }
    if ae.chars().any(|c| !(' '..='~').contains(&c) || c == '\\') {
        return Err(AeTitleError::BadCharacter);
    }
    Ok(ae)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_nest() {
        assert_eq!(
            "Township".parse::<InstitutionLevel>().ok(),
            Some(InstitutionLevel::Township)
        );
        assert!("city".parse::<InstitutionLevel>().is_err());
        assert!(InstitutionLevel::County.may_parent(InstitutionLevel::Township));
        assert!(InstitutionLevel::Township.may_parent(InstitutionLevel::Village));
        assert!(!InstitutionLevel::Village.may_parent(InstitutionLevel::Village));
        assert!(!InstitutionLevel::Township.may_parent(InstitutionLevel::County));
    }

    #[test]
    fn ae_titles() {
        assert_eq!(validate_ae_title(" CT01 "), Ok("CT01".to_owned()));
        assert_eq!(validate_ae_title("   "), Err(AeTitleError::Empty));
        assert_eq!(
            validate_ae_title("ABCDEFGHIJKLMNOPQ"),
            Err(AeTitleError::TooLong)
        );
        assert_eq!(validate_ae_title("A\\B"), Err(AeTitleError::BadCharacter));
    }
}
