//! Domain types and pure rules of dxhub: tenancy (alliance → institution), roles, the
//! access policy and the password policy, DICOM UID checks, AE title rules and the DIMSE
//! status vocabulary shared by every entry point.
//!
//! This crate does no I/O and must not depend on tokio, sqlx, object_store or any
//! DICOM parsing crate: everything here is plain data and pure functions.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod fhir;
pub mod password_policy;
pub mod pn;
pub mod policy;
pub mod recognition;
pub mod report;
pub mod report_template;
pub mod roles;
pub mod stats;
pub mod status;
pub mod tenancy;
pub mod uid;
pub mod worklist;

pub use policy::{Action, Decision, Denial, Principal, PrincipalKind, TargetScope, authorize};
pub use roles::{ParseRoleError, Role, requires_totp};
pub use tenancy::{InstitutionLevel, ParseLevelError};
