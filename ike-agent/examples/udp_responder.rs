//! The responder on kernel UDP sockets (ports 500 and 4500), for checking IKE alone against a
//! real initiator; the dataplane is not involved, so Child SAs are printed, not installed.
//!
//! Usage: udp_responder <anycast address> <account> <domain> <tunnel> <psk file> <seconds>
//! Each IKE log line and each Child SA (SPIs and suite, never keys) goes to standard output.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ike_agent::policy::{ResponderPolicy, TunnelPolicy};
use ike_agent::responder::{Event, Responder};

/// The four zero bytes that mark IKE on port 4500 (RFC 3948 2.2).
const NON_ESP_MARKER: [u8; 4] = [0; 4];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, address, account, domain, tunnel, psk_file, seconds] = args.as_slice() else {
        return Err("usage: udp_responder <anycast address> <account> <domain> <tunnel> <psk file> <seconds>".into());
    };
    let anycast: Ipv4Addr = address.parse()?;
    let psk = zeroize::Zeroizing::new(std::fs::read(psk_file)?.trim_ascii().to_vec());
    let policy = ResponderPolicy {
        node_id: 1,
        account_id: account.clone(),
        domain: domain.clone(),
        tunnels: vec![TunnelPolicy {
            name: tunnel.clone(),
            psk,
            anycast_endpoint: anycast,
            customer_endpoint: None,
            allow_null_cipher: false,
        }],
        half_open: Default::default(),
        timers: Default::default(),
        fragmentation: Default::default(),
    };
    let mut responder = Responder::new(policy).map_err(|e| format!("{e:?}"))?;
    let sockets = [UdpSocket::bind((anycast, 500))?, UdpSocket::bind((anycast, 4500))?];
    for socket in &sockets {
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds.parse()?);
    let mut buffer = [0u8; 65536];
    while Instant::now() < deadline {
        for socket in &sockets {
            let Ok((len, remote)) = socket.recv_from(&mut buffer) else { continue };
            let local: SocketAddr = socket.local_addr()?;
            let datagram = &buffer[..len];
            let ike = if local.port() == 4500 {
                match datagram.strip_prefix(&NON_ESP_MARKER) {
                    Some(ike) => ike,
                    None => continue,
                }
            } else {
                datagram
            };
            responder.handle_datagram(Instant::now(), local, remote, ike);
        }
        responder.handle_timeout(Instant::now());
        while let Some(transmit) = responder.poll_transmit() {
            let socket = if transmit.local.port() == 4500 { &sockets[1] } else { &sockets[0] };
            let mut bytes = Vec::with_capacity(4 + transmit.bytes.len());
            if transmit.local.port() == 4500 {
                bytes.extend_from_slice(&NON_ESP_MARKER);
            }
            bytes.extend_from_slice(&transmit.bytes);
            socket.send_to(&bytes, transmit.remote)?;
        }
        while let Some(event) = responder.poll_event() {
            match event {
                Event::IkeSaEstablished(_)
                | Event::IkeSaRekeyed(_)
                | Event::IkeSaDeleted(_)
                | Event::ChildSaRedundant(_) => {}
                Event::Log(log) => println!("{:?} {} {} {}", log.level, log.local, log.remote, log.message),
                Event::ChildSaEstablished(child) => println!(
                    "child {} in {:08x} out {:08x} {:?} {:?}",
                    child.tunnel, child.inbound.spi, child.outbound.spi, child.suite, child.encapsulation
                ),
                Event::ChildSaDeleted(child) => {
                    println!(
                        "child {} deleted in {:08x} out {:08x}",
                        child.tunnel, child.inbound_spi, child.outbound_spi
                    )
                }
            }
        }
    }
    Ok(())
}
