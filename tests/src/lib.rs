//! Test support for dxhub's end-to-end tests: a real `dxhub serve` process on ephemeral
//! ports with its own data dir ([`hub::TestHub`]), a small DICOM SCU that can also
//! misbehave on purpose ([`scu::Scu`]), a generator of synthetic instances ([`gen`]) and
//! access to the third-party peers the test script installs ([`peers`]), and helpers for
//! the `/api/v1` tests: identities via the CLI, HTTP, TOTP codes ([`api`]), and DICOMweb
//! multipart bodies, parsed and built ([`dicomweb`]).

pub mod api;
pub mod dicomweb;
pub mod generate;
pub mod hub;
pub mod peers;
pub mod scu;
