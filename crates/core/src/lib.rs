//! keyaudit-core — the domain: identifiers, inventory, rules and their evaluation, the finding and report models,
//! triage, exceptions, baselines, notices' and remediation's decisions. Depends on no keyaudit crate; no I/O, no AWS
//! SDK, no clock.
//!
//! The domain model of keyaudit.
//!
//! Identifiers, the per-account inventory the scanner collects, the rules and their registry, the pure
//! evaluation of an inventory at one fixed `as_of` instant, and the org-wide report model that every output
//! writer maps from. Nothing here performs I/O, talks to AWS or reads a clock: time is always an input.
#![warn(missing_docs)]

pub mod account;
pub mod aws_error;
pub mod baseline;
pub mod comparison;
pub mod error;
pub mod eval;
pub mod finding;
pub mod ids;
pub mod inventory;
pub mod merge;
pub mod notice;
pub mod ou;
pub mod remediation;
pub mod report;
pub mod rules;
pub mod suppress;
pub mod text;
pub mod triage;
pub mod where_used;

pub use error::ModelError;
