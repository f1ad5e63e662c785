//! Signing outgoing messages and admitting incoming ones: signature, known sender, audience,
//! version, timestamp window and replay cache.

use core::fmt;
use core::time::Duration;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode};
use crate::jose::jws;
use crate::jose::keys::PrivateKey;
use crate::message::{Envelope, MessageId, parse_envelope};
use crate::registry::Registry;
use crate::time::Timestamp;

/// Acceptance rules for incoming messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// How long after its issue time a message is accepted (and its id remembered).
    pub window: Duration,
    /// How far in the future an issue time may be (clock skew between partners).
    pub skew: Duration,
    /// Most message ids remembered per sender; beyond it new messages get 403.
    pub max_ids_per_sender: usize,
}

impl Default for Validity {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            skew: Duration::from_secs(30),
            max_ids_per_sender: 100_000,
        }
    }
}

/// How an admitted message relates to what was seen before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// First time this message id is seen: act on it.
    Fresh(Envelope),
    /// The very same token seen before (a network retry): answer as before, act not again.
    Duplicate(Envelope),
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct SenderIds {
    ids: HashMap<MessageId, (Timestamp, [u8; 32])>,
}

/// Per-sender replay cache: message id → (forget-after time, token hash).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ReplayCache {
    senders: HashMap<String, SenderIds>,
}

impl fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n: usize = self.senders.values().map(|s| s.ids.len()).sum();
        f.debug_struct("ReplayCache")
            .field("senders", &self.senders.len())
            .field("ids", &n)
            .finish()
    }
}

impl ReplayCache {
    fn check_and_insert(
        &mut self,
        now: Timestamp,
        sender: &str,
        mid: &MessageId,
        forget_after: Timestamp,
        hash: [u8; 32],
        limit: usize,
    ) -> Result<bool, Error> {
        let s = self.senders.entry(sender.to_owned()).or_default();
        if let Some((_, h)) = s.ids.get(mid) {
            if *h == hash {
                return Ok(true);
            }
            return Err(Error::Message(
                ErrorCode::AccessDenied,
                "message id reused with other content (replay)",
            ));
        }
        if s.ids.len() >= limit {
            s.ids.retain(|_, (exp, _)| *exp > now);
            if s.ids.len() >= limit {
                return Err(Error::Message(
                    ErrorCode::TransientFailure,
                    "replay cache full for sender",
                ));
            }
        }
        s.ids.insert(mid.clone(), (forget_after, hash));
        Ok(false)
    }

    /// Forgets every id whose window has passed at `now`.
    pub fn purge(&mut self, now: Timestamp) {
        for s in self.senders.values_mut() {
            s.ids.retain(|_, (exp, _)| *exp > now);
        }
        self.senders.retain(|_, s| !s.ids.is_empty());
    }

    /// Number of ids remembered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.senders.values().map(|s| s.ids.len()).sum()
    }

    /// True when nothing is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One server's identity: its partner name and signing key, plus the admission state for what it
/// receives.
#[derive(Debug)]
pub struct Endpoint {
    name: String,
    key: PrivateKey,
    encryption_key: Option<PrivateKey>,
    validity: Validity,
    replay: ReplayCache,
}

impl Endpoint {
    /// An endpoint called `name` (its JWS `kid`) signing with `key`.
    #[must_use]
    pub fn new(name: impl Into<String>, key: PrivateKey, validity: Validity) -> Self {
        Self {
            name: name.into(),
            key,
            encryption_key: None,
            validity,
            replay: ReplayCache::default(),
        }
    }

    /// Uses a separate key for ECDH-ES decryption of payment data (the one published as
    /// `encryption_key` in the registry). Without it the signing key also decrypts.
    #[must_use]
    pub fn with_encryption_key(mut self, key: PrivateKey) -> Self {
        self.encryption_key = Some(key);
        self
    }

    /// The key that decrypts JWEs addressed to this server.
    #[must_use]
    pub fn decryption_key(&self) -> &PrivateKey {
        self.encryption_key.as_ref().unwrap_or(&self.key)
    }

    /// This server's partner name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The acceptance rules.
    #[must_use]
    pub fn validity(&self) -> &Validity {
        &self.validity
    }

    /// Signs an envelope as a compact JWS.
    ///
    /// # Errors
    /// [`Error::Encode`] if it cannot be serialized.
    pub fn seal(&self, env: &Envelope) -> Result<String, Error> {
        let payload = serde_json::to_vec(env).map_err(|_| Error::Encode)?;
        jws::sign_compact(&self.key, &self.name, &payload)
    }

    /// Checks an incoming compact JWS: well formed, sent by a known partner, signature valid,
    /// addressed to us, version supported, issued within the validity window, not a replay.
    ///
    /// # Errors
    /// [`Error::Message`] with the code to answer: 101/102/203 for malformed messages, 303 for
    /// bad signatures, unknown senders, wrong audience, stale or future messages and replays.
    pub fn admit(
        &mut self,
        now: Timestamp,
        token: &str,
        registry: &Registry,
    ) -> Result<Admitted, Error> {
        let parsed = jws::parse_compact(token)?;
        let sender = registry
            .partner(parsed.header.kid.as_deref().unwrap_or_default())
            .ok_or(Error::Message(ErrorCode::AccessDenied, "unknown sender"))?;
        let payload = parsed.verify(sender.verifying_key())?;
        let env = parse_envelope(&payload)?;
        if env.iss != sender.name() {
            return Err(Error::Message(
                ErrorCode::AccessDenied,
                "iss differs from kid",
            ));
        }
        if env.aud != self.name {
            return Err(Error::Message(
                ErrorCode::AccessDenied,
                "not addressed to us",
            ));
        }
        let issued = Timestamp::from_unix_secs(env.iat);
        if issued > now.saturating_add(self.validity.skew) {
            return Err(Error::Message(
                ErrorCode::AccessDenied,
                "issued in the future",
            ));
        }
        let forget_after = issued.saturating_add(self.validity.window);
        if forget_after <= now {
            return Err(Error::Message(ErrorCode::AccessDenied, "stale message"));
        }
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let dup = self.replay.check_and_insert(
            now,
            &env.iss,
            &env.mid,
            forget_after,
            hash,
            self.validity.max_ids_per_sender,
        )?;
        Ok(if dup {
            Admitted::Duplicate(env)
        } else {
            Admitted::Fresh(env)
        })
    }

    /// Forgets message ids whose window has passed.
    pub fn purge(&mut self, now: Timestamp) {
        self.replay.purge(now);
    }

    /// The replay cache (for snapshots).
    #[must_use]
    pub fn replay_cache(&self) -> &ReplayCache {
        &self.replay
    }

    /// Replaces the replay cache (restoring a snapshot).
    pub fn restore_replay_cache(&mut self, cache: ReplayCache) {
        self.replay = cache;
    }

    /// Number of message ids remembered.
    #[must_use]
    pub fn remembered_ids(&self) -> usize {
        self.replay.len()
    }
}
