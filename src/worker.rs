//! A poll-mode worker: polls its own RX queue of every port, runs each burst through the pipeline,
//! and sends on its own TX queue of each port. It owns its tables, neighbors and counters; the
//! control thread changes them only through the worker's update ring, which the worker drains
//! between bursts, so the fast path takes no lock and shares no cache line it writes.

use std::sync::Arc;

use dpdk_bindings::{Mbuf, MbufBatch, Mempool, Port};

use crate::esp::sa::SaUpdate;
use crate::pipeline::esp::{self, EspJob};
use crate::pipeline::express::{self, train::AnyTrain, train::Train, L2Exit, Lines};
use crate::pipeline::{self, Arrival, Context, Counters, DropReason, Local, PuntReason, RateLimiter, Verdict};
use crate::tables::{Egress, Tables, TunnelId};

/// A change for a worker, sent through its update ring.
#[derive(Debug)]
pub enum Update {
    /// New tables (a reload): swapped in whole between two bursts.
    Tables(Arc<Tables>),
    /// A neighbor's MAC address learned or changed.
    Neighbor { port: u16, addr: std::net::IpAddr, mac: [u8; 6] },
    /// A frame the slow path sends through this worker's TX queue, on ports that have no TX queue
    /// to spare for the slow path (net_af_packet has one per RX queue).
    Transmit { port: u16, mbuf: Mbuf },
    /// An SA added, replaced or deleted.
    Sa(SaUpdate),
}

/// A packet handed to the slow path. It starts at its L3 header, but for `Resolve`, where it is
/// complete with its L2 header save the destination MAC.
#[derive(Debug)]
pub struct Punted {
    pub mbuf: Mbuf,
    pub reason: PuntReason,
    pub port: u16,
    pub egress: Option<Egress>,
}

/// The rings a worker is joined to the control thread and slow path by.
#[derive(Debug)]
pub struct WorkerLinks {
    pub updates: rtrb::Consumer<Update>,
    pub punts: rtrb::Producer<Punted>,
    pub counters: triple_buffer::Input<Counters>,
}

/// The control thread's ends of a worker's rings.
#[derive(Debug)]
pub struct WorkerHandle {
    pub updates: rtrb::Producer<Update>,
    pub punts: rtrb::Consumer<Punted>,
    pub counters: triple_buffer::Output<Counters>,
}

/// Make the rings joining one worker to the control thread.
pub fn links(slots: usize) -> (WorkerLinks, WorkerHandle) {
    let (up_tx, up_rx) = rtrb::RingBuffer::new(1024);
    let (punt_tx, punt_rx) = rtrb::RingBuffer::new(1024);
    let (c_in, c_out) = triple_buffer::triple_buffer(&Counters::new(slots));
    (
        WorkerLinks { updates: up_rx, punts: punt_tx, counters: c_in },
        WorkerHandle { updates: up_tx, punts: punt_rx, counters: c_out },
    )
}

/// One worker's state.
#[derive(Debug)]
pub struct Worker {
    /// The worker's RX and TX queue index on every port.
    queue: u16,
    ports: Vec<Port>,
    pool: Mempool,
    tables: Arc<Tables>,
    /// Neighbors, SAs, counters, ICMP limit: what the pipeline changes.
    local: Local,
    /// ESP jobs of the current burst: (packet, port it came from, job).
    crypto: Vec<(Mbuf, u16, EspJob)>,
    /// The sequence number of each job of the batch being run (reused room).
    crypto_seqs: Vec<Option<u64>>,
    links: WorkerLinks,
    rx: MbufBatch,
    tx: Vec<MbufBatch>,
    polls: u64,
    /// When the per-SA counters were last refreshed for the control thread (TSC).
    sas_reported_at: u64,
}

/// A worker's state borrowed in parts ([`Worker::split`]).
struct Split<'a> {
    context: Context<'a>,
    /// The burst received.
    rx: &'a mut MbufBatch,
    /// A batch to send for each port.
    tx: &'a mut [MbufBatch],
    /// The burst's ESP jobs: (packet, port it came from, job).
    crypto: &'a mut Vec<(Mbuf, u16, EspJob)>,
    /// The ports, and the worker's queue on each: a train sends on them itself.
    ports: &'a [Port],
    queue: u16,
}

/// How often a worker refreshes its per-SA counters for the control thread, in milliseconds.
/// Walking every SA is the one part of publishing whose cost grows with the SAs installed (about
/// 2 ms for 100 000, whose structs are cold): done on every publish, it took 15% of a worker's
/// time with 100 000 SAs.
const SA_REPORT_EVERY_MS: u64 = 250;

/// How often (in polls) a worker publishes its counters.
const PUBLISH_EVERY: u64 = 1024;

impl Worker {
    /// A worker on queue `queue` of every port.
    pub fn new(
        queue: u16,
        ports: Vec<Port>,
        pool: Mempool,
        tables: Arc<Tables>,
        icmp_per_second: u32,
        links: WorkerLinks,
    ) -> Worker {
        let slots = tables.slot_count();
        let limiter = RateLimiter::new(icmp_per_second, dpdk_bindings::tsc_hz());
        let mut local = Local::new(slots, limiter, (queue << 12).wrapping_mul(7));
        for (port, addr, mac) in &tables.static_neighbors {
            local.neighbors.set(*port, *addr, *mac);
        }
        let tx = ports.iter().map(|_| MbufBatch::new()).collect();
        local.trains = vec![None; ports.len()];
        Worker {
            queue,
            ports,
            pool,
            tables,
            local,
            crypto: Vec::with_capacity(2 * dpdk_bindings::BURST),
            crypto_seqs: Vec::with_capacity(2 * dpdk_bindings::BURST),
            links,
            rx: MbufBatch::new(),
            tx,
            polls: 0,
            sas_reported_at: 0,
        }
    }

    /// The pipeline's view of this worker's state at time `now`.
    #[inline]
    fn context(&mut self, now: u64) -> Context<'_> {
        self.split(now).context
    }

    /// The pipeline's view of this worker's state at time `now`, beside the batches it leaves
    /// out, borrowed apart so that a run of packets can use them all.
    #[inline(always)]
    fn split(&mut self, now: u64) -> Split<'_> {
        let Worker { tables, local, rx, tx, crypto, ports, queue, .. } = self;
        Split { context: Context::new(tables, local, now), rx, tx, crypto, ports, queue: *queue }
    }

    /// Poll every port once: receive a burst from each, process, send. Returns packets received.
    /// Inlined into the worker's loop, so that what a poll sets up (the places of the worker's
    /// parts that the burst's loop reads) is set up once for the loop, with no call, frame and
    /// saved registers per poll: 0.8-0.9 instructions a packet fewer on the benchmark's
    /// captures, 4-6 on the alternating ones, whose express lane the poll holds.
    #[inline(always)]
    pub fn poll(&mut self) -> usize {
        let now = dpdk_bindings::tsc();
        let mut received = 0;
        for p in 0..self.ports.len() {
            let n = self.ports[p].rx_burst(self.queue, &mut self.rx);
            if n == 0 {
                continue;
            }
            received += n;
            if self.local.sas.prefetch_worthwhile() {
                esp::look_ahead(self.rx.iter_mut().map(|m| m.data()), &self.local.sas);
            }
            self.local.counters.rx_packets += n as u64;
            self.burst(p as u16, now);
            if !self.crypto.is_empty() {
                self.run_crypto(now);
            }
        }
        // The test for an empty ring inline: the call to find nothing cost some 29 instructions
        // a poll.
        if !self.links.updates.is_empty() {
            self.apply_updates();
        }
        self.flush();
        self.polls += 1;
        if self.polls % PUBLISH_EVERY == 0 {
            self.publish();
        }
        received
    }

    /// Run the burst received from `port` through the pipeline. The common verdicts (sent with
    /// room in the port's batch, dropped, a crypto job) are acted on here, with one context for
    /// the whole run of packets: made for each packet, it cost more instructions than a packet's
    /// checksum checks. Any other verdict ends the run: it is dispatched with the whole worker
    /// at hand, in order, and a new run takes the rest of the burst.
    #[inline(always)]
    fn burst(&mut self, port: u16, now: u64) {
        let count = self.rx.len();
        // A burst whose first two packets are the train the port's last boarding made rides it
        // from the start, for as long as its packets come; the rest make a run as any other,
        // which boards a train from its start. (A burst of two tunnels' halves rides two trains:
        // 175.6 -> 157.4 instructions a packet.)
        let mut next = self.ride_kept(port);
        if next == count {
            self.rx.clear_after(next);
            return;
        }
        loop {
            let Split { context: mut cx, rx, tx, crypto, ports, queue: q } = self.split(now);
            let arrival = pipeline::Arrival::on(cx.tables, port);
            // A run whose first two packets are one train's rides it from the start, for as
            // long as its packets come; the rest go the express lane's way.
            let out = Outputs { batches: tx, ports, queue: q };
            next = board_and_ride(rx, next, out, arrival, cx.tables, cx.gateway_v4(), cx.local);
            let mut other = None;
            while next < count {
                let taken = rx.take(next);
                next += 1;
                let Some(mut mbuf) = taken else { continue };
                cx.local.counters.rx_bytes += mbuf.len() as u64;
                if !mbuf.is_contiguous() {
                    cx.local.counters.drops[DropReason::MultiSegment.index()] += 1;
                    continue;
                }
                match pipeline::process(&mut mbuf, arrival, &mut cx) {
                    Verdict::Forward(out) => {
                        if let Err(mbuf) = queue(tx, &mut cx.local.counters, mbuf, out) {
                            other = Some((mbuf, Verdict::Forward(out)));
                            break;
                        }
                    }
                    Verdict::Drop(_) => {}
                    Verdict::Crypto(job) => crypto.push((mbuf, port, job)),
                    verdict => {
                        other = Some((mbuf, verdict));
                        break;
                    }
                }
            }
            match other {
                Some((mbuf, verdict)) => self.dispatch(mbuf, port, verdict, now),
                None => break,
            }
        }
        // Every slot up to `next` was taken.
        self.rx.clear_after(next);
    }

    /// Ride the train kept for `port` from the burst's first packet, if its first two are the
    /// train's: gives the index of the first packet left (0 for none taken). Out of line, so
    /// that the burst's loop holds none of the trains' code.
    #[inline(never)]
    fn ride_kept(&mut self, port: u16) -> usize {
        let Worker { tables, local, rx, tx, ports, queue, .. } = self;
        // Borrowed apart from what the ride counts in: copied out of the worker's state, the
        // train cost some 16 instructions a burst (decap 114.1 -> 113.6 a packet).
        let Local { trains, counters, ip_id, .. } = local;
        let Some(Some(train)) = trains.get(usize::from(port)) else { return 0 };
        // The first is tested as the ride takes it.
        if !rx.get(1).is_some_and(|second| train.boards(second.data(), tables)) {
            return 0;
        }
        ride_any(train, rx, 0, Outputs { batches: tx, ports, queue: *queue }, tables, counters, ip_id)
    }

    /// Act on a verdict. The common ones are handled inline: passed out of line, the verdict
    /// went through memory written in parts and read back whole, a store-forwarding stall on
    /// every packet.
    #[inline(always)]
    fn dispatch(&mut self, mbuf: Mbuf, port: u16, verdict: Verdict, now: u64) {
        match verdict {
            Verdict::Forward(out) => self.send(mbuf, out),
            Verdict::Drop(_) => {}
            Verdict::Crypto(job) => self.crypto.push((mbuf, port, job)),
            Verdict::Punt(reason) => self.punt(mbuf, port, reason),
            Verdict::Fragment(tunnel) => self.fragment(mbuf, port, tunnel, now),
        }
    }

    /// Hand a packet to the slow path (out of the packet loop's way).
    #[cold]
    #[inline(never)]
    fn punt(&mut self, mbuf: Mbuf, port: u16, reason: PuntReason) {
        let egress = if reason == PuntReason::Resolve { self.local.resolve.take() } else { None };
        if let Err(rtrb::PushError::Full(p)) = self.links.punts.push(Punted { mbuf, reason, port, egress }) {
            drop(p);
            self.local.counters.drops[DropReason::SlowPathFull.index()] += 1;
        }
    }

    /// Split an IPv4 packet too big for a tunnel and send the fragments into it (out of the
    /// packet loop's way).
    #[cold]
    #[inline(never)]
    fn fragment(&mut self, mbuf: Mbuf, port: u16, tunnel: TunnelId, now: u64) {
        let mtu = usize::from(self.tables.tunnel(tunnel).mtu);
        let pool = self.pool;
        let mut fragments: [Option<Mbuf>; 8] = Default::default();
        let mut n = 0;
        let made = pipeline::fragment::fragment_v4(
            &mbuf,
            mtu,
            || pool.alloc(),
            |f| {
                if n < fragments.len() {
                    fragments[n] = Some(f);
                    n += 1;
                }
            },
        );
        drop(mbuf);
        match made {
            Ok(count) if count <= fragments.len() => {
                self.local.counters.fragments += count as u64;
                for mut f in fragments.into_iter().flatten() {
                    let v = pipeline::tunnel_out(&mut f, tunnel, 0x0800, &mut self.context(now));
                    self.local.counters.count(&v);
                    self.dispatch(f, port, v, now);
                }
            }
            Ok(_) => self.local.counters.drops[DropReason::TooBig.index()] += 1,
            Err(reason) => self.local.counters.drops[reason.index()] += 1,
        }
    }

    /// Do the burst's ESP crypto, SA by SA: the jobs are ordered by SA (stable, so each SA's
    /// packets keep their order), each outbound SA's sequence numbers are reserved at once for
    /// its whole group, and each packet's final verdict is dispatched. Decryption can route a
    /// packet into another IPsec tunnel: those jobs make a second round.
    fn run_crypto(&mut self, now: u64) {
        for _ in 0..2 {
            if self.crypto.is_empty() {
                return;
            }
            let mut jobs = std::mem::take(&mut self.crypto);
            // Encryption jobs are grouped by SA, so that each group reserves its sequence numbers
            // at once; decryption jobs (all equal to this key) keep their order, unsorted, which
            // with many SAs in use (each packet another SA) saves a sort of every burst.
            if !jobs.is_sorted_by_key(|j| j.2.outbound()) {
                jobs.sort_by_key(|j| j.2.outbound());
            }
            // One sequence number reservation per run of jobs on the same outbound SA.
            let mut seqs = std::mem::take(&mut self.crypto_seqs);
            let mut i = 0;
            while i < jobs.len() {
                let Some(sa) = jobs[i].2.outbound() else {
                    seqs.push(None);
                    i += 1;
                    continue;
                };
                let run = jobs[i..].iter().take_while(|j| j.2.outbound() == Some(sa)).count();
                let first = self.local.sas.outbound(sa.0, sa.1).and_then(|s| s.reserve(run as u64));
                seqs.extend((0..run as u64).map(|k| first.map(|f| f + k)));
                i += run;
            }
            // The jobs of one SA go to one router: its egress and MAC are looked up once.
            let mut exit = esp::RouterExit::default();
            let mut pending = jobs.drain(..).zip(seqs.drain(..));
            // As for a received burst: one context for a run of jobs, the common verdicts acted
            // on here, any other ending the run to be dispatched in order.
            loop {
                let Split { context: mut cx, tx, .. } = self.split(now);
                let mut other = None;
                for ((mut mbuf, port, job), seq) in pending.by_ref() {
                    let verdict = match job {
                        EspJob::Encrypt { slot, sa, next_header } => {
                            esp::encrypt(&mut mbuf, slot, sa, next_header, seq, &mut exit, &mut cx)
                        }
                        EspJob::Decrypt { sa, esp } => esp::decrypt(&mut mbuf, sa, usize::from(esp), &mut cx),
                    };
                    cx.local.counters.count(&verdict);
                    match verdict {
                        Verdict::Forward(out) => {
                            if let Err(mbuf) = queue(tx, &mut cx.local.counters, mbuf, out) {
                                other = Some((mbuf, port, Verdict::Forward(out)));
                                break;
                            }
                        }
                        Verdict::Drop(_) => {}
                        verdict => {
                            other = Some((mbuf, port, verdict));
                            break;
                        }
                    }
                }
                match other {
                    Some((mbuf, port, verdict)) => self.dispatch(mbuf, port, verdict, now),
                    None => break,
                }
            }
            drop(pending);
            self.crypto_seqs = seqs;
            // Keep the (empty) vector's room when no new job came in.
            if self.crypto.is_empty() {
                self.crypto = jobs;
            }
        }
        // A third round cannot come from the pipeline; count anything left as a drop.
        for (m, _, _) in self.crypto.drain(..) {
            drop(m);
            self.local.counters.drops[DropReason::EspNoSa.index()] += 1;
        }
    }

    #[inline(always)]
    fn send(&mut self, mbuf: Mbuf, port: u16) {
        let p = port as usize;
        if p >= self.tx.len() {
            self.local.counters.drops[DropReason::NoEgress.index()] += 1;
            return;
        }
        if self.tx[p].is_full() {
            self.flush_port(p);
        }
        if queue(&mut self.tx, &mut self.local.counters, mbuf, port).is_err() {
            self.local.counters.drops[DropReason::TxFull.index()] += 1;
        }
    }

    #[inline(always)]
    fn flush_port(&mut self, p: usize) {
        send_batch(&self.ports[p], self.queue, &mut self.tx[p], &mut self.local.counters);
    }

    fn flush(&mut self) {
        for p in 0..self.tx.len() {
            self.flush_port(p);
        }
    }

    /// Apply what the control thread sent (between bursts).
    #[inline(never)]
    fn apply_updates(&mut self) {
        let mut sa_changed = false;
        while let Ok(update) = self.links.updates.pop() {
            match update {
                Update::Tables(tables) => {
                    self.local.trains.fill(None);
                    for (port, addr, mac) in &tables.static_neighbors {
                        self.local.neighbors.set(*port, *addr, *mac);
                    }
                    self.local.counters.ensure_slots(tables.slot_count());
                    self.tables = tables;
                }
                Update::Neighbor { port, addr, mac } => {
                    self.local.trains.fill(None);
                    self.local.neighbors.set(port, addr, mac);
                }
                // The slow path sends only on ports it knows (and counts what it cannot send);
                // the guard keeps a bad index from panicking here.
                Update::Transmit { port, mbuf } if usize::from(port) < self.tx.len() => self.send(mbuf, port),
                Update::Transmit { .. } => self.local.counters.drops[DropReason::NoEgress.index()] += 1,
                Update::Sa(u) => {
                    self.local.sas.apply(u);
                    self.local.counters.sa_updates += 1;
                    sa_changed = true;
                }
            }
        }
        // Published at once, so that whoever installed an SA learns soon that it is active here.
        if sa_changed {
            self.publish();
        }
    }

    /// Make the counters visible to the control thread.
    pub fn publish(&mut self) {
        let now = dpdk_bindings::tsc();
        if now.wrapping_sub(self.sas_reported_at) >= dpdk_bindings::tsc_hz() / 1000 * SA_REPORT_EVERY_MS {
            self.report_sas(now);
        }
        self.links.counters.input_buffer_mut().clone_from(&self.local.counters);
        self.links.counters.publish();
    }

    /// Send what is pending and publish the counters (before stopping).
    pub fn finish(&mut self) {
        self.apply_updates();
        self.flush();
        self.report_sas(dpdk_bindings::tsc());
        self.publish();
    }

    /// Refresh the per-SA counters. A new vector each time: the control thread may still hold
    /// the last one.
    fn report_sas(&mut self, now: u64) {
        let mut reports = Vec::with_capacity(self.local.counters.sas.len());
        self.local.sas.reports_into(&mut reports);
        self.local.counters.sas = Arc::new(reports);
        self.sas_reported_at = now;
    }
}

/// What a train's packets leave by: the TX batch of each port, the ports, and the worker's queue
/// on each.
struct Outputs<'a> {
    batches: &'a mut [MbufBatch],
    ports: &'a [Port],
    queue: u16,
}

/// Take the received packets from `next` on through the train they board
/// ([`express::boarding`]), if any: [`ride`]; that train is kept for the port's bursts to come
/// ([`Local::trains`]). Out of line, so that the burst's loop holds none of the trains' code.
#[inline(never)]
fn board_and_ride(
    rx: &mut MbufBatch,
    next: usize,
    out: Outputs<'_>,
    arrival: Arrival,
    tables: &Tables,
    gateway_v4: Option<L2Exit>,
    local: &mut Local,
) -> usize {
    let (Some(first), Some(second)) = (rx.get(next), rx.get(next + 1)) else { return next };
    let lines = Lines { tables, neighbors: &local.neighbors, gateway_v4 };
    let Some(train) = express::boarding(first.data(), second.data(), arrival, &lines) else { return next };
    if let Some(kept) = local.trains.get_mut(usize::from(arrival.port)) {
        *kept = Some(train);
    }
    ride_any(&train, rx, next, out, tables, &mut local.counters, &mut local.ip_id)
}

/// [`ride`] for a train of either kind.
#[inline(always)]
fn ride_any(
    train: &AnyTrain,
    rx: &mut MbufBatch,
    next: usize,
    mut out: Outputs<'_>,
    tables: &Tables,
    counters: &mut Counters,
    ip_id: &mut u16,
) -> usize {
    match train {
        AnyTrain::Decap(train) => ride(train, rx, next, &mut out, tables, counters, ip_id),
        AnyTrain::Encap(train) => ride(train, rx, next, &mut out, tables, counters, ip_id),
    }
}

/// Take the received packets from `next` on through `train` for as long as they are its
/// ([`Train::ride`]), counted as the burst's loop would count them; gives the index of the first
/// packet left to that loop. They are sent at once, straight from the burst's slots
/// ([`Port::tx_burst_run`]), after whatever the port's TX batch held (nearly always nothing: a
/// train boards at a burst's start): moved to the batch, they cost a load and a store each, and
/// the batch's slots were emptied again when it was sent. Out of line, so that the train's few
/// values stay in registers: in the burst's loop, with the whole pipeline around, they were on
/// the stack.
#[inline(never)]
fn ride<T: Train>(
    train: &T,
    rx: &mut MbufBatch,
    next: usize,
    out: &mut Outputs<'_>,
    tables: &Tables,
    counters: &mut Counters,
    worker_ip_id: &mut u16,
) -> usize {
    let p = usize::from(train.port());
    if p >= out.batches.len() || p >= out.ports.len() {
        return next;
    }
    // Counted here, and added to the counters once; the IP identification kept here too.
    // The tunnel's bytes in the low 32 bits of one sum, and where the train sums them, the frames'
    // lengths in the high 32: one register and one addition a packet for both. A run is at most
    // a burst of packets of at most 0xffff bytes each, whose sums fit in 32 bits.
    const _: () = assert!(dpdk_bindings::BURST * 0xffff < 1 << 32);
    // The identification a packet's ride starts from is the worker's and the packets taken
    // before it, the same count as the run's own: carried from packet to packet, it took a
    // register the loop had none of, and went through the stack.
    let (mut sums, first_ip_id, mut taken) = (0u64, *worker_ip_id, 0usize);
    let routes = tables.routes.v4();
    let run = rx.run_while(next, |mbuf| {
        let len = mbuf.len();
        if !mbuf.is_contiguous() {
            return false;
        }
        let mut ip_id = first_ip_id.wrapping_add(taken as u16);
        let Some(inner) = train.ride(mbuf, &mut ip_id, routes) else { return false };
        taken += 1;
        let received = if T::RECEIVED_FROM_BYTES { 0 } else { (len as u64) << 32 };
        sums += received | inner as u64;
        true
    });
    let (received, bytes) = (sums >> 32, sums & 0xffff_ffff);
    let moved = run.len();
    *worker_ip_id = first_ip_id.wrapping_add(if T::TAKES_IP_ID { moved as u16 } else { 0 });
    if moved == 0 {
        return next;
    }
    // The port's and its batch's places read after the loop: kept through it, they took
    // registers that the packets' checks need.
    let (batch, port) = (&mut out.batches[p], &out.ports[p]);
    // What is queued for the port goes first (as the worker's flush sends it).
    send_batch(port, out.queue, batch, counters);
    let sent = port.tx_burst_run(out.queue, run);
    counters.tx_packets += sent as u64;
    // What the queue refused is dropped, as a batch's refused packets are.
    let mut refused_bytes = 0;
    for i in next + sent..next + moved {
        if let Some(m) = rx.take(i) {
            refused_bytes += m.len() as u64;
            counters.drops[DropReason::TxFull.index()] += 1;
        }
    }
    let packets = moved as u64;
    counters.rx_bytes += if T::RECEIVED_FROM_BYTES { train.received_bytes(packets, bytes) } else { received };
    // The bytes of those refused are among these.
    counters.tx_bytes += train.frames_bytes(packets, bytes) - refused_bytes;
    train.count(counters, packets, bytes);
    next + moved
}

/// Send `batch` on `port`'s TX queue `queue`, if it holds anything. The test for an empty batch
/// is inline, the sending out of line: a poll makes the test for every port and a train's ride
/// for its own (nearly always empty), and a call each to find nothing cost more than a packet's
/// TTL decrement (a ride's, some 19 instructions: 0.6 a packet).
#[inline(always)]
fn send_batch(port: &Port, queue: u16, batch: &mut MbufBatch, counters: &mut Counters) {
    if !batch.is_empty() {
        send_queued(port, queue, batch, counters);
    }
}

/// [`send_batch`] of a batch that holds packets. Packets are counted here, a batch at a time;
/// bytes as each is queued (the queue frees what it sends).
#[inline]
fn send_queued(port: &Port, queue: u16, batch: &mut MbufBatch, counters: &mut Counters) {
    let queued = batch.len() as u64;
    port.tx_burst(queue, batch);
    let refused = batch.len() as u64;
    counters.tx_packets += queued - refused;
    if refused > 0 {
        // What the queue refused is dropped: holding it would stall the whole worker.
        let refused_bytes: u64 = batch.iter_mut().map(|m| m.len() as u64).sum();
        counters.tx_bytes -= refused_bytes;
        counters.drops[DropReason::TxFull.index()] += refused;
        batch.drain().for_each(drop);
    }
}

/// Put a packet in port `out`'s TX batch, its bytes counted as sent (the packet itself is counted
/// when the batch is sent); gives it back, uncounted, where the batch is full (or there is no
/// such port), for [`Worker::dispatch`] to flush or drop.
#[inline(always)]
fn queue(tx: &mut [MbufBatch], counters: &mut Counters, mbuf: Mbuf, out: u16) -> Result<(), Mbuf> {
    let Some(batch) = tx.get_mut(usize::from(out)) else {
        return Err(mbuf);
    };
    let bytes = mbuf.len() as u64;
    batch.push(mbuf)?;
    // Its packet is counted when the batch is sent.
    counters.tx_bytes += bytes;
    Ok(())
}
