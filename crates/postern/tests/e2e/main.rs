//! End-to-end tests of the `postern` binary, built as one test executable (one link, one run).

mod cli;
mod server;
mod support;
