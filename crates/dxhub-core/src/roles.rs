//! The roles a user of the hub can hold. What each role may do is decided in one place,
//! [`crate::policy::authorize`]; this module only names the roles.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The role of a user. Every user has exactly one, bound to the user's institution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Technician of a clinic (village clinic, township centre): acquires and uploads.
    ClinicTech,
    /// Doctor of a clinic: orders, uploads, reads the results for their patients.
    ClinicDoctor,
    /// Reading physician of the lead hospital: writes and signs reports.
    Reader,
    /// Senior reading physician: as a reader, and may amend signed reports.
    SeniorReader,
    /// Administrator of an alliance (医共体): institutions, users, devices, routing.
    GroupAdmin,
    /// Reads the audit log of the alliance, and nothing else.
    Auditor,
    /// Bootstrap administrator of the whole hub: everything.
    Superadmin,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 7] = [
        Self::ClinicTech,
        Self::ClinicDoctor,
        Self::Reader,
        Self::SeniorReader,
        Self::GroupAdmin,
        Self::Auditor,
        Self::Superadmin,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClinicTech => "clinic_tech",
            Self::ClinicDoctor => "clinic_doctor",
            Self::Reader => "reader",
            Self::SeniorReader => "senior_reader",
            Self::GroupAdmin => "group_admin",
            Self::Auditor => "auditor",
            Self::Superadmin => "superadmin",
        }
    }

    /// Clinic-side roles (scoped to their institution and the institutions it heads).
    pub const fn is_clinic(self) -> bool {
        matches!(self, Self::ClinicTech | Self::ClinicDoctor)
    }
}

/// Whether a second factor (TOTP) is required by default for users of `role`: readers
/// (who sign reports) and administrators. Clinic roles and auditors log in with a
/// password alone unless the deployment says otherwise.
pub const fn requires_totp(role: Role) -> bool {
    matches!(
        role,
        Role::Reader | Role::SeniorReader | Role::GroupAdmin | Role::Superadmin
    )
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {0:?} (expected clinic_tech, clinic_doctor, reader, senior_reader, \
     group_admin, auditor or superadmin)"
)]
pub struct ParseRoleError(pub String);

impl FromStr for Role {
    type Err = ParseRoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == wanted)
            .ok_or_else(|| ParseRoleError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;

    #[test]
    fn roles_round_trip_as_str_from_str_and_serde() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(role.to_string(), role.as_str());
            let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
                role.as_str().into_deserializer();
            assert_eq!(Role::deserialize(de), Ok(role), "serde name of {role}");
        }
        assert_eq!("Senior-Reader".parse::<Role>(), Ok(Role::SeniorReader));
        assert!("admin".parse::<Role>().is_err());
        assert!("".parse::<Role>().is_err());
    }

    #[test]
    fn totp_is_required_for_readers_and_admins_only() {
        let required: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| requires_totp(*r))
            .collect();
        assert_eq!(
            required,
            [
                Role::Reader,
                Role::SeniorReader,
                Role::GroupAdmin,
                Role::Superadmin
            ]
        );
    }
}
