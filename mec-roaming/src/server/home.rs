//! The home MeC server: knows the subscriber, verifies the PIN (or the device signature),
//! signs on the subscriber's behalf, tokenizes card data and holds the server-based wallet.
//! Secrets never leave it.

use core::time::Duration;
use std::collections::{HashMap, VecDeque};

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, VerifyingKey};

use super::common::{Pending, Timeouts, Transmit, Undeliverable, min_deadline, seal_to};
use crate::e164::E164;
use crate::error::{Error, ErrorCode};
use crate::jose::{b64, jwe, keys};
use crate::message::{
    Body, Contract, Envelope, MessageId, PaymentAuthorization, PaymentInstrument, PaymentMethod,
    PaymentResult, Receipt, RejectReason, RequestType, SecurityResult, TokenizedCard,
    TransactionId,
};
use crate::registry::Registry;
use crate::security::{Admitted, Endpoint};
use crate::store::{DEFAULT_PIN_TRIES, Pin, PinKey, Subscriber, SubscriberStore, WalletDebit};
use crate::time::Timestamp;

/// Home server settings.
#[derive(Clone, Debug)]
pub struct HomeConfig {
    /// Timers.
    pub timeouts: Timeouts,
    /// Base URL of the user-agent endpoints; the contract page is `{user_base_url}/{session}`.
    pub user_base_url: String,
    /// Validity of single-use payment tokens.
    pub token_ttl: Duration,
    /// PIN tries before lockout.
    pub max_pin_tries: u8,
}

impl Default for HomeConfig {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            user_base_url: "https://home.invalid/roam/session".into(),
            token_ttl: Duration::from_secs(600),
            max_pin_tries: DEFAULT_PIN_TRIES,
        }
    }
}

/// What the user agent asks the home server (Fig. 5 steps 10-13).
#[derive(Clone, Debug)]
pub enum UserRequest {
    /// Show me the contract.
    FetchContract,
    /// Here is my PIN (and, for a payment, the method I choose; default the first offered).
    SubmitPin {
        /// The PIN.
        pin: Pin,
        /// Chosen payment method.
        method: Option<PaymentMethod>,
    },
    /// Here is my device's signature over the contract (end-to-end signing): base64url `R || S`.
    SubmitDeviceSignature {
        /// The signature.
        signature: String,
    },
    /// How is it going?
    Status,
}

/// What the home server answers the user agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserReply {
    /// The contract to confirm.
    Contract {
        /// The contract.
        contract: Contract,
    },
    /// Wrong PIN.
    WrongPin {
        /// Tries left before lockout.
        tries_left: u8,
    },
    /// PIN blocked; the transaction is aborted.
    Blocked,
    /// Not enough money in the wallet; choose another method.
    InsufficientFunds,
    /// Accepted; the result went to the visited server. Poll the status.
    Submitted,
    /// Waiting for the contract.
    Waiting,
    /// Done: receipt with the continue URL (Fig. 5 steps 17-18).
    Receipt {
        /// The receipt.
        receipt: Receipt,
    },
    /// The transaction failed.
    Failed {
        /// Code.
        code: ErrorCode,
        /// Why.
        reason: String,
    },
    /// This request does not fit the transaction.
    Refused {
        /// Why.
        reason: &'static str,
    },
    /// No such session.
    UnknownSession,
}

/// Inputs of the home server.
#[derive(Clone, Debug)]
pub enum HomeInput {
    /// A message arrived from a partner.
    Receive {
        /// Compact JWS.
        jws: String,
    },
    /// The user agent, on the session URL given in the redirect.
    User {
        /// Session id (last path segment of the user URL).
        session: String,
        /// The request.
        request: UserRequest,
    },
    /// The transport gave up on a message this server sent (see [`Undeliverable`]). A refused
    /// security result or payment authorization aborts the transaction (404; a wallet debit is
    /// given back: the refusal means the visited server did not act on it; the visited server
    /// is sent an error, as for a deadline); an unreachable
    /// visited server gets it again on the timer, since an earlier copy may have been acted on
    /// (after the give-up time the transaction is in doubt, as before). A refused
    /// roamUserResponse or contractAck means the visited server has moved on: the transaction
    /// is aborted. Anything else changes nothing.
    Undeliverable(Undeliverable),
    /// Time passed.
    Timeout,
}

/// Outputs of the home server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HomeOutput {
    /// Send a message to a partner.
    Transmit(Transmit),
    /// Answer to a [`HomeInput::User`] request.
    ToUser {
        /// Session.
        session: String,
        /// Answer.
        reply: UserReply,
    },
}

/// Where a home transaction stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HomeTxState {
    /// roamUserRequest accepted; awaiting the contract.
    Accepted,
    /// Contract stored and acknowledged; awaiting the user.
    AwaitingUser,
    /// Security result or payment authorization sent; awaiting the receipt / payment result.
    ResultSent,
    /// Gave up retransmitting without an answer: the visited side may or may not have acted.
    /// A late payment result still settles it.
    InDoubt,
    /// Finished with a receipt.
    Completed,
    /// Failed or aborted.
    Failed {
        /// Why.
        code: ErrorCode,
    },
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct HomeTx {
    subscriber: E164,
    request_type: RequestType,
    contract: Option<Contract>,
    session: Option<String>,
    state: HomeTxState,
    pending: Option<Pending>,
    deadline: Timestamp,
    ended_at: Option<Timestamp>,
    wallet_key: Option<String>,
    receipt: Option<Receipt>,
    contract_ack: Option<Transmit>,
    failure: Option<(ErrorCode, String)>,
}

type TxKey = (String, TransactionId);

/// Everything a home server must keep across a restart besides its keys, registry, PIN key and
/// subscriber store: transactions, user sessions, cached answers and the replay cache. Opaque;
/// serialize it (JSON) into durable storage after inputs, restore it at start.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HomeSnapshot {
    txs: Vec<(TxKey, HomeTx)>,
    sessions: Vec<(String, TxKey)>,
    answers: Vec<((String, MessageId), (Transmit, Timestamp))>,
    replay: crate::security::ReplayCache,
}

/// The home server state machine.
#[derive(Debug)]
pub struct HomeServer<S: SubscriberStore, R: rand_core::CryptoRng> {
    endpoint: Endpoint,
    registry: Registry,
    store: S,
    pin_key: PinKey,
    config: HomeConfig,
    rng: R,
    txs: HashMap<TxKey, HomeTx>,
    sessions: HashMap<String, TxKey>,
    /// Answers to admitted messages, re-sent for their duplicates until the expiry time.
    answers: HashMap<(String, MessageId), (Transmit, Timestamp)>,
    outputs: VecDeque<HomeOutput>,
}

impl<S: SubscriberStore, R: rand_core::CryptoRng> HomeServer<S, R> {
    /// A home server.
    pub fn new(
        config: HomeConfig,
        endpoint: Endpoint,
        registry: Registry,
        store: S,
        pin_key: PinKey,
        rng: R,
    ) -> Self {
        Self {
            endpoint,
            registry,
            store,
            pin_key,
            config,
            rng,
            txs: HashMap::new(),
            sessions: HashMap::new(),
            answers: HashMap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// The subscriber store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Takes the subscriber store back (shutting the machine down).
    pub fn into_store(self) -> S {
        self.store
    }

    /// The state to persist (see [`HomeSnapshot`]).
    #[must_use]
    pub fn snapshot(&self) -> HomeSnapshot {
        let mut txs: Vec<_> = self
            .txs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        txs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut sessions: Vec<_> = self
            .sessions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        sessions.sort();
        let mut answers: Vec<_> = self
            .answers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        answers.sort_by(|a, b| a.0.cmp(&b.0));
        HomeSnapshot {
            txs,
            sessions,
            answers,
            replay: self.endpoint.replay_cache().clone(),
        }
    }

    /// Replaces this server's state with a snapshot (at start, before any input).
    pub fn restore(&mut self, snapshot: HomeSnapshot) {
        self.txs = snapshot.txs.into_iter().collect();
        self.sessions = snapshot.sessions.into_iter().collect();
        self.answers = snapshot.answers.into_iter().collect();
        self.endpoint.restore_replay_cache(snapshot.replay);
        self.outputs.clear();
    }

    /// The subscriber store, for provisioning.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The PIN key (to compute verifiers when provisioning subscribers).
    #[must_use]
    pub fn pin_key(&self) -> &PinKey {
        &self.pin_key
    }

    /// The partner registry.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The partner registry, to apply updates.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// State of the transaction `tid` from visited server `visited`.
    #[must_use]
    pub fn state(&self, visited: &str, tid: &TransactionId) -> Option<&HomeTxState> {
        self.txs
            .get(&(visited.to_owned(), tid.clone()))
            .map(|t| &t.state)
    }

    /// Wallet ledger key of a transaction (`visited/tid`).
    #[must_use]
    pub fn wallet_key(visited: &str, tid: &TransactionId) -> String {
        format!("{visited}/{tid}")
    }

    /// Next output, or `None`.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<HomeOutput> {
        self.outputs.pop_front()
    }

    /// When [`HomeInput::Timeout`] must be fed next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let mut d = None;
        for tx in self.txs.values() {
            match tx.state {
                HomeTxState::Accepted | HomeTxState::AwaitingUser => {
                    d = min_deadline(d, Some(tx.deadline))
                }
                HomeTxState::ResultSent => {
                    d = min_deadline(d, tx.pending.as_ref().map(|p| p.next_at.min(p.give_up_at)))
                }
                HomeTxState::Completed | HomeTxState::Failed { .. } | HomeTxState::InDoubt => {
                    d = min_deadline(
                        d,
                        tx.ended_at
                            .map(|e| e.saturating_add(self.config.timeouts.linger)),
                    );
                }
            }
        }
        min_deadline(d, self.answers.values().map(|(_, keep)| *keep).min())
    }

    /// Feeds one input.
    ///
    /// # Errors
    /// For `Receive`, the refusal to answer the sender with (nothing changed): see
    /// [`Endpoint::admit`], plus [`ErrorCode::UnknownTransaction`] and
    /// [`ErrorCode::TransactionDataInvalid`]. User requests never fail: their answer is a
    /// [`HomeOutput::ToUser`].
    pub fn handle_input(&mut self, now: Timestamp, input: HomeInput) -> Result<(), Error> {
        match input {
            HomeInput::Receive { jws } => self.receive(now, &jws),
            HomeInput::User { session, request } => {
                let reply = self.user(now, &session, request);
                self.outputs
                    .push_back(HomeOutput::ToUser { session, reply });
                Ok(())
            }
            HomeInput::Undeliverable(u) => {
                self.undeliverable(now, &u);
                Ok(())
            }
            HomeInput::Timeout => {
                self.timeout(now);
                Ok(())
            }
        }
    }

    /// Acts on a transport failure report; only a refusal of what the transaction waits on
    /// (or of its last answer) counts.
    fn undeliverable(&mut self, now: Timestamp, u: &Undeliverable) {
        if !u.permanent {
            return; // re-sent on the timer (results) or on the visited side's retransmission
        }
        let key: TxKey = (u.to.clone(), u.tid.clone());
        let Some(tx) = self.txs.get(&key) else {
            return;
        };
        let refused = match tx.state {
            HomeTxState::ResultSent => tx.pending.as_ref().is_some_and(|p| u.is_about(&p.transmit)),
            HomeTxState::AwaitingUser => tx.contract_ack.as_ref().is_some_and(|t| u.is_about(t)),
            HomeTxState::Accepted => self
                .answers
                .values()
                .any(|(t, _)| u.is_about(t) && t.message_type == "roamUserResponse"),
            HomeTxState::InDoubt | HomeTxState::Completed | HomeTxState::Failed { .. } => false,
        };
        if refused {
            // As for a deadline: the user sees the failure, a wallet debit is given back, and a
            // visited side still waiting for this result hears of it (one that moved on ignores
            // or refuses the error; nothing more is sent then).
            let tell_visited = tx.state == HomeTxState::ResultSent;
            let reason = format!("visited refused the message: {}", u.reason);
            self.abort(now, &key, u.code(), &reason, tell_visited);
        }
    }

    fn send(&mut self, now: Timestamp, key: &TxKey, body: Body, track: bool) -> Option<Transmit> {
        let mid = MessageId::random(&mut self.rng);
        let (t, mid) = seal_to(
            &self.endpoint,
            &self.registry,
            now,
            mid,
            &key.1,
            &key.0,
            body,
        )
        .ok()?;
        if track && let Some(tx) = self.txs.get_mut(key) {
            tx.pending = Some(Pending {
                transmit: t.clone(),
                mid,
                next_at: now.saturating_add(self.config.timeouts.retransmit),
                give_up_at: now.saturating_add(self.config.timeouts.give_up),
            });
        }
        self.outputs.push_back(HomeOutput::Transmit(t.clone()));
        Some(t)
    }

    fn receive(&mut self, now: Timestamp, jws: &str) -> Result<(), Error> {
        let env = match self.endpoint.admit(now, jws, &self.registry)? {
            Admitted::Duplicate(env) => {
                if let Some((t, _)) = self.answers.get(&(env.iss.clone(), env.mid.clone())) {
                    self.outputs.push_back(HomeOutput::Transmit(t.clone()));
                }
                return Ok(());
            }
            Admitted::Fresh(env) => env,
        };
        if let Some(t) = self.dispatch(now, &env)? {
            let keep = now.saturating_add(self.config.timeouts.linger);
            self.answers
                .insert((env.iss.clone(), env.mid.clone()), (t, keep));
        }
        Ok(())
    }

    fn dispatch(&mut self, now: Timestamp, env: &Envelope) -> Result<Option<Transmit>, Error> {
        let key: TxKey = (env.iss.clone(), env.tid.clone());
        match &env.body {
            Body::RoamUserRequest {
                subscriber,
                request_type,
            } => self.on_user_request(now, &key, *subscriber, *request_type),
            Body::Contract { contract } => self.on_contract(now, &key, contract),
            Body::PaymentResult { result } => {
                self.on_final(now, &key, &env.mid, Some(result), None)
            }
            Body::Receipt { receipt } => self.on_final(now, &key, &env.mid, None, Some(receipt)),
            Body::Error { code, detail, .. } => {
                self.abort(now, &key, *code, &format!("visited: {detail}"), false);
                Ok(None)
            }
            Body::RoamUserResponse { .. }
            | Body::ContractAck { .. }
            | Body::RoamSecurityResult { .. }
            | Body::PaymentAuthorization { .. }
            | Body::Ack { .. } => Err(Error::Message(
                ErrorCode::MessageInvalid,
                "message type not accepted by a home server",
            )),
        }
    }

    fn on_user_request(
        &mut self,
        now: Timestamp,
        key: &TxKey,
        subscriber: E164,
        request_type: RequestType,
    ) -> Result<Option<Transmit>, Error> {
        if self.txs.contains_key(key) {
            return Err(Error::Message(
                ErrorCode::TransactionDataInvalid,
                "transaction id already in use",
            ));
        }
        let record = self.store.subscriber(&subscriber)?;
        let (accept, reason, methods) = match &record {
            None => (false, Some(RejectReason::UnknownSubscriber), Vec::new()),
            Some(s) if s.pin_tries_left == 0 && request_type != RequestType::EndToEndSignature => {
                (false, Some(RejectReason::SubscriberBlocked), Vec::new())
            }
            Some(s) => match supports(s, request_type) {
                Ok(m) => (true, None, m),
                Err(r) => (false, Some(r), Vec::new()),
            },
        };
        if accept {
            self.txs.insert(
                key.clone(),
                HomeTx {
                    subscriber,
                    request_type,
                    contract: None,
                    session: None,
                    state: HomeTxState::Accepted,
                    pending: None,
                    deadline: now.saturating_add(self.config.timeouts.user),
                    ended_at: None,
                    wallet_key: None,
                    receipt: None,
                    contract_ack: None,
                    failure: None,
                },
            );
        }
        let body = Body::RoamUserResponse {
            subscriber,
            request_type,
            accept,
            reason,
            payment_methods: methods,
        };
        Ok(self.send(now, key, body, false))
    }

    fn on_contract(
        &mut self,
        now: Timestamp,
        key: &TxKey,
        contract: &Contract,
    ) -> Result<Option<Transmit>, Error> {
        let tx = self.txs.get(key).ok_or(Error::Message(
            ErrorCode::UnknownTransaction,
            "unknown transaction",
        ))?;
        if tx.state != HomeTxState::Accepted {
            // Same contract again (new message id): same answer. Another contract: refused.
            if tx.contract.as_ref() == Some(contract)
                && let Some(t) = tx.contract_ack.clone()
            {
                self.outputs.push_back(HomeOutput::Transmit(t.clone()));
                return Ok(Some(t));
            }
            return Err(Error::Message(
                ErrorCode::TransactionDataInvalid,
                "contract not expected now",
            ));
        }
        let bad = |why| Error::Message(ErrorCode::TransactionDataInvalid, why);
        if contract.transaction_id != key.1 || contract.request_type != tx.request_type {
            return Err(bad("contract does not match the transaction"));
        }
        if contract.merchant.is_empty()
            || contract.merchant.len() > 256
            || contract.text.len() > 16 * 1024
        {
            return Err(Error::Message(
                ErrorCode::FormatInvalid,
                "contract merchant or text",
            ));
        }
        if tx.request_type == RequestType::Payment {
            contract
                .amount
                .as_ref()
                .ok_or(bad("payment contract without amount"))?
                .validate()?;
            let record = self
                .store
                .subscriber(&tx.subscriber)?
                .ok_or(bad("subscriber gone"))?;
            if contract.payment_methods.is_empty()
                || !contract
                    .payment_methods
                    .iter()
                    .all(|m| record.payment_methods.contains(m))
            {
                return Err(bad("payment methods not offered to the subscriber"));
            }
        }
        let mut sid = [0u8; 16];
        self.rng.fill_bytes(&mut sid);
        let session = b64::encode(&sid);
        let user_url = format!(
            "{}/{}",
            self.config.user_base_url.trim_end_matches('/'),
            session
        );
        if let Some(tx) = self.txs.get_mut(key) {
            tx.contract = Some(contract.clone());
            tx.session = Some(session.clone());
            tx.state = HomeTxState::AwaitingUser;
        }
        self.sessions.insert(session, key.clone());
        let t = self.send(
            now,
            key,
            Body::ContractAck {
                contract_digest: contract.digest(),
                user_url,
            },
            false,
        );
        if let Some(tx) = self.txs.get_mut(key) {
            tx.contract_ack.clone_from(&t);
        }
        Ok(t)
    }

    fn on_final(
        &mut self,
        now: Timestamp,
        key: &TxKey,
        mid: &MessageId,
        result: Option<&PaymentResult>,
        receipt: Option<&Receipt>,
    ) -> Result<Option<Transmit>, Error> {
        let tx = self.txs.get_mut(key).ok_or(Error::Message(
            ErrorCode::UnknownTransaction,
            "unknown transaction",
        ))?;
        match tx.state {
            HomeTxState::ResultSent | HomeTxState::InDoubt | HomeTxState::Completed => {}
            _ => {
                return Err(Error::Message(
                    ErrorCode::TransactionDataInvalid,
                    "no result sent in this transaction",
                ));
            }
        }
        if (tx.request_type == RequestType::Payment) != result.is_some() {
            return Err(Error::Message(
                ErrorCode::TransactionDataInvalid,
                "wrong final message for this request type",
            ));
        }
        if tx.state != HomeTxState::Completed {
            let rec = result
                .map(|r| r.receipt.clone())
                .or_else(|| receipt.cloned());
            if let Some(r) = result
                && !r.approved
                && let Some(wk) = tx.wallet_key.clone()
            {
                let sub = tx.subscriber;
                self.store.wallet_reverse(&sub, &wk)?;
            }
            if let Some(tx) = self.txs.get_mut(key) {
                tx.receipt = rec;
                tx.state = HomeTxState::Completed;
                tx.pending = None;
                tx.ended_at = Some(now);
            }
        }
        Ok(self.send(
            now,
            key,
            Body::Ack {
                ack_of: mid.clone(),
            },
            false,
        ))
    }

    /// Ends a transaction that has not completed; gives back any wallet debit (the visited
    /// side only sends an error when it did not pay).
    fn abort(
        &mut self,
        now: Timestamp,
        key: &TxKey,
        code: ErrorCode,
        reason: &str,
        tell_visited: bool,
    ) {
        let Some(tx) = self.txs.get_mut(key) else {
            return;
        };
        if matches!(
            tx.state,
            HomeTxState::Completed | HomeTxState::Failed { .. }
        ) {
            return;
        }
        tx.state = HomeTxState::Failed { code };
        tx.pending = None;
        tx.ended_at = Some(now);
        tx.failure = Some((code, reason.to_owned()));
        let sub = tx.subscriber;
        if let Some(wk) = tx.wallet_key.clone() {
            // A store failure here leaves the debit standing; it is retried on the next abort
            // signal and visible in the ledger.
            let _ = self.store.wallet_reverse(&sub, &wk);
        }
        if tell_visited {
            self.send(
                now,
                key,
                Body::Error {
                    code,
                    detail: reason.to_owned(),
                    refers_to: None,
                },
                false,
            );
        }
    }

    fn user(&mut self, now: Timestamp, session: &str, request: UserRequest) -> UserReply {
        let Some(key) = self.sessions.get(session).cloned() else {
            return UserReply::UnknownSession;
        };
        let Some(tx) = self.txs.get(&key) else {
            return UserReply::UnknownSession;
        };
        let state = tx.state.clone();
        let request_type = tx.request_type;
        match (request, state) {
            (UserRequest::FetchContract, HomeTxState::AwaitingUser) => match tx.contract.clone() {
                Some(contract) => UserReply::Contract { contract },
                None => UserReply::Waiting,
            },
            (UserRequest::SubmitPin { pin, method }, HomeTxState::AwaitingUser) => {
                if request_type == RequestType::EndToEndSignature {
                    return UserReply::Refused {
                        reason: "this request needs the device's signature",
                    };
                }
                self.submit_pin(now, &key, &pin, method)
            }
            (UserRequest::SubmitDeviceSignature { signature }, HomeTxState::AwaitingUser) => {
                if request_type != RequestType::EndToEndSignature {
                    return UserReply::Refused {
                        reason: "this request needs the PIN",
                    };
                }
                self.submit_device_signature(now, &key, &signature)
            }
            (_, s) => self.status(&key, &s),
        }
    }

    fn status(&self, key: &TxKey, s: &HomeTxState) -> UserReply {
        let tx = self.txs.get(key);
        match s {
            HomeTxState::Accepted => UserReply::Waiting,
            HomeTxState::AwaitingUser => match tx.and_then(|t| t.contract.clone()) {
                Some(contract) => UserReply::Contract { contract },
                None => UserReply::Waiting,
            },
            HomeTxState::ResultSent | HomeTxState::InDoubt => UserReply::Submitted,
            HomeTxState::Completed => match tx.and_then(|t| t.receipt.clone()) {
                Some(receipt) => UserReply::Receipt { receipt },
                None => UserReply::Submitted,
            },
            HomeTxState::Failed { code } => UserReply::Failed {
                code: *code,
                reason: tx
                    .and_then(|t| t.failure.as_ref().map(|f| f.1.clone()))
                    .unwrap_or_default(),
            },
        }
    }

    fn submit_pin(
        &mut self,
        now: Timestamp,
        key: &TxKey,
        pin: &Pin,
        method: Option<PaymentMethod>,
    ) -> UserReply {
        let Some(tx) = self.txs.get(key) else {
            return UserReply::UnknownSession;
        };
        let sub = tx.subscriber;
        let Ok(Some(record)) = self.store.subscriber(&sub) else {
            return UserReply::Failed {
                code: ErrorCode::TransientFailure,
                reason: "subscriber store".into(),
            };
        };
        if record.pin_tries_left == 0 {
            self.abort(now, key, ErrorCode::AccessDenied, "PIN blocked", true);
            return UserReply::Blocked;
        }
        if !self.pin_key.check(&sub, pin, &record.pin_verifier) {
            let left = record.pin_tries_left.saturating_sub(1);
            if self.store.set_pin_tries_left(&sub, left).is_err() {
                return UserReply::Failed {
                    code: ErrorCode::TransientFailure,
                    reason: "subscriber store".into(),
                };
            }
            if left == 0 {
                self.abort(now, key, ErrorCode::AccessDenied, "PIN blocked", true);
                return UserReply::Blocked;
            }
            return UserReply::WrongPin { tries_left: left };
        }
        if record.pin_tries_left != self.config.max_pin_tries
            && self
                .store
                .set_pin_tries_left(&sub, self.config.max_pin_tries)
                .is_err()
        {
            return UserReply::Failed {
                code: ErrorCode::TransientFailure,
                reason: "subscriber store".into(),
            };
        }
        match self.make_result(now, key, &record, method) {
            Ok(Some(body)) => {
                if let Some(tx) = self.txs.get_mut(key) {
                    tx.state = HomeTxState::ResultSent;
                }
                self.send(now, key, body, true);
                UserReply::Submitted
            }
            Ok(None) => UserReply::InsufficientFunds,
            Err(UserFault(reason)) => UserReply::Refused { reason },
        }
    }

    /// The message carrying the outcome of a verified PIN; `Ok(None)` = wallet short of funds.
    fn make_result(
        &mut self,
        now: Timestamp,
        key: &TxKey,
        record: &Subscriber,
        method: Option<PaymentMethod>,
    ) -> Result<Option<Body>, UserFault> {
        let tx = self.txs.get(key).ok_or(UserFault("unknown transaction"))?;
        let contract = tx.contract.clone().ok_or(UserFault("no contract"))?;
        let sub = record.id;
        match tx.request_type {
            RequestType::Authentication => Ok(Some(Body::RoamSecurityResult {
                result: SecurityResult {
                    request_type: RequestType::Authentication,
                    subscriber: sub,
                    contract_digest: contract.digest(),
                    verified_at: now.as_unix_secs(),
                    signature: None,
                    subscriber_key: None,
                },
            })),
            RequestType::DigitalSignature => {
                let key = self
                    .store
                    .signing_key(&sub)
                    .ok()
                    .flatten()
                    .ok_or(UserFault("no signing key"))?;
                let sig: Signature = key.signing_key().sign(&contract.signing_bytes());
                Ok(Some(Body::RoamSecurityResult {
                    result: SecurityResult {
                        request_type: RequestType::DigitalSignature,
                        subscriber: sub,
                        contract_digest: contract.digest(),
                        verified_at: now.as_unix_secs(),
                        signature: Some(b64::encode(&sig.to_bytes())),
                        subscriber_key: Some(b64::encode(&keys::public_key_sec1(
                            &key.public_key(),
                        ))),
                    },
                }))
            }
            RequestType::EndToEndSignature => {
                Err(UserFault("this request needs the device's signature"))
            }
            RequestType::Payment => {
                let amount = contract.amount.clone().ok_or(UserFault("no amount"))?;
                let method = method
                    .or_else(|| contract.payment_methods.first().copied())
                    .ok_or(UserFault("no method"))?;
                if !contract.payment_methods.contains(&method) {
                    return Err(UserFault("method not offered"));
                }
                let instrument = match method {
                    PaymentMethod::Card => {
                        let card = self
                            .store
                            .card(&sub)
                            .ok()
                            .flatten()
                            .ok_or(UserFault("no card on file"))?;
                        let mut t = [0u8; 16];
                        self.rng.fill_bytes(&mut t);
                        let tok = TokenizedCard {
                            token: b64::encode(&t),
                            masked_pan: card.masked_pan(),
                            expires: now.saturating_add(self.config.token_ttl).as_unix_secs(),
                        };
                        match self
                            .registry
                            .partner(&key.0)
                            .and_then(|p| p.encryption_key().copied())
                        {
                            Some(ek) => {
                                let plain = serde_json::to_vec(&tok)
                                    .map_err(|_| UserFault("token encoding"))?;
                                let jwe =
                                    jwe::encrypt_compact(&ek, Some(&key.0), &plain, &mut self.rng)
                                        .map_err(|_| UserFault("encryption"))?;
                                PaymentInstrument::EncryptedToken { jwe }
                            }
                            None => PaymentInstrument::Token { card: tok },
                        }
                    }
                    PaymentMethod::Wallet => {
                        let wk = Self::wallet_key(&key.0, &key.1);
                        match self.store.wallet_debit(&sub, &wk, &amount) {
                            Ok(WalletDebit::Debited(debit_id)) => {
                                if let Some(tx) = self.txs.get_mut(key) {
                                    tx.wallet_key = Some(wk);
                                }
                                PaymentInstrument::Wallet { debit_id }
                            }
                            Ok(WalletDebit::InsufficientFunds) => return Ok(None),
                            Err(_) => return Err(UserFault("wallet unavailable")),
                        }
                    }
                };
                Ok(Some(Body::PaymentAuthorization {
                    authorization: PaymentAuthorization {
                        method,
                        amount,
                        contract_digest: contract.digest(),
                        instrument,
                    },
                }))
            }
        }
    }

    fn submit_device_signature(
        &mut self,
        now: Timestamp,
        key: &TxKey,
        signature: &str,
    ) -> UserReply {
        let Some(tx) = self.txs.get(key) else {
            return UserReply::UnknownSession;
        };
        let sub = tx.subscriber;
        let Some(contract) = tx.contract.clone() else {
            return UserReply::Waiting;
        };
        let Ok(Some(record)) = self.store.subscriber(&sub) else {
            return UserReply::Failed {
                code: ErrorCode::TransientFailure,
                reason: "subscriber store".into(),
            };
        };
        let Some(device_key) = record.device_key else {
            return UserReply::Refused {
                reason: "no registered device key",
            };
        };
        let sig = b64::decode(signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok());
        let ok = sig.is_some_and(|s| {
            VerifyingKey::from(&device_key)
                .verify(&contract.signing_bytes(), &s)
                .is_ok()
        });
        if !ok {
            let reason = "device signature does not verify over the contract";
            self.abort(now, key, ErrorCode::TransactionDataInvalid, reason, true);
            return UserReply::Failed {
                code: ErrorCode::TransactionDataInvalid,
                reason: reason.into(),
            };
        }
        let body = Body::RoamSecurityResult {
            result: SecurityResult {
                request_type: RequestType::EndToEndSignature,
                subscriber: sub,
                contract_digest: contract.digest(),
                verified_at: now.as_unix_secs(),
                signature: Some(signature.to_owned()),
                subscriber_key: Some(b64::encode(&keys::public_key_sec1(&device_key))),
            },
        };
        if let Some(tx) = self.txs.get_mut(key) {
            tx.state = HomeTxState::ResultSent;
        }
        self.send(now, key, body, true);
        UserReply::Submitted
    }

    fn timeout(&mut self, now: Timestamp) {
        let t = self.config.timeouts;
        let keys: Vec<TxKey> = self.txs.keys().cloned().collect();
        for key in keys {
            let Some(tx) = self.txs.get_mut(&key) else {
                continue;
            };
            match tx.state {
                HomeTxState::Accepted | HomeTxState::AwaitingUser => {
                    if now >= tx.deadline {
                        self.abort(
                            now,
                            &key,
                            ErrorCode::Timeout,
                            "user did not complete in time",
                            true,
                        );
                    }
                }
                HomeTxState::ResultSent => {
                    if let Some(p) = tx.pending.as_mut() {
                        if let Some(tr) = p.due(now, &t) {
                            self.outputs.push_back(HomeOutput::Transmit(tr));
                        } else if now >= p.give_up_at {
                            tx.pending = None;
                            tx.state = HomeTxState::InDoubt;
                            tx.ended_at = Some(now);
                        }
                    }
                }
                HomeTxState::Completed | HomeTxState::Failed { .. } | HomeTxState::InDoubt => {
                    if tx
                        .ended_at
                        .is_some_and(|e| now >= e.saturating_add(t.linger))
                    {
                        if let Some(s) = &tx.session {
                            self.sessions.remove(s);
                        }
                        self.txs.remove(&key);
                    }
                }
            }
        }
        self.answers.retain(|_, (_, keep)| *keep > now);
        self.endpoint.purge(now);
    }
}

/// A user-side problem that leaves the transaction waiting for the user.
struct UserFault(&'static str);

/// Whether the subscriber can do `t`; for payments, the methods to offer.
fn supports(s: &Subscriber, t: RequestType) -> Result<Vec<PaymentMethod>, RejectReason> {
    match t {
        RequestType::Authentication => Ok(Vec::new()),
        RequestType::DigitalSignature if s.has_signing_key => Ok(Vec::new()),
        RequestType::EndToEndSignature if s.device_key.is_some() => Ok(Vec::new()),
        RequestType::Payment if !s.payment_methods.is_empty() => Ok(s.payment_methods.clone()),
        RequestType::Payment => Err(RejectReason::NoPaymentMethod),
        _ => Err(RejectReason::RequestTypeNotSupported),
    }
}
