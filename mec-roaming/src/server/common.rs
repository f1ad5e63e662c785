//! Pieces shared by both machines.

use core::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode};
use crate::message::{Body, Envelope, MessageId, PROTOCOL_VERSION, TransactionId};
use crate::registry::Registry;
use crate::security::Endpoint;
use crate::time::Timestamp;

/// A message to send to a partner: POST `jws` (as `application/jose`) to `url`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transmit {
    /// Partner name.
    pub to: String,
    /// Partner server-to-server URL.
    pub url: String,
    /// Transaction it belongs to.
    pub tid: TransactionId,
    /// Message `type` (for logs).
    pub message_type: String,
    /// Message id (`mid`) inside the JWS: names this message in an [`Undeliverable`] report.
    pub mid: MessageId,
    /// The compact JWS.
    pub jws: String,
}

/// The transport's report that a [`Transmit`] could not be delivered: feed it back as
/// `VisitedInput::Undeliverable` / `HomeInput::Undeliverable`.
///
/// Only a report about the message a transaction is currently waiting on (or, at home, an
/// answer the visited server refused) acts; a duplicate or late report, or one about a message
/// the transaction has moved past, changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undeliverable {
    /// Partner the message was for ([`Transmit::to`]).
    pub to: String,
    /// Transaction ([`Transmit::tid`]).
    pub tid: TransactionId,
    /// The message ([`Transmit::mid`]).
    pub mid: MessageId,
    /// `true`: the partner answered and refused the message (an HTTP 4xx: the receiver changed
    /// nothing, and sending it again cannot succeed). `false`: it could not be reached or kept
    /// failing (connection errors, timeouts, 5xx) until the transport gave up.
    pub permanent: bool,
    /// What happened (for logs and the failure detail).
    pub reason: String,
}

impl Undeliverable {
    /// The report for `transmit`.
    #[must_use]
    pub fn new(transmit: &Transmit, permanent: bool, reason: impl Into<String>) -> Self {
        Self {
            to: transmit.to.clone(),
            tid: transmit.tid.clone(),
            mid: transmit.mid.clone(),
            permanent,
            reason: reason.into(),
        }
    }

    /// The wire code a transaction aborted by this report fails with: 404 permanent failure
    /// for a refusal, 405 system connection failure otherwise (EMVCo 3DS Core Spec 2.3.1,
    /// Table A.4).
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        if self.permanent {
            ErrorCode::PermanentFailure
        } else {
            ErrorCode::ConnectionFailure
        }
    }

    /// True when it reports `transmit` (same partner, transaction and message id).
    #[must_use]
    pub fn is_about(&self, transmit: &Transmit) -> bool {
        self.mid == transmit.mid && self.to == transmit.to && self.tid == transmit.tid
    }
}

/// Timers of both machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Interval between retransmissions of an unanswered message.
    pub retransmit: Duration,
    /// How long the visited server waits for one home candidate's roamUserResponse (or
    /// contractAck) before trying the next (silent home).
    pub home_response: Duration,
    /// How long a transaction may wait for the user (PIN, device signature).
    pub user: Duration,
    /// After this long a message is no longer retransmitted (must stay below the receiver's
    /// validity window, or the retransmissions would arrive stale).
    pub give_up: Duration,
    /// How long finished transactions and cached answers are kept to answer duplicates.
    pub linger: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            retransmit: Duration::from_secs(2),
            home_response: Duration::from_secs(10),
            user: Duration::from_secs(300),
            give_up: Duration::from_secs(120),
            linger: Duration::from_secs(600),
        }
    }
}

/// A sent message awaiting its answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) transmit: Transmit,
    pub(crate) mid: MessageId,
    pub(crate) next_at: Timestamp,
    pub(crate) give_up_at: Timestamp,
}

impl Pending {
    /// The next time this pending message needs attention.
    pub(crate) fn deadline(&self) -> Option<Timestamp> {
        (self.next_at < self.give_up_at).then_some(self.next_at)
    }

    /// Returns the transmit to repeat if due at `now`.
    pub(crate) fn due(&mut self, now: Timestamp, t: &Timeouts) -> Option<Transmit> {
        if now >= self.next_at && now < self.give_up_at {
            self.next_at = now.saturating_add(t.retransmit);
            return Some(self.transmit.clone());
        }
        None
    }
}

/// Builds, signs and wraps a message to partner `to`.
pub(crate) fn seal_to(
    endpoint: &Endpoint,
    registry: &Registry,
    now: Timestamp,
    mid: MessageId,
    tid: &TransactionId,
    to: &str,
    body: Body,
) -> Result<(Transmit, MessageId), Error> {
    let partner = registry.partner(to).ok_or(Error::Message(
        ErrorCode::PermanentFailure,
        "partner no longer in registry",
    ))?;
    let message_type = body.type_name().to_owned();
    let env = Envelope {
        ver: PROTOCOL_VERSION.into(),
        mid: mid.clone(),
        tid: tid.clone(),
        iss: endpoint.name().to_owned(),
        aud: to.to_owned(),
        iat: now.as_unix_secs(),
        body,
    };
    let jws = endpoint.seal(&env)?;
    Ok((
        Transmit {
            to: to.to_owned(),
            url: partner.url().to_owned(),
            tid: tid.clone(),
            message_type,
            mid: mid.clone(),
            jws,
        },
        mid,
    ))
}

pub(crate) fn min_deadline(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
