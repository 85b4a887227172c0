//! Noticing that the stream discarded telemetry no sink had read.
//!
//! The TELEMETRY stream keeps at most `--stream-max-bytes` and
//! `--stream-max-age` and drops the oldest messages first (discard old). A
//! sink or MySQL outage longer than that horizon loses the oldest
//! samples, and nothing else would say so: the consumer simply finds its
//! next message further on. Here the sink compares, at start and at every
//! health interval, the stream's first sequence with the last one the
//! consumer delivered: every sequence between them was dropped unread.
//!
//! What is counted is a lower bound. A running sink that falls behind the
//! stream's head jumps past the dropped messages at its next pull, so a
//! gap that opens and closes between two readings is not seen. It is
//! exact where loss matters most: a sink that was stopped, or that could
//! not write (ingest stops pulling while MySQL is away), sees the whole
//! gap at its first reading.
//!
//! Every sink of a deployment reads the same stream and the same durable
//! consumer, so each counts the same discards: dashboards read the largest
//! count of any one sink, never a sum.

/// The stream sequences counted so far, so a gap is counted once however
/// many readings see it.
#[derive(Debug, Default)]
pub struct Discards {
    counted_through: Option<u64>,
}

/// Sequences found dropped unread by one reading, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub first: u64,
    pub last: u64,
}

impl Gap {
    pub fn messages(&self) -> u64 {
        self.last - self.first + 1
    }
}

impl Discards {
    /// One reading: the stream's first sequence still held, and the last
    /// stream sequence the consumer delivered. Returns the sequences newly
    /// found dropped before delivery.
    ///
    /// A consumer that never delivered anything (new, or created on a
    /// stream that already held messages it was not meant to read) counts
    /// nothing at its first reading: what came before it is not its loss.
    pub fn observe(&mut self, stream_first: u64, delivered: u64) -> Option<Gap> {
        // Everything before the stream's first message is gone.
        let gone_through = stream_first.saturating_sub(1);
        let counted = match self.counted_through {
            Some(c) => c.max(delivered),
            None if delivered == 0 => gone_through,
            None => delivered,
        };
        self.counted_through = Some(counted.max(gone_through));
        (gone_through > counted).then_some(Gap {
            first: counted + 1,
            last: gone_through,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_caught_up_sees_no_gap() {
        let mut d = Discards::default();
        // Old messages aged out after being read: first > 1, nothing lost.
        assert_eq!(d.observe(500, 900), None);
        assert_eq!(d.observe(900, 1_200), None);
        assert_eq!(d.observe(1_201, 1_200), None);
    }

    #[test]
    fn a_sink_back_after_a_long_outage_counts_the_whole_gap_once() {
        let mut d = Discards::default();
        // Delivered up to 100, the stream now starts at 1,001.
        assert_eq!(
            d.observe(1_001, 100),
            Some(Gap {
                first: 101,
                last: 1_000
            })
        );
        assert_eq!(d.observe(1_001, 100), None, "counted once");
        // The consumer jumped to the head: still nothing new.
        assert_eq!(d.observe(1_001, 1_500), None);
        // The stream drops more while the consumer is behind again.
        assert_eq!(
            d.observe(2_001, 1_800),
            Some(Gap {
                first: 1_801,
                last: 2_000
            })
        );
    }

    #[test]
    fn a_gap_seen_growing_is_counted_in_parts_never_twice() {
        let mut d = Discards::default();
        let a = d.observe(200, 50).unwrap();
        let b = d.observe(300, 50).unwrap();
        assert_eq!((a.first, a.last, b.first, b.last), (51, 199, 200, 299));
        assert_eq!(a.messages() + b.messages(), 249);
    }

    #[test]
    fn a_new_consumer_on_an_old_stream_counts_nothing() {
        let mut d = Discards::default();
        assert_eq!(d.observe(10_000, 0), None);
        assert_eq!(d.observe(10_000, 10_050), None);
    }

    #[test]
    fn an_empty_stream_counts_nothing() {
        let mut d = Discards::default();
        assert_eq!(d.observe(0, 0), None);
        assert_eq!(d.observe(1, 0), None);
    }
}
