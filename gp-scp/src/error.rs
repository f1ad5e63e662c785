//! The crate's error type and its mapping to the status word a card answers.

use core::fmt;

use apdu_codec::StatusWord;

use crate::diversify::Diversification;
use crate::keys::Kcv;

/// Everything that can go wrong in a secure channel, its keys or its data formats.
///
/// Card-side errors map to the status word the card answers in one place:
/// [`Error::status_word`] (also `impl From<&Error> for StatusWord`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key has a length its algorithm does not accept.
    #[error("key length not supported by the algorithm")]
    KeyLength,
    /// A key of the wrong type for this protocol (for example a DES key for SCP03).
    #[error("key type does not fit the protocol: {0}")]
    KeyType(&'static str),
    /// The security level is not one this protocol defines (GPC 2.3 §10.6, Amd D §7.1.2).
    #[error("security level {0:02X} not supported")]
    SecurityLevel(u8),
    /// The `i` parameter is not one this implementation supports.
    #[error("SCP implementation option i={0:02X} not supported")]
    ImplementationOption(u8),
    /// A field has the wrong length or structure.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The command is not the one the protocol state expects (for example EXTERNAL
    /// AUTHENTICATE without a preceding INITIALIZE UPDATE).
    #[error("command not expected in this state: {0}")]
    UnexpectedCommand(&'static str),
    /// The key set version asked for is not present (INITIALIZE UPDATE P1).
    #[error("key version {0:02X} not found")]
    KeyVersionNotFound(u8),
    /// The sequence counter is exhausted; the key set must be replaced.
    #[error("sequence counter exhausted")]
    CounterExhausted,
    /// The host cryptogram did not verify (card side, EXTERNAL AUTHENTICATE).
    #[error("host cryptogram did not verify")]
    HostCryptogram,
    /// The card cryptogram did not verify (host side). Carries what was tried.
    #[error("{0}")]
    CardCryptogram(AuthFailure),
    /// The SCP11 receipt did not verify (host side).
    #[error("SCP11 receipt did not verify")]
    Receipt,
    /// A C-MAC did not verify (card side): tampered, replayed or out-of-order command.
    #[error("command MAC did not verify (tampered, replayed or out of order)")]
    CommandMac,
    /// A command under secure messaging arrived without the secure messaging indication, or
    /// was not protected at the session's level.
    #[error("secure messaging missing where the session requires it")]
    SecureMessagingMissing,
    /// The decrypted command data has malformed padding.
    #[error("bad padding in the decrypted data")]
    Padding,
    /// An R-MAC did not verify (host side).
    #[error("response MAC did not verify")]
    ResponseMac,
    /// The session is not open (never authenticated, or closed after an error).
    #[error("no secure channel session is open")]
    NoSession,
    /// The data does not fit an APDU once wrapped.
    #[error("wrapped data too long ({0} bytes)")]
    TooLong(usize),
    /// The card answered a status word the host cannot continue with.
    #[error("card answered {0}")]
    Status(StatusWord),
    /// The card reported another protocol or key version than the host asked for.
    #[error(
        "card answered SCP{scp:02X} key version {key_version:02X}, host expected SCP{expected_scp:02X} key version {expected_key_version:02X}"
    )]
    ProtocolMismatch {
        /// SCP identifier the card reported.
        scp: u8,
        /// Key version the card reported.
        key_version: u8,
        /// SCP identifier the host expected.
        expected_scp: u8,
        /// Key version the host asked for (00 = any).
        expected_key_version: u8,
    },
    /// An elliptic-curve operation failed (invalid point, invalid key).
    #[error("elliptic curve: {0}")]
    Ecc(&'static str),
    /// The card's SCP11 public key is not one the caller trusts.
    #[error("the card's SCP11 key is not trusted")]
    UntrustedCardKey,
    /// The SD's SCP11 certificate chain was refused (host side): which certificate and why.
    #[error("SD certificate chain refused: {0}")]
    Certificate(crate::scp11::chain::CertificateError),
    /// A trust anchor could not be read (not a P-256 key or CA certificate).
    #[error("trust anchor refused: {0}")]
    TrustAnchor(crate::scp11::chain::CertificateFault),
    /// A PUT KEY key check value did not match the decrypted key.
    #[error("key check value mismatch")]
    KcvMismatch,
    /// An APDU could not be encoded or parsed.
    #[error("APDU codec: {0}")]
    Codec(#[from] apdu_codec::Error),
    /// A card-management command or response is malformed (GPC 2.3 chapter 11).
    #[error(transparent)]
    Command(#[from] crate::cmd::CommandError),
}

impl Error {
    /// The status word a card answers for this error (the single place where card-visible
    /// errors become status words).
    #[must_use]
    pub fn status_word(&self) -> StatusWord {
        match self {
            // Amd D §6.2.4/§6.2.5, GPC 2.3 §10.8: a secure messaging failure answers 6982 and
            // closes the session.
            Error::CommandMac
            | Error::Padding
            | Error::SecureMessagingMissing
            | Error::NoSession => StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            // GPC 2.3 §11.8.3 (EXTERNAL AUTHENTICATE): 6300 authentication of host cryptogram failed.
            Error::HostCryptogram => StatusWord::WARNING_CHANGED,
            // GPC 2.3 §11.11.3 (INITIALIZE UPDATE): 6A88 referenced data not found.
            Error::KeyVersionNotFound(_) => StatusWord::REFERENCED_DATA_NOT_FOUND,
            Error::SecurityLevel(_) => StatusWord::INCORRECT_P1_P2,
            Error::UnexpectedCommand(_) => StatusWord::CONDITIONS_NOT_SATISFIED,
            Error::CounterExhausted => StatusWord::REFERENCE_DATA_NOT_USABLE,
            Error::Malformed(_) | Error::Codec(_) => StatusWord::WRONG_LENGTH,
            Error::KcvMismatch | Error::Ecc(_) => StatusWord::INCORRECT_DATA,
            Error::Status(sw) => *sw,
            Error::Command(e) => e.status_word(),
            _ => StatusWord::UNKNOWN_ERROR,
        }
    }
}

impl From<&Error> for StatusWord {
    fn from(e: &Error) -> Self {
        e.status_word()
    }
}

/// What the host tried when a card cryptogram did not verify, so that a tool can say more
/// than "6982".
#[derive(Clone, PartialEq, Eq)]
pub struct AuthFailure {
    /// The protocol (02 or 03).
    pub scp: u8,
    /// The key version the card used (from its INITIALIZE UPDATE response).
    pub key_version: u8,
    /// The key version the host asked for (00 = any).
    pub requested_key_version: u8,
    /// Key check values of the static keys the host used (ENC, MAC, DEK), after
    /// diversification.
    pub kcvs: [Kcv; 3],
    /// The diversification the host applied.
    pub diversification: Diversification,
    /// The key diversification data the card returned.
    pub kdd: [u8; 10],
}

impl fmt::Debug for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "card cryptogram did not verify (SCP{:02X}, card key version {:02X}, requested {:02X}, \
             keys ENC/MAC/DEK with KCV {}/{}/{}, diversification {}, KDD ",
            self.scp,
            self.key_version,
            self.requested_key_version,
            self.kcvs[0],
            self.kcvs[1],
            self.kcvs[2],
            self.diversification,
        )?;
        for b in self.kdd {
            write!(f, "{b:02X}")?;
        }
        f.write_str(")")?;
        if self.requested_key_version != 0 && self.requested_key_version != self.key_version {
            f.write_str("; the card used another key version than requested")
        } else if self.diversification == Diversification::None && self.kdd.iter().any(|&b| b != 0)
        {
            f.write_str(
                "; likely wrong keys, or the card's keys are diversified (try EMV, VISA2 or KDF3)",
            )
        } else {
            f.write_str("; likely wrong keys, wrong diversification or wrong key version")
        }
    }
}
