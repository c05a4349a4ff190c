//! The anti-replay window of an inbound SA (RFC 4303 3.4.3, without extended sequence numbers):
//! the highest sequence number seen and a 64-bit map of the 64 numbers up to it.
//!
//! A packet is first checked ([`ReplayWindow::check`], before the costly ICV check), and the
//! window is moved only after its ICV proved it genuine ([`ReplayWindow::accept`]), so forged
//! packets cannot move it.
//!
//! With several workers: each worker holds its own copy of an inbound SA and its window, and RSS
//! spreads packets by their outer header, which is the same for every packet of an SA; so one
//! worker sees all of an SA's packets and its window is exact. Where a NIC spreads ESP by SPI or
//! the queue layout changes, a replayed packet could pass once on each worker: the window bounds
//! a replay to one copy per worker, not to one in all.

/// Why a sequence number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Already received.
    Replayed,
    /// Older than the window.
    TooOld,
    /// Sequence number 0 is never sent (RFC 4303 3.3.3).
    Zero,
}

/// A 64-packet sliding window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// The highest sequence number accepted so far (0: none).
    top: u32,
    /// Bit i set: `top - i` was received.
    map: u64,
}

/// Packets the window spans.
pub const WINDOW: u32 = 64;

impl ReplayWindow {
    /// Whether a packet with this sequence number may be new.
    #[inline]
    pub fn check(&self, seq: u32) -> Result<(), Refused> {
        if seq == 0 {
            return Err(Refused::Zero);
        }
        if seq > self.top {
            return Ok(());
        }
        let behind = self.top - seq;
        if behind >= WINDOW {
            return Err(Refused::TooOld);
        }
        if self.map & (1 << behind) != 0 {
            return Err(Refused::Replayed);
        }
        Ok(())
    }

    /// Record a genuine packet's sequence number; the same answer as [`check`](Self::check).
    #[inline]
    pub fn accept(&mut self, seq: u32) -> Result<(), Refused> {
        self.check(seq)?;
        if seq > self.top {
            let ahead = seq - self.top;
            self.map = if ahead >= WINDOW { 0 } else { self.map << ahead };
            self.map |= 1;
            self.top = seq;
        } else {
            self.map |= 1 << (self.top - seq);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_follows_rfc_4303() {
        use Refused::*;
        // (sequence number, expected answer), in arrival order.
        let table: &[(u32, Result<(), Refused>)] = &[
            (0, Err(Zero)),
            (1, Ok(())),
            (1, Err(Replayed)),
            (3, Ok(())),
            (2, Ok(())), // late but inside the window
            (2, Err(Replayed)),
            (66, Ok(())), // moves the window: 2 is now 64 behind
            (2, Err(TooOld)),
            (3, Err(Replayed)), // 63 behind, seen before the window moved
            (4, Ok(())),        // 62 behind, never seen: still accepted
            (4, Err(Replayed)),
            (66, Err(Replayed)),
            (65, Ok(())),
            (1000, Ok(())), // a jump past the whole window clears it
            (937, Ok(())),
            (936, Err(TooOld)),
            (1000, Err(Replayed)),
            (u32::MAX, Ok(())),
            (u32::MAX, Err(Replayed)),
        ];
        let mut w = ReplayWindow::default();
        for (i, (seq, want)) in table.iter().enumerate() {
            assert_eq!(w.accept(*seq), *want, "step {i}: seq {seq}");
        }
    }

    #[test]
    fn check_does_not_move_the_window() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.check(5), Ok(()));
        assert_eq!(w.check(5), Ok(()));
        w.accept(5).unwrap();
        assert_eq!(w.check(5), Err(Refused::Replayed));
    }
}
