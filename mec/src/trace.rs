//! `mec trace ...`: APDU trace tools.
//!
//! A trace is text, one exchange step per line:
//!
//! ```text
//! # a comment, passed through
//! C: 80 50 00 00 08 9B D6 BF 87 8F B8 E9 91 00
//! R: 00000000000000000000 300370 ... 9000
//! ```
//!
//! `C:` lines are command APDUs, `R:` lines response APDUs; spaces inside the hex are allowed,
//! blank lines and `#` comments are copied to the output.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use apdu_codec::tlv::{self, Limits, Tlv, TlvIter};
use apdu_codec::{CommandView, ResponseView, ins, parse_command, parse_response};
use clap::Subcommand;

/// `mec trace` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TraceCommand {
    /// Decode an APDU trace (`C: <hex>` / `R: <hex>` lines): case, class, instruction,
    /// parameters, lengths, data as BER-TLV where it parses, status word meanings.
    ///
    /// Bad lines are reported on standard error with their line number; decoding goes on and
    /// the exit status is 1 if any line was bad.
    Decode {
        /// The trace file; `-` (the default) reads standard input.
        #[arg(default_value = "-")]
        file: String,
    },
}

/// Run a `mec trace` subcommand.
pub(crate) fn run(command: TraceCommand) -> anyhow::Result<ExitCode> {
    match command {
        TraceCommand::Decode { file } => {
            let stdout = io::stdout();
            let stderr = io::stderr();
            let summary = if file == "-" {
                decode(io::stdin().lock(), &mut stdout.lock(), &mut stderr.lock())
            } else {
                let reader = File::open(&file).with_context(|| format!("cannot open {file}"))?;
                decode(
                    BufReader::new(reader),
                    &mut stdout.lock(),
                    &mut stderr.lock(),
                )
            }
            .with_context(|| format!("reading {file}"))?;
            if summary.bad == 0 {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "mec: {} of {} trace lines could not be decoded",
                    summary.bad, summary.apdus
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// What a decode run saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    /// `C:`/`R:` lines and unrecognised lines.
    pub(crate) apdus: usize,
    /// Lines that could not be decoded.
    pub(crate) bad: usize,
}

/// Decode a whole trace: the listing goes to `out`, one message per bad line to `err`.
///
/// # Errors
/// Only I/O errors of the reader or writers; bad lines are counted, not errors.
pub(crate) fn decode(
    input: impl BufRead,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    for (index, line) in input.split(b'\n').enumerate() {
        let number = index + 1;
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            writeln!(out, "{text}")?;
            continue;
        }
        summary.apdus += 1;
        match decode_line(text) {
            Ok(listing) => out.write_all(listing.as_bytes())?,
            Err(message) => {
                summary.bad += 1;
                writeln!(out, "line {number}: {text}")?;
                writeln!(out, "  !! not decoded: {message}")?;
                writeln!(err, "mec: line {number}: {message}")?;
            }
        }
    }
    Ok(summary)
}

/// Decode one `C:`/`R:` line into its listing.
fn decode_line(text: &str) -> Result<String, String> {
    let (kind, rest) = text.split_at_checked(2).unwrap_or((text, ""));
    let is_command = match kind {
        "C:" | "c:" => true,
        "R:" | "r:" => false,
        _ => {
            return Err(
                "expected `C: <hex>` (command), `R: <hex>` (response), a `# comment` or a blank line"
                    .into(),
            );
        }
    };
    let hex_digits: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = hex::decode(&hex_digits).map_err(|error| format!("invalid hex: {error}"))?;
    let mut out = String::new();
    if is_command {
        let command =
            parse_command(&bytes).map_err(|error| format!("malformed command APDU: {error}"))?;
        let _ = writeln!(out, "C: {}", spaced(&bytes));
        describe_command(&mut out, &command);
    } else {
        let response =
            parse_response(&bytes).map_err(|error| format!("malformed response APDU: {error}"))?;
        let _ = writeln!(out, "R: {}", spaced(&bytes));
        describe_response(&mut out, &response);
    }
    Ok(out)
}

fn describe_command(out: &mut String, command: &CommandView<'_>) {
    let cla = command.cla();
    let _ = writeln!(out, "   case   {}", command.case().name());
    let _ = writeln!(out, "   CLA    {cla}");
    let name = ins::name(cla.0, command.ins()).unwrap_or("(not an ISO/GlobalPlatform instruction)");
    let _ = writeln!(out, "   INS    {:02X} {name}", command.ins());
    let _ = writeln!(out, "   P1 P2  {:02X} {:02X}", command.p1(), command.p2());
    if !command.data().is_empty() {
        let _ = writeln!(out, "   Lc     {}", command.data().len());
    }
    if let Some(le) = command.le() {
        let _ = writeln!(out, "   Le     {le}");
    }
    describe_data(out, command.data());
}

fn describe_response(out: &mut String, response: &ResponseView<'_>) {
    describe_data(out, response.data());
    let _ = writeln!(out, "   SW     {}", response.status());
}

/// The data field as hex and, when the whole field is well-formed BER-TLV, as a tree.
fn describe_data(out: &mut String, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let _ = writeln!(out, "   data   {} bytes", data.len());
    write_hex_block(out, data, 10);
    if tlv::validate(data, Limits::default()).is_ok() {
        let _ = writeln!(out, "   as BER-TLV:");
        for object in TlvIter::new(data).flatten() {
            write_tree(out, object, 1);
        }
    }
}

fn write_tree(out: &mut String, object: Tlv<'_>, level: usize) {
    let indent = 3 + 2 * level;
    let len = object.value().len();
    if object.is_constructed() {
        let _ = writeln!(out, "{:indent$}{} ({len} bytes)", "", object.tag());
        for child in object.children().flatten() {
            write_tree(out, child, level + 1);
        }
    } else if len <= 16 {
        let _ = writeln!(
            out,
            "{:indent$}{} ({len}): {}",
            "",
            object.tag(),
            spaced(object.value())
        );
    } else {
        let _ = writeln!(out, "{:indent$}{} ({len}):", "", object.tag());
        write_hex_block(out, object.value(), indent + 2);
    }
}

/// Hex in rows of 16 bytes, indented.
fn write_hex_block(out: &mut String, data: &[u8], indent: usize) {
    for row in data.chunks(16) {
        let _ = writeln!(out, "{:indent$}{}", "", spaced(row));
    }
}

/// `9B D6 BF`.
fn spaced(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{byte:02X}");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(trace: &str) -> (String, String, Summary) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let summary = decode(trace.as_bytes(), &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            summary,
        )
    }

    #[test]
    fn get_status_response_as_tree() {
        let (out, err, summary) =
            run("C: 80F2400002 4F00 00\nR: E3104F05A0000000039F700107C503000000 9000\n");
        assert_eq!(summary, Summary { apdus: 2, bad: 0 });
        assert!(err.is_empty());
        assert!(out.contains("   INS    F2 GET STATUS\n"), "{out}");
        assert!(out.contains("   Lc     2\n   Le     256\n"), "{out}");
        assert!(out.contains("     E3 (16 bytes)\n"), "{out}");
        assert!(out.contains("       4F (5): A0 00 00 00 03\n"), "{out}");
        assert!(out.contains("       9F70 (1): 07\n"), "{out}");
        assert!(out.contains("   SW     9000 (success)\n"), "{out}");
    }

    #[test]
    fn bad_lines_are_reported_and_skipped() {
        let (out, err, summary) = run("C: 00A4\nX: 00\nR: 9\n\n# end\nR: 6A82\n");
        assert_eq!(summary, Summary { apdus: 4, bad: 3 });
        assert_eq!(
            err,
            "mec: line 1: malformed command APDU: a command APDU needs at least 4 header bytes, got 2\n\
             mec: line 2: expected `C: <hex>` (command), `R: <hex>` (response), a `# comment` or a blank line\n\
             mec: line 3: invalid hex: Odd number of digits\n"
        );
        assert!(
            out.ends_with("\n# end\nR: 6A 82\n   SW     6A82 (file or application not found)\n"),
            "{out}"
        );
    }
}
