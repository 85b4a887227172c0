// SPDX-License-Identifier: GPL-2.0

//! Walking the task list under RCU and reading a process the way fs/proc does.
//!
//! A `Task<'a>` can only be obtained from an iterator that borrows an
//! [`RcuReadGuard`] for `'a`, so it cannot outlive the read-side critical
//! section that keeps its `task_struct` (and the `signal_struct` it points
//! to) from being freed. Everything read here either is a plain field read
//! with `READ_ONCE` semantics or goes through the kernel's accessors, none of
//! which sleeps.

use crate::ffi;
use crate::rcu::RcuReadGuard;
use core::marker::PhantomData;
use core::ptr::{addr_of, addr_of_mut};
use kernel::bindings;

/// Size of `task_struct::comm` (TASK_COMM_LEN).
pub(crate) const COMM_LEN: usize = 16;

/// A task reached through the RCU-protected task list.
#[derive(Clone, Copy)]
pub(crate) struct Task<'a> {
    ptr: *mut bindings::task_struct,
    _rcu: PhantomData<&'a RcuReadGuard>,
}

/// What is read under `task_lock`: the name and the memory of the process.
pub(crate) struct Locked {
    pub(crate) comm: [u8; COMM_LEN],
    pub(crate) comm_len: usize,
    /// Resident pages (anon + file + shmem), 0 for kernel threads.
    pub(crate) rss_pages: u64,
    /// Mapped pages (`mm->total_vm`), 0 for kernel threads.
    pub(crate) vm_pages: u64,
}

impl<'a> Task<'a> {
    /// Thread-group id: the process id in the initial pid namespace.
    pub(crate) fn tgid(&self) -> i32 {
        // SAFETY: `ptr` is valid for `'a` (see the type's doc); tgid is set
        // at fork and keeps its value for the whole thread group, so a plain
        // read is what task_tgid_nr() does.
        unsafe { (*self.ptr).tgid }
    }

    /// The parent's tgid, as /proc/PID/stat computes it.
    pub(crate) fn ppid(&self) -> i32 {
        // SAFETY: valid task under RCU; task_ppid_nr() rcu_dereferences
        // real_parent, which is what RCU is held for.
        unsafe { ffi::vigia_task_ppid(self.ptr) }
    }

    /// Real uid, mapped into the initial user namespace.
    pub(crate) fn uid(&self) -> u32 {
        // SAFETY: valid task under RCU; task_uid() rcu_dereferences the
        // task's real credentials.
        unsafe { ffi::vigia_task_uid(self.ptr) }
    }

    /// The state letter /proc shows (R, S, D, T, t, X, Z, P, I).
    pub(crate) fn state(&self) -> u8 {
        // SAFETY: valid task; task_state_to_char() reads __state and
        // exit_state with READ_ONCE.
        unsafe { ffi::vigia_task_state_char(self.ptr) }
    }

    /// Start time, nanoseconds since boot (counting suspend), as
    /// /proc/PID/stat's starttime before it is scaled to clock ticks.
    pub(crate) fn start_boottime_ns(&self) -> u64 {
        // SAFETY: valid task; the field is written once, before the task is
        // put on the task list.
        unsafe { (*self.ptr).start_boottime }
    }

    fn signal(&self) -> *mut bindings::signal_struct {
        // SAFETY: valid task; `signal` is set at fork and freed only with the
        // task_struct itself, after a grace period.
        unsafe { (*self.ptr).signal }
    }

    /// Number of live threads of the process (get_nr_threads()).
    pub(crate) fn threads(&self) -> u32 {
        let sig = self.signal();
        // SAFETY: `sig` is valid as long as the task is (see `signal`);
        // nr_threads is an int that /proc reads without a lock too.
        let n = unsafe { core::ptr::read_volatile(addr_of!((*sig).nr_threads)) };
        u32::try_from(n).unwrap_or(0)
    }

    /// The threads of this process (for_each_thread).
    pub(crate) fn thread_iter(&self) -> Threads<'a> {
        // SAFETY: valid task under RCU; returns the first entry of the
        // RCU-protected thread list of its signal_struct, or null.
        let first = unsafe { ffi::vigia_first_thread(self.ptr) };
        Threads {
            next: first,
            _rcu: PhantomData,
        }
    }

    /// User and system time of the whole process in nanoseconds: the
    /// per-thread times the kernel reports for each live thread
    /// (`task_cputime_adjusted`, as /proc/PID/task/TID/stat) plus what the
    /// threads that already exited left in the signal struct. Read under the
    /// signal's `stats_lock` sequence count, as thread_group_cputime() does,
    /// so a thread exiting meanwhile is counted once.
    pub(crate) fn cputime_ns(&self) -> (u64, u64) {
        let sig = self.signal();
        loop {
            // SAFETY: `sig` is valid (see `signal`); a seqlock read section
            // takes no lock and never sleeps.
            let seq = unsafe { ffi::vigia_stats_read_begin(sig) };
            // SAFETY: as above; the fields are u64 written under the
            // seqlock, which the retry check below validates.
            let (mut ut, mut st) = unsafe {
                (
                    core::ptr::read_volatile(addr_of!((*sig).utime)),
                    core::ptr::read_volatile(addr_of!((*sig).stime)),
                )
            };
            for thread in self.thread_iter() {
                let (u, s) = thread.own_cputime_ns();
                ut = ut.wrapping_add(u);
                st = st.wrapping_add(s);
            }
            // SAFETY: `seq` came from vigia_stats_read_begin on this `sig`.
            if unsafe { ffi::vigia_stats_read_retry(sig, seq) } == 0 {
                return (ut, st);
            }
        }
    }

    /// This one thread's adjusted user and system time.
    fn own_cputime_ns(&self) -> (u64, u64) {
        let (mut ut, mut st) = (0u64, 0u64);
        // SAFETY: valid task under RCU; task_cputime_adjusted() takes only the
        // task's prev_cputime raw spinlock and writes the two u64 out-params.
        unsafe { ffi::task_cputime_adjusted(self.ptr, &mut ut, &mut st) };
        (ut, st)
    }

    /// Reads the name and the memory counters under `task_lock`, which
    /// keeps `comm` from being rewritten half-way and `mm` from being
    /// released (exit_mm clears `task->mm` under the same lock before the
    /// last reference can go away). A spinlock: allowed inside RCU.
    pub(crate) fn read_locked(&self) -> Locked {
        let mut out = Locked {
            comm: [0; COMM_LEN],
            comm_len: 0,
            rss_pages: 0,
            vm_pages: 0,
        };
        // SAFETY: valid task; task_lock() is a spinlock, released below.
        unsafe { ffi::vigia_task_lock(self.ptr) };
        // SAFETY: `comm` is a fixed array inside the valid task; task_lock
        // excludes set_task_comm(). Copied by value, NUL-terminated.
        let comm: [kernel::ffi::c_char; COMM_LEN] = unsafe { (*self.ptr).comm };
        out.comm_len = comm.iter().position(|&c| c == 0).unwrap_or(COMM_LEN);
        out.comm = comm;
        // SAFETY: valid task, `mm` read under task_lock.
        let mm = unsafe { (*self.ptr).mm };
        if !mm.is_null() {
            // SAFETY: `mm` stays allocated while task_lock is held and
            // `task->mm` points to it; get_mm_rss() reads per-CPU counters
            // without sleeping, and total_vm is an unsigned long read once.
            unsafe {
                out.rss_pages = ffi::vigia_mm_rss_pages(mm) as u64;
                out.vm_pages =
                    core::ptr::read_volatile(addr_of!((*mm).__bindgen_anon_1.total_vm)) as u64;
            }
        }
        // SAFETY: paired with the task_lock above.
        unsafe { ffi::vigia_task_unlock(self.ptr) };
        out
    }
}

/// The thread-group leaders, in task-list order (for_each_process).
pub(crate) struct Processes<'a> {
    cur: *mut bindings::task_struct,
    _rcu: PhantomData<&'a RcuReadGuard>,
}

/// Iterates over every process while `rcu` is held.
pub(crate) fn processes(_rcu: &RcuReadGuard) -> Processes<'_> {
    Processes {
        // for_each_process() starts from init_task; only its address is taken.
        cur: addr_of_mut!(bindings::init_task),
        _rcu: PhantomData,
    }
}

impl<'a> Iterator for Processes<'a> {
    type Item = Task<'a>;

    fn next(&mut self) -> Option<Task<'a>> {
        // SAFETY: `cur` is init_task or a task reached from it under the RCU
        // read lock borrowed for 'a; next_task() follows `tasks` with
        // list_entry_rcu.
        let next = unsafe { ffi::vigia_next_process(self.cur) };
        if next == addr_of_mut!(bindings::init_task) {
            return None;
        }
        self.cur = next;
        Some(Task {
            ptr: next,
            _rcu: PhantomData,
        })
    }
}

/// The threads of one process (for_each_thread).
pub(crate) struct Threads<'a> {
    next: *mut bindings::task_struct,
    _rcu: PhantomData<&'a RcuReadGuard>,
}

impl<'a> Iterator for Threads<'a> {
    type Item = Task<'a>;

    fn next(&mut self) -> Option<Task<'a>> {
        if self.next.is_null() {
            return None;
        }
        let cur = self.next;
        // SAFETY: `cur` is on the RCU-protected thread list and RCU is held
        // for 'a; __next_thread() returns null after the last thread.
        self.next = unsafe { ffi::vigia_next_thread(cur) };
        Some(Task {
            ptr: cur,
            _rcu: PhantomData,
        })
    }
}
