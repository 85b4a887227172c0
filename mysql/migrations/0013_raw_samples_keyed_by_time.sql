-- The raw sample tables are read by host and time (every Host and Process
-- panel, every rollup the sink computes) and never by (host, boot, seq)
-- alone. Their primary keys become (host, ts, boot, seq[, pid]): the same
-- columns, so a redelivered message is still a no-op, in the order the
-- reads want. A host's rows now lie together in time order, so a panel's
-- range is one stretch of the table instead of a lookup per row through
-- the (host, ts) index, and that index, which only repeated the key, goes:
-- each row is written to one index fewer, and the raw tier, most of the
-- disk, shrinks by about a fifth (README "Disk").
--
-- Each ALTER copies its table, and the sink ingests nothing meanwhile:
-- about 4 s per host-day of raw samples on a 2-core machine, so hours for
-- a large fleet (the raw tables hold `--retention`, 48 hours by default).
-- README "Upgrading" says how to size the stream for it.
-- process_samples keeps its (host, name, ts) index: the Process dashboard
-- reads one process name over time.

ALTER TABLE cpu_samples
    DROP PRIMARY KEY, ADD PRIMARY KEY (host, ts, boot, seq),
    DROP INDEX cpu_samples_host_ts;

ALTER TABLE ram_samples
    DROP PRIMARY KEY, ADD PRIMARY KEY (host, ts, boot, seq),
    DROP INDEX ram_samples_host_ts;

ALTER TABLE procs_snapshots
    DROP PRIMARY KEY, ADD PRIMARY KEY (host, ts, boot, seq),
    DROP INDEX procs_snapshots_host_ts;

ALTER TABLE process_samples
    DROP PRIMARY KEY, ADD PRIMARY KEY (host, ts, boot, seq, pid),
    DROP INDEX process_samples_host_ts;

ALTER TABLE publisher_health
    DROP PRIMARY KEY, ADD PRIMARY KEY (host, ts, boot, seq),
    DROP INDEX publisher_health_host_ts;
