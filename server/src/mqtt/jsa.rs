//! rill's MQTT state goes through the account's own JetStream, as any NATS client's
//! would: requests to the `$JS.API` subjects and publishes to stream subjects, routed
//! through the account's router. No stream or consumer internals are touched, so the
//! stream and store work can change underneath without breaking MQTT.

use bytes::Bytes;

use crate::account::Account;
use crate::router::Msg;

/// Acknowledges a JetStream delivery: an empty message to its `$JS.ACK…` reply subject.
pub(super) fn ack(account: &Account, reply: &Bytes) {
    let empty = Bytes::new();
    account
        .router
        .publish(0, true, &Msg::new(reply, None, None, &empty));
}
