//! The server configuration file (TOML), documented in `docs/roaming-server.md`.
//!
//! Relative paths in the file are relative to the directory of the file itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use mec_roaming::Registry;
use mec_roaming::jose::keys::{self, PrivateKey};
use mec_roaming::message::{Amount, PaymentMethod};
use mec_roaming::security::Validity;
use mec_roaming::server::Timeouts;
use mec_roaming::store::PinKey;
use serde::Deserialize;

use super::auth::{Tokens, check_for_role};

/// Which machine a server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// The visited server: content-provider endpoints, locates the home server.
    Visited,
    /// The home server: user-agent endpoints, subscribers, PINs, wallet.
    Home,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Visited => "visited",
            Self::Home => "home",
        }
    }
}

/// The configuration file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// Optional; when present it must equal `--role`.
    pub(crate) role: Option<Role>,
    /// This server's partner name (its JWS `kid`); must be in the registry.
    pub(crate) name: String,
    /// Listen address; must be a loopback address (the reference server speaks plain HTTP).
    pub(crate) listen: SocketAddr,
    /// Base URL others reach this server at (default `http://{listen}`).
    pub(crate) public_url: Option<String>,
    /// PKCS#8 private key (PEM or DER) signing our messages and decrypting JWE sent to us.
    pub(crate) key: PathBuf,
    /// SQLite database file (created when missing).
    pub(crate) database: PathBuf,
    /// Partner registry file (TOML: `serial = N` and `[[partner]]` tables).
    pub(crate) registry: PathBuf,
    #[serde(default)]
    pub(crate) timeouts: TimeoutsConfig,
    #[serde(default)]
    pub(crate) validity: ValidityConfig,
    #[serde(default)]
    pub(crate) http: HttpConfig,
    /// Bearer tokens of the content-provider and admin endpoints (their SHA-256 only).
    #[serde(default)]
    pub(crate) auth: AuthConfig,
    /// Home only (required there): the key-encryption key of the database's secret columns.
    pub(crate) storage: Option<StorageConfig>,
    /// Visited only.
    pub(crate) acquirer: Option<AcquirerConfig>,
    /// Home only.
    pub(crate) home: Option<HomeSection>,
    /// Home only: subscribers provisioned into the database at start (existing ones are kept
    /// as they are, with their PIN counters and wallets).
    #[serde(default, rename = "subscriber")]
    pub(crate) subscribers: Vec<SubscriberConfig>,
}

/// Protocol timers, in milliseconds (defaults: the library's [`Timeouts::default`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeoutsConfig {
    pub(crate) retransmit_ms: u64,
    pub(crate) home_response_ms: u64,
    pub(crate) user_ms: u64,
    pub(crate) give_up_ms: u64,
    pub(crate) linger_ms: u64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        let t = Timeouts::default();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            retransmit_ms: ms(t.retransmit),
            home_response_ms: ms(t.home_response),
            user_ms: ms(t.user),
            give_up_ms: ms(t.give_up),
            linger_ms: ms(t.linger),
        }
    }
}

impl TimeoutsConfig {
    pub(crate) fn to_timeouts(&self) -> Timeouts {
        Timeouts {
            retransmit: Duration::from_millis(self.retransmit_ms),
            home_response: Duration::from_millis(self.home_response_ms),
            user: Duration::from_millis(self.user_ms),
            give_up: Duration::from_millis(self.give_up_ms),
            linger: Duration::from_millis(self.linger_ms),
        }
    }
}

/// Acceptance window of incoming messages, in seconds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidityConfig {
    pub(crate) window_s: u64,
    pub(crate) skew_s: u64,
}

impl Default for ValidityConfig {
    fn default() -> Self {
        let v = Validity::default();
        Self {
            window_s: v.window.as_secs(),
            skew_s: v.skew.as_secs(),
        }
    }
}

impl ValidityConfig {
    pub(crate) fn to_validity(&self) -> Validity {
        Validity {
            window: Duration::from_secs(self.window_s),
            skew: Duration::from_secs(self.skew_s),
            ..Validity::default()
        }
    }
}

/// Outgoing server-to-server HTTP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpConfig {
    /// Timeout of one POST (connect + answer).
    pub(crate) request_timeout_ms: u64,
    /// Attempts per message on connection errors and 5xx answers (the state machines
    /// retransmit on their own timers on top of this).
    pub(crate) delivery_attempts: u32,
    /// First back-off between attempts; doubles each time.
    pub(crate) retry_backoff_ms: u64,
    /// Largest request body accepted.
    pub(crate) max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout_ms: 3000,
            delivery_attempts: 3,
            retry_backoff_ms: 200,
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Bearer tokens (RFC 6750) of the HTTP endpoints, as SHA-256 hashes in hex: the tokens
/// themselves are never stored. Several per scope allow rotation. Create one with
/// `mec roam token --scope cp|admin`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthConfig {
    /// Content-provider tokens (`/roam/v1/cp/...`) that open every merchant's transactions and
    /// accounts (operator tools, single-merchant servers). A visited server needs at least one
    /// content-provider token, here or in `cp`.
    #[serde(default)]
    pub(crate) cp_token_sha256: Vec<String>,
    /// Content-provider tokens bound to one merchant each (`[[auth.cp]]`).
    #[serde(default)]
    pub(crate) cp: Vec<CpTokenConfig>,
    /// Admin tokens (`/roam/v1/admin/...`); without any, the admin endpoints refuse every
    /// request.
    #[serde(default)]
    pub(crate) admin_token_sha256: Vec<String>,
}

/// Secrets at rest (home).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StorageConfig {
    /// File holding the 32-byte key-encryption key (raw, or 64 hex digits), mode 0600; create
    /// it with `mec roam kek --out FILE`. Read when the server starts.
    pub(crate) kek_file: PathBuf,
}

/// A content-provider token bound to one merchant: it starts transactions only for that
/// merchant and sees only that merchant's transactions and account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CpTokenConfig {
    /// SHA-256 of the token, 64 hex digits.
    pub(crate) token_sha256: String,
    /// The merchant name exactly as in `POST /roam/v1/cp/transactions` (`merchant`).
    pub(crate) merchant: String,
}

/// The visited side's acquirer (a ledger of merchant accounts in the database).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcquirerConfig {
    /// Decline payments above this many minor units.
    pub(crate) decline_above: Option<u64>,
}

/// Home-only settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HomeSection {
    /// File holding the 32-byte PIN-verifier key as 64 hex digits.
    pub(crate) pin_key: PathBuf,
    /// Validity of single-use card tokens, seconds.
    #[serde(default = "default_token_ttl")]
    pub(crate) token_ttl_s: u64,
    /// PIN tries before lockout.
    #[serde(default = "default_pin_tries")]
    pub(crate) max_pin_tries: u8,
}

const fn default_token_ttl() -> u64 {
    600
}

const fn default_pin_tries() -> u8 {
    mec_roaming::store::DEFAULT_PIN_TRIES
}

/// A subscriber to provision (home).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubscriberConfig {
    /// E.164 number, `+` and digits.
    pub(crate) id: String,
    /// The PIN, for provisioning test subscribers: only its keyed verifier is stored.
    pub(crate) pin: Option<String>,
    /// The PIN verifier (64 hex digits, HMAC-SHA256 with the PIN key), instead of `pin`.
    pub(crate) pin_verifier: Option<String>,
    /// Payment methods.
    #[serde(default)]
    pub(crate) payment_methods: Vec<PaymentMethod>,
    /// PKCS#8 key for delegated signatures.
    pub(crate) signing_key: Option<PathBuf>,
    /// SubjectPublicKeyInfo PEM of the registered device key (end-to-end signatures).
    pub(crate) device_key: Option<PathBuf>,
    /// Card number on file (tokenized before it leaves the home server).
    pub(crate) card: Option<String>,
    /// Wallet opening balance.
    pub(crate) wallet: Option<Amount>,
}

/// Everything loaded and checked.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) file: ConfigFile,
    pub(crate) role: Role,
    /// Taken by the server when it starts.
    pub(crate) key: Option<PrivateKey>,
    pub(crate) registry: Registry,
    pub(crate) public_url: String,
    pub(crate) database: PathBuf,
    /// Home: PIN key.
    pub(crate) pin_key: Option<PinKey>,
    /// Accepted bearer-token hashes.
    pub(crate) tokens: Tokens,
    base: PathBuf,
}

impl Loaded {
    /// A path from the file, resolved against the file's directory.
    pub(crate) fn resolve(&self, p: &Path) -> PathBuf {
        resolve(&self.base, p)
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

/// Reads a PKCS#8 private key, PEM or DER.
pub(crate) fn read_private_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let bytes = std::fs::read(path).with_context(|| format!("reading key {}", path.display()))?;
    let key = match std::str::from_utf8(&bytes) {
        Ok(text) if text.trim_start().starts_with("-----BEGIN") => PrivateKey::from_pkcs8_pem(text),
        _ => PrivateKey::from_pkcs8_der(&bytes),
    };
    key.with_context(|| format!("key {} is not a P-256 PKCS#8 key", path.display()))
}

/// Reads a public key (SubjectPublicKeyInfo PEM or base64 DER).
pub(crate) fn read_public_key(path: &Path) -> anyhow::Result<p256::PublicKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading public key {}", path.display()))?;
    keys::parse_public_key(&text)
        .with_context(|| format!("public key {} is not a P-256 SPKI", path.display()))
}

fn parse_hex32(text: &str) -> anyhow::Result<[u8; 32]> {
    let t = text.trim();
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("expected 64 hex digits");
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let pair = t.get(2 * i..2 * i + 2).context("hex")?;
        *o = u8::from_str_radix(pair, 16).context("hex")?;
    }
    Ok(out)
}

/// Parses 64 hex digits (PIN key, PIN verifier).
pub(crate) fn hex32(text: &str) -> anyhow::Result<[u8; 32]> {
    parse_hex32(text)
}

/// Loads and checks the configuration for `role`.
pub(crate) fn load(path: &Path, role: Role) -> anyhow::Result<Loaded> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: ConfigFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let base = path.parent().map(Path::to_owned).unwrap_or_default();
    if let Some(r) = file.role
        && r != role
    {
        bail!(
            "the configuration is for role {} but --role is {}",
            r.as_str(),
            role.as_str()
        );
    }
    if !file.listen.ip().is_loopback() {
        bail!(
            "listen address {} is not a loopback address; the reference server speaks plain HTTP",
            file.listen
        );
    }
    let key = read_private_key(&resolve(&base, &file.key))?;
    let reg_path = resolve(&base, &file.registry);
    let reg_text = std::fs::read_to_string(&reg_path)
        .with_context(|| format!("reading registry {}", reg_path.display()))?;
    let registry = Registry::from_toml(&reg_text)
        .with_context(|| format!("registry {}", reg_path.display()))?;
    let me = registry
        .partner(&file.name)
        .with_context(|| format!("{} is not in the partner registry", file.name))?;
    if *me.verifying_key() != key.verifying_key() {
        bail!(
            "the registry's verifying key for {} does not match the configured private key",
            file.name
        );
    }
    let public_url = file
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", file.listen));
    let public_url = public_url.trim_end_matches('/').to_owned();
    let pin_key = match role {
        Role::Home => {
            let h = file
                .home
                .as_ref()
                .context("a home server needs a [home] section with pin_key")?;
            let p = resolve(&base, &h.pin_key);
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("reading PIN key {}", p.display()))?;
            Some(PinKey::new(
                parse_hex32(&text).with_context(|| format!("PIN key {}", p.display()))?,
            ))
        }
        Role::Visited => {
            if file.home.is_some() || !file.subscribers.is_empty() {
                bail!("[home] and [[subscriber]] belong in a home server's configuration");
            }
            None
        }
    };
    if role == Role::Home && file.acquirer.is_some() {
        bail!("[acquirer] belongs in a visited server's configuration");
    }
    match (role, &file.storage) {
        (Role::Home, None) => bail!(
            "a home server needs [storage] kek_file (the key sealing subscriber secrets; create one with `mec roam kek --out FILE`)"
        ),
        (Role::Visited, Some(_)) => bail!(
            "[storage] belongs in a home server's configuration (the visited server stores no subscriber secrets)"
        ),
        _ => {}
    }
    let tokens = Tokens::from_config(&file.auth)?;
    check_for_role(&tokens, role == Role::Visited)?;
    let database = resolve(&base, &file.database);
    Ok(Loaded {
        file,
        role,
        key: Some(key),
        registry,
        public_url,
        database,
        pin_key,
        tokens,
        base,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::auth::Scope;
    use super::*;

    #[test]
    fn hex32_accepts_only_64_hex_digits() {
        assert_eq!(hex32(&"00".repeat(32)).unwrap(), [0u8; 32]);
        assert_eq!(
            hex32(&format!("{}\n", "ab".repeat(32))).unwrap(),
            [0xab; 32]
        );
        assert!(hex32("abc").is_err());
        assert!(hex32(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn example_configurations_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/roam");
        let v = load(&dir.join("visited.toml"), Role::Visited).unwrap();
        assert_eq!(v.file.name, "visited-fi");
        // The README beside the files gives the test-only tokens these hashes are of.
        assert!(
            v.tokens
                .allows(Scope::Cp, b"TEST-ONLY-content-provider-token")
        );
        assert!(v.tokens.allows(Scope::Admin, b"TEST-ONLY-admin-token"));
        assert!(
            v.tokens
                .allows(Scope::Cp, b"TEST-ONLY-helsinki-tickets-token")
        );
        assert!(
            !v.tokens
                .allows(Scope::Admin, b"TEST-ONLY-helsinki-tickets-token")
        );
        assert!(
            !v.tokens
                .allows(Scope::Admin, b"TEST-ONLY-content-provider-token")
        );
        let h = load(&dir.join("home.toml"), Role::Home).unwrap();
        assert_eq!(h.file.subscribers.len(), 3);
        assert!(h.tokens.allows(Scope::Admin, b"TEST-ONLY-admin-token"));
        assert!(h.tokens.is_empty(Scope::Cp));
        assert!(
            load(&dir.join("home.toml"), Role::Visited).is_err(),
            "role mismatch refused"
        );
    }
}
