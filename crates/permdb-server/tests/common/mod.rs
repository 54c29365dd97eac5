//! Helpers shared by the server's integration tests: the library's own test helpers
//! (one file, read from the library's tests), the server started on a free port, and
//! the model checks against Appwrite's SDK.

#![allow(dead_code, reason = "each test binary uses a different subset")]

#[path = "../../../../tests/common/mod.rs"]
mod library;

pub mod models;
pub mod server;

pub use library::*;
