//! Card profiles: a TOML description of a card (ATR, CPLC, IIN/CIN, life cycle, response
//! formats, and every security domain's AID, privileges, keys and secure channel settings).
//!
//! Every field is documented in `docs/virtual-se-profile.md`. [`Profile::default_profile`] is a
//! typical developer card: ISD `A000000151000000` with privileges `9AFE80`, SCP03 `i=70`, key
//! version `30`, keys `404142...4F`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use gp_scp::diversify::{Diversification, diversify};
use gp_scp::keys::{KeySet, KeyType};

use crate::applet::Packages;
use crate::card::model::{
    CardRecord, CardState, DomainRecord, EntryKind, KeyRecord, RegistryEntry, Scp, app_lifecycle,
    card_lifecycle,
};
use crate::card::{CardOptions, DEFAULT_ATR, ExtendedLength, KeyInfoFormat};

/// The default profile's TOML text (a typical developer card).
pub const DEFAULT_PROFILE: &str = include_str!("../profiles/default.toml");

/// Why a profile cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The TOML does not parse or does not match the schema.
    #[error("TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// A field has an invalid value.
    #[error("field `{field}`: {reason}")]
    Field {
        /// The field (dotted path).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A file the profile names cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn field_err(field: &str, reason: impl Into<String>) -> ProfileError {
    ProfileError::Field {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn hex_field(field: &str, value: &str) -> Result<Vec<u8>, ProfileError> {
    let clean: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    hex::decode(&clean).map_err(|e| field_err(field, format!("not hex: {e}")))
}

fn hex_byte(field: &str, value: &str) -> Result<u8, ProfileError> {
    match hex_field(field, value)?.as_slice() {
        [b] => Ok(*b),
        _ => Err(field_err(field, "expected one byte in hex")),
    }
}

/// A card profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Free text shown by tools.
    #[serde(default)]
    pub description: String,
    /// Answer to reset (hex). Default: [`DEFAULT_ATR`].
    #[serde(default)]
    pub atr: Option<String>,
    /// Card production life cycle data (hex, 42 bytes), answered to GET DATA 9F7F.
    pub cplc: String,
    /// Issuer identification number (hex, GET DATA 42), optional.
    #[serde(default)]
    pub iin: Option<String>,
    /// Card image number (hex, GET DATA 45), optional.
    #[serde(default)]
    pub cin: Option<String>,
    /// Card life cycle: `OP_READY`, `INITIALIZED`, `SECURED`, `CARD_LOCKED`, `TERMINATED` or
    /// a hex byte. Default `SECURED`.
    #[serde(default = "default_lifecycle")]
    pub lifecycle: String,
    /// GET DATA E0 / BF21 format: `gp` (with the outer tag, default) or `bare` (yubikit).
    #[serde(default = "default_format")]
    pub key_info_format: String,
    /// Failed authentications after which INITIALIZE UPDATE answers 6983 (0 = unlimited).
    #[serde(default = "default_failure_limit")]
    pub failure_limit: u16,
    /// Install the built-in packages' load files in the registry (like ROM packages).
    #[serde(default = "default_true")]
    pub builtin_load_files: bool,
    /// Extended-length APDUs: absent = accepted but not announced; `false` = refused (6700);
    /// `true` = accepted and announced (give an ATR whose card capabilities say so).
    #[serde(default)]
    pub extended_length: Option<bool>,
    /// With `extended_length = true`: most bytes in a command APDU (answered in GET DATA
    /// 7F66; longer commands get 6700). 261 to 65544.
    #[serde(default)]
    pub max_command_length: Option<u32>,
    /// With `extended_length = true` and `max_command_length`: most bytes in a response APDU
    /// (announced in GET DATA 7F66). 258 to 65538; default `max_command_length`.
    #[serde(default)]
    pub max_response_length: Option<u32>,
    /// The issuer security domain.
    pub isd: DomainProfile,
    /// Supplementary security domains, associated with the ISD unless `associated_sd` says
    /// otherwise.
    #[serde(default)]
    pub ssd: Vec<DomainProfile>,
    /// Base directory for relative file paths (set by [`Profile::from_file`]; not in TOML).
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

fn default_lifecycle() -> String {
    "SECURED".into()
}
fn default_format() -> String {
    "gp".into()
}
fn default_failure_limit() -> u16 {
    10
}
fn default_true() -> bool {
    true
}

/// One security domain of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainProfile {
    /// AID (hex, 5-16 bytes).
    pub aid: String,
    /// Privileges (hex, 1 or 3 bytes; GPC 2.3 Table 6-1).
    pub privileges: String,
    /// Key diversification data (hex, 10 bytes).
    #[serde(default)]
    pub kdd: Option<String>,
    /// Key version number of the key set (hex).
    #[serde(default = "default_kvn")]
    pub key_version: String,
    /// Secure channel protocol: `02`, `03` or `11b`.
    pub scp: String,
    /// Implementation option `i` (hex). Default 55 for SCP02, 70 for SCP03, 00 for SCP11b.
    #[serde(default)]
    pub i: Option<String>,
    /// Initial sequence counter (hex). Default 0.
    #[serde(default)]
    pub sequence_counter: Option<String>,
    /// TEST ONLY: a fixed card challenge (hex; 6 bytes for SCP02, 8 for SCP03 S8, 16 for
    /// S16) answered to every INITIALIZE UPDATE instead of a random or pseudo-random one, to
    /// reproduce published session traces. It defeats the card's replay protection: never
    /// set it on a card that guards anything.
    #[serde(default)]
    pub card_challenge: Option<String>,
    /// Static ENC key (hex); with `diversification`, the master ENC key.
    #[serde(default)]
    pub enc: Option<String>,
    /// Static MAC key (hex).
    #[serde(default)]
    pub mac: Option<String>,
    /// Static DEK key (hex).
    #[serde(default)]
    pub dek: Option<String>,
    /// Key diversification applied to `enc`/`mac`/`dek` with the KDD: `none`, `emv`,
    /// `visa2`, `kdf3`.
    #[serde(default)]
    pub diversification: Option<String>,
    /// SCP11b: path to the SD's PKCS#8 private key (DER or PEM).
    #[serde(default)]
    pub scp11_key: Option<String>,
    /// SCP11b: paths to the certificate chain (DER or PEM), root first, SD certificate last.
    #[serde(default)]
    pub scp11_certificates: Vec<String>,
    /// SCP11b: key version number of the SD key (hex). Default 01.
    #[serde(default)]
    pub scp11_key_version: Option<String>,
    /// SSDs: life cycle (hex). Default 0F PERSONALIZED.
    #[serde(default)]
    pub lifecycle: Option<String>,
    /// SSDs: AID of the associated security domain (hex). Default: the ISD.
    #[serde(default)]
    pub associated_sd: Option<String>,
}

fn default_kvn() -> String {
    "30".into()
}

/// Load file AID of the security domain package (GlobalPlatform RID, as JCOP cards list it).
pub const SSD_LOAD_FILE: &[u8] = &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50];
/// Module AID of the security domain package.
pub const SSD_MODULE: &[u8] = &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x53, 0x50, 0x41];

/// SCP11b key identifier of the SD key pair (Amd F §4.1.3: 13 = SCP11b).
pub const SCP11B_KEY_ID: u8 = 0x13;

impl Profile {
    /// The default profile (a typical developer card).
    ///
    /// # Errors
    /// Never in practice (the default profile is tested); [`ProfileError`] if it were broken.
    pub fn default_profile() -> Result<Self, ProfileError> {
        Self::from_toml(DEFAULT_PROFILE)
    }

    /// Parse a profile from TOML text (relative paths resolve against the current directory).
    ///
    /// # Errors
    /// [`ProfileError::Toml`].
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        Ok(toml::from_str(text)?)
    }

    /// Read a profile file (relative paths resolve against the file's directory).
    ///
    /// # Errors
    /// [`ProfileError::Io`], [`ProfileError::Toml`].
    pub fn from_file(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut p = Self::from_toml(&text)?;
        p.base_dir = path.parent().map(Path::to_path_buf);
        Ok(p)
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let path = PathBuf::from(p);
        match (&self.base_dir, path.is_absolute()) {
            (Some(base), false) => base.join(path),
            _ => path,
        }
    }

    /// The card options (ATR, formats, failure limit).
    ///
    /// # Errors
    /// [`ProfileError::Field`] for an invalid ATR or format.
    pub fn options(&self) -> Result<CardOptions, ProfileError> {
        let atr = match &self.atr {
            Some(a) => {
                let v = hex_field("atr", a)?;
                if v.len() < 2 || v.len() > 33 {
                    return Err(field_err("atr", "an ATR is 2 to 33 bytes"));
                }
                v
            }
            None => DEFAULT_ATR.to_vec(),
        };
        let key_info_format = match self.key_info_format.as_str() {
            "gp" | "globalplatform" => KeyInfoFormat::GlobalPlatform,
            "bare" | "yubikit" => KeyInfoFormat::Bare,
            other => {
                return Err(field_err(
                    "key_info_format",
                    format!("`{other}`: expected `gp` or `bare`"),
                ));
            }
        };
        Ok(CardOptions {
            atr,
            key_info_format,
            failure_limit: self.failure_limit,
            extended_length: self.extended_length()?,
        })
    }

    /// `extended_length`, `max_command_length`, `max_response_length`.
    fn extended_length(&self) -> Result<ExtendedLength, ProfileError> {
        // ISO/IEC 7816-4 §5.1: an extended command APDU is at most 4 + 3 + 65535 + 2 bytes, a
        // response 65536 + 2; a short one up to 261 / 258.
        const COMMAND: std::ops::RangeInclusive<u32> = 261..=65_544;
        const RESPONSE: std::ops::RangeInclusive<u32> = 258..=65_538;
        match (
            self.extended_length,
            self.max_command_length,
            self.max_response_length,
        ) {
            (None, None, None) => Ok(ExtendedLength::Unannounced),
            (Some(false), None, None) => Ok(ExtendedLength::Refused),
            (Some(true), max_command, max_response) => {
                if let Some(c) = max_command
                    && !COMMAND.contains(&c)
                {
                    return Err(field_err("max_command_length", "261 to 65544 bytes"));
                }
                if let Some(r) = max_response {
                    if max_command.is_none() {
                        return Err(field_err(
                            "max_response_length",
                            "give max_command_length too (both go in GET DATA 7F66)",
                        ));
                    }
                    if !RESPONSE.contains(&r) {
                        return Err(field_err("max_response_length", "258 to 65538 bytes"));
                    }
                }
                Ok(ExtendedLength::Announced {
                    max_command,
                    max_response,
                })
            }
            (_, Some(_), _) => Err(field_err(
                "max_command_length",
                "only with extended_length = true",
            )),
            (_, _, Some(_)) => Err(field_err(
                "max_response_length",
                "only with extended_length = true",
            )),
        }
    }

    fn card_lifecycle(&self) -> Result<u8, ProfileError> {
        Ok(match self.lifecycle.as_str() {
            "OP_READY" => card_lifecycle::OP_READY,
            "INITIALIZED" => card_lifecycle::INITIALIZED,
            "SECURED" => card_lifecycle::SECURED,
            "CARD_LOCKED" => card_lifecycle::CARD_LOCKED,
            "TERMINATED" => card_lifecycle::TERMINATED,
            other => {
                let b = hex_byte("lifecycle", other)?;
                if !matches!(b, 0x01 | 0x07 | 0x0F | 0x7F | 0xFF) {
                    return Err(field_err("lifecycle", "not a card life cycle state"));
                }
                b
            }
        })
    }

    /// The initial persistent card state this profile describes.
    ///
    /// # Errors
    /// [`ProfileError`] for any invalid field or unreadable file.
    pub(crate) fn card_state(&self, packages: &Packages) -> Result<CardState, ProfileError> {
        let cplc = hex_field("cplc", &self.cplc)?;
        if cplc.len() != 42 {
            return Err(field_err("cplc", "CPLC data is 42 bytes (GPC 2.3 §H.6)"));
        }
        let isd_aid = aid_field("isd.aid", &self.isd.aid)?;
        let mut state = CardState {
            card: CardRecord {
                lifecycle: self.card_lifecycle()?,
                cplc,
                isd: isd_aid.clone(),
                next_order: 0,
            },
            entries: BTreeMap::new(),
            domains: BTreeMap::new(),
        };
        let mut isd_domain = self.domain_record("isd", &self.isd)?;
        if let Some(iin) = &self.iin {
            isd_domain.data_objects.insert(0x42, hex_field("iin", iin)?);
        }
        if let Some(cin) = &self.cin {
            isd_domain.data_objects.insert(0x45, hex_field("cin", cin)?);
        }
        let order = state.next_order();
        state.entries.insert(
            isd_aid.clone(),
            RegistryEntry {
                aid: isd_aid.clone(),
                kind: EntryKind::IssuerSecurityDomain,
                lifecycle: app_lifecycle::PERSONALIZED,
                privileges: privileges_field("isd.privileges", &self.isd.privileges)?,
                associated_sd: isd_aid.clone(),
                load_file: None,
                module: None,
                modules: Vec::new(),
                version: Vec::new(),
                order,
            },
        );
        state.domains.insert(isd_aid.clone(), isd_domain);
        for (n, ssd) in self.ssd.iter().enumerate() {
            let name = format!("ssd[{n}]");
            let aid = aid_field(&format!("{name}.aid"), &ssd.aid)?;
            if state.entries.contains_key(&aid) {
                return Err(field_err(&format!("{name}.aid"), "duplicate AID"));
            }
            let associated = match &ssd.associated_sd {
                Some(a) => aid_field(&format!("{name}.associated_sd"), a)?,
                None => isd_aid.clone(),
            };
            if !state.domains.contains_key(&associated) {
                return Err(field_err(
                    &format!("{name}.associated_sd"),
                    "not a security domain listed before",
                ));
            }
            let privileges = privileges_field(&format!("{name}.privileges"), &ssd.privileges)?;
            if privileges[0] & 0x80 == 0 {
                return Err(field_err(
                    &format!("{name}.privileges"),
                    "an SSD needs the security domain privilege (80)",
                ));
            }
            let lifecycle = match &ssd.lifecycle {
                Some(l) => hex_byte(&format!("{name}.lifecycle"), l)?,
                None => app_lifecycle::PERSONALIZED,
            };
            let record = self.domain_record(&name, ssd)?;
            let order = state.next_order();
            state.entries.insert(
                aid.clone(),
                RegistryEntry {
                    aid: aid.clone(),
                    kind: EntryKind::SecurityDomain,
                    lifecycle,
                    privileges,
                    associated_sd: associated,
                    load_file: None,
                    module: None,
                    modules: Vec::new(),
                    version: Vec::new(),
                    order,
                },
            );
            state.domains.insert(aid, record);
        }
        if self.builtin_load_files {
            // The security domain package every GlobalPlatform card carries (ELF
            // A0000001515350, module A000000151535041), from which INSTALL creates SSDs.
            let order = state.next_order();
            state.entries.insert(
                SSD_LOAD_FILE.to_vec(),
                RegistryEntry {
                    aid: SSD_LOAD_FILE.to_vec(),
                    kind: EntryKind::LoadFile,
                    lifecycle: app_lifecycle::LOADED,
                    privileges: [0; 3],
                    associated_sd: isd_aid.clone(),
                    load_file: None,
                    module: None,
                    modules: vec![SSD_MODULE.to_vec()],
                    version: vec![0x01, 0x00],
                    order,
                },
            );
            for package in packages.iter() {
                if state.entries.contains_key(&package.load_file) {
                    continue;
                }
                let order = state.next_order();
                state.entries.insert(
                    package.load_file.clone(),
                    RegistryEntry {
                        aid: package.load_file.clone(),
                        kind: EntryKind::LoadFile,
                        lifecycle: app_lifecycle::LOADED,
                        privileges: [0; 3],
                        associated_sd: isd_aid.clone(),
                        load_file: None,
                        module: None,
                        modules: package.modules.iter().map(|(m, _)| m.clone()).collect(),
                        version: vec![0x01, 0x00],
                        order,
                    },
                );
            }
        }
        state
            .check_invariants()
            .map_err(|e| field_err("profile", e))?;
        Ok(state)
    }

    fn domain_record(&self, name: &str, d: &DomainProfile) -> Result<DomainRecord, ProfileError> {
        let f = |s: &str| format!("{name}.{s}");
        let scp = match d.scp.to_ascii_lowercase().as_str() {
            "02" => Scp::Scp02,
            "03" => Scp::Scp03,
            "11b" | "11" => Scp::Scp11b,
            other => {
                return Err(field_err(
                    &f("scp"),
                    format!("`{other}`: expected 02, 03 or 11b"),
                ));
            }
        };
        let i = match &d.i {
            Some(i) => hex_byte(&f("i"), i)?,
            None => match scp {
                Scp::Scp02 => 0x55,
                Scp::Scp03 => 0x70,
                Scp::Scp11b => 0x00,
            },
        };
        match scp {
            Scp::Scp02 => {
                gp_scp::scp02::Scp02Option::new(i)
                    .map_err(|e| field_err(&f("i"), e.to_string()))?;
            }
            Scp::Scp03 => {
                gp_scp::scp03::Scp03Option::new(i)
                    .map_err(|e| field_err(&f("i"), e.to_string()))?;
            }
            Scp::Scp11b => {}
        }
        let kdd = match &d.kdd {
            Some(k) => {
                let v = hex_field(&f("kdd"), k)?;
                if v.len() != 10 {
                    return Err(field_err(&f("kdd"), "KDD is 10 bytes"));
                }
                v
            }
            None => vec![0; 10],
        };
        let kvn = hex_byte(&f("key_version"), &d.key_version)?;
        let sequence_counter = match &d.sequence_counter {
            Some(s) => {
                let v = hex_field(&f("sequence_counter"), s)?;
                if v.len() > 3 {
                    return Err(field_err(&f("sequence_counter"), "at most 3 bytes"));
                }
                v.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
            }
            None => 0,
        };
        let card_challenge = match &d.card_challenge {
            Some(c) => {
                let v = hex_field(&f("card_challenge"), c)?;
                let want = match scp {
                    Scp::Scp02 => 6,
                    Scp::Scp03 => gp_scp::scp03::Scp03Option::new(i)
                        .map_err(|e| field_err(&f("i"), e.to_string()))?
                        .block_len(),
                    Scp::Scp11b => {
                        return Err(field_err(
                            &f("card_challenge"),
                            "SCP11b has no card challenge",
                        ));
                    }
                };
                if v.len() != want {
                    return Err(field_err(
                        &f("card_challenge"),
                        format!("{} bytes, expected {want} for this SCP and i", v.len()),
                    ));
                }
                Some(v)
            }
            None => None,
        };
        let mut keys = Vec::new();
        if let (Some(enc), Some(mac), Some(dek)) = (&d.enc, &d.mac, &d.dek) {
            let key_type = if scp == Scp::Scp02 {
                KeyType::Des
            } else {
                KeyType::Aes
            };
            let set = KeySet::new(
                kvn,
                key_type,
                &hex_field(&f("enc"), enc)?,
                &hex_field(&f("mac"), mac)?,
                &hex_field(&f("dek"), dek)?,
            )
            .map_err(|e| field_err(&f("enc"), e.to_string()))?;
            let method = match d.diversification.as_deref().unwrap_or("none") {
                "none" => Diversification::None,
                "emv" | "emv-cps11" => Diversification::EmvCps11,
                "visa2" => Diversification::Visa2,
                "kdf3" => Diversification::Kdf3,
                other => return Err(field_err(&f("diversification"), format!("`{other}`"))),
            };
            let mut kdd_arr = [0u8; 10];
            kdd_arr.copy_from_slice(&kdd);
            let set = if method == Diversification::None {
                set
            } else {
                diversify(&set, method, &kdd_arr)
                    .map_err(|e| field_err(&f("diversification"), e.to_string()))?
            };
            for (id, key) in [(1u8, set.enc()), (2, set.mac()), (3, set.dek())] {
                keys.push(KeyRecord {
                    kvn,
                    id,
                    key_type: key_type.to_byte(),
                    value: key.as_bytes().to_vec(),
                });
            }
        } else if d.enc.is_some() || d.mac.is_some() || d.dek.is_some() {
            return Err(field_err(&f("enc"), "enc, mac and dek go together"));
        }
        let mut certificates = Vec::new();
        if let Some(path) = &d.scp11_key {
            let skv = match &d.scp11_key_version {
                Some(v) => hex_byte(&f("scp11_key_version"), v)?,
                None => 0x01,
            };
            let scalar = read_pkcs8_p256(&self.resolve(path), &f("scp11_key"))?;
            keys.push(KeyRecord {
                kvn: skv,
                id: SCP11B_KEY_ID,
                key_type: KeyType::EcPrivate.to_byte(),
                value: scalar,
            });
            for c in &d.scp11_certificates {
                certificates.push(read_der_or_pem(&self.resolve(c), &f("scp11_certificates"))?);
            }
        }
        if scp == Scp::Scp11b && !keys.iter().any(|k| k.id == SCP11B_KEY_ID) {
            return Err(field_err(
                &f("scp11_key"),
                "an SCP11b domain needs its PKCS#8 key",
            ));
        }
        Ok(DomainRecord {
            scp,
            i,
            kdd,
            sequence_counter,
            card_challenge,
            failures: 0,
            keys,
            certificates,
            data_objects: BTreeMap::new(),
        })
    }
}

fn aid_field(field: &str, s: &str) -> Result<Vec<u8>, ProfileError> {
    let v = hex_field(field, s)?;
    if !(5..=16).contains(&v.len()) {
        return Err(field_err(field, "an AID is 5 to 16 bytes"));
    }
    Ok(v)
}

fn privileges_field(field: &str, s: &str) -> Result<[u8; 3], ProfileError> {
    match hex_field(field, s)?.as_slice() {
        [a] => Ok([*a, 0, 0]),
        [a, b, c] => Ok([*a, *b, *c]),
        _ => Err(field_err(field, "privileges are 1 or 3 bytes")),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ProfileError> {
    std::fs::read(path).map_err(|source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a DER file, or the first PEM block of a PEM file.
fn read_der_or_pem(path: &Path, field: &str) -> Result<Vec<u8>, ProfileError> {
    let bytes = read_file(path)?;
    if bytes.starts_with(b"-----BEGIN") {
        let text = String::from_utf8_lossy(&bytes);
        let body: String = text
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        <base64ct::Base64 as base64ct::Encoding>::decode_vec(&body)
            .map_err(|e| field_err(field, format!("PEM: {e}")))
    } else {
        Ok(bytes)
    }
}

/// Read a PKCS#8 P-256 private key; returns the 32-byte scalar.
fn read_pkcs8_p256(path: &Path, field: &str) -> Result<Vec<u8>, ProfileError> {
    use p256::pkcs8::DecodePrivateKey;
    let der = read_der_or_pem(path, field)?;
    let key = p256::SecretKey::from_pkcs8_der(&der)
        .map_err(|e| field_err(field, format!("PKCS#8: {e}")))?;
    Ok(key.to_bytes().to_vec())
}
