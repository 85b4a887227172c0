//! MySQL: connecting, migrating, and writing batches.

mod boots;
mod db;
mod lists;
mod migrate;
mod rollup;
mod rows;
mod writer;

pub use db::{connect, redact};
pub use lists::{process_list_json, ProcessLists};
pub use writer::{PacketLimit, WriteError, Writer};
