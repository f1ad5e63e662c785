//! `mec purse` end to end on an in-process virtual SE kept on disk: the purse installed and
//! personalized with `mec gp install` + `mec gp store-data` (DGIs from `mec purse
//! perso-data`), then balance, load, purchase, log, prove, refusals with their status words
//! and exit codes, and tear recovery after a response lost after the commit.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{card_with_purse as card_with, field, purse, purse_stdin, refused};

/// A card with the purse installed and personalized; returns the state directory.
fn card() -> tempfile::TempDir {
    card_with(&[])
}

#[test]
fn install_personalize_load_purchase_log_prove() {
    let dir = card();
    let r = purse(&dir, &["balance"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(field(&r.out, "EP balance"), "0.00");
    assert_eq!(field(&r.out, "Card ASN"), "0000000012345678");
    assert_eq!(field(&r.out, "Valid"), "2020-01-01 to 2035-12-31");

    let r = purse(
        &dir,
        &["load", "--amount", "100", "--when", "20261121071500"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.err.contains("TEST master keys"));
    assert_eq!(field(&r.out, "LOAD"), "APPROVED");
    assert_eq!(field(&r.out, "Amount"), "100.00");
    assert_eq!(field(&r.out, "Balance before"), "0.00");
    assert_eq!(field(&r.out, "Balance after"), "100.00");
    assert_eq!(field(&r.out, "Online ATC"), "0");
    assert_eq!(field(&r.out, "Date/time"), "2026-11-21 07:15:00");
    assert_eq!(field(&r.out, "Terminal"), "000000000042");
    let load_tac = field(&r.out, "TAC");
    assert_eq!(load_tac.len(), 8);

    let r = purse(
        &dir,
        &[
            "purchase",
            "--amount",
            "12.5",
            "--terminal-id",
            "000000000777",
            "--serial",
            "41",
            "--when",
            "20261121071600",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(field(&r.out, "PURCHASE"), "APPROVED");
    assert_eq!(field(&r.out, "Amount"), "12.50");
    assert_eq!(field(&r.out, "Balance before"), "100.00");
    assert_eq!(field(&r.out, "Balance after"), "87.50");
    assert_eq!(field(&r.out, "Offline ATC"), "0");
    assert_eq!(field(&r.out, "Terminal serial"), "42");
    assert!(r.out.contains("MAC2 verified by the SAM"));
    let tac = field(&r.out, "TAC");

    let r = purse(&dir, &["balance"]);
    assert_eq!(field(&r.out, "EP balance"), "87.50");

    let r = purse(&dir, &["log"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let lines: Vec<&str> = r.out.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.out);
    assert!(lines[1].contains("EP purchase") && lines[1].contains("12.50"));
    assert!(lines[1].contains("2026-11-21 07:16:00") && lines[1].contains("000000000777"));
    assert!(lines[2].contains("EP load") && lines[2].contains("100.00"));

    let r = purse(&dir, &["prove", "--atc", "0"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.ends_with(&format!("TAC {tac}\n")), "{}", r.out);
    let r = purse(&dir, &["prove", "--atc", "0", "--type", "load"]);
    assert!(r.out.ends_with(&format!("TAC {load_tac}\n")), "{}", r.out);
}

#[test]
fn refusals_have_exact_status_words_and_exit_codes() {
    let dir = card();
    assert_eq!(purse(&dir, &["load", "--amount", "5"]).code, 0);
    let r = purse(&dir, &["purchase", "--amount", "5.01"]);
    assert_eq!(r.code, 1);
    assert!(
        r.err
            .contains("INITIALIZE FOR PURCHASE: card answered 9401 (insufficient balance)"),
        "{}",
        r.err
    );
    let r = purse(&dir, &["load", "--amount", "9999.96"]);
    refused(&r, 1, "9501 (maximum balance exceeded)");
    let r = purse(&dir, &["prove", "--atc", "9"]);
    refused(&r, 1, "9406");
    // Wrong issuer key: MAC1 does not verify, nothing is sent to the card.
    let r = purse(
        &dir,
        &[
            "load",
            "--amount",
            "1",
            "--issuer-master-key",
            "00112233445566778899AABBCCDDEEFF",
        ],
    );
    refused(&r, 3, "MAC1");
    // Wrong SAM key: the card refuses MAC1 with 9302.
    let r = purse(
        &dir,
        &[
            "purchase",
            "--amount",
            "1",
            "--purchase-master-key",
            "00112233445566778899AABBCCDDEEFF",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.err
            .contains("DEBIT FOR PURCHASE: card answered 9302 (MAC invalid)"),
        "{}",
        r.err
    );
    // Usage errors.
    assert_eq!(purse(&dir, &["purchase", "--amount", "1.234"]).code, 2);
    assert_eq!(purse(&dir, &["purchase", "--amount", "0"]).code, 2);
    assert_eq!(purse(&dir, &["--aid", "A0000003330199", "balance"]).code, 1);
    // Nothing changed the balance.
    assert_eq!(field(&purse(&dir, &["balance"]).out, "EP balance"), "5.00");
}

#[test]
fn lost_answers_are_recovered_without_double_debit_or_credit() {
    let dir = card();
    assert_eq!(purse(&dir, &["load", "--amount", "20"]).code, 0);
    // DEBIT FOR PURCHASE commits, its answer is lost: recovered, debited once.
    let r = purse(
        &dir,
        &[
            "--virtual-lose-response",
            "0",
            "purchase",
            "--amount",
            "1.25",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out.contains("recovered with GET TRANSACTION PROVE"),
        "{}",
        r.out
    );
    assert_eq!(field(&r.out, "Balance after"), "18.75");
    assert_eq!(field(&purse(&dir, &["balance"]).out, "EP balance"), "18.75");
    // CREDIT FOR LOAD likewise.
    let r = purse(
        &dir,
        &["--virtual-lose-response", "0", "load", "--amount", "1"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("MAC2 and TAC proved"), "{}", r.out);
    assert_eq!(field(&purse(&dir, &["balance"]).out, "EP balance"), "19.75");
    // The log holds each transaction once.
    let log = purse(&dir, &["log"]).out;
    assert_eq!(log.lines().count(), 4, "{log}");
}

#[test]
fn a_debit_that_never_reached_the_card_is_reported_not_charged() {
    let dir = card();
    assert_eq!(purse(&dir, &["load", "--amount", "10"]).code, 0);
    // APDUs of a purchase: SELECT, READ BINARY, INITIALIZE FOR PURCHASE, DEBIT (3).
    let r = purse(
        &dir,
        &["--virtual-drop-apdu", "3", "purchase", "--amount", "4"],
    );
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(
        r.err
            .contains("the purchase did not happen and nothing was debited"),
        "{}",
        r.err
    );
    assert_eq!(field(&purse(&dir, &["balance"]).out, "EP balance"), "10.00");
    // The same for a load: CREDIT (3) never arrives; the card has no proof (9406).
    let r = purse(&dir, &["--virtual-drop-apdu", "3", "load", "--amount", "4"]);
    refused(&r, 4, "nothing was credited");
    assert!(r.err.contains("9406"), "{}", r.err);
    assert_eq!(field(&purse(&dir, &["balance"]).out, "EP balance"), "10.00");
}

fn join(head: &[&'static str], tail: &[&'static str]) -> Vec<&'static str> {
    let mut v = head.to_vec();
    v.extend_from_slice(tail);
    v
}

fn log_lines(dir: &tempfile::TempDir, extra: &[&str]) -> usize {
    let mut args = extra.to_vec();
    args.push("log");
    let r = purse(dir, &args);
    assert_eq!(r.code, 0, "{}", r.err);
    r.out.lines().count() - 1
}

#[test]
fn ed_load_purchase_unload_need_the_pin() {
    let dir = card();
    let with = |extra: &[&'static str]| join(&["--wallet", "ed", "--pin", "123456"], extra);
    // Without a PIN the card refuses every ED operation with 6982.
    let r = purse(&dir, &["--wallet", "ed", "load", "--amount", "50"]);
    refused(
        &r,
        1,
        "INITIALIZE FOR LOAD: card answered 6982 (security status not satisfied): ED operations need the cardholder PIN",
    );
    let r = purse(&dir, &["--wallet", "ed", "balance"]);
    refused(&r, 1, "GET BALANCE (ED): card answered 6982");

    let r = purse(
        &dir,
        &with(&["load", "--amount", "50", "--when", "20261121080000"]),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(field(&r.out, "Wallet"), "ED (electronic deposit)");
    assert_eq!(field(&r.out, "Balance after"), "50.00");
    assert_eq!(field(&r.out, "Online ATC"), "0");

    // ED purchase without the PIN: refused, nothing debited.
    let r = purse(&dir, &["--wallet", "ed", "purchase", "--amount", "5"]);
    assert_eq!(r.code, 1);
    assert!(
        r.err
            .contains("INITIALIZE FOR PURCHASE: card answered 6982"),
        "{}",
        r.err
    );
    // --wallet and --pin may also follow the verb.
    let r = purse(
        &dir,
        &[
            "purchase",
            "--wallet",
            "ed",
            "--pin",
            "123456",
            "--amount",
            "5",
            "--serial",
            "9",
            "--when",
            "20261121080100",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(field(&r.out, "Wallet"), "ED (electronic deposit)");
    assert_eq!(field(&r.out, "Balance before"), "50.00");
    assert_eq!(field(&r.out, "Balance after"), "45.00");
    assert_eq!(field(&r.out, "Offline ATC"), "0");
    let purchase_tac = field(&r.out, "TAC");

    // Unloading more than the balance: 9401, nothing changes.
    let r = purse(&dir, &["--pin", "123456", "unload", "--amount", "45.01"]);
    assert_eq!(r.code, 1);
    assert!(
        r.err
            .contains("INITIALIZE FOR UNLOAD: card answered 9401 (insufficient balance)"),
        "{}",
        r.err
    );
    assert_eq!(log_lines(&dir, &[]), 2);
    let r = purse(&dir, &["--pin", "123456", "balance"]);
    assert_eq!(field(&r.out, "ED balance"), "45.00");
    assert_eq!(field(&r.out, "EP balance"), "0.00");

    // Unload without the PIN: 6982.
    let r = purse(&dir, &["unload", "--amount", "1"]);
    refused(&r, 1, "INITIALIZE FOR UNLOAD: card answered 6982");
    // Wrong DULK master key: the issuer refuses MAC1 and sends nothing.
    let r = purse(
        &dir,
        &[
            "--pin",
            "123456",
            "unload",
            "--amount",
            "1",
            "--unload-master-key",
            "00112233445566778899AABBCCDDEEFF",
        ],
    );
    refused(&r, 3, "MAC1 of INITIALIZE FOR UNLOAD");
    // The EP cannot be unloaded.
    assert_eq!(
        purse(&dir, &["--wallet", "ep", "unload", "--amount", "1"]).code,
        2
    );

    let r = purse(
        &dir,
        &[
            "--pin",
            "123456",
            "unload",
            "--amount",
            "20",
            "--when",
            "20261121080200",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(field(&r.out, "UNLOAD"), "APPROVED");
    assert_eq!(field(&r.out, "Balance before"), "45.00");
    assert_eq!(field(&r.out, "Balance after"), "25.00");
    assert_eq!(field(&r.out, "Online ATC"), "1");
    assert!(
        r.out
            .contains("MAC1 and TAC verified by the issuer load authority")
    );
    let unload_tac = field(&r.out, "TAC");

    let r = purse(&dir, &["--wallet", "ed", "balance", "--pin", "123456"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(field(&r.out, "ED balance"), "25.00");
    assert!(!r.out.contains("EP balance"), "{}", r.out);

    // Proofs and the log, per wallet.
    let r = purse(&dir, &["--wallet", "ed", "prove", "--atc", "0"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.starts_with("ED purchase ATC 0"), "{}", r.out);
    assert!(
        r.out.ends_with(&format!("TAC {purchase_tac}\n")),
        "{}",
        r.out
    );
    let r = purse(&dir, &["prove", "--atc", "1", "--type", "unload"]);
    assert!(r.out.ends_with(&format!("TAC {unload_tac}\n")), "{}", r.out);
    let r = purse(&dir, &["--wallet", "ed", "log"]);
    let lines: Vec<&str> = r.out.lines().collect();
    assert!(
        lines[1].contains("ED unload") && lines[1].contains("20.00"),
        "{}",
        r.out
    );
    assert!(
        lines[2].contains("ED purchase") && lines[2].contains("5.00"),
        "{}",
        r.out
    );
    assert!(
        lines[3].contains("ED load") && lines[3].contains("50.00"),
        "{}",
        r.out
    );
    assert_eq!(
        log_lines(&dir, &["--wallet", "ep"]),
        1,
        "only the header line"
    );
}

#[test]
fn pin_tries_change_block_unblock_and_reload() {
    let dir = card();
    let r = purse(&dir, &["verify-pin"]);
    assert_eq!(
        (r.code, r.out.as_str()),
        (0, "PIN tries left: 3\n"),
        "{}",
        r.err
    );
    let r = purse(&dir, &["verify-pin", "--pin", "111111"]);
    assert_eq!(r.code, 1);
    assert!(
        r.err
            .contains("VERIFY PIN: card answered 63C2 (verification failed, counter gives tries left): wrong PIN, 2 tries left"),
        "{}",
        r.err
    );
    assert_eq!(purse(&dir, &["verify-pin"]).out, "PIN tries left: 2\n");
    let r = purse(&dir, &["verify-pin", "--pin", "123456"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("PIN correct"));
    assert_eq!(purse(&dir, &["verify-pin"]).out, "PIN tries left: 3\n");

    // CHANGE PIN: a wrong old PIN costs a try and changes nothing.
    let r = purse(&dir, &["change-pin", "--old", "654321", "--new", "2468"]);
    refused(&r, 1, "CHANGE PIN: card answered 63C2");
    let r = purse(&dir, &["change-pin", "--old", "123456", "--new", "2468"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(purse(&dir, &["verify-pin", "--pin", "123456"]).code, 1);
    assert_eq!(purse(&dir, &["verify-pin", "--pin", "2468"]).code, 0);

    // Three wrong PINs block it: 63C2, 63C1, 63C0, then 6983 even for the right one.
    for left in ["63C2", "63C1", "63C0"] {
        let r = purse(&dir, &["verify-pin", "--pin", "0000"]);
        refused(&r, 1, left);
    }
    let r = purse(&dir, &["verify-pin", "--pin", "2468"]);
    assert_eq!(r.code, 1);
    assert!(
        r.err
            .contains("card answered 6983 (authentication method blocked): the PIN is blocked"),
        "{}",
        r.err
    );
    let r = purse(&dir, &["verify-pin"]);
    refused(&r, 1, "6983");
    // An ED purchase stops at VERIFY.
    let r = purse(
        &dir,
        &[
            "--wallet", "ed", "--pin", "2468", "purchase", "--amount", "1",
        ],
    );
    refused(&r, 1, "VERIFY PIN: card answered 6983");

    // PIN UNBLOCK with a wrong DPUK master key: 9302, still blocked.
    let r = purse(
        &dir,
        &[
            "unblock-pin",
            "--new",
            "1357",
            "--key",
            "00112233445566778899AABBCCDDEEFF",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.err
            .contains("PIN UNBLOCK: card answered 9302 (MAC invalid): wrong key for this card"),
        "{}",
        r.err
    );
    assert_eq!(purse(&dir, &["verify-pin"]).code, 1);
    let r = purse(&dir, &["unblock-pin", "--new", "1357"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.starts_with("PIN UNBLOCK 9000"), "{}", r.out);
    assert_eq!(purse(&dir, &["verify-pin"]).out, "PIN tries left: 3\n");
    assert_eq!(purse(&dir, &["verify-pin", "--pin", "1357"]).code, 0);

    // RELOAD PIN (DRPK) also resets the counter.
    assert_eq!(purse(&dir, &["verify-pin", "--pin", "0000"]).code, 1);
    let r = purse(
        &dir,
        &[
            "reload-pin",
            "--new",
            "123456",
            "--key",
            "00112233445566778899AABBCCDDEEFF",
        ],
    );
    refused(&r, 1, "RELOAD PIN: card answered 9302");
    let r = purse(&dir, &["reload-pin", "--new", "123456"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.starts_with("RELOAD PIN 9000"), "{}", r.out);
    assert_eq!(purse(&dir, &["verify-pin"]).out, "PIN tries left: 3\n");
    assert_eq!(purse(&dir, &["verify-pin", "--pin", "123456"]).code, 0);

    // Usage errors change nothing on the card.
    assert_eq!(purse(&dir, &["verify-pin", "--pin", "12a4"]).code, 2);
    assert_eq!(purse(&dir, &["verify-pin", "--pin", "123"]).code, 2);
    assert_eq!(
        purse(
            &dir,
            &["change-pin", "--old", "123456", "--new", "1234567890123"]
        )
        .code,
        2
    );
    assert_eq!(
        purse(&dir, &["--pin", "123456", "reload-pin", "--new", "1234"]).code,
        2
    );
    assert_eq!(purse(&dir, &["verify-pin"]).out, "PIN tries left: 3\n");
}

#[test]
fn issuer_block_unblock_and_permanent_lock() {
    let dir = card();
    assert_eq!(purse(&dir, &["load", "--amount", "10"]).code, 0);
    // A wrong DAMK master key: 9302, not blocked.
    let r = purse(
        &dir,
        &["block", "--key", "00112233445566778899AABBCCDDEEFF"],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.err
            .contains("APPLICATION BLOCK (temporary): card answered 9302"),
        "{}",
        r.err
    );
    let r = purse(&dir, &["unblock"]);
    refused(
        &r,
        1,
        "APPLICATION UNBLOCK: card answered 6985 (conditions of use not satisfied): the application is not blocked",
    );

    let r = purse(&dir, &["block"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out.starts_with("APPLICATION BLOCK (temporary) 9000"),
        "{}",
        r.out
    );
    // Blocked: SELECT answers 6283, the card refuses transactions with 6985.
    let r = purse(&dir, &["purchase", "--amount", "1"]);
    refused(
        &r,
        1,
        "INITIALIZE FOR PURCHASE: card answered 6985 (conditions of use not satisfied): the issuer has blocked the application (SELECT answered 6283)",
    );
    let r = purse(&dir, &["load", "--amount", "1"]);
    refused(&r, 1, "INITIALIZE FOR LOAD: card answered 6985");
    let r = purse(&dir, &["balance"]);
    refused(&r, 1, "GET BALANCE (EP): card answered 6985");
    // The log is still readable; nothing was added.
    assert_eq!(log_lines(&dir, &[]), 1);

    let r = purse(&dir, &["unblock"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.starts_with("APPLICATION UNBLOCK 9000"), "{}", r.out);
    let r = purse(&dir, &["purchase", "--amount", "1"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(field(&r.out, "Balance after"), "9.00");

    // Permanent lock: refused without the confirmation flag (nothing sent).
    let r = purse(&dir, &["lock-permanently"]);
    refused(&r, 2, "--yes-really");
    assert_eq!(field(&purse(&dir, &["balance"]).out, "EP balance"), "9.00");
    let r = purse(&dir, &["lock-permanently", "--yes-really"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out.starts_with("APPLICATION BLOCK (permanent) 9000"),
        "{}",
        r.out
    );
    for verb in [&["balance"][..], &["unblock"], &["log"], &["verify-pin"]] {
        let r = purse(&dir, verb);
        assert_eq!(r.code, 1, "{verb:?}");
        assert!(
            r.err.contains(
                "SELECT purse: card answered 9303 (application permanently locked): the issuer has locked the application for good"
            ),
            "{verb:?}: {}",
            r.err
        );
    }
}

#[test]
fn lost_ed_answers_are_recovered_with_the_pin_again() {
    let dir = card();
    let with = |extra: &[&'static str]| join(&["--pin", "123456"], extra);
    assert_eq!(
        purse(&dir, &with(&["--wallet", "ed", "load", "--amount", "30"])).code,
        0
    );
    // The DEBIT FOR PURCHASE answer is lost after the commit: after reconnecting, mec must
    // VERIFY again before GET BALANCE of the ED; the purchase is debited once.
    let r = purse(
        &dir,
        &with(&[
            "--virtual-lose-response",
            "0",
            "--wallet",
            "ed",
            "purchase",
            "--amount",
            "2",
        ]),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out.contains("recovered with GET TRANSACTION PROVE"),
        "{}",
        r.out
    );
    assert_eq!(field(&r.out, "Balance after"), "28.00");
    // The same for DEBIT FOR UNLOAD.
    let r = purse(
        &dir,
        &with(&["--virtual-lose-response", "0", "unload", "--amount", "3"]),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("MAC2 and TAC proved"), "{}", r.out);
    assert_eq!(field(&r.out, "Balance after"), "25.00");
    // APDUs of an unload: SELECT, READ BINARY, VERIFY, INITIALIZE FOR UNLOAD, DEBIT (4):
    // the DEBIT never reaches the card; nothing is debited.
    let r = purse(
        &dir,
        &with(&["--virtual-drop-apdu", "4", "unload", "--amount", "3"]),
    );
    refused(&r, 4, "nothing was debited");
    assert_eq!(
        field(&purse(&dir, &with(&["balance"])).out, "ED balance"),
        "25.00"
    );
    assert_eq!(log_lines(&dir, &["--wallet", "ed"]), 3);
}

#[test]
fn ed_overdraft_pin_from_stdin_and_personalized_pin() {
    // A purse personalized with PIN 2580 (read from standard input), 5 tries and an ED
    // overdraft limit of 10.00.
    let dir = card_with(&["--pin", "2580", "--pin-tries", "5", "--ed-overdraft", "10"]);
    let run = |extra: &[&str], input: &str| purse_stdin(&dir, extra, input);
    assert_eq!(run(&["verify-pin"], "").out, "PIN tries left: 5\n");
    let r = run(&["--pin", "-", "verify-pin"], "2580\n");
    assert_eq!(r.code, 0, "{}", r.err);
    let r = run(
        &["--wallet", "ed", "--pin", "-", "load", "--amount", "5"],
        "2580\n",
    );
    assert_eq!(r.code, 0, "{}", r.err);
    // Into the overdraft: 5.00 - 12.00 = -7.00.
    let r = run(
        &["--wallet", "ed", "--pin", "-", "purchase", "--amount", "12"],
        "2580\n",
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(field(&r.out, "Balance after"), "-7.00");
    // Beyond it: 9401.
    let r = run(
        &[
            "--wallet", "ed", "--pin", "-", "purchase", "--amount", "3.01",
        ],
        "2580\n",
    );
    refused(&r, 1, "9401");
    // An unload never goes below zero.
    let r = run(&["--pin", "-", "unload", "--amount", "1"], "2580\n");
    refused(&r, 1, "INITIALIZE FOR UNLOAD: card answered 9401");
    let r = run(&["--pin", "-", "balance"], "2580\n");
    assert_eq!(field(&r.out, "ED balance"), "-7.00");
    // An empty standard input is a usage error.
    assert_eq!(run(&["--pin", "-", "verify-pin"], "").code, 2);
    assert_eq!(run(&["verify-pin"], "").out, "PIN tries left: 5\n");

    // CHANGE PIN, RELOAD PIN and PIN UNBLOCK take `-` too (one line each, --old first).
    let r = run(&["change-pin", "--old", "-", "--new", "-"], "2580\n97531\n");
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(run(&["--pin", "-", "verify-pin"], "2580\n").code, 1);
    assert_eq!(run(&["--pin", "97531", "verify-pin"], "").code, 0);
    let r = run(&["reload-pin", "--new", "-"], "8642\n");
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(run(&["--pin", "8642", "verify-pin"], "").code, 0);
    let r = run(&["unblock-pin", "--new", "-"], "1111\n");
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(run(&["--pin", "1111", "verify-pin"], "").code, 0);
    // A missing line is a usage error, and nothing changed.
    let r = run(&["change-pin", "--old", "1111", "--new", "-"], "");
    refused(&r, 2, "--new: PIN: 4 to 12 digits");
    assert_eq!(run(&["--pin", "1111", "verify-pin"], "").code, 0);
}
