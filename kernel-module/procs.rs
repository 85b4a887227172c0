// SPDX-License-Identifier: GPL-2.0

//! `/proc/vigia/procs`: one line per process. Format: FORMAT.md.

use crate::rcu::RcuReadGuard;
use crate::seq::{LineBuf, SeqFile};
use crate::task::{processes, Task};
use core::fmt::Write;
use kernel::bindings;

/// First two lines: the format header and the column names.
const HEADER: &[u8] =
    b"vigia-procs 1\npid ppid uid state utime_ns stime_ns rss_kib vsz_kib threads start_ns name\n";

/// KiB per page.
const PAGE_KIB: u64 = 1 << (bindings::PAGE_SHIFT - 10);

/// Bytes per line assumed when sizing the buffer: lines are typically 60
/// to 80 bytes long.
const LINE_ESTIMATE: usize = 80;

/// Writes the whole process table into `seq` in one RCU read-side section.
pub(crate) fn show(seq: &mut SeqFile) {
    let rcu = RcuReadGuard::new();
    // A seq_file starts with one page and doubles it each time `show`
    // overflows it. Formatting thousands of lines only to throw them away at
    // each doubling would cost more than the final pass, so count first (a
    // cheap walk) and ask for a larger buffer straight away when this one
    // cannot hold the estimate.
    let count = processes(&rcu).count();
    if seq.capacity() < HEADER.len() + count * LINE_ESTIMATE {
        seq.set_overflow();
        return;
    }
    seq.write(HEADER);
    let mut line = LineBuf::new();
    for task in processes(&rcu) {
        line.clear();
        // A line cannot exceed LineBuf (numbers are bounded, the name is at
        // most 15 bytes escaped to 60); were it to, the record is dropped
        // rather than written truncated.
        if format_process(&mut line, task).is_ok() {
            seq.write(line.as_bytes());
        }
        if seq.overflowed() {
            // The seq_file core calls us again with a larger buffer.
            break;
        }
    }
}

fn format_process(line: &mut LineBuf, task: Task<'_>) -> core::fmt::Result {
    let (utime, stime) = task.cputime_ns();
    let locked = task.read_locked();
    write!(
        line,
        "{} {} {} {} {} {} {} {} {} {} ",
        task.tgid(),
        task.ppid(),
        task.uid(),
        char::from(task.state()),
        utime,
        stime,
        locked.rss_pages * PAGE_KIB,
        locked.vm_pages * PAGE_KIB,
        task.threads(),
        task.start_boottime_ns(),
    )?;
    line.push_escaped(&locked.comm[..locked.comm_len])?;
    line.push(b"\n")
}
