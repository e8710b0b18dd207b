//! e2e tests.

mod cli;
