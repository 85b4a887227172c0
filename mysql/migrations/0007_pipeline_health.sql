-- The pipeline's own health, where the operator already looks (Grafana's
-- "vigia / Pipeline" dashboard and the alert rules of
-- grafana/provisioning/alerting/).
--
-- sink_health: every sink records its state every few seconds (sink flag
-- --health-interval, 5 s by default), one row per sink instance and
-- moment, so several sinks show side by side and a sink that stopped
-- writing rows is a sink that stopped. Counters are cumulative since the
-- sink's start (`started`): a rate is the difference of two rows of the
-- same sink and start. Retention expires the rows like samples.
CREATE TABLE sink_health (
    -- --instance: the host name and pid of the sink by default.
    sink                  VARCHAR(128) CHARACTER SET ascii NOT NULL,
    ts                    DATETIME(6)     NOT NULL,
    started               DATETIME(6)     NOT NULL,
    -- Messages written (or found already written) and acknowledged.
    stored                BIGINT UNSIGNED NOT NULL,
    -- Messages sent to deadletter.> by reason class: not a vigia sample
    -- (decode), subject and payload disagree (mismatch), a value the
    -- contract forbids (invalid), MySQL refused the row (mysql).
    dead_decode           BIGINT UNSIGNED NOT NULL,
    dead_mismatch         BIGINT UNSIGNED NOT NULL,
    dead_invalid          BIGINT UNSIGNED NOT NULL,
    dead_mysql            BIGINT UNSIGNED NOT NULL,
    batches               BIGINT UNSIGNED NOT NULL,
    write_retries         BIGINT UNSIGNED NOT NULL,
    -- Batch write times (transaction to commit) of the batches committed
    -- since this sink's previous row, milliseconds; NULL when none was.
    write_ms_p50          DOUBLE          NULL,
    write_ms_p99          DOUBLE          NULL,
    write_ms_max          DOUBLE          NULL,
    -- The consumer's lag as JetStream reports it: messages not yet
    -- delivered to any sink, delivered and not yet acknowledged, and the
    -- age in seconds of the oldest message not acknowledged (0 when the
    -- sinks are caught up; NULL when NATS did not answer).
    pending               BIGINT UNSIGNED NULL,
    ack_pending           BIGINT UNSIGNED NULL,
    lag_seconds           DOUBLE          NULL,
    PRIMARY KEY (sink, ts),
    KEY sink_health_ts (ts)
) ENGINE = InnoDB;

-- publisher_health: one row per `health` sample (schemas/README.md), every
-- minute from each publisher. Counters are cumulative since the
-- publisher's start (its boot). Unique on (host, boot, seq) like every
-- sample table.
CREATE TABLE publisher_health (
    host          VARCHAR(64) CHARACTER SET ascii NOT NULL,
    boot          VARCHAR(64) CHARACTER SET ascii NOT NULL,
    seq           BIGINT UNSIGNED NOT NULL,
    ts            DATETIME(6)     NOT NULL,
    -- Samples dropped from the full outbox since start.
    dropped       BIGINT UNSIGNED NOT NULL,
    -- Samples waiting in the outbox now.
    outbox_depth  BIGINT UNSIGNED NOT NULL,
    -- Reconnections to NATS since start.
    reconnects    BIGINT UNSIGNED NOT NULL,
    -- `module` or `procfs`.
    source        VARCHAR(16)  NOT NULL,
    agent_version VARCHAR(64)  NOT NULL,
    PRIMARY KEY (host, boot, seq),
    KEY publisher_health_host_ts (host, ts),
    KEY publisher_health_ts (ts)
) ENGINE = InnoDB;
