//! What the pipeline needs of a packet buffer: its bytes, and room to grow or shrink at either end
//! without copying. DPDK's mbufs implement it in the worker; [`HeapPacket`] implements it for unit
//! tests, fuzzing and micro-benchmarks, so the pipeline runs without EAL.

/// A packet held in one contiguous buffer with headroom in front.
pub trait PacketBuf {
    /// The packet's bytes.
    fn data(&self) -> &[u8];
    /// The packet's bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grow the packet by `n` bytes in front; false (and unchanged) without the headroom.
    fn prepend(&mut self, n: usize) -> bool;
    /// Remove `n` bytes from the front; false (and unchanged) if the packet is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Grow the packet by `n` bytes at the end; false (and unchanged) without the tailroom.
    fn append(&mut self, n: usize) -> bool;
    /// Remove `n` bytes from the end; false (and unchanged) if the packet is shorter.
    fn trim(&mut self, n: usize) -> bool;

    /// The packet's length.
    fn len(&self) -> usize {
        self.data().len()
    }

    /// Whether the packet is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shorten the packet to `len` bytes (no-op when it is not longer).
    fn truncate(&mut self, len: usize) {
        let have = self.len();
        if have > len {
            self.trim(have - len);
        }
    }

    /// Make the packet the `len` bytes that begin `start` bytes past its first byte now (before
    /// it, in the headroom, where `start` is negative); false (and unchanged) without the
    /// headroom, or where they would run past the packet's end.
    fn reframe(&mut self, start: isize, len: usize) -> bool {
        match (self.len() as isize).checked_sub(start) {
            Some(room) if room >= 0 && len <= room as usize => {}
            _ => return false,
        }
        let moved = if start < 0 { self.prepend(start.unsigned_abs()) } else { self.adj(start as usize) };
        if moved {
            self.truncate(len);
        }
        moved
    }

    /// [`PacketBuf::reframe`], giving the packet's new bytes (`len` of them).
    fn reframe_mut(&mut self, start: isize, len: usize) -> Option<&mut [u8]> {
        if !self.reframe(start, len) {
            return None;
        }
        self.data_mut().get_mut(..len)
    }

    /// [`PacketBuf::reframe_mut`], the bytes beginning `behind` bytes before the packet's new
    /// first byte, in its headroom: for a header written in one store that reaches in front of
    /// the packet. None (and unchanged) where the headroom would be shorter.
    fn reframe_behind_mut(&mut self, start: isize, len: usize, behind: usize) -> Option<&mut [u8]>;
}

impl PacketBuf for dpdk_bindings::Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        dpdk_bindings::Mbuf::data(self)
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        dpdk_bindings::Mbuf::data_mut(self)
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        dpdk_bindings::Mbuf::prepend(self, n)
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        dpdk_bindings::Mbuf::adj(self, n)
    }
    #[inline]
    fn append(&mut self, n: usize) -> bool {
        dpdk_bindings::Mbuf::append(self, n)
    }
    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        dpdk_bindings::Mbuf::trim(self, n)
    }
    #[inline]
    fn reframe(&mut self, start: isize, len: usize) -> bool {
        dpdk_bindings::Mbuf::reframe(self, start, len)
    }
    #[inline]
    fn reframe_mut(&mut self, start: isize, len: usize) -> Option<&mut [u8]> {
        dpdk_bindings::Mbuf::reframe_mut(self, start, len)
    }
    #[inline]
    fn reframe_behind_mut(&mut self, start: isize, len: usize, behind: usize) -> Option<&mut [u8]> {
        dpdk_bindings::Mbuf::reframe_behind_mut(self, start, len, behind)
    }
}

/// A packet in a heap buffer with DPDK's default headroom (128 bytes) and room up to 2048 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapPacket {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl HeapPacket {
    /// Headroom in front of a new packet, as an mbuf has.
    pub const HEADROOM: usize = 128;
    /// Buffer size, as an mbuf's data room.
    pub const CAPACITY: usize = 2048 + Self::HEADROOM;

    /// A packet holding a copy of `bytes`.
    pub fn new(bytes: &[u8]) -> HeapPacket {
        let mut buf = vec![0u8; Self::CAPACITY.max(Self::HEADROOM + bytes.len())];
        buf[Self::HEADROOM..Self::HEADROOM + bytes.len()].copy_from_slice(bytes);
        HeapPacket { buf, start: Self::HEADROOM, end: Self::HEADROOM + bytes.len() }
    }

    /// Hold a copy of `bytes` again, at the default headroom, reusing the buffer (no allocation:
    /// what a micro-benchmark needs between two runs over the same packet).
    pub fn reset(&mut self, bytes: &[u8]) {
        let end = Self::HEADROOM + bytes.len();
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.buf[Self::HEADROOM..end].copy_from_slice(bytes);
        self.start = Self::HEADROOM;
        self.end = end;
    }
}

impl PacketBuf for HeapPacket {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn append(&mut self, n: usize) -> bool {
        if n > self.buf.len() - self.end {
            return false;
        }
        self.end += n;
        true
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }
    fn reframe_behind_mut(&mut self, start: isize, len: usize, behind: usize) -> Option<&mut [u8]> {
        let at = self.start.checked_add_signed(start)?;
        if at < behind || at > self.end || len > self.end - at {
            return None;
        }
        (self.start, self.end) = (at, at + len);
        self.buf.get_mut(at - behind..at + len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_packet_grows_and_shrinks_like_an_mbuf() {
        let mut p = HeapPacket::new(&[1, 2, 3]);
        assert!(p.prepend(2));
        assert_eq!(p.len(), 5);
        p.data_mut()[..2].copy_from_slice(&[8, 9]);
        assert_eq!(p.data(), &[8, 9, 1, 2, 3]);
        assert!(!p.prepend(HeapPacket::HEADROOM));
        assert!(p.adj(4));
        assert_eq!(p.data(), &[3]);
        assert!(!p.adj(2));
        assert!(p.append(2));
        assert_eq!(p.len(), 3);
        p.truncate(1);
        assert_eq!(p.data(), &[3]);
        assert!(!p.trim(2));
    }

    #[test]
    fn heap_packet_is_reframed_as_an_mbuf_is() {
        let mut p = HeapPacket::new(&[0, 1, 2, 3, 4, 5, 6, 7]);
        assert!(p.reframe(2, 3));
        assert_eq!(p.data(), &[2, 3, 4]);
        assert!(p.reframe(-2, 4));
        assert_eq!(p.data(), &[0, 1, 2, 3]);
        assert!(p.reframe(-4, 5));
        assert_eq!(&p.data()[4..], &[0]);
        let before = p.clone();
        assert!(!p.reframe(-(HeapPacket::HEADROOM as isize), 1), "more headroom than there is");
        assert!(!p.reframe(1, 5), "past the end");
        assert!(!p.reframe(6, 0), "past the end");
        assert!(!p.reframe(isize::MAX, 0) && !p.reframe(isize::MIN, 0));
        assert_eq!(p, before, "unchanged");
        assert!(p.reframe(5, 0) && p.is_empty());
    }

    #[test]
    fn heap_packet_is_reframed_with_headroom_in_front_as_an_mbuf_is() {
        let mut p = HeapPacket::new(&[0, 1, 2, 3, 4, 5, 6, 7]);
        let bytes = p.reframe_behind_mut(3, 4, 2).expect("reframed");
        assert_eq!(bytes, &[1, 2, 3, 4, 5, 6]);
        bytes[0] = 9;
        assert_eq!(p.data(), &[3, 4, 5, 6]);
        let before = p.clone();
        let front = -(HeapPacket::HEADROOM as isize) - 3;
        assert!(p.reframe_behind_mut(front + 1, 4, 2).is_none(), "headroom left too short");
        assert!(p.reframe_behind_mut(1, 4, 0).is_none(), "past the end");
        assert!(p.reframe_behind_mut(isize::MIN, 0, 0).is_none());
        assert_eq!(p, before, "unchanged");
        let bytes = p.reframe_behind_mut(front + 2, 5, 2).expect("to the headroom's 2 last bytes");
        assert_eq!(bytes.len(), 7);
        assert_eq!((p.len(), p.data()), (5, &[0u8; 5][..]));
    }
}
