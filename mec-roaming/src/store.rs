//! Home subscriber store (trait + in-memory implementation), PIN verifiers and the
//! server-based wallet.

use core::fmt;
use std::collections::HashMap;

use hmac::{Hmac, KeyInit, Mac};
use p256::PublicKey;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::e164::E164;
use crate::error::Error;
use crate::jose::keys::PrivateKey;
use crate::message::{Amount, PaymentMethod};

/// PIN tries before lockout (the usual card value; EMV Book 3 §10.5 "PIN Try Limit").
pub const DEFAULT_PIN_TRIES: u8 = 3;

/// Domain separation label of PIN verifiers.
const PIN_LABEL: &[u8] = b"mec-roaming pin verifier v1";

/// A PIN as typed by the user: 4 to 12 decimal digits (ISO 9564-1 §8.1.1). Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Pin(String);

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

impl Pin {
    /// Parses a PIN.
    ///
    /// # Errors
    /// [`Error::Input`] unless it is 4 to 12 ASCII digits.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if !(4..=12).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Input("PIN must be 4 to 12 digits"));
        }
        Ok(Self(text.to_owned()))
    }
}

/// The home server's secret for PIN verifiers (HMAC-SHA256 key, RFC 2104). Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PinKey([u8; 32]);

impl fmt::Debug for PinKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinKey(<redacted>)")
    }
}

impl PinKey {
    /// A key from 32 secret bytes.
    #[must_use]
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        Self(b)
    }

    /// The verifier stored for `subscriber`'s `pin`:
    /// `HMAC-SHA256(key, label || 0x00 || subscriber digits (ASCII) || 0x00 || PIN (ASCII))`.
    /// Binding the subscriber id makes equal PINs give different verifiers.
    #[must_use]
    pub fn verifier(&self, subscriber: &E164, pin: &Pin) -> PinVerifier {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return PinVerifier([0u8; 32]);
        };
        mac.update(PIN_LABEL);
        mac.update(&[0]);
        mac.update(subscriber.to_string().as_bytes());
        mac.update(&[0]);
        mac.update(pin.0.as_bytes());
        PinVerifier(mac.finalize().into_bytes().into())
    }

    /// Constant-time check of `pin` against a stored verifier.
    #[must_use]
    pub fn check(&self, subscriber: &E164, pin: &Pin, stored: &PinVerifier) -> bool {
        self.verifier(subscriber, pin).0.ct_eq(&stored.0).into()
    }
}

/// A stored PIN verifier (never the PIN).
#[derive(Clone, PartialEq, Eq, Zeroize)]
pub struct PinVerifier(pub [u8; 32]);

impl fmt::Debug for PinVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinVerifier(<redacted>)")
    }
}

/// A card on file at the home server. The PAN never leaves the home server; only a token and the
/// masked PAN do.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CardCredential {
    pan: String,
}

impl fmt::Debug for CardCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardCredential")
            .field("pan", &self.masked_pan())
            .finish()
    }
}

impl CardCredential {
    /// A card with primary account number `pan` (12 to 19 digits, ISO/IEC 7812-1 §4.2).
    ///
    /// # Errors
    /// [`Error::Input`] for another length or a non-digit.
    pub fn new(pan: &str) -> Result<Self, Error> {
        if !(12..=19).contains(&pan.len()) || !pan.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::Input("PAN must be 12 to 19 digits"));
        }
        Ok(Self {
            pan: pan.to_owned(),
        })
    }

    /// First six and last four digits, the rest as `*` (PCI DSS 4.0 requirement 3.4.1).
    #[must_use]
    pub fn masked_pan(&self) -> String {
        let n = self.pan.len();
        self.pan
            .char_indices()
            .map(|(i, c)| if i < 6 || i + 4 >= n { c } else { '*' })
            .collect()
    }
}

/// What a home server knows about one subscriber (secrets excluded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    /// The subscriber id.
    pub id: E164,
    /// PIN verifier.
    pub pin_verifier: PinVerifier,
    /// PIN tries left (0 = blocked).
    pub pin_tries_left: u8,
    /// Payment methods the subscriber may use.
    pub payment_methods: Vec<PaymentMethod>,
    /// True when the home server holds a signing key for delegated signatures.
    pub has_signing_key: bool,
    /// Registered device public key for end-to-end signatures.
    pub device_key: Option<PublicKey>,
}

/// Outcome of a wallet debit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletDebit {
    /// Funds taken (or already taken for this key): the debit id.
    Debited(String),
    /// Not enough funds; nothing changed.
    InsufficientFunds,
}

/// Storage of subscribers and wallets at the home server.
///
/// Implementations must make [`wallet_debit`](Self::wallet_debit) and
/// [`wallet_reverse`](Self::wallet_reverse) idempotent per `key` (the transaction), so a retried
/// message never moves funds twice. An SQL implementation keeps a ledger table with `key` as
/// primary key and applies each change in one database transaction.
pub trait SubscriberStore {
    /// The subscriber, or `None` if unknown.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
    fn subscriber(&self, id: &E164) -> Result<Option<Subscriber>, Error>;

    /// Records the PIN tries left.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails or the subscriber is unknown.
    fn set_pin_tries_left(&mut self, id: &E164, tries: u8) -> Result<(), Error>;

    /// The subscriber's signing key for delegated signatures.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
    fn signing_key(&self, id: &E164) -> Result<Option<PrivateKey>, Error>;

    /// The subscriber's card.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
    fn card(&self, id: &E164) -> Result<Option<CardCredential>, Error>;

    /// Debits `amount` from the wallet once per `key`.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails, the subscriber has no wallet, or the currency differs.
    fn wallet_debit(&mut self, id: &E164, key: &str, amount: &Amount)
    -> Result<WalletDebit, Error>;

    /// Gives back the debit made under `key`, once; no effect if there is none.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
    fn wallet_reverse(&mut self, id: &E164, key: &str) -> Result<(), Error>;

    /// Wallet balance.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails.
    fn wallet_balance(&self, id: &E164) -> Result<Option<Amount>, Error>;
}

/// One subscriber in [`MemorySubscriberStore`].
pub struct MemorySubscriber {
    /// The public part.
    pub record: Subscriber,
    /// PKCS#8 DER of the delegated-signing key.
    pub signing_key_der: Option<Zeroizing<Vec<u8>>>,
    /// Card on file.
    pub card: Option<CardCredential>,
    /// Wallet balance.
    pub wallet: Option<Amount>,
}

impl fmt::Debug for MemorySubscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySubscriber")
            .field("record", &self.record)
            .field("card", &self.card)
            .field("wallet", &self.wallet)
            .finish_non_exhaustive()
    }
}

/// In-memory [`SubscriberStore`] for tests, simulations and examples.
#[derive(Debug, Default)]
pub struct MemorySubscriberStore {
    subscribers: HashMap<E164, MemorySubscriber>,
    /// Wallet ledger: key → (subscriber, amount, reversed).
    ledger: HashMap<String, (E164, Amount, bool)>,
}

impl MemorySubscriberStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a subscriber.
    pub fn insert(&mut self, s: MemorySubscriber) {
        self.subscribers.insert(s.record.id, s);
    }

    /// Number of debits currently standing (not reversed) in the ledger for `key`.
    #[must_use]
    pub fn standing_debit(&self, key: &str) -> Option<&Amount> {
        self.ledger
            .get(key)
            .filter(|(_, _, rev)| !rev)
            .map(|(_, a, _)| a)
    }

    /// All ledger entries: (key, amount, reversed).
    pub fn ledger(&self) -> impl Iterator<Item = (&str, &Amount, bool)> {
        self.ledger.iter().map(|(k, (_, a, r))| (k.as_str(), a, *r))
    }

    fn get_mut(&mut self, id: &E164) -> Result<&mut MemorySubscriber, Error> {
        self.subscribers
            .get_mut(id)
            .ok_or_else(|| Error::Store(format!("unknown subscriber {id}")))
    }
}

impl SubscriberStore for MemorySubscriberStore {
    fn subscriber(&self, id: &E164) -> Result<Option<Subscriber>, Error> {
        Ok(self.subscribers.get(id).map(|s| s.record.clone()))
    }

    fn set_pin_tries_left(&mut self, id: &E164, tries: u8) -> Result<(), Error> {
        self.get_mut(id)?.record.pin_tries_left = tries;
        Ok(())
    }

    fn signing_key(&self, id: &E164) -> Result<Option<PrivateKey>, Error> {
        match self
            .subscribers
            .get(id)
            .and_then(|s| s.signing_key_der.as_ref())
        {
            Some(der) => PrivateKey::from_pkcs8_der(der).map(Some),
            None => Ok(None),
        }
    }

    fn card(&self, id: &E164) -> Result<Option<CardCredential>, Error> {
        Ok(self.subscribers.get(id).and_then(|s| s.card.clone()))
    }

    fn wallet_debit(
        &mut self,
        id: &E164,
        key: &str,
        amount: &Amount,
    ) -> Result<WalletDebit, Error> {
        if let Some((who, a, reversed)) = self.ledger.get(key) {
            if who == id && a == amount && !reversed {
                return Ok(WalletDebit::Debited(key.to_owned()));
            }
            return Err(Error::Store(format!("ledger key {key} already used")));
        }
        let s = self.get_mut(id)?;
        let Some(w) = s.wallet.as_mut() else {
            return Err(Error::Store("no wallet".into()));
        };
        if w.currency != amount.currency {
            return Err(Error::Store("wallet currency differs".into()));
        }
        let Some(left) = w.value.checked_sub(amount.value) else {
            return Ok(WalletDebit::InsufficientFunds);
        };
        w.value = left;
        self.ledger
            .insert(key.to_owned(), (*id, amount.clone(), false));
        Ok(WalletDebit::Debited(key.to_owned()))
    }

    fn wallet_reverse(&mut self, id: &E164, key: &str) -> Result<(), Error> {
        let Some((who, a, reversed)) = self.ledger.get_mut(key) else {
            return Ok(());
        };
        if *reversed || who != id {
            return Ok(());
        }
        *reversed = true;
        let a = a.value;
        let s = self.get_mut(id)?;
        if let Some(w) = s.wallet.as_mut() {
            w.value = w.value.saturating_add(a);
        }
        Ok(())
    }

    fn wallet_balance(&self, id: &E164) -> Result<Option<Amount>, Error> {
        Ok(self.subscribers.get(id).and_then(|s| s.wallet.clone()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pin_verifier_is_keyed_and_bound_to_subscriber() {
        let k1 = PinKey::new([1; 32]);
        let k2 = PinKey::new([2; 32]);
        let a = E164::parse("+358401").unwrap();
        let b = E164::parse("+358402").unwrap();
        let pin = Pin::parse("1234").unwrap();
        let v = k1.verifier(&a, &pin);
        assert!(k1.check(&a, &pin, &v));
        assert!(!k1.check(&a, &Pin::parse("1235").unwrap(), &v));
        assert!(!k1.check(&b, &pin, &v));
        assert!(!k2.check(&a, &pin, &v));
        assert_eq!(format!("{pin:?}"), "Pin(<redacted>)");
        assert!(Pin::parse("12a4").is_err() && Pin::parse("123").is_err());
    }

    #[test]
    fn masked_pan_keeps_six_and_four() {
        assert_eq!(
            CardCredential::new("4111111111111111")
                .unwrap()
                .masked_pan(),
            "411111******1111"
        );
        assert!(
            !format!("{:?}", CardCredential::new("4111111111111111").unwrap())
                .contains("4111111111111111")
        );
    }

    #[test]
    fn wallet_debit_once_per_key() {
        let mut s = MemorySubscriberStore::new();
        let id = E164::parse("+3584").unwrap();
        s.insert(MemorySubscriber {
            record: Subscriber {
                id,
                pin_verifier: PinVerifier([0; 32]),
                pin_tries_left: 3,
                payment_methods: vec![PaymentMethod::Wallet],
                has_signing_key: false,
                device_key: None,
            },
            signing_key_der: None,
            card: None,
            wallet: Some(Amount {
                value: 1000,
                currency: "EUR".into(),
            }),
        });
        let a = Amount {
            value: 300,
            currency: "EUR".into(),
        };
        assert_eq!(
            s.wallet_debit(&id, "t1", &a).unwrap(),
            WalletDebit::Debited("t1".into())
        );
        assert_eq!(
            s.wallet_debit(&id, "t1", &a).unwrap(),
            WalletDebit::Debited("t1".into())
        );
        assert_eq!(s.wallet_balance(&id).unwrap().unwrap().value, 700);
        assert_eq!(
            s.wallet_debit(
                &id,
                "t2",
                &Amount {
                    value: 800,
                    currency: "EUR".into()
                }
            )
            .unwrap(),
            WalletDebit::InsufficientFunds
        );
        s.wallet_reverse(&id, "t1").unwrap();
        s.wallet_reverse(&id, "t1").unwrap();
        assert_eq!(s.wallet_balance(&id).unwrap().unwrap().value, 1000);
    }
}
