-- host_minutes carries every series of the Host dashboard, so its CPU, RAM,
-- load and process-state panels can draw ranges older than the raw samples
-- (kept --retention, 48 h by default) from the per-minute rollup (kept
-- --minute-retention, 35 days): raw samples where they still are, minutes
-- before (grafana/dashboards/host.json). Computed by the sink like the
-- columns of 0003 (sink/src/store/rollup.rs): recomputed from the raw
-- tables for every minute a batch touched, never incremented. Averages are
-- weighted by their count when minutes are summed: cpu_samples for the CPU
-- columns, ram_samples for the RAM ones, procs_samples for the states.
ALTER TABLE host_minutes
    -- From cpu_samples: AVG of each state's %, of load5 and load15; MAX of cpus.
    ADD COLUMN cpu_user_pct   DOUBLE       NULL,
    ADD COLUMN cpu_system_pct DOUBLE       NULL,
    ADD COLUMN cpu_iowait_pct DOUBLE       NULL,
    ADD COLUMN cpu_steal_pct  DOUBLE       NULL,
    ADD COLUMN cpu_idle_pct   DOUBLE       NULL,
    ADD COLUMN load5          DOUBLE       NULL,
    ADD COLUMN load15         DOUBLE       NULL,
    ADD COLUMN cpus           INT UNSIGNED NULL,
    -- From ram_samples with total > 0: AVG of used, cached and free bytes,
    -- MAX of total.
    ADD COLUMN ram_used       DOUBLE          NULL,
    ADD COLUMN ram_cached     DOUBLE          NULL,
    ADD COLUMN ram_free       DOUBLE          NULL,
    ADD COLUMN ram_total      BIGINT UNSIGNED NULL,
    -- From procs_snapshots: AVG of each state's process count, COUNT(*).
    ADD COLUMN procs_running  DOUBLE       NULL,
    ADD COLUMN procs_sleeping DOUBLE       NULL,
    ADD COLUMN procs_blocked  DOUBLE       NULL,
    ADD COLUMN procs_zombie   DOUBLE       NULL,
    ADD COLUMN procs_other    DOUBLE       NULL,
    ADD COLUMN procs_samples  INT UNSIGNED NOT NULL DEFAULT 0;

-- Existing data: one pass over the raw samples still kept.
INSERT INTO host_minutes (host, minute, cpu_user_pct, cpu_system_pct, cpu_iowait_pct,
                          cpu_steal_pct, cpu_idle_pct, load5, load15, cpus)
SELECT host, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00') AS DATETIME) AS m,
       AVG(user_pct), AVG(system_pct), AVG(iowait_pct), AVG(steal_pct), AVG(idle_pct),
       AVG(load5), AVG(load15), MAX(cpus)
FROM cpu_samples
GROUP BY host, m
ON DUPLICATE KEY UPDATE cpu_user_pct = VALUES(cpu_user_pct),
    cpu_system_pct = VALUES(cpu_system_pct), cpu_iowait_pct = VALUES(cpu_iowait_pct),
    cpu_steal_pct = VALUES(cpu_steal_pct), cpu_idle_pct = VALUES(cpu_idle_pct),
    load5 = VALUES(load5), load15 = VALUES(load15), cpus = VALUES(cpus);

INSERT INTO host_minutes (host, minute, ram_used, ram_cached, ram_free, ram_total)
SELECT host, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00') AS DATETIME) AS m,
       AVG(used), AVG(cached), AVG(free), MAX(total)
FROM ram_samples
WHERE total > 0
GROUP BY host, m
ON DUPLICATE KEY UPDATE ram_used = VALUES(ram_used), ram_cached = VALUES(ram_cached),
    ram_free = VALUES(ram_free), ram_total = VALUES(ram_total);

INSERT INTO host_minutes (host, minute, procs_running, procs_sleeping, procs_blocked,
                          procs_zombie, procs_other, procs_samples)
SELECT host, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:%i:00') AS DATETIME) AS m,
       AVG(running), AVG(sleeping), AVG(blocked), AVG(zombie), AVG(other), COUNT(*)
FROM procs_snapshots
GROUP BY host, m
ON DUPLICATE KEY UPDATE procs_running = VALUES(procs_running),
    procs_sleeping = VALUES(procs_sleeping), procs_blocked = VALUES(procs_blocked),
    procs_zombie = VALUES(procs_zombie), procs_other = VALUES(procs_other),
    procs_samples = VALUES(procs_samples);
