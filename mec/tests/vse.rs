//! `mec vse` run as a user would: the built binary serving the default profile over vpcd
//! framing on loopback, with the test playing vpcd's part (reverse mode). Covers state that
//! survives a clean stop (SIGTERM, what Ctrl-C does) and a hard kill (SIGKILL), and the
//! "response lost after commit" fault.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SELECT_ISD: &[u8] = &[
    0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00,
];
/// INITIALIZE UPDATE, key version FF (the default profile), host challenge 0102..08.
const INITIALIZE_UPDATE: &[u8] = &[0x80, 0x50, 0xFF, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00];

struct Served {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `mec vse serve --listen 127.0.0.1:0 ...` and read the bound address from stderr.
fn serve(extra: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mec"))
        .args(["vse", "serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<SocketAddr>()
                    .unwrap();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("mec vse serve did not start");
    Served { child, addr }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

struct Vpcd(TcpStream);

impl Vpcd {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut v = Self(s);
        v.send(&[0x01]); // power on
        v
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
        self.recv().expect("no response")
    }
}

fn sw(response: &[u8]) -> u16 {
    u16::from_be_bytes([response[response.len() - 2], response[response.len() - 1]])
}

/// The SCP03 sequence counter the card reports in INITIALIZE UPDATE (GPC Amd D §7.1.1.6:
/// the last 3 data bytes with i=70); every INITIALIZE UPDATE commits an increment.
fn sequence_counter(vpcd: &mut Vpcd) -> u32 {
    assert_eq!(sw(&vpcd.apdu(SELECT_ISD)), 0x9000);
    let r = vpcd.apdu(INITIALIZE_UPDATE);
    assert_eq!(sw(&r), 0x9000, "{r:02X?}");
    let data = &r[..r.len() - 2];
    let c = &data[data.len() - 3..];
    u32::from_be_bytes([0, c[0], c[1], c[2]])
}

fn state_arg(dir: &Path) -> Vec<String> {
    vec![
        "--state".into(),
        dir.display().to_string(),
        "--seed".into(),
        "11".repeat(32),
    ]
}

#[test]
fn profile_prints_the_default_toml() {
    let out = Command::new(env!("CARGO_BIN_EXE_mec"))
        .args(["vse", "profile"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("[isd]") && text.contains("A000000151000000"),
        "{text}"
    );
}

#[test]
fn serves_apdus_and_keeps_state_across_sigterm_and_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let args = state_arg(dir.path());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let server = serve(&args);
    let mut vpcd = Vpcd::connect(server.addr);
    vpcd.send(&[0x04]);
    let atr = vpcd.recv().unwrap();
    assert_eq!(atr[0], 0x3B, "ATR {atr:02X?}");
    assert_eq!(sw(&vpcd.apdu(&[0x80, 0xCA, 0x9F, 0x7F, 0x00])), 0x9000);
    let first = sequence_counter(&mut vpcd);
    let second = sequence_counter(&mut vpcd);
    assert_eq!(second, first + 1);
    drop(vpcd);

    // Clean stop: SIGTERM (what Ctrl-C does) ends the process with status 0.
    let mut server = server;
    signal(&server.child, "-TERM");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");

    // Restart from --state: the counter continues.
    let server = serve(&args);
    let mut vpcd = Vpcd::connect(server.addr);
    assert_eq!(sequence_counter(&mut vpcd), second + 1);
    let before_kill = sequence_counter(&mut vpcd);
    drop(vpcd);

    // Hard kill right after a committed APDU: nothing committed is lost.
    let mut server = server;
    signal(&server.child, "-KILL");
    server.child.wait().unwrap();
    let server = serve(&args);
    let mut vpcd = Vpcd::connect(server.addr);
    assert_eq!(sequence_counter(&mut vpcd), before_kill + 1);
}

#[test]
fn memory_card_forgets_on_restart() {
    let server = serve(&[]);
    let mut vpcd = Vpcd::connect(server.addr);
    let first = sequence_counter(&mut vpcd);
    assert_eq!(sequence_counter(&mut vpcd), first + 1);
    drop(vpcd);
    drop(server);
    let server = serve(&[]);
    let mut vpcd = Vpcd::connect(server.addr);
    assert_eq!(sequence_counter(&mut vpcd), first);
}

#[test]
fn response_lost_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = state_arg(dir.path());
    args.extend(["--lose-response".to_owned(), "0".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = serve(&args);

    // The first committing APDU (INITIALIZE UPDATE commits the counter) loses its response.
    let mut vpcd = Vpcd::connect(server.addr);
    assert_eq!(sw(&vpcd.apdu(SELECT_ISD)), 0x9000);
    vpcd.send(INITIALIZE_UPDATE);
    assert_eq!(vpcd.recv(), None, "the response must be dropped");
    drop(vpcd);

    // The terminal reconnects: the lost command did commit.
    let mut vpcd = Vpcd::connect(server.addr);
    let after = sequence_counter(&mut vpcd);
    let memory = serve(&[]);
    let mut fresh = Vpcd::connect(memory.addr);
    let initial = sequence_counter(&mut fresh);
    assert_eq!(after, initial + 1);
}

#[test]
fn bad_arguments_are_refused() {
    for args in [
        vec!["vse", "serve"],
        vec!["vse", "serve", "--listen", "0.0.0.0:35963"],
        vec![
            "vse",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--connect",
            "localhost",
        ],
        vec![
            "vse",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--profile2",
            "x.toml",
        ],
        vec![
            "vse",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--profile",
            "/nonexistent.toml",
        ],
        vec!["vse", "serve", "--listen", "127.0.0.1:0", "--seed", "zz"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mec"))
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(!out.stderr.is_empty());
    }
}
