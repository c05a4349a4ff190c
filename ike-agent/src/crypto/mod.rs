//! The crypto suites of IKE SAs: PRFs and key derivation, key exchange methods, and the
//! protection of the Encrypted payload. Every key lives in a zeroizing buffer and is never printed.

pub mod auth;
pub mod ke;
pub mod keys;
pub mod modp;
pub mod prf;
pub mod sk;

#[cfg(test)]
mod tests;
