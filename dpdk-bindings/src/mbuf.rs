//! Owned packet buffers and fixed-size batches of them.
//!
//! An [`Mbuf`] is one single-owner DPDK packet buffer: dropping it returns it to its pool, sending it
//! hands it to the driver. Its data is a byte slice; header space is added in front (`prepend`) or
//! removed (`adj`) without copying the packet.

use std::ptr::NonNull;

use crate::sys;

/// The number of packets a worker receives and sends at a time.
pub const BURST: usize = 32;

/// One packet buffer, owned.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is the only reference to its rte_mbuf (single owner), and freeing it to its
// mempool is thread-safe, so it may move between threads.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Take ownership of a raw mbuf.
    ///
    /// # Safety
    /// `m` must point to a valid mbuf that nothing else owns or will free.
    pub(crate) unsafe fn from_raw(m: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf(m)
    }

    #[inline]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: self owns a valid mbuf for as long as it lives.
        unsafe { self.0.as_ref() }
    }

    /// The packet's bytes (first segment).
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off is the start of data_len initialised bytes inside the mbuf's
        // buffer, which self owns; the slice borrows self so it cannot outlive it.
        unsafe { std::slice::from_raw_parts((m.buf_addr as *const u8).add(m.data_off as usize), m.data_len as usize) }
    }

    /// The packet's bytes (first segment), writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw();
        let (addr, off, len) = (m.buf_addr as *mut u8, m.data_off as usize, m.data_len as usize);
        // SAFETY: as in `data`; &mut self guarantees the only access.
        unsafe { std::slice::from_raw_parts_mut(addr.add(off), len) }
    }

    /// Bytes of data in the first segment.
    #[inline]
    pub fn len(&self) -> usize {
        self.raw().data_len as usize
    }

    /// Whether the first segment holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the whole packet, all segments.
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// Whether the packet is in one segment (the pipeline handles only those).
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// Free bytes in front of the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.raw().data_off as usize
    }

    /// Free bytes after the data.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.raw();
        m.buf_len as usize - m.data_off as usize - m.data_len as usize
    }

    /// The port the packet was received on.
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// The RSS hash the NIC computed, 0 where none.
    #[inline]
    pub fn rss_hash(&self) -> u32 {
        // SAFETY: `hash` is a union of plain integers; reading `rss` reads initialised bytes.
        unsafe { self.raw().__bindgen_anon_2.hash.rss }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: self owns a valid mbuf; &mut self guarantees the only access.
        unsafe { self.0.as_mut() }
    }

    // The four length operations below are DPDK's rte_pktmbuf_prepend/adj/append/trim (append
    // and trim for a single-segment mbuf), written here so that the fast path makes no call into
    // C per packet.

    /// Grow the data by `n` bytes in front; false (and unchanged) if the headroom is too small.
    /// As DPDK's, it works on the first segment of a chained mbuf too.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> bool {
        let m = self.raw_mut();
        if n > m.data_off as usize {
            return false;
        }
        m.data_off -= n as u16;
        m.data_len += n as u16;
        m.pkt_len += n as u32;
        true
    }

    /// Remove `n` bytes from the front; false (and unchanged) if the first segment is shorter.
    /// As DPDK's, it works on the first segment of a chained mbuf too.
    #[inline]
    pub fn adj(&mut self, n: usize) -> bool {
        let m = self.raw_mut();
        if n > m.data_len as usize {
            return false;
        }
        m.data_off += n as u16;
        m.data_len -= n as u16;
        m.pkt_len -= n as u32;
        true
    }

    /// Make the packet the `len` bytes that begin `start` bytes past its first byte now (before
    /// it, in the headroom, where `start` is negative): what lies outside them at either end is
    /// dropped. False (and unchanged) where the headroom is too small, the bytes would run past
    /// the packet's end, or the mbuf is chained. An adj or prepend and a trim in one: one set of
    /// checks and three stores.
    #[inline]
    pub fn reframe(&mut self, start: isize, len: usize) -> bool {
        self.reframe_behind(start, len, 0)
    }

    /// [`Mbuf::reframe`], false (and unchanged) where less than `behind` bytes of headroom
    /// would be left too.
    #[inline]
    fn reframe_behind(&mut self, start: isize, len: usize, behind: usize) -> bool {
        let m = self.raw_mut();
        let end = i64::from(m.data_off) + i64::from(m.data_len);
        let off = i64::from(m.data_off).saturating_add(start as i64);
        if off < behind as i64 || off > end || len as u64 > (end - off) as u64 || m.nb_segs != 1 {
            return false;
        }
        // Within the first segment, so within u16.
        m.data_off = off as u16;
        m.data_len = len as u16;
        m.pkt_len = len as u32;
        true
    }

    /// [`Mbuf::reframe`], giving the packet's new bytes: a slice whose length is `len` as the
    /// caller gave it, so that what the caller knows of `len` bounds the slice with no check of
    /// the mbuf's own field (the encapsulation train's frame head: 3 instructions a packet).
    #[inline]
    pub fn reframe_mut(&mut self, start: isize, len: usize) -> Option<&mut [u8]> {
        if !self.reframe(start, len) {
            return None;
        }
        let m = self.raw();
        let (addr, off) = (m.buf_addr as *mut u8, m.data_off as usize);
        // SAFETY: reframe made the `len` bytes from data_off the packet's data, inside the
        // mbuf's buffer, which self owns; &mut self guarantees the only access.
        Some(unsafe { std::slice::from_raw_parts_mut(addr.add(off), len) })
    }

    /// [`Mbuf::reframe_mut`], the slice beginning `behind` bytes before the packet's new first
    /// byte, in its headroom (`behind + len` bytes): for a header written in one store that
    /// reaches in front of the packet. None (and unchanged) where the headroom would be shorter.
    #[inline]
    pub fn reframe_behind_mut(&mut self, start: isize, len: usize, behind: usize) -> Option<&mut [u8]> {
        if !self.reframe_behind(start, len, behind) {
            return None;
        }
        let m = self.raw();
        let (addr, off) = (m.buf_addr as *mut u8, m.data_off as usize);
        // SAFETY: reframe_behind made the `len` bytes from data_off the packet's data, with at
        // least `behind` bytes of headroom before them, all inside the mbuf's buffer, which self
        // owns (and so is not at address 0: told to the compiler, which tested the slice's
        // address for the Option otherwise); &mut self guarantees the only access.
        unsafe {
            let start = addr.add(off - behind);
            std::hint::assert_unchecked(!start.is_null());
            Some(std::slice::from_raw_parts_mut(start, behind + len))
        }
    }

    /// Grow the data by `n` bytes at the end (their content is whatever the buffer held);
    /// false (and unchanged) if the tailroom is too small.
    #[inline]
    pub fn append(&mut self, n: usize) -> bool {
        if n > self.tailroom() || !self.is_contiguous() {
            return false;
        }
        let m = self.raw_mut();
        m.data_len += n as u16;
        m.pkt_len += n as u32;
        true
    }

    /// Remove `n` bytes from the end; false (and unchanged) if the packet is shorter.
    #[inline]
    pub fn trim(&mut self, n: usize) -> bool {
        let m = self.raw_mut();
        if n > m.data_len as usize || m.nb_segs != 1 {
            return false;
        }
        m.data_len -= n as u16;
        m.pkt_len -= n as u32;
        true
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: self is the only owner of a valid mbuf, freed exactly once here.
        unsafe { sys::ag_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// A run of a batch's slots, every one holding an mbuf ([`MbufBatch::run_while`]).
#[derive(Debug)]
pub struct Run<'a> {
    slots: &'a mut [Option<Mbuf>],
}

impl Run<'_> {
    /// How many mbufs the run holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether it holds none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Hand the run to a tx queue through `send`: the driver takes the first `sent` it accepts,
    /// whose slots are left empty, as [`MbufBatch::take`] leaves them; those it refuses stay in
    /// their slots. Returns how many were sent.
    #[inline]
    pub(crate) fn send_with(self, send: impl FnOnce(*mut *mut sys::rte_mbuf, u16) -> u16) -> usize {
        let n = self.slots.len();
        if n == 0 {
            return 0;
        }
        let ptr = self.slots.as_mut_ptr();
        // At most a burst's slots: within u16.
        let sent = (send(ptr as *mut *mut sys::rte_mbuf, n as u16) as usize).min(n);
        // SAFETY: the driver owns the first `sent` mbufs of the run now. Their slots become None
        // (an Option<Mbuf> of zero bits: Mbuf is a transparent NonNull) without Mbuf's drop,
        // which would free them.
        unsafe { std::ptr::write_bytes(ptr, 0, sent) };
        sent
    }
}

/// Up to [`BURST`] mbufs, as DPDK's burst calls read and write them.
#[derive(Debug)]
pub struct MbufBatch {
    // Option<Mbuf> has the layout of a nullable `*mut rte_mbuf` (Mbuf is a transparent NonNull),
    // so this array is the `struct rte_mbuf **` of rx/tx burst.
    slots: [Option<Mbuf>; BURST],
    len: usize,
}

impl Default for MbufBatch {
    fn default() -> Self {
        MbufBatch::new()
    }
}

impl MbufBatch {
    /// An empty batch.
    pub const fn new() -> MbufBatch {
        MbufBatch { slots: [const { None }; BURST], len: 0 }
    }

    /// Mbufs in the batch.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the batch holds [`BURST`].
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == BURST
    }

    /// Add an mbuf; gives it back when the batch is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        let Some(slot) = self.slots.get_mut(self.len) else {
            return Err(m);
        };
        // Slots past the batch's end are empty: nothing to drop (the compiler cannot know).
        let empty = slot.replace(m);
        debug_assert!(empty.is_none());
        std::mem::forget(empty);
        self.len += 1;
        Ok(())
    }

    /// Take the mbufs out in order, leaving the batch empty.
    #[inline]
    pub fn drain(&mut self) -> impl Iterator<Item = Mbuf> + '_ {
        let len = std::mem::replace(&mut self.len, 0);
        self.slots[..len].iter_mut().filter_map(Option::take)
    }

    /// Take the mbuf at `index` out, leaving its slot empty (None past the batch's end or when
    /// taken already): for a caller that walks the batch in more than one pass, then empties it
    /// with [`MbufBatch::clear`].
    #[inline]
    pub fn take(&mut self, index: usize) -> Option<Mbuf> {
        // Slots past the batch's end are empty: checked against the array alone, with no load of
        // the length.
        self.slots.get_mut(index)?.take()
    }

    /// The mbuf at `index`, left in the batch (None past the batch's end or when taken).
    #[inline]
    pub fn get(&self, index: usize) -> Option<&Mbuf> {
        self.slots.get(index)?.as_ref()
    }

    /// The mbuf at `index`, left in the batch (None past the batch's end or when taken).
    #[inline]
    pub fn get_mut(&mut self, index: usize) -> Option<&mut Mbuf> {
        self.slots.get_mut(index)?.as_mut()
    }

    /// The run of mbufs from `index` on that `keep` accepts, in order, up to the first it
    /// declines or an empty slot. `keep` may change an mbuf it is shown: the one it declines
    /// stays here as `keep` left it. The run stays in the batch, borrowed with it, until it is
    /// sent ([`crate::Port::tx_burst_run`]) or dropped (which leaves it in place).
    #[inline(always)]
    pub fn run_while(&mut self, index: usize, mut keep: impl FnMut(&mut Mbuf) -> bool) -> Run<'_> {
        let from = self.slots.get_mut(index..).unwrap_or_default();
        let mut n = 0;
        while n < from.len() {
            let Some(m) = from[n].as_mut() else { break };
            if !keep(m) {
                break;
            }
            n += 1;
        }
        Run { slots: &mut from[..n] }
    }

    /// Empty the batch, freeing the mbufs not taken.
    #[inline]
    pub fn clear(&mut self) {
        self.drain().for_each(drop);
    }

    /// Empty the batch whose first `taken` mbufs were all taken ([`MbufBatch::take`]), freeing
    /// the rest: the taken slots are not walked again.
    #[inline]
    pub fn clear_after(&mut self, taken: usize) {
        let len = std::mem::replace(&mut self.len, 0);
        let taken = taken.min(len);
        debug_assert!(self.slots[..taken].iter().all(Option::is_none), "an mbuf was not taken");
        self.slots[taken..len].iter_mut().filter_map(Option::take).for_each(drop);
    }

    /// The mbufs, in order.
    #[inline]
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Mbuf> + '_ {
        self.slots[..self.len].iter_mut().flatten()
    }

    /// Fill the empty batch from an rx queue; returns how many arrived.
    #[inline]
    pub(crate) fn fill_from(&mut self, receive: impl FnOnce(*mut *mut sys::rte_mbuf, u16) -> u16) -> usize {
        debug_assert!(self.is_empty());
        let free = (BURST - self.len) as u16;
        let ptr = self.slots[self.len..].as_mut_ptr() as *mut *mut sys::rte_mbuf;
        let n = receive(ptr, free) as usize;
        self.len += n.min(free as usize);
        n
    }

    /// Hand the batch to a tx queue; the driver takes the first `sent` it accepts, the rest stay in
    /// the batch, moved to its front. Returns how many were sent.
    #[inline]
    pub(crate) fn send_with(&mut self, send: impl FnOnce(*mut *mut sys::rte_mbuf, u16) -> u16) -> usize {
        let len = self.len;
        let ptr = self.slots.as_mut_ptr() as *mut *mut sys::rte_mbuf;
        let sent = (send(ptr, len as u16) as usize).min(len);
        // SAFETY: the driver owns the first `sent` mbufs now. Their slots become None (an
        // Option<Mbuf> of zero bits: Mbuf is a transparent NonNull) without Mbuf's drop, which
        // would free them; one store a few slots, where taking each was a load, store and branch.
        unsafe { std::ptr::write_bytes(self.slots.as_mut_ptr(), 0, sent) };
        if sent < len {
            self.slots[..len].rotate_left(sent);
        }
        self.len = len - sent;
        sent
    }
}
