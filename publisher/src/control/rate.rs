//! At most N commands a second, for each requester.
//!
//! A sliding window over the last second, counting every message that
//! arrives on `cmd.<host>` (well-formed or not) before it is read: the
//! limit bounds the work and the audit events a flood can cause, whatever
//! the flood holds. Each verified requester (see identity.rs) has a window
//! of its own, so one noisy client cannot use up another's allowance;
//! requests with no verified requester share one window.
//!
//! `who` changes nothing and vigiactl asks it before every kill: counted
//! as a command, it used up the only one `--control-rate 1` allows, and
//! every kill was refused. So a message that turns out to be a `who` moves
//! to a second window of the same size, the requester's `who` allowance,
//! when that has room. Once both are used up, a `who` counts as a command
//! again: a requester's messages read per second stay bounded (2N), and
//! its commands carried out stay at most N.

use std::collections::{HashMap, VecDeque};
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
        if self.has_room(now) {
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

impl RateLimiter {
    /// Whether a message at `now` fits the window (forgetting those that
    /// left it).
    fn has_room(&mut self, now: Instant) -> bool {
        while self
            .admitted
            .front()
            .is_some_and(|at| now.duration_since(*at) >= WINDOW)
        {
            self.admitted.pop_front();
        }
        self.admitted.len() < self.per_second
    }

    /// Takes back the newest admission and counts it in `other` instead;
    /// false (nothing moved) when `other` has no room.
    fn move_newest(&mut self, other: &mut RateLimiter, now: Instant) -> bool {
        if !other.has_room(now) {
            return false;
        }
        other.admitted.push_back(now);
        self.admitted.pop_back();
        true
    }
}

/// A requester's two windows.
struct Allowance {
    commands: RateLimiter,
    who: RateLimiter,
}

impl Allowance {
    fn new(per_second: u32) -> Self {
        Self {
            commands: RateLimiter::new(per_second),
            who: RateLimiter::new(per_second),
        }
    }
}

/// Requesters tracked at once. Under auth only enrolled operators can
/// send, so this is never reached in practice; beyond it, requesters whose
/// window is empty are forgotten, and if none is, a new requester shares
/// the window of requests with no verified requester.
const MAX_REQUESTERS: usize = 1024;

/// A [`RateLimiter`] per requester, and one for its `who` requests.
pub struct PerRequester {
    per_second: u32,
    /// Requests with no verified requester, and requesters beyond the bound.
    shared: Allowance,
    limiters: HashMap<String, Allowance>,
}

impl PerRequester {
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            shared: Allowance::new(per_second),
            limiters: HashMap::new(),
        }
    }

    pub fn per_second(&self) -> usize {
        self.shared.commands.per_second()
    }

    /// Whether a message may be read, counted as a command until
    /// [`PerRequester::was_who`] says otherwise.
    pub fn admit(&mut self, requester: Option<&str>, now: Instant) -> Admission {
        let Some(requester) = requester else {
            return self.shared.commands.admit(now);
        };
        if !self.limiters.contains_key(requester) && self.limiters.len() >= MAX_REQUESTERS {
            self.limiters
                .retain(|_, l| !l.commands.is_idle(now) || !l.who.is_idle(now));
            if self.limiters.len() >= MAX_REQUESTERS {
                return self.shared.commands.admit(now);
            }
        }
        let per_second = self.per_second;
        self.limiters
            .entry(requester.to_owned())
            .or_insert_with(|| Allowance::new(per_second))
            .commands
            .admit(now)
    }

    /// The message just admitted for `requester` was a `who`: it moves to
    /// the requester's `who` window when that has room (and then uses up
    /// no command). Returns whether it moved.
    pub fn was_who(&mut self, requester: Option<&str>, now: Instant) -> bool {
        // The window `admit` used: the requester's own, or the shared one.
        let allowance = match requester.and_then(|r| self.limiters.get_mut(r)) {
            Some(own) => own,
            None => &mut self.shared,
        };
        allowance.commands.move_newest(&mut allowance.who, now)
    }

    /// Requesters with a window of their own right now.
    pub fn tracked(&self) -> usize {
        self.limiters.len()
    }
}

impl RateLimiter {
    /// Nothing admitted within the last second (and not refusing).
    fn is_idle(&self, now: Instant) -> bool {
        !self.refusing
            && self
                .admitted
                .back()
                .is_none_or(|at| now.duration_since(*at) >= WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_requester_leaves_the_others_their_allowance() {
        let mut limits = PerRequester::new(10);
        let t0 = Instant::now();
        let flood: Vec<Admission> = (0..50).map(|_| limits.admit(Some("mallory"), t0)).collect();
        assert_eq!(
            flood.iter().filter(|a| **a == Admission::Admitted).count(),
            10
        );
        assert_eq!(limits.admit(Some("alice"), t0), Admission::Admitted);
        assert_eq!(limits.admit(None, t0), Admission::Admitted);
        assert!(matches!(
            limits.admit(Some("mallory"), t0),
            Admission::Refused { .. }
        ));
    }

    #[test]
    fn requesters_beyond_the_bound_share_the_unverified_window_unless_others_are_idle() {
        let mut limits = PerRequester::new(1);
        let t0 = Instant::now();
        for i in 0..MAX_REQUESTERS {
            assert_eq!(
                limits.admit(Some(&format!("r{i}")), t0),
                Admission::Admitted
            );
        }
        assert_eq!(limits.tracked(), MAX_REQUESTERS);
        // All busy: the newcomer uses the shared window (one a second).
        assert_eq!(limits.admit(Some("new"), t0), Admission::Admitted);
        assert!(matches!(
            limits.admit(Some("newer"), t0),
            Admission::Refused { .. }
        ));
        assert!(limits.tracked() <= MAX_REQUESTERS);
        // A second on, every window is empty and is forgotten.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(limits.admit(Some("late"), later), Admission::Admitted);
        assert!(limits.tracked() < 10);
    }

    #[test]
    fn who_has_an_allowance_of_its_own_and_never_uses_up_the_only_command() {
        let mut limits = PerRequester::new(1);
        let t0 = Instant::now();
        // vigiactl kill: a who, then the kill, within the same second.
        assert_eq!(limits.admit(Some("op"), t0), Admission::Admitted);
        assert!(limits.was_who(Some("op"), t0));
        assert_eq!(limits.admit(Some("op"), t0), Admission::Admitted);
        // That was the one command: the next is refused.
        assert!(matches!(
            limits.admit(Some("op"), t0),
            Admission::Refused { .. }
        ));
        // The same holds for requests with no verified requester.
        assert_eq!(limits.admit(None, t0), Admission::Admitted);
        assert!(limits.was_who(None, t0));
        assert_eq!(limits.admit(None, t0), Admission::Admitted);
    }

    #[test]
    fn a_flood_of_who_is_bounded_by_both_windows() {
        let mut limits = PerRequester::new(2);
        let t0 = Instant::now();
        let mut read = 0;
        for _ in 0..100 {
            if limits.admit(Some("curious"), t0) == Admission::Admitted {
                read += 1;
                limits.was_who(Some("curious"), t0);
            }
        }
        assert_eq!(read, 4, "two who, then two more counted as commands");
        // A second on, both windows are empty again.
        let later = t0 + Duration::from_secs(1);
        assert_eq!(limits.admit(Some("curious"), later), Admission::Admitted);
    }

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
