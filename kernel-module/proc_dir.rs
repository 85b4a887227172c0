// SPDX-License-Identifier: GPL-2.0

//! A directory under /proc that owns its files (RAII).
//!
//! The files live exactly as long as the directory: dropping the
//! [`ProcDir`] calls `proc_remove()`, which removes the whole subtree and
//! waits for any `show` still running, and makes files that are still open
//! return errors, so no callback into the module can happen once it has been
//! unloaded.

use crate::ffi::{self, ShowFn};
use core::ptr::{null_mut, NonNull};
use kernel::bindings;
use kernel::prelude::*;
use kernel::str::CStr;

/// Read-only for everyone.
const MODE_0444: u16 = 0o444;

/// A `/proc/<name>` directory, removed with everything in it when dropped.
pub(crate) struct ProcDir {
    de: NonNull<bindings::proc_dir_entry>,
}

// SAFETY: the entry is only passed to proc functions, which do their own
// locking; the handle can be dropped from any task (module exit).
unsafe impl Send for ProcDir {}
// SAFETY: `&ProcDir` only allows adding files, which procfs serialises.
unsafe impl Sync for ProcDir {}

impl ProcDir {
    /// Creates `/proc/<name>`; fails if it cannot (for instance, it exists).
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated; a null parent means /proc itself.
        let de = unsafe { ffi::proc_mkdir(name.as_char_ptr(), null_mut()) };
        NonNull::new(de).map(|de| Self { de }).ok_or(EEXIST)
    }

    /// Adds a read-only file whose whole content `show` writes at open.
    pub(crate) fn add_file(&self, name: &'static CStr, show: ShowFn) -> Result {
        // SAFETY: `name` is NUL-terminated and copied by procfs; the parent
        // is our live directory; `show` is a function of this module, which
        // stays loaded until `drop` has removed the file.
        let de = unsafe {
            ffi::proc_create_single_data(
                name.as_char_ptr(),
                MODE_0444,
                self.de.as_ptr(),
                Some(show),
                null_mut(),
            )
        };
        if de.is_null() {
            Err(ENOMEM)
        } else {
            Ok(())
        }
    }
}

impl Drop for ProcDir {
    fn drop(&mut self) {
        // SAFETY: `de` came from proc_mkdir and is removed exactly once;
        // proc_remove() also removes the files created inside it.
        unsafe { ffi::proc_remove(self.de.as_ptr()) };
    }
}
