//! `mec gp` as a process: help texts, exit codes, `--trace` on stderr, and a card kept in a
//! state directory across invocations (`--virtual PROFILE --virtual-state DIR`, no pcscd).
//! The same verbs over real pcscd + vpcd are in `scripts/interop/gp.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mec() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mec"))
}

fn profiles() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../virtual-se/profiles")
}

fn gp(profile: &str, state: &Path, args: &[&str]) -> Output {
    mec()
        .arg("gp")
        .arg("--virtual")
        .arg(profiles().join(profile))
        .arg("--virtual-state")
        .arg(state)
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_is_complete() {
    let out = mec().args(["gp", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = text(&out.stdout);
    for verb in [
        "readers",
        "info",
        "list",
        "install",
        "delete",
        "lock",
        "unlock",
        "lock-card",
        "unlock-card",
        "set-status",
        "put-key",
        "delete-key",
        "store-data",
        "create-ssd",
        "apdu",
    ] {
        assert!(
            help.contains(&format!("\n  {verb} ")),
            "verb {verb} missing:\n{help}"
        );
        let sub = mec().args(["gp", verb, "--help"]).output().unwrap();
        assert!(sub.status.success(), "{verb} --help");
        assert!(text(&sub.stdout).contains("Usage: mec gp "), "{verb}");
    }
    for option in [
        "--reader",
        "--key ",
        "--key-enc",
        "--key-mac",
        "--key-dek",
        "--kvn",
        "--kdf",
        "--scp",
        "--security",
        "--sd",
        "--host-challenge",
        "--trace",
        "--json",
        "Exit codes",
    ] {
        assert!(help.contains(option), "option {option} missing:\n{help}");
    }
    let install = text(
        &mec()
            .args(["gp", "install", "--help"])
            .output()
            .unwrap()
            .stdout,
    );
    for option in [
        "--create",
        "--package",
        "--applet",
        "--params",
        "--privs",
        "--to",
    ] {
        assert!(install.contains(option), "install {option}");
    }
    let put_key = text(
        &mec()
            .args(["gp", "put-key", "--help"])
            .output()
            .unwrap()
            .stdout,
    );
    for option in ["--new-kvn", "--replace", "--from-master", "--kdf", "--type"] {
        assert!(put_key.contains(option), "put-key {option}");
    }
}

#[test]
fn card_state_persists_across_invocations() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("card");
    let out = gp(
        "default.toml",
        &state,
        &[
            "install",
            "--package",
            "F06D65635354",
            "--applet",
            "F06D6563535401",
            "--create",
            "F06D6563535402",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = gp(
        "default.toml",
        &state,
        &["store-data", "F06D6563535402", "--dgi", "0101024142"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = gp("default.toml", &state, &["--json", "list"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|e| e["aid"] == "F06D6563535402" && e["kind"] == "APP")
    );
    let out = gp(
        "default.toml",
        &state,
        &["apdu", "00A4040007F06D6563535402", "00CA010100"],
    );
    assert!(
        text(&out.stdout).contains("0101024142 9000"),
        "{}",
        text(&out.stdout)
    );
    let out = gp("default.toml", &state, &["delete", "F06D6563535402"]);
    assert!(out.status.success());
}

#[test]
fn exit_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("card");
    // Wrong key: 3, the keys tried by KCV and the likely causes.
    let out = gp(
        "default.toml",
        &state,
        &["--key", "000102030405060708090A0B0C0D0E0F", "list"],
    );
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains("keys tried  : ENC KCV") && err.contains("likely causes"),
        "{err}"
    );
    // Status word refused by the card: 1, with its meaning.
    let out = gp("default.toml", &state, &["delete", "F000000099"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("6A88 (referenced data not found)"),
        "{}",
        text(&out.stderr)
    );
    // Usage: 2.
    let out = gp(
        "default.toml",
        &state,
        &["--key-enc", "404142434445464748494A4B4C4D4E4F", "list"],
    );
    assert_eq!(out.status.code(), Some(2));
    // Bad option: clap's usage error.
    let out = mec()
        .args(["gp", "--security", "everything", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn blocked_domain_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("p.toml");
    let text_profile = std::fs::read_to_string(profiles().join("default.toml"))
        .unwrap()
        .replace("failure_limit = 10", "failure_limit = 1");
    std::fs::write(&profile, text_profile).unwrap();
    let state = dir.path().join("card");
    let run = |args: &[&str]| {
        mec()
            .arg("gp")
            .arg("--virtual")
            .arg(&profile)
            .arg("--virtual-state")
            .arg(&state)
            .args(args)
            .output()
            .unwrap()
    };
    // A failed EXTERNAL AUTHENTICATE (a bad host cryptogram, as a broken host would send it).
    let out = run(&[
        "apdu",
        "80500000080102030405060708",
        "848201001000000000000000000000000000000000",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let out = run(&["--trace", "list"]);
    assert_eq!(out.status.code(), Some(4));
    let err = text(&out.stderr);
    assert!(err.contains("6983") && err.contains("blocked"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("C: 8050")).count(),
        1,
        "{err}"
    );
}

#[test]
fn trace_on_stderr_is_reproducible() {
    let mut traces = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let out = gp(
            "scp02-i55.toml",
            &dir.path().join("card"),
            &["--host-challenge", "0011223344556677", "--trace", "list"],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        traces.push(text(&out.stderr));
    }
    assert_eq!(traces[0], traces[1]);
    let t = &traces[0];
    assert!(
        t.lines().any(|l| l == "C: 8050000008001122334455667700"),
        "{t}"
    );
    assert!(t.lines().any(|l| l.starts_with("# C: 80F28002")), "{t}");
    assert!(t.lines().any(|l| l.starts_with("C: 84F28002")), "{t}");
    assert!(
        t.lines()
            .all(|l| l.starts_with("C: ") || l.starts_with("R: ") || l.starts_with("# ")),
        "{t}"
    );
}

#[test]
fn trace_decodes_with_mec_trace_decode() {
    let dir = tempfile::tempdir().unwrap();
    let out = gp(
        "default.toml",
        &dir.path().join("card"),
        &["--trace", "list"],
    );
    assert!(out.status.success());
    let trace = dir.path().join("gp.trace");
    std::fs::write(&trace, &out.stderr).unwrap();
    let decoded = mec()
        .args(["trace", "decode"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(decoded.status.success(), "{}", text(&decoded.stderr));
    let listing = text(&decoded.stdout);
    assert!(
        listing.contains("INITIALIZE UPDATE") && listing.contains("GET STATUS"),
        "{listing}"
    );
}

/// `--apdu` / `--block-size` as a process with `--virtual`: the extended-length profile gets
/// extended LOAD blocks (shown by `--trace`), the short-only one refuses `--apdu extended`
/// (exit 2), and an impossible `--apdu short --block-size` is a usage error.
#[test]
fn extended_apdus_with_virtual_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, vec![0x5A; 10_000]).unwrap();
    let state = dir.path().join("ext");
    let out = gp(
        "extended-length.toml",
        &state,
        &[
            "--trace",
            "install",
            file.to_str().unwrap(),
            "--package",
            "F06D6567700B",
            "--load-only",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let trace = text(&out.stderr);
    let loads: Vec<&str> = trace.lines().filter(|l| l.starts_with("C: 84E8")).collect();
    // 10,004 bytes in blocks of 2015 (the 2048-byte 7F66 limit, SCP03 level 03).
    assert_eq!(loads.len(), 5, "{trace}");
    assert!(loads.iter().all(|l| &l[11..13] == "00"), "{loads:?}");

    let state = dir.path().join("short");
    let out = gp("short-only.toml", &state, &["--apdu", "extended", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("the card takes short APDUs only"));
    let out = gp(
        "default.toml",
        &state,
        &["--apdu", "short", "--block-size", "1000", "list"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--apdu short --block-size 1000"));
}
