//! The safe layer against a real DPDK virtual device (net_null): EAL init, a pool, a port with a
//! queue, a burst in and out, mbuf headroom operations, runs sent from a batch, and a job
//! launched on a worker lcore. One test function: the EAL initialises once per process.

use dpdk_bindings::{Eal, MbufBatch, Mempool, Port, PortConfig, BURST};

#[test]
fn eal_pool_port_burst_and_launch() {
    let eal = Eal::init(&[
        "-l",
        "0,1",
        "--no-pci",
        "--in-memory",
        "--no-telemetry",
        "--log-level=lib.eal:error",
        "--vdev",
        "net_null0,size=100",
    ])
    .expect("EAL init (hugepages reserved by scripts/setup.sh)");
    assert!(Eal::version().starts_with("DPDK 22.11"), "{}", Eal::version());
    // A second init returns the first EAL instead of failing.
    assert!(Eal::init(&["--bogus"]).is_ok());

    let pool = Mempool::new(eal, "test_pool", 4095, 256, 2048 + 128).expect("mempool");
    let port = Port::by_name(eal, "net_null0").expect("port by name");
    assert!(Port::by_name(eal, "net_nothing9").is_err());
    port.configure(&PortConfig::default(), &pool).expect("configure");
    port.start().expect("start");

    let mut batch = MbufBatch::new();
    let n = port.rx_burst(0, &mut batch);
    assert_eq!(n, BURST);
    for m in batch.iter_mut() {
        assert_eq!(m.len(), 100);
        assert!(m.is_contiguous());
        let head = m.headroom();
        assert!(m.prepend(24));
        assert_eq!(m.len(), 124);
        assert_eq!(m.headroom(), head - 24);
        m.data_mut()[0] = 0xab;
        assert_eq!(m.data()[0], 0xab);
        assert!(m.adj(24));
        assert!(!m.adj(10_000));
        assert!(m.trim(40));
        assert_eq!(m.len(), 60);
        assert!(!m.prepend(100_000));
    }
    let free_before = pool.available();
    let sent = port.tx_burst(0, &mut batch);
    assert_eq!(sent, BURST);
    assert!(batch.is_empty());
    let stats = port.stats();
    assert_eq!(stats.tx_packets, BURST as u64);
    // net_null frees what it "sends": the pool gets the mbufs back.
    assert!(pool.available() >= free_before);

    // Taken one by one in two passes, then cleared: each mbuf is taken once, the rest freed.
    assert_eq!(port.rx_burst(0, &mut batch), BURST);
    let before = pool.available();
    let (third, fifth) = (batch.take(3).expect("taken"), batch.take(5).expect("taken"));
    assert!(batch.take(3).is_none(), "taken already");
    assert!(batch.take(BURST).is_none(), "past the end");
    assert_eq!(batch.len(), BURST, "taking leaves the batch's length until it is cleared");
    batch.clear();
    assert!(batch.is_empty());
    assert_eq!(pool.available(), before + BURST as u32 - 2, "the ones not taken are freed");
    drop((third, fifth));
    assert_eq!(pool.available(), before + BURST as u32);

    // Reframed: the bytes kept from `start` on (into the headroom where negative), in one step;
    // a frame that cannot be made leaves the mbuf as it was.
    assert_eq!(port.rx_burst(0, &mut batch), BURST);
    for m in batch.iter_mut() {
        m.data_mut().iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        let head = m.headroom();
        assert!(m.reframe(24, 50));
        assert_eq!((m.len(), m.pkt_len(), m.headroom()), (50, 50, head + 24));
        assert_eq!(m.data()[0], 24);
        assert!(m.reframe(-30, 60));
        assert_eq!((m.len(), m.pkt_len(), m.headroom()), (60, 60, head - 6));
        assert_eq!(m.data()[30], 24);
        assert!(!m.reframe(-(head as isize), 60), "more headroom than there is");
        assert!(!m.reframe(10, 51), "past the end");
        assert!(!m.reframe(61, 0), "past the end");
        assert!(!m.reframe(isize::MAX, 0) && !m.reframe(isize::MIN, 0));
        assert_eq!((m.len(), m.headroom(), m.data()[30]), (60, head - 6, 24), "unchanged");
        assert!(m.reframe(60, 0) && m.is_empty());
    }
    batch.clear();

    // Reframed with bytes of headroom in front of the new frame: the slice begins that many
    // before it; where the headroom would be shorter, nothing changes.
    assert_eq!(port.rx_burst(0, &mut batch), BURST);
    for m in batch.iter_mut() {
        m.data_mut().iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        let head = m.headroom();
        let bytes = m.reframe_behind_mut(24, 30, 2).expect("reframed");
        assert_eq!((bytes.len(), bytes[0], bytes[2]), (32, 22, 24));
        bytes[0] = 0xee;
        assert_eq!((m.len(), m.pkt_len(), m.headroom(), m.data()[0]), (30, 30, head + 24, 24));
        assert!(m.reframe_behind_mut(-(head as isize) - 23, 40, 2).is_none(), "headroom left too short");
        assert!(m.reframe_behind_mut(1, 30, 0).is_none(), "past the end");
        assert_eq!((m.len(), m.headroom(), m.data()[0]), (30, head + 24, 24), "unchanged");
        let bytes = m.reframe_behind_mut(-(head as isize) - 22, 40, 2).expect("to the headroom's 2 last bytes");
        assert_eq!((bytes.len(), m.headroom()), (42, 2));
    }
    batch.clear();

    // A run while accepted, in order, sent straight from the batch's slots: those sent are left
    // empty, the one declined stays, and nothing is freed on the way but by the sink.
    assert_eq!(port.rx_burst(0, &mut batch), BURST);
    batch.iter_mut().enumerate().for_each(|(i, m)| m.data_mut()[0] = i as u8);
    let before = pool.available();
    let mut shown = Vec::new();
    let run = batch.run_while(2, |m| {
        shown.push(m.data()[0]);
        m.data()[0] != 7
    });
    assert_eq!(run.len(), 5);
    let sent_before = port.stats().tx_packets;
    assert_eq!(port.tx_burst_run(0, run), 5);
    assert_eq!(port.stats().tx_packets, sent_before + 5);
    assert_eq!(shown, vec![2, 3, 4, 5, 6, 7], "the declined one is shown too");
    assert!(batch.get(2).is_none() && batch.get(6).is_none(), "sent slots are empty");
    assert_eq!(batch.get(7).map(|m| m.data()[0]), Some(7), "the declined one stays");
    assert_eq!(batch.get(1).map(|m| m.data()[0]), Some(1), "the ones before stay");
    assert!(batch.run_while(2, |_| true).is_empty(), "an empty slot ends the run");
    assert!(batch.run_while(BURST, |_| true).is_empty(), "past the end");
    assert_eq!(port.tx_burst_run(0, batch.run_while(BURST, |_| true)), 0, "an empty run sends nothing");
    // A run dropped unsent leaves its mbufs where they were.
    assert_eq!(batch.run_while(7, |_| true).len(), BURST - 7);
    assert_eq!(batch.get(BURST - 1).map(|m| m.data()[0]), Some(BURST as u8 - 1));
    assert_eq!(pool.available(), before + 5, "the sink freed the five sent");
    batch.clear();
    assert_eq!(pool.available(), before + BURST as u32, "each freed once");

    // Dropping an mbuf returns it to its pool.
    let before = pool.available();
    let m = pool.alloc().expect("alloc");
    assert_eq!(pool.available(), before - 1);
    drop(m);
    assert_eq!(pool.available(), before);

    // A job on the worker lcore runs on that lcore and returns its value.
    let workers = eal.worker_lcores();
    assert_eq!(workers, vec![1]);
    eal.launch(1, || dpdk_bindings::lcore_id() as i32 + 40).expect("launch");
    assert_eq!(eal.wait(1), 41);
    assert!(dpdk_bindings::tsc_hz() > 0);
    port.close().expect("close");
}
