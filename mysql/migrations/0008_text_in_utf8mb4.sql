-- Text from publishers is stored in utf8mb4, whatever the database's default.
--
-- 0001 and 0007 named no character set for cpu_samples, host_events and
-- publisher_health, and the processes view (0004) none for its text columns,
-- so they took the database's default. On a database created latin1 (an
-- operator's CREATE DATABASE, or a server whose default is latin1), a hello
-- or health sample with a non-Latin agent_version, source, os or kernel was
-- refused by MariaDB (error 1366, Incorrect string value) and dead-lettered,
-- and the view showed non-Latin process names as '?'. On a database created
-- utf8mb4, as the sink creates it, every statement here changes nothing
-- (MariaDB: 0 rows affected, no table copy).
--
-- The other tables without a character set hold no text but ASCII columns
-- (hosts, boots, states) and numbers, and process_lists names its own.

ALTER TABLE publisher_health DEFAULT CHARACTER SET utf8mb4,
    MODIFY source        VARCHAR(16) CHARACTER SET utf8mb4 NOT NULL,
    MODIFY agent_version VARCHAR(64) CHARACTER SET utf8mb4 NOT NULL;

ALTER TABLE host_events DEFAULT CHARACTER SET utf8mb4,
    MODIFY kind   ENUM('hello', 'bye') CHARACTER SET utf8mb4 NOT NULL,
    MODIFY detail VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL;

-- per_cpu_busy_pct holds a JSON array of numbers, ASCII in any character
-- set; it is converted so that no text column of a sample table depends on
-- the database's default. cpu_samples is the largest table, so it is only
-- altered where it is not utf8mb4 already: MySQL 8 might copy the table
-- for an ALTER that changes nothing, and on a live database that copy takes
-- minutes.
SET @vigia_0008 = (
    SELECT IF(COUNT(*) = 0, 'DO 0',
              'ALTER TABLE cpu_samples DEFAULT CHARACTER SET utf8mb4, '
              'MODIFY per_cpu_busy_pct TEXT CHARACTER SET utf8mb4 NOT NULL')
    FROM information_schema.COLUMNS
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'cpu_samples'
      AND COLUMN_NAME = 'per_cpu_busy_pct' AND CHARACTER_SET_NAME <> 'utf8mb4'
);
PREPARE vigia_0008 FROM @vigia_0008;
EXECUTE vigia_0008;
DEALLOCATE PREPARE vigia_0008;

-- The view of 0004, its text columns in the character set of the list they
-- come from (state is a ps letter, ASCII like process_samples.state).
DROP VIEW processes;

CREATE VIEW processes AS
SELECT l.host, p.pid, p.ppid, p.name, p.uid, p.user, p.state, p.rss, p.mem_pct, p.cpu_pct,
       p.threads, p.started, l.ts
FROM process_lists AS l,
     JSON_TABLE(l.processes, '$[*]' COLUMNS (
         pid     INT             PATH '$.pid',
         ppid    INT             PATH '$.ppid',
         name    VARCHAR(255)    CHARACTER SET utf8mb4 PATH '$.name',
         uid     INT UNSIGNED    PATH '$.uid',
         user    VARCHAR(64)     CHARACTER SET utf8mb4 PATH '$.user',
         state   CHAR(1)         CHARACTER SET ascii PATH '$.state',
         rss     BIGINT UNSIGNED PATH '$.rss',
         mem_pct FLOAT           PATH '$.mem_pct',
         cpu_pct FLOAT           PATH '$.cpu_pct',
         threads INT UNSIGNED    PATH '$.threads',
         started DATETIME(6)     PATH '$.started'
     )) AS p;
