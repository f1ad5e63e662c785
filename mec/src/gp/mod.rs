//! `mec gp`: GlobalPlatform card management over PC/SC (or an in-process virtual SE).
//!
//! The command line is here; the card-management logic is [`client::GpClient`] over a
//! [`crate::transport::Transport`], and the verbs are in [`verbs`]. Exit codes: 0 success,
//! 1 the card refused an operation (status word), 2 usage or file errors, 3 authentication
//! failed (card cryptogram, host cryptogram), 4 the domain is blocked (6983), 5 reader or
//! PC/SC errors.

mod cap;
mod client;
mod length;
mod report;
mod trust;
mod verbs;

#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use gp_scp::SecurityLevel;
use gp_scp::diversify::Diversification;
use gp_scp::keys::SecretKey;
use gp_scp::keys::danger_test_keys::K40;

use crate::transport::{PcscTransport, Tracer, Transport, TransportError, VirtualTransport};
use client::{AuthOptions, GpClient, GpError, ScpChoice};

/// `mec gp [OPTIONS] <VERB>`
#[derive(Args, Debug)]
#[command(
    about = "GlobalPlatform card management over PC/SC: list, install, personalize, lock, delete, keys",
    after_help = "Options go before the verb: `mec gp --key 404142434445464748494A4B4C4D4E4F --trace list`.\n\
Without --key the default test keys 404142..4F are used.\n\
SCP11b: --ca FILE verifies the card's certificate chain (GET DATA BF21) against a CA \
certificate or public key; --sd-key pins the card's key (both imply --scp 11b): \
`mec gp --ca ca.pem list`. Without either the card's key is used unauthenticated, with a \
warning on stderr.\n\
Extended-length APDUs: --apdu auto (the default) sends them when the card's ATR announces them, --apdu extended forces them, --block-size N sets the LOAD / STORE DATA block: `mec gp --apdu extended --block-size 4000 install big.cap`.\n\
Exit codes: 0 ok, 1 card refused (status word), 2 usage/file, 3 authentication failed (or SCP11b card key not trusted), 4 domain blocked (6983), 5 reader/PC/SC."
)]
pub(crate) struct GpArgs {
    /// Use the first PC/SC reader whose name contains this text (case-insensitive).
    #[arg(long, value_name = "NAME")]
    reader: Option<String>,
    /// Same static key for ENC, MAC and DEK (hex: 16 bytes DES for SCP02; 16/24/32 bytes AES
    /// for SCP03). Default: the test keys 404142..4F.
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    key: Option<HexKey>,
    /// Static ENC key (overrides --key).
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    key_enc: Option<HexKey>,
    /// Static MAC key (overrides --key).
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    key_mac: Option<HexKey>,
    /// Static DEK key (overrides --key).
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    key_dek: Option<HexKey>,
    /// Key version number to authenticate with (hex, INITIALIZE UPDATE P1; 00 = the card's
    /// default; SCP11b: the SD key version, default 01).
    #[arg(long, value_name = "HEX", default_value = "00", value_parser = parse_byte)]
    kvn: u8,
    /// Diversify the given (master) keys with the card's KDD.
    #[arg(long, value_enum, default_value_t = Kdf::None)]
    kdf: Kdf,
    /// Secure channel protocol: 02, 03 or 11b (default: from the card's INITIALIZE UPDATE
    /// answer; SCP03 S16 from the domain's FCI, i bit 01, or from a card refusing an 8-byte
    /// challenge with 6700).
    #[arg(long, value_name = "02|03|11b", value_parser = parse_scp)]
    scp: Option<ScpChoice>,
    /// Security level: mac (01), mac+enc (03), mac+enc+rmac (13), all (33, SCP03 only).
    #[arg(long, value_enum, default_value_t = Security::MacEnc)]
    security: Security,
    /// Security domain to work with (default: the issuer security domain, found by SELECT).
    #[arg(long, value_name = "AID")]
    sd: Option<String>,
    /// SCP11b: verify the card's certificate chain (GET DATA BF21, X.509 or GlobalPlatform
    /// format) against this CA: a certificate or a public key, PEM or DER. Repeatable (any
    /// of them may anchor the chain); a chain that does not verify stops before INTERNAL
    /// AUTHENTICATE.
    #[arg(long = "ca", value_name = "FILE")]
    ca: Vec<PathBuf>,
    /// SCP11b: pin the card's key PK.SD: the uncompressed point in hex (04 || X || Y), or a
    /// file with the public key or the SD certificate (PEM or DER).
    #[arg(long, value_name = "FILE|HEX")]
    sd_key: Option<String>,
    /// Fixed host challenge (hex, 8 bytes; 16 for SCP03 S16), for reproducible traces.
    /// Otherwise random.
    #[arg(long, value_name = "HEX")]
    host_challenge: Option<String>,
    /// Print every APDU on stderr: `C: <hex>` and `R: <hex>`; the plain APDU before secure
    /// messaging wraps it (and the unwrapped response) as `# C:` / `# R:` comment lines.
    #[arg(long)]
    trace: bool,
    /// Machine-readable output (info, list, readers).
    #[arg(long)]
    json: bool,
    /// Talk to an in-process virtual SE with this card profile instead of a PC/SC reader
    /// (no pcscd needed; see virtual-se/profiles/).
    #[arg(long = "virtual", value_name = "PROFILE", conflicts_with = "reader")]
    virtual_profile: Option<PathBuf>,
    /// With --virtual: keep the card state in this directory across invocations.
    #[arg(long, value_name = "DIR", requires = "virtual_profile")]
    virtual_state: Option<PathBuf>,
    /// APDU lengths: short (255 data bytes at most; longer commands are chained), extended
    /// (extended-length APDUs where a command needs them), or auto: extended only when the
    /// card announces it in its ATR (card capabilities, ISO/IEC 7816-4 §8.1.1.2.7).
    #[arg(long, value_enum, value_name = "short|extended|auto", default_value_t = length::ApduMode::Auto)]
    apdu: length::ApduMode,
    /// LOAD and STORE DATA block size in bytes (default: 224 with short APDUs; 2048 with
    /// extended ones, lowered to fit the card's maximum command length from GET DATA 7F66).
    /// Must fit one APDU once the secure channel has padded and MACed it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    block_size: Option<u16>,
    /// The operation.
    #[command(subcommand)]
    verb: Verb,
}

/// `--kdf`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kdf {
    /// The keys are used as given.
    None,
    /// EMV CPS 1.1 (DES keys, SCP02).
    Emv,
    /// VISA2 (DES keys, SCP02).
    Visa2,
    /// KDF3 (AES keys, SCP03).
    Kdf3,
}

impl Kdf {
    fn method(self) -> Diversification {
        match self {
            Kdf::None => Diversification::None,
            Kdf::Emv => Diversification::EmvCps11,
            Kdf::Visa2 => Diversification::Visa2,
            Kdf::Kdf3 => Diversification::Kdf3,
        }
    }
}

/// `--security`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Security {
    /// C-MAC (01).
    Mac,
    /// C-MAC and C-DECRYPTION (03).
    #[value(name = "mac+enc")]
    MacEnc,
    /// C-MAC, C-DECRYPTION and R-MAC (13).
    #[value(name = "mac+enc+rmac")]
    MacEncRmac,
    /// C-MAC, C-DECRYPTION, R-MAC and R-ENCRYPTION (33, SCP03).
    All,
}

impl Security {
    fn level(self) -> SecurityLevel {
        match self {
            Security::Mac => SecurityLevel::C_MAC,
            Security::MacEnc => SecurityLevel::C_DEC_C_MAC,
            Security::MacEncRmac => SecurityLevel::C_DEC_C_MAC_R_MAC,
            Security::All => SecurityLevel::ALL,
        }
    }
}

/// The verbs.
#[derive(Subcommand, Debug)]
pub(crate) enum Verb {
    /// List PC/SC readers, whether a card is present, and its ATR.
    Readers,
    /// Card information: CPLC field by field, card data (66), IIN/CIN, KDD, sequence counter,
    /// key information table, card life cycle, supported secure channels.
    Info {
        /// Do not authenticate (the card life cycle then stays unknown: GET STATUS needs a
        /// session).
        #[arg(long)]
        no_auth: bool,
    },
    /// List the ISD, security domains, applications and load files with their modules,
    /// life cycles and privileges (GET STATUS, tagged format with legacy fallback).
    List,
    /// Load a load file (CAP file or raw load file data block), install and make selectable.
    #[command(
        after_help = "Examples:\n  mec gp install applet.cap                 (package and applet AIDs from the CAP)\n  mec gp install applet.cap --create F000000001 --params 0102 --privs card-reset\n  mec gp install --package F06D65635354 --applet F06D6563535401 --create F06D6563535402   (no file: instance of a load file already on the card)"
    )]
    Install {
        /// The load file: a CAP file (ZIP) or a raw load file data block. Omit it to only
        /// create an instance of a load file already on the card.
        file: Option<PathBuf>,
        /// AID of the new application instance (default: the applet AID).
        #[arg(long, value_name = "AID")]
        create: Option<String>,
        /// Load file (package) AID (default: from the CAP header; required for raw files).
        #[arg(long, value_name = "AID")]
        package: Option<String>,
        /// Module (applet class) AID (default: the CAP's only applet).
        #[arg(long, value_name = "AID")]
        applet: Option<String>,
        /// Application-specific install parameters (hex, sent in C9).
        #[arg(long, value_name = "HEX")]
        params: Option<String>,
        /// Privileges: names separated by commas (security-domain, card-lock, card-reset,
        /// authorized-management, global-registry, ...) or 1 or 3 hex bytes.
        #[arg(long, value_name = "LIST")]
        privs: Option<String>,
        /// Associate the load file with this security domain (INSTALL [for load]).
        #[arg(long, value_name = "SSD-AID")]
        to: Option<String>,
        /// Only load (no INSTALL [for install]).
        #[arg(long)]
        load_only: bool,
        /// Include the CAP's Descriptor component.
        #[arg(long)]
        descriptor: bool,
    },
    /// Delete an application, security domain or load file.
    Delete {
        /// The AID.
        aid: String,
        /// Also delete the related objects (a load file with all its applications).
        #[arg(long)]
        all: bool,
    },
    /// Lock an application or security domain (SET STATUS P1 40, P2 80).
    Lock {
        /// The AID.
        aid: String,
    },
    /// Unlock an application or security domain (SET STATUS P1 40, P2 00).
    Unlock {
        /// The AID.
        aid: String,
    },
    /// Lock the card (card life cycle CARD_LOCKED, 7F).
    LockCard,
    /// Unlock the card (card life cycle back to SECURED, 0F).
    UnlockCard,
    /// Set a life cycle state: of the card (--card), an application, or a security domain
    /// and its applications (--with-apps).
    #[command(
        after_help = "Examples:\n  mec gp set-status --card INITIALIZED\n  mec gp set-status F06D6563535402 0F\n  mec gp set-status --with-apps A000000151535031 LOCKED"
    )]
    SetStatus {
        /// Card life cycle: OP_READY, INITIALIZED, SECURED, CARD_LOCKED, TERMINATED or hex.
        #[arg(long, value_name = "STATE", conflicts_with_all = ["aid", "state"])]
        card: Option<String>,
        /// Application or security domain AID.
        #[arg(required_unless_present = "card")]
        aid: Option<String>,
        /// State: LOCKED, UNLOCKED, SELECTABLE, PERSONALIZED or hex (application specific).
        #[arg(required_unless_present = "card")]
        state: Option<String>,
        /// P1 60: the security domain and its associated applications.
        #[arg(long)]
        with_apps: bool,
    },
    /// Add or replace a key set (ENC, MAC, DEK), DES or AES, with a key check value check.
    #[command(
        after_help = "Examples:\n  mec gp put-key --new-kvn 30 --new-key 000102030405060708090A0B0C0D0E0F      (add version 30)\n  mec gp --kvn 30 --key 000102..0F put-key --replace 30 --new-key 101112..1F  (replace version 30)\n  mec gp put-key --new-kvn 31 --from-master 404142434445464748494A4B4C4D4E4F --kdf kdf3"
    )]
    PutKey {
        /// Key version of the new key set (hex; default: the replaced version).
        #[arg(long, value_name = "HEX", value_parser = parse_byte)]
        new_kvn: Option<u8>,
        /// Replace this key version (hex) instead of adding a new one.
        #[arg(long, value_name = "KVN", value_parser = parse_byte)]
        replace: Option<u8>,
        /// Same new key for ENC, MAC and DEK (hex).
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        new_key: Option<HexKey>,
        /// New ENC key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        new_key_enc: Option<HexKey>,
        /// New MAC key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        new_key_mac: Option<HexKey>,
        /// New DEK key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        new_key_dek: Option<HexKey>,
        /// Key type (default: DES on an SCP02 session, AES otherwise).
        #[arg(long = "type", value_enum)]
        key_type: Option<KeyTypeArg>,
        /// Derive the new keys from this master key (hex) and the card's KDD with --kdf.
        #[arg(long, value_name = "HEX", value_parser = parse_key, conflicts_with_all = ["new_key", "new_key_enc", "new_key_mac", "new_key_dek"])]
        from_master: Option<HexKey>,
        /// Derivation for --from-master.
        #[arg(long, value_enum, requires = "from_master")]
        kdf: Option<Kdf>,
    },
    /// Delete a key set by version (and optionally one key by id).
    DeleteKey {
        /// Key version number (hex).
        #[arg(value_parser = parse_byte)]
        kvn: u8,
        /// Key identifier (hex) within the version.
        #[arg(long, value_parser = parse_byte)]
        id: Option<u8>,
    },
    /// Personalize an application through its security domain: INSTALL [for
    /// personalization] then STORE DATA.
    #[command(
        after_help = "Example:\n  mec gp store-data F06D6563535402 --dgi 0101024142 --dgi 0202030A0B0C"
    )]
    StoreData {
        /// The application.
        aid: String,
        /// Data grouping identifiers (DGI), each complete: tag (2), length, value (hex).
        #[arg(long, value_name = "HEX", num_args = 1.., required_unless_present = "tlv", conflicts_with = "tlv")]
        dgi: Vec<String>,
        /// BER-TLV objects, each complete (hex).
        #[arg(long, value_name = "HEX", num_args = 1..)]
        tlv: Vec<String>,
    },
    /// Create a supplementary security domain (from the security domain package).
    CreateSsd {
        /// AID of the new security domain.
        aid: String,
        /// Privileges (default: security-domain). Names or hex, as for install.
        #[arg(long, value_name = "LIST")]
        privs: Option<String>,
        /// Replace the SSD's initial keys (a copy of the installing domain's) with this key
        /// (hex, same for ENC/MAC/DEK), keeping its key version (01 when the initial set
        /// is FF).
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        keys: Option<HexKey>,
        /// Load file of the security domain package (default A0000001515350).
        #[arg(long, value_name = "AID", default_value = "A0000001515350")]
        package: String,
        /// Module of the security domain (default A000000151535041).
        #[arg(long, value_name = "AID", default_value = "A000000151535041")]
        module: String,
    },
    /// Send raw APDUs (hex), plain or inside the secure channel (-s).
    Apdu {
        /// Command APDUs.
        #[arg(required = true, value_name = "HEX")]
        apdus: Vec<String>,
        /// Open a secure channel first and wrap every APDU.
        #[arg(short = 's', long)]
        secure: bool,
    },
}

/// `put-key --type`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyTypeArg {
    /// Two-key triple DES (16 bytes).
    Des,
    /// AES-128/192/256.
    Aes,
}

/// Parse hex, ignoring spaces and colons.
pub(crate) fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    hex::decode(&clean).map_err(|e| format!("\"{s}\" is not hex: {e}"))
}

/// A key given on the command line: zeroized on drop, never shown by `Debug`.
#[derive(Clone)]
pub(crate) struct HexKey(pub(crate) SecretKey);

impl std::fmt::Debug for HexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HexKey(<redacted>)")
    }
}

fn parse_key(s: &str) -> Result<HexKey, String> {
    let mut bytes =
        zeroize::Zeroizing::new(parse_hex(s).map_err(|_| "a key must be hex".to_owned())?);
    if bytes.is_empty() {
        return Err("empty key".into());
    }
    let key = SecretKey::new(&bytes);
    zeroize::Zeroize::zeroize(&mut *bytes);
    Ok(HexKey(key))
}

fn parse_byte(s: &str) -> Result<u8, String> {
    match parse_hex(s)?.as_slice() {
        [b] => Ok(*b),
        _ => Err(format!("\"{s}\" must be one hex byte (two digits)")),
    }
}

fn parse_scp(s: &str) -> Result<ScpChoice, String> {
    match s.to_ascii_lowercase().as_str() {
        "02" | "2" | "scp02" => Ok(ScpChoice::Scp02),
        "03" | "3" | "scp03" => Ok(ScpChoice::Scp03),
        "11b" | "scp11b" => Ok(ScpChoice::Scp11b),
        _ => Err(format!("unknown protocol \"{s}\": 02, 03 or 11b")),
    }
}

impl GpArgs {
    fn key(&self, specific: Option<&HexKey>) -> Result<Option<SecretKey>, GpError> {
        Ok(specific.or(self.key.as_ref()).map(|k| k.0.clone()))
    }

    /// The authentication options.
    pub(crate) fn auth(&self) -> Result<AuthOptions, GpError> {
        let enc = self.key(self.key_enc.as_ref())?;
        let mac = self.key(self.key_mac.as_ref())?;
        let dek = self.key(self.key_dek.as_ref())?;
        let default_keys = enc.is_none() && mac.is_none() && dek.is_none();
        let or_default = |k: Option<SecretKey>| k.unwrap_or_else(|| SecretKey::new(&K40));
        if !default_keys && (enc.is_none() || mac.is_none() || dek.is_none()) {
            return Err(GpError::Usage(
                "give --key, or all three of --key-enc, --key-mac and --key-dek".into(),
            ));
        }
        let host_challenge = self
            .host_challenge
            .as_deref()
            .map(parse_hex)
            .transpose()
            .map_err(GpError::Usage)?;
        Ok(AuthOptions {
            enc: or_default(enc),
            mac: or_default(mac),
            dek: or_default(dek),
            default_keys,
            kvn: self.kvn,
            kdf: self.kdf.method(),
            scp: self.scp_choice()?,
            level: self.security.level(),
            host_challenge,
            scp11: self.scp11_trust()?,
        })
    }

    /// `--scp`; `--ca` / `--sd-key` imply SCP11b and make no sense with another protocol.
    fn scp_choice(&self) -> Result<Option<ScpChoice>, GpError> {
        let scp11_trust = !self.ca.is_empty() || self.sd_key.is_some();
        match self.scp {
            None if scp11_trust => Ok(Some(ScpChoice::Scp11b)),
            Some(ScpChoice::Scp02 | ScpChoice::Scp03) if scp11_trust => Err(GpError::Usage(
                "--ca and --sd-key authenticate an SCP11b card key: use them with --scp 11b".into(),
            )),
            other => Ok(other),
        }
    }

    /// `--ca` and `--sd-key`, read and parsed; the validity time is the system clock.
    fn scp11_trust(&self) -> Result<client::Scp11Trust, GpError> {
        let mut anchors = Vec::new();
        for path in &self.ca {
            anchors.extend(
                trust::read_anchors(path)
                    .map_err(|e| GpError::Usage(format!("--ca {}: {e}", path.display())))?,
            );
        }
        let pinned = self
            .sd_key
            .as_deref()
            .map(trust::parse_sd_key)
            .transpose()
            .map_err(|e| GpError::Usage(format!("--sd-key: {e}")))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| gp_scp::scp11::UnixTime(d.as_secs()));
        Ok(client::Scp11Trust {
            anchors,
            pinned,
            now,
        })
    }

    /// The security domain AID given with --sd.
    pub(crate) fn sd_aid(&self) -> Result<Option<gp_scp::cmd::Aid>, GpError> {
        self.sd.as_deref().map(verbs::parse_aid).transpose()
    }
}

impl Transport for Box<dyn Transport> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn reconnect(&mut self, timeout: std::time::Duration) -> Result<(), TransportError> {
        (**self).reconnect(timeout)
    }
}

fn exit_code(e: &GpError) -> u8 {
    match e {
        GpError::Status { .. } | GpError::KcvMismatch { .. } | GpError::Scp(_) => 1,
        GpError::Command(_) | GpError::Usage(_) | GpError::Output(_) => 2,
        GpError::Authentication { .. } | GpError::HostCryptogram(_) | GpError::Untrusted(_) => 3,
        GpError::Blocked { .. } => 4,
        GpError::Transport(_) => 5,
    }
}

fn seed() -> [u8; 32] {
    let mut s = [0u8; 32];
    // Without OS randomness the host challenge would be predictable: refuse to go on with
    // zeros silently by using the error path of the first authentication instead.
    if getrandom::fill(&mut s).is_err() {
        eprintln!("mec gp: warning: no operating-system randomness; use --host-challenge");
    }
    s
}

fn open_transport(args: &GpArgs) -> Result<Box<dyn Transport>, GpError> {
    if let Some(profile_path) = &args.virtual_profile {
        let profile = virtual_se::profile::Profile::from_file(profile_path)
            .map_err(|e| GpError::Usage(format!("profile {}: {e}", profile_path.display())))?;
        let store: Box<dyn virtual_se::store::Store> = match &args.virtual_state {
            Some(dir) => Box::new(virtual_se::store::DiskStore::open(dir).map_err(|e| {
                GpError::Usage(format!("virtual card state {}: {e}", dir.display()))
            })?),
            None => Box::new(virtual_se::store::MemoryStore::new()),
        };
        // A fixed card seed: the virtual card's random numbers repeat from run to run.
        let card = virtual_se::card::Card::open(
            store,
            &profile,
            virtual_se::applet::Packages::builtin(),
            [0x5E; 32],
        )
        .map_err(|e| GpError::Usage(format!("opening the virtual card: {e}")))?;
        return Ok(Box::new(VirtualTransport::new(card)));
    }
    Ok(Box::new(PcscTransport::connect(args.reader.as_deref())?))
}

/// Run `mec gp ...`.
pub(crate) fn run(args: GpArgs) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = if matches!(args.verb, Verb::Readers) {
        verbs::readers(&args, &mut out)
    } else {
        open_transport(&args).and_then(|transport| {
            let tracer = if args.trace {
                Tracer::to(Box::new(std::io::stderr()))
            } else {
                Tracer::off()
            };
            let mut tracer = tracer;
            tracer.comment(&transport.describe());
            let mut client = GpClient::new(transport, tracer, seed());
            verbs::execute(&mut client, &args, &mut out)
        })
    };
    let _ = out.flush();
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `mec gp list | head -3`: the reader went away; the card work is done.
        Err(GpError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("mec gp: {e}");
            Ok(ExitCode::from(exit_code(&e)))
        }
    }
}
