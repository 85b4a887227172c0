-- The latest process list of each host, stored as ONE row per host.
--
-- 0001 kept it as one row per process, replaced whole by every snapshot:
-- 400 rows deleted and 400 inserted per host every 5 s, which at 500 hosts
-- was 93 % of every row the sink wrote and put the sink behind the fleet
-- (the latency benchmark, scripts/bench.sh latency). Now each snapshot
-- replaces a single row holding the list as a JSON array, and `processes`
-- becomes a view that expands it: the same columns and the same meaning
-- (one row per live process), read with one indexed lookup per host.

DROP TABLE processes;

CREATE TABLE process_lists (
    host      VARCHAR(64) CHARACTER SET ascii NOT NULL,
    boot      VARCHAR(64) CHARACTER SET ascii NOT NULL,
    seq       BIGINT UNSIGNED NOT NULL,
    -- When the snapshot was taken.
    ts        DATETIME(6) NOT NULL,
    -- JSON array of {pid, ppid, name, uid, user, state, rss, mem_pct,
    -- cpu_pct, threads, started}; started as 'YYYY-MM-DD HH:MM:SS.ffffff'.
    processes LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL CHECK (JSON_VALID(processes)),
    PRIMARY KEY (host)
) ENGINE = InnoDB;

CREATE VIEW processes AS
SELECT l.host, p.pid, p.ppid, p.name, p.uid, p.user, p.state, p.rss, p.mem_pct, p.cpu_pct,
       p.threads, p.started, l.ts
FROM process_lists AS l,
     JSON_TABLE(l.processes, '$[*]' COLUMNS (
         pid     INT             PATH '$.pid',
         ppid    INT             PATH '$.ppid',
         name    VARCHAR(255)    PATH '$.name',
         uid     INT UNSIGNED    PATH '$.uid',
         user    VARCHAR(64)     PATH '$.user',
         state   CHAR(1)         PATH '$.state',
         rss     BIGINT UNSIGNED PATH '$.rss',
         mem_pct FLOAT           PATH '$.mem_pct',
         cpu_pct FLOAT           PATH '$.cpu_pct',
         threads INT UNSIGNED    PATH '$.threads',
         started DATETIME(6)     PATH '$.started'
     )) AS p;
