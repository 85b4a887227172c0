// SPDX-License-Identifier: GPL-2.0

//! vigia: CPU, memory and the whole process table of this machine, each in
//! one read of a file under /proc/vigia, for the vigia publisher.
//!
//! `/proc/vigia/procs` replaces thousands of opens and reads under /proc
//! (three files per process) with one: the task list is walked once, under
//! RCU, and formatted straight into the reader's seq_file buffer. Rates are
//! left to the reader: every value is a raw cumulative counter or a level,
//! and no read ever waits for a timer. Text formats: FORMAT.md.

use kernel::bindings::seq_file;
use kernel::c_str;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;

mod cpu;
mod ffi;
mod proc_dir;
mod procs;
mod ram;
mod rcu;
mod seq;
mod task;

use proc_dir::ProcDir;
use seq::SeqFile;

module! {
    type: Vigia,
    name: "vigia",
    author: "vigia",
    description: "CPU, RAM and process table under /proc/vigia",
    license: "GPL",
}

struct Vigia {
    /// /proc/vigia and its three files, removed on unload.
    _dir: ProcDir,
}

impl kernel::Module for Vigia {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let dir = ProcDir::new(c_str!("vigia"))?;
        // On error `dir` is dropped, removing whatever was created.
        dir.add_file(c_str!("cpu"), show_cpu)?;
        dir.add_file(c_str!("ram"), show_ram)?;
        dir.add_file(c_str!("procs"), show_procs)?;
        pr_info!("/proc/vigia/{{cpu,ram,procs}} ready\n");
        Ok(Vigia { _dir: dir })
    }
}

impl Drop for Vigia {
    fn drop(&mut self) {
        pr_info!("unloading\n");
    }
}

/// `show` of /proc/vigia/cpu.
unsafe extern "C" fn show_cpu(m: *mut seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: the seq_file core passes its seq_file for this call only.
    let mut seq = unsafe { SeqFile::from_raw(m) };
    match cpu::show(&mut seq) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `show` of /proc/vigia/ram.
unsafe extern "C" fn show_ram(m: *mut seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: the seq_file core passes its seq_file for this call only.
    let mut seq = unsafe { SeqFile::from_raw(m) };
    ram::show(&mut seq);
    0
}

/// `show` of /proc/vigia/procs.
unsafe extern "C" fn show_procs(m: *mut seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: the seq_file core passes its seq_file for this call only.
    let mut seq = unsafe { SeqFile::from_raw(m) };
    procs::show(&mut seq);
    0
}
