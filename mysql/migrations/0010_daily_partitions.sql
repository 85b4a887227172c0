-- Every table that grows with time is split into one partition per UTC
-- day, so that retention drops whole days (ALTER TABLE ... DROP PARTITION,
-- a file removed) instead of deleting rows one by one: at steady state the
-- row deletes cost the database as much work as ingest itself, and they
-- grow with the fleet. The sink keeps the partitions (sink/src/partitions.rs):
-- it creates each day's ahead of time and drops those wholly older than
-- their table's retention.
--
-- Partitioned by RANGE COLUMNS on each table's time column. Every unique
-- key of a partitioned table must hold that column, so the sample tables'
-- primary keys gain `ts` after (host, boot, seq): a redelivered message
-- carries the same ts and is still a no-op. The last partition, `future`,
-- takes whatever lies past the newest day (none in steady state: the sink
-- refuses samples more than 5 minutes ahead, and creates days ahead); the
-- sink splits new days out of it.
--
-- A database holding data gets one partition per day from its oldest row
-- on, in the one copy of each table this ALTER makes (on a large database,
-- minutes; mysql/MYSQL8.md). Day names are dYYYYMMDD, the day they hold.

SET SESSION group_concat_max_len = 1048576;

-- One list of days for every table: from the oldest row of any of them, or
-- at least from eight days back (more than the sink takes at its default
-- retention, so each sample it takes lands in its own day), to two days
-- ahead. A table whose own rows
-- start later has a few empty days first; retention drops them. At most a
-- year back (MySQL recurses 1,000 times at most, and a table holds 8,192
-- partitions): anything older lands in the first day, which retention
-- drops as soon as that day is past it.
SELECT GREATEST(UTC_DATE() - INTERVAL 366 DAY, LEAST(UTC_DATE() - INTERVAL 8 DAY,
             COALESCE((SELECT DATE(MIN(ts)) FROM cpu_samples), UTC_DATE()),
             COALESCE((SELECT DATE(MIN(ts)) FROM ram_samples), UTC_DATE()),
             COALESCE((SELECT DATE(MIN(ts)) FROM procs_snapshots), UTC_DATE()),
             COALESCE((SELECT DATE(MIN(ts)) FROM process_samples), UTC_DATE()),
             COALESCE((SELECT DATE(MIN(ts)) FROM publisher_health), UTC_DATE()),
             COALESCE((SELECT DATE(MIN(ts)) FROM host_events), UTC_DATE()),
             COALESCE((SELECT DATE(MIN(ts)) FROM sink_health), UTC_DATE()),
             COALESCE((SELECT DATE(MIN(minute)) FROM host_minutes), UTC_DATE()),
             COALESCE((SELECT DATE(MIN(period)) FROM host_ten_minutes), UTC_DATE()),
             COALESCE((SELECT DATE(MIN(period)) FROM process_ten_minutes), UTC_DATE())))
INTO @vigia_oldest;
WITH RECURSIVE days (day) AS (
    SELECT @vigia_oldest
    UNION ALL SELECT day + INTERVAL 1 DAY FROM days WHERE day < UTC_DATE() + INTERVAL 2 DAY
)
SELECT CONCAT(GROUP_CONCAT('PARTITION d', DATE_FORMAT(day, '%Y%m%d'), ' VALUES LESS THAN (''',
                           day + INTERVAL 1 DAY, ''')' ORDER BY day SEPARATOR ', '),
              ', PARTITION future VALUES LESS THAN (MAXVALUE))')
INTO @vigia_days FROM days;

SET @vigia_0010 = CONCAT('ALTER TABLE cpu_samples DROP PRIMARY KEY, ADD PRIMARY KEY (host, boot, seq, ts) PARTITION BY RANGE COLUMNS (ts) (', @vigia_days);
PREPARE vigia_0010 FROM @vigia_0010;
EXECUTE vigia_0010;

SET @vigia_0010 = CONCAT('ALTER TABLE ram_samples DROP PRIMARY KEY, ADD PRIMARY KEY (host, boot, seq, ts) PARTITION BY RANGE COLUMNS (ts) (', @vigia_days);
PREPARE vigia_0010 FROM @vigia_0010;
EXECUTE vigia_0010;

SET @vigia_0010 = CONCAT('ALTER TABLE procs_snapshots DROP PRIMARY KEY, ADD PRIMARY KEY (host, boot, seq, ts) PARTITION BY RANGE COLUMNS (ts) (', @vigia_days);
PREPARE vigia_0010 FROM @vigia_0010;
EXECUTE vigia_0010;

SET @vigia_0010 = CONCAT('ALTER TABLE process_samples DROP PRIMARY KEY, ADD PRIMARY KEY (host, boot, seq, pid, ts) PARTITION BY RANGE COLUMNS (ts) (', @vigia_days);
PREPARE vigia_0010 FROM @vigia_0010;
EXECUTE vigia_0010;

SET @vigia_0010 = CONCAT('ALTER TABLE publisher_health DROP PRIMARY KEY, ADD PRIMARY KEY (host, boot, seq, ts) PARTITION BY RANGE COLUMNS (ts) (', @vigia_days);
PREPARE vigia_0010 FROM @vigia_0010;
EXECUTE vigia_0010;

SET @vigia_0010 = CONCAT('ALTER TABLE host_events DROP PRIMARY KEY, ADD PRIMARY KEY (host, boot, kind, seq, ts) PARTITION BY RANGE COLUMNS (ts) (', @vigia_days);
PREPARE vigia_0010 FROM @vigia_0010;
EXECUTE vigia_0010;

SET @vigia_0010 = CONCAT('ALTER TABLE sink_health PARTITION BY RANGE COLUMNS (ts) (', @vigia_days); -- its primary key holds the time already
PREPARE vigia_0010 FROM @vigia_0010;
EXECUTE vigia_0010;

SET @vigia_0010 = CONCAT('ALTER TABLE host_minutes PARTITION BY RANGE COLUMNS (minute) (', @vigia_days); -- its primary key holds the time already
PREPARE vigia_0010 FROM @vigia_0010;
EXECUTE vigia_0010;

SET @vigia_0010 = CONCAT('ALTER TABLE host_ten_minutes PARTITION BY RANGE COLUMNS (period) (', @vigia_days); -- its primary key holds the time already
PREPARE vigia_0010 FROM @vigia_0010;
EXECUTE vigia_0010;

SET @vigia_0010 = CONCAT('ALTER TABLE process_ten_minutes PARTITION BY RANGE COLUMNS (period) (', @vigia_days); -- its primary key holds the time already
PREPARE vigia_0010 FROM @vigia_0010;
EXECUTE vigia_0010;

DEALLOCATE PREPARE vigia_0010;
