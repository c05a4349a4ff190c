//! Software prefetch: asking the CPU to bring a cache line in ahead of its use, so that lookups
//! over tables larger than the cache overlap their misses across a burst instead of waiting on
//! each in turn.

/// The cache line size of the CPUs DPDK runs on here (x86-64).
pub const CACHE_LINE: usize = 64;

/// Bring the cache line holding `p` towards the core (into every level).
#[inline(always)]
pub fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and changes no memory or architectural
    // state, whatever the address (x86 prefetch instructions ignore invalid addresses).
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Bring every cache line of `value` towards the core.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    prefetch_bytes((value as *const T).cast(), std::mem::size_of::<T>());
}

/// Bring the cache lines of `len` bytes from `start` towards the core.
#[inline(always)]
pub fn prefetch_bytes(start: *const u8, len: usize) {
    let first = start as usize & !(CACHE_LINE - 1);
    let end = start as usize + len.max(1);
    let mut line = first;
    while line < end {
        prefetch_line(line as *const u8);
        line += CACHE_LINE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetching_changes_nothing_and_takes_any_address() {
        let v = vec![7u8; 1000];
        prefetch(&v[3]);
        prefetch_bytes(v.as_ptr(), v.len());
        prefetch(&[0u64; 33]);
        // Addresses that must not be read are still only hints.
        prefetch_line(std::ptr::null());
        prefetch_line(usize::MAX as *const u8);
        assert!(v.iter().all(|b| *b == 7));
    }
}
