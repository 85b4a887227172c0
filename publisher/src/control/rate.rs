//! At most N commands a second.
//!
//! A sliding window over the last second, counting every message that
//! arrives on `cmd.<host>` (well-formed or not): the limit bounds the work
//! and the audit events a flood can cause, whatever the flood holds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

pub struct RateLimiter {
    per_second: usize,
    admitted: VecDeque<Instant>,
    /// Whether the last message was refused, so that a flood of refusals
    /// is audited once per burst rather than once per message.
    refusing: bool,
}

/// What the limiter says about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Over the limit. `first` is true for the first refusal after an
    /// admitted message: the one refusal of a burst that gets audited.
    Refused {
        first: bool,
    },
}

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1) as usize;
        Self {
            per_second,
            admitted: VecDeque::with_capacity(per_second),
            refusing: false,
        }
    }

    pub fn per_second(&self) -> usize {
        self.per_second
    }

    pub fn admit(&mut self, now: Instant) -> Admission {
        while self
            .admitted
            .front()
            .is_some_and(|at| now.duration_since(*at) >= WINDOW)
        {
            self.admitted.pop_front();
        }
        if self.admitted.len() < self.per_second {
            self.admitted.push_back(now);
            self.refusing = false;
            Admission::Admitted
        } else {
            let first = !self.refusing;
            self.refusing = true;
            Admission::Refused { first }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_in_a_second_is_refused() {
        let mut limiter = RateLimiter::new(10);
        let t0 = Instant::now();
        for i in 0..10 {
            let at = t0 + Duration::from_millis(i * 50);
            assert_eq!(limiter.admit(at), Admission::Admitted, "message {i}");
        }
        let at = t0 + Duration::from_millis(600);
        assert_eq!(limiter.admit(at), Admission::Refused { first: true });
        assert_eq!(limiter.admit(at), Admission::Refused { first: false });
    }

    #[test]
    fn the_window_slides() {
        let mut limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        assert_eq!(limiter.admit(t0), Admission::Admitted);
        assert_eq!(
            limiter.admit(t0 + Duration::from_millis(500)),
            Admission::Admitted
        );
        assert!(matches!(
            limiter.admit(t0 + Duration::from_millis(900)),
            Admission::Refused { .. }
        ));
        // The first message left the window; one slot is free again.
        assert_eq!(
            limiter.admit(t0 + Duration::from_millis(1000)),
            Admission::Admitted
        );
        assert_eq!(
            limiter.admit(t0 + Duration::from_millis(1001)),
            Admission::Refused { first: true }
        );
    }
}
