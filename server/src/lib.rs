//! rill-server.
