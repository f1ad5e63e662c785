//! `mec`: the project's command-line tool.
//!
//! Each command group lives in its own module (`trace.rs` for `mec trace ...`); a new group is
//! a module line, a variant of [`Group`] and an arm in [`main`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod gp;
mod purse;
mod roam;
mod trace;
mod transport;
mod vse;

/// Command-line tool for the mec smart-card and secure-element workspace.
#[derive(Debug, Parser)]
#[command(name = "mec", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    group: Group,
}

/// The command groups.
#[derive(Debug, Subcommand)]
enum Group {
    /// Work with APDU traces.
    #[command(subcommand)]
    Trace(trace::TraceCommand),
    /// The reference virtual secure element (serve it to PC/SC tools through vpcd).
    #[command(subcommand)]
    Vse(vse::VseCommand),
    /// GlobalPlatform card management over PC/SC (list, install, personalize, lock, delete, keys).
    Gp(Box<gp::GpArgs>),
    /// E-purse terminal: EP/ED balance, load, unload, purchase, log, prove; PIN and issuer commands;
    /// value moved to the value-block tag; e-tickets and the gate reader.
    Purse(Box<purse::PurseArgs>),
    /// Roaming for mobile e-commerce: the visited and home reference servers.
    #[command(subcommand)]
    Roam(roam::RoamCommand),
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    let result = match cli.group {
        Group::Trace(command) => trace::run(command),
        Group::Vse(command) => vse::run(command),
        Group::Roam(command) => roam::run(command),
        Group::Gp(args) => gp::run(*args),
        Group::Purse(args) => purse::run(*args),
    };
    match result {
        Ok(code) => code,
        // `mec trace decode big.trace | head`: the reader went away; that is not an error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mec: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether the error comes from writing to a closed pipe (stdout piped into `head`, say).
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `println!` panics when standard output is a pipe whose reader has gone (`mec purse log |
/// head -1`); a command-line tool should just stop there, quietly and successfully.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
