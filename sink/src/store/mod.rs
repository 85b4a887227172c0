//! MySQL: connecting, migrating, and writing batches.
//!
//! ```text
//! db, migrate   connect, create the database, run mysql/migrations
//! writer        one batch, one transaction: ─┬─ hosts    lock + update hosts
//!                                            ├─ boots    host_boots
//!                                            ├─ insert   process lists, samples
//!                                            └─ rollup   recompute the rollups
//! open_minutes  which minutes a batch recomputes now, which wait
//! rows, lists   a batch sorted by table; process lists as JSON (pure)
//! error         why a write failed
//! ```

mod boots;
mod db;
mod error;
mod hosts;
mod insert;
mod lists;
mod migrate;
mod open_minutes;
mod rollup;
mod rows;
mod writer;

pub use db::connect;
pub use error::WriteError;
pub use lists::process_list_json;
pub(crate) use lists::ProcessLists;
pub use writer::Writer;
