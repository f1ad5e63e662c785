//! Tearing of the e-purse's money-moving commands on the virtual SE's disk store: CREDIT FOR
//! LOAD and DEBIT FOR PURCHASE are cut at every write point (about 32 byte offsets of each,
//! under both crash models, with and without journal checkpoints). After power returns the
//! balance is exactly the old or the new one, and the terminal recovers: GET TRANSACTION PROVE
//! for the INITIALIZE's ATC proves a completed transaction (MAC2 and TAC verify), `9406` means
//! it never happened and a retry completes it once. Nothing is ever debited or credited twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod card_support;
mod epurse_support;

use card_support::*;
use epurse::pboc;
use epurse_support::*;
use virtual_se::card::Card;
use virtual_se::profile::Profile;
use virtual_se::store::{CrashModel, CutPoint, DiskOptions, DiskStore, SimDisk};

type SimCard = Card<DiskStore<SimDisk>>;

const START: i32 = 5_000;
const AMOUNT: u32 = 1_234;

fn open_card(disk: &SimDisk, options: DiskOptions) -> SimCard {
    card_with(
        Profile::default_profile().unwrap(),
        DiskStore::open_on(disk.clone(), options).unwrap(),
    )
}

/// A disk with the purse installed, personalized and loaded with `START`.
fn prepared(options: DiskOptions) -> SimDisk {
    let disk = SimDisk::new();
    let mut card = open_card(&disk, options);
    install_and_personalize(&mut card);
    ok(select_purse(&mut card).1);
    load(&mut card, START as u32);
    assert_eq!(balance(&mut card), START);
    disk
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Load,
    Purchase,
}

/// What the terminal knows before sending the torn command.
enum Pending {
    Load(epurse::host::OnlineAuthorization, u16),
    Purchase(SoftSam, u16),
}

/// Open a card on a fork of `base`, select, INITIALIZE; returns the card, the disk, the
/// terminal's pending state and the command to tear.
fn begin(
    base: &SimDisk,
    options: DiskOptions,
    kind: Kind,
) -> (SimCard, SimDisk, Pending, apdu_codec::Command) {
    let disk = base.fork();
    let mut card = open_card(&disk, options);
    ok(select_purse(&mut card).1);
    match kind {
        Kind::Load => {
            let (mut auth, rsp, _) = begin_load(&mut card, AMOUNT);
            let cmd = auth.command(&WHEN);
            (card, disk, Pending::Load(auth, rsp.online_atc), cmd)
        }
        Kind::Purchase => {
            let mut sam = SoftSam::new();
            let (rsp, cmd) = begin_purchase(&mut card, &mut sam, AMOUNT);
            (card, disk, Pending::Purchase(sam, rsp.offline_atc), cmd)
        }
    }
}

fn expected_new(kind: Kind) -> i32 {
    match kind {
        Kind::Load => START + AMOUNT as i32,
        Kind::Purchase => START - AMOUNT as i32,
    }
}

/// After power returns: check old/new, recover as a terminal does, return whether the torn
/// command had completed.
fn recover(card: &mut SimCard, pending: Pending, kind: Kind) -> bool {
    ok(select_purse(card).1);
    let after = balance(card);
    assert!(
        after == START || after == expected_new(kind),
        "{kind:?}: balance {after} is neither {START} nor {}",
        expected_new(kind)
    );
    let completed = after != START;
    match pending {
        Pending::Load(auth, atc) => {
            let r = tx(card, &pboc::get_transaction_prove(pboc::TYPE_EP_LOAD, atc));
            if completed {
                auth.verify_prove(&view(&r)).unwrap();
            } else {
                assert_eq!(r.1, 0x9406, "an unfinished load has no proof");
                // The load authority starts again: credited exactly once.
                load(card, AMOUNT);
            }
        }
        Pending::Purchase(mut sam, atc) => {
            let r = tx(
                card,
                &pboc::get_transaction_prove(pboc::TYPE_EP_PURCHASE, atc),
            );
            if completed {
                let (mac2, _tac) = pboc::parse_pair(&view(&r)).unwrap();
                assert!(sam.check_mac2(&mac2), "the proved MAC2 is the SAM's");
            } else {
                assert_eq!(r.1, 0x9406, "an unfinished purchase has no proof");
                purchase(card, &mut sam, AMOUNT);
            }
        }
    }
    assert_eq!(balance(card), expected_new(kind), "{kind:?}: exactly once");
    completed
}

fn tear_everywhere(kind: Kind, options: DiskOptions) {
    let base = prepared(options);
    // Measure the write points of the command.
    let (mut card, disk, pending, cmd) = begin(&base, options, kind);
    disk.reset_count();
    let r = tx(&mut card, &cmd);
    ok(r.1);
    let points = disk.write_points();
    let sizes = disk.write_sizes();
    assert!(points > 0, "{kind:?} writes nothing");
    drop(card);
    let mut card = open_card(&disk, options);
    recover(&mut card, pending, kind);

    let (mut saw_old, mut saw_new) = (0usize, 0usize);
    for write in 0..points {
        let size = sizes.get(write as usize).copied().unwrap_or(0);
        let step = (size / 32).max(1);
        let mut keeps: Vec<usize> = (0..size).step_by(step).collect();
        keeps.push(size.saturating_sub(1));
        keeps.push(size);
        keeps.dedup();
        for keep in keeps {
            for model in [CrashModel::LoseUnsynced, CrashModel::KeepWritten] {
                let (mut card, disk, pending, cmd) = begin(&base, options, kind);
                disk.arm_cut(CutPoint { write, keep });
                let raw = card.transmit(&cmd.to_vec().unwrap());
                assert!(raw.len() >= 2);
                drop(card);
                let mut card = open_card(&disk.power_cycle(model), options);
                if recover(&mut card, pending, kind) {
                    saw_new += 1;
                } else {
                    saw_old += 1;
                }
                card.check_invariants().unwrap();
            }
        }
    }
    eprintln!(
        "{kind:?}: {points} write points, {saw_old} runs kept the old state, {saw_new} the new"
    );
    assert!(
        saw_old > 0,
        "{kind:?}: a cut at the first write must keep the old state"
    );
}

#[test]
fn credit_for_load_torn_everywhere() {
    for options in [
        DiskOptions::default(),
        DiskOptions {
            checkpoint_bytes: 0,
        },
    ] {
        tear_everywhere(Kind::Load, options);
    }
}

#[test]
fn debit_for_purchase_torn_everywhere() {
    for options in [
        DiskOptions::default(),
        DiskOptions {
            checkpoint_bytes: 0,
        },
    ] {
        tear_everywhere(Kind::Purchase, options);
    }
}

#[test]
fn response_lost_after_commit_is_recovered_without_double_debit() {
    // The command commits, then the answer is lost (the card leaves the field): the terminal
    // re-reads the balance, proves the transaction and never sends a second DEBIT.
    let base = prepared(DiskOptions::default());
    let (mut card, disk, pending, cmd) = begin(&base, DiskOptions::default(), Kind::Purchase);
    let _lost = card.transmit(&cmd.to_vec().unwrap());
    drop(card);
    let mut card = open_card(&disk, DiskOptions::default());
    assert!(recover(&mut card, pending, Kind::Purchase));
    // A replay of the lost DEBIT in the new session is refused (no pending INITIALIZE).
    assert_eq!(tx(&mut card, &cmd).1, 0x6985);
    assert_eq!(balance(&mut card), START - AMOUNT as i32);
}
