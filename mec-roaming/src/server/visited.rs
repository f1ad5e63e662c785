//! The visited MeC server: serves a content provider for a subscriber it does not know by
//! locating the subscriber's home server and letting it do every security step.

use core::time::Duration;
use std::collections::{HashMap, HashSet, VecDeque};

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};

use super::common::{Pending, Timeouts, Transmit, Undeliverable, min_deadline, seal_to};
use crate::e164::{E164, NormalizeOptions};
use crate::error::{Error, ErrorCode};
use crate::jose::{b64, jwe, keys};
use crate::locator::{HomeCache, locate};
use crate::message::{
    Amount, Body, Contract, Envelope, MessageId, PaymentAuthorization, PaymentInstrument,
    PaymentMethod, PaymentResult, Receipt, RejectReason, RequestType, SecurityResult,
    TokenizedCard, TransactionId,
};
use crate::registry::Registry;
use crate::security::{Admitted, Endpoint};
use crate::time::Timestamp;

/// Visited server settings.
#[derive(Clone, Debug)]
pub struct VisitedConfig {
    /// Timers.
    pub timeouts: Timeouts,
    /// How subscriber ids from content providers are normalized.
    pub normalize: NormalizeOptions,
    /// How long a located home is remembered.
    pub home_cache_ttl: Duration,
    /// Most numbers in the home cache.
    pub home_cache_capacity: usize,
}

impl Default for VisitedConfig {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            normalize: NormalizeOptions::default(),
            home_cache_ttl: Duration::from_secs(3600),
            home_cache_capacity: 100_000,
        }
    }
}

/// A content provider's request (patent Fig. 5 step 1 / Fig. 6).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StartRequest {
    /// The content provider's own reference, echoed in every notification.
    pub cp_ref: String,
    /// Subscriber id as the content provider has it (normalized to E.164 here).
    pub subscriber: String,
    /// What is asked.
    pub request_type: RequestType,
    /// Content provider (merchant) name shown to the user.
    pub merchant: String,
    /// Contract text (security requests) or purchase description (payments).
    pub text: String,
    /// Amount (payments only).
    pub amount: Option<Amount>,
    /// Payment methods the content provider accepts, in its order of preference (payments).
    pub accepted_methods: Vec<PaymentMethod>,
    /// Where the user continues after the receipt.
    pub continue_url: String,
}

/// What the content provider is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpEvent {
    /// The request was accepted; this is its transaction id.
    Started,
    /// The user agent was sent to the home server.
    UserRedirected {
        /// Where.
        url: String,
    },
    /// Security request done (Fig. 5 step 16): the verified result.
    SecurityCompleted {
        /// The result (with the subscriber's signature for the signature kinds).
        result: SecurityResult,
    },
    /// Payment approved.
    Paid {
        /// Acquirer approval code.
        authorization_code: String,
        /// Method used.
        method: PaymentMethod,
        /// Amount.
        amount: Amount,
    },
    /// Payment declined by the acquirer.
    Declined {
        /// Why.
        reason: String,
    },
    /// The transaction failed or was aborted.
    Failed {
        /// Wire code.
        code: ErrorCode,
        /// Detail.
        reason: String,
    },
}

/// Inputs of the visited server.
#[derive(Clone, Debug)]
pub enum VisitedInput {
    /// A content provider starts a transaction.
    Start(StartRequest),
    /// A message arrived from a partner (the body of its HTTP POST).
    Receive {
        /// Compact JWS.
        jws: String,
    },
    /// The transport gave up on a message this server sent (see [`Undeliverable`]). While
    /// locating the home, an undeliverable roamUserRequest counts as no Accept from that
    /// candidate and the next one is asked; an undeliverable contract aborts the transaction
    /// (405 connection failure, or 404 permanent failure for a refusal) and notifies the content
    /// provider as a deadline would; an undeliverable final answer (payment result, receipt) is
    /// re-sent on the timer, or no longer when refused. Anything else changes nothing.
    Undeliverable(Undeliverable),
    /// Time passed (call at or after [`VisitedServer::poll_timeout`]).
    Timeout,
}

/// Outputs of the visited server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VisitedOutput {
    /// Send a message to a partner.
    Transmit(Transmit),
    /// Redirect the user agent (Fig. 5 step 9).
    RedirectUser {
        /// Transaction.
        tid: TransactionId,
        /// Home server URL for this transaction.
        url: String,
    },
    /// Notify the content provider.
    ContentProvider {
        /// The content provider's reference.
        cp_ref: String,
        /// Transaction.
        tid: TransactionId,
        /// What happened.
        event: CpEvent,
    },
}

/// Payment to perform with the acquirer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentInstruction {
    /// Transaction (the idempotency key).
    pub tid: TransactionId,
    /// Merchant to credit.
    pub merchant: String,
    /// Amount.
    pub amount: Amount,
    /// Method.
    pub method: PaymentMethod,
    /// Tokenized card (card payments).
    pub card: Option<TokenizedCard>,
    /// Home partner and its wallet debit id (wallet payments: funds moved from the wallet
    /// at home to the merchant's account).
    pub wallet_debit: Option<(String, String)>,
}

/// Result of an acquirer call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcquirerOutcome {
    /// Approved with this code.
    Approved {
        /// Approval code.
        authorization_code: String,
    },
    /// Declined.
    Declined {
        /// Why.
        reason: String,
    },
}

/// The visited side's acquirer. Implementations must be idempotent per [`PaymentInstruction::tid`]:
/// a repeated instruction returns the first outcome and moves no money.
pub trait Acquirer {
    /// Performs (or recalls) the payment.
    fn execute(&mut self, instruction: &PaymentInstruction) -> AcquirerOutcome;
}

/// In-memory acquirer for tests and simulations: approves each transaction once, refuses reused
/// tokens, and keeps merchant balances.
#[derive(Clone, Debug, Default)]
pub struct MemoryAcquirer {
    outcomes: HashMap<TransactionId, AcquirerOutcome>,
    used_tokens: HashSet<String>,
    /// Credited total per merchant.
    pub merchant_balances: HashMap<String, u64>,
    /// Payments moved (one per approved transaction).
    pub payments: Vec<PaymentInstruction>,
    /// Decline amounts above this value.
    pub limit: Option<u64>,
}

impl Acquirer for MemoryAcquirer {
    fn execute(&mut self, ins: &PaymentInstruction) -> AcquirerOutcome {
        if let Some(o) = self.outcomes.get(&ins.tid) {
            return o.clone();
        }
        let outcome = if self.limit.is_some_and(|l| ins.amount.value > l) {
            AcquirerOutcome::Declined {
                reason: "amount over limit".into(),
            }
        } else if let Some(card) = &ins.card
            && !self.used_tokens.insert(card.token.clone())
        {
            AcquirerOutcome::Declined {
                reason: "token already used".into(),
            }
        } else if ins.card.is_none() && ins.wallet_debit.is_none() {
            AcquirerOutcome::Declined {
                reason: "no instrument".into(),
            }
        } else {
            let bal = self
                .merchant_balances
                .entry(ins.merchant.clone())
                .or_insert(0);
            *bal = bal.saturating_add(ins.amount.value);
            self.payments.push(ins.clone());
            AcquirerOutcome::Approved {
                authorization_code: format!("A{:05}", self.payments.len()),
            }
        };
        self.outcomes.insert(ins.tid.clone(), outcome.clone());
        outcome
    }
}

/// Where a visited transaction stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VisitedTxState {
    /// Asking home candidates in turn (Fig. 5 steps 1-5).
    Locating {
        /// Candidate partner names, in order.
        candidates: Vec<String>,
        /// The one being asked.
        index: usize,
    },
    /// Contract sent to home (step 8); awaiting its acknowledgement.
    AwaitingContractAck {
        /// Home partner.
        home: String,
    },
    /// User redirected to home (step 9); awaiting the result or payment authorization.
    AwaitingUser {
        /// Home partner.
        home: String,
    },
    /// Outcome known and reported to the content provider; receipt or payment result sent to
    /// home, awaiting its acknowledgement.
    Finishing {
        /// Home partner.
        home: String,
    },
    /// Done and acknowledged.
    Completed,
    /// Failed or aborted.
    Failed {
        /// Why.
        code: ErrorCode,
    },
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct VisitedTx {
    cp_ref: String,
    subscriber: E164,
    request: StartRequest,
    contract: Option<Contract>,
    state: VisitedTxState,
    pending: Option<Pending>,
    /// Deadline of the current home attempt (Locating, AwaitingContractAck).
    attempt_deadline: Option<Timestamp>,
    /// Deadline of the whole transaction.
    deadline: Timestamp,
    /// Final answer to home (payment result or receipt), re-sent for any repeated result.
    final_answer: Option<Transmit>,
    /// When the transaction ended (for lingering).
    ended_at: Option<Timestamp>,
    /// Some home candidate never answered.
    silent_candidate: bool,
    /// Some home candidate could not be reached (transport gave up on the roamUserRequest).
    #[serde(default)]
    unreachable_candidate: bool,
    /// Some home candidate refused the roamUserRequest outright.
    #[serde(default)]
    refusing_candidate: bool,
}

/// Everything a visited server must keep across a restart besides its keys, registry and
/// acquirer: transactions, cached answers, the replay cache and the home cache. Opaque;
/// serialize it (JSON) into durable storage after inputs, restore it at start.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct VisitedSnapshot {
    txs: Vec<(TransactionId, VisitedTx)>,
    answers: Vec<((String, MessageId), (Transmit, Timestamp))>,
    replay: crate::security::ReplayCache,
    cache: HomeCache,
}

/// The visited server state machine.
#[derive(Debug)]
pub struct VisitedServer<A: Acquirer, R: rand_core::CryptoRng> {
    endpoint: Endpoint,
    registry: Registry,
    cache: HomeCache,
    acquirer: A,
    config: VisitedConfig,
    rng: R,
    txs: HashMap<TransactionId, VisitedTx>,
    /// Answers to admitted messages, re-sent for their duplicates until the expiry time.
    answers: HashMap<(String, MessageId), (Transmit, Timestamp)>,
    outputs: VecDeque<VisitedOutput>,
}

impl<A: Acquirer, R: rand_core::CryptoRng> VisitedServer<A, R> {
    /// A visited server with identity `endpoint`, partners `registry`, an acquirer and the
    /// random generator for transaction ids, message ids and key agreement.
    pub fn new(
        config: VisitedConfig,
        endpoint: Endpoint,
        registry: Registry,
        acquirer: A,
        rng: R,
    ) -> Self {
        let cache = HomeCache::new(config.home_cache_ttl, config.home_cache_capacity);
        Self {
            endpoint,
            registry,
            cache,
            acquirer,
            config,
            rng,
            txs: HashMap::new(),
            answers: HashMap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// The partner registry.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The state to persist (see [`VisitedSnapshot`]).
    #[must_use]
    pub fn snapshot(&self) -> VisitedSnapshot {
        let mut txs: Vec<_> = self
            .txs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        txs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut answers: Vec<_> = self
            .answers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        answers.sort_by(|a, b| a.0.cmp(&b.0));
        VisitedSnapshot {
            txs,
            answers,
            replay: self.endpoint.replay_cache().clone(),
            cache: self.cache.clone(),
        }
    }

    /// Replaces this server's state with a snapshot (at start, before any input). Pending
    /// retransmissions and deadlines resume with the next [`VisitedInput::Timeout`].
    pub fn restore(&mut self, snapshot: VisitedSnapshot) {
        self.txs = snapshot.txs.into_iter().collect();
        self.answers = snapshot.answers.into_iter().collect();
        self.endpoint.restore_replay_cache(snapshot.replay);
        self.cache = snapshot.cache;
        self.outputs.clear();
    }

    /// Takes the acquirer back (shutting the machine down).
    pub fn into_acquirer(self) -> A {
        self.acquirer
    }

    /// The partner registry, to apply updates.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The acquirer.
    #[must_use]
    pub fn acquirer(&self) -> &A {
        &self.acquirer
    }

    /// The state of a transaction.
    #[must_use]
    pub fn state(&self, tid: &TransactionId) -> Option<&VisitedTxState> {
        self.txs.get(tid).map(|t| &t.state)
    }

    /// Transactions known (including lingering finished ones).
    pub fn transactions(&self) -> impl Iterator<Item = (&TransactionId, &VisitedTxState)> {
        self.txs.iter().map(|(k, t)| (k, &t.state))
    }

    /// The home cache.
    #[must_use]
    pub fn home_cache(&self) -> &HomeCache {
        &self.cache
    }

    /// Starts a transaction and returns its id (same as `handle_input(now, Start(req))`).
    ///
    /// # Errors
    /// [`Error::E164`] for a subscriber id that is not a number, [`Error::Message`] with
    /// [`ErrorCode::FormatInvalid`] for a payment without a valid amount or method.
    pub fn start(&mut self, now: Timestamp, req: StartRequest) -> Result<TransactionId, Error> {
        let subscriber = E164::normalize(&req.subscriber, &self.config.normalize)?;
        if req.request_type == RequestType::Payment {
            req.amount
                .as_ref()
                .ok_or(Error::Message(
                    ErrorCode::RequiredElementMissing,
                    "payment amount",
                ))?
                .validate()?;
            if req.accepted_methods.is_empty() {
                return Err(Error::Message(
                    ErrorCode::RequiredElementMissing,
                    "accepted payment methods",
                ));
            }
        }
        let tid = TransactionId::random(&mut self.rng);
        let candidates = locate(&self.registry, &self.cache, now, &subscriber);
        let tx = VisitedTx {
            cp_ref: req.cp_ref.clone(),
            subscriber,
            request: req,
            contract: None,
            state: VisitedTxState::Locating {
                candidates,
                index: 0,
            },
            pending: None,
            attempt_deadline: None,
            deadline: now.saturating_add(self.config.timeouts.user),
            final_answer: None,
            ended_at: None,
            silent_candidate: false,
            unreachable_candidate: false,
            refusing_candidate: false,
        };
        let cp_ref = tx.cp_ref.clone();
        self.txs.insert(tid.clone(), tx);
        self.outputs.push_back(VisitedOutput::ContentProvider {
            cp_ref,
            tid: tid.clone(),
            event: CpEvent::Started,
        });
        self.ask_candidate(now, &tid);
        Ok(tid)
    }

    /// Feeds one input.
    ///
    /// # Errors
    /// For `Start`, as [`start`](Self::start). For `Receive`, the refusal to answer the sender
    /// with (the message changed nothing): see [`Endpoint::admit`], plus
    /// [`ErrorCode::UnknownTransaction`] and [`ErrorCode::TransactionDataInvalid`].
    pub fn handle_input(&mut self, now: Timestamp, input: VisitedInput) -> Result<(), Error> {
        match input {
            VisitedInput::Start(req) => self.start(now, req).map(|_| ()),
            VisitedInput::Receive { jws } => self.receive(now, &jws),
            VisitedInput::Undeliverable(u) => {
                self.undeliverable(now, &u);
                Ok(())
            }
            VisitedInput::Timeout => {
                self.timeout(now);
                Ok(())
            }
        }
    }

    /// Next output, or `None` when there is nothing to do until the next input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<VisitedOutput> {
        self.outputs.pop_front()
    }

    /// When [`VisitedInput::Timeout`] must be fed next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let mut d = None;
        for tx in self.txs.values() {
            match &tx.state {
                VisitedTxState::Completed | VisitedTxState::Failed { .. } => {
                    d = min_deadline(
                        d,
                        tx.ended_at
                            .map(|e| e.saturating_add(self.config.timeouts.linger)),
                    );
                }
                // The outcome is known; only the re-sends of the result and the moment to give
                // up on home's acknowledgement matter (the overall deadline is not acted on
                // here, so reporting it would make a driver spin once it has passed).
                VisitedTxState::Finishing { .. } => {
                    d = min_deadline(d, tx.pending.as_ref().map(|p| p.next_at.min(p.give_up_at)));
                }
                _ => {
                    d = min_deadline(d, Some(tx.deadline));
                    d = min_deadline(d, tx.attempt_deadline);
                    d = min_deadline(d, tx.pending.as_ref().and_then(Pending::deadline));
                }
            }
        }
        min_deadline(d, self.answers.values().map(|(_, keep)| *keep).min())
    }

    fn send(
        &mut self,
        now: Timestamp,
        tid: &TransactionId,
        to: &str,
        body: Body,
        track: bool,
    ) -> Option<Transmit> {
        let mid = MessageId::random(&mut self.rng);
        let (t, mid) = match seal_to(&self.endpoint, &self.registry, now, mid, tid, to, body) {
            Ok(x) => x,
            Err(_) => return None,
        };
        if track && let Some(tx) = self.txs.get_mut(tid) {
            tx.pending = Some(Pending {
                transmit: t.clone(),
                mid,
                next_at: now.saturating_add(self.config.timeouts.retransmit),
                give_up_at: now.saturating_add(self.config.timeouts.give_up),
            });
        }
        self.outputs.push_back(VisitedOutput::Transmit(t.clone()));
        Some(t)
    }

    fn notify(&mut self, tid: &TransactionId, event: CpEvent) {
        if let Some(tx) = self.txs.get(tid) {
            self.outputs.push_back(VisitedOutput::ContentProvider {
                cp_ref: tx.cp_ref.clone(),
                tid: tid.clone(),
                event,
            });
        }
    }

    fn fail(
        &mut self,
        now: Timestamp,
        tid: &TransactionId,
        code: ErrorCode,
        reason: &str,
        tell_home: Option<String>,
    ) {
        let Some(tx) = self.txs.get_mut(tid) else {
            return;
        };
        if matches!(
            tx.state,
            VisitedTxState::Completed
                | VisitedTxState::Failed { .. }
                | VisitedTxState::Finishing { .. }
        ) {
            return;
        }
        tx.state = VisitedTxState::Failed { code };
        tx.pending = None;
        tx.attempt_deadline = None;
        tx.ended_at = Some(now);
        self.notify(
            tid,
            CpEvent::Failed {
                code,
                reason: reason.to_owned(),
            },
        );
        if let Some(home) = tell_home {
            let body = Body::Error {
                code,
                detail: reason.to_owned(),
                refers_to: None,
            };
            if let Some(t) = self.send(now, tid, &home, body, false)
                && let Some(tx) = self.txs.get_mut(tid)
            {
                // Any later result from home is answered with this error.
                tx.final_answer = Some(t);
            }
        }
    }

    fn ask_candidate(&mut self, now: Timestamp, tid: &TransactionId) {
        let Some(tx) = self.txs.get(tid) else { return };
        let VisitedTxState::Locating { candidates, index } = &tx.state else {
            return;
        };
        let Some(home) = candidates.get(*index).cloned() else {
            // No candidate accepted. The most telling reason wins: a candidate that could not
            // be reached or never answered may have been the home.
            let (code, why) = if tx.unreachable_candidate {
                (
                    ErrorCode::ConnectionFailure,
                    "no home server accepted the subscriber; a candidate could not be reached",
                )
            } else if tx.silent_candidate {
                (ErrorCode::Timeout, "no home server answered in time")
            } else if tx.refusing_candidate {
                (
                    ErrorCode::PermanentFailure,
                    "no home server accepted the subscriber; a candidate refused the request",
                )
            } else {
                (
                    ErrorCode::AccessDenied,
                    "no home server accepted the subscriber",
                )
            };
            self.fail(now, tid, code, why, None);
            return;
        };
        let body = Body::RoamUserRequest {
            subscriber: tx.subscriber,
            request_type: tx.request.request_type,
        };
        if self.send(now, tid, &home, body, true).is_none() {
            self.next_candidate(now, tid);
            return;
        }
        if let Some(tx) = self.txs.get_mut(tid) {
            tx.attempt_deadline = Some(now.saturating_add(self.config.timeouts.home_response));
        }
    }

    fn next_candidate(&mut self, now: Timestamp, tid: &TransactionId) {
        if let Some(tx) = self.txs.get_mut(tid)
            && let VisitedTxState::Locating { index, .. } = &mut tx.state
        {
            *index += 1;
            tx.pending = None;
            tx.attempt_deadline = None;
        }
        self.ask_candidate(now, tid);
    }

    /// Acts on a transport failure report; only the message the transaction waits on counts.
    fn undeliverable(&mut self, now: Timestamp, u: &Undeliverable) {
        let Some(tx) = self.txs.get_mut(&u.tid) else {
            return;
        };
        if !tx.pending.as_ref().is_some_and(|p| u.is_about(&p.transmit)) {
            return; // late, duplicate, or about a message nothing waits on
        }
        match tx.state.clone() {
            VisitedTxState::Locating { .. } => {
                // No Accept from this candidate: on to the next one in the defined order.
                if u.permanent {
                    tx.refusing_candidate = true;
                } else {
                    tx.unreachable_candidate = true;
                }
                let number = tx.subscriber;
                if self.cache.lookup(now, &number) == Some(u.to.as_str()) {
                    self.cache.forget(&number);
                }
                self.next_candidate(now, &u.tid);
            }
            VisitedTxState::AwaitingContractAck { home } => {
                let reason = if u.permanent {
                    format!("home refused the contract: {}", u.reason)
                } else {
                    format!("home could not be reached with the contract: {}", u.reason)
                };
                self.fail(now, &u.tid, u.code(), &reason, Some(home));
            }
            VisitedTxState::Finishing { .. } => {
                // The outcome is known and reported. A refused final answer is not sent again;
                // an unreachable home gets it again on the timer until it acknowledges or the
                // give-up time passes (its wallet may depend on it).
                if u.permanent {
                    tx.pending = None;
                    tx.state = VisitedTxState::Completed;
                }
            }
            VisitedTxState::AwaitingUser { .. }
            | VisitedTxState::Completed
            | VisitedTxState::Failed { .. } => {}
        }
    }

    fn receive(&mut self, now: Timestamp, jws: &str) -> Result<(), Error> {
        let env = match self.endpoint.admit(now, jws, &self.registry)? {
            Admitted::Duplicate(env) => {
                if let Some((t, _)) = self.answers.get(&(env.iss.clone(), env.mid.clone())) {
                    self.outputs.push_back(VisitedOutput::Transmit(t.clone()));
                }
                return Ok(());
            }
            Admitted::Fresh(env) => env,
        };
        let answer = self.dispatch(now, &env)?;
        if let Some(t) = answer {
            let keep = now.saturating_add(self.config.timeouts.linger);
            self.answers
                .insert((env.iss.clone(), env.mid.clone()), (t, keep));
        }
        Ok(())
    }

    /// Acts on a fresh message; returns the answer to cache for its duplicates.
    fn dispatch(&mut self, now: Timestamp, env: &Envelope) -> Result<Option<Transmit>, Error> {
        let tid = env.tid.clone();
        let Some(tx) = self.txs.get(&tid) else {
            return Err(Error::Message(
                ErrorCode::UnknownTransaction,
                "unknown transaction",
            ));
        };
        let expected = match &tx.state {
            VisitedTxState::Locating { candidates, index } => candidates.get(*index).cloned(),
            VisitedTxState::AwaitingContractAck { home }
            | VisitedTxState::AwaitingUser { home }
            | VisitedTxState::Finishing { home } => Some(home.clone()),
            VisitedTxState::Completed | VisitedTxState::Failed { .. } => {
                // Finished: a repeated result gets the final answer again; nothing else happens.
                if let Some(t) = tx.final_answer.clone()
                    && t.to == env.iss
                    && matches!(
                        env.body,
                        Body::RoamSecurityResult { .. } | Body::PaymentAuthorization { .. }
                    )
                {
                    self.outputs.push_back(VisitedOutput::Transmit(t.clone()));
                    return Ok(Some(t));
                }
                return Ok(None);
            }
        };
        if expected.as_deref() != Some(env.iss.as_str()) {
            return Err(Error::Message(
                ErrorCode::AccessDenied,
                "sender is not this transaction's home",
            ));
        }
        let home = env.iss.clone();
        match &env.body {
            Body::RoamUserResponse {
                subscriber,
                request_type,
                accept,
                reason,
                payment_methods,
            } => {
                self.on_user_response(
                    now,
                    &tid,
                    &home,
                    *subscriber,
                    *request_type,
                    *accept,
                    *reason,
                    payment_methods,
                )?;
                Ok(None)
            }
            Body::ContractAck {
                contract_digest,
                user_url,
            } => {
                self.on_contract_ack(now, &tid, contract_digest, user_url)?;
                Ok(None)
            }
            Body::RoamSecurityResult { result } => {
                self.on_security_result(now, &tid, &home, result)
            }
            Body::PaymentAuthorization { authorization } => {
                self.on_payment_authorization(now, &tid, &home, authorization)
            }
            Body::Ack { ack_of } => {
                if let Some(tx) = self.txs.get_mut(&tid)
                    && matches!(tx.state, VisitedTxState::Finishing { .. })
                    && tx.pending.as_ref().is_some_and(|p| &p.mid == ack_of)
                {
                    tx.state = VisitedTxState::Completed;
                    tx.pending = None;
                    tx.ended_at = Some(now);
                }
                Ok(None)
            }
            Body::Error { code, detail, .. } => {
                let st = self.txs.get(&tid).map(|t| t.state.clone());
                match st {
                    Some(VisitedTxState::Locating { .. }) => self.next_candidate(now, &tid),
                    Some(VisitedTxState::Finishing { .. }) => {}
                    _ => self.fail(now, &tid, *code, &format!("home: {detail}"), None),
                }
                Ok(None)
            }
            Body::RoamUserRequest { .. }
            | Body::Contract { .. }
            | Body::PaymentResult { .. }
            | Body::Receipt { .. } => Err(Error::Message(
                ErrorCode::MessageInvalid,
                "message type not accepted by a visited server",
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_user_response(
        &mut self,
        now: Timestamp,
        tid: &TransactionId,
        home: &str,
        subscriber: E164,
        request_type: RequestType,
        accept: bool,
        reason: Option<RejectReason>,
        methods: &[PaymentMethod],
    ) -> Result<(), Error> {
        let Some(tx) = self.txs.get(tid) else {
            return Ok(());
        };
        if !matches!(tx.state, VisitedTxState::Locating { .. }) {
            return Ok(()); // late duplicate answer: already moved on
        }
        if subscriber != tx.subscriber || request_type != tx.request.request_type {
            return Err(Error::Message(
                ErrorCode::TransactionDataInvalid,
                "roamUserResponse does not match the request",
            ));
        }
        let number = tx.subscriber;
        if !accept {
            self.cache.forget(&number);
            if reason == Some(RejectReason::SubscriberBlocked) {
                // The home knows the subscriber; asking others would be pointless.
                self.fail(
                    now,
                    tid,
                    ErrorCode::AccessDenied,
                    "subscriber blocked at home",
                    None,
                );
                return Ok(());
            }
            self.next_candidate(now, tid);
            return Ok(());
        }
        self.cache.remember(now, number, home);
        let req = tx.request.clone();
        let mut offered = Vec::new();
        if req.request_type == RequestType::Payment {
            for m in &req.accepted_methods {
                if methods.contains(m) && !offered.contains(m) {
                    offered.push(*m);
                }
            }
            if offered.is_empty() {
                self.fail(
                    now,
                    tid,
                    ErrorCode::TransactionDataInvalid,
                    "no payment method in common",
                    Some(home.to_owned()),
                );
                return Ok(());
            }
        }
        let contract = Contract {
            transaction_id: tid.clone(),
            request_type: req.request_type,
            merchant: req.merchant.clone(),
            text: req.text.clone(),
            amount: if req.request_type == RequestType::Payment {
                req.amount.clone()
            } else {
                None
            },
            payment_methods: offered,
            created: now.as_unix_secs(),
        };
        if let Some(tx) = self.txs.get_mut(tid) {
            tx.contract = Some(contract.clone());
            tx.state = VisitedTxState::AwaitingContractAck {
                home: home.to_owned(),
            };
            tx.attempt_deadline = Some(now.saturating_add(self.config.timeouts.home_response));
        }
        self.send(now, tid, home, Body::Contract { contract }, true);
        Ok(())
    }

    fn on_contract_ack(
        &mut self,
        now: Timestamp,
        tid: &TransactionId,
        digest: &str,
        user_url: &str,
    ) -> Result<(), Error> {
        let Some(tx) = self.txs.get_mut(tid) else {
            return Ok(());
        };
        let VisitedTxState::AwaitingContractAck { home } = &tx.state else {
            return Ok(());
        };
        let ours = tx
            .contract
            .as_ref()
            .map(Contract::digest)
            .unwrap_or_default();
        if ours != digest {
            return Err(Error::Message(
                ErrorCode::TransactionDataInvalid,
                "contractAck digest differs",
            ));
        }
        if !(user_url.starts_with("https://") || user_url.starts_with("http://")) {
            return Err(Error::Message(ErrorCode::FormatInvalid, "user URL"));
        }
        tx.state = VisitedTxState::AwaitingUser { home: home.clone() };
        tx.pending = None;
        tx.attempt_deadline = None;
        let _ = now;
        self.outputs.push_back(VisitedOutput::RedirectUser {
            tid: tid.clone(),
            url: user_url.to_owned(),
        });
        self.notify(
            tid,
            CpEvent::UserRedirected {
                url: user_url.to_owned(),
            },
        );
        Ok(())
    }

    fn check_result_state(&self, tid: &TransactionId) -> Result<&VisitedTx, Error> {
        let tx = self.txs.get(tid).ok_or(Error::Message(
            ErrorCode::UnknownTransaction,
            "unknown transaction",
        ))?;
        match tx.state {
            // A lost contractAck does not block a result that proves home has the contract.
            VisitedTxState::AwaitingUser { .. } | VisitedTxState::AwaitingContractAck { .. } => {
                Ok(tx)
            }
            _ => Err(Error::Message(
                ErrorCode::TransactionDataInvalid,
                "no result expected in this state",
            )),
        }
    }

    fn finish(
        &mut self,
        now: Timestamp,
        tid: &TransactionId,
        home: &str,
        body: Body,
        event: CpEvent,
    ) -> Option<Transmit> {
        if let Some(tx) = self.txs.get_mut(tid) {
            tx.state = VisitedTxState::Finishing {
                home: home.to_owned(),
            };
            tx.attempt_deadline = None;
            tx.ended_at = Some(now);
        }
        self.notify(tid, event);
        let t = self.send(now, tid, home, body, true);
        if let Some(tx) = self.txs.get_mut(tid) {
            tx.final_answer.clone_from(&t);
        }
        t
    }

    fn on_security_result(
        &mut self,
        now: Timestamp,
        tid: &TransactionId,
        home: &str,
        r: &SecurityResult,
    ) -> Result<Option<Transmit>, Error> {
        let tx = self.check_result_state(tid)?;
        let contract = tx.contract.clone().ok_or(Error::Message(
            ErrorCode::TransactionDataInvalid,
            "no contract",
        ))?;
        let check = verify_security_result(&contract, tx.subscriber, r);
        if let Err(e) = check {
            let code = ErrorCode::from(&e);
            self.fail(
                now,
                tid,
                code,
                "security result refused",
                Some(home.to_owned()),
            );
            return Err(e);
        }
        let receipt = Receipt {
            merchant: contract.merchant.clone(),
            outcome: "confirmed".into(),
            amount: None,
            continue_url: tx.request.continue_url.clone(),
            issued_at: now.as_unix_secs(),
        };
        Ok(self.finish(
            now,
            tid,
            home,
            Body::Receipt { receipt },
            CpEvent::SecurityCompleted { result: r.clone() },
        ))
    }

    fn on_payment_authorization(
        &mut self,
        now: Timestamp,
        tid: &TransactionId,
        home: &str,
        a: &PaymentAuthorization,
    ) -> Result<Option<Transmit>, Error> {
        let tx = self.check_result_state(tid)?;
        let contract = tx.contract.clone().ok_or(Error::Message(
            ErrorCode::TransactionDataInvalid,
            "no contract",
        ))?;
        let continue_url = tx.request.continue_url.clone();
        let card = match self.check_authorization(&contract, a) {
            Ok(c) => c,
            Err(e) => {
                self.fail(
                    now,
                    tid,
                    ErrorCode::from(&e),
                    "payment authorization refused",
                    Some(home.to_owned()),
                );
                return Err(e);
            }
        };
        let wallet_debit = match &a.instrument {
            PaymentInstrument::Wallet { debit_id } => Some((home.to_owned(), debit_id.clone())),
            _ => None,
        };
        let ins = PaymentInstruction {
            tid: tid.clone(),
            merchant: contract.merchant.clone(),
            amount: a.amount.clone(),
            method: a.method,
            card,
            wallet_debit,
        };
        let outcome = self.acquirer.execute(&ins);
        let (approved, code, reason, event) = match outcome {
            AcquirerOutcome::Approved { authorization_code } => (
                true,
                Some(authorization_code.clone()),
                None,
                CpEvent::Paid {
                    authorization_code,
                    method: a.method,
                    amount: a.amount.clone(),
                },
            ),
            AcquirerOutcome::Declined { reason } => (
                false,
                None,
                Some(reason.clone()),
                CpEvent::Declined { reason },
            ),
        };
        let receipt = Receipt {
            merchant: contract.merchant,
            outcome: if approved {
                "paid".into()
            } else {
                "declined".into()
            },
            amount: Some(a.amount.clone()),
            continue_url,
            issued_at: now.as_unix_secs(),
        };
        let result = PaymentResult {
            approved,
            authorization_code: code,
            reason,
            receipt,
        };
        Ok(self.finish(now, tid, home, Body::PaymentResult { result }, event))
    }

    fn check_authorization(
        &self,
        contract: &Contract,
        a: &PaymentAuthorization,
    ) -> Result<Option<TokenizedCard>, Error> {
        let bad = |why| Error::Message(ErrorCode::TransactionDataInvalid, why);
        if a.contract_digest != contract.digest() {
            return Err(bad("authorization is for another contract"));
        }
        if Some(&a.amount) != contract.amount.as_ref() {
            return Err(bad("authorized amount differs from the contract"));
        }
        if !contract.payment_methods.contains(&a.method) {
            return Err(bad("payment method not offered"));
        }
        match (&a.instrument, a.method) {
            (PaymentInstrument::Token { card }, PaymentMethod::Card) => Ok(Some(card.clone())),
            (PaymentInstrument::EncryptedToken { jwe }, PaymentMethod::Card) => {
                let plain = jwe::decrypt_compact(jwe, self.endpoint.decryption_key())?;
                let card: TokenizedCard =
                    serde_json::from_slice(&plain).map_err(|_| bad("encrypted token content"))?;
                Ok(Some(card))
            }
            (PaymentInstrument::Wallet { .. }, PaymentMethod::Wallet) => Ok(None),
            _ => Err(bad("instrument does not match the method")),
        }
    }

    fn timeout(&mut self, now: Timestamp) {
        let t = self.config.timeouts;
        let tids: Vec<TransactionId> = self.txs.keys().cloned().collect();
        for tid in tids {
            let Some(tx) = self.txs.get_mut(&tid) else {
                continue;
            };
            match tx.state.clone() {
                VisitedTxState::Completed | VisitedTxState::Failed { .. } => {
                    if tx
                        .ended_at
                        .is_some_and(|e| now >= e.saturating_add(t.linger))
                    {
                        self.txs.remove(&tid);
                    }
                    continue;
                }
                VisitedTxState::Finishing { .. } => {
                    // Keep re-sending the result until home acknowledges or we give up.
                    if let Some(p) = tx.pending.as_mut() {
                        if let Some(tr) = p.due(now, &t) {
                            self.outputs.push_back(VisitedOutput::Transmit(tr));
                        } else if now >= p.give_up_at {
                            tx.pending = None;
                            tx.state = VisitedTxState::Completed;
                        }
                    }
                    continue;
                }
                VisitedTxState::Locating { .. } => {
                    if tx.attempt_deadline.is_some_and(|d| now >= d) {
                        tx.silent_candidate = true;
                        self.next_candidate(now, &tid);
                        continue;
                    }
                }
                VisitedTxState::AwaitingContractAck { home } => {
                    if tx.attempt_deadline.is_some_and(|d| now >= d) {
                        self.fail(
                            now,
                            &tid,
                            ErrorCode::Timeout,
                            "home did not acknowledge the contract",
                            Some(home),
                        );
                        continue;
                    }
                }
                VisitedTxState::AwaitingUser { home } => {
                    if now >= tx.deadline {
                        self.fail(
                            now,
                            &tid,
                            ErrorCode::Timeout,
                            "user did not complete in time",
                            Some(home),
                        );
                        continue;
                    }
                }
            }
            if let Some(tx) = self.txs.get_mut(&tid) {
                if now >= tx.deadline {
                    let home = match &tx.state {
                        VisitedTxState::AwaitingContractAck { home } => Some(home.clone()),
                        _ => None,
                    };
                    self.fail(now, &tid, ErrorCode::Timeout, "transaction deadline", home);
                    continue;
                }
                if let Some(p) = tx.pending.as_mut()
                    && let Some(tr) = p.due(now, &t)
                {
                    self.outputs.push_back(VisitedOutput::Transmit(tr));
                }
            }
        }
        self.answers.retain(|_, (_, keep)| *keep > now);
        self.endpoint.purge(now);
        self.cache.purge(now);
    }
}

/// Checks a security result against the visited server's own contract: kind, subscriber,
/// digest, and for signature kinds the subscriber's ES256 signature over the contract bytes.
///
/// # Errors
/// [`Error::Message`] with [`ErrorCode::TransactionDataInvalid`] (or [`ErrorCode::FormatInvalid`]
/// for an undecodable key or signature).
pub fn verify_security_result(
    contract: &Contract,
    subscriber: E164,
    r: &SecurityResult,
) -> Result<(), Error> {
    let bad = |why| Error::Message(ErrorCode::TransactionDataInvalid, why);
    if r.request_type != contract.request_type || r.request_type == RequestType::Payment {
        return Err(bad("result kind differs from the request"));
    }
    if r.subscriber != subscriber {
        return Err(bad("result is for another subscriber"));
    }
    if r.contract_digest != contract.digest() {
        return Err(bad("result is for another contract (tampered)"));
    }
    if matches!(
        r.request_type,
        RequestType::DigitalSignature | RequestType::EndToEndSignature
    ) {
        let fmt = |why| Error::Message(ErrorCode::FormatInvalid, why);
        let key = r
            .subscriber_key
            .as_deref()
            .ok_or(fmt("subscriber key missing"))?;
        let key =
            keys::parse_public_key_sec1(&b64::decode(key).map_err(|_| fmt("subscriber key"))?)?;
        let sig = r.signature.as_deref().ok_or(fmt("signature missing"))?;
        let sig = Signature::from_slice(&b64::decode(sig).map_err(|_| fmt("signature"))?)
            .map_err(|_| fmt("signature"))?;
        VerifyingKey::from(&key)
            .verify(&contract.signing_bytes(), &sig)
            .map_err(|_| bad("subscriber signature does not verify over the contract"))?;
    }
    Ok(())
}
