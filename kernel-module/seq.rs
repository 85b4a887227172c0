// SPDX-License-Identifier: GPL-2.0

//! Writing into a seq_file from a `show` callback.
//!
//! Every file of vigia is a single-record seq_file: `show` writes the whole
//! text and, when it does not fit, the seq_file core frees the buffer,
//! allocates one twice as large and calls `show` again, until it fits. So no
//! fixed buffer ever truncates a read, whatever the number of processes, and a
//! reader always gets one consistent snapshot.

use core::fmt;
use kernel::bindings;

/// The seq_file a `show` callback was given.
pub(crate) struct SeqFile {
    m: *mut bindings::seq_file,
}

impl SeqFile {
    /// Wraps the seq_file passed to a `show` callback.
    ///
    /// # Safety
    ///
    /// `m` must be the seq_file of a running `show` callback, and the value
    /// must not outlive that call.
    pub(crate) unsafe fn from_raw(m: *mut bindings::seq_file) -> Self {
        Self { m }
    }

    /// Appends `bytes`; on overflow the seq_file marks itself overflowed
    /// and the core retries with a larger buffer.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        // SAFETY: `self.m` is a live seq_file (contract of `from_raw`);
        // seq_write copies `bytes.len()` bytes from a valid slice and never
        // sleeps.
        unsafe { bindings::seq_write(self.m, bytes.as_ptr().cast(), bytes.len()) };
    }

    /// The size of the buffer this pass writes into.
    pub(crate) fn capacity(&self) -> usize {
        // SAFETY: as in `overflowed`.
        unsafe { (*self.m).size }
    }

    /// Declares the buffer too small without writing into it, so that the
    /// core enlarges it and calls `show` again (the kernel's static inline
    /// `seq_set_overflow()`, which sets `count` to `size`).
    pub(crate) fn set_overflow(&mut self) {
        // SAFETY: `self.m` is a live seq_file that `show` owns for the call.
        unsafe { (*self.m).count = (*self.m).size };
    }

    /// Whether the buffer is full: the core will discard this pass and call
    /// `show` again with a larger buffer, so the rest need not be formatted.
    /// (The kernel's `seq_has_overflowed()`, a static inline.)
    pub(crate) fn overflowed(&self) -> bool {
        // SAFETY: `self.m` is a live seq_file; `show` runs under the
        // seq_file's own mutex, so `count` and `size` are not changing.
        unsafe { (*self.m).count == (*self.m).size }
    }
}

impl fmt::Write for SeqFile {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes());
        Ok(())
    }
}

/// A line assembled on the stack, then written with one `seq_write`.
pub(crate) struct LineBuf {
    buf: [u8; 256],
    len: usize,
}

impl LineBuf {
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; 256],
            len: 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Appends raw bytes; fails (leaving the line unchanged) if they do not fit.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> fmt::Result {
        let end = self.len.checked_add(bytes.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Appends `name` escaped as documented in FORMAT.md: a backslash, a
    /// space, every control byte and DEL become `\ooo` (three octal digits),
    /// as /proc/mounts does, so a name can never split a field or a line.
    pub(crate) fn push_escaped(&mut self, name: &[u8]) -> fmt::Result {
        for &b in name {
            if b <= b' ' || b == b'\\' || b == 0x7f {
                self.push(&[b'\\', b'0' + (b >> 6), b'0' + ((b >> 3) & 7), b'0' + (b & 7)])?;
            } else {
                self.push(&[b])?;
            }
        }
        Ok(())
    }
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes())
    }
}
