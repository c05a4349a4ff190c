//! Incremental internet checksum updates (RFC 1624), for header fields rewritten in place.

/// The one's complement sum of `data` (RFC 1071), folded to 16 bits, not inverted: a header
/// whose checksum is right sums to 0xffff. Adds 32-bit words (a sum of big-endian 32-bit words
/// folds to the same 16-bit sum), which is what makes it faster than a 16-bit loop.
#[inline(always)]
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    // An IPv4 header without options, the usual case: five loads, no loop.
    if let Ok(h) = <&[u8; 20]>::try_from(data) {
        for i in 0..5 {
            acc += u64::from(u32::from_be_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]]));
        }
        return fold(acc);
    }
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_be_bytes(tail));
    fold(acc)
}

/// Whether an IPv4 header's checksum is right: `h` sums to 0xffff. Where the header has no
/// options (20 bytes, nearly every packet) it is summed as two 64-bit words and a 32-bit one in
/// the machine's byte order, with end-around carries: a one's complement sum in another byte
/// order is the same sum byte-swapped (RFC 1071 2(B)), and 0xffff is its own swap. That is a
/// third of the instructions of [`sum`]'s five big-endian words, on every packet's path.
#[inline(always)]
pub fn header_is_valid(h: &[u8]) -> bool {
    let Ok(h) = <&[u8; 20]>::try_from(h) else { return sum(h) == 0xffff };
    // A header of zeros sums to 0, which the test refuses.
    is_multiple_of_0xffff(sum_in_64(h))
}

/// The header's 16-bit words summed in 64 bits, every carry folded in: 0 only for a header
/// of zeros.
#[inline(always)]
fn sum_in_64(h: &[u8; 20]) -> u64 {
    let word = |at: usize| {
        u64::from_ne_bytes([h[at], h[at + 1], h[at + 2], h[at + 3], h[at + 4], h[at + 5], h[at + 6], h[at + 7]])
    };
    let last = u64::from(u32::from_ne_bytes([h[16], h[17], h[18], h[19]]));
    let (acc, carry) = word(0).overflowing_add(word(8));
    // At most 2^64 - 1 + 2^32 + 1 in all: folding the top half once more takes every carry.
    let wide = u128::from(acc) + u128::from(carry) + u128::from(last);
    (wide as u64).wrapping_add((wide >> 64) as u64)
}

/// Whether a nonzero sum [`sum_in_64`] is a multiple of 0xffff, that is, folds to 0xffff (false
/// for 0).
#[inline(always)]
fn is_multiple_of_0xffff(total: u64) -> bool {
    is_multiple_of_0xffff_by(total, MULTIPLE_LIMIT)
}

/// [`header_is_valid`] of a header without options, with [`MULTIPLE_LIMIT`] given by the caller
/// as `limit`. In a train's loop, where every register is taken, the constant was rebuilt for
/// each of its two uses (a 10-byte instruction each, twice a packet); held as a value read from
/// memory (the train's), it is read in the instructions that use it or kept in a register.
#[inline(always)]
pub fn header_is_valid_by(h: &[u8; 20], limit: u64) -> bool {
    is_multiple_of_0xffff_by(sum_in_64(h), limit)
}

/// (2^64 - 1) / 0xffff: see [`is_multiple_of_0xffff`].
pub const MULTIPLE_LIMIT: u64 = u64::MAX / 0xffff;

/// [`is_multiple_of_0xffff`], `limit` being [`MULTIPLE_LIMIT`].
#[inline(always)]
fn is_multiple_of_0xffff_by(total: u64, limit: u64) -> bool {
    // Folding to 16 bits keeps a sum's value modulo 0xffff (2^16 is 1 modulo 0xffff), and only
    // 0 folds to 0: the header sums to 0xffff exactly when its sum is a nonzero multiple of
    // 0xffff. An odd number divides `total` exactly when `total` times its inverse modulo 2^64
    // is at most (2^64 - 1) / it, LIMIT (Granlund and Montgomery): one multiplication and a
    // compare, where the fold takes a dozen instructions and `%` half a dozen. The inverse of
    // 0xffff is -LIMIT ([`MULTIPLE_LIMIT`], `limit`), so for a nonzero `total` that is `total`
    // times LIMIT at least 2^64 - LIMIT (the carry out of adding LIMIT to it), which is false
    // for 0 at no cost: no test of its own for a header of zeros.
    total.wrapping_mul(limit).overflowing_add(limit).1
}

/// The checksum field `hc` (as it is in the header) of an IPv4 header once its TTL falls by
/// one: the 16-bit word of TTL and protocol falls by 0x0100 whatever the TTL (above 0) and
/// protocol, so the checksum, its complement, rises by 0x0100 with an end-around carry, and
/// comes to 0 rather than 0xffff (RFC 1624's equation 3, HC' = ~(~HC + ~m + m'), gives the
/// same). A one's complement sum is the same in either byte order (RFC 1071, 2(B)): the field
/// is updated as it was loaded, where 0x0100 is 1, with no byte swap either way, in four
/// instructions where the equation took six.
#[inline(always)]
pub fn ttl_decremented(hc: [u8; 2]) -> [u8; 2] {
    const STEP: u32 = u16::from_ne_bytes(0x0100u16.to_be_bytes()) as u32;
    let raised = u32::from(u16::from_ne_bytes(hc)) + STEP;
    // The carry out of 16 bits goes around; 0xffff (the same value as 0) becomes 0.
    ((raised + u32::from(raised >= 0xffff)) as u16).to_ne_bytes()
}

/// The checksum of an IPv4 header written from a template whose total length and
/// identification are 0 (`template_sum` being the template header's [`sum`]), once those two
/// are `total` and `id`. Computed from values in registers: reading back the bytes just written
/// would stall on store forwarding.
///
/// Two 16-bit additions, each with its end-around carry (an add and an add of the carry), where
/// a sum folded to 16 bits took twice the instructions.
#[inline(always)]
pub fn template_checksum(template_sum: u16, total: u16, id: u16) -> u16 {
    !add(add(template_sum, total), id)
}

/// The one's complement sum of two 16-bit words: 0 only for two zeros, as a folded sum.
#[inline(always)]
fn add(a: u16, b: u16) -> u16 {
    let (sum, carry) = a.overflowing_add(b);
    sum + u16::from(carry)
}

/// Fold a sum of 32-bit words to 16 bits, end-around carries included.
#[inline(always)]
fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    let mut folded = (acc & 0xffff) + (acc >> 16);
    folded = (folded & 0xffff) + (folded >> 16);
    folded as u16
}

/// The checksum `hc` after a 16-bit word of the covered data changes from `old` to `new`
/// (RFC 1624, equation 3: HC' = ~(~HC + ~m + m')).
#[inline]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(new);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// The checksum `hc` after a 32-bit value of the covered data changes from `old` to `new`.
#[inline]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let hc = update16(hc, (old >> 16) as u16, (new >> 16) as u16);
    update16(hc, old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    #[test]
    fn incremental_matches_full_recomputation() {
        // An IPv4 header (RFC 1071-style full checksum), TTL 64 -> 63.
        let mut h: [u8; 20] = [0x45, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 192, 0, 2, 1, 198, 51, 100, 10];
        let full = !checksum::data(&h);
        h[10..12].copy_from_slice(&full.to_be_bytes());
        let old = u16::from_be_bytes([h[8], h[9]]);
        h[8] -= 1;
        let new = u16::from_be_bytes([h[8], h[9]]);
        let inc = update16(full, old, new);
        h[10..12].fill(0);
        assert_eq!(inc, !checksum::data(&h));
    }

    #[test]
    fn sum_agrees_with_smoltcp_at_every_length() {
        let bytes: Vec<u8> = (0..67u32).map(|i| (i.wrapping_mul(0x9d) ^ 0xa5) as u8).collect();
        for len in 0..bytes.len() {
            assert_eq!(sum(&bytes[..len]), checksum::data(&bytes[..len]), "length {len}");
        }
        let ones = [0xffu8; 40];
        assert_eq!(sum(&ones), checksum::data(&ones));
    }

    #[test]
    fn a_header_is_valid_exactly_when_it_sums_to_all_ones() {
        // Headers with their checksum set, then with one byte changed (and so mostly invalid),
        // and sums that carry out of every word: the fast check must agree with `sum` on each.
        let mut rng = crate::pipeline::tests::XorShift(0x2545_f491_4f6c_dd1d);
        let mut next = || rng.next();
        let mut valid = 0;
        for round in 0..200_000 {
            let mut h = [0u8; 20];
            for b in h.iter_mut() {
                *b = match round % 3 {
                    0 => next() as u8,
                    1 => 0xff - (next() % 3) as u8,
                    _ => [0, 0xff, 0x80, 0x7f][(next() % 4) as usize],
                };
            }
            if next() % 2 == 0 {
                h[10..12].fill(0);
                let c = !sum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
                if next() % 4 == 0 {
                    h[(next() % 20) as usize] ^= 1 << (next() % 8);
                }
            }
            assert_eq!(header_is_valid(&h), sum(&h) == 0xffff, "{h:02x?}");
            valid += usize::from(header_is_valid(&h));
        }
        assert!(valid > 50_000, "{valid} valid");
        // Other lengths (options) go through `sum`.
        let mut options = [0u8; 24];
        options[0] = 0x46;
        options[20..].copy_from_slice(&[1, 1, 1, 1]);
        let c = !sum(&options);
        options[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(header_is_valid(&options) && !header_is_valid(&options[..23]));
    }

    #[test]
    fn the_inverse_of_0xffff_is_right() {
        assert_eq!(0xffffu64.wrapping_mul(0xfffe_fffe_fffe_ffff), 1);
        for x in
            [0u64, 1, 0xfffe, 0xffff, 0x1_0000, 0x1_fffe, 2 * 0xffff, u64::MAX, u64::MAX - 1, 0xffff * 0x1234_5678_9abc]
        {
            assert_eq!(x.wrapping_mul(0xfffe_fffe_fffe_ffff) <= u64::MAX / 0xffff, x % 0xffff == 0, "{x:#x}");
            assert_eq!(is_multiple_of_0xffff(x), x != 0 && x % 0xffff == 0, "{x:#x}");
        }
        // Around every multiple of 0xffff in a spread of magnitudes.
        for k in (0..64).map(|b| (1u64 << b) / 0xffff).chain([1, 2, 3, 0x1_0001, u64::MAX / 0xffff]) {
            for x in [k * 0xffff, (k * 0xffff).wrapping_add(1), (k * 0xffff).wrapping_sub(1)] {
                assert_eq!(is_multiple_of_0xffff(x), x != 0 && x % 0xffff == 0, "{x:#x}");
            }
        }
    }

    #[test]
    fn a_template_checksum_is_the_folded_sum() {
        let folded = |sum: u16, total: u16, id: u16| !fold(u64::from(sum) + u64::from(total) + u64::from(id));
        let some = [0u16, 1, 2, 0x00ff, 0x0100, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff];
        for total in 0..=u16::MAX {
            for sum in some {
                for id in some {
                    assert_eq!(
                        template_checksum(sum, total, id),
                        folded(sum, total, id),
                        "{sum:#x} {total:#x} {id:#x}"
                    );
                    assert_eq!(
                        template_checksum(total, sum, id),
                        folded(total, sum, id),
                        "{total:#x} {sum:#x} {id:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn ttl_decrement_matches_the_general_update() {
        for hc in 0..=u16::MAX {
            for (ttl, protocol) in [(1u8, 0u8), (2, 6), (64, 17), (255, 47), (128, 255)] {
                let old = u16::from_be_bytes([ttl, protocol]);
                let new = u16::from_be_bytes([ttl - 1, protocol]);
                let field = u16::from_be_bytes(ttl_decremented(hc.to_be_bytes()));
                assert_eq!(field, update16(hc, old, new), "{hc:#06x} {ttl} {protocol}");
            }
        }
    }

    #[test]
    fn all_words_round_trip() {
        for (old, new) in [(0u16, 0xffffu16), (0xffff, 0), (0x1234, 0x1234), (0x8000, 0x7fff)] {
            let data = [0xde, 0xad, (old >> 8) as u8, old as u8];
            let hc = !checksum::data(&data);
            let data2 = [0xde, 0xad, (new >> 8) as u8, new as u8];
            let want = !checksum::data(&data2);
            let got = update16(hc, old, new);
            // 0x0000 and 0xffff are the same value in one's complement.
            assert!(got == want || (got ^ want) == 0xffff && (got == 0 || got == 0xffff), "{old:x}->{new:x}");
        }
        let data = [1u8, 2, 3, 4, 5, 6];
        let hc = !checksum::data(&data);
        let data2 = [1u8, 2, 9, 8, 7, 6];
        assert_eq!(update32(hc, 0x0304_0506, 0x0908_0706), !checksum::data(&data2));
    }
}
