//! The crypto library's own rate on this core: AES-GCM from aws-lc-rs sealing or opening, in
//! place, the bytes an ESP packet of the given inner size encrypts (inner packet, trailer), one
//! packet after another, as the dataplane calls it but with nothing else around it. The
//! benchmark prints it beside the dataplane's rate on the same core: the ceiling crypto sets.
//!
//! usage: aead-rate --inner BYTES [--key-bits 128|256] [--open] [--seconds S]

use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use clap::Parser;
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
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let algorithm = if args.key_bits == 256 { &AES_256_GCM } else { &AES_128_GCM };
    let key_bytes = vec![0x42u8; algorithm.key_len()];
    let key = LessSafeKey::new(UnboundKey::new(algorithm, &key_bytes).map_err(|_| "key refused")?);
    let body_len = (args.inner + 2).div_ceil(4) * 4;
    let mut body = vec![0x5au8; body_len];
    let aad = [0u8; 8];
    let nonce = |n: u64| {
        let mut b = [0u8; 12];
        b[4..].copy_from_slice(&n.to_be_bytes());
        Nonce::assume_unique_for_key(b)
    };
    // For opening, one sealed packet is opened again and again (its tag stays valid).
    let tag = key.seal_in_place_separate_tag(nonce(0), Aad::from(aad), &mut body).map_err(|_| "seal failed")?;
    let sealed = body.clone();
    let end = Instant::now() + Duration::from_secs_f64(args.seconds);
    let (start, mut packets) = (Instant::now(), 0u64);
    while Instant::now() < end {
        for _ in 0..1024 {
            if args.open {
                body.copy_from_slice(&sealed);
                key.open_in_place_separate_tag(nonce(0), Aad::from(aad), tag.as_ref(), &mut body)
                    .map_err(|_| "open failed")?;
            } else {
                let _ = key.seal_in_place_separate_tag(nonce(packets), Aad::from(aad), &mut body);
            }
            packets += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("{}", json!({"mpps": packets as f64 / seconds / 1e6, "bytes": body_len}));
    Ok(())
}
