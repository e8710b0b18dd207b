//! The seam between connections and whoever reports on them: [`EventSink`] is told when a
//! client finished CONNECT, closed, or was refused. The system account implements it (its
//! `$SYS.ACCOUNT.<acc>.CONNECT` events and friends) and registers it with the server state
//! at start, so connection code never knows the system module.

use super::link::ClientLink;

/// Receives client lifecycle events. Implementations must not block: they run on the
/// connection's own task.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// A client finished CONNECT in `account`.
    fn client_connected(&self, link: &ClientLink, account: &str);
    /// A connected client in `account` closed, for `reason`.
    fn client_disconnected(&self, link: &ClientLink, account: &str, reason: &str);
    /// A CONNECT was refused (`account` is the one the client was in before it).
    fn auth_error(&self, link: &ClientLink, account: &str);
}

/// The sink of a server without a system account: events go nowhere.
#[derive(Debug)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn client_connected(&self, _: &ClientLink, _: &str) {}
    fn client_disconnected(&self, _: &ClientLink, _: &str, _: &str) {}
    fn auth_error(&self, _: &ClientLink, _: &str) {}
}
