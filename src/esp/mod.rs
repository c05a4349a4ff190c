//! IPsec ESP (RFC 4303) for the dataplane: transforms, SAs compiled for the fast path, the
//! per-worker SA database, the anti-replay window, and the seam through which SAs reach every
//! worker.

pub mod db;
pub mod replay;
pub mod sa;
pub mod sink;
pub mod transform;

pub use db::SaDb;
pub use sa::{InboundSa, OutboundSa, SaSpec};
pub use sink::{RingSaSink, SaSink};
pub use transform::{Encryption, Integrity, Transform};
