//! The internet checksum (RFC 1071) over a byte slice. smoltcp computes the same sum but keeps it
//! private to its `ip` module.

/// The one's complement sum of `data` as 16-bit big-endian words (an odd last byte is padded with
/// zero), folded to 16 bits. A header whose checksum field is right sums to 0xffff.
#[inline]
pub fn data(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]))
            + u64::from(u16::from_be_bytes([c[2], c[3]]))
            + u64::from(u16::from_be_bytes([c[4], c[5]]))
            + u64::from(u16::from_be_bytes([c[6], c[7]]));
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = rest.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    // RFC 1071 section 3's example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        assert_eq!(super::data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
        assert_eq!(super::data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6]), 0xddf2 - 0xf7);
        assert_eq!(super::data(&[]), 0);
    }
}
