//! Accounts: isolated subject spaces, each with its own routing table.
//!
//! Every client belongs to exactly one account; messages never cross accounts
//! except through exports and imports (see the security issue).

use crate::router::Router;

/// One account.
#[derive(Debug)]
pub struct Account {
    /// Account name (`$G` for the default account).
    pub name: String,
    /// The account's routing table.
    pub router: Router,
}

impl Account {
    /// An empty account.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            router: Router::new(),
        }
    }
}
