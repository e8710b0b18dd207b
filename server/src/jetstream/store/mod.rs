//! Stream storage.
