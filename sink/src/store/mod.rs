//! MySQL: connecting, migrating, and writing batches.

mod db;
mod rollup;
mod rows;
mod writer;

pub use db::{connect, redact};
pub use writer::{WriteError, Writer};
