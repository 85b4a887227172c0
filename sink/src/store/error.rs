//! Why a write failed, named by the statement that failed.
//!
//! The writer does not judge whether MySQL is away or the data is bad: an
//! error number tells too little (issue 11: an unlisted one stalled the
//! sink for good). Ingest asks MySQL itself ([`super::Writer::probe`]) and
//! narrows a batch down when it answers and takes writes; the questions
//! below are what it asks of an error on the way, and [`ProbeError`] is why
//! the probe says MySQL cannot take a batch now.

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A statement failed; `at` names its table (or the step: `begin`,
    /// `max_allowed_packet`, `commit`).
    #[error("{at}: {source}")]
    Statement {
        at: &'static str,
        source: sqlx::Error,
    },
    /// One row is more than a statement can carry: the server's
    /// max_allowed_packet, less headroom. No retry can help.
    #[error(
        "{at}: one row of {bytes} bytes is more than the {budget} bytes a statement may carry \
         (max_allowed_packet {packet})"
    )]
    TooLarge {
        at: &'static str,
        bytes: usize,
        budget: usize,
        packet: usize,
    },
    /// The write did not finish in time.
    #[error("the write took longer than {0:?}")]
    TimedOut(std::time::Duration),
}

impl WriteError {
    /// Whether no row was sent at all: the sink's own pool had no
    /// connection to give, or the transaction did not begin. Never the
    /// data's fault, so never a reason to dead-letter anything.
    pub fn sent_nothing(&self) -> bool {
        matches!(
            self,
            WriteError::Statement {
                source: sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed,
                ..
            } | WriteError::Statement { at: "begin", .. }
        )
    }

    /// Whether the error itself shows MySQL up and taking writes, so no
    /// probe is needed: MySQL answered the statement with an error of its
    /// own, or the writer refused a row before sending it. Not SQLSTATE
    /// classes 08 ("connection exception") and 70 ("interrupted"), which a
    /// server going down sends to the statements it cuts off; not a refusal
    /// for a server-wide option ([`ER_OPTION_PREVENTS_STATEMENT`], which
    /// `read_only` sends during a failover, or [`ER_READ_ONLY_MODE`]): that
    /// says nothing of the data, and the probe tells whether the server is
    /// read-only; and a dropped connection or a timeout shows nothing: only
    /// a probe tells.
    pub fn shows_mysql_up(&self) -> bool {
        match self {
            WriteError::TooLarge { .. } => true,
            WriteError::Statement {
                source: sqlx::Error::Database(db),
                ..
            } => {
                db.code()
                    .is_none_or(|state| !(state.starts_with("08") || state.starts_with("70")))
                    && !matches!(
                        self.mysql_number(),
                        Some(ER_OPTION_PREVENTS_STATEMENT | ER_READ_ONLY_MODE)
                    )
            }
            _ => false,
        }
    }

    /// Whether the same rows may go through if written again a moment
    /// later, MySQL being up: the errors MySQL itself says to retry
    /// ("try restarting transaction": a deadlock or serialisation failure,
    /// SQLSTATE class 40, and a lock wait timeout, 1205), a statement
    /// interrupted (class 70) or cut off with its connection (class 08, or
    /// no error from MySQL at all), a timeout, and a failed commit. Any
    /// other error MySQL sends about a sample written alone is about the
    /// sample: retrying it only delays the batch (issue 11's review: 400
    /// refused samples tried three times each stalled storage for 247 s).
    pub fn may_pass_later(&self) -> bool {
        match self {
            WriteError::TooLarge { .. } => false,
            WriteError::TimedOut(_) | WriteError::Statement { at: "commit", .. } => true,
            WriteError::Statement {
                source: sqlx::Error::Database(db),
                ..
            } => {
                let class = db
                    .code()
                    .map(|state| state.chars().take(2).collect::<String>());
                matches!(class.as_deref(), Some("40" | "70" | "08"))
                    || self.mysql_number() == Some(ER_LOCK_WAIT_TIMEOUT)
            }
            WriteError::Statement { .. } => true,
        }
    }

    /// MySQL's own error number, when MySQL sent one.
    pub fn mysql_number(&self) -> Option<u16> {
        match self {
            WriteError::Statement {
                source: sqlx::Error::Database(db),
                ..
            } => db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|e| e.number()),
            _ => None,
        }
    }
}

/// "Lock wait timeout exceeded; try restarting transaction" (SQLSTATE
/// HY000, so its class does not say it).
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;

/// "The MySQL server is running with the --read-only option so it cannot
/// execute this statement" (or another server-wide option): what every
/// write gets while a failover or maintenance holds the server read-only.
const ER_OPTION_PREVENTS_STATEMENT: u16 = 1290;

/// "Running in read-only mode".
const ER_READ_ONLY_MODE: u16 = 1836;

/// Why the probe says MySQL cannot take a batch now: the sink waits, as for
/// an outage, and dead-letters nothing.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No connection, or no answer to the query.
    #[error("MySQL does not answer: {0}")]
    Unreachable(#[from] sqlx::Error),
    /// No answer within the probe's time.
    #[error("MySQL did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// MySQL answers but takes no writes (`@@read_only`): a managed
    /// failover, a replica promoted late, an operator's maintenance. Every
    /// write fails whatever its data, so none is the data's fault.
    #[error("MySQL answers but is read-only (@@read_only); waiting for it to take writes")]
    ReadOnly,
}

/// Names the statement a sqlx error came from.
pub(super) trait At<T> {
    fn at(self, at: &'static str) -> Result<T, WriteError>;
}

impl<T> At<T> for Result<T, sqlx::Error> {
    fn at(self, at: &'static str) -> Result<T, WriteError> {
        self.map_err(|source| WriteError::Statement { at, source })
    }
}
