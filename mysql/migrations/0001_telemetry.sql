-- vigia's schema: a public interface that dashboards and users query.
-- Every time is UTC, DATETIME(6) (microseconds). Host names are host tokens
-- ([a-z0-9_-], at most 64). Samples are unique on (host, boot, seq), which
-- makes a redelivered message a no-op.

-- One row per host ever heard from, kept current by the sink.
CREATE TABLE hosts (
    host              VARCHAR(64)  CHARACTER SET ascii NOT NULL,
    -- The newest boot (start of a publisher) seen for this host.
    boot              VARCHAR(64)  CHARACTER SET ascii NOT NULL,
    -- online until a `bye` or three missed sampling intervals.
    status            ENUM('online', 'offline') NOT NULL DEFAULT 'online',
    first_seen        DATETIME(6)  NOT NULL,
    -- Time of the newest sample (the publisher's clock).
    last_seen         DATETIME(6)  NOT NULL,
    offline_since     DATETIME(6)  NULL,
    -- From the newest `hello`.
    agent_version     VARCHAR(64)  NULL,
    kernel            VARCHAR(128) NULL,
    os                VARCHAR(128) NULL,
    cpus              INT UNSIGNED NULL,
    ram_total         BIGINT UNSIGNED NULL,
    booted_at         DATETIME(6)  NULL,
    source            VARCHAR(16)  NULL,
    interval_ms       INT UNSIGNED NOT NULL DEFAULT 1000,
    procs_interval_ms INT UNSIGNED NOT NULL DEFAULT 5000,
    -- Which snapshot `processes` holds for this host.
    procs_boot        VARCHAR(64)  CHARACTER SET ascii NULL,
    procs_seq         BIGINT UNSIGNED NULL,
    procs_ts          DATETIME(6)  NULL,
    PRIMARY KEY (host),
    KEY hosts_status_last_seen (status, last_seen)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- One row per cpu sample. Percentages of all CPUs together (0-100).
CREATE TABLE cpu_samples (
    host             VARCHAR(64) CHARACTER SET ascii NOT NULL,
    boot             VARCHAR(64) CHARACTER SET ascii NOT NULL,
    seq              BIGINT UNSIGNED NOT NULL,
    ts               DATETIME(6) NOT NULL,
    busy_pct         FLOAT NOT NULL,
    user_pct         FLOAT NOT NULL,
    system_pct       FLOAT NOT NULL,
    iowait_pct       FLOAT NOT NULL,
    steal_pct        FLOAT NOT NULL,
    idle_pct         FLOAT NOT NULL,
    load1            FLOAT NOT NULL,
    load5            FLOAT NOT NULL,
    load15           FLOAT NOT NULL,
    cpus             INT UNSIGNED NOT NULL,
    -- JSON array of each CPU's busy %, in CPU order.
    per_cpu_busy_pct TEXT NOT NULL,
    PRIMARY KEY (host, boot, seq),
    KEY cpu_samples_host_ts (host, ts)
) ENGINE = InnoDB;

-- One row per ram sample. Bytes.
CREATE TABLE ram_samples (
    host       VARCHAR(64) CHARACTER SET ascii NOT NULL,
    boot       VARCHAR(64) CHARACTER SET ascii NOT NULL,
    seq        BIGINT UNSIGNED NOT NULL,
    ts         DATETIME(6) NOT NULL,
    total      BIGINT UNSIGNED NOT NULL,
    used       BIGINT UNSIGNED NOT NULL,
    free       BIGINT UNSIGNED NOT NULL,
    available  BIGINT UNSIGNED NOT NULL,
    buffers    BIGINT UNSIGNED NOT NULL,
    cached     BIGINT UNSIGNED NOT NULL,
    swap_total BIGINT UNSIGNED NOT NULL,
    swap_free  BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (host, boot, seq),
    KEY ram_samples_host_ts (host, ts)
) ENGINE = InnoDB;

-- The latest process list of each host: one row per live process, replaced
-- whole by each newer procs snapshot.
CREATE TABLE processes (
    host     VARCHAR(64) CHARACTER SET ascii NOT NULL,
    pid      INT NOT NULL,
    ppid     INT NOT NULL,
    name     VARCHAR(255) NOT NULL,
    uid      INT UNSIGNED NOT NULL,
    user     VARCHAR(64) NOT NULL,
    state    CHAR(1) CHARACTER SET ascii NOT NULL,
    rss      BIGINT UNSIGNED NOT NULL,
    mem_pct  FLOAT NOT NULL,
    cpu_pct  FLOAT NOT NULL,
    threads  INT UNSIGNED NOT NULL,
    started  DATETIME(6) NOT NULL,
    ts       DATETIME(6) NOT NULL,
    PRIMARY KEY (host, pid)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Process history. Storing every process of every snapshot costs
-- hosts x processes / interval rows (100 hosts x 400 x every 5 s = 8,000
-- rows/s); the history keeps, at each snapshot, the processes that matter to
-- an operator looking back: the top N by CPU and the top N by RSS (N = 10 by
-- default, sink flag --history-top). The full current list is in `processes`.
CREATE TABLE process_samples (
    host     VARCHAR(64) CHARACTER SET ascii NOT NULL,
    boot     VARCHAR(64) CHARACTER SET ascii NOT NULL,
    seq      BIGINT UNSIGNED NOT NULL,
    ts       DATETIME(6) NOT NULL,
    pid      INT NOT NULL,
    name     VARCHAR(255) NOT NULL,
    user     VARCHAR(64) NOT NULL,
    state    CHAR(1) CHARACTER SET ascii NOT NULL,
    rss      BIGINT UNSIGNED NOT NULL,
    mem_pct  FLOAT NOT NULL,
    cpu_pct  FLOAT NOT NULL,
    threads  INT UNSIGNED NOT NULL,
    PRIMARY KEY (host, boot, seq, pid),
    KEY process_samples_host_ts (host, ts),
    KEY process_samples_host_name_ts (host, name, ts)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Which procs samples were received, so that a snapshot's arrival is
-- checkable even though only part of it goes to process_samples.
CREATE TABLE procs_snapshots (
    host      VARCHAR(64) CHARACTER SET ascii NOT NULL,
    boot      VARCHAR(64) CHARACTER SET ascii NOT NULL,
    seq       BIGINT UNSIGNED NOT NULL,
    ts        DATETIME(6) NOT NULL,
    processes INT UNSIGNED NOT NULL,
    -- Process counts by state letter.
    running   INT UNSIGNED NOT NULL,
    sleeping  INT UNSIGNED NOT NULL,
    blocked   INT UNSIGNED NOT NULL,
    zombie    INT UNSIGNED NOT NULL,
    other     INT UNSIGNED NOT NULL,
    PRIMARY KEY (host, boot, seq),
    KEY procs_snapshots_host_ts (host, ts)
) ENGINE = InnoDB;

-- Lifecycle messages (hello, bye), one row each: the fleet's churn.
CREATE TABLE host_events (
    host   VARCHAR(64) CHARACTER SET ascii NOT NULL,
    boot   VARCHAR(64) CHARACTER SET ascii NOT NULL,
    kind   ENUM('hello', 'bye') NOT NULL,
    seq    BIGINT UNSIGNED NOT NULL,
    ts     DATETIME(6) NOT NULL,
    detail VARCHAR(255) NOT NULL,
    PRIMARY KEY (host, boot, kind, seq),
    KEY host_events_ts (ts)
) ENGINE = InnoDB;
