//! MySQL: connecting, migrating, and writing batches.

mod db;
mod rollup;
mod rows;
mod writer;

pub use db::{connect, redact};
pub use writer::{process_list_json, WriteError, Writer};
