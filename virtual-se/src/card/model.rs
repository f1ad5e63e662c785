//! The persistent card model: card record, registry entries and security domain records,
//! and how they map onto [`Store`](crate::store::Store) keys.
//!
//! The card keeps a decoded mirror of the committed records in memory ([`CardState`]). A
//! command works on a copy, and at its end the records that changed are written into the
//! command's [`Transaction`] ([`CardState::write_changes`]), so that one command is one atomic
//! batch.
//!
//! Store key layout (all keys are bytes):
//! - `card` — the [`CardRecord`];
//! - `reg/` + AID — a [`RegistryEntry`];
//! - `sd/` + AID — a [`DomainRecord`] (keys, counters) of a security domain;
//! - `elf/` + AID — the opaque bytes of an executable load file;
//! - `app/` + AID length + AID + `/` + key — persistent data of an applet instance.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::store::{Store, StoreError, Transaction};

/// Key of the card record.
pub(crate) const CARD_KEY: &[u8] = b"card";
/// Prefix of registry entries.
pub(crate) const REG_PREFIX: &[u8] = b"reg/";
/// Prefix of security domain records.
pub(crate) const SD_PREFIX: &[u8] = b"sd/";
/// Prefix of executable load file contents.
pub(crate) const ELF_PREFIX: &[u8] = b"elf/";
/// Prefix of applet instance data.
pub(crate) const APP_PREFIX: &[u8] = b"app/";

/// The store key of a record: `prefix || aid`.
pub(crate) fn record_key(prefix: &[u8], aid: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + aid.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(aid);
    k
}

/// The store key prefix of an applet instance's data: `app/ || len || aid || /`.
pub(crate) fn app_prefix(aid: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(APP_PREFIX.len() + aid.len() + 2);
    k.extend_from_slice(APP_PREFIX);
    k.push(u8::try_from(aid.len()).unwrap_or(u8::MAX));
    k.extend_from_slice(aid);
    k.push(b'/');
    k
}

/// Card life cycle states (GPC 2.3 §5.1.1, Table 11-5), as
/// [`CardLifeCycle`](gp_scp::cmd::CardLifeCycle) codes them.
pub mod card_lifecycle {
    use gp_scp::cmd::CardLifeCycle;

    /// `01` OP_READY.
    pub const OP_READY: u8 = CardLifeCycle::OpReady.to_byte();
    /// `07` INITIALIZED.
    pub const INITIALIZED: u8 = CardLifeCycle::Initialized.to_byte();
    /// `0F` SECURED.
    pub const SECURED: u8 = CardLifeCycle::Secured.to_byte();
    /// `7F` CARD_LOCKED.
    pub const CARD_LOCKED: u8 = CardLifeCycle::CardLocked.to_byte();
    /// `FF` TERMINATED.
    pub const TERMINATED: u8 = CardLifeCycle::Terminated.to_byte();
}

/// Application and security domain life cycle states (GPC 2.3 §5.3, Tables 11-4 and 11-6),
/// as [`ApplicationLifeCycle`], [`SecurityDomainLifeCycle`] and [`LoadFileLifeCycle`] code
/// them.
///
/// [`ApplicationLifeCycle`]: gp_scp::cmd::ApplicationLifeCycle
/// [`SecurityDomainLifeCycle`]: gp_scp::cmd::SecurityDomainLifeCycle
/// [`LoadFileLifeCycle`]: gp_scp::cmd::LoadFileLifeCycle
pub mod app_lifecycle {
    use gp_scp::cmd::{ApplicationLifeCycle, LoadFileLifeCycle, SecurityDomainLifeCycle};

    /// `01` LOADED (executable load files).
    pub const LOADED: u8 = LoadFileLifeCycle::Loaded.to_byte();
    /// `03` INSTALLED.
    pub const INSTALLED: u8 = ApplicationLifeCycle::INSTALLED.to_byte();
    /// `07` SELECTABLE.
    pub const SELECTABLE: u8 = ApplicationLifeCycle::SELECTABLE.to_byte();
    /// `0F` PERSONALIZED (security domains).
    pub const PERSONALIZED: u8 = SecurityDomainLifeCycle::PERSONALIZED.to_byte();
    /// Bit `80`: LOCKED (applications and security domains).
    pub const LOCKED_BIT: u8 = 0x80;
}

/// The card-level persistent record.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub(crate) struct CardRecord {
    /// Card life cycle state (GPC 2.3 Table 11-5).
    pub(crate) lifecycle: u8,
    /// Card production life cycle data (42 bytes, GET DATA 9F7F).
    pub(crate) cplc: Vec<u8>,
    /// AID of the issuer security domain.
    pub(crate) isd: Vec<u8>,
    /// Order number given to the next registry entry (GET STATUS lists in this order).
    pub(crate) next_order: u64,
}

/// What a registry entry is.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub enum EntryKind {
    /// The issuer security domain.
    IssuerSecurityDomain,
    /// A supplementary security domain.
    SecurityDomain,
    /// An application instance.
    Application,
    /// An executable load file (with its modules).
    LoadFile,
}

impl EntryKind {
    /// Whether this entry is a security domain (ISD or SSD).
    #[must_use]
    pub const fn is_security_domain(self) -> bool {
        matches!(self, Self::IssuerSecurityDomain | Self::SecurityDomain)
    }
}

/// One entry of the GlobalPlatform registry (GPC 2.3 §5.4, §9.4).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct RegistryEntry {
    /// AID (5-16 bytes).
    pub aid: Vec<u8>,
    /// Entry kind.
    pub kind: EntryKind,
    /// Life cycle state (for the ISD: unused; the card life cycle is reported).
    pub lifecycle: u8,
    /// Privileges (3 bytes, GPC 2.3 Table 6-1).
    pub privileges: [u8; 3],
    /// AID of the associated security domain (the ISD's own AID for the ISD).
    pub associated_sd: Vec<u8>,
    /// Application instances: AID of the executable load file they came from.
    pub load_file: Option<Vec<u8>>,
    /// Application instances: AID of the executable module they came from.
    pub module: Option<Vec<u8>>,
    /// Executable load files: the AIDs of their executable modules.
    pub modules: Vec<Vec<u8>>,
    /// Executable load files: version number (GET STATUS tag CE), possibly empty.
    pub version: Vec<u8>,
    /// Insertion order (GET STATUS order).
    pub order: u64,
}

/// A static key held by a security domain (GPC 2.3 §11.1.8).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct KeyRecord {
    /// Key version number.
    pub kvn: u8,
    /// Key identifier.
    pub id: u8,
    /// Key type byte (80 DES, 88 AES, B0 EC public, B1 EC private; GPC 2.3 Table 11-16).
    pub key_type: u8,
    /// Key value (for EC keys: the encoded key).
    pub value: Vec<u8>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kvn", &format_args!("{:02X}", self.kvn))
            .field("id", &format_args!("{:02X}", self.id))
            .field("key_type", &format_args!("{:02X}", self.key_type))
            .field("len", &self.value.len())
            .finish_non_exhaustive()
    }
}

/// Secure channel protocol of a security domain.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub enum Scp {
    /// SCP02 (GPC 2.3 Annex E).
    Scp02,
    /// SCP03 (GPC 2.3 Amendment D).
    Scp03,
    /// SCP11b (GPC 2.3 Amendment F).
    Scp11b,
}

impl Scp {
    /// The protocol identifier byte (02, 03, 11).
    #[must_use]
    pub const fn id(self) -> u8 {
        match self {
            Self::Scp02 => 0x02,
            Self::Scp03 => 0x03,
            Self::Scp11b => 0x11,
        }
    }
}

/// The persistent record of a security domain: keys and secure channel counters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DomainRecord {
    /// Protocol used by INITIALIZE UPDATE / INTERNAL AUTHENTICATE.
    pub(crate) scp: Scp,
    /// Implementation option `i`.
    pub(crate) i: u8,
    /// Key diversification data (10 bytes).
    pub(crate) kdd: Vec<u8>,
    /// Sequence counter (SCP02: 2 bytes, SCP03: 3 bytes).
    pub(crate) sequence_counter: u32,
    /// TEST ONLY: the card challenge answered to every INITIALIZE UPDATE instead of a random
    /// or pseudo-random one (reproduces published traces; defeats replay protection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) card_challenge: Option<Vec<u8>>,
    /// Consecutive failed authentications.
    pub(crate) failures: u16,
    /// Keys (symmetric key sets, SCP11 keys).
    pub(crate) keys: Vec<KeyRecord>,
    /// SCP11b: certificate chain of the SD (DER certificates, leaf last).
    pub(crate) certificates: Vec<Vec<u8>>,
    /// Data objects answered by GET DATA (IIN 42, CIN 45, objects set by STORE DATA).
    pub(crate) data_objects: BTreeMap<u32, Vec<u8>>,
}

impl fmt::Debug for DomainRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainRecord")
            .field("scp", &self.scp)
            .field("i", &format_args!("{:02X}", self.i))
            .field("sequence_counter", &self.sequence_counter)
            .field("fixed_card_challenge", &self.card_challenge.is_some())
            .field("failures", &self.failures)
            .field("keys", &self.keys)
            .field("certificates", &self.certificates.len())
            .finish()
    }
}

impl DomainRecord {
    /// The key with this version and id.
    pub(crate) fn key(&self, kvn: u8, id: u8) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.kvn == kvn && k.id == id)
    }

    /// Key versions present, in ascending order, without duplicates.
    pub(crate) fn key_versions(&self) -> Vec<u8> {
        let mut v: Vec<u8> = self.keys.iter().map(|k| k.kvn).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Why persistent records could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A record does not decode.
    #[error("record {0} does not decode: {1}")]
    Decode(String, String),
    /// The card record is missing (the store was never personalized from a profile).
    #[error("no card record in the store")]
    Missing,
}

/// The decoded mirror of the committed card state.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct CardState {
    pub(crate) card: CardRecord,
    /// Registry by AID.
    pub(crate) entries: BTreeMap<Vec<u8>, RegistryEntry>,
    /// Security domain records by AID.
    pub(crate) domains: BTreeMap<Vec<u8>, DomainRecord>,
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialization of these plain structs cannot fail (no maps with non-string keys other
    // than u32, which serde_json writes as strings).
    serde_json::to_vec(v).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(key: &[u8], bytes: &[u8]) -> Result<T, ModelError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ModelError::Decode(String::from_utf8_lossy(key).into_owned(), e.to_string()))
}

impl CardState {
    /// Load the committed state from a store.
    pub(crate) fn load<S: Store + ?Sized>(store: &S) -> Result<Self, ModelError> {
        let card_bytes = store.read(CARD_KEY)?.ok_or(ModelError::Missing)?;
        let card: CardRecord = decode(CARD_KEY, &card_bytes)?;
        let mut entries = BTreeMap::new();
        for (k, v) in store.scan_prefix(REG_PREFIX)? {
            let e: RegistryEntry = decode(&k, &v)?;
            entries.insert(e.aid.clone(), e);
        }
        let mut domains = BTreeMap::new();
        for (k, v) in store.scan_prefix(SD_PREFIX)? {
            let d: DomainRecord = decode(&k, &v)?;
            let aid = k.get(SD_PREFIX.len()..).unwrap_or_default().to_vec();
            domains.insert(aid, d);
        }
        Ok(Self {
            card,
            entries,
            domains,
        })
    }

    /// Write every record that differs between `old` and `self` into the transaction.
    pub(crate) fn write_changes<S: Store>(
        &self,
        old: &Self,
        tx: &mut Transaction<'_, S>,
    ) -> Result<(), StoreError> {
        if self.card != old.card {
            tx.put(CARD_KEY, encode(&self.card));
        }
        for (aid, e) in &self.entries {
            if old.entries.get(aid) != Some(e) {
                tx.put(record_key(REG_PREFIX, aid), encode(e));
            }
        }
        for aid in old.entries.keys() {
            if !self.entries.contains_key(aid) {
                tx.delete(record_key(REG_PREFIX, aid));
            }
        }
        for (aid, d) in &self.domains {
            if old.domains.get(aid) != Some(d) {
                tx.put(record_key(SD_PREFIX, aid), encode(d));
            }
        }
        for aid in old.domains.keys() {
            if !self.domains.contains_key(aid) {
                tx.delete(record_key(SD_PREFIX, aid));
            }
        }
        Ok(())
    }

    /// Write the whole state into a transaction (first personalization of an empty store).
    pub(crate) fn write_all<S: Store>(&self, tx: &mut Transaction<'_, S>) {
        tx.put(CARD_KEY, encode(&self.card));
        for (aid, e) in &self.entries {
            tx.put(record_key(REG_PREFIX, aid), encode(e));
        }
        for (aid, d) in &self.domains {
            tx.put(record_key(SD_PREFIX, aid), encode(d));
        }
    }

    /// The ISD entry.
    pub(crate) fn isd(&self) -> Option<&RegistryEntry> {
        self.entries.get(&self.card.isd)
    }

    /// Entries sorted by registry order.
    pub(crate) fn ordered(&self) -> Vec<&RegistryEntry> {
        let mut v: Vec<&RegistryEntry> = self.entries.values().collect();
        v.sort_by_key(|e| e.order);
        v
    }

    /// Give a new entry the next order number.
    pub(crate) fn next_order(&mut self) -> u64 {
        let o = self.card.next_order;
        self.card.next_order = o.saturating_add(1);
        o
    }

    /// Registry invariants (checked by tests and the fuzz target).
    ///
    /// # Errors
    /// A description of the first violated invariant.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let isd = self.isd().ok_or("no ISD entry")?;
        if isd.kind != EntryKind::IssuerSecurityDomain {
            return Err("ISD entry has the wrong kind".into());
        }
        if !matches!(
            self.card.lifecycle,
            card_lifecycle::OP_READY
                | card_lifecycle::INITIALIZED
                | card_lifecycle::SECURED
                | card_lifecycle::CARD_LOCKED
                | card_lifecycle::TERMINATED
        ) {
            return Err(format!(
                "card life cycle {:02X} invalid",
                self.card.lifecycle
            ));
        }
        for (aid, e) in &self.entries {
            if aid != &e.aid {
                return Err("entry stored under another AID".into());
            }
            if !(5..=16).contains(&aid.len()) {
                return Err(format!("AID length {} out of range", aid.len()));
            }
            let sd = self
                .entries
                .get(&e.associated_sd)
                .ok_or("associated SD missing")?;
            if !sd.kind.is_security_domain() {
                return Err("associated SD is not a security domain".into());
            }
            if e.kind.is_security_domain() != self.domains.contains_key(aid) {
                return Err("security domain without a domain record (or the reverse)".into());
            }
            if matches!(e.kind, EntryKind::Application | EntryKind::SecurityDomain)
                && let Some(elf) = &e.load_file
            {
                let lf = self
                    .entries
                    .get(elf)
                    .ok_or("instance of a missing load file")?;
                if lf.kind != EntryKind::LoadFile {
                    return Err("instance's load file is not a load file".into());
                }
            }
        }
        for aid in self.domains.keys() {
            if !self.entries.contains_key(aid) {
                return Err("domain record without a registry entry".into());
            }
        }
        Ok(())
    }
}
