//! A crypto library's own rate on this core: AES-GCM sealing or opening, in place, the bytes an
//! ESP packet of the given inner size encrypts (inner packet, trailer), one packet after another,
//! as the dataplane calls it but with nothing else around it. The benchmark prints it beside the
//! dataplane's rate on the same core: the ceiling crypto sets. `--library ipsec-mb` is what the
//! dataplane runs (intel-ipsec-mb's direct API through dpdk-bindings); `aws-lc` is aws-lc-rs, the
//! library it ran on before, kept as the figure behind that choice.
//!
//! usage: aead-rate --inner BYTES [--key-bits 128|256] [--open] [--library ipsec-mb|aws-lc]
//!        [--seconds S]

use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use clap::{Parser, ValueEnum};
use dpdk_bindings::ipsec_mb::AesGcm;
use serde_json::json;

#[derive(Parser, Debug)]
struct Args {
    /// Inner IP packet bytes (the trailer's 2 bytes and padding are added).
    #[arg(long)]
    inner: usize,
    #[arg(long, default_value_t = 128)]
    key_bits: u32,
    /// Open (decrypt and check) instead of seal.
    #[arg(long)]
    open: bool,
    #[arg(long, value_enum, default_value_t = Library::IpsecMb)]
    library: Library,
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Library {
    IpsecMb,
    AwsLc,
}

/// One packet's worth of work: the tag sealed (None if the library refused), or whether the
/// open succeeded.
trait Aead {
    fn seal(&self, n: u64, body: &mut [u8]) -> Option<[u8; 16]>;
    fn open(&self, body: &mut [u8], tag: &[u8]) -> bool;
}

fn nonce(n: u64) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[4..].copy_from_slice(&n.to_be_bytes());
    b
}

const AAD: [u8; 8] = [0; 8];

impl Aead for LessSafeKey {
    fn seal(&self, n: u64, body: &mut [u8]) -> Option<[u8; 16]> {
        let tag = self.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(n)), Aad::from(AAD), body);
        tag.ok().and_then(|t| t.as_ref().try_into().ok())
    }
    fn open(&self, body: &mut [u8], tag: &[u8]) -> bool {
        self.open_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(0)), Aad::from(AAD), tag, body).is_ok()
    }
}

impl Aead for AesGcm {
    fn seal(&self, n: u64, body: &mut [u8]) -> Option<[u8; 16]> {
        Some(self.seal_in_place(&nonce(n), &AAD, body))
    }
    fn open(&self, body: &mut [u8], tag: &[u8]) -> bool {
        self.open_in_place(&nonce(0), &AAD, body, tag).is_ok()
    }
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let key_bytes = vec![0x42u8; args.key_bits as usize / 8];
    let algorithm = if args.key_bits == 256 { &AES_256_GCM } else { &AES_128_GCM };
    let key: Box<dyn Aead> = match args.library {
        Library::AwsLc => {
            Box::new(LessSafeKey::new(UnboundKey::new(algorithm, &key_bytes).map_err(|_| "key refused")?))
        }
        Library::IpsecMb => Box::new(AesGcm::new(&key_bytes).map_err(|e| e.to_string())?),
    };
    run(&*key, &args)
}

fn run(key: &dyn Aead, args: &Args) -> Result<(), String> {
    let body_len = (args.inner + 2).div_ceil(4) * 4;
    let mut body = vec![0x5au8; body_len];
    // For opening, one sealed packet is opened again and again (its tag stays valid).
    let tag = key.seal(0, &mut body).ok_or("seal failed")?;
    let sealed = body.clone();
    let end = Instant::now() + Duration::from_secs_f64(args.seconds);
    let (start, mut packets) = (Instant::now(), 0u64);
    while Instant::now() < end {
        for _ in 0..1024 {
            if args.open {
                body.copy_from_slice(&sealed);
                if !key.open(&mut body, &tag) {
                    return Err("open failed".into());
                }
            } else {
                std::hint::black_box(key.seal(packets, &mut body));
            }
            packets += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("{}", json!({"mpps": packets as f64 / seconds / 1e6, "bytes": body_len}));
    Ok(())
}
