//! `mec roam`: the roaming reference servers (visited and home) over HTTP on loopback.
//!
//! The HTTP layer only drives the Sans-IO machines of `mec-roaming`: every request becomes an
//! input fed with the real time, every output is journaled in SQLite and then sent, answered or
//! recorded. See `docs/roaming-server.md` and `docs/roaming-openapi.json`.

mod api;
mod auth;
mod config;
mod http;
mod seal;
mod server;
mod sqlite;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mec_roaming::jose::keys::PrivateKey;

pub(crate) use config::Role;

/// `mec roam ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum RoamCommand {
    /// Run a visited or home MeC server over HTTP on loopback until Ctrl-C (or SIGTERM).
    Serve {
        /// Which server.
        #[arg(long, value_enum)]
        role: Role,
        /// Configuration file (TOML), see docs/roaming-server.md.
        #[arg(long)]
        config: PathBuf,
    },
    /// Create a bearer token for the content-provider or admin endpoints: prints the token
    /// (give it to the client; it is not stored anywhere) and the line for the server's
    /// `[auth]` section, which holds only its SHA-256.
    Token {
        /// Which endpoints the token opens.
        #[arg(long, value_enum)]
        scope: auth::Scope,
        /// Content-provider tokens only: bind the token to this merchant (prints an
        /// `[[auth.cp]]` table instead of the all-merchants `cp_token_sha256` line).
        #[arg(long)]
        merchant: Option<String>,
    },
    /// Generate a key-encryption key for a home server's `[storage] kek_file`: 32 random
    /// bytes written to FILE with mode 0600 (an existing file is never overwritten).
    Kek {
        /// Where to write the key.
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate a P-256 key: PKCS#8 PEM to FILE (mode 0600), the public key (SPKI PEM) to stdout.
    Keygen {
        /// Where to write the private key (an existing file is never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `mec roam ...`.
///
/// # Errors
/// Configuration, key, database and listen errors.
pub(crate) fn run(command: RoamCommand) -> anyhow::Result<ExitCode> {
    match command {
        RoamCommand::Serve { role, config } => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .try_init();
            let loaded = config::load(&config, role)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("tokio runtime")?;
            rt.block_on(server::serve(loaded))?;
            Ok(ExitCode::SUCCESS)
        }
        RoamCommand::Token { scope, merchant } => {
            let (token, hash) = auth::generate()?;
            match (scope, merchant) {
                (_, None) => {
                    println!("{}", token.as_str());
                    println!("{} = [\"{hash}\"]", scope.config_key());
                }
                (auth::Scope::Cp, Some(m)) if !m.is_empty() => {
                    println!("{}", token.as_str());
                    println!("[[auth.cp]]");
                    println!("token_sha256 = \"{hash}\"");
                    println!("merchant = {}", toml::Value::String(m));
                }
                (auth::Scope::Cp, Some(_)) => anyhow::bail!("--merchant must not be empty"),
                (auth::Scope::Admin, Some(_)) => {
                    anyhow::bail!("--merchant binds content-provider tokens only (--scope cp)")
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RoamCommand::Kek { out } => {
            seal::generate_kek(&out)?;
            eprintln!(
                "wrote a 32-byte key-encryption key to {} (mode 0600); back it up: without it the sealed secrets cannot be read",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        RoamCommand::Keygen { out } => {
            keygen(&out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn keygen(out: &std::path::Path) -> anyhow::Result<()> {
    use rand_core::SeedableRng;
    use std::io::Write;
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice())
        .map_err(|e| anyhow::anyhow!("operating system random generator: {e}"))?;
    let mut rng = chacha20::ChaCha20Rng::from_seed(*seed);
    let key = PrivateKey::generate(&mut rng);
    let pem = key.to_pkcs8_pem()?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    f.write_all(pem.as_bytes())?;
    print!("{}", key.public_key_pem()?);
    Ok(())
}
