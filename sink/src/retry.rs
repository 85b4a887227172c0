//! Waiting out a dependency that fails, and keeping the log short while it
//! does.
//!
//! [`Retry`] is one dependency's retries: the backoff shared with the
//! publisher ([`vigia_schema::backoff`]), one warning when a run of
//! failures starts, one line when it ends. [`LogLimit`] keeps a line that
//! may repeat (a dead letter from a broken publisher) to one per period.

use std::fmt::Display;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use vigia_schema::backoff::Backoff;

use crate::shutdown::Shutdown;

pub(crate) struct Retry {
    /// What is tried: "writing to MySQL".
    what: &'static str,
    /// What the sink does meanwhile, for the warning.
    meanwhile: &'static str,
    backoff: Backoff,
}

impl Retry {
    pub const fn new(what: &'static str, meanwhile: &'static str) -> Self {
        Self {
            what,
            meanwhile,
            backoff: Backoff::new(),
        }
    }

    /// A try failed; `holding` is how many messages wait on it. Logged when
    /// it starts a run of failures. Returns the pause before the next try.
    pub fn failed(&mut self, error: &dyn Display, holding: usize) -> Duration {
        let failure = self.backoff.failed();
        if failure.first {
            let (what, meanwhile) = (self.what, self.meanwhile);
            if holding > 0 {
                tracing::warn!(%error, holding, "{what} failed; {meanwhile}");
            } else {
                tracing::warn!(%error, "{what} failed; {meanwhile}");
            }
        }
        failure.pause
    }

    /// [`Retry::failed`], then its pause; false when shutdown came first.
    pub async fn pause_after(
        &mut self,
        error: &(dyn Display + Sync),
        holding: usize,
        shutdown: &Shutdown,
    ) -> bool {
        let pause = self.failed(error, holding);
        tokio::select! {
            _ = shutdown.wait() => false,
            _ = tokio::time::sleep(pause) => true,
        }
    }

    /// A try worked. Logged when it ends a run of failures.
    pub fn ok(&mut self) {
        if self.backoff.succeeded() {
            tracing::info!("{} works again", self.what);
        }
    }
}

/// Allows one log line per period.
pub(crate) struct LogLimit {
    period: Duration,
    last: Mutex<Option<Instant>>,
}

impl LogLimit {
    pub fn every(period: Duration) -> Self {
        Self {
            period,
            last: Mutex::new(None),
        }
    }

    pub fn allow(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < self.period) {
            return false;
        }
        *last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_log_limit_lets_one_line_through_per_period() {
        let limit = LogLimit::every(Duration::from_secs(60));
        assert!(limit.allow());
        assert!(!limit.allow());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(limit.allow());
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_pauses_longer_each_time_until_shutdown() {
        let shutdown = Shutdown::new();
        let mut retry = Retry::new("testing", "retrying");
        let started = Instant::now();
        assert!(retry.pause_after(&"down", 0, &shutdown).await);
        assert!(retry.pause_after(&"down", 0, &shutdown).await);
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        shutdown.trigger();
        assert!(!retry.pause_after(&"down", 0, &shutdown).await);
        retry.ok();
        assert_eq!(retry.failed(&"down", 0), Duration::from_millis(100));
    }
}
