//! The vpcd transport over real loopback sockets, with a small test card.
//!
//! The test plays vpcd's part: in reverse mode it connects to the card's listener, in the
//! default mode it listens and the card connects.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use virtual_se::transport::{
    Endpoint, Event, ResponseLoss, ServeOptions, Server, ShutdownHandle, VirtualCard,
};

const ATR: [u8; 12] = [
    0x3B, 0x88, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// What the test card has seen (shared with the test).
#[derive(Debug, Default)]
struct Log {
    powered: bool,
    power_ons: u32,
    power_offs: u32,
    resets: u32,
    /// Persistent counter: incremented by INS D0 ("write"), survives power cycles.
    counter: u32,
    /// Transient: cleared by power off/reset.
    selected: bool,
    shutdowns: u32,
}

/// A tiny card: INS A4 selects (transient), INS D0 increments a persistent counter and commits,
/// INS B0 reads the counter, anything else answers 6D00.
struct TestCard {
    log: Arc<Mutex<Log>>,
    committed: bool,
}

impl VirtualCard for TestCard {
    fn atr(&self) -> Vec<u8> {
        ATR.to_vec()
    }
    fn power_on(&mut self) {
        let mut l = self.log.lock().unwrap();
        l.powered = true;
        l.power_ons += 1;
    }
    fn power_off(&mut self) {
        let mut l = self.log.lock().unwrap();
        l.powered = false;
        l.selected = false;
        l.power_offs += 1;
    }
    fn reset(&mut self) {
        let mut l = self.log.lock().unwrap();
        l.selected = false;
        l.resets += 1;
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        let mut l = self.log.lock().unwrap();
        self.committed = false;
        match apdu.get(1) {
            Some(0xA4) => {
                l.selected = true;
                vec![0x90, 0x00]
            }
            Some(0xD0) => {
                l.counter += 1;
                self.committed = true;
                vec![0x90, 0x00]
            }
            Some(0xB0) => {
                let mut r = l.counter.to_be_bytes().to_vec();
                r.extend([0x90, 0x00]);
                r
            }
            _ => vec![0x6D, 0x00],
        }
    }
    fn shutdown(&mut self) -> Result<(), virtual_se::Error> {
        self.log.lock().unwrap().shutdowns += 1;
        Ok(())
    }
    fn last_apdu_committed(&self) -> bool {
        self.committed
    }
}

fn card() -> (Box<dyn VirtualCard>, Arc<Mutex<Log>>) {
    let log = Arc::new(Mutex::new(Log::default()));
    (
        Box::new(TestCard {
            log: log.clone(),
            committed: false,
        }),
        log,
    )
}

fn options() -> ServeOptions {
    ServeOptions {
        poll_interval: Duration::from_millis(20),
        reconnect_delay: Duration::from_millis(20),
        ..ServeOptions::default()
    }
}

/// vpcd's side of the wire.
struct Vpcd(TcpStream);

impl Vpcd {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Self(s)
    }
    fn send(&mut self, payload: &[u8]) {
        let mut frame = u16::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
        frame.extend_from_slice(payload);
        self.0.write_all(&frame).unwrap();
    }
    fn recv(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 2];
        self.0.read_exact(&mut len).ok()?;
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.0.read_exact(&mut payload).ok()?;
        Some(payload)
    }
    fn apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.send(apdu);
        self.recv().unwrap()
    }
}

fn wait_until(mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn reverse_mode_session() {
    let (card, log) = card();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let mut opts = options();
    opts.events = Some(Arc::new(move |e: &Event| {
        sink.lock().unwrap().push(e.clone())
    }));
    let shutdown = ShutdownHandle::new();
    let server = Server::spawn(
        Endpoint::Listen("127.0.0.1:0".parse().unwrap()),
        card,
        opts,
        shutdown.clone(),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();

    let mut vpcd = Vpcd::connect(addr);
    // The sequence vpcd uses: ATR polling, power on, APDUs, reset, power off.
    vpcd.send(&[0x04]);
    assert_eq!(vpcd.recv().unwrap(), ATR);
    vpcd.send(&[0x01]);
    assert_eq!(vpcd.apdu(&[0x00, 0xA4, 0x04, 0x00, 0x00]), [0x90, 0x00]);
    assert_eq!(vpcd.apdu(&[0x80, 0xD0, 0x00, 0x00]), [0x90, 0x00]);
    assert_eq!(
        vpcd.apdu(&[0x80, 0xB0, 0x00, 0x00, 0x04]),
        [0, 0, 0, 1, 0x90, 0x00]
    );
    assert_eq!(vpcd.apdu(&[0x80, 0x99, 0x00, 0x00]), [0x6D, 0x00]);
    assert!(log.lock().unwrap().selected);
    vpcd.send(&[0x02]);
    // An invalid frame in between is ignored and does not desynchronise the stream.
    vpcd.send(&[]);
    vpcd.send(&[0x03]);
    vpcd.send(&[0x04]);
    assert_eq!(vpcd.recv().unwrap(), ATR);
    {
        let l = log.lock().unwrap();
        assert_eq!(l.resets, 1);
        assert!(!l.selected, "reset clears transient state");
    }
    vpcd.send(&[0x00]);
    vpcd.send(&[0x04]);
    assert_eq!(vpcd.recv().unwrap(), ATR);
    assert!(!log.lock().unwrap().powered);

    // vpcd goes away and comes back (pcscd restart): the card is powered off, then served again.
    drop(vpcd);
    let mut vpcd = Vpcd::connect(addr);
    vpcd.send(&[0x01]);
    assert_eq!(
        vpcd.apdu(&[0x80, 0xB0, 0x00, 0x00, 0x04]),
        [0, 0, 0, 1, 0x90, 0x00]
    );

    shutdown.shutdown();
    let _card = server.wait().unwrap();
    let l = log.lock().unwrap();
    assert_eq!(l.shutdowns, 1);
    assert_eq!(l.power_ons, 2);
    assert!(l.power_offs >= 2);
    let events = events.lock().unwrap();
    assert!(matches!(events.first(), Some(Event::Listening(_))));
    assert!(events.iter().any(|e| matches!(e, Event::BadFrame(_))));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Apdu { sw: 0x6D00, .. }))
    );
}

#[test]
fn connect_mode_reconnects() {
    // The test is vpcd: it listens, the card connects (and reconnects after a drop).
    let vpcd_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = vpcd_listener.local_addr().unwrap().port();
    let (card, log) = card();
    let shutdown = ShutdownHandle::new();
    let server = Server::spawn(
        Endpoint::Connect(format!("127.0.0.1:{port}")),
        card,
        options(),
        shutdown.clone(),
    )
    .unwrap();
    for round in 1..=2u8 {
        let (stream, _) = vpcd_listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut vpcd = Vpcd(stream);
        vpcd.send(&[0x04]);
        assert_eq!(vpcd.recv().unwrap(), ATR);
        vpcd.send(&[0x01]);
        assert_eq!(vpcd.apdu(&[0x80, 0xD0, 0x00, 0x00]), [0x90, 0x00]);
        assert_eq!(
            vpcd.apdu(&[0x80, 0xB0, 0x00, 0x00, 0x04]),
            [0, 0, 0, round, 0x90, 0x00]
        );
    }
    shutdown.shutdown();
    server.wait().unwrap();
    assert_eq!(log.lock().unwrap().counter, 2);
}

#[test]
fn connect_mode_waits_for_vpcd_and_stops_on_shutdown() {
    // Nobody listens: the server retries until shut down, and stops promptly.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let (card, _log) = card();
    let shutdown = ShutdownHandle::new();
    let server = Server::spawn(
        Endpoint::Connect(format!("127.0.0.1:{port}")),
        card,
        options(),
        shutdown.clone(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!server.is_finished());
    let start = Instant::now();
    shutdown.shutdown();
    server.wait().unwrap();
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn response_lost_after_commit() {
    let (card, log) = card();
    let mut opts = options();
    opts.response_loss = Some(ResponseLoss { committed_apdu: 1 });
    let shutdown = ShutdownHandle::new();
    let server = Server::spawn(
        Endpoint::Listen("127.0.0.1:0".parse().unwrap()),
        card,
        opts,
        shutdown.clone(),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let mut vpcd = Vpcd::connect(addr);
    vpcd.send(&[0x01]);
    // Non-committing APDUs are not counted.
    assert_eq!(vpcd.apdu(&[0x00, 0xA4, 0x04, 0x00, 0x00]), [0x90, 0x00]);
    assert_eq!(vpcd.apdu(&[0x80, 0xD0, 0x00, 0x00]), [0x90, 0x00]);
    // The second committing APDU commits, but its response never arrives.
    vpcd.send(&[0x80, 0xD0, 0x00, 0x00]);
    assert_eq!(vpcd.recv(), None, "the connection drops without a response");
    wait_until(|| !log.lock().unwrap().powered);
    assert_eq!(log.lock().unwrap().counter, 2, "the write was committed");
    // The terminal reconnects and finds the committed state.
    let mut vpcd = Vpcd::connect(addr);
    vpcd.send(&[0x01]);
    assert_eq!(
        vpcd.apdu(&[0x80, 0xB0, 0x00, 0x00, 0x04]),
        [0, 0, 0, 2, 0x90, 0x00]
    );
    assert_eq!(vpcd.apdu(&[0x80, 0xD0, 0x00, 0x00]), [0x90, 0x00]);
    shutdown.shutdown();
    server.wait().unwrap();
}

#[test]
fn address_in_use_is_reported() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let (card, _) = card();
    let err = Server::spawn(
        Endpoint::Listen(taken.local_addr().unwrap()),
        card,
        options(),
        ShutdownHandle::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("binding"), "{err}");
}

#[test]
fn slot_endpoints() {
    let listen = Endpoint::Listen("127.0.0.1:35963".parse().unwrap());
    assert_eq!(
        listen.slot(1).unwrap(),
        Endpoint::Listen("127.0.0.1:35964".parse().unwrap())
    );
    let connect = Endpoint::Connect("localhost:35963".into());
    assert_eq!(
        connect.slot(1).unwrap(),
        Endpoint::Connect("localhost:35964".into())
    );
    assert!(Endpoint::Connect("nohost".into()).slot(1).is_err());
    assert!(
        Endpoint::Listen("127.0.0.1:65535".parse().unwrap())
            .slot(1)
            .is_err()
    );
}
