//! Partner registry: who the roaming partners are, where they are reached, which number ranges
//! they serve, and the keys that verify (and encrypt to) them.
//!
//! Loaded from a TOML or JSON configuration and changed at run time only by serial-numbered
//! incremental updates applied strictly in order, the way EMV 3-D Secure directory servers
//! distribute card-range changes (EMVCo 3DS Core Spec 2.3.1 §5.8, PReq/PRes `serialNum`).

mod trie;

use std::collections::HashMap;

use p256::PublicKey;
use p256::ecdsa::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::e164::{CountryCode, E164, MAX_DIGITS};
use crate::jose::keys::parse_public_key;
use trie::DigitTrie;

/// Registry configuration errors and update refusals. A refused update changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The update's serial is not the next one: one or more updates are missing.
    #[error("update serial {got} leaves a gap after {current}")]
    Gap {
        /// Serial of the registry now.
        current: u64,
        /// Serial of the refused update.
        got: u64,
    },
    /// The update's serial was already applied (a duplicate or an old update).
    #[error("update serial {got} already applied (registry at {current})")]
    Duplicate {
        /// Serial of the registry now.
        current: u64,
        /// Serial of the refused update.
        got: u64,
    },
    /// Adding a partner whose name exists.
    #[error("partner {0} already exists")]
    AlreadyExists(String),
    /// Modifying or deleting a partner that does not exist.
    #[error("unknown partner {0}")]
    UnknownPartner(String),
    /// A prefix that another partner already serves.
    #[error("prefix +{prefix} already served by {owner}")]
    PrefixConflict {
        /// The contested prefix (digits).
        prefix: String,
        /// The partner holding it.
        owner: String,
    },
    /// A local prefix that is not digits, or that makes the prefix longer than 15 digits.
    #[error("partner {partner}: invalid prefix {prefix:?}")]
    BadPrefix {
        /// The partner.
        partner: String,
        /// The offending text.
        prefix: String,
    },
    /// A partner record is invalid (empty name, bad key, bad URL).
    #[error("partner {partner}: {what}")]
    BadPartner {
        /// The partner.
        partner: String,
        /// What is wrong.
        what: &'static str,
    },
    /// The registry is full (more than 2^32 nodes or partners).
    #[error("registry full")]
    Full,
    /// The configuration or update text could not be parsed.
    #[error("parse: {0}")]
    Parse(String),
    /// Operation `index` of the update failed; nothing was applied.
    #[error("operation {index}: {source}")]
    Operation {
        /// Zero-based index of the failing operation.
        index: usize,
        /// Why it failed.
        source: Box<RegistryError>,
    },
}

/// A partner as written in configuration files and updates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// Unique partner name; also the JWS `kid` of its messages.
    pub name: String,
    /// Base URL of its server-to-server endpoint.
    pub url: String,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// E.164 country code of the subscribers it serves.
    pub country_code: CountryCode,
    /// National number prefixes it serves (digits after the country code; `""` = all).
    #[serde(default)]
    pub local_prefixes: Vec<String>,
    /// Order among partners of one country code (lower first, then by name).
    #[serde(default = "default_priority")]
    pub priority: u32,
    /// ES256 verifying key: SubjectPublicKeyInfo PEM (or base64 DER).
    pub verifying_key: String,
    /// Optional ECDH-ES encryption key (SPKI PEM or base64 DER); payment data sent to this
    /// partner is then a JWE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<String>,
    /// Base URL where subscribers' user agents reach this partner (for redirects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_url: Option<String>,
}

const fn default_priority() -> u32 {
    100
}

/// A partner record with parsed keys and prefixes.
#[derive(Clone, Debug)]
pub struct Partner {
    config: PartnerConfig,
    prefixes: Vec<Vec<u8>>,
    verifying_key: VerifyingKey,
    encryption_key: Option<PublicKey>,
}

impl Partner {
    /// Parses and checks a partner record.
    ///
    /// # Errors
    /// [`RegistryError::BadPartner`] or [`RegistryError::BadPrefix`].
    pub fn from_config(config: PartnerConfig) -> Result<Self, RegistryError> {
        let bad = |what| RegistryError::BadPartner {
            partner: config.name.clone(),
            what,
        };
        if config.name.is_empty()
            || config.name.len() > 128
            || config.name.chars().any(char::is_control)
        {
            return Err(bad("name must be 1..=128 printable characters"));
        }
        if !(config.url.starts_with("https://") || config.url.starts_with("http://")) {
            return Err(bad("url must be http(s)"));
        }
        let verifying_key = VerifyingKey::from(
            parse_public_key(&config.verifying_key).map_err(|_| bad("verifying key"))?,
        );
        let encryption_key = match &config.encryption_key {
            Some(k) => Some(parse_public_key(k).map_err(|_| bad("encryption key"))?),
            None => None,
        };
        let mut prefixes = Vec::with_capacity(config.local_prefixes.len());
        for lp in &config.local_prefixes {
            let mut full: Vec<u8> = config.country_code.digits().to_vec();
            if !lp.bytes().all(|b| b.is_ascii_digit()) || full.len() + lp.len() > MAX_DIGITS {
                return Err(RegistryError::BadPrefix {
                    partner: config.name.clone(),
                    prefix: lp.clone(),
                });
            }
            full.extend(lp.bytes().map(|b| b - b'0'));
            if !prefixes.contains(&full) {
                prefixes.push(full);
            }
        }
        Ok(Self {
            config,
            prefixes,
            verifying_key,
            encryption_key,
        })
    }

    /// The partner's name (its JWS `kid`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Server-to-server base URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// User-agent base URL (falls back to the server URL).
    #[must_use]
    pub fn user_url(&self) -> &str {
        self.config.user_url.as_deref().unwrap_or(&self.config.url)
    }

    /// Country code served.
    #[must_use]
    pub fn country_code(&self) -> CountryCode {
        self.config.country_code
    }

    /// The record as configured.
    #[must_use]
    pub fn config(&self) -> &PartnerConfig {
        &self.config
    }

    /// Full prefixes (country code + local prefix), as digit values.
    #[must_use]
    pub fn prefixes(&self) -> &[Vec<u8>] {
        &self.prefixes
    }

    /// Key verifying this partner's JWS signatures.
    #[must_use]
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying_key
    }

    /// Key to encrypt payment data to, if the partner published one.
    #[must_use]
    pub fn encryption_key(&self) -> Option<&PublicKey> {
        self.encryption_key.as_ref()
    }
}

/// A registry configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Serial number of the state this file describes (0 for a fresh registry).
    #[serde(default)]
    pub serial: u64,
    /// The partners.
    #[serde(default, rename = "partner")]
    pub partners: Vec<PartnerConfig>,
}

/// One change in an update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum UpdateOperation {
    /// Add a new partner.
    Add {
        /// The partner.
        partner: PartnerConfig,
    },
    /// Replace an existing partner's record (matched by name).
    Modify {
        /// The new record.
        partner: PartnerConfig,
    },
    /// Remove a partner.
    Delete {
        /// Its name.
        name: String,
    },
}

/// A serial-numbered incremental update: applied only when `serial` is the registry's serial
/// plus one, all operations or none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryUpdate {
    /// Serial of the state after this update.
    pub serial: u64,
    /// Operations, applied in order.
    #[serde(rename = "operation", alias = "operations")]
    pub operations: Vec<UpdateOperation>,
}

/// Parses an update from JSON.
///
/// # Errors
/// [`RegistryError::Parse`] on malformed input.
pub fn parse_update_json(text: &[u8]) -> Result<RegistryUpdate, RegistryError> {
    serde_json::from_slice(text).map_err(|e| RegistryError::Parse(e.to_string()))
}

/// Parses an update from TOML.
///
/// # Errors
/// [`RegistryError::Parse`] on malformed input.
pub fn parse_update_toml(text: &str) -> Result<RegistryUpdate, RegistryError> {
    toml::from_str(text).map_err(|e| RegistryError::Parse(e.to_string()))
}

/// Number of country-code slots (all 1-, 2- and 3-digit strings).
const CC_SLOTS: usize = 1110;

/// The partner registry with its prefix index.
#[derive(Clone, Debug)]
pub struct Registry {
    serial: u64,
    slots: Vec<Option<Partner>>,
    free_slots: Vec<u32>,
    by_name: HashMap<String, u32>,
    trie: DigitTrie,
    /// Partners per country code, in (priority, name) order.
    by_cc: Vec<Vec<u32>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

enum Undo {
    Remove(String),
    Restore(Box<Partner>),
}

impl Registry {
    /// An empty registry at serial 0.
    #[must_use]
    pub fn new() -> Self {
        Self {
            serial: 0,
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_name: HashMap::new(),
            trie: DigitTrie::new(),
            by_cc: vec![Vec::new(); CC_SLOTS],
        }
    }

    /// Builds a registry from a configuration.
    ///
    /// # Errors
    /// The first [`RegistryError`] found (duplicate names, conflicting prefixes, bad keys).
    pub fn from_config(config: RegistryConfig) -> Result<Self, RegistryError> {
        let mut r = Self::new();
        for p in config.partners {
            r.add(Partner::from_config(p)?)?;
        }
        r.serial = config.serial;
        r.trie.compact();
        Ok(r)
    }

    /// Parses a TOML configuration (`serial = N` and `[[partner]]` tables).
    ///
    /// # Errors
    /// [`RegistryError::Parse`] or any error of [`Registry::from_config`].
    pub fn from_toml(text: &str) -> Result<Self, RegistryError> {
        Self::from_config(toml::from_str(text).map_err(|e| RegistryError::Parse(e.to_string()))?)
    }

    /// Parses a JSON configuration (`{"serial": N, "partner": [...]}`).
    ///
    /// # Errors
    /// [`RegistryError::Parse`] or any error of [`Registry::from_config`].
    pub fn from_json(text: &[u8]) -> Result<Self, RegistryError> {
        Self::from_config(
            serde_json::from_slice(text).map_err(|e| RegistryError::Parse(e.to_string()))?,
        )
    }

    /// The configuration describing the current state (for persisting it).
    #[must_use]
    pub fn to_config(&self) -> RegistryConfig {
        let mut partners: Vec<PartnerConfig> = self
            .slots
            .iter()
            .flatten()
            .map(|p| p.config.clone())
            .collect();
        partners.sort_by(|a, b| a.name.cmp(&b.name));
        RegistryConfig {
            serial: self.serial,
            partners,
        }
    }

    /// Serial number of the last update applied.
    #[must_use]
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Number of partners.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when there is no partner.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Number of prefixes indexed.
    #[must_use]
    pub fn prefix_count(&self) -> usize {
        self.trie.len()
    }

    /// Bytes held by the prefix index (trie arena and free lists). Partner records, which hold
    /// the configured prefix strings and keys, are not included.
    #[must_use]
    pub fn index_memory_bytes(&self) -> usize {
        self.trie.memory_bytes()
    }

    /// The partner called `name`.
    #[must_use]
    pub fn partner(&self, name: &str) -> Option<&Partner> {
        let slot = *self.by_name.get(name)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    /// All partners, in name order.
    pub fn partners(&self) -> impl Iterator<Item = &Partner> {
        let mut v: Vec<&Partner> = self.slots.iter().flatten().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v.into_iter()
    }

    fn slot_partner(&self, slot: u32) -> Option<&Partner> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// The partner serving the longest prefix of `number`, if any (the hot path).
    #[inline]
    #[must_use]
    pub fn longest_match(&self, number: &E164) -> Option<&Partner> {
        let (slot, _) = self.trie.longest_match(number.digits())?;
        self.slot_partner(slot)
    }

    /// The country code of `number` among those the registry knows (longest of the 1-3 digit
    /// candidates that some partner serves).
    fn country_slot(&self, number: &E164) -> Option<usize> {
        let d = number.digits();
        (1..=3.min(d.len())).rev().find_map(|l| {
            let cc = CountryCode::from_digits(d.get(..l)?).ok()?;
            let slot = cc.slot();
            self.by_cc.get(slot).filter(|v| !v.is_empty()).map(|_| slot)
        })
    }

    /// Candidate home partners for `number`, in the order to ask them: every partner whose
    /// prefix matches, longest prefix first, then the other partners of the number's country
    /// code in (priority, name) order. Never every partner: an empty list means no home.
    #[must_use]
    pub fn candidates(&self, number: &E164) -> Vec<&Partner> {
        let mut out: Vec<u32> = Vec::new();
        for (slot, _) in self.trie.matches(number.digits()) {
            if !out.contains(&slot) {
                out.push(slot);
            }
        }
        if let Some(cc) = self.country_slot(number)
            && let Some(list) = self.by_cc.get(cc)
        {
            for &slot in list {
                if !out.contains(&slot) {
                    out.push(slot);
                }
            }
        }
        out.into_iter()
            .filter_map(|s| self.slot_partner(s))
            .collect()
    }

    /// Applies a serial-numbered update: all its operations in order, or none of them.
    ///
    /// # Errors
    /// [`RegistryError::Duplicate`] when `update.serial <= serial`, [`RegistryError::Gap`] when
    /// it is beyond `serial + 1`, and [`RegistryError::Operation`] naming the failing operation.
    pub fn apply_update(&mut self, update: &RegistryUpdate) -> Result<(), RegistryError> {
        if update.serial <= self.serial {
            return Err(RegistryError::Duplicate {
                current: self.serial,
                got: update.serial,
            });
        }
        if update.serial != self.serial.saturating_add(1) {
            return Err(RegistryError::Gap {
                current: self.serial,
                got: update.serial,
            });
        }
        let mut undo: Vec<Undo> = Vec::with_capacity(update.operations.len());
        for (index, op) in update.operations.iter().enumerate() {
            let r = self.apply_one(op);
            match r {
                Ok(u) => undo.push(u),
                Err(e) => {
                    while let Some(u) = undo.pop() {
                        self.revert(u);
                    }
                    self.trie.rebuild_jump();
                    return Err(RegistryError::Operation {
                        index,
                        source: Box::new(e),
                    });
                }
            }
        }
        self.serial = update.serial;
        if self.trie.fragmentation() > 0.25 {
            self.trie.compact();
        } else {
            self.trie.rebuild_jump();
        }
        Ok(())
    }

    fn apply_one(&mut self, op: &UpdateOperation) -> Result<Undo, RegistryError> {
        match op {
            UpdateOperation::Add { partner } => {
                let p = Partner::from_config(partner.clone())?;
                let name = p.name().to_owned();
                self.add(p)?;
                Ok(Undo::Remove(name))
            }
            UpdateOperation::Modify { partner } => {
                let p = Partner::from_config(partner.clone())?;
                let old = self
                    .remove(&partner.name)
                    .ok_or_else(|| RegistryError::UnknownPartner(partner.name.clone()))?;
                if let Err(e) = self.add(p) {
                    // Put the old record back; it fitted before, so it fits again.
                    let _ = self.add(old);
                    return Err(e);
                }
                Ok(Undo::Restore(Box::new(old)))
            }
            UpdateOperation::Delete { name } => {
                let old = self
                    .remove(name)
                    .ok_or_else(|| RegistryError::UnknownPartner(name.clone()))?;
                Ok(Undo::Restore(Box::new(old)))
            }
        }
    }

    fn revert(&mut self, u: Undo) {
        match u {
            Undo::Remove(name) => {
                let _ = self.remove(&name);
            }
            Undo::Restore(p) => {
                // For a modify, the new record is present under the same name: drop it first.
                let _ = self.remove(p.name());
                let _ = self.add(*p);
            }
        }
    }

    fn add(&mut self, p: Partner) -> Result<(), RegistryError> {
        if self.by_name.contains_key(p.name()) {
            return Err(RegistryError::AlreadyExists(p.name().to_owned()));
        }
        for prefix in &p.prefixes {
            if let Some(owner) = self.trie.exact(prefix) {
                let owner = self
                    .slot_partner(owner)
                    .map(|o| o.name().to_owned())
                    .unwrap_or_default();
                return Err(RegistryError::PrefixConflict {
                    prefix: digits_text(prefix),
                    owner,
                });
            }
        }
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                let s = u32::try_from(self.slots.len()).map_err(|_| RegistryError::Full)?;
                self.slots.push(None);
                s
            }
        };
        for (i, prefix) in p.prefixes.iter().enumerate() {
            if self.trie.insert(prefix, slot).is_err() {
                for done in &p.prefixes[..i] {
                    self.trie.remove(done);
                }
                self.free_slots.push(slot);
                return Err(RegistryError::Full);
            }
        }
        let cc = p.country_code().slot();
        self.by_name.insert(p.name().to_owned(), slot);
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = Some(p);
        }
        // Keep the country list in (priority, name) order.
        let mut list = core::mem::take(&mut self.by_cc[cc]);
        list.push(slot);
        list.sort_by(|a, b| {
            let pa = self.slot_partner(*a);
            let pb = self.slot_partner(*b);
            let ka = pa.map(|p| (p.config.priority, p.name()));
            let kb = pb.map(|p| (p.config.priority, p.name()));
            ka.cmp(&kb)
        });
        self.by_cc[cc] = list;
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Option<Partner> {
        let slot = self.by_name.remove(name)?;
        let p = self.slots.get_mut(slot as usize)?.take()?;
        for prefix in &p.prefixes {
            self.trie.remove(prefix);
        }
        if let Some(list) = self.by_cc.get_mut(p.country_code().slot()) {
            list.retain(|&s| s != slot);
        }
        self.free_slots.push(slot);
        Some(p)
    }
}

fn digits_text(d: &[u8]) -> String {
    d.iter().map(|x| char::from(b'0' + x)).collect()
}
