//! The value-block tag (third module of the e-purse load file) on the virtual SE: installed
//! through the GP card manager over SCP03 with its UID and AN10922 access data as install
//! parameters, authenticated by a reader holding the diversified sector key
//! (`epurse::tag::TagReader`), value commands with MACs and value-block integrity checks, a
//! failed authentication changing nothing, persistence across power off, value moved from the
//! purse to the tag with a voucher, and a TRANSFER torn at every write point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod card_support;
mod epurse_support;

use apdu_codec::Command;
use card_support::*;
use epurse::crypto::Key16;
use epurse::danger;
use epurse::pboc;
use epurse::tag::{self, TagReader, UID_LEN};
use epurse_support::*;
use gp_scp::SecurityLevel;
use virtual_se::applet::{EPURSE_LOAD_FILE, EPURSE_TAG_MODULE};
use virtual_se::card::Card;
use virtual_se::profile::Profile;
use virtual_se::store::{CrashModel, CutPoint, DiskOptions, DiskStore, SimDisk, Store};

const TAG: &[u8] = &[0xA0, 0x00, 0x00, 0x06, 0x47, 0x56, 0x54, 0x01];
const UID: [u8; UID_LEN] = [0x04, 0x52, 0x7A, 0x9A, 0x3C, 0x11, 0x80];

/// INSTALL parameters: `UID || master key || AN10922 AID || system identifier` (the test
/// issuer's tag access, the same the personalized purse holds as gatekeeper).
fn tag_params() -> Vec<u8> {
    let access = danger::test_tag_access().unwrap();
    let mut p = UID.to_vec();
    p.extend_from_slice(access.master.expose());
    p.extend_from_slice(&access.aid);
    p.extend_from_slice(access.system_identifier());
    p
}

fn install_tag<S: Store>(card: &mut Card<S>, params: &[u8]) -> u16 {
    let mut host = open_scp03(card, SecurityLevel::ALL);
    let mut c9 = vec![0xC9, params.len() as u8];
    c9.extend_from_slice(params);
    let install = apdu(
        0x80,
        0xE6,
        0x0C,
        0x00,
        &install_data(EPURSE_LOAD_FILE, EPURSE_TAG_MODULE, TAG, &[0x00], &c9),
    );
    host.send(card, &install).view().status().to_u16()
}

fn select_tag<S: Store>(card: &mut Card<S>) -> (Vec<u8>, u16) {
    tx(card, &apdu(0x00, 0xA4, 0x04, 0x00, TAG))
}

fn key_of(block: u8) -> Key16 {
    tag::sector_key(&danger::test_tag_access().unwrap(), &UID, block).unwrap()
}

/// Run both authentication steps; the status word of the first failing step or `9000`.
fn authenticate<S: Store>(card: &mut Card<S>, reader: &mut TagReader) -> u16 {
    let r = tx(card, &reader.authenticate().unwrap());
    if r.1 != 0x9000 {
        return r.1;
    }
    let r = tx(card, &reader.answer(&r.0).unwrap());
    if r.1 != 0x9000 {
        return r.1;
    }
    reader.confirm(&r.0).unwrap();
    0x9000
}

fn reader_for<S: Store>(card: &mut Card<S>, block: u8) -> TagReader {
    let mut reader = TagReader::new(key_of(block), block, [block ^ 0x5C; 16]);
    ok(authenticate(card, &mut reader));
    reader
}

/// A MACed command; the response data after its MAC was checked, or the error status word.
fn value_cmd<S: Store>(
    card: &mut Card<S>,
    reader: &mut TagReader,
    ins: u8,
    operand: Option<i32>,
) -> Result<Vec<u8>, u16> {
    let (cmd, counter) = reader.command(ins, operand).unwrap();
    let r = tx(card, &cmd);
    if r.1 != 0x9000 {
        return Err(r.1);
    }
    Ok(reader.check_response(counter, &r.0).unwrap().to_vec())
}

/// READ VALUE with the integrity of the answered value block checked.
fn read_value<S: Store>(card: &mut Card<S>, reader: &mut TagReader, block: u8) -> i32 {
    let data = value_cmd(card, reader, tag::INS_READ, None).unwrap();
    let b: [u8; 16] = data.try_into().unwrap();
    let (value, addr) = tag::parse_value_block(&b).unwrap();
    assert_eq!(addr, block);
    value
}

/// TRANSFER with the answered block checked; the new value.
fn transfer<S: Store>(card: &mut Card<S>, reader: &mut TagReader, block: u8) -> i32 {
    let data = value_cmd(card, reader, tag::INS_TRANSFER, None).unwrap();
    let b: [u8; 16] = data.try_into().unwrap();
    let (value, addr) = tag::parse_value_block(&b).unwrap();
    assert_eq!(addr, block);
    assert_eq!(b, tag::value_block(value, block));
    value
}

/// Fresh authentication and a read of `block`.
fn value_of<S: Store>(card: &mut Card<S>, block: u8) -> i32 {
    let mut reader = reader_for(card, block);
    read_value(card, &mut reader, block)
}

fn voucher_counter<S: Store>(card: &mut Card<S>, block: u8) -> Vec<u8> {
    let r = tx(
        card,
        &Command::new(tag::CLA_TAG, tag::INS_READ_COUNTER, 0, block).with_le(4),
    );
    ok(r.1);
    r.0
}

#[test]
fn install_authenticate_and_move_values() {
    let mut card = default_card();
    // Malformed parameters (short, or a system identifier over 21 bytes): 6A80, no instance.
    assert_eq!(install_tag(&mut card, &UID), 0x6A80);
    let mut long = tag_params();
    long.truncate(UID_LEN + 19);
    long.extend_from_slice(&[0x11; 22]);
    assert_eq!(install_tag(&mut card, &long), 0x6A80);
    assert_eq!(select_tag(&mut card).1, 0x6A82);
    ok(install_tag(&mut card, &tag_params()));
    ok(select_tag(&mut card).1);

    // The command class is 80: the runtime does not read it as chaining.
    let mut r1 = reader_for(&mut card, 1);
    assert_eq!(read_value(&mut card, &mut r1, 1), 0);
    // INCREMENT then TRANSFER to the same block.
    assert!(
        value_cmd(&mut card, &mut r1, tag::INS_INCREMENT, Some(1_000))
            .unwrap()
            .is_empty()
    );
    assert_eq!(transfer(&mut card, &mut r1, 1), 1_000);
    assert_eq!(read_value(&mut card, &mut r1, 1), 1_000);
    // DECREMENT then TRANSFER.
    value_cmd(&mut card, &mut r1, tag::INS_DECREMENT, Some(275)).unwrap();
    assert_eq!(transfer(&mut card, &mut r1, 1), 725);
    // Below zero: 9401, and the next TRANSFER has no buffer (6985).
    assert_eq!(
        value_cmd(&mut card, &mut r1, tag::INS_DECREMENT, Some(726)),
        Err(0x9401)
    );
    assert_eq!(
        value_cmd(&mut card, &mut r1, tag::INS_TRANSFER, None),
        Err(0x6985)
    );
    assert_eq!(read_value(&mut card, &mut r1, 1), 725);
    // A negative operand is refused.
    assert_eq!(
        value_cmd(&mut card, &mut r1, tag::INS_INCREMENT, Some(-1)),
        Err(0x6A80)
    );
    // DECREMENT/INCREMENT alone change nothing persistent.
    value_cmd(&mut card, &mut r1, tag::INS_INCREMENT, Some(5)).unwrap();
    assert_eq!(read_value(&mut card, &mut r1, 1), 725);

    // RESTORE then TRANSFER keeps the value (the pending INCREMENT is discarded).
    value_cmd(&mut card, &mut r1, tag::INS_RESTORE, None).unwrap();
    assert_eq!(transfer(&mut card, &mut r1, 1), 725);

    // Sector 1 (block 4) is not covered by the sector 0 authentication.
    let mut cross = TagReader::new(key_of(4), 4, [3; 16]);
    assert_eq!(
        tx(
            &mut card,
            &Command::new(tag::CLA_TAG, tag::INS_READ, 0, 4).with_data(vec![0; 8])
        )
        .1,
        0x6982
    );
    ok(authenticate(&mut card, &mut cross));
    assert_eq!(read_value(&mut card, &mut cross, 4), 0);
    value_cmd(&mut card, &mut cross, tag::INS_INCREMENT, Some(42)).unwrap();
    assert_eq!(transfer(&mut card, &mut cross, 4), 42);
    assert_eq!(value_of(&mut card, 1), 725);
    assert_eq!(value_of(&mut card, 4), 42);
    assert_eq!(value_of(&mut card, 2), 0);
    // The old class 90 is ISO chaining for the runtime (a chain part, not a tag command): no
    // counter comes back.
    let chained = send(&mut card, &h("90C6000104"));
    assert!(chained.0.is_empty(), "{chained:?}");
}

#[test]
fn failed_authentication_and_bad_macs_change_nothing() {
    let mut card = default_card();
    ok(install_tag(&mut card, &tag_params()));
    ok(select_tag(&mut card).1);
    let mut r1 = reader_for(&mut card, 1);
    value_cmd(&mut card, &mut r1, tag::INS_INCREMENT, Some(500)).unwrap();
    transfer(&mut card, &mut r1, 1);

    // A reader with the master key itself (not diversified) or another UID's key fails at
    // the second step (9302) and gets no session.
    let mut wrong = TagReader::new(danger::test_tag_master_key(), 1, [1; 16]);
    assert_eq!(authenticate(&mut card, &mut wrong), 0x9302);
    let mut other_uid = UID;
    other_uid[6] ^= 1;
    let k = tag::sector_key(&danger::test_tag_access().unwrap(), &other_uid, 1).unwrap();
    let mut wrong = TagReader::new(k, 1, [2; 16]);
    assert_eq!(authenticate(&mut card, &mut wrong), 0x9302);
    // The failed attempt ended the earlier session too: r1's commands are refused (6982).
    assert_eq!(
        value_cmd(&mut card, &mut r1, tag::INS_DECREMENT, Some(1)),
        Err(0x6982)
    );
    // The tag's answer E(K, rol(RndA)) is checked by the reader as well.
    let mut r = TagReader::new(key_of(1), 1, [9; 16]);
    let first = tx(&mut card, &r.authenticate().unwrap());
    ok(first.1);
    let second = tx(&mut card, &r.answer(&first.0).unwrap());
    ok(second.1);
    let mut forged = second.0.clone();
    forged[0] ^= 1;
    assert!(r.confirm(&forged).is_err());

    // A tampered command MAC: 9302, the session ends, nothing is written.
    let mut r1 = reader_for(&mut card, 1);
    let (mut cmd, _) = r1.command(tag::INS_DECREMENT, Some(100)).unwrap();
    let last = cmd.data.len() - 1;
    cmd.data[last] ^= 1;
    assert_eq!(tx(&mut card, &cmd).1, 0x9302);
    assert_eq!(
        value_cmd(&mut card, &mut r1, tag::INS_TRANSFER, None),
        Err(0x6982)
    );
    // A replayed (already counted) command fails the same way.
    let mut r1 = reader_for(&mut card, 1);
    let (dec, _) = r1.command(tag::INS_DECREMENT, Some(100)).unwrap();
    ok(tx(&mut card, &dec).1);
    assert_eq!(tx(&mut card, &dec).1, 0x9302);
    assert_eq!(value_of(&mut card, 1), 500);
    // Every block is still a valid value block with its address.
    for block in [0u8, 1, 2] {
        assert_eq!(value_of(&mut card, block), if block == 1 { 500 } else { 0 });
    }
}

#[test]
fn values_persist_across_power_off_and_the_session_does_not() {
    let mut card = default_card();
    ok(install_tag(&mut card, &tag_params()));
    ok(select_tag(&mut card).1);
    let mut r = reader_for(&mut card, 5);
    value_cmd(&mut card, &mut r, tag::INS_INCREMENT, Some(9_000)).unwrap();
    assert_eq!(transfer(&mut card, &mut r, 5), 9_000);
    // A pending DECREMENT is lost with the field.
    value_cmd(&mut card, &mut r, tag::INS_DECREMENT, Some(1_000)).unwrap();
    card.power_off();
    card.power_on();
    // Not selected after power on.
    assert_ne!(
        tx(&mut card, &r.command(tag::INS_TRANSFER, None).unwrap().0).1,
        0x9000
    );
    ok(select_tag(&mut card).1);
    assert_eq!(
        value_cmd(&mut card, &mut r, tag::INS_TRANSFER, None),
        Err(0x6982)
    );
    let mut r = reader_for(&mut card, 5);
    assert_eq!(
        value_cmd(&mut card, &mut r, tag::INS_TRANSFER, None),
        Err(0x6985)
    );
    assert_eq!(value_of(&mut card, 5), 9_000);
    // Deselection (selecting the ISD) also ends the session.
    let mut r = reader_for(&mut card, 5);
    ok(sw(&mut card, "00A4040000"));
    ok(select_tag(&mut card).1);
    assert_eq!(
        value_cmd(&mut card, &mut r, tag::INS_READ, None),
        Err(0x6982)
    );
}

#[test]
fn purse_value_moves_to_the_tag() {
    let mut card = default_card();
    install_and_personalize(&mut card);
    ok(install_tag(&mut card, &tag_params()));
    ok(select_purse(&mut card).1);
    load(&mut card, 2_000);

    // The host reads the tag's voucher counter of block 2 (public).
    ok(select_tag(&mut card).1);
    let counter = voucher_counter(&mut card, 2);
    assert_eq!(counter, [0, 0, 0, 0]);
    // The purse, after VERIFY, debits and answers offline ATC || voucher.
    ok(select_purse(&mut card).1);
    let move_cmd = |amount: u32, counter: &[u8]| {
        let mut data = amount.to_be_bytes().to_vec();
        data.extend_from_slice(&UID);
        data.push(2);
        data.extend_from_slice(counter);
        data.extend_from_slice(&WHEN.date);
        data.extend_from_slice(&WHEN.time);
        Command::new(0x80, epurse::card::INS_MOVE_TO_TAG, 0, 0)
            .with_data(data)
            .with_le(10)
    };
    assert_eq!(tx(&mut card, &move_cmd(750, &counter)).1, 0x6982);
    ok(tx(
        &mut card,
        &Command::new(0x00, 0x20, 0x00, 0x00).with_data(danger::TEST_PIN.to_vec()),
    )
    .1);
    let r = tx(&mut card, &move_cmd(750, &counter));
    ok(r.1);
    assert_eq!(r.0.len(), 10);
    let voucher = r.0[2..].to_vec();
    assert_eq!(balance(&mut card), 1_250);
    // The voucher is also what TRANSACTION PROVE returns (a lost MOVE answer is recoverable).
    let atc = u16::from_be_bytes([r.0[0], r.0[1]]);
    let prove = tx(
        &mut card,
        &pboc::get_transaction_prove(pboc::TYPE_EP_TO_TAG, atc),
    );
    ok(prove.1);
    assert_eq!(prove.0, voucher);

    // CREDIT VOUCHER on the tag: credited once.
    ok(select_tag(&mut card).1);
    let mut data = 750u32.to_be_bytes().to_vec();
    data.extend_from_slice(&voucher);
    let credit = Command::new(tag::CLA_TAG, tag::INS_CREDIT_VOUCHER, 0, 2).with_data(data);
    let r = tx(&mut card, &credit);
    ok(r.1);
    assert_eq!(r.0, 750i32.to_be_bytes());
    assert_eq!(tx(&mut card, &credit).1, 0x9302);
    assert_eq!(voucher_counter(&mut card, 2), [0, 0, 0, 1]);
    // Another amount under the same voucher is refused too.
    let mut forged = 751u32.to_be_bytes().to_vec();
    forged.extend_from_slice(&voucher);
    assert_eq!(
        tx(
            &mut card,
            &Command::new(tag::CLA_TAG, tag::INS_CREDIT_VOUCHER, 0, 2).with_data(forged)
        )
        .1,
        0x9302
    );
    // Survives a power cycle; money conserved across purse and tag.
    card.power_off();
    card.power_on();
    ok(select_tag(&mut card).1);
    let on_tag = value_of(&mut card, 2);
    assert_eq!(on_tag, 750);
    ok(select_purse(&mut card).1);
    assert_eq!(balance(&mut card) + on_tag, 2_000);
    // The tag value is spent like any other (DECREMENT + TRANSFER by a reader).
    ok(select_tag(&mut card).1);
    let mut r2 = reader_for(&mut card, 2);
    value_cmd(&mut card, &mut r2, tag::INS_DECREMENT, Some(250)).unwrap();
    assert_eq!(transfer(&mut card, &mut r2, 2), 500);
}

type SimCard = Card<DiskStore<SimDisk>>;

const START: i32 = 1_000;
const SPEND: i32 = 300;

fn open_card(disk: &SimDisk, options: DiskOptions) -> SimCard {
    card_with(
        Profile::default_profile().unwrap(),
        DiskStore::open_on(disk.clone(), options).unwrap(),
    )
}

/// A disk with the tag installed and `START` on block 1.
fn prepared(options: DiskOptions) -> SimDisk {
    let disk = SimDisk::new();
    let mut card = open_card(&disk, options);
    ok(install_tag(&mut card, &tag_params()));
    ok(select_tag(&mut card).1);
    let mut r = reader_for(&mut card, 1);
    value_cmd(&mut card, &mut r, tag::INS_INCREMENT, Some(START)).unwrap();
    assert_eq!(transfer(&mut card, &mut r, 1), START);
    disk
}

/// A card on a fork of `base`, authenticated, DECREMENT done: returns the TRANSFER to tear.
fn begin(base: &SimDisk, options: DiskOptions) -> (SimCard, SimDisk, Command) {
    let disk = base.fork();
    let mut card = open_card(&disk, options);
    ok(select_tag(&mut card).1);
    let mut r = reader_for(&mut card, 1);
    value_cmd(&mut card, &mut r, tag::INS_DECREMENT, Some(SPEND)).unwrap();
    let (cmd, _) = r.command(tag::INS_TRANSFER, None).unwrap();
    (card, disk, cmd)
}

/// After power returns: the block is a valid value block holding the old or the new value;
/// a reader that sees the old value decrements again. Returns whether the tear completed.
fn recover(card: &mut SimCard) -> bool {
    ok(select_tag(card).1);
    let after = value_of(card, 1);
    assert!(
        after == START || after == START - SPEND,
        "value {after} is neither {START} nor {}",
        START - SPEND
    );
    let completed = after != START;
    if !completed {
        let mut r = reader_for(card, 1);
        value_cmd(card, &mut r, tag::INS_DECREMENT, Some(SPEND)).unwrap();
        assert_eq!(transfer(card, &mut r, 1), START - SPEND);
    }
    assert_eq!(value_of(card, 1), START - SPEND, "debited exactly once");
    assert_eq!(value_of(card, 2), 0, "the other blocks are untouched");
    completed
}

#[test]
fn decrement_transfer_torn_everywhere() {
    for options in [
        DiskOptions::default(),
        DiskOptions {
            checkpoint_bytes: 0,
        },
    ] {
        let base = prepared(options);
        let (mut card, disk, cmd) = begin(&base, options);
        disk.reset_count();
        ok(tx(&mut card, &cmd).1);
        let points = disk.write_points();
        let sizes = disk.write_sizes();
        assert!(points > 0, "TRANSFER writes nothing");
        drop(card);
        assert!(recover(&mut open_card(&disk, options)));

        let (mut saw_old, mut saw_new) = (0usize, 0usize);
        for write in 0..points {
            let size = sizes.get(write as usize).copied().unwrap_or(0);
            let step = (size / 16).max(1);
            let mut keeps: Vec<usize> = (0..size).step_by(step).collect();
            keeps.push(size.saturating_sub(1));
            keeps.push(size);
            keeps.dedup();
            for keep in keeps {
                for model in [CrashModel::LoseUnsynced, CrashModel::KeepWritten] {
                    let (mut card, disk, cmd) = begin(&base, options);
                    disk.arm_cut(CutPoint { write, keep });
                    let raw = card.transmit(&cmd.to_vec().unwrap());
                    assert!(raw.len() >= 2);
                    drop(card);
                    let mut card = open_card(&disk.power_cycle(model), options);
                    if recover(&mut card) {
                        saw_new += 1;
                    } else {
                        saw_old += 1;
                    }
                    card.check_invariants().unwrap();
                }
            }
        }
        eprintln!(
            "TRANSFER: {points} write points, {saw_old} kept the old value, {saw_new} the new"
        );
        assert!(
            saw_old > 0,
            "a cut at the first write must keep the old value"
        );
    }
}
