-- The audit trail of process control: one row per `event` sample, that is
-- per command a publisher received on cmd.<host> (see schemas/README.md, "Process control").
-- Unique on (host, boot, seq) like every sample table, so a redelivered
-- event never makes a second row. Times are UTC, DATETIME(6).
CREATE TABLE commands (
    host         VARCHAR(64)  CHARACTER SET ascii NOT NULL,
    boot         VARCHAR(64)  CHARACTER SET ascii NOT NULL,
    seq          BIGINT UNSIGNED NOT NULL,
    -- When the publisher handled the command (its clock).
    ts           DATETIME(6)  NOT NULL,
    -- As requested: `kill`, or an unknown action's text; '' when the
    -- request could not be read.
    action       VARCHAR(64)  NOT NULL,
    -- As requested; NULL when the request had none. BIGINT because a
    -- refused request may name any number.
    pid          BIGINT       NULL,
    -- comm of the target, when it was found.
    process_name VARCHAR(64)  NULL,
    -- Without SIG: TERM, KILL, ... (`signal` is a reserved word).
    signal_name  VARCHAR(16)  NULL,
    -- Who the request says asked (the requester's claim).
    requested_by VARCHAR(255) NULL,
    -- The requester's NATS user, when the server passed it on.
    nats_user    VARCHAR(255) NULL,
    outcome      ENUM('ok', 'refused', 'failed', 'invalid') NOT NULL,
    -- Why, when the outcome is not ok.
    error        VARCHAR(1024) NULL,
    PRIMARY KEY (host, boot, seq),
    KEY commands_host_ts (host, ts),
    KEY commands_ts (ts)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
