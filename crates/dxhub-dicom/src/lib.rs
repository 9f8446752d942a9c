//! DICOM knowledge of dxhub: which SOP classes and transfer syntaxes the hub stores, Part 10
//! file meta construction and reading, Specific Character Set handling (GB18030, GBK,
//! ISO 2022 IR 58, UTF-8) and extraction of the attributes the index needs.
//!
//! Everything here is synchronous and CPU/file bound: callers on an async runtime run it in
//! `spawn_blocking`. It must not depend on tokio, sqlx, object_store or the network crates.

#![cfg_attr(test, allow(clippy::unwrap_used))]

/// The text repairs live in `dxhub-core`, so the ECG readers share them.
pub use dxhub_core::charset;
pub mod extract;
pub mod from_json;
pub mod json;
pub mod meta;
pub mod pixel;
pub mod render;
pub mod report_sop;
pub mod sop;
pub mod ts;
pub mod validate;

pub use extract::{ExtractError, Extracted, extract_bytes, extract_file};
pub use meta::{FileMeta, MetaError, build_file_meta, read_file_meta};
