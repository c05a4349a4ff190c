//! SAs compiled for the fast path, and the SA database each worker holds.
//!
//! An SA is described by an [`SaSpec`] (keys included), compiled on the control thread into an
//! [`InboundSa`] or [`OutboundSa`] (cipher contexts keyed, the outer header prebuilt, the handler
//! chosen by transform), and sent to each worker, which files it into its own [`SaDb`] between
//! bursts. Inbound SAs are found by (anycast endpoint, SPI); outbound SAs by tunnel, newest first,
//! then by the inner packet's traffic selectors.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128, AES_256,
};
use aws_lc_rs::hmac;
use dpdk_bindings::ipsec_mb::AesGcm;
use ipnet::IpNet;

use super::replay::ReplayWindow;
use super::transform::{Encryption, Integrity, Transform};
use crate::config::SaDirection;
use crate::pipeline::csum;
use crate::secret::Secret;

/// The IKE and NAT-T port ESP in UDP is sent from (RFC 3948).
pub const NAT_T_PORT: u16 = 4500;

/// Everything needed to install an SA: where it comes from (configuration or IKE), its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaSpec {
    /// The tunnel the SA belongs to.
    pub tunnel: String,
    pub spi: u32,
    pub direction: SaDirection,
    pub transform: Transform,
    pub encryption_key: Secret,
    pub integrity_key: Secret,
    /// Our end: the tunnel's anycast endpoint.
    pub local: Ipv4Addr,
    /// The customer router's address (as seen, behind NAT).
    pub remote: Ipv4Addr,
    /// ESP in UDP: (our port, the router's port).
    pub udp: Option<(u16, u16)>,
    /// Traffic selectors, ours and the customer's.
    pub local_ts: Vec<IpNet>,
    pub remote_ts: Vec<IpNet>,
    /// A 64-packet anti-replay window (inbound).
    pub replay_protection: bool,
    /// The outer header's TTL (outbound).
    pub ttl: u8,
    /// The server's place in the fleet, in the top bits of outbound IVs so that servers sharing
    /// an SA never repeat one.
    pub node_id: u16,
}

/// Why an SA could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaError {
    /// A key of the wrong length for the transform.
    KeyLength { which: &'static str, want: usize, got: usize },
    /// The crypto library refused the key.
    Crypto,
    /// No tunnel by that name.
    UnknownTunnel(String),
    /// An inbound SPI already in use on the endpoint.
    SpiInUse(u32),
    /// No SA with that SPI.
    NotFound(u32),
    /// The tunnel has its most SAs already.
    TooMany,
    /// A worker's ring was full: the change did not reach it.
    RingFull,
}

impl std::fmt::Display for SaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaError::KeyLength { which, want, got } => write!(f, "{which} key: {got} bytes, {want} needed"),
            SaError::Crypto => write!(f, "the crypto library refused the key"),
            SaError::UnknownTunnel(t) => write!(f, "no tunnel named {t:?}"),
            SaError::SpiInUse(spi) => write!(f, "SPI {spi:#x} is in use"),
            SaError::NotFound(spi) => write!(f, "no SA with SPI {spi:#x}"),
            SaError::TooMany => write!(f, "the tunnel has its most SAs"),
            SaError::RingFull => write!(f, "a worker's update ring is full"),
        }
    }
}

impl std::error::Error for SaError {}

/// An SA's traffic: packets and bytes of inner packets, and its drops (bad ICV, replays...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaCounters {
    pub packets: u64,
    pub bytes: u64,
    pub drops: u64,
}

impl SaCounters {
    /// Add another worker's counters of the same SA.
    pub fn add(&mut self, other: &SaCounters) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.drops += other.drops;
    }
}

/// An SA's counters as a worker publishes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaReport {
    pub spi: u32,
    pub direction: SaDirection,
    pub tunnel_slot: u32,
    pub counters: SaCounters,
}

impl SaReport {
    /// What tells SAs apart across workers and reports: SPI, direction and tunnel.
    #[inline]
    pub fn key(&self) -> (u32, SaDirection, u32) {
        (self.spi, self.direction, self.tunnel_slot)
    }
}

/// Traffic selectors: the prefixes an SA carries, on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selectors {
    local: Vec<IpNet>,
    remote: Vec<IpNet>,
    /// Both sides cover everything: no check needed.
    any: bool,
}

impl Selectors {
    fn new(local: &[IpNet], remote: &[IpNet]) -> Selectors {
        let covers_all = |v: &[IpNet]| {
            v.iter().any(|n| matches!(n, IpNet::V4(n) if n.prefix_len() == 0))
                && v.iter().any(|n| matches!(n, IpNet::V6(n) if n.prefix_len() == 0))
        };
        Selectors { local: local.to_vec(), remote: remote.to_vec(), any: covers_all(local) && covers_all(remote) }
    }

    /// Whether a packet from `local` to `remote` (outbound) or from `remote` to `local`
    /// (inbound, arguments in the same order) falls within the selectors.
    #[inline]
    pub fn allow(&self, local: IpAddr, remote: IpAddr) -> bool {
        self.any || (self.local.iter().any(|n| n.contains(&local)) && self.remote.iter().any(|n| n.contains(&remote)))
    }

    /// Bring the prefixes into the cache (nothing to bring when both sides cover everything).
    #[inline(always)]
    fn prefetch(&self) {
        if !self.any {
            for side in [&self.local, &self.remote] {
                dpdk_bindings::prefetch_bytes(side.as_ptr().cast(), std::mem::size_of_val(side.as_slice()));
            }
        }
    }
}

/// The decrypting half of a transform. (HMAC keys are large: the CBC and NULL halves are boxed so
/// that a GCM SA stays small.) AES-GCM runs on intel-ipsec-mb, the library under DPDK's own
/// crypto driver: at ESP's sizes it takes a third (64 B) to three fifths (1400 B) of aws-lc-rs's
/// time on a VAES CPU (`aead-rate`); CBC and HMAC stay on aws-lc-rs.
enum Opener {
    Gcm { key: AesGcm, salt: [u8; 4] },
    Cbc(Box<(DecryptingKey, hmac::Key)>, usize),
    Null(Box<hmac::Key>, usize),
}

/// The encrypting half of a transform.
enum Sealer {
    Gcm {
        key: AesGcm,
        salt: [u8; 4],
    },
    /// CBC IVs are the encryption of a counter under a key of their own (NIST SP 800-38A,
    /// appendix C): unpredictable, and never repeated.
    Cbc(Box<CbcSealer>),
    Null(Box<hmac::Key>),
}

struct CbcSealer {
    key: EncryptingKey,
    iv_key: EncryptingKey,
    mac: hmac::Key,
}

/// The crypto library failed to encrypt (it does not, for valid lengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealError;

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener(<keyed>)")
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<keyed>)")
    }
}

fn check_keys(spec: &SaSpec) -> Result<(), SaError> {
    let t = spec.transform;
    for (which, want, got) in [
        ("encryption", t.encryption_key_len(), spec.encryption_key.len()),
        ("integrity", t.integrity_key_len(), spec.integrity_key.len()),
    ] {
        if want != got {
            return Err(SaError::KeyLength { which, want, got });
        }
    }
    Ok(())
}

fn gcm_key(spec: &SaSpec, key_bytes: usize) -> Result<(AesGcm, [u8; 4]), SaError> {
    let material = spec.encryption_key.expose();
    let key = AesGcm::new(&material[..key_bytes]).map_err(|_| SaError::Crypto)?;
    let mut salt = [0u8; 4];
    salt.copy_from_slice(&material[key_bytes..key_bytes + 4]);
    Ok((key, salt))
}

fn cbc_key(material: &[u8]) -> Result<UnboundCipherKey, SaError> {
    let algorithm = if material.len() == 16 { &AES_128 } else { &AES_256 };
    UnboundCipherKey::new(algorithm, material).map_err(|_| SaError::Crypto)
}

fn mac_key(spec: &SaSpec) -> (hmac::Key, usize) {
    let algorithm = match spec.transform.integrity {
        Integrity::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        Integrity::HmacSha256_128 | Integrity::Aead => hmac::HMAC_SHA256,
    };
    (hmac::Key::new(algorithm, spec.integrity_key.expose()), spec.transform.icv_len())
}

/// The truncated HMAC of `data` into `icv`.
#[inline]
fn sign(mac: &hmac::Key, data: &[u8], icv: &mut [u8]) {
    let tag = hmac::sign(mac, data);
    icv.copy_from_slice(&tag.as_ref()[..icv.len()]);
}

/// An inbound SA on a worker, laid out for the decapsulation path.
#[derive(Debug)]
#[repr(align(64))]
pub struct InboundSa {
    pub spi: u32,
    pub anycast: Ipv4Addr,
    pub tunnel_slot: u32,
    pub transform: Transform,
    opener: Opener,
    pub replay: Option<ReplayWindow>,
    pub selectors: Selectors,
    pub counters: SaCounters,
}

/// Where an inbound packet failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// The ICV did not match: forged, corrupted, or the wrong key.
    Icv,
    /// Lengths that cannot be an ESP packet of this transform.
    Length,
}

impl InboundSa {
    /// Compile an inbound SA.
    pub fn compile(spec: &SaSpec, tunnel_slot: u32) -> Result<Box<InboundSa>, SaError> {
        check_keys(spec)?;
        let opener = match spec.transform.encryption {
            Encryption::AesGcm16 { key_bytes } => {
                let (key, salt) = gcm_key(spec, key_bytes)?;
                Opener::Gcm { key, salt }
            }
            Encryption::AesCbc { .. } => {
                let key = DecryptingKey::cbc(cbc_key(spec.encryption_key.expose())?).map_err(|_| SaError::Crypto)?;
                let (mac, icv) = mac_key(spec);
                Opener::Cbc(Box::new((key, mac)), icv)
            }
            Encryption::Null => {
                let (mac, icv) = mac_key(spec);
                Opener::Null(Box::new(mac), icv)
            }
        };
        Ok(Box::new(InboundSa {
            spi: spec.spi,
            anycast: spec.local,
            tunnel_slot,
            transform: spec.transform,
            opener,
            replay: spec.replay_protection.then(ReplayWindow::default),
            selectors: Selectors::new(&spec.local_ts, &spec.remote_ts),
            counters: SaCounters::default(),
        }))
    }

    /// Bring what decrypting an ESP payload of `len` bytes (IV and ICV apart) reads besides the
    /// SA itself (the parts of the expanded key it needs, the selectors) into the cache, ahead
    /// of the burst's crypto.
    #[inline(always)]
    pub fn prefetch_key(&self, len: usize) {
        match &self.opener {
            Opener::Gcm { key, .. } => key.prefetch_for(len),
            Opener::Cbc(keys, _) => dpdk_bindings::prefetch(&**keys),
            Opener::Null(mac, _) => dpdk_bindings::prefetch(&**mac),
        }
        self.selectors.prefetch();
    }

    /// Check and decrypt an ESP packet in place: `esp` starts at the ESP header and ends with the
    /// ICV. On success the payload, padding and trailer are plaintext at
    /// `esp[8 + iv_len..esp.len() - icv_len]`.
    #[inline]
    pub fn open(&self, esp: &mut [u8]) -> Result<(), OpenError> {
        let (iv_len, icv_len) = (self.transform.iv_len(), self.transform.icv_len());
        if esp.len() < 8 + iv_len + icv_len + 2 {
            return Err(OpenError::Length);
        }
        let body_end = esp.len() - icv_len;
        match &self.opener {
            Opener::Gcm { key, salt } => {
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(salt);
                nonce[4..].copy_from_slice(&esp[8..16]);
                let mut aad = [0u8; 8];
                aad.copy_from_slice(&esp[..8]);
                let (body, tag) = esp.split_at_mut(body_end);
                // On a mismatch the body holds unauthenticated plaintext; the caller drops it.
                key.open_in_place(&nonce, &aad, &mut body[16..], tag).map_err(|_| OpenError::Icv)
            }
            Opener::Cbc(keys, icv) => {
                let (key, mac) = &**keys;
                if (body_end - 8 - 16) % 16 != 0 {
                    return Err(OpenError::Length);
                }
                let tag = hmac::sign(mac, &esp[..body_end]);
                aws_lc_rs::constant_time::verify_slices_are_equal(&tag.as_ref()[..*icv], &esp[body_end..])
                    .map_err(|_| OpenError::Icv)?;
                let mut iv = [0u8; 16];
                iv.copy_from_slice(&esp[8..24]);
                key.decrypt(&mut esp[24..body_end], DecryptionContext::Iv128(iv.into()))
                    .map(|_| ())
                    .map_err(|_| OpenError::Length)
            }
            Opener::Null(mac, icv) => {
                let tag = hmac::sign(mac, &esp[..body_end]);
                aws_lc_rs::constant_time::verify_slices_are_equal(&tag.as_ref()[..*icv], &esp[body_end..])
                    .map_err(|_| OpenError::Icv)
            }
        }
    }
}

/// An outbound SA on a worker, laid out for the encapsulation path.
#[derive(Debug)]
#[repr(align(64))]
pub struct OutboundSa {
    pub spi: u32,
    pub tunnel_slot: u32,
    pub transform: Transform,
    sealer: Sealer,
    /// The last sequence number used, shared by every worker of this server so that the router
    /// sees one increasing sequence (its anti-replay window is on by default).
    pub seq: Arc<AtomicU64>,
    /// Top 16 bits of every IV.
    node_id: u16,
    pub remote: Ipv4Addr,
    /// The outer IPv4 header, and UDP header where encapsulated, with total length,
    /// identification, checksum and UDP length 0: its first 16 bytes and the 12 after them (and
    /// 4 zero bytes), as big-endian words, so that [`OutboundSa::outer_header`] fills in a
    /// packet's fields in registers.
    outer_head: u128,
    outer_tail: u128,
    pub outer_len: usize,
    /// The template's IPv4 header sum ([`csum::sum`]), for [`csum::template_checksum`].
    outer_sum: u16,
    pub selectors: Selectors,
    pub counters: SaCounters,
}

/// The most packets an SA may send without extended sequence numbers.
pub const SEQ_LIMIT: u64 = u32::MAX as u64;

impl OutboundSa {
    /// Compile an outbound SA. `seq` is shared with the same SA on the other workers.
    pub fn compile(spec: &SaSpec, tunnel_slot: u32, seq: Arc<AtomicU64>) -> Result<Box<OutboundSa>, SaError> {
        check_keys(spec)?;
        let sealer = match spec.transform.encryption {
            Encryption::AesGcm16 { key_bytes } => {
                let (key, salt) = gcm_key(spec, key_bytes)?;
                Sealer::Gcm { key, salt }
            }
            Encryption::AesCbc { .. } => {
                let key = EncryptingKey::cbc(cbc_key(spec.encryption_key.expose())?).map_err(|_| SaError::Crypto)?;
                let mut iv_secret = [0u8; 16];
                aws_lc_rs::rand::fill(&mut iv_secret).map_err(|_| SaError::Crypto)?;
                let iv_key = EncryptingKey::ecb(cbc_key(&iv_secret)?).map_err(|_| SaError::Crypto);
                zeroize::Zeroize::zeroize(&mut iv_secret);
                Sealer::Cbc(Box::new(CbcSealer { key, iv_key: iv_key?, mac: mac_key(spec).0 }))
            }
            Encryption::Null => Sealer::Null(Box::new(mac_key(spec).0)),
        };
        // Four bytes more than the header, zero: the tail word's end.
        let mut h = [0u8; 32];
        h[0] = 0x45;
        // DF: the tunnel MTU keeps the outer packet within 1500 bytes; fragments are made inside.
        h[6] = 0x40;
        h[8] = spec.ttl;
        h[9] = if spec.udp.is_some() { 17 } else { 50 };
        h[12..16].copy_from_slice(&spec.local.octets());
        h[16..20].copy_from_slice(&spec.remote.octets());
        let outer_len = match spec.udp {
            Some((ours, theirs)) => {
                h[20..22].copy_from_slice(&ours.to_be_bytes());
                h[22..24].copy_from_slice(&theirs.to_be_bytes());
                28
            }
            None => 20,
        };
        let outer_sum = csum::sum(&h[..20]);
        Ok(Box::new(OutboundSa {
            spi: spec.spi,
            tunnel_slot,
            transform: spec.transform,
            sealer,
            seq,
            node_id: spec.node_id,
            remote: spec.remote,
            outer_head: u128::from_be_bytes(std::array::from_fn(|i| h[i])),
            outer_tail: u128::from_be_bytes(std::array::from_fn(|i| h[16 + i])),
            outer_len,
            outer_sum,
            selectors: Selectors::new(&spec.local_ts, &spec.remote_ts),
            counters: SaCounters::default(),
        }))
    }

    /// Reserve `n` sequence numbers; the first of them, or None once the SA has used them all
    /// (it must be rekeyed: without ESN the counter may not wrap, RFC 4303 3.3.3).
    #[inline]
    pub fn reserve(&self, n: u64) -> Option<u64> {
        let first = self.seq.fetch_add(n, Ordering::Relaxed) + 1;
        (first + n - 1 <= SEQ_LIMIT).then_some(first)
    }

    /// The first 28 bytes of a packet's outer header, `total` bytes long with identification
    /// `id`, in two parts (16 and 12 bytes): the IPv4 header with its checksum, and the UDP header
    /// with its length where encapsulated.
    #[inline(always)]
    pub fn outer_header(&self, total: u16, id: u16) -> ([u8; 16], [u8; 12]) {
        let checksum = csum::template_checksum(self.outer_sum, total, id);
        // In a big-endian word of bytes 0-15, byte k ends at bit 8 * (15 - k).
        let head = self.outer_head | u128::from(total) << 96 | u128::from(id) << 80 | u128::from(checksum) << 32;
        let mut tail = self.outer_tail;
        if self.outer_len == 28 {
            // UDP length at bytes 24-25; checksum 0, allowed for ESP in UDP over IPv4 (RFC 3948 2.1).
            tail |= u128::from(total - 20) << 48;
        }
        let tail = tail.to_be_bytes();
        let mut tail12 = [0u8; 12];
        tail12.copy_from_slice(&tail[..12]);
        (head.to_be_bytes(), tail12)
    }

    /// Bytes added in front of the payload: outer header, ESP header, IV.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.outer_len + 8 + self.transform.iv_len()
    }

    /// Bytes of padding, trailer and ICV added after a payload of `len` bytes.
    #[inline]
    pub fn trailer_len(&self, len: usize) -> usize {
        // The padding that rounds payload and trailer up to the block (a power of two).
        let pad = (len + 2).wrapping_neg() & (self.transform.block_len() - 1);
        pad + 2 + self.transform.icv_len()
    }

    /// Encrypt in place: `esp` starts at the ESP header, holds the IV room, the payload, the
    /// padding and trailer (written by the caller) and room for the ICV at the end.
    #[inline]
    pub fn seal(&self, esp: &mut [u8], seq: u32) -> Result<(), SealError> {
        // SPI and sequence number in one store, and the AAD taken from the value rather than read
        // back from the packet (two narrow stores read back as one wide load stall).
        let header = (u64::from(self.spi) << 32 | u64::from(seq)).to_be_bytes();
        esp[..8].copy_from_slice(&header);
        let body_end = esp.len() - self.transform.icv_len();
        // Unique per SA: the sequence number is, on this server, and the node id across a fleet.
        let counter = u64::from(self.node_id) << 48 | u64::from(seq);
        match &self.sealer {
            Sealer::Gcm { key, salt } => {
                esp[8..16].copy_from_slice(&counter.to_be_bytes());
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(salt);
                nonce[4..].copy_from_slice(&counter.to_be_bytes());
                let (body, icv) = esp.split_at_mut(body_end);
                key.seal_in_place_into(&nonce, &header, &mut body[16..], icv);
            }
            Sealer::Cbc(c) => {
                let CbcSealer { key, iv_key, mac } = &**c;
                let mut iv = [0u8; 16];
                iv[8..].copy_from_slice(&counter.to_be_bytes());
                iv_key.less_safe_encrypt(&mut iv, EncryptionContext::None).map_err(|_| SealError)?;
                esp[8..24].copy_from_slice(&iv);
                key.less_safe_encrypt(&mut esp[24..body_end], EncryptionContext::Iv128(iv.into()))
                    .map_err(|_| SealError)?;
                let (body, out) = esp.split_at_mut(body_end);
                sign(mac, body, out);
            }
            Sealer::Null(mac) => {
                let (body, out) = esp.split_at_mut(body_end);
                sign(mac, body, out);
            }
        }
        Ok(())
    }
}

/// A change to a worker's SAs, sent through its update ring.
#[derive(Debug)]
pub enum SaUpdate {
    AddInbound(Box<InboundSa>),
    /// Takes over the tunnel's traffic for its selectors at once (make-before-break: the SA it
    /// replaces stays until deleted, unused).
    AddOutbound(Box<OutboundSa>),
    /// Remove an SA: an inbound one by its endpoint and SPI, an outbound one by its tunnel's
    /// counter slot and SPI (routers choose outbound SPIs, unique only within their tunnel).
    Delete {
        direction: SaDirection,
        anycast: Ipv4Addr,
        spi: u32,
        tunnel_slot: u32,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::esp::transform::NAMES;

    pub(crate) fn spec(transform: &str, direction: SaDirection, spi: u32) -> SaSpec {
        let transform: Transform = transform.parse().unwrap();
        let bytes = |n: usize, seed: u8| Secret::new((0..n).map(|i| seed.wrapping_add(i as u8)).collect());
        SaSpec {
            tunnel: "t".into(),
            spi,
            direction,
            transform,
            encryption_key: bytes(transform.encryption_key_len(), 1),
            integrity_key: bytes(transform.integrity_key_len(), 9),
            local: Ipv4Addr::new(192, 0, 2, 100),
            remote: Ipv4Addr::new(198, 51, 100, 10),
            udp: None,
            local_ts: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
            remote_ts: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
            replay_protection: false,
            ttl: 64,
            node_id: 3,
        }
    }

    /// An ESP packet (from the ESP header) around `payload`, sealed by `sa`.
    fn sealed(sa: &OutboundSa, payload: &[u8], seq: u32) -> Vec<u8> {
        let t = sa.transform;
        let trailer = sa.trailer_len(payload.len());
        let mut esp = vec![0u8; 8 + t.iv_len()];
        esp.extend_from_slice(payload);
        let pad = trailer - 2 - t.icv_len();
        esp.extend((1..=pad).map(|i| i as u8));
        esp.extend_from_slice(&[pad as u8, 4]);
        esp.extend(std::iter::repeat_n(0, t.icv_len()));
        sa.seal(&mut esp, seq).unwrap();
        esp
    }

    #[test]
    fn the_trailer_pads_payload_and_trailer_to_the_block() {
        for name in NAMES {
            let sa = OutboundSa::compile(&spec(name, SaDirection::Outbound, 0x100), 0, Arc::default()).unwrap();
            let (block, icv) = (sa.transform.block_len(), sa.transform.icv_len());
            assert!(block.is_power_of_two(), "{name}");
            for len in 0..=1600 {
                let pad = sa.trailer_len(len) - 2 - icv;
                assert!(pad < block && (len + pad + 2) % block == 0, "{name}, {len} bytes: {pad}");
            }
        }
    }

    #[test]
    fn the_outer_header_carries_length_identification_and_a_valid_checksum() {
        let raw = OutboundSa::compile(&spec("aes128gcm16", SaDirection::Outbound, 0x100), 0, Arc::default()).unwrap();
        let mut in_udp = spec("aes128gcm16", SaDirection::Outbound, 0x100);
        in_udp.udp = Some((4500, 4501));
        let in_udp = OutboundSa::compile(&in_udp, 0, Arc::default()).unwrap();
        for (sa, protocol) in [(&raw, 50), (&in_udp, 17)] {
            for (total, id) in [(100u16, 1u16), (1500, 0xffff), (0xfff0, 0x8000), (48, 0)] {
                let (head, tail) = sa.outer_header(total, id);
                let h: Vec<u8> = head.iter().chain(&tail).copied().collect();
                assert!(csum::header_is_valid(&h[..20]), "{protocol} {total} {id}: {h:02x?}");
                assert_eq!((u16::from_be_bytes([h[2], h[3]]), u16::from_be_bytes([h[4], h[5]])), (total, id));
                assert_eq!((h[0], h[6], h[8], h[9]), (0x45, 0x40, 64, protocol));
                assert_eq!(h[12..20], [192, 0, 2, 100, 198, 51, 100, 10]);
                if protocol == 17 {
                    assert_eq!(
                        h[20..28],
                        [0x11, 0x94, 0x11, 0x95, (total - 20).to_be_bytes()[0], (total - 20).to_be_bytes()[1], 0, 0]
                    );
                } else {
                    assert_eq!(h[20..28], [0; 8], "the ESP header's room");
                }
            }
        }
    }

    #[test]
    fn every_transform_opens_what_it_seals_and_refuses_a_flipped_bit() {
        for name in NAMES {
            let out = OutboundSa::compile(&spec(name, SaDirection::Outbound, 0x100), 0, Arc::default()).unwrap();
            let inb = InboundSa::compile(&spec(name, SaDirection::Inbound, 0x100), 0).unwrap();
            let payload: Vec<u8> = (0..77).collect();
            let esp = sealed(&out, &payload, 7);
            assert_eq!(esp.len() % 4, 0, "{name}");
            if !out.transform.is_null() {
                assert!(!esp.windows(16).any(|w| w == &payload[..16]), "{name}: payload in clear");
            }
            let mut opened = esp.clone();
            inb.open(&mut opened).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let start = 8 + inb.transform.iv_len();
            assert_eq!(&opened[start..start + payload.len()], &payload[..], "{name}");
            for at in [0, 5, start + 3, esp.len() - 1] {
                let mut bad = esp.clone();
                bad[at] ^= 0x10;
                assert_eq!(inb.open(&mut bad), Err(OpenError::Icv), "{name}: byte {at}");
            }
        }
    }

    #[test]
    fn ivs_differ_per_packet_and_carry_the_node() {
        for name in ["aes128gcm16", "aes256-sha1"] {
            let out = OutboundSa::compile(&spec(name, SaDirection::Outbound, 0x100), 0, Arc::default()).unwrap();
            let iv_len = out.transform.iv_len();
            let ivs: std::collections::HashSet<Vec<u8>> =
                (1..=100).map(|seq| sealed(&out, b"same", seq)[8..8 + iv_len].to_vec()).collect();
            assert_eq!(ivs.len(), 100, "{name}");
        }
        let gcm = OutboundSa::compile(&spec("aes128gcm16", SaDirection::Outbound, 0x100), 0, Arc::default()).unwrap();
        assert_eq!(&sealed(&gcm, b"x", 1)[8..10], &[0, 3], "node id 3 in the top bits");
    }

    #[test]
    fn sequence_numbers_are_shared_and_run_out_without_esn() {
        let seq = Arc::new(AtomicU64::new(0));
        let a = OutboundSa::compile(&spec("aes128gcm16", SaDirection::Outbound, 0x100), 0, seq.clone()).unwrap();
        let b = OutboundSa::compile(&spec("aes128gcm16", SaDirection::Outbound, 0x100), 0, seq.clone()).unwrap();
        assert_eq!(a.reserve(32), Some(1));
        assert_eq!(b.reserve(1), Some(33));
        seq.store(SEQ_LIMIT - 2, Ordering::Relaxed);
        assert_eq!(a.reserve(2), Some(SEQ_LIMIT - 1));
        assert_eq!(a.reserve(1), None);
    }

    #[test]
    fn selectors_narrow_by_both_sides() {
        let s = Selectors::new(&["192.0.2.0/24".parse().unwrap()], &["10.1.0.0/16".parse().unwrap()]);
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert!(s.allow(ip("192.0.2.9"), ip("10.1.2.3")));
        assert!(!s.allow(ip("192.0.3.9"), ip("10.1.2.3")));
        assert!(!s.allow(ip("192.0.2.9"), ip("10.2.2.3")));
        assert!(!s.allow(ip("2001:db8::1"), ip("10.1.2.3")));
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused() {
        let mut s = spec("aes256gcm16", SaDirection::Inbound, 0x100);
        s.encryption_key = Secret::new(vec![0; 20]);
        assert_eq!(
            InboundSa::compile(&s, 0).unwrap_err(),
            SaError::KeyLength { which: "encryption", want: 36, got: 20 }
        );
    }
}
