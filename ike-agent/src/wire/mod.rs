//! The IKEv2 message codec (RFC 7296 3): pure functions over bytes, no crypto and no state.
//!
//! `Message::parse` reads a datagram into owned payloads, checking every length against what it
//! encloses: a length that disagrees with its contents, a count that disagrees with its entries,
//! or a byte after the end is an error that names the violation. `Message::encode` writes it back;
//! for every message that parses, encoding and parsing again gives the same message. Values of the
//! IANA registries are open newtypes, so unknown algorithms, notifications and payloads pass
//! through to the responder, which decides what to ignore and what to refuse.
//!
//! The SK payload is carried opaque here; decrypting it and parsing the payloads inside (with
//! `read_chain`) is the crypto suite's job.

pub mod basic;
pub mod codec;
pub mod header;
pub mod message;
pub mod notify;
pub mod payload;
pub mod registry;
pub mod sa;
pub mod sk;
pub mod ts;

pub use basic::{Authentication, CertificateRequest, Identification, KeyExchange, Nonce};
pub use codec::{DecodeError, Reader, TooLong};
pub use header::{Flags, Header, HEADER_LEN};
pub use message::Message;
pub use notify::{Delete, Notify};
pub use payload::{encode_chain, read_chain, Payload, RawPayload};
pub use registry::{
    AttributeType, AuthMethod, EncrId, EsnId, ExchangeType, IdType, IntegId, KeMethod, NotifyType, PayloadType, PrfId,
    ProtocolId, TransformType, TsType,
};
pub use sa::{Attribute, AttributeValue, Proposal, SecurityAssociation, Transform};
pub use sk::{Encrypted, EncryptedFragment};
pub use ts::{SelectorRange, TrafficSelector, TrafficSelectors};

#[cfg(test)]
mod tests;
