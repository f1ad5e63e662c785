//! Tearing: every GP command that writes (PUT KEY, INSTALL, DELETE, STORE DATA, SET STATUS,
//! LOAD, and the INITIALIZE UPDATE counter) is torn at every write point of the disk store;
//! after the power comes back the card is in exactly the old or the new state and still
//! answers (GET DATA, a new SCP03 session, GET STATUS).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod card_support;

use apdu_codec::Command;
use card_support::*;
use gp_scp::SecurityLevel;
use gp_scp::keys::{KeyType, SecretKey};
use virtual_se::card::Card;
use virtual_se::profile::Profile;
use virtual_se::store::{CrashModel, CutPoint, DiskOptions, DiskStore, SimDisk};

type SimCard = Card<DiskStore<SimDisk>>;

fn new_card(disk: &SimDisk, options: DiskOptions) -> SimCard {
    let store = DiskStore::open_on(disk.clone(), options).unwrap();
    card_with(Profile::default_profile().unwrap(), store)
}

/// The setup of a scenario: brings the card into the state before the torn command and
/// returns the host session and the command to tear. Must be deterministic.
type Setup = fn(&mut SimCard) -> (Host, Command);

fn put_key(card: &mut SimCard) -> (Host, Command) {
    let host = open_scp03(card, SecurityLevel::ALL);
    let dek = host.session.dek().unwrap().as_bytes().to_vec();
    let k = SecretKey::new(&[0x33; 16]);
    let data = gp_scp::put_key::encode_put_key_data(
        0x01,
        &[(KeyType::Aes, &k), (KeyType::Aes, &k), (KeyType::Aes, &k)],
        &dek,
        KeyType::Aes,
    )
    .unwrap();
    (host, apdu(0x80, 0xD8, 0x00, 0x81, &data))
}

fn install(card: &mut SimCard) -> (Host, Command) {
    let host = open_scp03(card, SecurityLevel::ALL);
    (
        host,
        apdu(
            0x80,
            0xE6,
            0x0C,
            0x00,
            &install_data(STORE_ELF, STORE_MODULE, APP1, &[0x00], &[0xC9, 0x00]),
        ),
    )
}

fn with_applet(card: &mut SimCard) -> Host {
    let mut host = open_scp03(card, SecurityLevel::ALL);
    ok(install_store_applet(card, &mut host, APP1));
    let perso = apdu(
        0x80,
        0xE6,
        0x20,
        0x00,
        &[&[0, 0, APP1.len() as u8][..], APP1, &[0, 0, 0]].concat(),
    );
    ok(host.send(card, &perso).view().status().to_u16());
    host
}

fn delete(card: &mut SimCard) -> (Host, Command) {
    let mut host = with_applet(card);
    ok(host.sw(card, "80E2900007 DF0104CAFEBABE"));
    let mut data = vec![0x4F, STORE_ELF.len() as u8];
    data.extend_from_slice(STORE_ELF);
    (host, apdu(0x80, 0xE4, 0x00, 0x80, &data))
}

fn store_data_applet(card: &mut SimCard) -> (Host, Command) {
    let host = with_applet(card);
    (
        host,
        apdu(0x80, 0xE2, 0x90, 0x00, &h("DF0104CAFEBABE 5A03010203")),
    )
}

fn store_data_sd(card: &mut SimCard) -> (Host, Command) {
    let host = open_scp03(card, SecurityLevel::ALL);
    (
        host,
        apdu(0x80, 0xE2, 0x80, 0x00, &h("4203112233 4503445566")),
    )
}

fn set_status_app(card: &mut SimCard) -> (Host, Command) {
    let host = with_applet(card);
    (host, apdu(0x80, 0xF0, 0x40, 0x80, APP1))
}

fn set_status_card(card: &mut SimCard) -> (Host, Command) {
    let host = open_scp03(card, SecurityLevel::ALL);
    (host, apdu(0x80, 0xF0, 0x80, 0x7F, &[]))
}

fn load(card: &mut SimCard) -> (Host, Command) {
    let mut host = open_scp03(card, SecurityLevel::ALL);
    let elf = h("F0112233445566");
    let data = [&[elf.len() as u8][..], &elf, &[0, 0, 0, 0]].concat();
    ok(host
        .send(card, &apdu(0x80, 0xE6, 0x02, 0x00, &data))
        .view()
        .status()
        .to_u16());
    let mut block = vec![0xC4, 0x81, 0x90];
    block.extend((0..0x90u8).map(|i| i ^ 0x5A));
    ok(host
        .send(card, &apdu(0x80, 0xE8, 0x00, 0x00, &block[..100]))
        .view()
        .status()
        .to_u16());
    (host, apdu(0x80, 0xE8, 0x80, 0x01, &block[100..]))
}

/// Snapshot of everything committed.
fn snapshot(card: &SimCard) -> Vec<(Vec<u8>, Vec<u8>)> {
    card.persistent_snapshot().unwrap()
}

/// The card answers: GET DATA, a new session with whichever keys it has, GET STATUS.
fn still_answers(card: &mut SimCard) {
    ok(sw(card, "80CA9F7F00"));
    card.check_invariants().unwrap();
    let keys = card.keys(ISD);
    let kvn = keys.first().unwrap().kvn;
    let value = keys.first().unwrap().value.clone();
    let ks = gp_scp::keys::KeySet::single(kvn, KeyType::Aes, &value).unwrap();
    let mut host = open(card, ks, gp_scp::HostProtocol::Scp03(Default::default())).unwrap();
    ok(host.sw(card, "80F28002024F00"));
}

fn tear_everywhere(name: &str, setup: Setup, options: DiskOptions) -> (u64, usize) {
    // Measure: old state, new state, write points of the command.
    let disk = SimDisk::new();
    let mut card = new_card(&disk, options);
    let (mut host, cmd) = setup(&mut card);
    let old = snapshot(&card);
    disk.reset_count();
    let resp = host.send(&mut card, &cmd);
    assert!(
        resp.view().status().is_success(),
        "{name}: the command itself fails: {}",
        resp.view().status()
    );
    let new = snapshot(&card);
    assert_ne!(old, new, "{name}: the command writes nothing");
    let points = disk.write_points();
    let sizes = disk.write_sizes();
    assert!(points > 0, "{name}: no write points");
    let mut runs = 0usize;
    let (mut saw_old, mut saw_new) = (0usize, 0usize);
    for write in 0..points {
        let size = sizes
            .get(usize::try_from(write).unwrap())
            .copied()
            .unwrap_or(0);
        // Cut at about 32 byte offsets of the write (every byte for short writes), plus the
        // complete write (power lost before the sync).
        let step = (size / 32).max(1);
        let mut keeps: Vec<usize> = (0..size).step_by(step).collect();
        keeps.push(size.saturating_sub(1));
        keeps.push(size);
        keeps.dedup();
        for keep in keeps {
            for model in [CrashModel::LoseUnsynced, CrashModel::KeepWritten] {
                let disk = SimDisk::new();
                let mut card = new_card(&disk, options);
                let (mut host, cmd) = setup(&mut card);
                assert_eq!(snapshot(&card), old, "{name}: setup is not deterministic");
                disk.arm_cut(CutPoint { write, keep });
                let wrapped = host.session.wrap(&cmd).unwrap().to_vec().unwrap();
                let raw = card.transmit(&wrapped);
                // The card answers something (never panics), then power is restored.
                assert!(raw.len() >= 2);
                drop(card);
                let disk = disk.power_cycle(model);
                let mut card = new_card(&disk, options);
                let after = snapshot(&card);
                assert!(
                    after == old || after == new,
                    "{name}: torn at write {write} keep {keep} ({model:?}): neither old nor new state"
                );
                if after == old {
                    saw_old += 1;
                } else {
                    saw_new += 1;
                }
                still_answers(&mut card);
                runs += 1;
            }
        }
    }
    eprintln!("{name}: {points} write points, {runs} torn runs: {saw_old} old, {saw_new} new");
    assert!(
        saw_old > 0,
        "{name}: a cut at the first write must keep the old state"
    );
    (points, runs)
}

fn check(name: &str, setup: Setup) {
    for options in [
        DiskOptions::default(),
        DiskOptions {
            checkpoint_bytes: 0,
        },
    ] {
        let (points, runs) = tear_everywhere(name, setup, options);
        assert!(runs as u64 >= points, "{name}");
    }
}

#[test]
fn put_key_torn_everywhere() {
    check("PUT KEY", put_key);
}

#[test]
fn install_torn_everywhere() {
    check("INSTALL", install);
}

#[test]
fn delete_torn_everywhere() {
    check("DELETE", delete);
}

#[test]
fn store_data_applet_torn_everywhere() {
    check("STORE DATA (applet)", store_data_applet);
}

#[test]
fn store_data_sd_torn_everywhere() {
    check("STORE DATA (SD)", store_data_sd);
}

#[test]
fn set_status_app_torn_everywhere() {
    check("SET STATUS (application)", set_status_app);
}

#[test]
fn set_status_card_torn_everywhere() {
    check("SET STATUS (card)", set_status_card);
}

#[test]
fn load_torn_everywhere() {
    check("LOAD", load);
}

#[test]
fn initialize_update_counter_torn_everywhere() {
    // INITIALIZE UPDATE persists the sequence counter: torn, the card keeps the old or the
    // new counter and a new session still opens.
    let disk0 = SimDisk::new();
    let mut card = new_card(&disk0, DiskOptions::default());
    let old = snapshot(&card);
    disk0.reset_count();
    ok(sw(&mut card, "8050000008 0102030405060708"));
    let new = snapshot(&card);
    let points = disk0.write_points();
    assert!(points > 0);
    for write in 0..points {
        let disk = SimDisk::new();
        let mut card = new_card(&disk, DiskOptions::default());
        disk.arm_cut(CutPoint { write, keep: 0 });
        let _ = card.transmit(&h("8050000008 0102030405060708"));
        drop(card);
        let mut card = new_card(
            &disk.power_cycle(CrashModel::LoseUnsynced),
            DiskOptions::default(),
        );
        let after = snapshot(&card);
        assert!(after == old || after == new);
        still_answers(&mut card);
    }
}

#[test]
fn state_survives_a_restart_from_disk() {
    // Everything committed before the "kill" is there after reopening.
    let disk = SimDisk::new();
    let mut card = new_card(&disk, DiskOptions::default());
    let (mut host, cmd) = delete(&mut card);
    ok(host.send(&mut card, &cmd).view().status().to_u16());
    let before = snapshot(&card);
    let registry = card.registry();
    drop(card);
    let card = new_card(
        &disk.power_cycle(CrashModel::LoseUnsynced),
        DiskOptions::default(),
    );
    assert_eq!(snapshot(&card), before);
    assert_eq!(card.registry(), registry);
}
