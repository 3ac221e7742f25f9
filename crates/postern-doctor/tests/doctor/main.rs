//! Doctor integration tests (work in progress).
