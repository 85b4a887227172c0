//! The wire contract between vigia's publishers and everything that reads
//! their telemetry: the sink, the operator CLI and anyone with `nats sub`.
//!
//! Seven things make up the contract, each in its own module:
//! - [`host`]: how a machine's host name becomes the token used in subjects;
//! - [`subject`]: the NATS subjects, headers and stream a sample travels
//!   with, and the duplicate window that makes a retry safe;
//! - [`sample`]: the MessagePack payload, an envelope plus a body per kind,
//!   and the sampling intervals a publisher uses unless told otherwise;
//! - [`stamp`]: how samples are numbered, 1, 2, 3, … per boot and kind;
//! - [`command`]: requests to a publisher on `cmd.<host>` and its replies;
//! - [`identity`]: under authentication, the names in subjects that say
//!   who a connection is;
//! - [`bounds`]: how large, long and far out a sample's values may be.
//!
//! Also [`servers`]: the `--nats-url` list every program reads the same way.
//!
//! And one rule for everyone who shows what came from the wire: [`text`]
//! escapes control and bidirectional characters before a log or a terminal
//! sees them; and one for showing a URL: [`url`] hides its password.
//!
//! And [`backoff`]: how the publisher and the sink wait out a dependency
//! that fails. Not part of the contract; here because the two share nothing
//! else, and it needs only `std`.
//!
//! Payloads are MessagePack *maps* with named fields so that any language
//! can decode them without these structs; decoders ignore unknown fields so
//! that a newer publisher can add fields without breaking an older sink.

#![forbid(unsafe_code)]

pub mod backoff;
pub mod bounds;
pub mod command;
pub mod host;
pub mod identity;
pub mod sample;
pub mod servers;
pub mod stamp;
pub mod subject;
pub mod text;
pub mod url;

pub use command::{CommandReply, CommandRequest, Encoding, SignalSpec};
pub use host::{HostToken, HostTokenError};
pub use identity::Role;
pub use sample::{
    ByeBody, CpuBody, DecodeError, EventBody, HealthBody, HelloBody, Kind, Outcome, ProcessEntry,
    ProcsBody, RamBody, Sample, SampleBody, SCHEMA_VERSION,
};
pub use stamp::Stamper;
