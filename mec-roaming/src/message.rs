//! Roaming messages (ours; documented in `docs/roaming.md`) and their JSON form.
//!
//! Every server-to-server message is an [`Envelope`] serialized as JSON and signed as a compact
//! JWS (see [`crate::security`]).

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::e164::E164;
use crate::error::ErrorCode;
use crate::jose::b64;

/// Version of the roaming message format this crate speaks.
pub const PROTOCOL_VERSION: &str = "1.0";

/// Longest identifier accepted (message ids, transaction ids, tokens).
pub const MAX_ID_LEN: usize = 64;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random identifier: 16 bytes from `rng`, as 32 lowercase hex digits.
            pub fn random<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> Self {
                let mut b = [0u8; 16];
                rng.fill_bytes(&mut b);
                Self(b.iter().map(|x| format!("{x:02x}")).collect())
            }

            /// Parses an identifier: 1 to 64 characters of `[A-Za-z0-9_-]`.
            ///
            /// # Errors
            /// [`crate::Error::Message`] with [`ErrorCode::FormatInvalid`].
            pub fn parse(s: &str) -> Result<Self, crate::Error> {
                if s.is_empty() || s.len() > MAX_ID_LEN || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    return Err(crate::Error::Message(ErrorCode::FormatInvalid, concat!("invalid ", stringify!($name))));
                }
                Ok(Self(s.to_owned()))
            }

            /// The identifier text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// Unique id of one message (the replay-cache key).
    MessageId
);
id_type!(
    /// Id of one roaming transaction, chosen by the visited server.
    TransactionId
);

/// What the content provider asks for (patent Fig. 5 and Fig. 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RequestType {
    /// Payment (Fig. 6).
    Payment,
    /// Authentication: PIN verified at home.
    Authentication,
    /// Delegated digital signature: home signs the contract with the subscriber's key.
    DigitalSignature,
    /// End-to-end signature: the device signs; home verifies and forwards.
    EndToEndSignature,
}

/// Payment methods a subscriber may use and a content provider may accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PaymentMethod {
    /// A card, paid with a single-use token through the visited side's acquirer.
    Card,
    /// The server-based wallet held by the home server.
    Wallet,
}

/// Why a home server turned a subscriber down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RejectReason {
    /// Not a subscriber of this home server.
    UnknownSubscriber,
    /// The subscriber's PIN is blocked.
    SubscriberBlocked,
    /// The subscriber cannot do this kind of request (no key, no device key...).
    RequestTypeNotSupported,
    /// No payment method available.
    NoPaymentMethod,
}

/// An amount in minor units of an ISO 4217 currency.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amount {
    /// Minor units (cents).
    pub value: u64,
    /// ISO 4217 alphabetic code, such as `EUR`.
    pub currency: String,
}

impl Amount {
    /// Checks the currency is three upper-case letters and the value is positive.
    ///
    /// # Errors
    /// [`crate::Error::Message`] with [`ErrorCode::FormatInvalid`].
    pub fn validate(&self) -> Result<(), crate::Error> {
        if self.value == 0
            || self.currency.len() != 3
            || !self.currency.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(crate::Error::Message(ErrorCode::FormatInvalid, "amount"));
        }
        Ok(())
    }
}

/// The contract the subscriber confirms (security requests: supplied by the content provider;
/// payments: generated by the visited server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Contract {
    /// The transaction.
    pub transaction_id: TransactionId,
    /// What is asked.
    pub request_type: RequestType,
    /// Content provider (merchant) name shown to the user.
    pub merchant: String,
    /// Text shown to and confirmed by the user.
    pub text: String,
    /// Amount (payments only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// Payment methods offered (payments only): the intersection of the subscriber's and the
    /// content provider's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payment_methods: Vec<PaymentMethod>,
    /// Issue time, seconds since the epoch.
    pub created: u64,
}

impl Contract {
    /// The bytes the subscriber's signature covers: the contract's JSON as serialized by this
    /// crate (fields in declaration order, no whitespace).
    #[must_use]
    pub fn signing_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// base64url(SHA-256(signing bytes)): binds results and authorizations to this contract.
    #[must_use]
    pub fn digest(&self) -> String {
        b64::encode(&Sha256::digest(self.signing_bytes()))
    }
}

/// A security result (patent Fig. 5 step 14), made by the home server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityResult {
    /// Authentication, digital signature or end-to-end signature.
    pub request_type: RequestType,
    /// The subscriber.
    pub subscriber: E164,
    /// [`Contract::digest`] of the contract confirmed.
    pub contract_digest: String,
    /// When the PIN (or device signature) was checked, seconds since the epoch.
    pub verified_at: u64,
    /// ES256 signature (base64url `R || S`) over [`Contract::signing_bytes`], for the
    /// signature kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The subscriber's public key (base64url SEC1 uncompressed) that verifies `signature`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_key: Option<String>,
}

/// A tokenized card: never the card number.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenizedCard {
    /// Single-use payment token bound to this transaction and amount.
    pub token: String,
    /// Masked account number: first six and last four digits (PCI DSS 4.0 req. 3.4.1).
    pub masked_pan: String,
    /// Token expiry, seconds since the epoch.
    pub expires: u64,
}

impl fmt::Debug for TokenizedCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenizedCard")
            .field("token", &"<redacted>")
            .field("masked_pan", &self.masked_pan)
            .finish()
    }
}

/// The instrument in a payment authorization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum PaymentInstrument {
    /// A tokenized card in clear (inside the signed JWS).
    Token {
        /// The token.
        card: TokenizedCard,
    },
    /// A tokenized card encrypted to the visited server (JWE compact, ECDH-ES + A256GCM).
    EncryptedToken {
        /// The JWE whose plaintext is a [`TokenizedCard`] as JSON.
        jwe: String,
    },
    /// Funds debited from the subscriber's server-based wallet at home.
    Wallet {
        /// Home's id of the wallet debit (one per transaction).
        debit_id: String,
    },
}

/// Payment authorization, home → visited, after the PIN (patent Fig. 6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaymentAuthorization {
    /// The method the user chose.
    pub method: PaymentMethod,
    /// The authorized amount (equals the contract's).
    pub amount: Amount,
    /// [`Contract::digest`] of the payment contract.
    pub contract_digest: String,
    /// The instrument.
    pub instrument: PaymentInstrument,
}

/// Receipt: what the user sees at the end, with the way back to the content provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Receipt {
    /// The merchant.
    pub merchant: String,
    /// Human-readable outcome.
    pub outcome: String,
    /// Amount paid (payments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// Where the user agent continues.
    pub continue_url: String,
    /// Issue time, seconds since the epoch.
    pub issued_at: u64,
}

/// Payment result, visited → home (patent Fig. 6: "result reported back to home").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaymentResult {
    /// True when the acquirer approved.
    pub approved: bool,
    /// Acquirer's approval code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_code: Option<String>,
    /// Decline reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Receipt for the user.
    pub receipt: Receipt,
}

/// Message bodies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Body {
    /// Visited → home: is this your subscriber, and may they do this?
    RoamUserRequest {
        /// The subscriber (E.164).
        subscriber: E164,
        /// What is asked.
        request_type: RequestType,
    },
    /// Home → visited: accept (with payment methods) or reject.
    RoamUserResponse {
        /// The subscriber.
        subscriber: E164,
        /// What was asked.
        request_type: RequestType,
        /// True = accept.
        accept: bool,
        /// Why not (when `accept` is false).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<RejectReason>,
        /// The subscriber's payment methods (payments).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        payment_methods: Vec<PaymentMethod>,
    },
    /// Visited → home: the contract (Fig. 5 step 8).
    Contract {
        /// The contract.
        contract: Contract,
    },
    /// Home → visited: contract stored; send the user here.
    ContractAck {
        /// Digest of the contract stored.
        contract_digest: String,
        /// Where the visited server redirects the user agent (Fig. 5 step 9).
        user_url: String,
    },
    /// Home → visited: the security result (Fig. 5 step 15).
    RoamSecurityResult {
        /// The result.
        result: SecurityResult,
    },
    /// Home → visited: payment authorization (Fig. 6).
    PaymentAuthorization {
        /// The authorization.
        authorization: PaymentAuthorization,
    },
    /// Visited → home: payment result with the receipt.
    PaymentResult {
        /// The result.
        result: PaymentResult,
    },
    /// Visited → home: receipt of a security request (Fig. 5 steps 17-18).
    Receipt {
        /// The receipt.
        receipt: Receipt,
    },
    /// Home → visited: final acknowledgement of a payment result or receipt.
    Ack {
        /// Message acknowledged.
        ack_of: MessageId,
    },
    /// Either way: the transaction is refused or aborted.
    Error {
        /// 3-D Secure-style code.
        code: ErrorCode,
        /// Detail for logs.
        detail: String,
        /// Message that caused it, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refers_to: Option<MessageId>,
    },
}

impl Body {
    /// The `type` name of this body on the wire.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RoamUserRequest { .. } => "roamUserRequest",
            Self::RoamUserResponse { .. } => "roamUserResponse",
            Self::Contract { .. } => "contract",
            Self::ContractAck { .. } => "contractAck",
            Self::RoamSecurityResult { .. } => "roamSecurityResult",
            Self::PaymentAuthorization { .. } => "paymentAuthorization",
            Self::PaymentResult { .. } => "paymentResult",
            Self::Receipt { .. } => "receipt",
            Self::Ack { .. } => "ack",
            Self::Error { .. } => "error",
        }
    }
}

/// The signed payload of every server-to-server message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Protocol version (`"1.0"`).
    pub ver: String,
    /// Message id.
    pub mid: MessageId,
    /// Transaction id.
    pub tid: TransactionId,
    /// Sender partner name (equals the JWS `kid`).
    pub iss: String,
    /// Receiver partner name.
    pub aud: String,
    /// Issue time, seconds since the epoch (RFC 7519 `NumericDate`).
    pub iat: u64,
    /// The message.
    pub body: Body,
}

/// Parses an envelope from JSON, checking the version.
///
/// # Errors
/// [`crate::Error::Message`] with [`ErrorCode::MessageInvalid`] for malformed JSON or
/// [`ErrorCode::VersionNotSupported`] for another major version.
pub fn parse_envelope(json: &[u8]) -> Result<Envelope, crate::Error> {
    // Check the version before the body so a newer peer gets 102, not 101.
    #[derive(Deserialize)]
    struct Ver {
        ver: String,
    }
    let v: Ver = serde_json::from_slice(json)
        .map_err(|_| crate::Error::Message(ErrorCode::MessageInvalid, "envelope JSON"))?;
    if v.ver.split('.').next() != PROTOCOL_VERSION.split('.').next() {
        return Err(crate::Error::Message(
            ErrorCode::VersionNotSupported,
            "message version",
        ));
    }
    serde_json::from_slice(json)
        .map_err(|_| crate::Error::Message(ErrorCode::MessageInvalid, "envelope JSON"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn body_json_shape() {
        let b = Body::RoamUserRequest {
            subscriber: E164::parse("+358401234567").unwrap(),
            request_type: RequestType::EndToEndSignature,
        };
        let j = serde_json::to_string(&b).unwrap();
        assert_eq!(
            j,
            r#"{"type":"roamUserRequest","subscriber":"+358401234567","requestType":"endToEndSignature"}"#
        );
        assert_eq!(serde_json::from_str::<Body>(&j).unwrap(), b);
        assert!(
            serde_json::from_str::<Body>(
                r#"{"type":"roamUserRequest","subscriber":"+358401234567","requestType":"x"}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<Body>(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn version_mismatch_is_102() {
        let e = parse_envelope(br#"{"ver":"2.0","mid":"a"}"#).unwrap_err();
        assert_eq!(ErrorCode::from(&e), ErrorCode::VersionNotSupported);
        let e = parse_envelope(b"[").unwrap_err();
        assert_eq!(ErrorCode::from(&e), ErrorCode::MessageInvalid);
    }
}
