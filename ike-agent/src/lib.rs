//! IKEv2 (RFC 7296) for anygate, as a library without I/O: the message codec, the crypto suites,
//! the responder's state machine and an initiator for tests and load generation.
//!
//! Nothing here reads a clock or a socket: time and datagrams are arguments, and what is to be
//! sent or installed is polled out.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod fragment;
pub mod initiator;
pub mod policy;
pub mod proposal;
pub mod protected;
pub mod responder;
pub mod selectors;
pub mod wire;

#[cfg(test)]
mod test_util {
    /// Bytes from a hex string of test data.
    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }
}
