//! In-process tests of `mec gp`: the verbs run through [`GpClient`] against a virtual SE card
//! object (no pcscd), so every verb, protocol and failure mode is checked quickly. The same
//! code runs over PC/SC in `scripts/interop/gp.sh`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Parser;
use virtual_se::applet::Packages;
use virtual_se::card::Card;
use virtual_se::profile::Profile;
use virtual_se::store::MemoryStore;

use super::client::{GpClient, GpError, Scp11Trust};
use super::{GpArgs, exit_code, verbs};
use crate::transport::{Tracer, VirtualTransport};

#[derive(Parser, Debug)]
struct TestCli {
    #[command(flatten)]
    gp: GpArgs,
}

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

type VCard = VirtualTransport<MemoryStore>;

const ISD: &[u8] = &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];
const K40: &str = "404142434445464748494A4B4C4D4E4F";

fn profiles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../virtual-se/profiles")
}

fn profile_file(name: &str) -> Profile {
    Profile::from_file(&profiles_dir().join(name)).unwrap()
}

/// A harness: one card, one client (its session state carries over between runs, like a
/// card left in the reader between invocations).
struct Harness {
    client: GpClient<VCard>,
    trace: SharedBuf,
}

impl Harness {
    fn new(profile: &Profile) -> Self {
        let card = Card::open(MemoryStore::new(), profile, Packages::builtin(), [7; 32]).unwrap();
        let trace = SharedBuf::default();
        let client = GpClient::new(
            VirtualTransport::new(card),
            Tracer::to(Box::new(trace.clone())),
            [9; 32],
        );
        Self { client, trace }
    }

    fn named(name: &str) -> Self {
        Self::new(&profile_file(name))
    }

    /// Run `mec gp ARGS`; returns the result and stdout.
    fn run(&mut self, args: &[&str]) -> (Result<(), GpError>, String) {
        let mut argv = vec!["gp"];
        argv.extend_from_slice(args);
        let cli = TestCli::try_parse_from(argv).unwrap();
        let mut out = Vec::new();
        self.trace.clear();
        self.client.auth_attempts = 0;
        // Every invocation is a new connection: the card is reset.
        self.client.transport_mut().card.power_on();
        let r = verbs::execute(&mut self.client, &cli.gp, &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    fn ok(&mut self, args: &[&str]) -> String {
        let (r, out) = self.run(args);
        if let Err(e) = r {
            panic!("mec gp {args:?} failed: {e}\ntrace:\n{}", self.trace.text());
        }
        out
    }

    fn err(&mut self, args: &[&str]) -> GpError {
        match self.run(args) {
            (Err(e), _) => e,
            (Ok(()), out) => panic!("mec gp {args:?} succeeded: {out}"),
        }
    }

    fn failures(&self, sd: &[u8]) -> u16 {
        self.client.transport().card.counters(sd).unwrap().1
    }

    fn trace_lines(&self, prefix: &str) -> Vec<String> {
        self.trace
            .text()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn list_default_card() {
    let mut h = Harness::named("default.toml");
    let out = h.ok(&["list"]);
    assert!(out.contains("ISD: A000000151000000 0F (SECURED)"), "{out}");
    assert!(out.contains("PKG: A0000001515350"), "{out}");
    assert!(out.contains("module A000000151535041"), "{out}");
    assert!(out.contains("Security Domain"), "{out}");
    // GET STATUS in every P1, tagged format.
    let plain = h.trace_lines("# C: 80F2");
    let p1s: Vec<&str> = plain.iter().map(|l| &l[9..11]).collect();
    assert_eq!(p1s, ["80", "40", "10"], "{plain:?}");
    assert!(plain.iter().all(|l| &l[11..13] == "02"));
    // Every wrapped command is 84 (secure messaging).
    assert!(h.trace_lines("C: 84F2").len() == 3);
}

#[test]
fn list_json() {
    let mut h = Harness::named("two-domains.toml");
    let out = h.ok(&["--json", "list"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items[0]["kind"], "ISD");
    let ssd = items
        .iter()
        .find(|i| i["aid"] == "A000000151535031")
        .unwrap();
    assert_eq!(ssd["kind"], "SSD");
    assert!(
        ssd["privileges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "Authorized Management")
    );
}

#[test]
fn info_decodes_everything() {
    let mut h = Harness::named("default.toml");
    let out = h.ok(&["info"]);
    for needle in [
        "Security domain: A000000151000000",
        "Card life cycle: 0F (SECURED)",
        "Session: SCP03 i=70 key version FF",
        "IIN: 42034552",
        "CIN: 45080102030405060708",
        "KDD: 479051670A1B2C3D0001",
        "IC fabricator                      4790",
        "IC serial number                   0A1B2C3D",
        "OS release date                    8102  (year digit 8, day 102)",
        "AES (88) 16 bytes",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    let json = h.ok(&["--json", "info"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["kdd"], "479051670A1B2C3D0001");
    assert_eq!(v["keys"].as_array().unwrap().len(), 3);
    assert_eq!(v["cplc"].as_array().unwrap().len(), 18);
    assert_eq!(v["session"]["scp"], "03");
    // Sequence counter: one INITIALIZE UPDATE from the first run, read before the second.
    assert_eq!(v["sequence_counter"], 1);
    let no_auth = h.ok(&["info", "--no-auth"]);
    assert!(no_auth.contains("Card life cycle: (unknown"), "{no_auth}");
    assert_eq!(h.client.auth_attempts, 0);
}

#[test]
fn every_protocol_and_level() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "default.toml",
            &[],
            &["mac", "mac+enc", "mac+enc+rmac", "all"],
        ),
        (
            "scp03-s16.toml",
            &[
                "--key",
                "404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F",
            ],
            &["mac", "mac+enc", "mac+enc+rmac", "all"],
        ),
        ("scp02-i55.toml", &[], &["mac", "mac+enc"]),
        ("scp11b.toml", &["--scp", "11b"], &["all"]),
        ("scp11b.toml", &["--scp", "03"], &["mac+enc"]),
        (
            "diversified-emv.toml",
            &["--kdf", "emv"],
            &["mac", "mac+enc"],
        ),
        ("diversified-visa2.toml", &["--kdf", "visa2"], &["mac+enc"]),
        ("diversified-kdf3.toml", &["--kdf", "kdf3"], &["mac", "all"]),
    ];
    for (profile, extra, levels) in cases {
        for level in *levels {
            let mut h = Harness::named(profile);
            let mut args: Vec<&str> = extra.to_vec();
            args.extend_from_slice(&["--security", level, "--json", "info"]);
            let out = h.ok(&args);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            let expected_level = match *level {
                "mac" => 1,
                "mac+enc" => 3,
                "mac+enc+rmac" => 0x13,
                _ => 0x33,
            };
            assert_eq!(v["session"]["level"], expected_level, "{profile} {level}");
            assert_eq!(v["card_lifecycle"], "0F (SECURED)", "{profile} {level}");
            let list = h.ok(&args[..args.len() - 2]
                .iter()
                .copied()
                .chain(["list"])
                .collect::<Vec<_>>());
            assert!(list.contains("ISD: "), "{profile} {level}: {list}");
        }
    }
    // S16: the FCI announces SCP03 i=71, so the first challenge has 16 bytes.
    let mut h = Harness::named("scp03-s16.toml");
    let k = "404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F";
    h.ok(&["--key", k, "list"]);
    assert_eq!(h.client.auth_attempts, 1);
    assert!(h.trace_lines("C: 8050000010").len() == 1);
    // An 8-byte challenge is refused by its length (6700) before anything is counted, which
    // is what the fallback in `open` relies on for cards without the FCI hint.
    let card = &mut h.client.transport_mut().card;
    let r = card.transmit(&hex::decode("80500000080102030405060708").unwrap());
    assert_eq!(r, [0x67, 0x00]);
}

#[test]
fn wrong_key_kdf_kvn_fail_once_with_clear_errors() {
    // Wrong key.
    let mut h = Harness::named("default.toml");
    let e = h.err(&["--key", "000102030405060708090A0B0C0D0E0F", "list"]);
    let text = e.to_string();
    assert_eq!(exit_code(&e), 3, "{text}");
    assert!(text.contains("card used FF"), "{text}");
    assert!(text.contains("ENC KCV"), "{text}");
    assert!(text.contains("likely causes"), "{text}");
    assert_eq!(h.client.auth_attempts, 1);
    assert!(
        h.trace_lines("C: 8482").is_empty(),
        "no EXTERNAL AUTHENTICATE after a mismatch"
    );
    // The card counts the attempt at INITIALIZE UPDATE (cleared only by a successful
    // EXTERNAL AUTHENTICATE); mec stops after the mismatch and never retries: exactly once.
    assert_eq!(h.failures(ISD), 1);

    // Diversified card without --kdf: the hint names diversification first.
    let mut h = Harness::named("diversified-kdf3.toml");
    let e = h.err(&["list"]);
    let text = e.to_string();
    assert!(
        text.contains("1. the card's keys are diversified"),
        "{text}"
    );
    assert!(text.contains("default test keys"), "{text}");
    assert_eq!(h.client.auth_attempts, 1);
    // Wrong KDF.
    let e = h.err(&["--kdf", "emv", "list"]);
    assert!(
        e.to_string().contains("key type") || e.to_string().contains("KDF"),
        "{e}"
    );
    let mut h = Harness::named("diversified-emv.toml");
    let e = h.err(&["--kdf", "visa2", "list"]);
    let text = e.to_string();
    assert!(text.contains("not diversified with VISA2"), "{text}");
    assert_eq!(exit_code(&e), 3);
    assert_eq!(h.client.auth_attempts, 1);
    assert_eq!(h.failures(ISD), 1);

    // Wrong MAC key on SCP02: the card cryptogram (S-ENC) verifies, the card refuses the
    // host cryptogram and counts exactly one failed authentication; mec stops (exit 3).
    let mut h = Harness::named("scp02-i55.toml");
    let e = h.err(&[
        "--key-enc",
        K40,
        "--key-mac",
        "000102030405060708090A0B0C0D0E0F",
        "--key-dek",
        K40,
        "list",
    ]);
    let text = e.to_string();
    assert_eq!(exit_code(&e), 3, "{text}");
    assert!(text.contains("wrong MAC key"), "{text}");
    assert_eq!(h.client.auth_attempts, 1);
    assert_eq!(h.trace_lines("C: 8482").len(), 1);
    let sd = [0xA0, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00];
    assert_eq!(h.failures(&sd), 1);
    // The right keys reset the count.
    h.ok(&["list"]);
    assert_eq!(h.failures(&sd), 0);

    // Wrong key version: 6A88 with a hint, once.
    let mut h = Harness::named("default.toml");
    let e = h.err(&["--kvn", "31", "list"]);
    let text = e.to_string();
    assert!(text.contains("6A88") && text.contains("--kvn"), "{text}");
    assert_eq!(exit_code(&e), 1);
    assert_eq!(h.client.auth_attempts, 1);
    assert_eq!(h.failures(ISD), 0);
}

#[test]
fn blocked_domain_stops_without_retry() {
    let mut p = Profile::default_profile().unwrap();
    p.failure_limit = 2;
    let mut h = Harness::new(&p);
    // Two failed EXTERNAL AUTHENTICATEs straight at the card (a broken host).
    for _ in 0..2 {
        let card = &mut h.client_card();
        let iu =
            card.transmit(&hex::decode("80500000080102030405060708 00".replace(' ', "")).unwrap());
        assert_eq!(&iu[iu.len() - 2..], [0x90, 0x00]);
        let ea = card.transmit(&hex::decode("848201001000000000000000000000000000000000").unwrap());
        assert_ne!(&ea[ea.len() - 2..], [0x90, 0x00]);
    }
    assert_eq!(h.failures(ISD), 2);
    let e = h.err(&["list"]);
    let text = e.to_string();
    assert!(text.contains("6983") && text.contains("blocked"), "{text}");
    assert_eq!(exit_code(&e), 4);
    assert_eq!(h.client.auth_attempts, 1);
    assert_eq!(h.failures(ISD), 2);
}

impl Harness {
    fn client_card(&mut self) -> &mut Card<MemoryStore> {
        &mut self.client.transport_mut().card
    }
}

fn empty_card_profile() -> Profile {
    let mut p = Profile::default_profile().unwrap();
    p.builtin_load_files = false;
    p
}

#[test]
fn install_personalize_lock_delete() {
    let mut h = Harness::new(&empty_card_profile());
    let dir = tempfile::tempdir().unwrap();
    let cap_path = dir.path().join("store.cap");
    std::fs::write(
        &cap_path,
        super::cap::tests::build_cap(
            &[0xF0, 0x6D, 0x65, 0x63, 0x53, 0x54],
            &[0xF0, 0x6D, 0x65, 0x63, 0x53, 0x54, 0x01],
        ),
    )
    .unwrap();
    let cap = cap_path.to_str().unwrap();
    let out = h.ok(&[
        "install",
        cap,
        "--create",
        "F06D6563535402",
        "--params",
        "0102",
        "--privs",
        "card-reset",
    ]);
    assert!(out.contains("loaded F06D65635354"), "{out}");
    assert!(out.contains("installed F06D6563535402"), "{out}");
    // INSTALL [for load], LOAD blocks (last with P1 80), INSTALL [for install and make selectable].
    let plain = h.trace_lines("# C: 80E");
    assert!(plain[0].starts_with("# C: 80E60200"), "{plain:?}");
    assert!(
        plain.iter().any(|l| l.starts_with("# C: 80E880")),
        "{plain:?}"
    );
    assert!(
        plain.iter().any(|l| l.starts_with("# C: 80E60C00")),
        "{plain:?}"
    );
    let list = h.ok(&["list"]);
    assert!(
        list.contains("APP: F06D6563535402 07 (SELECTABLE)"),
        "{list}"
    );
    assert!(list.contains("from load file F06D65635354"), "{list}");
    assert!(list.contains("Card Reset"), "{list}");

    let out = h.ok(&[
        "store-data",
        "F06D6563535402",
        "--dgi",
        "0101024142",
        "--dgi",
        "0202030A0B0C",
    ]);
    assert!(out.contains("2 object(s)"), "{out}");
    // The application now answers GET DATA 0101 with what was stored.
    let out = h.ok(&["apdu", "00A4040007F06D6563535402", "00CA010100"]);
    assert!(
        out.contains("01010241 42 9000") || out.contains("0101024142 9000"),
        "{out}"
    );

    h.ok(&["lock", "F06D6563535402"]);
    let list = h.ok(&["list"]);
    assert!(list.contains("F06D6563535402 87 (LOCKED)"), "{list}");
    h.ok(&["unlock", "F06D6563535402"]);
    assert!(h.ok(&["list"]).contains("F06D6563535402 07 (SELECTABLE)"));
    h.ok(&["set-status", "F06D6563535402", "0F"]);
    assert!(h.ok(&["list"]).contains("F06D6563535402 0F"));

    // Deleting the load file alone fails (an application depends on it): actionable error.
    let e = h.err(&["delete", "F06D65635354"]);
    assert_eq!(exit_code(&e), 1);
    assert!(
        e.to_string()
            .contains("DELETE F06D65635354: the card answered"),
        "{e}"
    );
    h.ok(&["delete", "--all", "F06D65635354"]);
    let list = h.ok(&["list"]);
    assert!(
        !list.contains("F06D6563535402") && !list.contains("PKG: F06D65635354"),
        "{list}"
    );
}

#[test]
fn install_raw_blob_and_existing_load_file() {
    let mut h = Harness::new(&empty_card_profile());
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("store.bin");
    std::fs::write(&blob, [0x01, 0x00, 0x02, 0xAA, 0xBB]).unwrap();
    let e = h.err(&["install", blob.to_str().unwrap()]);
    assert!(e.to_string().contains("--package"), "{e}");
    h.ok(&[
        "install",
        blob.to_str().unwrap(),
        "--package",
        "F06D65635354",
        "--load-only",
    ]);
    h.ok(&[
        "install",
        "--package",
        "F06D65635354",
        "--applet",
        "F06D6563535401",
        "--create",
        "F06D6563535409",
    ]);
    assert!(h.ok(&["list"]).contains("APP: F06D6563535409"));

    // Installing the same instance again: 6985 explained.
    let e = h.err(&[
        "install",
        "--package",
        "F06D65635354",
        "--applet",
        "F06D6563535401",
        "--create",
        "F06D6563535409",
    ]);
    assert!(
        e.to_string()
            .contains("INSTALL [for install and make selectable] F06D6563535409"),
        "{e}"
    );
}

#[test]
fn put_key_add_replace_and_delete_key() {
    let mut h = Harness::named("default.toml");
    let new = "000102030405060708090A0B0C0D0E0F";
    let out = h.ok(&["put-key", "--new-kvn", "30", "--new-key", new]);
    assert!(out.contains("added key set 30 (AES)"), "{out}");
    // The initial key set FF is gone (GPC 2.3 §11.8): the new keys open a session.
    let out = h.ok(&["--kvn", "30", "--key", new, "--json", "info"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["session"]["key_version"], 0x30);
    // Replace version 30 by 31.
    let newer = "101112131415161718191A1B1C1D1E1F";
    h.ok(&[
        "--kvn",
        "30",
        "--key",
        new,
        "put-key",
        "--replace",
        "30",
        "--new-kvn",
        "31",
        "--new-key",
        newer,
    ]);
    h.ok(&["--kvn", "31", "--key", newer, "list"]);
    // Add a derived key set (KDF3 from a master and the card's KDD), then use it with --kdf.
    h.ok(&[
        "--kvn",
        "31",
        "--key",
        newer,
        "put-key",
        "--new-kvn",
        "32",
        "--from-master",
        K40,
        "--kdf",
        "kdf3",
    ]);
    h.ok(&["--kvn", "32", "--key", K40, "--kdf", "kdf3", "list"]);
    let info = h.ok(&["--kvn", "32", "--key", K40, "--kdf", "kdf3", "info"]);
    assert!(info.contains("31 ") && info.contains("32 "), "{info}");
    // Delete key set 31.
    h.ok(&[
        "--kvn",
        "32",
        "--key",
        K40,
        "--kdf",
        "kdf3",
        "delete-key",
        "31",
    ]);
    let e = h.err(&["--kvn", "31", "--key", newer, "list"]);
    assert!(e.to_string().contains("6A88"), "{e}");
}

#[test]
fn put_key_des_on_scp02() {
    let mut h = Harness::named("scp02-i55.toml");
    let out = h.ok(&[
        "put-key",
        "--new-kvn",
        "21",
        "--new-key",
        "000102030405060708090A0B0C0D0E0F",
    ]);
    assert!(out.contains("added key set 21 (DES)"), "{out}");
    h.ok(&[
        "--kvn",
        "21",
        "--key",
        "000102030405060708090A0B0C0D0E0F",
        "list",
    ]);
}

#[test]
fn create_ssd_with_keys_and_use_it() {
    let mut h = Harness::named("default.toml");
    let keys = "505152535455565758595A5B5C5D5E5F";
    let out = h.ok(&[
        "create-ssd",
        "A000000151535032",
        "--privs",
        "security-domain,authorized-management",
        "--keys",
        keys,
    ]);
    assert!(
        out.contains("created security domain A000000151535032"),
        "{out}"
    );
    assert!(
        out.contains("replaced its initial key set FF by version 01"),
        "{out}"
    );
    let list = h.ok(&["list"]);
    assert!(list.contains("SSD: A000000151535032"), "{list}");
    h.ok(&["--sd", "A000000151535032", "--key", keys, "list"]);
}

#[test]
fn lock_card_unlock_card_set_status() {
    let mut h = Harness::named("default.toml");
    let out = h.ok(&["lock-card"]);
    assert!(out.contains("7F (CARD_LOCKED)"), "{out}");
    assert_eq!(h.client.transport().card.lifecycle(), 0x7F);
    h.ok(&["unlock-card"]);
    assert_eq!(h.client.transport().card.lifecycle(), 0x0F);
    h.ok(&["set-status", "--card", "CARD_LOCKED"]);
    assert_eq!(h.client.transport().card.lifecycle(), 0x7F);
    h.ok(&["set-status", "--card", "secured"]);
    assert_eq!(h.client.transport().card.lifecycle(), 0x0F);
    let e = h.err(&["set-status", "--card", "OP_READY"]);
    assert!(e.to_string().contains("SET STATUS"), "{e}");
}

#[test]
fn apdu_plain_and_secure() {
    let mut h = Harness::named("default.toml");
    let out = h.ok(&["apdu", "00A4040000", "80CA9F7F00"]);
    assert!(out.contains("9F7F2A4790"), "{out}");
    let e = h.err(&["apdu", "80F28000024F0000"]);
    assert!(e.to_string().contains("6982"), "{e}");
    let out = h.ok(&["apdu", "-s", "80F28000024F0000"]);
    assert!(out.ends_with("9000 (success)\n"), "{out}");
    assert!(h.trace.text().contains("# C: 80F28000024F0000"));
    assert!(h.trace.text().contains("C: 84F28000"));
}

#[test]
fn trace_is_reproducible() {
    for (profile, extra) in [
        ("default.toml", vec!["--host-challenge", "0102030405060708"]),
        (
            "scp02-i55.toml",
            vec!["--host-challenge", "0102030405060708"],
        ),
        (
            "scp03-s16.toml",
            vec![
                "--key",
                "404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F",
                "--host-challenge",
                "000102030405060708090A0B0C0D0E0F",
                "--security",
                "all",
            ],
        ),
        (
            "kaoh-scp02.toml",
            vec!["--host-challenge", "D5AD539A60CA5E72", "--security", "mac"],
        ),
        (
            "samsung-scp03.toml",
            vec![
                "--key-enc",
                "1D72CD9283FD55162722C6BEAA4DC187",
                "--key-mac",
                "F4932BA02FFC3098D172790099D28382",
                "--key-dek",
                "B4BDC610C3F6793708FF1132E2C5BF60",
                "--host-challenge",
                "06F85B77251BF794",
                "--security",
                "all",
            ],
        ),
    ] {
        let mut traces = Vec::new();
        for _ in 0..2 {
            let mut h = Harness::named(profile);
            let mut args = extra.clone();
            args.push("list");
            h.ok(&args);
            traces.push(h.trace.text());
        }
        assert_eq!(traces[0], traces[1], "{profile}");
        assert!(
            traces[0].lines().any(|l| l.starts_with("C: 8050")),
            "{profile}"
        );
    }
}

/// kaoh/globalplatform src/scp03Test.c `mutual_auth` (lines 194-238) and
/// `delete_application` (lines 54-116), as collected in the project's shared vectors
/// (`vectors/scp03.toml`): SCP03 i=70, KDD zero, key version 30, the pseudo-random card
/// challenge of ISD A000000151000000 at sequence counters 1E and 15.
const KAOH_ENC: &str = "F995D0A069335C7DF42E590317FFEA6D";
const KAOH_MAC: &str = "58563362EC5A4541ABCD32B34B1EAE7D";
const KAOH_DEK: &str = "0A02A6D687406DCFA09DC70B3EDB7E38";

fn kaoh_profile(counter: &str) -> Profile {
    Profile::from_toml(&format!(
        r#"
cplc = "4790516747918102310061350A1B2C3D0001481261404812614048126140000000000000000000000000"
[isd]
aid = "A000000151000000"
privileges = "9AFE80"
kdd = "00000000000000000000"
key_version = "30"
scp = "03"
i = "70"
sequence_counter = "{counter}"
enc = "{KAOH_ENC}"
mac = "{KAOH_MAC}"
dek = "{KAOH_DEK}"
"#
    ))
    .unwrap()
}

#[test]
fn trace_matches_kaoh_scp03_mutual_auth() {
    let mut h = Harness::new(&kaoh_profile("00001E"));
    h.ok(&[
        "--key-enc",
        KAOH_ENC,
        "--key-mac",
        KAOH_MAC,
        "--key-dek",
        KAOH_DEK,
        "--host-challenge",
        "9BD6BF878FB8E991",
        "--security",
        "mac+enc",
        "list",
    ]);
    let wire = wire_lines(&h);
    // After the SELECT of the ISD: the published handshake, byte for byte.
    assert_eq!(wire[2], "C: 80500000089BD6BF878FB8E99100");
    assert_eq!(
        wire[3],
        "R: 000000000000000000003003703C80C2CC87EB3A35E4EDBA35E629C33600001E9000"
    );
    assert_eq!(wire[4], "C: 848203001023EBFEDC579D22CDCDB6A25A5FF7891F");
}

#[test]
fn trace_matches_kaoh_scp03_delete() {
    let mut h = Harness::new(&kaoh_profile("000015"));
    let e = h.err(&[
        "--key-enc",
        KAOH_ENC,
        "--key-mac",
        KAOH_MAC,
        "--key-dek",
        KAOH_DEK,
        "--host-challenge",
        "B2BDE1A2DC66BD56",
        "--security",
        "mac+enc",
        "delete",
        "--all",
        "A00100015141434C",
    ]);
    // The card has no such application: 6A88, explained.
    assert!(e.to_string().contains("6A88"), "{e}");
    let wire = wire_lines(&h);
    assert_eq!(wire[2], "C: 8050000008B2BDE1A2DC66BD5600");
    assert_eq!(
        wire[3],
        "R: 00000000000000000000300370C40932A6FEFEAEB2E127185170F45FCA0000159000"
    );
    assert_eq!(wire[4], "C: 848203001059D54D932423D29F6313C970875F8C2F");
    assert_eq!(
        h.trace_lines("# C: ")[0],
        "# C: 80E400800A4F08A00100015141434C"
    );
    assert_eq!(
        wire[6],
        "C: 84E400801829F06AEC3180B3EFE91FF662310B945DE0D5FE66AD67A5B6"
    );
}

#[test]
fn usage_errors() {
    let mut h = Harness::named("default.toml");
    let e = h.err(&["--key-enc", K40, "list"]);
    assert_eq!(exit_code(&e), 2);
    let e = h.err(&["delete", "A0"]);
    assert!(e.to_string().contains("5 to 16 bytes"), "{e}");
    let e = h.err(&[
        "install",
        "--package",
        "F06D65635354",
        "--create",
        "F06D6563535402",
        "--privs",
        "bogus",
    ]);
    assert!(e.to_string().contains("unknown privilege"), "{e}");
    let e = h.err(&["--host-challenge", "0102", "list"]);
    assert!(e.to_string().contains("8 bytes"), "{e}");
    assert!(TestCli::try_parse_from(["gp", "put-key", "--kdf", "emv"]).is_err());
}

#[test]
fn load_to_another_security_domain() {
    // INSTALL [for load] with --to: the load file is associated with the SSD.
    let mut h = Harness::named("two-domains.toml");
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("blob.bin");
    std::fs::write(&blob, [0x01, 0x00, 0x01, 0x00]).unwrap();
    h.ok(&[
        "install",
        blob.to_str().unwrap(),
        "--package",
        "F06D6573740A",
        "--to",
        "A000000151535031",
        "--load-only",
    ]);
    let v: serde_json::Value = serde_json::from_str(&h.ok(&["--json", "list"])).unwrap();
    let pkg = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["aid"] == "F06D6573740A")
        .unwrap();
    assert_eq!(pkg["kind"], "PKG");
    assert_eq!(pkg["security_domain"], "A000000151535031");
    // The SSD (authorized management, its own keys) sees and deletes its own load file.
    let ssd = [
        "--sd",
        "A000000151535031",
        "--key",
        "505152535455565758595A5B5C5D5E5F",
    ];
    h.ok(&[&ssd[..], &["delete", "F06D6573740A"]].concat());
    assert!(!h.ok(&["list"]).contains("F06D6573740A"));
}

#[test]
fn list_follows_get_status_paging() {
    let mut h = Harness::named("default.toml");
    for n in 0..24u8 {
        let aid = format!("F06D656353540200{n:02X}");
        h.ok(&[
            "install",
            "--package",
            "F06D65635354",
            "--applet",
            "F06D6563535401",
            "--create",
            &aid,
        ]);
    }
    let out = h.ok(&["list"]);
    for n in 0..24u8 {
        assert!(
            out.contains(&format!("APP: F06D656353540200{n:02X} 07 (SELECTABLE)")),
            "{n}: {out}"
        );
    }
    // More than one page: the card answered 6310 and mec asked for the next occurrences.
    let next = h.trace_lines("# C: 80F24003");
    assert!(!next.is_empty(), "{}", h.trace.text());
    assert!(h.trace_lines("# R: ").iter().any(|l| l.ends_with("6310")));
}

/// A card that refuses the tagged GET STATUS format (as pre-GP 2.2 cards do) and pages its
/// legacy answer: mec falls back to P2 00 and follows 6310 with P2 01.
struct LegacyCard {
    sent: Vec<Vec<u8>>,
}

impl crate::transport::Transport for LegacyCard {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, crate::transport::TransportError> {
        self.sent.push(apdu.to_vec());
        Ok(match apdu.get(..4) {
            Some([0x80, 0xF2, 0x40, 0x02]) => vec![0x6A, 0x86],
            // len AID, life cycle, privileges (GPC 2.3 §11.4.3.2), then 6310: more.
            Some([0x80, 0xF2, 0x40, 0x00]) => hex::decode("05F00000000107006310").unwrap(),
            Some([0x80, 0xF2, 0x40, 0x01]) => hex::decode("07A000000151535007809000").unwrap(),
            _ => vec![0x6D, 0x00],
        })
    }
}

#[test]
fn get_status_falls_back_to_legacy_and_pages() {
    use gp_scp::cmd::get_status::StatusSubset;
    let mut client = GpClient::new(LegacyCard { sent: Vec::new() }, Tracer::off(), [1; 32]);
    let entries = client.get_status(StatusSubset::Applications).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].aid.to_string(), "F000000001");
    assert_eq!(entries[0].life_cycle, 0x07);
    assert_eq!(entries[1].aid.to_string(), "A0000001515350");
    assert!(entries[1].privileges.unwrap().is_security_domain());
    let p2: Vec<u8> = client.transport().sent.iter().map(|a| a[3]).collect();
    assert_eq!(p2, [0x02, 0x00, 0x01]);
}

/// A reader that corrupts the last byte of the card's answer to PUT KEY (INS D8), as a card
/// that stored other keys than sent would answer.
struct TamperPutKey(VCard);

impl crate::transport::Transport for TamperPutKey {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, crate::transport::TransportError> {
        let mut r = self.0.transmit(apdu)?;
        if apdu.get(1) == Some(&0xD8) && r.len() > 2 {
            let i = r.len() - 3;
            r[i] ^= 0x01;
        }
        Ok(r)
    }
}

#[test]
fn put_key_kcv_mismatch_is_reported() {
    let card = Card::open(
        MemoryStore::new(),
        &Profile::default_profile().unwrap(),
        Packages::builtin(),
        [3; 32],
    )
    .unwrap();
    let mut client = GpClient::new(
        TamperPutKey(VirtualTransport::new(card)),
        Tracer::off(),
        [4; 32],
    );
    // Level mac+enc: no R-MAC, so the corruption reaches the KCV check.
    let cli = TestCli::try_parse_from([
        "gp",
        "put-key",
        "--new-kvn",
        "30",
        "--new-key",
        "000102030405060708090A0B0C0D0E0F",
    ])
    .unwrap();
    let e = verbs::execute(&mut client, &cli.gp, &mut Vec::new()).unwrap_err();
    assert!(matches!(e, GpError::KcvMismatch { .. }), "{e}");
    assert!(e.to_string().contains("key check values"), "{e}");
    assert_eq!(exit_code(&e), 1);
    // With R-MAC the corruption is caught by the secure channel instead.
    let cli = TestCli::try_parse_from([
        "gp",
        "--kvn",
        "30",
        "--key",
        "000102030405060708090A0B0C0D0E0F",
        "--security",
        "mac+enc+rmac",
        "put-key",
        "--new-kvn",
        "31",
        "--new-key",
        "101112131415161718191A1B1C1D1E1F",
    ])
    .unwrap();
    let e = verbs::execute(&mut client, &cli.gp, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("response MAC"), "{e}");
}

/// A card that answers anything with random bytes (random length, random status word).
struct RandomCard(chacha20::ChaCha20Rng);

impl crate::transport::Transport for RandomCard {
    fn transmit(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, crate::transport::TransportError> {
        use rand_core::Rng;
        let len = usize::from(self.0.next_u32() as u16 % 300);
        let mut r = vec![0u8; len];
        self.0.fill_bytes(&mut r);
        // Bias towards plausible status words so that parsing goes deeper.
        if len >= 2 && self.0.next_u32().is_multiple_of(2) {
            let n = r.len();
            r[n - 2] = 0x90;
            r[n - 1] = 0x00;
        }
        Ok(r)
    }
}

#[test]
fn never_panics_on_random_card_answers() {
    use rand_core::SeedableRng;
    let verbs_to_try: &[&[&str]] = &[
        &["info"],
        &["info", "--no-auth"],
        &["list"],
        &["--scp", "11b", "list"],
        &["--scp", "02", "list"],
        &[
            "--host-challenge",
            "000102030405060708090A0B0C0D0E0F",
            "list",
        ],
        &["delete", "F000000001"],
        &["put-key", "--new-kvn", "30", "--new-key", K40],
        &["apdu", "00A4040000", "80CA006600"],
    ];
    for seed in 0..150u64 {
        for args in verbs_to_try {
            let mut client = GpClient::new(
                RandomCard(chacha20::ChaCha20Rng::seed_from_u64(seed)),
                Tracer::off(),
                [5; 32],
            );
            let mut argv = vec!["gp"];
            argv.extend_from_slice(args);
            let cli = TestCli::try_parse_from(argv).unwrap();
            // Any result is fine; a panic fails the test.
            let _ = verbs::execute(&mut client, &cli.gp, &mut Vec::new());
        }
    }
}

#[test]
fn load_file_reader_never_panics() {
    use rand_core::{Rng, SeedableRng};
    let mut rng = chacha20::ChaCha20Rng::seed_from_u64(11);
    let good = super::cap::tests::build_cap(&[0xF0, 1, 2, 3, 4], &[0xF0, 1, 2, 3, 4, 5]);
    for _ in 0..2000 {
        let mut bytes = good.clone();
        // Flip a few bytes of a valid CAP, or use random bytes after the ZIP magic.
        if rng.next_u32().is_multiple_of(2) {
            for _ in 0..4 {
                let i = rng.next_u32() as usize % bytes.len();
                bytes[i] ^= (rng.next_u32() & 0xFF) as u8 | 1;
            }
        } else {
            let n = rng.next_u32() as usize % 200;
            bytes.truncate(4 + n);
            rng.fill_bytes(&mut bytes[4..]);
        }
        let _ = super::cap::read_load_file(&bytes, rng.next_u32().is_multiple_of(2));
    }
    for s in [
        "",
        ",",
        "80",
        "80C0",
        "80C000",
        "zz",
        "security domain, card_lock",
        "C0FFEE",
    ] {
        let _ = verbs::parse_privileges(s);
    }
}

/// The wire lines (`C: ` and `R: `) of the last run's trace.
fn wire_lines(h: &Harness) -> Vec<String> {
    h.trace
        .text()
        .lines()
        .filter(|l| l.starts_with("C: ") || l.starts_with("R: "))
        .map(str::to_owned)
        .collect()
}

/// kaoh/globalplatform src/scp02Test.c `get_status_mac_only` (lines 53-115), as collected in
/// the project's shared vectors (`vectors/scp02.toml`), against the TEST ONLY profile
/// `kaoh-scp02.toml` (fixed card challenge AA2A0591E733): SCP02 i=15, C-MAC.
#[test]
fn trace_matches_kaoh_scp02_get_status() {
    for _ in 0..2 {
        let mut h = Harness::named("kaoh-scp02.toml");
        h.ok(&[
            "--host-challenge",
            "D5AD539A60CA5E72",
            "--security",
            "mac",
            "apdu",
            "-s",
            "80F22002024F0000",
        ]);
        let wire = wire_lines(&h);
        assert_eq!(wire[2], "C: 8050000008D5AD539A60CA5E7200");
        assert_eq!(
            wire[3],
            "R: 000074746E6E6E6262620102069FAA2A0591E73367DD78794D04315E9000"
        );
        assert_eq!(wire[4], "C: 84820100107C799B3C771DBAE6BEF49310977617BA");
        assert_eq!(wire[5], "R: 9000");
        // The published C-MAC'd GET STATUS (plain 80F22002024F0000).
        assert_eq!(wire[6], "C: 84F220020A4F00BB6E71C0EFCFCF0D00");
    }
}

/// Samsung/OpenSCP-Java `InputTestData.java` and `SmartCardScp03Aes128S8ModeEmulation.java`
/// (AES-128, S8, security level 33), as collected in the project's shared vectors
/// (`vectors/scp03.toml`), against the TEST ONLY profile `samsung-scp03.toml` (fixed card
/// challenge 9CE033FA78E6B10D).
#[test]
fn trace_matches_samsung_scp03_s8_level_33() {
    for _ in 0..2 {
        let mut h = Harness::named("samsung-scp03.toml");
        h.ok(&[
            "--key-enc",
            "1D72CD9283FD55162722C6BEAA4DC187",
            "--key-mac",
            "F4932BA02FFC3098D172790099D28382",
            "--key-dek",
            "B4BDC610C3F6793708FF1132E2C5BF60",
            "--host-challenge",
            "06F85B77251BF794",
            "--kvn",
            "30",
            "--security",
            "all",
            "apdu",
            "-s",
            "80F22000024F00",
        ]);
        let wire = wire_lines(&h);
        assert_eq!(wire[2], "C: 805030000806F85B77251BF79400");
        assert_eq!(
            wire[3],
            "R: A1A012430585513120853003709CE033FA78E6B10DDC2DBE8974C8B0DE00082A9000"
        );
        assert_eq!(wire[4], "C: 8482330010B08D6CE26B6CB3CCB411CF0296EB7B1D");
        assert_eq!(wire[5], "R: 9000");
        // The published GET STATUS with C-DECRYPTION and C-MAC (plain 80F22000024F00).
        assert_eq!(
            wire[6],
            "C: 84F22000185230BA64388B4A40E0B4DA5CC1DF51C285E4020D99D5AED1"
        );
    }
}

/// The virtual SE's SCP11b test material (`virtual-se/profiles/danger-test-scp11b-*`).
fn scp11_file(name: &str) -> String {
    profiles_dir().join(name).display().to_string()
}

/// A harness on the SCP11b profile whose warnings are captured.
fn scp11_harness() -> (Harness, SharedBuf) {
    let mut h = Harness::named("scp11b.toml");
    let warnings = SharedBuf::default();
    h.client.set_warnings(Box::new(warnings.clone()));
    (h, warnings)
}

#[test]
fn scp11b_ca_verifies_the_card_chain() {
    for ca in [
        "danger-test-scp11b-ca-cert.pem",
        "danger-test-scp11b-ca-cert.der",
        "danger-test-scp11b-ca-pk.pem",
    ] {
        let (mut h, warnings) = scp11_harness();
        let ca = scp11_file(ca);
        let out = h.ok(&["--scp", "11b", "--ca", &ca, "list"]);
        assert!(out.contains("ISD: "), "{out}");
        assert_eq!(h.client.auth_attempts, 1);
        assert_eq!(
            h.trace_lines("# SCP11b: certificate chain (2 certificate(s)) verified")
                .len(),
            1,
            "{}",
            h.trace.text()
        );
        assert_eq!(warnings.text(), "", "no warning with --ca");
    }
    // Several --ca: one that fits is enough.
    let (mut h, _) = scp11_harness();
    let other = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../gp-scp/tests/data/scp11_chain/danger-test-other-root.der");
    let (ca, other) = (
        scp11_file("danger-test-scp11b-ca-cert.pem"),
        other.display().to_string(),
    );
    h.ok(&["--scp", "11b", "--ca", &other, "--ca", &ca, "list"]);
}

#[test]
fn scp11b_wrong_ca_stops_before_internal_authenticate() {
    let other = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../gp-scp/tests/data/scp11_chain/danger-test-other-root.der")
        .display()
        .to_string();
    // The SD's own certificate as "CA": it signed nothing.
    let leaf = scp11_file("danger-test-scp11b-cert.der");
    for ca in [other, leaf] {
        let (mut h, warnings) = scp11_harness();
        let e = h.err(&["--scp", "11b", "--ca", &ca, "list"]);
        assert!(matches!(e, GpError::Untrusted(_)), "{e:?}");
        assert_eq!(exit_code(&e), 3);
        let msg = e.to_string();
        assert!(msg.contains("certificate 1 of 2"), "{msg}");
        assert!(msg.contains("mec virtual SE SCP11b TEST CA"), "{msg}");
        assert!(msg.contains("not a trusted CA"), "{msg}");
        assert!(msg.contains("no INTERNAL AUTHENTICATE was sent"), "{msg}");
        assert_eq!(h.client.auth_attempts, 0);
        assert!(h.trace_lines("C: 8088").is_empty(), "{}", h.trace.text());
        assert_eq!(warnings.text(), "");
    }
    // An unreadable or unsuitable --ca file is a usage error (exit 2), before authentication.
    let (mut h, _) = scp11_harness();
    let toml = scp11_file("scp11b.toml");
    let e = h.err(&["--scp", "11b", "--ca", &toml, "list"]);
    assert!(matches!(e, GpError::Usage(_)), "{e:?}");
    assert_eq!(exit_code(&e), 2);
    assert!(e.to_string().contains("--ca"), "{e}");
    assert_eq!(h.client.auth_attempts, 0);
    assert!(h.trace_lines("C: 80CABF21").is_empty());
}

#[test]
fn scp11b_empty_certificate_store_is_untrusted() {
    // A card answering GET DATA BF21 with 9000 and no certificate: PK.SD cannot be read, let
    // alone verified; exit 3 like any SD key that is not trusted (not a usage error).
    let ca = scp11_file("danger-test-scp11b-ca-cert.pem");
    let with_ca = Scp11Trust {
        anchors: super::trust::read_anchors(std::path::Path::new(&ca)).unwrap(),
        ..Scp11Trust::default()
    };
    for trust in [Scp11Trust::default(), with_ca] {
        let (mut h, warnings) = scp11_harness();
        let e = h.client.authenticate_sd_key(&[], &trust).unwrap_err();
        assert!(matches!(e, GpError::Untrusted(_)), "{e:?}");
        assert_eq!(exit_code(&e), 3);
        assert_eq!(
            e.to_string(),
            "SCP11b: the card's certificate store (GET DATA BF21) holds no certificate: its key \
             PK.SD cannot be read; the card's key is not authenticated, so no INTERNAL \
             AUTHENTICATE was sent"
        );
        assert_eq!(warnings.text(), "");
    }
}

#[test]
fn scp11b_pinned_sd_key() {
    let point = "048F42829D707E9C52CB71228A8A0D44789A11E9E971950C3F74ACB41875BEB5412112715CFFEA68EEB3852BA6077926EC1D60027D6720C5135F62074E42376DC7";
    // Match: as hex, as the SD certificate file; with and without --ca.
    let leaf = scp11_file("danger-test-scp11b-cert.der");
    let ca = scp11_file("danger-test-scp11b-ca-cert.pem");
    for args in [
        vec!["--sd-key", point],
        vec!["--sd-key", &leaf],
        vec!["--sd-key", point, "--ca", &ca],
    ] {
        let (mut h, warnings) = scp11_harness();
        let mut argv = vec!["--scp", "11b"];
        argv.extend(args.iter().copied());
        argv.push("list");
        h.ok(&argv);
        assert_eq!(
            h.trace_lines("# SCP11b: PK.SD is the pinned --sd-key")
                .len(),
            1
        );
        assert_eq!(warnings.text(), "", "{args:?}");
    }
    // Mismatch: the CA's key pinned as the SD key.
    let (mut h, _) = scp11_harness();
    let wrong = scp11_file("danger-test-scp11b-ca-pk.pem");
    let e = h.err(&["--scp", "11b", "--sd-key", &wrong, "list"]);
    assert!(matches!(e, GpError::Untrusted(_)), "{e:?}");
    assert_eq!(exit_code(&e), 3);
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("PK.SD {point} is not the pinned --sd-key")),
        "{msg}"
    );
    assert_eq!(h.client.auth_attempts, 0);
    assert!(h.trace_lines("C: 8088").is_empty());
    // A bad point is a usage error.
    let e = h.err(&[
        "--scp",
        "11b",
        "--sd-key",
        &point.replace("048F", "0400"),
        "list",
    ]);
    assert!(matches!(e, GpError::Usage(_)), "{e:?}");
}

#[test]
fn scp11b_without_trust_options_warns() {
    let (mut h, warnings) = scp11_harness();
    h.ok(&["--scp", "11b", "list"]);
    assert_eq!(h.client.auth_attempts, 1);
    let w = warnings.text();
    assert_eq!(w.lines().count(), 1, "{w}");
    assert!(
        w.starts_with(
            "mec gp: warning: SCP11b: the card's key was not authenticated (no --ca or --sd-key)"
        ),
        "{w}"
    );
    // SCP03 on the same card: no SCP11b warning.
    let (mut h, warnings) = scp11_harness();
    h.ok(&["--scp", "03", "list"]);
    assert_eq!(warnings.text(), "");
}

#[test]
fn scp11b_trust_options_imply_scp11b() {
    let ca = scp11_file("danger-test-scp11b-ca-cert.pem");
    // Without --scp, --ca selects SCP11b (no INITIALIZE UPDATE).
    let (mut h, _) = scp11_harness();
    h.ok(&["--ca", &ca, "list"]);
    assert_eq!(h.trace_lines("C: 8088").len(), 1);
    assert!(h.trace_lines("C: 8050").is_empty());
    // With another protocol they are a usage error.
    for scp in ["02", "03"] {
        let e = h.err(&["--scp", scp, "--ca", &ca, "list"]);
        assert!(matches!(e, GpError::Usage(_)), "{e:?}");
        assert!(e.to_string().contains("--scp 11b"), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Extended-length APDUs (--apdu, --block-size).

/// A raw load file of `len` bytes, written to a temporary directory.
fn blob(dir: &tempfile::TempDir, len: usize) -> String {
    let path = dir.path().join(format!("blob-{len}.bin"));
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The wrapped LOAD commands on the wire, as bytes.
fn wire_loads(h: &Harness) -> Vec<Vec<u8>> {
    h.trace_lines("C: 84E8")
        .iter()
        .map(|l| hex::decode(l.trim_start_matches("C: ")).unwrap())
        .collect()
}

/// `virtual-se/profiles/extended-length.toml` without the built-in load files.
fn extended_card() -> Profile {
    let mut p = profile_file("extended-length.toml");
    p.builtin_load_files = false;
    p
}

#[test]
fn extended_load_scp03_level_33() {
    let mut h = Harness::new(&extended_card());
    let dir = tempfile::tempdir().unwrap();
    // 60,000 bytes: 268 blocks of 224 bytes would exceed the 256 LOAD blocks P2 can number.
    let file = blob(&dir, 60_000);
    let e = h.err(&[
        "--apdu",
        "short",
        "--security",
        "all",
        "install",
        &file,
        "--package",
        "F06D65635354",
        "--load-only",
    ]);
    assert_eq!(exit_code(&e), 2);
    assert!(
        e.to_string()
            .contains("more than 256 LOAD blocks of 224 bytes"),
        "{e}"
    );
    // Refused before INSTALL [for load]: the card is unchanged.
    assert!(h.trace_lines("# C: 80E602").is_empty());
    let out = h.ok(&[
        "--security",
        "all",
        "--trace",
        "install",
        &file,
        "--package",
        "F06D65635354",
        "--load-only",
    ]);
    assert!(out.contains("loaded F06D65635354 (60000 bytes"), "{out}");
    let trace = h.trace.text();
    assert!(
        trace.contains(
            "# APDU length: extended APDUs (the ATR's card capabilities announce extended Lc/Le)"
        ) && trace.contains("command APDUs of up to 2048 bytes"),
        "{trace}"
    );
    // GET DATA 7F66 asked before INITIALIZE UPDATE.
    assert_eq!(h.trace_lines("C: 00CA7F66").len(), 1);
    // 2048 - 9 = 2039 data bytes: 2015 -> 2016 padded + 8-byte MAC = 2024.
    assert!(trace.contains("# block size 2015 bytes (extended APDUs, SCP03 level 33)"));
    let loads = wire_loads(&h);
    assert_eq!(loads.len(), 60_004usize.div_ceil(2015));
    for l in &loads[..loads.len() - 1] {
        // Extended Lc: 00 then two bytes; 2024 data bytes; Le 0100 on two bytes.
        assert_eq!(l[4], 0x00);
        assert_eq!(u16::from_be_bytes([l[5], l[6]]), 2024);
        assert_eq!(l.len(), 4 + 3 + 2024 + 2);
        assert!(l.len() <= 2048);
    }
    // The plain LOAD blocks before wrapping carry 2015 bytes each.
    let plain = h.trace_lines("# C: 80E8");
    assert_eq!(hex::decode(&plain[0][5..]).unwrap().len(), 4 + 3 + 2015 + 2);
    // `mec trace decode` reads the extended APDUs.
    let mut decoded = Vec::new();
    let summary = crate::trace::decode(trace.as_bytes(), &mut decoded, &mut Vec::new()).unwrap();
    assert_eq!(summary.bad, 0);
    let decoded = String::from_utf8(decoded).unwrap();
    assert!(decoded.contains("extended"), "{}", &decoded[..2000]);

    h.ok(&[
        "--security",
        "all",
        "install",
        "--package",
        "F06D65635354",
        "--applet",
        "F06D6563535401",
        "--create",
        "F06D6563535402",
    ]);
    assert!(h.ok(&["list"]).contains("APP: F06D6563535402"));
    // STORE DATA of a 1500-byte DGI goes out as one extended command.
    // EMV CPS DGI length: FF then two bytes for 255 and more.
    let mut object = vec![0x01, 0x01, 0xFF, 0x05, 0xDC];
    object.extend(std::iter::repeat_n(0xAB, 1500));
    let out = h.ok(&[
        "--trace",
        "store-data",
        "F06D6563535402",
        "--dgi",
        &hex::encode_upper(&object),
    ]);
    assert!(out.contains("in 1 STORE DATA command(s)"), "{out}");
    let stores = h.trace_lines("C: 84E2");
    assert_eq!(stores.len(), 1);
    assert!(stores[0].len() > 3 + 2 * 261, "{}", &stores[0][..20]);
}

#[test]
fn extended_load_scp02() {
    let mut p = profile_file("scp02-i55.toml");
    p.builtin_load_files = false;
    p.atr = Some("3BFC1300008131FE4580738021F3566D6563584C315D".into());
    p.extended_length = Some(true);
    let mut h = Harness::new(&p);
    let dir = tempfile::tempdir().unwrap();
    let file = blob(&dir, 20_000);
    h.ok(&[
        "--security",
        "mac+enc",
        "--trace",
        "install",
        &file,
        "--package",
        "F06D65635354",
        "--load-only",
    ]);
    let trace = h.trace.text();
    // The ATR announces 7F66 but this card has none: no limit, the default 2048-byte block.
    assert_eq!(h.trace_lines("C: 00CA7F66").len(), 1);
    assert!(
        trace.contains("# block size 2048 bytes (extended APDUs, SCP02 level 03)"),
        "{trace}"
    );
    let loads = wire_loads(&h);
    assert_eq!(loads.len(), 20_004usize.div_ceil(2048));
    // 2048 -> 2056 padded (DES) + 8-byte C-MAC = 2064.
    assert_eq!(u16::from_be_bytes([loads[0][5], loads[0][6]]), 2064);
    // --block-size within the extended bounds.
    h.ok(&[
        "--block-size",
        "9000",
        "install",
        "--package",
        "F06D65635354",
        "--applet",
        "F06D6563535401",
        "--create",
        "F06D6563535403",
    ]);
    assert!(h.ok(&["list"]).contains("APP: F06D6563535403"));
}

#[test]
fn short_only_card_refuses_extended() {
    // The ATR's card capabilities say "no extended Lc/Le": --apdu extended is a usage error
    // and nothing is sent after SELECT.
    let mut h = Harness::named("short-only.toml");
    let e = h.err(&["--apdu", "extended", "list"]);
    assert_eq!(exit_code(&e), 2);
    assert!(
        e.to_string().contains("the card takes short APDUs only")
            && e.to_string().contains("third byte 93"),
        "{e}"
    );
    assert_eq!(h.client.auth_attempts, 0);
    // auto: short APDUs, 224-byte blocks, and the card takes them.
    let dir = tempfile::tempdir().unwrap();
    let file = blob(&dir, 3000);
    h.ok(&[
        "--trace",
        "install",
        &file,
        "--package",
        "F06D6563535A",
        "--load-only",
    ]);
    assert!(h.trace.text().contains(
        "# APDU length: short APDUs (the ATR's card capabilities announce no extended Lc/Le)"
    ));
    assert!(wire_loads(&h).iter().all(|l| l.len() <= 261));

    // A card whose ATR says nothing, forced with --apdu extended: the card's 6700 explained.
    let mut p = empty_card_profile();
    p.extended_length = Some(false);
    let mut h = Harness::new(&p);
    let warnings = SharedBuf::default();
    h.client.set_warnings(Box::new(warnings.clone()));
    let e = h.err(&[
        "--apdu",
        "extended",
        "install",
        &file,
        "--package",
        "F06D65635354",
        "--load-only",
    ]);
    assert_eq!(exit_code(&e), 1);
    let text = e.to_string();
    assert!(
        text.contains("LOAD block 0 of 2: the card answered 6700")
            && text.contains("refused an extended-length APDU")
            && text.contains("--apdu short"),
        "{text}"
    );
    assert!(
        warnings
            .text()
            .contains("does not announce extended-length APDUs"),
        "warnings: {:?}",
        warnings.text()
    );
    // The same APDU through `apdu`: explained too.
    let mut long = vec![0x80, 0xCA, 0x00, 0x66, 0x00, 0x01, 0x00];
    long.extend(std::iter::repeat_n(0u8, 256));
    let e = h.err(&["--apdu", "extended", "apdu", &hex::encode(&long)]);
    assert!(
        e.to_string().contains("refused an extended-length APDU"),
        "{e}"
    );
    // Without --apdu the same load uses short APDUs and succeeds.
    h.ok(&["install", &file, "--package", "F06D65635354", "--load-only"]);
}

#[test]
fn block_size_bounds() {
    assert!(TestCli::try_parse_from(["gp", "--block-size", "0", "list"]).is_err());
    assert!(TestCli::try_parse_from(["gp", "--block-size", "65536", "list"]).is_err());
    assert!(TestCli::try_parse_from(["gp", "--apdu", "long", "list"]).is_err());
    let mut h = Harness::new(&empty_card_profile());
    // No short APDU carries 248 bytes plus a MAC: refused before anything is sent.
    let e = h.err(&["--apdu", "short", "--block-size", "248", "list"]);
    assert_eq!(exit_code(&e), 2);
    assert!(e.to_string().contains("--apdu extended"), "{e}");
    assert!(h.trace.text().lines().all(|l| !l.starts_with("C: ")));
    let dir = tempfile::tempdir().unwrap();
    let file = blob(&dir, 1000);
    // SCP03 C-MAC + C-DEC: 240 -> 256 padded + 8 > 255; 239 fits.
    let e = h.err(&[
        "--block-size",
        "240",
        "install",
        &file,
        "--package",
        "F06D65635354",
        "--load-only",
    ]);
    assert_eq!(exit_code(&e), 2);
    assert!(
        e.to_string()
            .contains("becomes 264 data bytes, more than the 255 a short APDU carries")
            && e.to_string().contains("at most --block-size 239"),
        "{e}"
    );
    // Refused before INSTALL [for load]: nothing was loaded.
    assert!(h.trace_lines("# C: 80E602").is_empty());
    h.ok(&[
        "--block-size",
        "239",
        "--trace",
        "install",
        &file,
        "--package",
        "F06D65635354",
        "--load-only",
    ]);
    assert!(wire_loads(&h).iter().all(|l| l.len() <= 4 + 1 + 248 + 1));
    // C-MAC only: 247 fits.
    let mut h = Harness::new(&empty_card_profile());
    h.ok(&[
        "--security",
        "mac",
        "--block-size",
        "247",
        "install",
        &file,
        "--package",
        "F06D65635354",
        "--load-only",
    ]);

    // The extended card's 7F66 limit: 2015 at level 33, 4000 refused with the limit named.
    let mut h = Harness::new(&extended_card());
    let e = h.err(&[
        "--security",
        "all",
        "--block-size",
        "4000",
        "install",
        &file,
        "--package",
        "F06D65635354",
        "--load-only",
    ]);
    assert_eq!(exit_code(&e), 2);
    assert!(
        e.to_string().contains("at most 2048 bytes, GET DATA 7F66")
            && e.to_string().contains("at most --block-size 2015"),
        "{e}"
    );
    // Forcing short APDUs on the extended card keeps the old 224-byte blocks.
    h.ok(&[
        "--apdu",
        "short",
        "--trace",
        "install",
        &file,
        "--package",
        "F06D65635354",
        "--load-only",
    ]);
    assert!(
        h.trace
            .text()
            .contains("# block size 224 bytes (short APDUs")
    );
    assert!(h.trace_lines("C: 00CA7F66").is_empty());
}
