-- Every boot (one run of a publisher) heard under each host token. A host
-- token is the short host name, so two machines whose names reduce to one
-- token (`col.x` and `col.y`, or GCE instances of one name in two zones)
-- publish as one host; here they show as two boots live at once.
-- Times are the publishers' clocks (sample ts), UTC, DATETIME(6).
CREATE TABLE host_boots (
    host        VARCHAR(64) CHARACTER SET ascii NOT NULL,
    boot        VARCHAR(64) CHARACTER SET ascii NOT NULL,
    -- Oldest and newest sample of this boot.
    first_seen  DATETIME(6) NOT NULL,
    last_seen   DATETIME(6) NOT NULL,
    -- Its bye's time; NULL while it has said none.
    ended       DATETIME(6) NULL,
    -- From its hello; NULL until the hello is stored.
    interval_ms INT UNSIGNED NULL,
    -- Until when it counts as live: its bye, or last_seen plus the same
    -- silence that marks a host offline (three intervals, at least 2 s;
    -- sink/src/liveness.rs). The sink keeps it with every batch.
    live_until  DATETIME(6) NOT NULL,
    PRIMARY KEY (host, boot),
    KEY host_boots_live_until (live_until),
    KEY host_boots_last_seen (last_seen)
) ENGINE = InnoDB;

-- The boots live now, each with `shared` = 1 when another live boot of the
-- same host ran at the same time. Spans must overlap: a publisher killed
-- and restarted on one machine leaves its old boot live for a few seconds,
-- but the new boot starts after the old one's last sample, so that is not
-- sharing; two machines publishing side by side is.
CREATE VIEW live_boots AS
SELECT b.host, b.boot, b.first_seen, b.last_seen,
       EXISTS (
           SELECT 1 FROM host_boots o
           WHERE o.host = b.host AND o.boot <> b.boot
             AND o.live_until > UTC_TIMESTAMP(6)
             AND o.first_seen <= b.last_seen AND b.first_seen <= o.last_seen
       ) AS shared
FROM host_boots b
WHERE b.live_until > UTC_TIMESTAMP(6);
