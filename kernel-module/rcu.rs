// SPDX-License-Identifier: GPL-2.0

//! An RCU read-side critical section as a value.
//!
//! Borrowing the guard is the proof, checked by the compiler, that a task
//! pointer obtained from the RCU-protected task list is still valid: task
//! structs are freed only after a grace period, and the guard cannot be
//! dropped while such a borrow lives. Nothing that may sleep can be called
//! while it is held; the test kernel's PROVE_RCU and DEBUG_ATOMIC_SLEEP check
//! exactly that.

use crate::ffi;
use core::marker::PhantomData;

/// Holds `rcu_read_lock()` until dropped.
pub(crate) struct RcuReadGuard {
    /// `rcu_read_unlock()` must run on the CPU context that locked: not `Send`.
    _not_send: PhantomData<*mut ()>,
}

impl RcuReadGuard {
    /// Enters an RCU read-side critical section.
    pub(crate) fn new() -> Self {
        // SAFETY: rcu_read_lock() has no precondition; it is paired with the
        // unlock in `drop`.
        unsafe { ffi::vigia_rcu_read_lock() };
        Self {
            _not_send: PhantomData,
        }
    }
}

impl Drop for RcuReadGuard {
    fn drop(&mut self) {
        // SAFETY: `new` took the lock and this guard is dropped exactly once,
        // on the same task (the guard is neither Send nor Clone).
        unsafe { ffi::vigia_rcu_read_unlock() };
    }
}
