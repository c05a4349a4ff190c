//! Errors of DPDK calls: the operation that failed and DPDK's error code, described by `rte_strerror`.

use std::ffi::CStr;
use std::fmt;

/// A DPDK call that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What was being done, in a few words ("rte_eal_init", "configure port 0", ...).
    pub op: String,
    /// DPDK's (positive) error number.
    pub code: i32,
}

impl Error {
    pub(crate) fn new(op: impl Into<String>, code: i32) -> Error {
        Error { op: op.into(), code: code.abs() }
    }

    /// An error from a call that reports through `rte_errno`.
    pub(crate) fn from_errno(op: impl Into<String>) -> Error {
        // SAFETY: reads the calling thread's rte_errno; no preconditions.
        let code = unsafe { crate::sys::ag_errno() };
        Error::new(op, code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string
        // that stays valid until the next call on this thread; it is copied out at once.
        let text = unsafe { CStr::from_ptr(crate::sys::rte_strerror(self.code)) }.to_string_lossy();
        write!(f, "{}: {} (error {})", self.op, text, self.code)
    }
}

impl std::error::Error for Error {}
