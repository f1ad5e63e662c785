//! Host-side harness for the card tests: drives a `Card` in memory with gp-scp's host
//! sessions.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_docs
)]

use apdu_codec::{Command, Response, StatusWord, parse_response};
use chacha20::ChaCha20Rng;
use gp_scp::keys::{KeySet, KeyType, danger_test_keys::K40};
use gp_scp::scp02::Scp02Option;
use gp_scp::scp02::host::Scp02HostConfig;
use gp_scp::scp03::host::Scp03HostConfig;
use gp_scp::{HostProtocol, HostSession, HostStep, SecurityLevel};
use rand_core::SeedableRng;
use virtual_se::applet::Packages;
use virtual_se::card::Card;
use virtual_se::profile::Profile;
use virtual_se::store::{MemoryStore, Store};

pub const ISD: &[u8] = &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

pub fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

pub fn profile_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(name)
}

pub fn default_card() -> Card<MemoryStore> {
    card_with(Profile::default_profile().unwrap(), MemoryStore::new())
}

pub fn card_with<S: Store>(profile: Profile, store: S) -> Card<S> {
    let mut card = Card::open(store, &profile, Packages::builtin(), [7; 32]).unwrap();
    card.power_on();
    card
}

/// Send raw bytes, return (data, SW).
pub fn send<S: Store>(card: &mut Card<S>, apdu: &[u8]) -> (Vec<u8>, u16) {
    let r = card.transmit(apdu);
    let v = parse_response(&r).unwrap();
    (v.data().to_vec(), v.status().to_u16())
}

pub fn sw<S: Store>(card: &mut Card<S>, apdu: &str) -> u16 {
    send(card, &h(apdu)).1
}

pub fn k40_aes() -> KeySet {
    KeySet::single(0xFF, KeyType::Aes, &K40).unwrap()
}

pub fn k40_des() -> KeySet {
    KeySet::single(0xFF, KeyType::Des, &K40).unwrap()
}

/// A host with an open secure channel to the selected SD.
pub struct Host {
    pub session: HostSession,
    pub channel: u8,
}

pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// Run a handshake; returns the host or the status word / error of the failing step.
pub fn open<S: Store>(
    card: &mut Card<S>,
    keys: KeySet,
    protocol: HostProtocol,
) -> Result<Host, String> {
    let mut r = rng(3);
    let mut session = HostSession::new(keys, protocol, &mut r).map_err(|e| e.to_string())?;
    let mut step = HostStep::Send(session.begin().map_err(|e| e.to_string())?);
    while let HostStep::Send(cmd) = step {
        let resp = card.transmit(&cmd.to_vec().unwrap());
        let view = parse_response(&resp).unwrap();
        step = session
            .process(&view)
            .map_err(|e| format!("{e} ({})", view.status()))?;
    }
    Ok(Host {
        session,
        channel: 0,
    })
}

pub fn open_scp03<S: Store>(card: &mut Card<S>, level: SecurityLevel) -> Host {
    let cfg = Scp03HostConfig {
        level,
        ..Scp03HostConfig::default()
    };
    open(card, k40_aes(), HostProtocol::Scp03(cfg)).unwrap()
}

pub fn open_scp02<S: Store>(card: &mut Card<S>, level: SecurityLevel, option: Scp02Option) -> Host {
    let cfg = Scp02HostConfig {
        level,
        option,
        ..Scp02HostConfig::default()
    };
    open(card, k40_des(), HostProtocol::Scp02(cfg)).unwrap()
}

impl Host {
    /// Wrap, send, unwrap.
    pub fn send<S: Store>(&mut self, card: &mut Card<S>, cmd: &Command) -> Response {
        let wrapped = self.session.wrap(cmd).unwrap();
        let raw = card.transmit(&wrapped.to_vec().unwrap());
        let view = parse_response(&raw).unwrap();
        if view.status().is_error() {
            return Response::status_only(view.status());
        }
        self.session.unwrap(&view).unwrap()
    }

    pub fn hex<S: Store>(&mut self, card: &mut Card<S>, apdu: &str) -> (Vec<u8>, u16) {
        let bytes = h(apdu);
        let view = apdu_codec::parse_command(&bytes).unwrap();
        let r = self.send(card, &view.to_command());
        let v = r.view();
        (v.data().to_vec(), v.status().to_u16())
    }

    pub fn sw<S: Store>(&mut self, card: &mut Card<S>, apdu: &str) -> u16 {
        self.hex(card, apdu).1
    }
}

pub fn ok(sw: u16) {
    assert_eq!(
        sw,
        StatusWord::SUCCESS.to_u16(),
        "expected 9000, got {sw:04X}"
    );
}

/// INSTALL [for install and make selectable] command data.
pub fn install_data(
    elf: &[u8],
    module: &[u8],
    app: &[u8],
    privileges: &[u8],
    params: &[u8],
) -> Vec<u8> {
    let mut d = Vec::new();
    for f in [elf, module, app, privileges] {
        d.push(u8::try_from(f.len()).unwrap());
        d.extend_from_slice(f);
    }
    d.push(u8::try_from(params.len()).unwrap());
    d.extend_from_slice(params);
    d.push(0);
    d
}

pub fn apdu(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Command {
    let c = Command::new(cla, ins, p1, p2);
    if data.is_empty() {
        c
    } else {
        c.with_data(data.to_vec())
    }
}

pub const STORE_ELF: &[u8] = virtual_se::applet::STORE_APPLET_LOAD_FILE;
pub const STORE_MODULE: &[u8] = virtual_se::applet::STORE_APPLET_MODULE;
pub const APP1: &[u8] = &[0xF0, 0x6D, 0x65, 0x63, 0x41, 0x50, 0x50, 0x31];
pub const SSD1: &[u8] = &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x31];

/// Install the store applet as APP1 (selectable).
pub fn install_store_applet<S: Store>(card: &mut Card<S>, host: &mut Host, aid: &[u8]) -> u16 {
    let cmd = apdu(
        0x80,
        0xE6,
        0x0C,
        0x00,
        &install_data(STORE_ELF, STORE_MODULE, aid, &[0x00], &[0xC9, 0x00]),
    );
    host.send(card, &cmd).view().status().to_u16()
}
