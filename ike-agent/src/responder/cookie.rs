//! Stateless cookies (RFC 7296 2.6). While more IKE SAs are half-open than the policy's threshold,
//! an IKE_SA_INIT without a valid cookie gets `HDR(A,0), N(COOKIE)` and leaves no state; an
//! initiator that can receive at its address repeats the request with the cookie first.
//!
//! Cookie = <secret version> | HMAC-SHA2-256(<secret>, Ni | IPi | SPIi). The secret changes every
//! [`SECRET_LIFETIME`]; cookies made with the one before stay valid for one more period, so that
//! a rotation between the challenge and the retry costs nothing.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use aws_lc_rs::{hmac, rand};

/// How long one secret makes cookies.
pub const SECRET_LIFETIME: Duration = Duration::from_secs(120);

/// A secret and its version number.
struct Secret {
    version: u32,
    key: hmac::Key,
}

impl Secret {
    fn fresh(version: u32) -> Option<Self> {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        rand::fill(&mut bytes[..]).ok()?;
        Some(Self { version, key: hmac::Key::new(hmac::HMAC_SHA256, &bytes[..]) })
    }
}

/// The current and previous cookie secrets.
pub(super) struct CookieJar {
    current: Option<Secret>,
    previous: Option<Secret>,
    made: Option<Instant>,
}

impl CookieJar {
    pub(super) fn new() -> Self {
        Self { current: None, previous: None, made: None }
    }

    /// Start a new secret when the current one is older than [`SECRET_LIFETIME`] (or missing).
    pub(super) fn rotate(&mut self, now: Instant) {
        if self.current.is_some() && self.made.is_some_and(|at| now.duration_since(at) < SECRET_LIFETIME) {
            return;
        }
        let version = self.current.as_ref().map_or(1, |s| s.version.wrapping_add(1));
        if let Some(fresh) = Secret::fresh(version) {
            self.previous = self.current.replace(fresh);
            self.made = Some(now);
        }
    }

    /// A cookie for this initiator; `None` only if no secret could be made.
    pub(super) fn make(&mut self, now: Instant, ni: &[u8], ip: IpAddr, spi_i: u64) -> Option<Vec<u8>> {
        self.rotate(now);
        let secret = self.current.as_ref()?;
        let mut cookie = secret.version.to_be_bytes().to_vec();
        cookie.extend_from_slice(hmac::sign(&secret.key, &input(ni, ip, spi_i)).as_ref());
        Some(cookie)
    }

    /// Whether `cookie` was made here, by the current or the previous secret, for this initiator.
    pub(super) fn check(&self, cookie: &[u8], ni: &[u8], ip: IpAddr, spi_i: u64) -> bool {
        let Some((version, tag)) = cookie.split_first_chunk::<4>() else { return false };
        let version = u32::from_be_bytes(*version);
        [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .find(|s| s.version == version)
            .is_some_and(|s| hmac::verify(&s.key, &input(ni, ip, spi_i), tag).is_ok())
    }
}

fn input(ni: &[u8], ip: IpAddr, spi_i: u64) -> Vec<u8> {
    let mut data = ni.to_vec();
    match ip {
        IpAddr::V4(ip) => data.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => data.extend_from_slice(&ip.octets()),
    }
    data.extend_from_slice(&spi_i.to_be_bytes());
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_holds_for_its_initiator_and_one_rotation_only() {
        let mut jar = CookieJar::new();
        let t0 = Instant::now();
        let ip: IpAddr = [198, 51, 100, 7].into();
        let cookie = jar.make(t0, b"nonce", ip, 42).unwrap();
        assert_eq!(cookie.len(), 36);
        assert!(jar.check(&cookie, b"nonce", ip, 42));
        assert!(!jar.check(&cookie, b"other", ip, 42), "another nonce");
        assert!(!jar.check(&cookie, b"nonce", [198, 51, 100, 8].into(), 42), "another address");
        assert!(!jar.check(&cookie, b"nonce", ip, 43), "another SPI");
        assert!(!jar.check(&cookie[..20], b"nonce", ip, 42), "cut short");
        let mut flipped = cookie.clone();
        flipped[10] ^= 1;
        assert!(!jar.check(&flipped, b"nonce", ip, 42), "altered");
        jar.rotate(t0 + SECRET_LIFETIME);
        assert!(jar.check(&cookie, b"nonce", ip, 42), "still good after one rotation");
        jar.rotate(t0 + 2 * SECRET_LIFETIME);
        assert!(!jar.check(&cookie, b"nonce", ip, 42), "stale after two");
    }
}
