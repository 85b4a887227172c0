//! The stream and the consumer, created or brought up to date at start so
//! that a bare `nats-server -js` is all the sink needs.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::stream::{
    Compression, Config as StreamConfig, DiscardPolicy, RetentionPolicy, StorageType,
};
use async_nats::jetstream::Context;
use vigia_schema::subject::{DEADLETTER_ALL, DEADLETTER_STREAM, DUPLICATE_WINDOW, TELEMETRY_ALL};

use crate::config::Config;

/// Time a delivered message may stay unacknowledged before redelivery.
/// A sink keeps what it holds alive three times a wait (held.rs), however
/// long its writes take, so this is how soon a dead sink's messages go to
/// another.
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(60);
/// Messages handed out and not yet acknowledged, across all sinks: room for
/// a few sinks each holding three full default batches (gathering, decoded,
/// writing: 15,000) and a pull ahead (1,000). Not derived from one sink's
/// flags, since every sink that starts updates the consumer.
pub(crate) const MAX_ACK_PENDING: i64 = 64_000;

/// The telemetry stream as the contract defines it (nats/README.md).
pub(crate) fn telemetry_stream(config: &Config) -> StreamConfig {
    StreamConfig {
        name: config.stream.clone(),
        subjects: vec![TELEMETRY_ALL.to_owned()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        max_age: config.stream_max_age,
        max_bytes: config.stream_max_bytes,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: usize::from(config.stream_replicas),
        // S2 on NATS 2.10 and later, which 2.9 ignores: the cap
        // (--stream-max-bytes) counts messages uncompressed, so it does
        // not lengthen the horizon, but the disk it takes shrinks about
        // 3x (a real procs sample: 4 MiB of stream on 1.9 MB of disk
        // instead of 6.1), so the cap can be raised for the same disk.
        // The server compresses; publishers pay nothing.
        compression: Some(Compression::S2),
        ..StreamConfig::default()
    }
}

/// Dead letters are kept with as many copies as the telemetry: losing a
/// node must not lose the evidence of what was rejected.
fn deadletter_stream(config: &Config) -> StreamConfig {
    StreamConfig {
        name: DEADLETTER_STREAM.to_owned(),
        subjects: vec![DEADLETTER_ALL.to_owned()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        max_age: Duration::from_secs(7 * 86_400),
        max_bytes: 1 << 30,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: usize::from(config.stream_replicas),
        compression: Some(Compression::S2),
        ..StreamConfig::default()
    }
}

/// How long [`prepare_when_ready`] retries: a NATS cluster that has just
/// elected its JetStream leader answers stream requests only once its
/// peers are current, a few seconds later; compose and systemd start the
/// sink beside the nodes, not after them.
pub(crate) const PREPARE_FOR: Duration = Duration::from_secs(60);

/// [`prepare`], retried for up to [`PREPARE_FOR`] while JetStream does not
/// answer or refuses, then failing with the last error.
pub(crate) async fn prepare_when_ready(
    jetstream: &Context,
    config: &Config,
) -> anyhow::Result<PullConsumer> {
    let deadline = tokio::time::Instant::now() + PREPARE_FOR;
    let mut logged = false;
    loop {
        match prepare(jetstream, config).await {
            Ok(consumer) => return Ok(consumer),
            Err(error) if tokio::time::Instant::now() < deadline => {
                if !logged {
                    tracing::warn!("{error:#}; retrying for up to {PREPARE_FOR:?}");
                    logged = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Creates or updates both streams and the durable pull consumer.
pub async fn prepare(jetstream: &Context, config: &Config) -> anyhow::Result<PullConsumer> {
    let stream_config = telemetry_stream(config);
    jetstream
        .create_or_update_stream(deadletter_stream(config))
        .await
        .with_context(|| format!("creating stream {DEADLETTER_STREAM}"))?;
    jetstream
        .create_or_update_stream(stream_config)
        .await
        .with_context(|| format!("creating stream {} on {TELEMETRY_ALL}", config.stream))?;
    let stream = jetstream
        .get_stream(&config.stream)
        .await
        .with_context(|| format!("opening stream {}", config.stream))?;
    let consumer = pull::Config {
        durable_name: Some(config.consumer.clone()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_ack_pending: MAX_ACK_PENDING,
        ..pull::Config::default()
    };
    stream.create_consumer(consumer).await.with_context(|| {
        format!(
            "creating consumer {} on stream {}",
            config.consumer, config.stream
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// nats/streams/*.json are the definitions an operator can apply with
    /// `nats stream add --config`; they must say what the sink creates.
    #[test]
    fn the_published_definitions_match_what_the_sink_creates() {
        let defaults = Config::parse_from(["vigia-sink"]);
        for (file, created) in [
            ("TELEMETRY.json", telemetry_stream(&defaults)),
            ("DEADLETTER.json", deadletter_stream(&defaults)),
        ] {
            let path = format!("{}/../nats/streams/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(json["name"], created.name.as_str(), "{file}");
            assert_eq!(json["subjects"][0], created.subjects[0].as_str(), "{file}");
            assert_eq!(json["max_age"], created.max_age.as_nanos() as u64, "{file}");
            assert_eq!(json["max_bytes"], created.max_bytes, "{file}");
            assert_eq!(
                json["duplicate_window"],
                created.duplicate_window.as_nanos() as u64,
                "{file}"
            );
            assert_eq!(json["storage"], "file");
            assert_eq!(json["discard"], "old");
            assert_eq!(json["num_replicas"], created.num_replicas, "{file}");
            assert_eq!(json["compression"], "s2", "{file}");
            assert_eq!(created.compression, Some(Compression::S2), "{file}");
        }
    }

    /// nats/cluster/streams/*.json are the three-node cluster's: the same
    /// streams with three replicas, as `--stream-replicas 3` creates them.
    #[test]
    fn the_cluster_definitions_match_what_the_sink_creates_with_three_replicas() {
        let cluster = Config::parse_from(["vigia-sink", "--stream-replicas", "3"]);
        for (file, created) in [
            ("TELEMETRY.json", telemetry_stream(&cluster)),
            ("DEADLETTER.json", deadletter_stream(&cluster)),
        ] {
            let path = format!(
                "{}/../nats/cluster/streams/{file}",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(json["name"], created.name.as_str(), "{file}");
            assert_eq!(json["max_age"], created.max_age.as_nanos() as u64, "{file}");
            assert_eq!(json["max_bytes"], created.max_bytes, "{file}");
            assert_eq!(json["num_replicas"], 3, "{file}");
            assert_eq!(created.num_replicas, 3, "{file}");
            assert_eq!(json["compression"], "s2", "{file}");
        }
    }
}
