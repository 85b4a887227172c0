-- A per-host, per-minute rollup of cpu_samples and ram_samples, for the
-- Fleet panels that draw every host at once (CPU % and RAM % per host, the
-- busiest hosts now). Reading the raw tables costs hosts x 3,600 rows per
-- hour of range and table (360k rows an hour at 100 hosts); this table holds
-- hosts x 60 rows per hour, one per host and minute.
--
-- Kept exact by the sink (sink/src/store/rollup.rs), in the same transaction
-- as the raw rows: for every (host, minute) that a batch touched, the row is
-- recomputed from the raw table (INSERT ... SELECT ... GROUP BY host, minute
-- ON DUPLICATE KEY UPDATE), through the raw tables' (host, ts) index. It is
-- never incremented: a redelivered message is a no-op in the raw tables and
-- so changes nothing here either, and samples of one minute arriving in any
-- number of batches, in any order, give the same row. Cost: each batch reads
-- the raw rows of the minutes it touched (at most 60 per host, minute and
-- table at 1 s sampling).
--
-- `minute` is the start of the minute (UTC, like every time in the schema).
-- Averages are NULL and counts 0 when the minute has samples of one table
-- only. A weighted average over several minutes is
-- SUM(cpu_busy_pct * cpu_samples) / SUM(cpu_samples).
-- Retention expires rows with the raw samples.
CREATE TABLE host_minutes (
    host          VARCHAR(64) CHARACTER SET ascii NOT NULL,
    minute        DATETIME     NOT NULL,
    -- From cpu_samples: AVG and MAX of busy_pct, AVG of load1, COUNT(*).
    cpu_busy_pct  DOUBLE       NULL,
    cpu_busy_max  FLOAT        NULL,
    load1         DOUBLE       NULL,
    cpu_samples   INT UNSIGNED NOT NULL DEFAULT 0,
    -- From ram_samples with total > 0: AVG and MAX of 100 * used / total,
    -- COUNT(*).
    ram_used_pct  DOUBLE       NULL,
    ram_used_max  DOUBLE       NULL,
    ram_samples   INT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (host, minute),
    KEY host_minutes_minute (minute)
) ENGINE = InnoDB;

-- Existing data: one pass over what is already stored, so an upgraded
-- database draws its history at once.
INSERT INTO host_minutes (host, minute, cpu_busy_pct, cpu_busy_max, load1, cpu_samples)
SELECT host, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00') AS DATETIME) AS m,
       AVG(busy_pct), MAX(busy_pct), AVG(load1), COUNT(*)
FROM cpu_samples
GROUP BY host, m;

INSERT INTO host_minutes (host, minute, ram_used_pct, ram_used_max, ram_samples)
SELECT host, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00') AS DATETIME) AS m,
       AVG(100 * used / total), MAX(100 * used / total), COUNT(*)
FROM ram_samples
WHERE total > 0
GROUP BY host, m
ON DUPLICATE KEY UPDATE ram_used_pct = VALUES(ram_used_pct),
    ram_used_max = VALUES(ram_used_max), ram_samples = VALUES(ram_samples);
