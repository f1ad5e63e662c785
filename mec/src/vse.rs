//! `mec vse`: serve the reference virtual secure element to PC/SC tools through pcscd's vpcd
//! driver, and print the default card profile.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use virtual_se::applet::Packages;
use virtual_se::card::Card;
use virtual_se::profile::{DEFAULT_PROFILE, Profile};
use virtual_se::store::{DiskStore, MemoryStore, Store};
use virtual_se::transport::{
    Endpoint, Event, ResponseLoss, ServeOptions, Server, ShutdownHandle, VPCD_DEFAULT_PORT,
};

/// `mec vse ...`
#[derive(Subcommand, Debug)]
pub(crate) enum VseCommand {
    /// Serve a virtual SE to pcscd's vpcd reader driver (slot 0, and slot 1 with --profile2).
    ///
    /// Reverse mode (`--listen 127.0.0.1:PORT`) keeps everything on loopback: configure pcscd
    /// with a vpcd reader whose DEVICENAME is `127.0.0.1:0xPORT` (hex), and vpcd connects to
    /// slot 0 on PORT and slot 1 on PORT+1. Default mode (`--connect HOST[:PORT]`): vpcd
    /// listens (35963 and 35964 by default) and the card connects. Ctrl-C (or SIGTERM) stops
    /// the server cleanly.
    Serve(ServeArgs),
    /// Print the default card profile (TOML, every field documented in
    /// docs/virtual-se-profile.md).
    Profile,
}

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Card profile (TOML) for slot 0; the default profile when omitted.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Card profile for slot 1 (served on the next port).
    #[arg(long, value_name = "FILE")]
    profile2: Option<PathBuf>,
    /// Keep the card state in this directory (`slot0/`, `slot1/`), surviving restarts.
    /// Without it the cards live in memory.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Listen on this loopback address; vpcd connects (reverse mode).
    #[arg(
        long,
        value_name = "ADDR:PORT",
        conflicts_with = "connect",
        required_unless_present = "connect"
    )]
    listen: Option<SocketAddr>,
    /// Connect to vpcd listening at HOST or HOST:PORT (default port 35963).
    #[arg(long, value_name = "HOST[:PORT]")]
    connect: Option<String>,
    /// Seed of the cards' random numbers (64 hex digits) for reproducible transcripts;
    /// operating-system randomness when omitted.
    #[arg(long, value_name = "HEX")]
    seed: Option<String>,
    /// Fault injection: drop the response to the N-th (0-based) APDU of slot 0 that commits
    /// persistent changes, after the commit; then power the card off and drop the connection
    /// (a card leaving the field right after writing).
    #[arg(long, value_name = "N")]
    lose_response: Option<u64>,
    /// Print every transport event (connections, control codes, APDU lengths and status
    /// words; never APDU contents) to stderr.
    #[arg(long, short)]
    verbose: bool,
}

/// Run `mec vse ...`.
pub(crate) fn run(command: VseCommand) -> anyhow::Result<ExitCode> {
    match command {
        VseCommand::Profile => {
            print!("{DEFAULT_PROFILE}");
            Ok(ExitCode::SUCCESS)
        }
        VseCommand::Serve(serve) => run_serve(&serve).map(|()| ExitCode::SUCCESS),
    }
}

fn load_profile(path: Option<&Path>) -> anyhow::Result<Profile> {
    match path {
        Some(p) => {
            Profile::from_file(p).with_context(|| format!("loading profile {}", p.display()))
        }
        None => Profile::default_profile().context("loading the default profile"),
    }
}

fn parse_seed(hex_seed: &str) -> anyhow::Result<[u8; 32]> {
    let bytes =
        hex::decode(hex_seed.trim()).map_err(|e| anyhow::anyhow!("--seed is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("--seed must be 32 bytes (64 hex digits)"))
}

/// The seed of slot `slot`: the given seed with its last byte offset by the slot, or fresh
/// operating-system randomness.
fn slot_seed(seed: Option<&[u8; 32]>, slot: u8) -> anyhow::Result<[u8; 32]> {
    match seed {
        Some(s) => {
            let mut s = *s;
            s[31] ^= slot;
            Ok(s)
        }
        None => {
            let mut s = [0u8; 32];
            getrandom::fill(&mut s)
                .map_err(|e| anyhow::anyhow!("operating-system randomness: {e}"))?;
            Ok(s)
        }
    }
}

fn open_card(
    profile: &Profile,
    state: Option<&Path>,
    seed: [u8; 32],
) -> anyhow::Result<Card<Box<dyn Store>>> {
    let store: Box<dyn Store> = match state {
        Some(dir) => Box::new(
            DiskStore::open(dir)
                .with_context(|| format!("opening the card state in {}", dir.display()))?,
        ),
        None => Box::new(MemoryStore::new()),
    };
    Card::open(store, profile, Packages::builtin(), seed).context("opening the card")
}

fn endpoint(args: &ServeArgs) -> anyhow::Result<Endpoint> {
    if let Some(addr) = args.listen {
        if !addr.ip().is_loopback() {
            // The card carries well-known test keys by default: keep it off the network.
            bail!("--listen must be a loopback address (127.0.0.1 or ::1), not {addr}");
        }
        return Ok(Endpoint::Listen(addr));
    }
    let Some(target) = args.connect.as_deref() else {
        bail!("one of --listen or --connect is required");
    };
    // HOST, HOST:PORT, [v6]:PORT
    let has_port = target.rsplit_once(':').is_some_and(|(host, port)| {
        port.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
    });
    Ok(Endpoint::Connect(if has_port {
        target.to_owned()
    } else {
        format!("{target}:{VPCD_DEFAULT_PORT}")
    }))
}

fn run_serve(args: &ServeArgs) -> anyhow::Result<()> {
    let endpoint0 = endpoint(args)?;
    let seed = args.seed.as_deref().map(parse_seed).transpose()?;
    let mut slots = vec![(
        0u8,
        load_profile(args.profile.as_deref())?,
        endpoint0.clone(),
    )];
    if let Some(p2) = &args.profile2 {
        if matches!(endpoint0, Endpoint::Listen(a) if a.port() == 0) {
            bail!("--profile2 needs an explicit --listen port (slot 1 listens on port + 1)");
        }
        slots.push((1, load_profile(Some(p2))?, endpoint0.slot(1)?));
    }

    let shutdown = ShutdownHandle::new();
    let on_signal = shutdown.clone();
    ctrlc::set_handler(move || on_signal.shutdown()).context("installing the Ctrl-C handler")?;

    let mut servers = Vec::new();
    for (slot, profile, endpoint) in slots {
        let state = args.state.as_ref().map(|d| d.join(format!("slot{slot}")));
        let card = open_card(&profile, state.as_deref(), slot_seed(seed.as_ref(), slot)?)
            .with_context(|| format!("slot {slot}"))?;
        let verbose = args.verbose;
        let options = ServeOptions {
            response_loss: if slot == 0 {
                args.lose_response
                    .map(|n| ResponseLoss { committed_apdu: n })
            } else {
                None
            },
            events: Some(std::sync::Arc::new(move |event: &Event| {
                if verbose || matches!(event, Event::ResponseLost) {
                    eprintln!("mec vse: slot {slot}: {event}");
                }
            })),
            ..ServeOptions::default()
        };
        let description = profile.description.clone();
        let server = Server::spawn(endpoint.clone(), Box::new(card), options, shutdown.clone())
            .with_context(|| format!("slot {slot}: serving at {endpoint:?}"))?;
        eprintln!(
            "mec vse: slot {slot}: {} ({}){}",
            match (&endpoint, server.local_addr()) {
                (_, Some(bound)) => format!("listening on {bound}"),
                (Endpoint::Listen(a), None) => format!("listening on {a}"),
                (Endpoint::Connect(t), None) => format!("connecting to vpcd at {t}"),
            },
            if description.is_empty() {
                "profile"
            } else {
                &description
            },
            state
                .as_ref()
                .map(|d| format!(", state in {}", d.display()))
                .unwrap_or_default(),
        );
        servers.push((slot, server));
    }

    // Run until Ctrl-C / SIGTERM, or until a server stops by itself (an error).
    while !shutdown.is_shutdown() && !servers.iter().any(|(_, s)| s.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
    }
    shutdown.shutdown();
    let mut result = Ok(());
    for (slot, server) in servers {
        // Waiting hands the card back after its final flush; every APDU was already committed.
        if let Err(e) = server.wait() {
            eprintln!("mec vse: slot {slot}: {e}");
            result = Err(anyhow::anyhow!("slot {slot}: {e}"));
        }
    }
    eprintln!("mec vse: stopped");
    result
}
