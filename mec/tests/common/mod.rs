//! The harness `purse_cli.rs` and `purse_tag_cli.rs` share: the built `mec` binary run on an
//! in-process virtual SE (the default profile) whose state lives in a temporary directory,
//! with the purse installed and personalized through `mec gp`.
#![allow(dead_code, clippy::unwrap_used, missing_docs, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The purse instance the tests install.
pub const AID: &str = "A000000333010101";

/// The purse's load file and module (virtual-se's built-in e-purse package).
pub const PURSE_PACKAGE: &str = "F06D65635055";
pub const PURSE_MODULE: &str = "F06D6563505501";

pub fn profile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../virtual-se/profiles/default.toml")
}

/// Exit code and output of one `mec` run.
pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

pub fn mec(args: &[&str]) -> Run {
    mec_stdin(args, "")
}

/// `mec ARGS` with `input` on standard input.
pub fn mec_stdin(args: &[&str], input: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mec"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `mec GROUP --virtual PROFILE --virtual-state DIR ARGS...` with `input` on standard input.
fn on_card(group: &str, dir: &tempfile::TempDir, args: &[&str], input: &str) -> Run {
    let p = profile();
    let mut all = vec![
        group,
        "--virtual",
        p.to_str().unwrap(),
        "--virtual-state",
        dir.path().to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    mec_stdin(&all, input)
}

/// `mec gp ...` on the card in `dir`.
pub fn gp(dir: &tempfile::TempDir, args: &[&str]) -> Run {
    on_card("gp", dir, args, "")
}

/// `mec purse ...` on the card in `dir`.
pub fn purse(dir: &tempfile::TempDir, args: &[&str]) -> Run {
    on_card("purse", dir, args, "")
}

/// `mec purse ...` on the card in `dir`, with `input` on standard input (`--pin -`).
pub fn purse_stdin(dir: &tempfile::TempDir, args: &[&str], input: &str) -> Run {
    on_card("purse", dir, args, input)
}

/// INSTALL [for install and make selectable] of `module` of the e-purse package as `instance`.
pub fn install(dir: &tempfile::TempDir, module: &str, instance: &str, params: Option<&str>) {
    let mut args = vec![
        "install",
        "--package",
        PURSE_PACKAGE,
        "--applet",
        module,
        "--create",
        instance,
    ];
    if let Some(p) = params {
        args.extend(["--params", p]);
    }
    let r = gp(dir, &args);
    assert_eq!(r.code, 0, "{}", r.err);
}

/// A new card with the purse [`AID`] installed and personalized with the DGIs of
/// `mec purse perso-data PERSO...` (INSTALL [for personalization] + STORE DATA).
pub fn card_with_purse(perso: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    install(&dir, PURSE_MODULE, AID, None);
    let mut perso_args = vec!["purse", "perso-data"];
    perso_args.extend_from_slice(perso);
    let dgis = mec(&perso_args);
    assert_eq!(dgis.code, 0, "{}", dgis.err);
    let mut args = vec!["store-data", AID, "--dgi"];
    args.extend(dgis.out.lines());
    let r = gp(&dir, &args);
    assert_eq!(r.code, 0, "{}", r.err);
    dir
}

/// The value of the receipt line starting with `name`.
pub fn field(text: &str, name: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(name))
        .map(|l| l[name.len()..].trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// The run failed with exit code `code` and its standard error says `text`.
#[track_caller]
pub fn refused(r: &Run, code: i32, text: &str) {
    assert_eq!(r.code, code, "{}", r.err);
    assert!(r.err.contains(text), "{}", r.err);
}
