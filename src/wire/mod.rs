//! Zero-copy header views.
//!
//! The standard headers (Ethernet, ARP, IPv4, IPv6, ICMP, ICMPv6, UDP, TCP, ESP) are smoltcp's `wire`
//! views, re-exported here; this module adds, in the same style, only what smoltcp lacks: GRE
//! (RFC 2784 / RFC 2890) and one 802.1Q VLAN tag.
//!
//! The contract is smoltcp's: `Packet::new_unchecked` wraps any buffer; `Packet::new_checked` also
//! checks that every fixed field and the variable-length header fit, after which no accessor panics;
//! `Repr` is the parsed, owned form with `parse`, `emit` and `buffer_len`.

pub mod checksum;
pub mod gre;
pub mod vlan;

pub use smoltcp::wire::IpSecEspPacket as EspPacket;
pub use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv4Message, Icmpv4Packet,
    Icmpv6Message, Icmpv6Packet, IpProtocol, Ipv4Address, Ipv4Packet, Ipv6Address, Ipv6Packet, TcpPacket, UdpPacket,
    ETHERNET_HEADER_LEN, IPV4_HEADER_LEN,
};
pub use smoltcp::wire::{Error, Result};

/// The fixed IPv6 header length.
pub const IPV6_HEADER_LEN: usize = 40;

/// Ethertype of an 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
