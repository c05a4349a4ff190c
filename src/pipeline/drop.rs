//! Why a packet was dropped or handed to the slow path: one enum each for the whole pipeline, each
//! reason a per-worker counter.

macro_rules! reasons {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[doc = $doc:literal])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name {
            $($(#[doc = $doc])* $variant,)*
        }

        impl $name {
            /// Every reason, in counter order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            /// The number of reasons (the length of a counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// The reason's name in counters and JSON.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The reason's index in a counter array.
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

reasons! {
    /// Why the pipeline dropped a packet.
    pub enum DropReason {
        /// Shorter than an Ethernet header, or a VLAN tag cut short.
        EthernetTruncated => "ethernet_truncated",
        /// A unicast frame for another MAC address.
        NotOurMac => "not_our_mac",
        /// A VLAN tag the port is not configured for, or none where it is.
        VlanMismatch => "vlan_mismatch",
        /// Neither ARP, IPv4 nor IPv6.
        UnsupportedEthertype => "unsupported_ethertype",
        /// A malformed ARP packet, or one that is not IPv4-over-Ethernet.
        ArpMalformed => "arp_malformed",
        /// An ARP request for an address that is not ours.
        ArpNotForUs => "arp_not_for_us",
        /// An IPv4 header that is cut short, has a bad length or version.
        Ipv4Malformed => "ipv4_malformed",
        /// An IPv4 header whose checksum is wrong.
        Ipv4BadChecksum => "ipv4_bad_checksum",
        /// An IPv6 header that is cut short or has a bad length or version.
        Ipv6Malformed => "ipv6_malformed",
        /// A source or destination that is never forwarded (multicast, broadcast, loopback...).
        Martian => "martian",
        /// A GRE packet from an endpoint pair no tunnel is configured for.
        GreUnknownTunnel => "gre_unknown_tunnel",
        /// A GRE header shorter than its flags announce.
        GreTruncated => "gre_truncated",
        /// A GRE version other than 0, or reserved bits set (RFC 2784).
        GreBadVersion => "gre_bad_version",
        /// A GRE checksum that does not match.
        GreBadChecksum => "gre_bad_checksum",
        /// A GRE key on a tunnel that has none.
        GreKeyMismatch => "gre_key_mismatch",
        /// A GRE payload that is neither IPv4 nor IPv6.
        GreUnsupportedProtocol => "gre_unsupported_protocol",
        /// A fragment of a GRE packet (outer reassembly is not done).
        GreFragment => "gre_fragment",
        /// The inner packet of a tunnel is malformed.
        InnerMalformed => "inner_malformed",
        /// No customer route for the destination of a packet from the internet.
        NoRoute => "no_route",
        /// No port can reach the destination.
        NoEgress => "no_egress",
        /// The TTL or hop limit ran out (an ICMP time exceeded goes back where allowed).
        TtlExceeded => "ttl_exceeded",
        /// Too big for the tunnel with DF set, or IPv6 (an ICMP error goes back where allowed).
        TooBig => "too_big",
        /// An ICMP error that was not sent because of the rate limit.
        IcmpRateLimited => "icmp_rate_limited",
        /// An ESP packet cut short, or whose length cannot be one of its SA's transform.
        EspMalformed => "esp_malformed",
        /// An ESP packet whose SPI no inbound SA on its destination has.
        EspUnknownSpi => "esp_unknown_spi",
        /// An ESP packet whose ICV does not match (forged, corrupted, or keyed differently).
        EspBadIcv => "esp_bad_icv",
        /// ESP padding that is not 1, 2, 3... or longer than the packet.
        EspBadPadding => "esp_bad_padding",
        /// An ESP trailer's next header that is neither IPv4 nor IPv6.
        EspBadNextHeader => "esp_bad_next_header",
        /// A replayed ESP packet, or one older than the anti-replay window.
        EspReplayed => "esp_replayed",
        /// A decrypted packet outside its Child SA's traffic selectors.
        EspSelectorMismatch => "esp_selector_mismatch",
        /// A fragment of an ESP packet (outer reassembly is not done).
        EspFragment => "esp_fragment",
        /// An SA whose tunnel is no longer configured.
        EspUnknownTunnel => "esp_unknown_tunnel",
        /// A packet routed into an IPsec tunnel that has no outbound SA for it.
        EspNoSa => "esp_no_sa",
        /// An outbound SA that has used all its sequence numbers (it needs a rekey).
        EspSequenceExhausted => "esp_sequence_exhausted",
        /// The crypto library failed to encrypt.
        EspCryptoFailed => "esp_crypto_failed",
        /// A dummy ESP packet (next header 59, RFC 4303 2.6): consumed, not an error.
        EspDummy => "esp_dummy",
        /// A NAT-T keepalive (RFC 3948 2.3): consumed, not an error.
        NatKeepalive => "nat_keepalive",
        /// A packet in several mbuf segments (not handled).
        MultiSegment => "multi_segment",
        /// Not enough headroom or tailroom in the buffer for the new headers.
        NoBufferRoom => "no_buffer_room",
        /// No mbuf left in the pool.
        MbufExhausted => "mbuf_exhausted",
        /// The next hop's MAC address is unknown and the slow path could not take the packet.
        NeighborUnresolved => "neighbor_unresolved",
        /// The slow path's ring was full.
        SlowPathFull => "slow_path_full",
        /// The transmit queue did not take the packet.
        TxFull => "tx_full",
    }
}

reasons! {
    /// Why the pipeline handed a packet to the slow path.
    pub enum PuntReason {
        /// For one of our addresses, not handled on the fast path.
        HostBound => "host_bound",
        /// ARP or neighbor discovery to learn a neighbor's MAC address from.
        Neighbor => "neighbor",
        /// The next hop's MAC address is unknown: the slow path resolves it.
        Resolve => "resolve",
        /// IKE, on UDP 500 or behind the non-ESP marker on 4500.
        Ike => "ike",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indexes_dense() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        assert_eq!(PuntReason::Resolve.name(), "resolve");
    }
}
