//! TCP MSS clamping: the MSS option of a SYN (or SYN-ACK) is lowered to what fits the tunnel, so
//! that TCP never sends segments that would need fragmenting.

use super::csum;

/// Lower the MSS option of a TCP SYN segment (`tcp`: from the TCP header on) to `limit`, updating
/// the checksum. Returns whether it changed anything. Segments without SYN, without the option, or
/// cut short are left as they are.
#[inline]
pub fn clamp(tcp: &mut [u8], limit: u16) -> bool {
    if tcp.len() < 20 || tcp[13] & 0x02 == 0 {
        return false;
    }
    let header_len = usize::from(tcp[12] >> 4) * 4;
    if header_len < 20 || header_len > tcp.len() {
        return false;
    }
    let mut at = 20;
    while at < header_len {
        match tcp[at] {
            0 => return false,
            1 => at += 1,
            kind => {
                let Some(&len) = tcp.get(at + 1) else { return false };
                let len = usize::from(len);
                if len < 2 || at + len > header_len {
                    return false;
                }
                if kind == 2 && len == 4 {
                    let mss = u16::from_be_bytes([tcp[at + 2], tcp[at + 3]]);
                    if mss <= limit {
                        return false;
                    }
                    tcp[at + 2..at + 4].copy_from_slice(&limit.to_be_bytes());
                    let sum = csum::update16(u16::from_be_bytes([tcp[16], tcp[17]]), mss, limit);
                    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
                    return true;
                }
                at += len;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn(options: &[u8], flags: u8) -> Vec<u8> {
        let header_len = 20 + options.len();
        let mut t = vec![0u8; header_len];
        t[0..2].copy_from_slice(&1234u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[12] = ((header_len / 4) as u8) << 4;
        t[13] = flags;
        t[16..18].copy_from_slice(&0x1234u16.to_be_bytes());
        t[20..].copy_from_slice(options);
        t
    }

    #[test]
    fn lowers_a_larger_mss_and_keeps_the_checksum_right() {
        let mut t = syn(&[1, 1, 2, 4, 0x05, 0xb4, 4, 2, 0, 0], 0x02);
        // A checksum over the segment alone: the pseudo-header does not change, so an update
        // that is right for the segment is right for the whole.
        t[16..18].fill(0);
        let sum = !crate::wire::checksum::data(&t);
        t[16..18].copy_from_slice(&sum.to_be_bytes());
        assert!(clamp(&mut t, 1436));
        assert_eq!(&t[24..26], &1436u16.to_be_bytes());
        assert_eq!(crate::wire::checksum::data(&t), 0xffff);
    }

    #[test]
    fn leaves_alone_what_it_must() {
        let mut small = syn(&[2, 4, 0x04, 0x00], 0x12);
        assert!(!clamp(&mut small, 1436), "1024 is below the limit");
        let mut no_syn = syn(&[2, 4, 0x05, 0xb4], 0x10);
        assert!(!clamp(&mut no_syn, 1436));
        let mut no_option = syn(&[1, 1, 1, 1], 0x02);
        assert!(!clamp(&mut no_option, 1436));
        let mut bad_len = syn(&[2, 0, 0, 0], 0x02);
        assert!(!clamp(&mut bad_len, 1436));
        let mut overrun = syn(&[3, 9, 0, 0], 0x02);
        assert!(!clamp(&mut overrun, 1436));
        let mut cut = syn(&[2, 4, 0x05, 0xb4], 0x02);
        cut.truncate(22);
        assert!(!clamp(&mut cut, 1436));
        assert!(!clamp(&mut [0u8; 5], 1436));
    }
}
