//! IPv4 fragmentation (RFC 791) of packets too big for a tunnel whose DF bit is clear.

use super::{DropReason, PacketBuf};
use crate::wire::checksum;

/// The options of a header that later fragments carry: those with the copied flag, padded.
fn copied_options(options: &[u8], out: &mut [u8; 40]) -> usize {
    let mut at = 0;
    let mut len = 0;
    while at < options.len() {
        let kind = options[at];
        match kind {
            0 => break,
            1 => at += 1,
            _ => {
                let Some(&l) = options.get(at + 1) else { break };
                let l = usize::from(l);
                if l < 2 || at + l > options.len() {
                    break;
                }
                if kind & 0x80 != 0 {
                    out[len..len + l].copy_from_slice(&options[at..at + l]);
                    len += l;
                }
                at += l;
            }
        }
    }
    let padded = len.div_ceil(4) * 4;
    out[len..padded].fill(0);
    padded
}

/// Split the IPv4 packet `pkt` (checked, trimmed, DF clear) into fragments of at most `mtu` bytes,
/// each in a new buffer from `alloc`, handed to `each` in order. Returns how many were made.
pub fn fragment_v4<P: PacketBuf>(
    pkt: &P,
    mtu: usize,
    mut alloc: impl FnMut() -> Option<P>,
    mut each: impl FnMut(P),
) -> Result<usize, DropReason> {
    let data = pkt.data();
    let header_len = usize::from(data[0] & 0x0f) * 4;
    let flags_offset = u16::from_be_bytes([data[6], data[7]]);
    let base_offset = usize::from(flags_offset & 0x1fff) * 8;
    let more_after = flags_offset & 0x2000 != 0;
    let payload = &data[header_len..];
    let mut later_options = [0u8; 40];
    let later_options_len = copied_options(&data[20..header_len], &mut later_options);

    let mut done = 0;
    let mut count = 0;
    while done < payload.len() {
        let hl = if done == 0 { header_len } else { 20 + later_options_len };
        let room = mtu.saturating_sub(hl) & !7;
        if room == 0 {
            return Err(DropReason::TooBig);
        }
        let chunk = room.min(payload.len() - done);
        let last = done + chunk == payload.len();
        let mut frag = alloc().ok_or(DropReason::MbufExhausted)?;
        if !frag.append(hl + chunk) {
            return Err(DropReason::NoBufferRoom);
        }
        let out = frag.data_mut();
        out[..20].copy_from_slice(&data[..20]);
        if done == 0 {
            out[20..header_len].copy_from_slice(&data[20..header_len]);
        } else {
            out[20..hl].copy_from_slice(&later_options[..later_options_len]);
        }
        out[0] = 0x40 | (hl / 4) as u8;
        out[2..4].copy_from_slice(&((hl + chunk) as u16).to_be_bytes());
        let more = !last || more_after;
        let field = (if more { 0x2000 } else { 0 }) | ((base_offset + done) / 8) as u16;
        out[6..8].copy_from_slice(&field.to_be_bytes());
        out[10..12].fill(0);
        let sum = !checksum::data(&out[..hl]);
        out[10..12].copy_from_slice(&sum.to_be_bytes());
        out[hl..].copy_from_slice(&payload[done..done + chunk]);
        each(frag);
        done += chunk;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::HeapPacket;

    #[test]
    fn splits_on_eight_byte_boundaries_and_copies_only_copied_options() {
        // 24-byte header with a record-route-like option (not copied) and 1000 bytes of payload.
        let mut p = vec![0u8; 24 + 1000];
        p[0] = 0x46;
        p[2..4].copy_from_slice(&1024u16.to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[20..24].copy_from_slice(&[7, 4, 0, 0]);
        for (i, b) in p[24..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let pkt = HeapPacket::new(&p);
        let mut frags = Vec::new();
        let n = fragment_v4(&pkt, 576, || Some(HeapPacket::new(&[])), |f| frags.push(f)).unwrap();
        assert_eq!(n, 2);
        let f0 = frags[0].data();
        assert_eq!(f0[0], 0x46);
        assert_eq!(u16::from_be_bytes([f0[2], f0[3]]), 24 + 552);
        assert_eq!(u16::from_be_bytes([f0[6], f0[7]]), 0x2000);
        assert_eq!(checksum::data(&f0[..24]), !0);
        let f1 = frags[1].data();
        assert_eq!(f1[0], 0x45, "the option is not copied");
        assert_eq!(u16::from_be_bytes([f1[6], f1[7]]), 552 / 8);
        assert_eq!(f1.len(), 20 + 448);
        let mut joined = f0[24..].to_vec();
        joined.extend_from_slice(&f1[20..]);
        assert_eq!(joined, p[24..]);
    }

    #[test]
    fn running_out_of_buffers_is_an_error() {
        let mut p = vec![0u8; 20 + 2000];
        p[0] = 0x45;
        let pkt = HeapPacket::new(&p);
        let r = fragment_v4(&pkt, 576, || None, |_| {});
        assert_eq!(r, Err(DropReason::MbufExhausted));
    }
}
