//! Domain types and pure rules of dxhub: tenancy (alliance → institution), roles, the
//! access policy and the password policy, DICOM UID checks, AE title rules and the DIMSE
//! status vocabulary shared by every entry point, and the repair of text that dicom-rs
//! decoded from GB18030, GBK and ISO 2022 IR 58 (`charset`, used by the index and the ECG
//! readers alike).
//!
//! This crate does no I/O and must not depend on tokio, sqlx, object_store or any
//! DICOM parsing crate: everything here is plain data and pure functions.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod charset;
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
