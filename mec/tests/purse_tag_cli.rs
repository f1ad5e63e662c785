//! `mec purse tag ...` and `mec purse ticket ...` end to end on an in-process virtual SE kept
//! on disk: the purse, the value-block tag and the e-ticket store installed with `mec gp`
//! (install parameters from `mec purse tag params` / `mec purse ticket params`), value moved
//! from the purse to the tag exactly once whatever answer is lost (and finished later with
//! `resume` after a power cut between the debit and the credit), the tag's values read and
//! spent, tickets bought, listed and checked at a gate that refuses a replayed answer.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{AID, Run, card_with_purse, field, gp, install, mec, purse, refused};

const TAG: &str = "A000000647565401";
const STORE: &str = "A000000647544B01";
const UID: &str = "04527A9A3C1180";
const WHEN: &str = "20261121100000";

/// A card with the purse (personalized with `perso-data PERSO...`, which carries the tag access
/// data unless `--no-tag`), the tag (UID [`UID`]) and the ticket store.
fn card_with(perso: &[&str]) -> tempfile::TempDir {
    let dir = card_with_purse(perso);
    let params = mec(&["purse", "tag", "--uid", UID, "params"]);
    assert_eq!(params.code, 0, "{}", params.err);
    assert!(params.err.contains("TEST tag master key"));
    install(&dir, "F06D6563505503", TAG, Some(params.out.trim()));
    let params = mec(&["purse", "ticket", "params"]);
    assert_eq!(params.code, 0, "{}", params.err);
    install(&dir, "F06D6563505502", STORE, Some(params.out.trim()));
    dir
}

fn card() -> tempfile::TempDir {
    card_with(&[])
}

fn cents(amount: &str) -> i64 {
    let (u, c) = amount.split_once('.').unwrap();
    let sign = if u.starts_with('-') { -1 } else { 1 };
    sign * (u.trim_start_matches('-').parse::<i64>().unwrap() * 100 + c.parse::<i64>().unwrap())
}

fn ep_balance(dir: &tempfile::TempDir) -> i64 {
    let r = purse(dir, &["balance"]);
    assert_eq!(r.code, 0, "{}", r.err);
    cents(&field(&r.out, "EP balance"))
}

/// `(value, voucher counter)` of a tag block, from `tag show --block`.
fn tag_block(dir: &tempfile::TempDir, block: &str) -> (i64, u32) {
    let r = purse(dir, &["tag", "--uid", UID, "show", "--block", block]);
    assert_eq!(r.code, 0, "{}", r.err);
    let line = r
        .out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(block))
        .unwrap_or_else(|| panic!("no block {block} in\n{}", r.out));
    let cols: Vec<&str> = line.split_whitespace().collect();
    (cents(cols[2]), cols[3].parse().unwrap())
}

fn load(dir: &tempfile::TempDir, amount: &str) {
    let r = purse(dir, &["load", "--amount", amount, "--when", WHEN]);
    assert_eq!(r.code, 0, "{}", r.err);
}

fn mv(dir: &tempfile::TempDir, faults: &[&str], amount: &str, block: &str) -> Run {
    let mut args = faults.to_vec();
    args.extend([
        "--pin", "123456", "tag", "--uid", UID, "move", "--amount", amount, "--block", block,
        "--when", WHEN,
    ]);
    purse(dir, &args)
}

fn moves_logged(dir: &tempfile::TempDir) -> usize {
    let r = purse(dir, &["log"]);
    assert_eq!(r.code, 0, "{}", r.err);
    r.out.lines().filter(|l| l.contains("EP to tag")).count()
}

#[test]
fn move_show_decrement_and_refusals() {
    let dir = card();
    load(&dir, "100");
    assert_eq!(tag_block(&dir, "1"), (0, 0));

    let r = mv(&dir, &[], "7.50", "1");
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.err.contains("TEST tag master key"));
    assert_eq!(field(&r.out, "MOVE TO TAG"), "APPROVED");
    assert_eq!(field(&r.out, "EP balance before"), "100.00");
    assert_eq!(field(&r.out, "EP balance after"), "92.50");
    assert_eq!(field(&r.out, "Voucher counter"), "0 -> 1");
    assert_eq!(field(&r.out, "Tag value after"), "7.50");
    assert_eq!(field(&r.out, "Offline ATC"), "0");
    assert_eq!(field(&r.out, "Tag UID"), UID);
    assert_eq!(ep_balance(&dir), 9_250);
    assert_eq!(tag_block(&dir, "1"), (750, 1));

    // The whole tag: every value block valid, only block 1 holds value.
    let r = purse(&dir, &["tag", "--uid", UID, "show"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let rows: Vec<&str> = r
        .out
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<u8>().is_ok())
        })
        .collect();
    assert_eq!(rows.len(), 12, "{}", r.out);
    assert!(!r.out.contains("INVALID"));
    assert!(r.out.contains("MAC verified"));

    // A transit gate spends from the tag.
    let r = purse(
        &dir,
        &[
            "tag",
            "--uid",
            UID,
            "decrement",
            "--amount",
            "2.40",
            "--block",
            "1",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(field(&r.out, "TAG DECREMENT"), "APPROVED");
    assert_eq!(field(&r.out, "Value before"), "7.50");
    assert_eq!(field(&r.out, "Value after"), "5.10");
    assert_eq!(tag_block(&dir, "1"), (510, 1));

    // More than the block holds: 9401, nothing changes.
    let r = purse(
        &dir,
        &[
            "tag",
            "--uid",
            UID,
            "decrement",
            "--amount",
            "5.11",
            "--block",
            "1",
        ],
    );
    refused(&r, 1, "9401");
    assert!(r.err.contains("block holds less"), "{}", r.err);
    assert_eq!(tag_block(&dir, "1"), (510, 1));

    // More than the EP holds: 9401 from the purse, nothing debited or credited.
    let r = mv(&dir, &[], "92.51", "1");
    refused(&r, 1, "MOVE TO TAG");
    assert!(r.err.contains("EP holds less"), "{}", r.err);
    assert_eq!(ep_balance(&dir), 9_250);
    assert_eq!(tag_block(&dir, "1"), (510, 1));

    // Wrong tag master key, wrong UID: the tag refuses the authentication (9302).
    for args in [
        vec![
            "tag",
            "--uid",
            UID,
            "--tag-master-key",
            "00112233445566778899AABBCCDDEEFE",
            "show",
        ],
        vec!["tag", "--uid", "04527A9A3C1181", "show", "--block", "1"],
        vec![
            "tag",
            "--uid",
            "04527A9A3C1181",
            "decrement",
            "--amount",
            "1",
        ],
    ] {
        let r = purse(&dir, &args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.err);
        assert!(
            r.err.contains("9302") && r.err.contains("wrong key"),
            "{}",
            r.err
        );
    }
    // A move naming another UID is refused before anything is debited: the terminal first
    // authenticates to the tag with the sector key of that UID (a voucher bound to another
    // UID could never be credited here).
    let r = purse(
        &dir,
        &[
            "--pin",
            "123456",
            "tag",
            "--uid",
            "04527A9A3C1181",
            "move",
            "--amount",
            "1",
        ],
    );
    refused(&r, 1, "9302");
    refused(&r, 1, "wrong key");
    assert_eq!(ep_balance(&dir), 9_250);
    assert_eq!(moves_logged(&dir), 1);
    // Without the PIN, from the ED, to a sector trailer, without --uid: usage errors.
    for args in [
        vec!["tag", "--uid", UID, "move", "--amount", "1"],
        vec![
            "--wallet", "ed", "--pin", "123456", "tag", "--uid", UID, "move", "--amount", "1",
        ],
        vec![
            "--pin", "123456", "tag", "--uid", UID, "move", "--amount", "1", "--block", "7",
        ],
        vec!["--pin", "123456", "tag", "move", "--amount", "1"],
    ] {
        let r = purse(&dir, &args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.err);
    }
    // A wrong PIN: 63C2, nothing moved.
    let r = purse(
        &dir,
        &[
            "--pin", "654321", "tag", "--uid", UID, "move", "--amount", "1",
        ],
    );
    refused(&r, 1, "63C2");
    assert_eq!(ep_balance(&dir), 9_250);
    // Conservation: loaded = EP + tag + spent at the gate.
    assert_eq!(ep_balance(&dir) + tag_block(&dir, "1").0 + 240, 10_000);
}

#[test]
fn lost_answers_move_value_exactly_once() {
    let dir = card();
    load(&dir, "100");
    // The MOVE answer lost after the purse committed: voucher recovered with GET TRANSACTION
    // PROVE, never a second MOVE.
    let r = mv(&dir, &["--virtual-lose-response", "0"], "10", "2");
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("GET TRANSACTION PROVE"), "{}", r.out);
    assert_eq!(field(&r.out, "Tag value after"), "10.00");
    // The CREDIT answer lost after the tag committed: the counter advanced, not sent again.
    let r = mv(&dir, &["--virtual-lose-response", "1"], "5", "2");
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("counter had advanced"), "{}", r.out);
    // Power cut before the tag got the voucher (the SELECT of the tag after MOVE never
    // reached the card: APDUs 0-3 tag SELECT/READ COUNTER/AUTHENTICATE x2, 4-7 purse
    // SELECT/READ BINARY/VERIFY/GET BALANCE, 8 MOVE, 9 SELECT tag): presented after
    // reconnecting, once.
    let r = mv(&dir, &["--virtual-drop-apdu", "9"], "1", "2");
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("presented again"), "{}", r.out);
    assert_eq!(ep_balance(&dir), 10_000 - 1_600);
    assert_eq!(tag_block(&dir, "2"), (1_600, 3));
    assert_eq!(moves_logged(&dir), 3);
    // A MOVE that never reached the card: nothing debited, exit 4, and nothing credited.
    let r = mv(&dir, &["--virtual-drop-apdu", "8"], "1", "2");
    refused(&r, 4, "nothing was debited");
    assert_eq!(ep_balance(&dir), 10_000 - 1_600);
    assert_eq!(tag_block(&dir, "2"), (1_600, 3));
    // The TRANSFER answer of a gate's decrement lost: settled by reading the block.
    let r = purse(
        &dir,
        &[
            "--virtual-lose-response",
            "0",
            "tag",
            "--uid",
            UID,
            "decrement",
            "--amount",
            "3",
            "--block",
            "2",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("TRANSFER answer lost"), "{}", r.out);
    assert_eq!(field(&r.out, "Value after"), "13.00");
    assert_eq!(tag_block(&dir, "2"), (1_300, 3));
}

#[test]
fn resume_finishes_a_move_cut_between_debit_and_credit() {
    let dir = card();
    load(&dir, "100");
    // Another terminal debits the purse (VERIFY + MOVE TO TAG for 1.00 to block 1 at voucher
    // counter 0) and loses power before presenting the voucher to the tag.
    let r = gp(
        &dir,
        &[
            "apdu",
            &format!("00A4040008{AID}"),
            "0020000003123456",
            &format!("805600001700000064{UID}0100000000202611211000000A"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(ep_balance(&dir), 9_900);
    assert_eq!(tag_block(&dir, "1"), (0, 0));
    // Not for block 2: verified with the sector key and refused (exit 3), nothing credited.
    let r = purse(
        &dir,
        &["tag", "--uid", UID, "resume", "--atc", "0", "--block", "2"],
    );
    assert_eq!(r.code, 3, "{}", r.err);
    assert_eq!(tag_block(&dir, "1"), (0, 0));
    // Unknown ATC, other UID: usage errors.
    let r = purse(
        &dir,
        &["tag", "--uid", UID, "resume", "--atc", "7", "--block", "1"],
    );
    assert_eq!(r.code, 2, "{}", r.err);
    let r = purse(
        &dir,
        &[
            "tag",
            "--uid",
            "05527A9A3C1181",
            "resume",
            "--atc",
            "0",
            "--block",
            "1",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.err);
    // Resume credits it, once.
    let r = purse(
        &dir,
        &["tag", "--uid", UID, "resume", "--atc", "0", "--block", "1"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("CREDITED now"), "{}", r.out);
    assert_eq!(field(&r.out, "Tag value after"), "1.00");
    let r = purse(
        &dir,
        &["tag", "--uid", UID, "resume", "--atc", "0", "--block", "1"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("Already on the tag"), "{}", r.out);
    assert_eq!(tag_block(&dir, "1"), (100, 1));
    assert_eq!(ep_balance(&dir) + tag_block(&dir, "1").0, 10_000);
}

#[test]
fn resume_does_not_guess_between_two_vouchers_for_the_same_counter() {
    let dir = card();
    load(&dir, "100");
    // Two moves to block 1 debited for the same voucher counter 0 (two terminals at once):
    // only one can ever be credited.
    let mv = format!("805600001700000064{UID}0100000000202611211000000A");
    let r = gp(
        &dir,
        &[
            "apdu",
            &format!("00A4040008{AID}"),
            "0020000003123456",
            &mv,
            &mv,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(ep_balance(&dir), 9_800);
    let r = purse(
        &dir,
        &["tag", "--uid", UID, "resume", "--atc", "0", "--block", "1"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("CREDITED now"), "{}", r.out);
    // The other cannot be credited any more, and which one the tag took is not recorded on
    // the tag: both are reported as unsettled (exit 4), nothing is sent to the tag.
    for atc in ["1", "0"] {
        let r = purse(
            &dir,
            &["tag", "--uid", UID, "resume", "--atc", atc, "--block", "1"],
        );
        refused(&r, 4, "same block and counter");
    }
    assert_eq!(tag_block(&dir, "1"), (100, 1));
}

#[test]
fn a_purse_without_tag_access_refuses_the_move() {
    let dir = card_with(&["--no-tag"]);
    load(&dir, "10");
    let r = mv(&dir, &[], "1", "1");
    refused(&r, 1, "6A88");
    refused(&r, 1, "DGI 0401");
    assert_eq!(ep_balance(&dir), 1_000);
    // perso-data emits DGI 0401 by default, and not with --no-tag.
    let with = mec(&["purse", "perso-data"]);
    let without = mec(&["purse", "perso-data", "--no-tag"]);
    assert!(with.out.lines().any(|l| l.starts_with("0401")));
    assert!(!without.out.lines().any(|l| l.starts_with("0401")));
}

fn ticket_args(id: &str) -> Vec<&str> {
    vec![
        "--id", id, "--event", "CONCERT1", "--from", "20261101", "--to", "20261130",
    ]
}

#[test]
fn tickets_buy_list_gate_and_replay() {
    let dir = card();
    load(&dir, "30");
    let r = purse(&dir, &["ticket", "list"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(field(&r.out, "Tickets"), "0");

    let mut buy = vec!["ticket", "buy", "--amount", "25", "--when", WHEN];
    buy.extend(ticket_args("TKT00001"));
    let r = purse(&dir, &buy);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(field(&r.out, "PURCHASE"), "APPROVED");
    assert!(
        r.out.contains("STORE TICKET 9000: ticket TKT00001"),
        "{}",
        r.out
    );
    assert_eq!(ep_balance(&dir), 500);

    // Not enough value for a second one: the purchase is refused and no ticket delivered.
    let mut buy2 = vec!["ticket", "buy", "--amount", "25", "--when", WHEN];
    buy2.extend(ticket_args("TKT00002"));
    let r = purse(&dir, &buy2);
    refused(&r, 1, "9401");
    assert!(!r.out.contains("STORE TICKET"));

    // The same ticket delivered again: accepted without change (a lost answer is retried).
    let mut deliver = vec!["ticket", "deliver"];
    deliver.extend(ticket_args("TKT00001"));
    let r = purse(&dir, &deliver);
    assert_eq!(r.code, 0, "{}", r.err);
    // A delivery whose answer is lost is sent again after reconnecting.
    let mut deliver3 = vec!["--virtual-lose-response", "0", "ticket", "deliver"];
    deliver3.extend(ticket_args("TKT00003"));
    let r = purse(&dir, &deliver3);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("answer lost: sent again"), "{}", r.out);
    let r = purse(&dir, &["ticket", "list"]);
    assert_eq!(field(&r.out, "Tickets"), "2");
    assert!(r.out.contains("TKT00001") && r.out.contains("TKT00003"));
    // Wrong delivery key: 9302, nothing stored.
    let mut bad = vec![
        "ticket",
        "--delivery-key",
        "34343434343434343434343434343434",
        "deliver",
    ];
    bad.extend(ticket_args("TKT00004"));
    let r = purse(&dir, &bad);
    refused(&r, 1, "9302");
    refused(&r, 1, "--delivery-key");
    let r = purse(&dir, &["ticket", "list"]);
    assert_eq!(field(&r.out, "Tickets"), "2");
    // A different ticket under a stored id: 6985, nothing changes.
    let r = purse(
        &dir,
        &[
            "ticket", "deliver", "--id", "TKT00001", "--event", "CONCERT2", "--from", "20261101",
            "--to", "20261130",
        ],
    );
    refused(&r, 1, "6985");
    refused(&r, 1, "different ticket");

    // The gate: ACCEPT with the gate key over a fresh challenge.
    let gate = |extra: &[&str]| {
        let mut args = vec!["ticket", "gate", "--id", "TKT00001"];
        args.extend_from_slice(extra);
        purse(&dir, &args)
    };
    let first = gate(&["--date", "20261121"]);
    assert_eq!(first.code, 0, "{}", first.err);
    assert_eq!(field(&first.out, "GATE"), "ACCEPT");
    assert_eq!(field(&first.out, "Event"), "CONCERT1");
    let second = gate(&["--date", "20261121"]);
    assert_eq!(second.code, 0, "{}", second.err);
    assert_ne!(
        field(&first.out, "Challenge"),
        field(&second.out, "Challenge")
    );
    // A recorded answer replayed against a new read: REFUSED (exit 3).
    let answer = field(&first.out, "Answer");
    let r = gate(&["--date", "20261121", "--replay-answer", &answer]);
    refused(&r, 3, "REFUSED");
    assert!(!r.out.contains("ACCEPT"));
    // Another event's gate key: REFUSED (exit 3).
    let r = gate(&[
        "--date",
        "20261121",
        "--gate-key",
        "45454545454545454545454545454545",
    ]);
    assert_eq!(r.code, 3, "{}", r.err);
    // Outside the validity dates (6985), unknown ticket (6A88): REFUSED by the card (exit 1).
    let r = gate(&["--date", "20261201"]);
    refused(&r, 1, "6985");
    refused(&r, 1, "REFUSED");
    let r = purse(
        &dir,
        &["ticket", "gate", "--id", "TKT00009", "--date", "20261121"],
    );
    refused(&r, 1, "6A88");
}

#[test]
fn a_failed_delivery_after_a_paid_purchase_says_how_to_finish() {
    let dir = card();
    load(&dir, "30");
    let mut buy = vec![
        "ticket",
        "--delivery-key",
        "34343434343434343434343434343434",
        "buy",
        "--amount",
        "10",
        "--when",
        WHEN,
    ];
    buy.extend(ticket_args("TKT00001"));
    let r = purse(&dir, &buy);
    assert_eq!(r.code, 1, "{}", r.err);
    // The purchase happened (receipt printed) and is not repeated by the retry.
    assert_eq!(field(&r.out, "PURCHASE"), "APPROVED");
    assert!(r.err.contains("purchase above is paid"), "{}", r.err);
    assert_eq!(ep_balance(&dir), 2_000);
    let mut deliver = vec!["ticket", "deliver"];
    deliver.extend(ticket_args("TKT00001"));
    let r = purse(&dir, &deliver);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(ep_balance(&dir), 2_000);
    let r = purse(&dir, &["ticket", "list"]);
    assert_eq!(field(&r.out, "Tickets"), "1");
}

#[test]
fn a_full_store_refuses_the_ninth_ticket() {
    let dir = card();
    for n in 1..=9 {
        let id = format!("TKT0000{n}");
        let mut args = vec!["ticket", "deliver"];
        args.extend(ticket_args(&id));
        let r = purse(&dir, &args);
        if n <= 8 {
            assert_eq!(r.code, 0, "{n}: {}", r.err);
        } else {
            refused(&r, 1, "6A84");
            refused(&r, 1, "full");
        }
    }
}
