//! `mec trace decode` run as a user would: the built binary on the SCP03 traces of
//! `shared/vectors/scp03.toml` (copied to `tests/data/`, sources in the files' comments),
//! from a file and from standard input, clean and with malformed lines in the middle.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn mec(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mec"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn decodes_the_scp03_traces() {
    let output = mec(&["trace", "decode", &data("scp03.trace")], None);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(output.stderr.is_empty());
    // INITIALIZE UPDATE of session 1 (kaoh/globalplatform scp03Test.c).
    assert!(
        stdout.contains(
            "C: 80 50 00 00 08 9B D6 BF 87 8F B8 E9 91 00\n\
         \x20  case   4S\n\
         \x20  CLA    80 (proprietary, channel 0)\n\
         \x20  INS    50 INITIALIZE UPDATE\n\
         \x20  P1 P2  00 00\n\
         \x20  Lc     8\n\
         \x20  Le     256\n\
         \x20  data   8 bytes\n\
         \x20         9B D6 BF 87 8F B8 E9 91\n"
        ),
        "{stdout}"
    );
    // Its response: 32 data bytes (KDD, key information, challenge, cryptogram, counter).
    assert!(
        stdout.contains(
            "   data   32 bytes\n\
         \x20         00 00 00 00 00 00 00 00 00 00 30 03 70 3C 80 C2\n\
         \x20         CC 87 EB 3A 35 E4 ED BA 35 E6 29 C3 36 00 00 1E\n\
         \x20  SW     9000 (success)\n"
        ),
        "{stdout}"
    );
    // EXTERNAL AUTHENTICATE under secure messaging, security level 33 (Samsung OpenSCP-Java).
    assert!(
        stdout.contains(
            "C: 84 82 33 00 10 B0 8D 6C E2 6B 6C B3 CC B4 11 CF 02 96 EB 7B 1D\n\
         \x20  case   3S\n\
         \x20  CLA    84 (proprietary, secure messaging, channel 0)\n\
         \x20  INS    82 EXTERNAL AUTHENTICATE\n"
        ),
        "{stdout}"
    );
    // The plain DELETE's data is a TLV: 4F with the AID.
    assert!(
        stdout.contains(
            "   INS    E4 DELETE\n\
         \x20  P1 P2  00 80\n\
         \x20  Lc     10\n\
         \x20  data   10 bytes\n\
         \x20         4F 08 A0 01 00 01 51 41 43 4C\n\
         \x20  as BER-TLV:\n\
         \x20    4F (8): A0 01 00 01 51 41 43 4C\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("   INS    F2 GET STATUS\n   P1 P2  20 00\n"),
        "{stdout}"
    );
    // Comments and blank lines pass through.
    assert!(
        stdout.contains("\n\n# Session 2: kaoh/globalplatform"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("\nC: ").count() + usize::from(stdout.starts_with("C: ")),
        9
    );
    assert_eq!(stdout.matches("\nR: ").count(), 3);
}

#[test]
fn reports_malformed_lines_and_goes_on() {
    let output = mec(&["trace", "decode", &data("scp03-malformed.trace")], None);
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "mec: line 13: malformed command APDU: Lc announces 10 data bytes but only 9 follow\n\
         mec: line 14: invalid hex: Invalid character 'O' at position 2\n\
         mec: 2 of 15 trace lines could not be decoded\n"
    );
    assert!(stdout.contains(
        "line 13: C: 80E400800A4F08A0010001514143\n\
         \x20 !! not decoded: malformed command APDU: Lc announces 10 data bytes but only 9 follow\n\
         line 14: R: 90O0\n\
         \x20 !! not decoded: invalid hex: Invalid character 'O' at position 2\n\
         C: 80 E4 00 80 0A 4F 08 A0 01 00 01 51 41 43 4C\n"
    ), "{stdout}");
    // Everything after the bad lines is still decoded, up to the last command of the file.
    assert!(
        stdout.ends_with(
            "   INS    F2 GET STATUS\n\
         \x20  P1 P2  20 00\n\
         \x20  Lc     24\n\
         \x20  data   24 bytes\n\
         \x20         52 30 BA 64 38 8B 4A 40 E0 B4 DA 5C C1 DF 51 C2\n\
         \x20         85 E4 02 0D 99 D5 AE D1\n"
        ),
        "{stdout}"
    );
}

#[test]
fn reads_standard_input() {
    // A GET STATUS and its E3 answer, as a tree; `-` and no argument both mean stdin.
    let trace = b"C: 80 F2 40 02 02 4F 00 00\nR: E3 12 4F 07 A0 00 00 01 51 00 00 9F 70 01 0F C5 03 9A FE 80 63 10\n";
    for args in [&["trace", "decode", "-"][..], &["trace", "decode"][..]] {
        let output = mec(args, Some(trace));
        let stdout = text(&output.stdout);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(stdout.contains(
            "   as BER-TLV:\n\
             \x20    E3 (18 bytes)\n\
             \x20      4F (7): A0 00 00 01 51 00 00\n\
             \x20      9F70 (1): 0F\n\
             \x20      C5 (3): 9A FE 80\n\
             \x20  SW     6310 (warning: more data available (send the command again for the next occurrence))\n"
        ), "{stdout}");
        assert!(
            stdout.contains("   CLA    80 (proprietary, channel 0)\n   INS    F2 GET STATUS\n")
        );
    }
}

#[test]
fn missing_file_is_an_error() {
    let output = mec(&["trace", "decode", &data("no-such.trace")], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).starts_with("mec: cannot open "),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    // `mec trace decode big.trace | head -1`: stdout closes after the first read.
    let trace = std::fs::read_to_string(data("scp03.trace")).unwrap();
    let big = trace.repeat(200);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mec"))
        .args(["trace", "decode", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The decoder may stop reading once its output is gone; ignore that write error.
        let _ = input.write_all(big.as_bytes());
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    let n = std::io::Read::read(&mut stdout, &mut first).unwrap();
    assert!(n > 0);
    drop(stdout);
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(output.stderr.is_empty(), "{}", text(&output.stderr));
}

#[test]
fn printing_to_a_closed_pipe_ends_quietly() {
    // `mec purse perso-data | true` (println!) and `mec gp info | true` (a writer): the
    // reader is gone before mec prints anything.
    let profile = format!(
        "{}/../virtual-se/profiles/default.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    for args in [
        vec!["purse", "perso-data"],
        vec!["gp", "--virtual", &profile, "info"],
    ] {
        closed_pipe(&args);
    }
}

fn closed_pipe(args: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mec"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        text(&output.stderr)
    );
    assert!(
        !text(&output.stderr).contains("panicked"),
        "{}",
        text(&output.stderr)
    );
}
