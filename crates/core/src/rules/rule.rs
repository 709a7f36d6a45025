//! The rule interface: one rule evaluated on one account's inventory.

use crate::finding::{EvalContext, Finding};
use crate::ids::AccountId;
use crate::inventory::AccountInventory;
use crate::rules::meta::RuleMeta;

/// A check over one account's inventory. Must be pure: same input, same findings.
pub trait Rule: Send + Sync {
    /// The rule's metadata.
    fn meta(&self) -> &'static RuleMeta;
    /// Findings for every key the rule applies to, passing ones included.
    fn evaluate(&self, ctx: &EvalContext, account_id: &AccountId, inv: &AccountInventory) -> Vec<Finding>;
}
