-- Rollups for long dashboard ranges.
--
-- At 100 hosts x 24 h the dashboards' slowest panels read too many rows
-- (scripts/bench-dashboards.sh): the Fleet's CPU % and RAM % per host read
-- 144k host_minutes rows (p95 ~340 ms), and the Host dashboard's top
-- processes by CPU and by RSS read the host's 345k process_samples rows
-- twice (p95 ~480 ms; ~200 ms already at 6 h). Two coarser tables serve
-- long ranges (the Fleet panels over 6 h, the process panels over 3 h);
-- shorter ranges keep reading the finer tables (each panel's SQL picks one
-- with a constant condition on the range, which MariaDB resolves before
-- reading).
--
-- Both are kept exact by the sink (sink/src/store/rollup.rs) inside each
-- batch's transaction, by recomputing periods from the finer table, never
-- by incrementing, so a redelivered message changes nothing and batches
-- may come in any order. Retention expires their rows with the samples.

-- host_minutes in periods of ten minutes: 144 rows per host and day.
-- `period` is the start of the ten minutes (UTC). Averages are weighted by
-- the minutes' sample counts, so they equal the average over raw samples.
CREATE TABLE host_ten_minutes (
    host          VARCHAR(64) CHARACTER SET ascii NOT NULL,
    period        DATETIME     NOT NULL,
    cpu_busy_pct  DOUBLE       NULL,
    cpu_busy_max  FLOAT        NULL,
    load1         DOUBLE       NULL,
    cpu_samples   INT UNSIGNED NOT NULL DEFAULT 0,
    ram_used_pct  DOUBLE       NULL,
    ram_used_max  DOUBLE       NULL,
    ram_samples   INT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (host, period),
    KEY host_ten_minutes_period (period)
) ENGINE = InnoDB;

-- process_samples (the history: top N by CPU and by RSS of each snapshot)
-- in periods of ten minutes: for each process seen in a period, its
-- average CPU %, its largest RSS and how many snapshots had it. About 100x
-- fewer rows than the history at the default 5 s snapshots. A weighted
-- average over several periods is SUM(cpu_pct * samples) / SUM(samples).
--
-- Only CLOSED periods are here: those before the period of the host's
-- newest snapshot (hosts.procs_ts). The sink computes a period once, when
-- the first snapshot of a later period arrives, and again if a late or
-- redelivered snapshot of it comes (reading the raw rows of the period
-- once, instead of updating rows on every snapshot). Long-range panels read
-- these rows for closed periods and process_samples from the start of the
-- open one.
CREATE TABLE process_ten_minutes (
    host     VARCHAR(64) CHARACTER SET ascii NOT NULL,
    period   DATETIME        NOT NULL,
    pid      INT             NOT NULL,
    name     VARCHAR(255)    NOT NULL,
    cpu_pct  DOUBLE          NOT NULL,
    rss      BIGINT UNSIGNED NOT NULL,
    samples  INT UNSIGNED    NOT NULL,
    PRIMARY KEY (host, period, pid, name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Existing data: one pass, so an upgraded database draws long ranges at once.
INSERT INTO host_ten_minutes (host, period, cpu_busy_pct, cpu_busy_max, load1, cpu_samples,
                              ram_used_pct, ram_used_max, ram_samples)
SELECT host, minute - INTERVAL (MINUTE(minute) MOD 10) MINUTE AS p,
       SUM(cpu_busy_pct * cpu_samples) / NULLIF(SUM(cpu_samples), 0), MAX(cpu_busy_max),
       SUM(load1 * cpu_samples) / NULLIF(SUM(cpu_samples), 0), SUM(cpu_samples),
       SUM(ram_used_pct * ram_samples) / NULLIF(SUM(ram_samples), 0), MAX(ram_used_max),
       SUM(ram_samples)
FROM host_minutes
GROUP BY host, p;

INSERT INTO process_ten_minutes (host, period, pid, name, cpu_pct, rss, samples)
SELECT s.host,
       CAST(DATE_FORMAT(s.ts, '%Y-%m-%d %H:00:00') AS DATETIME)
         + INTERVAL (MINUTE(s.ts) DIV 10 * 10) MINUTE AS p,
       s.pid, s.name, AVG(s.cpu_pct), MAX(s.rss), COUNT(*)
FROM process_samples s
JOIN hosts h ON h.host = s.host
WHERE s.ts < CAST(DATE_FORMAT(h.procs_ts, '%Y-%m-%d %H:00:00') AS DATETIME)
             + INTERVAL (MINUTE(h.procs_ts) DIV 10 * 10) MINUTE
GROUP BY s.host, p, s.pid, s.name;
