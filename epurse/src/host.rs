//! Host side: the issuer's load authority (what a payment server's HSM does) and the
//! settlement verifier.
//!
//! Master keys live behind [`MasterKeyStore`]; [`InMemoryMasterKeys`] is for tests and
//! simulations, an HSM-backed store is the integrator's.

use alloc::vec::Vec;

use apdu_codec::{Command, ResponseView};

use crate::Error;
use crate::card::key_function;
use crate::crypto::{DesKey, Key16, TdesKey, mac_eq};
use crate::pboc::{self, DateTime, InitLoadResponse, InitializeData, PurseKind};

/// Where the issuer's master keys live.
pub trait MasterKeyStore {
    /// The card key for `function` ([`key_function`]), key `index` and `version`, diversified
    /// for the card with application serial number `asn`.
    ///
    /// # Errors
    /// [`Error::UnknownMasterKey`] when the store has no such master key.
    fn card_key(&self, function: u8, index: u8, version: u8, asn: &[u8; 8])
    -> Result<Key16, Error>;
}

/// Master keys in memory (tests, simulations).
#[derive(Debug, Default)]
pub struct InMemoryMasterKeys {
    keys: Vec<(u8, u8, u8, TdesKey)>,
}

impl InMemoryMasterKeys {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        InMemoryMasterKeys::default()
    }

    /// Add (or replace) a master key.
    pub fn insert(&mut self, function: u8, index: u8, version: u8, master: &Key16) {
        self.keys
            .retain(|(f, i, v, _)| (*f, *i, *v) != (function, index, version));
        self.keys
            .push((function, index, version, TdesKey::new(master)));
    }
}

impl MasterKeyStore for InMemoryMasterKeys {
    fn card_key(
        &self,
        function: u8,
        index: u8,
        version: u8,
        asn: &[u8; 8],
    ) -> Result<Key16, Error> {
        self.keys
            .iter()
            .find(|(f, i, v, _)| (*f, *i, *v) == (function, index, version))
            .map(|(_, _, _, mk)| pboc::diversify(mk, asn))
            .ok_or(Error::UnknownMasterKey)
    }
}

/// Which DTK the issuer personalizes (the card uses its first DTK for every TAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TacKeyRef {
    /// Key index.
    pub index: u8,
    /// Key version.
    pub version: u8,
}

/// The issuer's load (and unload) authority.
#[derive(Debug)]
pub struct LoadAuthority<S> {
    store: S,
    tac: TacKeyRef,
}

/// An approved load or unload after MAC1 was verified: produces MAC2 and checks the TAC.
#[derive(Debug)]
pub struct OnlineAuthorization {
    session: DesKey,
    tac_key: DesKey,
    amount: u32,
    tx_type: u8,
    terminal_id: [u8; 6],
    online_atc: u16,
    new_balance: i32,
    mac2: Option<([u8; 4], DateTime)>,
}

impl<S: MasterKeyStore> LoadAuthority<S> {
    /// An authority over a key store; `tac` names the DTK the cards carry.
    pub const fn new(store: S, tac: TacKeyRef) -> Self {
        LoadAuthority { store, tac }
    }

    /// The key store.
    pub const fn store(&self) -> &S {
        &self.store
    }

    fn authorize(
        &self,
        asn: &[u8; 8],
        function: u8,
        tx_type: u8,
        request: &InitializeData,
        rsp: &InitLoadResponse,
        unload: bool,
    ) -> Result<OnlineAuthorization, Error> {
        let key = self
            .store
            .card_key(function, request.key_index, rsp.key_version, asn)?;
        let session = pboc::load_session_key(&TdesKey::new(&key), &rsp.random, rsp.online_atc);
        let expected = pboc::load_mac1(
            &session,
            rsp.balance,
            request.amount,
            tx_type,
            &request.terminal_id,
        );
        if !mac_eq(&expected, &rsp.mac1) {
            return Err(Error::MacInvalid);
        }
        let dtk = self
            .store
            .card_key(key_function::TAC, self.tac.index, self.tac.version, asn)?;
        let amount = i64::from(request.amount);
        let new_balance = if unload {
            i64::from(rsp.balance) - amount
        } else {
            i64::from(rsp.balance) + amount
        };
        Ok(OnlineAuthorization {
            session,
            tac_key: pboc::tac_key(&dtk),
            amount: request.amount,
            tx_type,
            terminal_id: request.terminal_id,
            online_atc: rsp.online_atc,
            new_balance: i32::try_from(new_balance).map_err(|_| Error::MaximumBalanceExceeded)?,
            mac2: None,
        })
    }

    /// Verify MAC1 of an INITIALIZE FOR LOAD answer for the card `asn`. The returned
    /// authorization gives MAC2 once the bank has approved.
    ///
    /// # Errors
    /// [`Error::MacInvalid`] for a wrong MAC1 (not this card, or a forged answer);
    /// [`Error::UnknownMasterKey`].
    pub fn begin_load(
        &self,
        asn: &[u8; 8],
        kind: PurseKind,
        request: &InitializeData,
        rsp: &InitLoadResponse,
    ) -> Result<OnlineAuthorization, Error> {
        self.authorize(
            asn,
            key_function::LOAD,
            kind.load_type(),
            request,
            rsp,
            false,
        )
    }

    /// Verify MAC1 of an INITIALIZE FOR UNLOAD answer (ED).
    ///
    /// # Errors
    /// As [`begin_load`](Self::begin_load).
    pub fn begin_unload(
        &self,
        asn: &[u8; 8],
        request: &InitializeData,
        rsp: &InitLoadResponse,
    ) -> Result<OnlineAuthorization, Error> {
        self.authorize(
            asn,
            key_function::UNLOAD,
            pboc::TYPE_ED_UNLOAD,
            request,
            rsp,
            true,
        )
    }
}

impl OnlineAuthorization {
    /// MAC2 for the transaction at `when` (remembered for the TAC check).
    pub fn mac2(&mut self, when: &DateTime) -> [u8; 4] {
        let mac2 = pboc::load_mac2(
            &self.session,
            self.amount,
            self.tx_type,
            &self.terminal_id,
            when,
        );
        self.mac2 = Some((mac2, *when));
        mac2
    }

    /// CREDIT FOR LOAD (or, for an unload, DEBIT FOR UNLOAD) carrying MAC2.
    #[must_use]
    pub fn command(&mut self, when: &DateTime) -> Command {
        let mac2 = self.mac2(when);
        if self.tx_type == pboc::TYPE_ED_UNLOAD {
            pboc::debit_for_unload(when, &mac2)
        } else {
            pboc::credit_for_load(when, &mac2)
        }
    }

    /// The balance the card will have after the transaction.
    #[must_use]
    pub const fn new_balance(&self) -> i32 {
        self.new_balance
    }

    /// The online ATC of the transaction (for GET TRANSACTION PROVE after a lost answer).
    #[must_use]
    pub const fn online_atc(&self) -> u16 {
        self.online_atc
    }

    /// The transaction type.
    #[must_use]
    pub const fn tx_type(&self) -> u8 {
        self.tx_type
    }

    /// The TAC this transaction must carry.
    ///
    /// # Errors
    /// [`Error::Unexpected`] before MAC2 was produced.
    pub fn expected_tac(&self) -> Result<[u8; 4], Error> {
        let (_, when) = self.mac2.ok_or(Error::Unexpected("TAC before MAC2"))?;
        Ok(pboc::load_tac(
            &self.tac_key,
            self.new_balance,
            self.online_atc,
            self.amount,
            self.tx_type,
            &self.terminal_id,
            &when,
        ))
    }

    /// Verify the TAC the card answered to CREDIT FOR LOAD / DEBIT FOR UNLOAD.
    ///
    /// # Errors
    /// [`Error::Card`], [`Error::BadLength`], [`Error::TacInvalid`].
    pub fn verify_tac(&self, rsp: &ResponseView<'_>) -> Result<[u8; 4], Error> {
        let tac = pboc::parse_tac(rsp)?;
        if mac_eq(&self.expected_tac()?, &tac) {
            Ok(tac)
        } else {
            Err(Error::TacInvalid)
        }
    }

    /// Verify a GET TRANSACTION PROVE answer (`MAC2 || TAC`) after a lost CREDIT answer: the
    /// card completed the load exactly when this succeeds.
    ///
    /// # Errors
    /// [`Error::Card`] (9406: the card never completed it), [`Error::TacInvalid`].
    pub fn verify_prove(&self, rsp: &ResponseView<'_>) -> Result<[u8; 4], Error> {
        let (mac, tac) = pboc::parse_pair(rsp)?;
        let (mac2, _) = self.mac2.ok_or(Error::Unexpected("prove before MAC2"))?;
        if mac_eq(&mac2, &mac) && mac_eq(&self.expected_tac()?, &tac) {
            Ok(tac)
        } else {
            Err(Error::TacInvalid)
        }
    }
}

/// A purchase as a POS uploads it for settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchaseRecord {
    /// Card ASN.
    pub asn: [u8; 8],
    /// Amount.
    pub amount: u32,
    /// Transaction type (`05` ED, `06` EP).
    pub tx_type: u8,
    /// Terminal id.
    pub terminal_id: [u8; 6],
    /// Terminal transaction serial.
    pub terminal_serial: [u8; 4],
    /// Date and time.
    pub when: DateTime,
    /// TAC from the card.
    pub tac: [u8; 4],
}

/// A load or unload as the issuer's ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadRecord {
    /// Card ASN.
    pub asn: [u8; 8],
    /// Balance after the transaction.
    pub new_balance: i32,
    /// Online ATC of the transaction.
    pub online_atc: u16,
    /// Amount.
    pub amount: u32,
    /// Transaction type (`01`, `02`, `03`).
    pub tx_type: u8,
    /// Terminal id.
    pub terminal_id: [u8; 6],
    /// Date and time.
    pub when: DateTime,
    /// TAC from the card.
    pub tac: [u8; 4],
}

/// Recomputes TACs from the issuer's DTK.
#[derive(Debug)]
pub struct SettlementVerifier<S> {
    store: S,
    tac: TacKeyRef,
}

impl<S: MasterKeyStore> SettlementVerifier<S> {
    /// A verifier over a key store.
    pub const fn new(store: S, tac: TacKeyRef) -> Self {
        SettlementVerifier { store, tac }
    }

    fn tac_key(&self, asn: &[u8; 8]) -> Result<DesKey, Error> {
        let dtk = self
            .store
            .card_key(key_function::TAC, self.tac.index, self.tac.version, asn)?;
        Ok(pboc::tac_key(&dtk))
    }

    /// Verify a purchase TAC.
    ///
    /// # Errors
    /// [`Error::TacInvalid`], [`Error::UnknownMasterKey`].
    pub fn verify_purchase(&self, r: &PurchaseRecord) -> Result<(), Error> {
        let tac = pboc::purchase_tac(
            &self.tac_key(&r.asn)?,
            r.amount,
            r.tx_type,
            &r.terminal_id,
            &r.terminal_serial,
            &r.when,
        );
        if mac_eq(&tac, &r.tac) {
            Ok(())
        } else {
            Err(Error::TacInvalid)
        }
    }

    /// Verify a load or unload TAC.
    ///
    /// # Errors
    /// [`Error::TacInvalid`], [`Error::UnknownMasterKey`].
    pub fn verify_load(&self, r: &LoadRecord) -> Result<(), Error> {
        let tac = pboc::load_tac(
            &self.tac_key(&r.asn)?,
            r.new_balance,
            r.online_atc,
            r.amount,
            r.tx_type,
            &r.terminal_id,
            &r.when,
        );
        if mac_eq(&tac, &r.tac) {
            Ok(())
        } else {
            Err(Error::TacInvalid)
        }
    }
}
