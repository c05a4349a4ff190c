//! INFORMATIONAL requests on an established IKE SA (RFC 7296 1.4):
//! ```text
//! HDR, SK {[N], [D], ...}  -->
//!                          <--  HDR, SK {[D]}
//! ```
//! An empty request is a liveness check, answered empty. A Delete of Child SAs names them by the
//! SPIs the peer receives on (our outbound SPIs); the answer deletes the other halves by ours, and
//! both leave the dataplane. A Delete of the IKE SA ends it and every Child SA it still has; one
//! that a rekey replaced has none left, since they moved to its successor.

use std::net::SocketAddr;

use super::{Entry, Event, IkeSa, LogLevel, Responder};
use crate::protected::Opened;
use crate::wire::{Delete, Header, Payload, ProtocolId};

impl Responder {
    pub(super) fn handle_informational(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        header: &Header,
        request: &Opened,
    ) {
        let spi_r = header.spi_r;
        let Some(Entry { sa: IkeSa::Established(sa), .. }) = self.sas.get_mut(&spi_r) else { return };
        let Some(payloads) = request.payloads() else { return };
        let deletes: Vec<&Delete> = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::Delete(d) => Some(d),
                _ => None,
            })
            .collect();

        if deletes.iter().any(|d| d.protocol == ProtocolId::IKE) {
            // The answer is protected by the IKE SA that ends with it (RFC 7296 1.4.1).
            let response = sa.respond(header, &[]);
            let info = sa.info(spi_r);
            self.send_response(spi_r, local, remote, response);
            let children = self.remove(spi_r);
            let line = format!(
                "IKE SA deleted by the peer for tunnel {}: {:016x}_i {:016x}_r, {} Child SAs with it",
                info.tunnel,
                info.spi_i,
                info.spi_r,
                children.len()
            );
            self.log(LogLevel::Info, local, remote, line);
            self.events.extend(children.into_iter().map(Event::ChildSaDeleted));
            self.events.push_back(Event::IkeSaDeleted(info));
            return;
        }

        let mut ours = Vec::new();
        let mut deleted = Vec::new();
        for spi in deletes.iter().filter(|d| d.protocol == ProtocolId::ESP).flat_map(|d| &d.spis) {
            // SPIs we do not know are ignored (RFC 7296 3.11): the Child SA may be gone already.
            let Some(at) = sa.children.iter().position(|c| c.outbound_spi == *spi) else { continue };
            let child = sa.children.remove(at);
            ours.push(child.inbound_spi);
            deleted.push(child.ended(&sa.tunnel, sa.local));
        }
        let answer = if ours.is_empty() {
            Vec::new()
        } else {
            vec![Payload::Delete(Delete { protocol: ProtocolId::ESP, spis: ours })]
        };
        let response = sa.respond(header, &answer);
        self.send_response(spi_r, local, remote, response);
        for child in deleted {
            let line = format!(
                "Child SA deleted by the peer for tunnel {}: SPIs in {:08x} out {:08x}",
                child.tunnel, child.inbound_spi, child.outbound_spi
            );
            self.child_ended(local, remote, child, line);
        }
    }
}
