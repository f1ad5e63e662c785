//! The crate's error type and the wire error codes it maps to.

use serde::{Deserialize, Serialize};

use crate::e164::E164Error;
use crate::registry::RegistryError;

/// Error codes carried in roaming `error` messages, numbered in the spirit of EMV 3-D Secure 2
/// (EMVCo 3DS Core Spec 2.3.1, Table A.4 "Error Code, Error Description, and Error Detail"):
/// 1xx message, 2xx element, 3xx transaction/security, 4xx system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 101: message received invalid (not a JWS, not JSON, wrong shape).
    MessageInvalid,
    /// 102: message version not supported.
    VersionNotSupported,
    /// 201: a required element is missing.
    RequiredElementMissing,
    /// 203: an element has an invalid format or value.
    FormatInvalid,
    /// 301: transaction id not recognized.
    UnknownTransaction,
    /// 302: data decryption failure (JWE).
    DecryptionFailure,
    /// 303: access denied: bad signature, unknown sender, replay, stale or future message.
    AccessDenied,
    /// 305: transaction data not valid (for this transaction's state or contract).
    TransactionDataInvalid,
    /// 402: transaction timed out.
    Timeout,
    /// 403: transient system failure; the sender may retry.
    TransientFailure,
    /// 404: permanent system failure.
    PermanentFailure,
    /// 405: system connection failure.
    ConnectionFailure,
}

impl ErrorCode {
    /// The numeric code.
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            Self::MessageInvalid => 101,
            Self::VersionNotSupported => 102,
            Self::RequiredElementMissing => 201,
            Self::FormatInvalid => 203,
            Self::UnknownTransaction => 301,
            Self::DecryptionFailure => 302,
            Self::AccessDenied => 303,
            Self::TransactionDataInvalid => 305,
            Self::Timeout => 402,
            Self::TransientFailure => 403,
            Self::PermanentFailure => 404,
            Self::ConnectionFailure => 405,
        }
    }
}

impl From<ErrorCode> for u16 {
    fn from(c: ErrorCode) -> Self {
        c.code()
    }
}

impl TryFrom<u16> for ErrorCode {
    type Error = String;
    fn try_from(v: u16) -> Result<Self, String> {
        Ok(match v {
            101 => Self::MessageInvalid,
            102 => Self::VersionNotSupported,
            201 => Self::RequiredElementMissing,
            203 => Self::FormatInvalid,
            301 => Self::UnknownTransaction,
            302 => Self::DecryptionFailure,
            303 => Self::AccessDenied,
            305 => Self::TransactionDataInvalid,
            402 => Self::Timeout,
            403 => Self::TransientFailure,
            404 => Self::PermanentFailure,
            405 => Self::ConnectionFailure,
            other => return Err(format!("unknown error code {other}")),
        })
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key could not be loaded or encoded.
    #[error("key: {0}")]
    Key(&'static str),
    /// Serialization failed.
    #[error("could not encode")]
    Encode,
    /// A received message was refused; the code is what goes back on the wire.
    #[error("message refused ({code}): {1}", code = .0.code())]
    Message(ErrorCode, &'static str),
    /// A subscriber id is not a valid E.164 number.
    #[error("subscriber id: {0}")]
    E164(#[from] E164Error),
    /// The partner registry refused a configuration or update.
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    /// A configuration file could not be parsed.
    #[error("configuration: {0}")]
    Config(String),
    /// A store (subscribers, wallet, transactions) failed.
    #[error("store: {0}")]
    Store(String),
    /// An input does not fit the transaction's current state or is unknown to the machine.
    #[error("input refused: {0}")]
    Input(&'static str),
}

impl From<&Error> for ErrorCode {
    /// The one place where errors map to wire codes.
    fn from(e: &Error) -> Self {
        match e {
            Error::Message(code, _) => *code,
            Error::E164(_) | Error::Input(_) => Self::FormatInvalid,
            Error::Key(_) | Error::Registry(_) | Error::Config(_) | Error::Encode => {
                Self::PermanentFailure
            }
            Error::Store(_) => Self::TransientFailure,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in [
            101u16, 102, 201, 203, 301, 302, 303, 305, 402, 403, 404, 405,
        ] {
            assert_eq!(ErrorCode::try_from(c).unwrap().code(), c);
        }
        assert!(ErrorCode::try_from(999).is_err());
        assert_eq!(
            serde_json::to_string(&ErrorCode::AccessDenied).unwrap(),
            "303"
        );
    }
}
