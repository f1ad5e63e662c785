//! JSON bodies of the HTTP API (described in `docs/roaming-openapi.json`).

use mec_roaming::ErrorCode;
use mec_roaming::jose::b64;
use mec_roaming::message::{Amount, Contract, PaymentMethod, Receipt, RequestType, SecurityResult};
use mec_roaming::server::{CpEvent, HomeTxState, StartRequest, UserReply, VisitedTxState};
use serde::{Deserialize, Serialize};

/// Content provider: start a checkout (payment) or a security request.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct StartTransaction {
    pub(crate) cp_ref: String,
    pub(crate) subscriber: String,
    pub(crate) request_type: RequestType,
    pub(crate) merchant: String,
    pub(crate) text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) accepted_methods: Vec<PaymentMethod>,
    pub(crate) continue_url: String,
}

impl StartTransaction {
    /// Longest `cpRef`, `merchant`, `continueUrl` accepted.
    const MAX_FIELD: usize = 256;
    /// Longest contract text accepted.
    const MAX_TEXT: usize = 16 * 1024;

    /// Checks sizes; the library checks the rest.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if self.cp_ref.is_empty() || self.cp_ref.len() > Self::MAX_FIELD {
            return Err("cpRef must be 1 to 256 bytes");
        }
        if self.merchant.is_empty() || self.merchant.len() > Self::MAX_FIELD {
            return Err("merchant must be 1 to 256 bytes");
        }
        if self.text.len() > Self::MAX_TEXT {
            return Err("text longer than 16 KiB");
        }
        if self.continue_url.len() > Self::MAX_FIELD
            || !(self.continue_url.starts_with("https://")
                || self.continue_url.starts_with("http://"))
        {
            return Err("continueUrl must be an http(s) URL of at most 256 bytes");
        }
        Ok(())
    }

    pub(crate) fn to_start(&self) -> StartRequest {
        StartRequest {
            cp_ref: self.cp_ref.clone(),
            subscriber: self.subscriber.clone(),
            request_type: self.request_type,
            merchant: self.merchant.clone(),
            text: self.text.clone(),
            amount: self.amount.clone(),
            accepted_methods: self.accepted_methods.clone(),
            continue_url: self.continue_url.clone(),
        }
    }
}

/// A content-provider notification as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(crate) enum CpEventJson {
    Started,
    UserRedirected {
        url: String,
    },
    SecurityCompleted {
        result: SecurityResult,
    },
    Paid {
        authorization_code: String,
        method: PaymentMethod,
        amount: Amount,
    },
    Declined {
        reason: String,
    },
    Failed {
        code: ErrorCode,
        reason: String,
    },
}

impl From<&CpEvent> for CpEventJson {
    fn from(e: &CpEvent) -> Self {
        match e {
            CpEvent::Started => Self::Started,
            CpEvent::UserRedirected { url } => Self::UserRedirected { url: url.clone() },
            CpEvent::SecurityCompleted { result } => Self::SecurityCompleted {
                result: result.clone(),
            },
            CpEvent::Paid {
                authorization_code,
                method,
                amount,
            } => Self::Paid {
                authorization_code: authorization_code.clone(),
                method: *method,
                amount: amount.clone(),
            },
            CpEvent::Declined { reason } => Self::Declined {
                reason: reason.clone(),
            },
            CpEvent::Failed { code, reason } => Self::Failed {
                code: *code,
                reason: reason.clone(),
            },
        }
    }
}

impl CpEventJson {
    /// True for the events that end a transaction for the content provider.
    pub(crate) fn is_outcome(&self) -> bool {
        matches!(
            self,
            Self::SecurityCompleted { .. }
                | Self::Paid { .. }
                | Self::Declined { .. }
                | Self::Failed { .. }
        )
    }
}

/// Visited transaction state name.
pub(crate) fn visited_state(s: &VisitedTxState) -> &'static str {
    match s {
        VisitedTxState::Locating { .. } => "locating",
        VisitedTxState::AwaitingContractAck { .. } => "awaitingContractAck",
        VisitedTxState::AwaitingUser { .. } => "awaitingUser",
        VisitedTxState::Finishing { .. } => "finishing",
        VisitedTxState::Completed => "completed",
        VisitedTxState::Failed { .. } => "failed",
    }
}

/// Home transaction state name.
pub(crate) fn home_state(s: &HomeTxState) -> &'static str {
    match s {
        HomeTxState::Accepted => "accepted",
        HomeTxState::AwaitingUser => "awaitingUser",
        HomeTxState::ResultSent => "resultSent",
        HomeTxState::InDoubt => "inDoubt",
        HomeTxState::Completed => "completed",
        HomeTxState::Failed { .. } => "failed",
    }
}

/// Content provider: a transaction's status.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TransactionStatus {
    pub(crate) transaction_id: String,
    pub(crate) cp_ref: String,
    pub(crate) state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) outcome: Option<CpEventJson>,
    pub(crate) events: Vec<CpEventJson>,
}

/// User agent: PIN submission.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SubmitPin {
    pub(crate) pin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) method: Option<PaymentMethod>,
}

impl core::fmt::Debug for SubmitPin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SubmitPin")
            .field("pin", &"<redacted>")
            .field("method", &self.method)
            .finish()
    }
}

/// User agent: device signature submission.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SubmitSignature {
    pub(crate) signature: String,
}

/// The home server's answer to the user agent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(
    tag = "status",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub(crate) enum UserReplyJson {
    /// The contract, and the exact bytes (base64url) a device signs for an end-to-end signature.
    Contract {
        contract: Contract,
        signing_input: String,
    },
    WrongPin {
        tries_left: u8,
    },
    Blocked,
    InsufficientFunds,
    Submitted,
    Waiting,
    Receipt {
        receipt: Receipt,
    },
    Failed {
        code: ErrorCode,
        reason: String,
    },
    Refused {
        reason: String,
    },
    UnknownSession,
}

impl From<UserReply> for UserReplyJson {
    fn from(r: UserReply) -> Self {
        match r {
            UserReply::Contract { contract } => {
                let signing_input = b64::encode(&contract.signing_bytes());
                Self::Contract {
                    contract,
                    signing_input,
                }
            }
            UserReply::WrongPin { tries_left } => Self::WrongPin { tries_left },
            UserReply::Blocked => Self::Blocked,
            UserReply::InsufficientFunds => Self::InsufficientFunds,
            UserReply::Submitted => Self::Submitted,
            UserReply::Waiting => Self::Waiting,
            UserReply::Receipt { receipt } => Self::Receipt { receipt },
            UserReply::Failed { code, reason } => Self::Failed { code, reason },
            UserReply::Refused { reason } => Self::Refused {
                reason: reason.to_owned(),
            },
            UserReply::UnknownSession => Self::UnknownSession,
        }
    }
}

/// Error body of every endpoint.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorBody {
    pub(crate) code: ErrorCode,
    pub(crate) detail: String,
}

/// `202` answer of the server-to-server endpoint.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Accepted {
    pub(crate) status: String,
}

/// Health.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Health {
    pub(crate) role: String,
    pub(crate) name: String,
    pub(crate) registry_serial: u64,
    pub(crate) partners: usize,
}

/// Visited: a merchant's account with the acquirer.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MerchantAccount {
    pub(crate) merchant: String,
    pub(crate) balances: Vec<Amount>,
}

/// Home: a subscriber's counters (no secrets).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriberInfo {
    pub(crate) subscriber: String,
    pub(crate) pin_tries_left: u8,
    pub(crate) payment_methods: Vec<PaymentMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) wallet: Option<Amount>,
}

/// Answer to a registry update.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegistryState {
    pub(crate) serial: u64,
    pub(crate) partners: usize,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_shapes() {
        let j = serde_json::to_string(&CpEventJson::Paid {
            authorization_code: "A1".into(),
            method: PaymentMethod::Wallet,
            amount: Amount {
                value: 5,
                currency: "EUR".into(),
            },
        })
        .unwrap();
        assert_eq!(
            j,
            r#"{"event":"paid","authorizationCode":"A1","method":"wallet","amount":{"value":5,"currency":"EUR"}}"#
        );
        let j = serde_json::to_string(&UserReplyJson::WrongPin { tries_left: 2 }).unwrap();
        assert_eq!(j, r#"{"status":"wrongPin","triesLeft":2}"#);
        let j = serde_json::to_string(&UserReplyJson::Failed {
            code: ErrorCode::AccessDenied,
            reason: "x".into(),
        })
        .unwrap();
        assert_eq!(j, r#"{"status":"failed","code":303,"reason":"x"}"#);
        assert!(
            !format!(
                "{:?}",
                SubmitPin {
                    pin: "1234".into(),
                    method: None
                }
            )
            .contains("1234")
        );
    }
}
