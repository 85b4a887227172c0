//! Waiting out a dependency that fails: how long to pause before each try,
//! and when a run of failures starts and ends.
//!
//! The publisher (NATS away) and the sink (MySQL or NATS away, an offline
//! sweep failing) retry the same way: 100 ms after the first failure,
//! doubling up to 5 s, back to 100 ms once a try works; and each logs one
//! line when a run of failures starts and one when it ends, never one per
//! try. Here once, for both: the publisher and the sink share nothing but
//! this crate, and this needs nothing but `std`.

use std::time::Duration;

/// The pause after the first failure of a run.
pub const BACKOFF_START: Duration = Duration::from_millis(100);
/// The longest pause between two tries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The state of one dependency's retries.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    /// The next pause; `None` while the dependency works.
    next: Option<Duration>,
}

/// What one failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// How long to wait before trying again.
    pub pause: Duration,
    /// Whether it starts a run of failures: the one to log.
    pub first: bool,
}

impl Backoff {
    pub const fn new() -> Self {
        Backoff { next: None }
    }

    /// A try failed.
    pub fn failed(&mut self) -> Failure {
        let first = self.next.is_none();
        let pause = self.next.unwrap_or(BACKOFF_START);
        self.next = Some((pause * 2).min(BACKOFF_MAX));
        Failure { pause, first }
    }

    /// A try worked; true when it ends a run of failures (the one to log).
    pub fn succeeded(&mut self) -> bool {
        self.next.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_start_over_after_a_success() {
        let mut backoff = Backoff::new();
        let pauses: Vec<u128> = (0..8).map(|_| backoff.failed().pause.as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert!(backoff.succeeded());
        assert_eq!(backoff.failed().pause, BACKOFF_START);
    }

    #[test]
    fn a_run_of_failures_is_told_once_when_it_starts_and_once_when_it_ends() {
        let mut backoff = Backoff::new();
        assert!(!backoff.succeeded(), "nothing failed: nothing ends");
        let firsts: Vec<bool> = (0..3).map(|_| backoff.failed().first).collect();
        assert_eq!(firsts, [true, false, false]);
        assert!(backoff.succeeded());
        assert!(!backoff.succeeded(), "told once");
        assert!(backoff.failed().first, "a new run starts");
    }
}
