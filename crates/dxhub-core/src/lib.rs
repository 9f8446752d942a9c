//! Domain types and pure rules of dxhub: tenancy (alliance → institution), DICOM UID
//! checks, AE title rules and the DIMSE status vocabulary shared by every entry point.
//!
//! This crate does no I/O and must not depend on tokio, sqlx, object_store or any
//! DICOM parsing crate: everything here is plain data and pure functions.

pub mod status;
pub mod tenancy;
pub mod uid;

pub use tenancy::{InstitutionLevel, ParseLevelError};
