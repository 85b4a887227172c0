//! What the sink serves on `--metrics-addr` (the server is
//! `vigia-exporter`'s): its own counters ([`Metrics`]), read at each scrape
//! by a collector, under `vigia_sink_`; and `/healthz`, healthy while NATS
//! is connected and MySQL takes the sink's writes.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
pub use vigia_exporter::{bind, Probe};

use crate::metrics::{DeadLetterClass, Metrics};

/// The sink's probe: its NATS client and its ingest's stall flag.
pub struct SinkProbe {
    pub client: async_nats::Client,
    pub metrics: Arc<Metrics>,
}

impl Probe for SinkProbe {
    fn trouble(&self) -> Option<String> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Some("not connected to NATS".into());
        }
        if self.metrics.ingest_stalled.load(Ordering::Relaxed) {
            return Some("cannot write to MySQL".into());
        }
        None
    }
}

/// Reads [`Metrics`] at each scrape.
#[derive(Debug)]
struct SinkCollector(Arc<Metrics>);

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

impl Collector for SinkCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0;
        let totals = m.snapshot();
        counter(
            &mut encoder,
            "stored",
            "Messages written to MySQL (or found already written) and acknowledged",
            totals.stored,
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "dead_lettered",
                "Messages sent to deadletter.> by reason class",
                None,
                MetricType::Counter,
            )?;
            for (class, n) in DeadLetterClass::ALL.iter().zip(m.dead_by_class()) {
                let labels = [("reason", class.as_str())];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut encoder,
            "batches",
            "Transactions committed",
            totals.batches,
        )?;
        counter(
            &mut encoder,
            "write_retries",
            "Failed attempts to write a batch (each retried)",
            totals.write_retries,
        )?;
        counter(
            &mut encoder,
            "expired_rows",
            "Rows removed by retention from the tables not partitioned by day",
            totals.expired_rows,
        )?;
        counter(
            &mut encoder,
            "expired_days",
            "Days (one per table and day) dropped by retention from the partitioned tables",
            totals.expired_days,
        )?;
        counter(
            &mut encoder,
            "stream_discarded",
            "Messages the stream discarded before any sink read them (an outage outlasted its horizon)",
            totals.stream_discarded,
        )?;
        let stalled = m.ingest_stalled.load(Ordering::Relaxed);
        gauge(
            &mut encoder,
            "ingest_stalled",
            "1 while MySQL does not take the sink's writes",
            None,
            f64::from(u8::from(stalled)),
        )?;
        let h = m.write_times.histogram();
        encoder
            .encode_descriptor(
                "batch_write",
                "Time from a batch's first write to its commit, retries included",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
        // The lag is read every health interval; before the first read,
        // or while NATS does not answer, it is absent rather than zero.
        if let Some(lag) = m.lag() {
            gauge(
                &mut encoder,
                "lag",
                "Age of the oldest telemetry message no sink has acknowledged",
                Some(&Unit::Seconds),
                lag.seconds,
            )?;
            gauge(
                &mut encoder,
                "pending_messages",
                "Telemetry messages not yet delivered to a sink",
                None,
                lag.pending as f64,
            )?;
            gauge(
                &mut encoder,
                "ack_pending_messages",
                "Telemetry messages delivered and not yet acknowledged",
                None,
                lag.ack_pending as f64,
            )?;
        }
        Ok(())
    }
}

/// The registry behind `/metrics`: every name starts `vigia_sink_`.
pub fn registry(metrics: Arc<Metrics>) -> Registry {
    let mut registry = Registry::with_prefix("vigia_sink");
    registry.register_collector(Box::new(SinkCollector(metrics)));
    registry
}
