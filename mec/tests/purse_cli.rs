//! `mec purse` end to end on an in-process virtual SE kept on disk: the purse installed and
//! personalized with `mec gp install` + `mec gp store-data` (DGIs from `mec purse
//! perso-data`), then balance, load, purchase, log, prove, refusals with their status words
//! and exit codes, and tear recovery after a response lost after the commit.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

const AID: &str = "A000000333010101";

fn profile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../virtual-se/profiles/default.toml")
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn mec(args: &[&str]) -> Run {
    let o = Command::new(env!("CARGO_BIN_EXE_mec"))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A card with the purse installed and personalized; returns the state directory.
fn card() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = profile();
    let (p, s) = (p.to_str().unwrap(), dir.path().to_str().unwrap());
    let r = mec(&[
        "gp",
        "--virtual",
        p,
        "--virtual-state",
        s,
        "install",
        "--package",
        "F06D65635055",
        "--applet",
        "F06D6563505501",
        "--create",
        AID,
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let dgis = mec(&["purse", "perso-data"]);
    assert_eq!(dgis.code, 0, "{}", dgis.err);
    let mut args = vec![
        "gp",
        "--virtual",
        p,
        "--virtual-state",
        s,
        "store-data",
        AID,
        "--dgi",
    ];
    args.extend(dgis.out.lines());
    let r = mec(&args);
    assert_eq!(r.code, 0, "{}", r.err);
    dir
}

fn purse(dir: &tempfile::TempDir, args: &[&str]) -> Run {
    let p = profile();
    let mut all = vec![
        "purse",
        "--virtual",
        p.to_str().unwrap(),
        "--virtual-state",
        dir.path().to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    mec(&all)
}

fn field(text: &str, name: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(name))
        .map(|l| l[name.len()..].trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
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
    assert_eq!(r.code, 1);
    assert!(
        r.err.contains("9501 (maximum balance exceeded)"),
        "{}",
        r.err
    );
    let r = purse(&dir, &["prove", "--atc", "9"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("9406"), "{}", r.err);
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
    assert_eq!(r.code, 3);
    assert!(r.err.contains("MAC1"), "{}", r.err);
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
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(r.err.contains("nothing was credited"), "{}", r.err);
    assert!(r.err.contains("9406"), "{}", r.err);
    assert_eq!(field(&purse(&dir, &["balance"]).out, "EP balance"), "10.00");
}
