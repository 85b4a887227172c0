//! vigia's agent. Data flows one way:
//!
//! ```text
//! Source (procfs | kernel module)          raw cumulative readings
//!   → rates    (CpuRates, ProcessRates)     percentages from deltas
//!   → stamp    (Stamper)                    envelope: host, boot, seq, ts
//!   → outbox   (bounded, drop-oldest)       the only buffer
//!   → forward  (Forwarder)                  JetStream, pipelined acks
//! ```
//!
//! Sampling runs on its own thread ([`sampler`]); forwarding runs on a
//! single-threaded tokio runtime ([`agent`]), and so does [`control`], which
//! takes commands on `cmd.<host>` and audits them as `event` samples through
//! the same outbox.

// Production code holds no unsafe; one test forks a child with libc and
// allows it on those items alone.
#![cfg_attr(not(test), forbid(unsafe_code))]
#![cfg_attr(test, deny(unsafe_code))]

pub mod agent;
pub mod busiest;
pub mod config;
pub mod control;
pub mod forward;
pub mod gce_token;
pub mod hostinfo;
pub mod once;
pub mod outbox;
pub mod rates;
pub mod sampler;
pub mod source;
pub mod stamp;
pub mod users;
