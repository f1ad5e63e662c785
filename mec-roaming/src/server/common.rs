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
    /// The compact JWS.
    pub jws: String,
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
