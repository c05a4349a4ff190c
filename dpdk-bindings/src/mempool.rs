//! Pools of packet buffers (mbufs) in hugepage memory.

use std::ffi::CString;
use std::ptr::NonNull;

use crate::eal::Eal;
use crate::error::Error;
use crate::mbuf::Mbuf;
use crate::sys;

/// A pool of mbufs. Pools live as long as the process: DPDK cannot free a pool while any of its
/// mbufs may still sit in a ring or a driver queue, so they are never freed.
#[derive(Debug, Clone, Copy)]
pub struct Mempool(NonNull<sys::rte_mempool>);

// SAFETY: an rte_mempool is built for concurrent use from many lcores (per-lcore caches and a
// lock-free common pool); the handle is only a pointer to it.
unsafe impl Send for Mempool {}
// SAFETY: as above; every operation through &Mempool is thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Create a pool of `size` mbufs with `data_room` bytes each (headroom included) and a
    /// per-lcore cache of `cache` mbufs, on the caller's NUMA socket.
    pub fn new(_eal: &Eal, name: &str, size: u32, cache: u32, data_room: u16) -> Result<Mempool, Error> {
        let cname = CString::new(name).map_err(|_| Error::new("mempool name holds a NUL", 22))?;
        // SAFETY: the EAL is initialised (an &Eal exists); the name is a valid C string that DPDK
        // copies; the remaining arguments are plain integers it validates.
        let pool = unsafe {
            sys::rte_pktmbuf_pool_create(cname.as_ptr(), size, cache, 0, data_room, sys::rte_socket_id() as i32)
        };
        NonNull::new(pool).map(Mempool).ok_or_else(|| Error::from_errno(format!("create mempool {name}")))
    }

    /// Take one mbuf from the pool, reset and empty; `None` when the pool is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid for the life of the process.
        let m = unsafe { sys::ag_pktmbuf_alloc(self.0.as_ptr()) };
        // SAFETY: a non-null result is a freshly allocated mbuf that nothing else references.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Mbufs currently free in the pool (caches included).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool pointer is valid for the life of the process.
        unsafe { sys::ag_mempool_avail(self.0.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.0.as_ptr()
    }
}
