//! Tests of the stores: one suite for every implementation, property tests, crash and corruption tests.

mod file;
mod prop;
mod suite;
