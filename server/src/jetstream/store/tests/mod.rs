//! Tests of the stores: one suite for every implementation, property tests, crash and corruption tests.

mod crash;
mod disk;
mod file;
mod fuzz;
mod lazy;
mod meta;
mod prop;
mod suite;
mod summary;
