//! Personalization: the STORE DATA commands (DGIs of `docs/epurse.md`) that turn an installed
//! purse into an active one. Built by the issuer (or a TSM) from its master keys.

use alloc::vec::Vec;

use apdu_codec::Command;

use crate::Error;
use crate::card::{
    DGI_ISSUER, DGI_KEY_BASE, DGI_LIMITS, DGI_PIN, DGI_TAG, IssuerData, TagAccess, key_function,
};
use crate::crypto::Key16;
use crate::host::MasterKeyStore;
use crate::pboc::ALGORITHM_DES;

/// One key to personalize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Function ([`key_function`]).
    pub function: u8,
    /// Key index.
    pub index: u8,
    /// Key version.
    pub version: u8,
    /// The card (diversified) key.
    pub key: Key16,
}

/// Everything a purse is personalized with. `Debug` hides the PIN; the PIN is zeroized on
/// drop.
#[derive(Clone)]
pub struct Personalization {
    /// Issuer data.
    pub issuer: IssuerData,
    /// Maximum balance of each purse.
    pub max_balance: u32,
    /// ED overdraft limit (at most `FFFFFF`).
    pub overdraft_limit: u32,
    /// Card keys.
    pub keys: Vec<KeyRecord>,
    /// PIN, packed BCD (2..=6 bytes).
    pub pin: Vec<u8>,
    /// PIN try limit (1..=15).
    pub pin_try_limit: u8,
    /// Tag access data, when the purse is the gatekeeper of a value-block tag.
    pub tag: Option<TagAccess>,
}

impl core::fmt::Debug for Personalization {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Personalization")
            .field("issuer", &self.issuer)
            .field("max_balance", &self.max_balance)
            .field("overdraft_limit", &self.overdraft_limit)
            .field("keys", &self.keys)
            .field("pin", &"<redacted>")
            .field("pin_try_limit", &self.pin_try_limit)
            .field("tag", &self.tag)
            .finish()
    }
}

impl Drop for Personalization {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.pin);
    }
}

impl Personalization {
    /// Derive every card key from the issuer's master keys: for each `(function, index,
    /// version)` in `wanted`, the key diversified with the ASN of `issuer`.
    ///
    /// # Errors
    /// [`Error::UnknownMasterKey`] when the store lacks one.
    pub fn keys_from_masters(
        store: &impl MasterKeyStore,
        asn: &[u8; 8],
        wanted: &[(u8, u8, u8)],
    ) -> Result<Vec<KeyRecord>, Error> {
        wanted
            .iter()
            .map(|&(function, index, version)| {
                Ok(KeyRecord {
                    function,
                    index,
                    version,
                    key: store.card_key(function, index, version, asn)?,
                })
            })
            .collect()
    }

    /// The DGI-encoded personalization data, one DGI per element.
    ///
    /// # Errors
    /// [`Error::IncorrectData`] for an unknown key function or an overdraft limit above
    /// `FFFFFF`.
    pub fn dgis(&self) -> Result<Vec<Vec<u8>>, Error> {
        let mut out = Vec::new();
        let i = &self.issuer;
        let mut issuer = Vec::with_capacity(26);
        issuer.extend_from_slice(&i.asn);
        issuer.extend_from_slice(&i.issuer_id);
        issuer.push(i.app_type);
        issuer.push(i.app_version);
        issuer.extend_from_slice(&i.start_date);
        issuer.extend_from_slice(&i.end_date);
        out.push(dgi(DGI_ISSUER, &issuer)?);
        if self.overdraft_limit > 0x00FF_FFFF {
            return Err(Error::IncorrectData);
        }
        let mut limits = self.max_balance.to_be_bytes().to_vec();
        limits.extend_from_slice(&self.overdraft_limit.to_be_bytes()[1..]);
        out.push(dgi(DGI_LIMITS, &limits)?);
        for k in &self.keys {
            if !key_function::is_known(k.function) {
                return Err(Error::IncorrectData);
            }
            let mut v = alloc::vec![k.index, k.version, ALGORITHM_DES];
            v.extend_from_slice(k.key.expose());
            out.push(dgi(DGI_KEY_BASE | u16::from(k.function), &v)?);
        }
        let mut pin = zeroize::Zeroizing::new(alloc::vec![self.pin_try_limit]);
        pin.extend_from_slice(&self.pin);
        out.push(dgi(DGI_PIN, &pin)?);
        if let Some(t) = &self.tag {
            let mut v = t.master.expose().to_vec();
            v.extend_from_slice(&t.aid);
            v.extend_from_slice(t.system_identifier());
            out.push(dgi(DGI_TAG, &v)?);
        }
        Ok(out)
    }

    /// STORE DATA commands (`80 E2 P1 block`), one DGI each, P1 `80` on the last one. (A GP
    /// card manager wraps them in its secure channel; the applet sees them in the clear.)
    ///
    /// # Errors
    /// As [`dgis`](Self::dgis).
    pub fn store_data_commands(&self) -> Result<Vec<Command>, Error> {
        let dgis = self.dgis()?;
        let n = dgis.len();
        dgis.into_iter()
            .enumerate()
            .map(|(i, d)| {
                let p1 = if i + 1 == n { 0x80 } else { 0x00 };
                let block = u8::try_from(i).map_err(|_| Error::IncorrectData)?;
                Ok(Command::new(0x80, 0xE2, p1, block).with_data(d))
            })
            .collect()
    }
}

fn dgi(tag: u16, value: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = tag.to_be_bytes().to_vec();
    if value.len() < 0xFF {
        out.push(u8::try_from(value.len()).map_err(|_| Error::IncorrectData)?);
    } else {
        out.push(0xFF);
        out.extend_from_slice(
            &u16::try_from(value.len())
                .map_err(|_| Error::IncorrectData)?
                .to_be_bytes(),
        );
    }
    out.extend_from_slice(value);
    Ok(out)
}
