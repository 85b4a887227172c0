//! What the publisher serves on `--metrics-addr` when an operator asks for
//! it (off by default: most fleets watch their publishers through the
//! `health` samples instead). Names start `vigia_publisher_`; `/healthz`
//! is healthy while NATS is connected (samples queue otherwise).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_nats::connection::State;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use vigia_exporter::Probe;

use crate::outbox::Outbox;

/// The outbox and the NATS client, read at each scrape.
struct PublisherCollector {
    outbox: Arc<Outbox>,
    connections: Arc<async_nats::Statistics>,
}

impl std::fmt::Debug for PublisherCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublisherCollector")
    }
}

impl Collector for PublisherCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = [
            (
                "outbox_dropped",
                "Samples dropped from the full outbox (NATS away too long)",
                self.outbox.dropped(),
            ),
            (
                "reconnects",
                "Connections to NATS made again after a loss",
                self.connections
                    .connects
                    .load(Ordering::Relaxed)
                    .saturating_sub(1),
            ),
            (
                "sent_messages",
                "Messages handed to NATS, retries included",
                self.connections.out_messages.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        let gauges = [
            (
                "outbox_samples",
                "Samples waiting in the outbox",
                None,
                self.outbox.len() as u64,
            ),
            (
                "outbox",
                "Payload bytes waiting in the outbox",
                Some(&Unit::Bytes),
                self.outbox.bytes() as u64,
            ),
        ];
        for (name, help, unit, value) in gauges {
            let metric = ConstGauge::new(value as i64);
            metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)?;
        }
        Ok(())
    }
}

/// The registry behind the publisher's `/metrics`.
pub fn registry(outbox: Arc<Outbox>, connections: Arc<async_nats::Statistics>) -> Registry {
    let mut registry = Registry::with_prefix("vigia_publisher");
    registry.register_collector(Box::new(PublisherCollector {
        outbox,
        connections,
    }));
    registry
}

/// Healthy while connected to NATS.
pub struct PublisherProbe {
    pub client: async_nats::Client,
    pub outbox: Arc<Outbox>,
}

impl Probe for PublisherProbe {
    fn trouble(&self) -> Option<String> {
        (self.client.connection_state() != State::Connected).then(|| {
            format!(
                "not connected to NATS ({} samples waiting)",
                self.outbox.len()
            )
        })
    }
}
