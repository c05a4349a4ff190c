//! Traffic selector narrowing: one pair of prefixes per Child SA (RFC 7296 2.9).
//!
//! The dataplane matches a Child SA's traffic by prefix, any protocol and any port. So the
//! responder takes, in the initiator's order, the first selector of TSi and the first of TSr (of
//! the same address family) that cover every protocol and port, and narrows each range to the
//! largest prefix that starts where it starts and fits inside it. Anything else cannot be carried
//! as agreed and is answered with TS_UNACCEPTABLE.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::wire::{SelectorRange, TrafficSelector, TrafficSelectors};

/// The narrowed selectors of a Child SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectorPair {
    /// The initiator's side (TSi): the customer's networks.
    pub initiator: IpNet,
    /// The responder's side (TSr).
    pub responder: IpNet,
}

impl SelectorPair {
    /// The TSi and TSr payloads of the answer.
    pub fn payloads(&self) -> (TrafficSelectors, TrafficSelectors) {
        (
            TrafficSelectors { selectors: vec![selector(self.initiator)] },
            TrafficSelectors { selectors: vec![selector(self.responder)] },
        )
    }
}

/// Narrow the initiator's TSi and TSr to one pair, or `None` (TS_UNACCEPTABLE).
pub fn narrow(tsi: &TrafficSelectors, tsr: &TrafficSelectors) -> Option<SelectorPair> {
    let prefixes = |ts: &TrafficSelectors| ts.selectors.iter().filter_map(prefix).collect::<Vec<_>>();
    let (initiators, responders) = (prefixes(tsi), prefixes(tsr));
    initiators.iter().find_map(|&initiator| {
        responders
            .iter()
            .find(|r| matches!((initiator, r), (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))))
            .map(|&responder| SelectorPair { initiator, responder })
    })
}

/// The largest prefix at the start of an any-protocol, any-port range.
fn prefix(selector: &TrafficSelector) -> Option<IpNet> {
    fn any_traffic<A>(range: &SelectorRange<A>) -> bool {
        range.protocol == 0 && range.start_port == 0 && range.end_port == u16::MAX
    }
    match selector {
        TrafficSelector::Ipv4(range) if any_traffic(range) => {
            let (start, end) = (u32::from(range.start), u32::from(range.end));
            let len = largest_prefix(u128::from(start), u128::from(end), 32)?;
            Ipv4Net::new(range.start, len).ok().map(IpNet::V4)
        }
        TrafficSelector::Ipv6(range) if any_traffic(range) => {
            let (start, end) = (u128::from(range.start), u128::from(range.end));
            let len = largest_prefix(start, end, 128)?;
            Ipv6Net::new(range.start, len).ok().map(IpNet::V6)
        }
        _ => None,
    }
}

/// The shortest prefix length whose block starts at `start` and ends at or before `end`.
fn largest_prefix(start: u128, end: u128, bits: u8) -> Option<u8> {
    if start > end {
        return None;
    }
    (0..=bits).find(|&len| {
        let host_bits = u32::from(bits - len);
        let block_minus_1 = if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
        start & block_minus_1 == 0 && start.checked_add(block_minus_1).is_some_and(|last| last <= end)
    })
}

fn selector(net: IpNet) -> TrafficSelector {
    match net {
        IpNet::V4(net) => TrafficSelector::Ipv4(SelectorRange::<Ipv4Addr> {
            protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start: net.network(),
            end: net.broadcast(),
        }),
        IpNet::V6(net) => TrafficSelector::Ipv6(SelectorRange::<Ipv6Addr> {
            protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start: net.network(),
            end: net.broadcast(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(start: [u8; 4], end: [u8; 4]) -> TrafficSelector {
        TrafficSelector::Ipv4(SelectorRange {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: start.into(),
            end: end.into(),
        })
    }

    fn ts(selectors: Vec<TrafficSelector>) -> TrafficSelectors {
        TrafficSelectors { selectors }
    }

    #[test]
    fn a_prefix_pair_is_taken_as_offered() {
        let pair =
            narrow(&ts(vec![v4([198, 51, 100, 0], [198, 51, 100, 255])]), &ts(vec![v4([0; 4], [255; 4])])).unwrap();
        assert_eq!(pair.initiator, "198.51.100.0/24".parse::<IpNet>().unwrap());
        assert_eq!(pair.responder, "0.0.0.0/0".parse::<IpNet>().unwrap());
        let (tsi, tsr) = pair.payloads();
        assert_eq!(narrow(&tsi, &tsr), Some(pair), "the answer narrows to itself");
    }

    #[test]
    fn ranges_narrow_to_the_largest_prefix_at_their_start_and_extra_selectors_are_dropped() {
        let tsi = ts(vec![v4([10, 0, 0, 0], [10, 0, 2, 255]), v4([10, 9, 0, 0], [10, 9, 255, 255])]);
        let pair = narrow(&tsi, &ts(vec![v4([192, 0, 2, 1], [192, 0, 2, 1])])).unwrap();
        assert_eq!(pair.initiator, "10.0.0.0/23".parse::<IpNet>().unwrap());
        assert_eq!(pair.responder, "192.0.2.1/32".parse::<IpNet>().unwrap());
    }

    #[test]
    fn families_are_paired_and_ipv6_works() {
        let v6 = TrafficSelector::Ipv6(SelectorRange {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: "2001:db8::".parse().unwrap(),
            end: "2001:db8::ffff:ffff:ffff:ffff".parse().unwrap(),
        });
        let pair = narrow(&ts(vec![v6.clone()]), &ts(vec![v4([0; 4], [255; 4]), v6])).unwrap();
        assert_eq!(pair.initiator, "2001:db8::/64".parse::<IpNet>().unwrap());
        assert_eq!(pair.responder, "2001:db8::/64".parse::<IpNet>().unwrap());
    }

    #[test]
    fn port_or_protocol_selectors_reversed_ranges_and_lone_families_are_unacceptable() {
        let any = ts(vec![v4([0; 4], [255; 4])]);
        let tcp = TrafficSelector::Ipv4(SelectorRange {
            protocol: 6,
            start_port: 0,
            end_port: 65535,
            start: [10, 0, 0, 0].into(),
            end: [10, 0, 0, 255].into(),
        });
        let port = TrafficSelector::Ipv4(SelectorRange {
            protocol: 0,
            start_port: 80,
            end_port: 80,
            start: [10, 0, 0, 0].into(),
            end: [10, 0, 0, 255].into(),
        });
        assert_eq!(narrow(&ts(vec![tcp]), &any), None);
        assert_eq!(narrow(&ts(vec![port]), &any), None);
        assert_eq!(narrow(&ts(vec![v4([10, 0, 0, 9], [10, 0, 0, 1])]), &any), None);
        assert_eq!(narrow(&ts(vec![TrafficSelector::Other(vec![9, 0, 0, 4])]), &any), None);
        assert_eq!(narrow(&ts(vec![]), &any), None);
    }
}
