-- Messages the stream dropped before any sink read them, as each sink
-- counted them (sink/src/discards.rs): the stream keeps at most
-- --stream-max-bytes and --stream-max-age of telemetry and discards the
-- oldest first, so an outage of the sinks or of MySQL longer than that
-- horizon loses the oldest samples. Cumulative since the sink's start like
-- the other counters; every sink sees the same discards, so they are read
-- as the largest increase of any one sink, not a sum.
ALTER TABLE sink_health
    ADD COLUMN stream_discarded BIGINT UNSIGNED NOT NULL DEFAULT 0 AFTER lag_seconds;
