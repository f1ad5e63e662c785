//! A deterministic simulation of content provider, visited server, home server, user and the
//! network between them, on a virtual clock, seeded: the same seed gives the same transcript.
//!
//! Used by the crate's tests, benchmarks, fuzz targets and examples; also a readable reference
//! of how to drive both machines.

use core::cmp::Reverse;
use core::time::Duration;
use std::collections::{BinaryHeap, HashMap};

use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer;
use rand_core::Rng;
use zeroize::Zeroizing;

use crate::e164::{CountryCode, E164};
use crate::error::{Error, ErrorCode};
use crate::jose::b64;
use crate::jose::keys::PrivateKey;
use crate::message::{Amount, Contract, PaymentMethod, RequestType, TransactionId};
use crate::registry::{PartnerConfig, Registry, RegistryConfig};
use crate::security::{Endpoint, Validity};
use crate::seeded_rng::SeededRng;
use crate::server::{
    CpEvent, HomeConfig, HomeInput, HomeOutput, HomeServer, MemoryAcquirer, StartRequest, Transmit,
    Undeliverable, UserReply, UserRequest, VisitedConfig, VisitedInput, VisitedOutput,
    VisitedServer,
};
use crate::store::{
    CardCredential, MemorySubscriber, MemorySubscriberStore, Pin, PinKey, PinVerifier, Subscriber,
};
use crate::time::Timestamp;

/// Name of the simulated visited server.
pub const VISITED: &str = "visited-fi";
/// Name of the simulated home server.
pub const HOME: &str = "home-uk";
/// A partner in the registry that never answers.
pub const SILENT: &str = "silent-uk";
/// A subscriber with card, wallet (EUR 100.00), signing key and device key; PIN 1234.
pub const ALICE: &str = "+447700900123";
/// A second subscriber, card only; PIN 4321.
pub const BOB: &str = "+447701900456";
/// A number served by [`SILENT`] first (prefix 7799), then by [`HOME`] (same country code).
pub const CAROL: &str = "+447799900789";
/// A number no partner serves.
pub const NOBODY: &str = "+15550100";

/// Network behaviour, in parts per thousand and milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetConfig {
    /// Messages dropped.
    pub loss_permille: u32,
    /// Messages delivered twice.
    pub dup_permille: u32,
    /// Smallest delay.
    pub min_delay_ms: u64,
    /// Largest delay (a spread reorders messages).
    pub max_delay_ms: u64,
}

/// How a partner's server-to-server endpoint fails (see [`Sim::faults`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Messages vanish without a trace: only the sender's deadlines notice.
    Silent,
    /// Nothing listens: the transport gives up on every message after
    /// [`Sim::transport_give_up_ms`] and reports it undeliverable (not permanent).
    Down,
    /// The endpoint refuses every message (an HTTP 4xx): reported undeliverable, permanent.
    Refuses,
}

/// What the simulated user does when redirected to the home server.
#[derive(Debug)]
pub enum UserScript {
    /// Type these PINs in turn (choosing `method` for payments) until one is accepted.
    Pins(Vec<String>, Option<PaymentMethod>),
    /// Sign the contract with this device key; `tamper` signs an altered contract.
    DeviceSign {
        /// Device key.
        key: PrivateKey,
        /// Sign a modified contract instead.
        tamper: bool,
    },
    /// Never come back.
    Ignore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Visited,
    Home,
    User,
    /// A transport failure report to the visited server (payload: key in `reports`).
    VisitedReport,
    /// A transport failure report to the home server.
    HomeReport,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    at: Timestamp,
    seq: u64,
    to: Node,
    payload: String,
}

/// The simulated world.
#[derive(Debug)]
pub struct Sim {
    /// Virtual clock.
    pub now: Timestamp,
    /// The visited server.
    pub visited: VisitedServer<MemoryAcquirer, SeededRng>,
    /// The home server.
    pub home: HomeServer<MemorySubscriberStore, SeededRng>,
    /// Network behaviour.
    pub net: NetConfig,
    /// Drop every message to the home server.
    pub home_silent: bool,
    /// Partners (by name) whose endpoint fails, and how. [`SILENT`] is silent without an entry.
    pub faults: HashMap<String, Fault>,
    /// How long the simulated transport tries before reporting a message undeliverable.
    pub transport_give_up_ms: u64,
    /// Every transport failure report fed to a machine: (receiving machine, report).
    pub reports: Vec<(&'static str, Undeliverable)>,
    /// Content-provider notifications.
    pub cp_events: Vec<(TransactionId, CpEvent)>,
    /// User-agent replies from home.
    pub user_replies: Vec<(String, UserReply)>,
    /// Messages refused by a server: (receiver, code).
    pub refused: Vec<(&'static str, ErrorCode)>,
    /// Every transmitted message type, in order: "from->to type".
    pub transcript: Vec<String>,
    /// Every transmitted message: (from, to, type, compact JWS).
    pub wire: Vec<(String, String, String, String)>,
    /// Alice's device key (registered at home).
    pub alice_device: PrivateKey,
    keys: Zeroizing<Vec<u8>>,
    pin_seed: Zeroizing<[u8; 32]>,
    net_rng: SeededRng,
    seq: u64,
    queue: BinaryHeap<Reverse<Event>>,
    scripts: HashMap<TransactionId, UserScript>,
    next_script: Option<UserScript>,
    sessions: HashMap<String, TransactionId>,
    pins_used: HashMap<String, usize>,
    pending_reports: HashMap<u64, Undeliverable>,
}

impl Node {
    /// Where a transport failure report for a message sent by `from` goes.
    fn from_name(from: &str) -> Self {
        if from == VISITED {
            Self::VisitedReport
        } else {
            Self::HomeReport
        }
    }
}

fn key_from(rng: &mut SeededRng) -> PrivateKey {
    PrivateKey::generate(rng)
}

/// Builds the registry both servers use.
///
/// # Errors
/// Registry errors (do not happen for these fixed partners).
pub fn registry(
    visited: &PrivateKey,
    home: &PrivateKey,
    silent: &PrivateKey,
    visited_encryption: Option<&PrivateKey>,
) -> Result<Registry, Error> {
    let cc = |s| CountryCode::parse(s);
    let pem = |k: &PrivateKey| k.public_key_pem();
    let cfg = RegistryConfig {
        serial: 1,
        partners: vec![
            PartnerConfig {
                name: VISITED.into(),
                url: "https://visited.invalid/roam".into(),
                country: "FI".into(),
                country_code: cc("358")?,
                local_prefixes: vec![],
                priority: 100,
                verifying_key: pem(visited)?,
                encryption_key: visited_encryption.map(pem).transpose()?,
                user_url: None,
            },
            PartnerConfig {
                name: HOME.into(),
                url: "https://home.invalid/roam".into(),
                country: "GB".into(),
                country_code: cc("44")?,
                local_prefixes: vec!["7700".into(), "7701".into()],
                priority: 100,
                verifying_key: pem(home)?,
                encryption_key: None,
                user_url: Some("https://home.invalid/user".into()),
            },
            PartnerConfig {
                name: SILENT.into(),
                url: "https://silent.invalid/roam".into(),
                country: "GB".into(),
                country_code: cc("44")?,
                local_prefixes: vec!["7799".into()],
                priority: 10,
                verifying_key: pem(silent)?,
                encryption_key: None,
                user_url: None,
            },
        ],
    };
    Ok(Registry::from_config(cfg)?)
}

/// The key material and registry of one simulated world, derived from a seed: the slow part
/// of [`Sim::new`] (six P-256 key generations and their encodings). Make it once with
/// [`SimKeys::generate`] and start any number of identical worlds with [`Sim::with_keys`].
#[derive(Clone)]
pub struct SimKeys {
    seed: u64,
    vk: PrivateKey,
    hk: PrivateKey,
    alice_device: PrivateKey,
    visited_enc: PrivateKey,
    alice_sign_der: Zeroizing<Vec<u8>>,
    reg: Registry,
    keys: Zeroizing<Vec<u8>>,
    pin_seed: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for SimKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimKeys")
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl SimKeys {
    /// The keys of the world [`Sim::new`]`(seed, encrypt_tokens)` builds.
    ///
    /// # Errors
    /// Key encoding or registry errors, which do not happen for the fixed world.
    pub fn generate(seed: u64, encrypt_tokens: bool) -> Result<Self, Error> {
        let mut rng = SeededRng::from_u64(seed);
        let vk = key_from(&mut rng);
        let hk = key_from(&mut rng);
        let sk = key_from(&mut rng);
        let alice_sign = key_from(&mut rng);
        let alice_device = key_from(&mut rng);
        let visited_enc = key_from(&mut rng);
        let reg = registry(&vk, &hk, &sk, encrypt_tokens.then_some(&visited_enc))?;
        let mut keys = Zeroizing::new(Vec::new());
        for k in [&vk, &hk, &visited_enc] {
            let der = k.to_pkcs8_der()?;
            keys.extend_from_slice(&u16::try_from(der.len()).unwrap_or(0).to_be_bytes());
            keys.extend_from_slice(&der);
        }
        let mut pin_seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *pin_seed);
        Ok(Self {
            seed,
            alice_sign_der: alice_sign.to_pkcs8_der()?,
            vk,
            hk,
            alice_device,
            visited_enc,
            reg,
            keys,
            pin_seed,
        })
    }
}

impl Sim {
    /// A world from `seed`, with card tokens encrypted to the visited server when
    /// `encrypt_tokens`.
    ///
    /// # Errors
    /// Setup errors (keys, registry), which do not happen for the fixed world.
    pub fn new(seed: u64, encrypt_tokens: bool) -> Result<Self, Error> {
        Self::with_keys(&SimKeys::generate(seed, encrypt_tokens)?)
    }

    /// A world from key material made earlier by [`SimKeys::generate`]: the same world as
    /// [`Sim::new`] with that seed and flag, without generating and encoding the keys again
    /// (fuzz targets build thousands of worlds per second from a few cached [`SimKeys`]).
    ///
    /// # Errors
    /// Setup errors (subscriber records), which do not happen for the fixed world.
    pub fn with_keys(world: &SimKeys) -> Result<Self, Error> {
        let SimKeys {
            seed,
            vk,
            hk,
            alice_device,
            visited_enc,
            alice_sign_der,
            reg,
            keys,
            pin_seed,
        } = world.clone();
        let now = Timestamp::from_unix_secs(1_760_000_000);
        let pin_key = PinKey::new(*pin_seed);
        let mut store = MemorySubscriberStore::new();
        let alice = E164::parse(ALICE)?;
        let bob = E164::parse(BOB)?;
        let carol = E164::parse(CAROL)?;
        let verifier = |id: &E164, pin: &str| -> Result<PinVerifier, Error> {
            Ok(pin_key.verifier(id, &Pin::parse(pin)?))
        };
        store.insert(MemorySubscriber {
            record: Subscriber {
                id: alice,
                pin_verifier: verifier(&alice, "1234")?,
                pin_tries_left: 3,
                payment_methods: vec![PaymentMethod::Card, PaymentMethod::Wallet],
                has_signing_key: true,
                device_key: Some(alice_device.public_key()),
            },
            signing_key_der: Some(alice_sign_der),
            card: Some(CardCredential::new("4111111111111111")?),
            wallet: Some(Amount {
                value: 10_000,
                currency: "EUR".into(),
            }),
        });
        store.insert(MemorySubscriber {
            record: Subscriber {
                id: bob,
                pin_verifier: verifier(&bob, "4321")?,
                pin_tries_left: 3,
                payment_methods: vec![PaymentMethod::Card],
                has_signing_key: false,
                device_key: None,
            },
            signing_key_der: None,
            card: Some(CardCredential::new("5500000000000004")?),
            wallet: None,
        });
        store.insert(MemorySubscriber {
            record: Subscriber {
                id: carol,
                pin_verifier: verifier(&carol, "2468")?,
                pin_tries_left: 3,
                payment_methods: vec![PaymentMethod::Wallet],
                has_signing_key: false,
                device_key: None,
            },
            signing_key_der: None,
            card: None,
            wallet: Some(Amount {
                value: 500,
                currency: "EUR".into(),
            }),
        });
        let validity = Validity::default();
        let visited = VisitedServer::new(
            VisitedConfig::default(),
            Endpoint::new(VISITED, vk, validity).with_encryption_key(visited_enc),
            reg.clone(),
            MemoryAcquirer::default(),
            SeededRng::from_u64(seed ^ 0x5649_5349_5445_4400),
        );
        let home_cfg = HomeConfig {
            user_base_url: "https://home.invalid/user".into(),
            ..HomeConfig::default()
        };
        let home = HomeServer::new(
            home_cfg,
            Endpoint::new(HOME, hk, validity),
            reg,
            store,
            pin_key,
            SeededRng::from_u64(seed ^ 0x484f_4d45),
        );
        Ok(Self {
            now,
            visited,
            home,
            net: NetConfig {
                min_delay_ms: 20,
                max_delay_ms: 20,
                ..NetConfig::default()
            },
            home_silent: false,
            faults: HashMap::new(),
            transport_give_up_ms: 300,
            reports: Vec::new(),
            cp_events: Vec::new(),
            user_replies: Vec::new(),
            refused: Vec::new(),
            transcript: Vec::new(),
            wire: Vec::new(),
            alice_device,
            keys,
            pin_seed,
            net_rng: SeededRng::from_u64(seed ^ 0x4e45_5400),
            seq: 0,
            queue: BinaryHeap::new(),
            scripts: HashMap::new(),
            next_script: None,
            sessions: HashMap::new(),
            pins_used: HashMap::new(),
            pending_reports: HashMap::new(),
        })
    }

    /// A content provider's standard request for `subscriber`.
    #[must_use]
    pub fn request(
        subscriber: &str,
        request_type: RequestType,
        amount: Option<u64>,
        methods: &[PaymentMethod],
    ) -> StartRequest {
        StartRequest {
            cp_ref: "order-1".into(),
            subscriber: subscriber.into(),
            request_type,
            merchant: "Helsinki Tickets Oy".into(),
            text: "One tram day ticket, zone AB".into(),
            amount: amount.map(|value| Amount {
                value,
                currency: "EUR".into(),
            }),
            accepted_methods: methods.to_vec(),
            continue_url: "https://cp.invalid/done".into(),
        }
    }

    /// Starts a transaction whose user follows `script`.
    ///
    /// # Errors
    /// As [`VisitedServer::start`].
    pub fn start(&mut self, req: StartRequest, script: UserScript) -> Result<TransactionId, Error> {
        self.next_script = Some(script);
        let tid = self.visited.start(self.now, req)?;
        if let Some(s) = self.next_script.take() {
            self.scripts.insert(tid.clone(), s);
        }
        self.drain();
        Ok(tid)
    }

    fn push(&mut self, delay_ms: u64, to: Node, payload: String) {
        self.seq += 1;
        let at = self.now.saturating_add(Duration::from_millis(delay_ms));
        self.queue.push(Reverse(Event {
            at,
            seq: self.seq,
            to,
            payload,
        }));
    }

    fn roll(&mut self, permille: u32) -> bool {
        permille > 0 && self.net_rng.next_u32() % 1000 < permille
    }

    fn delay(&mut self) -> u64 {
        let span = self.net.max_delay_ms.saturating_sub(self.net.min_delay_ms);
        self.net.min_delay_ms
            + if span == 0 {
                0
            } else {
                self.net_rng.next_u64() % (span + 1)
            }
    }

    fn send_net(&mut self, from: &str, t: Transmit) {
        let (to_name, kind) = (t.to.as_str(), t.message_type.as_str());
        self.transcript
            .push(format!("{} {from}->{to_name} {kind}", self.now.as_millis()));
        self.wire.push((
            from.to_owned(),
            to_name.to_owned(),
            kind.to_owned(),
            t.jws.clone(),
        ));
        match self.faults.get(to_name).copied() {
            Some(Fault::Silent) => return,
            Some(f @ (Fault::Down | Fault::Refuses)) => {
                let report = Node::from_name(from);
                let permanent = f == Fault::Refuses;
                let reason = if permanent {
                    "refused (HTTP 400)"
                } else {
                    "connection refused"
                };
                self.push(self.transport_give_up_ms, report, String::new());
                self.pending_reports
                    .insert(self.seq, Undeliverable::new(&t, permanent, reason));
                return;
            }
            None => {}
        }
        let jws = t.jws;
        let to = match to_name {
            VISITED => Node::Visited,
            HOME if !self.home_silent => Node::Home,
            _ => return,
        };
        if self.roll(self.net.loss_permille) {
            return;
        }
        let copies = if self.roll(self.net.dup_permille) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let d = self.delay();
            self.push(d, to, jws.clone());
        }
    }

    /// Moves every pending output of both machines into the network / user / CP.
    pub fn drain(&mut self) {
        loop {
            let mut moved = false;
            while let Some(o) = self.visited.poll_output() {
                moved = true;
                match o {
                    VisitedOutput::Transmit(t) => self.send_net(VISITED, t),
                    VisitedOutput::RedirectUser { tid, url } => {
                        let session = url.rsplit('/').next().unwrap_or_default().to_owned();
                        self.sessions.insert(session.clone(), tid);
                        self.push(500, Node::User, session);
                    }
                    VisitedOutput::ContentProvider { tid, event, .. } => {
                        self.cp_events.push((tid, event))
                    }
                }
            }
            while let Some(o) = self.home.poll_output() {
                moved = true;
                match o {
                    HomeOutput::Transmit(t) => self.send_net(HOME, t),
                    HomeOutput::ToUser { session, reply } => self.on_user_reply(session, reply),
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn on_user_reply(&mut self, session: String, reply: UserReply) {
        self.user_replies.push((session.clone(), reply.clone()));
        match reply {
            UserReply::Contract { contract } => self.user_act(&session, Some(contract)),
            UserReply::WrongPin { .. } | UserReply::InsufficientFunds => {
                self.user_act(&session, None)
            }
            UserReply::Submitted => self.push(1000, Node::User, format!("status:{session}")),
            _ => {}
        }
    }

    fn user_act(&mut self, session: &str, contract: Option<Contract>) {
        let Some(tid) = self.sessions.get(session).cloned() else {
            return;
        };
        let request = match self.scripts.get(&tid) {
            Some(UserScript::Pins(pins, method)) => {
                let used = self.pins_used.entry(session.to_owned()).or_insert(0);
                let Some(pin) = pins.get(*used) else { return };
                *used += 1;
                let Ok(pin) = Pin::parse(pin) else { return };
                UserRequest::SubmitPin {
                    pin,
                    method: *method,
                }
            }
            Some(UserScript::DeviceSign { key, tamper }) => {
                let Some(mut c) = contract else { return };
                if *tamper {
                    c.text.push_str(" (and a second ticket)");
                }
                let sig: Signature = key.signing_key().sign(&c.signing_bytes());
                UserRequest::SubmitDeviceSignature {
                    signature: b64::encode(&sig.to_bytes()),
                }
            }
            Some(UserScript::Ignore) | None => return,
        };
        let r = self.home.handle_input(
            self.now,
            HomeInput::User {
                session: session.to_owned(),
                request,
            },
        );
        if r.is_err() {
            self.refused.push(("home-user", ErrorCode::FormatInvalid));
        }
    }

    fn deliver(&mut self, ev: Event) {
        match ev.to {
            Node::Visited => {
                if let Err(e) = self
                    .visited
                    .handle_input(self.now, VisitedInput::Receive { jws: ev.payload })
                {
                    self.refused.push((VISITED, ErrorCode::from(&e)));
                }
            }
            Node::Home => {
                if let Err(e) = self
                    .home
                    .handle_input(self.now, HomeInput::Receive { jws: ev.payload })
                {
                    self.refused.push((HOME, ErrorCode::from(&e)));
                }
            }
            Node::VisitedReport | Node::HomeReport => {
                let Some(u) = self.pending_reports.remove(&ev.seq) else {
                    return;
                };
                if ev.to == Node::VisitedReport {
                    self.reports.push((VISITED, u.clone()));
                    let _ = self
                        .visited
                        .handle_input(self.now, VisitedInput::Undeliverable(u));
                } else {
                    self.reports.push((HOME, u.clone()));
                    let _ = self
                        .home
                        .handle_input(self.now, HomeInput::Undeliverable(u));
                }
            }
            Node::User => {
                let (session, request) = match ev.payload.strip_prefix("status:") {
                    Some(s) => (s.to_owned(), UserRequest::Status),
                    None => (ev.payload, UserRequest::FetchContract),
                };
                let _ = self
                    .home
                    .handle_input(self.now, HomeInput::User { session, request });
            }
        }
    }

    /// Delivers a message to the visited server now (for injected tests).
    ///
    /// # Errors
    /// The visited server's refusal.
    pub fn inject_to_visited(&mut self, jws: String) -> Result<(), Error> {
        let r = self
            .visited
            .handle_input(self.now, VisitedInput::Receive { jws });
        self.drain();
        r
    }

    /// Delivers a message to the home server now.
    ///
    /// # Errors
    /// The home server's refusal.
    pub fn inject_to_home(&mut self, jws: String) -> Result<(), Error> {
        let r = self.home.handle_input(self.now, HomeInput::Receive { jws });
        self.drain();
        r
    }

    /// Runs events and timers until nothing is left or `limit` of virtual time has passed.
    pub fn run_for(&mut self, limit: Duration) {
        let end = self.now.saturating_add(limit);
        loop {
            self.drain();
            let next_net = self.queue.peek().map(|Reverse(e)| e.at);
            let next_v = self.visited.poll_timeout();
            let next_h = self.home.poll_timeout();
            let Some(next) = [next_net, next_v, next_h].into_iter().flatten().min() else {
                break;
            };
            if next > end {
                self.now = end;
                break;
            }
            self.now = self.now.max(next);
            if next_net == Some(next)
                && let Some(Reverse(ev)) = self.queue.pop()
            {
                self.deliver(ev);
                continue;
            }
            let _ = self.visited.handle_input(self.now, VisitedInput::Timeout);
            let _ = self.home.handle_input(self.now, HomeInput::Timeout);
        }
        self.drain();
    }

    /// Simulates a crash and restart of both servers: each machine's state goes through its
    /// JSON snapshot into a new machine built from the same keys, registry and stores, with a
    /// fresh random generator seeded by `rng_seed`. Messages in flight stay in the network.
    ///
    /// # Errors
    /// Snapshot encoding or key loading errors.
    pub fn restart(&mut self, rng_seed: u64) -> Result<(), Error> {
        let vs = serde_json::to_vec(&self.visited.snapshot()).map_err(|_| Error::Encode)?;
        let hs = serde_json::to_vec(&self.home.snapshot()).map_err(|_| Error::Encode)?;
        let mut parts = Vec::new();
        let mut rest: &[u8] = &self.keys;
        while let (Some(&a), Some(&b)) = (rest.first(), rest.get(1)) {
            let n = usize::from(u16::from_be_bytes([a, b]));
            let der = rest.get(2..2 + n).ok_or(Error::Key("sim keys"))?;
            parts.push(PrivateKey::from_pkcs8_der(der)?);
            rest = rest.get(2 + n..).unwrap_or_default();
        }
        let [vk, hk, enc] =
            <[PrivateKey; 3]>::try_from(parts).map_err(|_| Error::Key("sim keys"))?;
        let validity = Validity::default();
        let mut visited = VisitedServer::new(
            VisitedConfig::default(),
            Endpoint::new(VISITED, vk, validity).with_encryption_key(enc),
            self.visited.registry().clone(),
            self.visited.acquirer().clone(),
            SeededRng::from_u64(rng_seed),
        );
        visited.restore(serde_json::from_slice(&vs).map_err(|e| Error::Config(e.to_string()))?);
        let home_cfg = HomeConfig {
            user_base_url: "https://home.invalid/user".into(),
            ..HomeConfig::default()
        };
        let mut home = HomeServer::new(
            home_cfg,
            Endpoint::new(HOME, hk, validity),
            self.home.registry().clone(),
            core::mem::take(self.home.store_mut()),
            PinKey::new(*self.pin_seed),
            SeededRng::from_u64(rng_seed ^ 0x484f_4d45),
        );
        home.restore(serde_json::from_slice(&hs).map_err(|e| Error::Config(e.to_string()))?);
        self.visited = visited;
        self.home = home;
        Ok(())
    }

    /// Content-provider events of one transaction.
    #[must_use]
    pub fn events_of(&self, tid: &TransactionId) -> Vec<&CpEvent> {
        self.cp_events
            .iter()
            .filter(|(t, _)| t == tid)
            .map(|(_, e)| e)
            .collect()
    }

    /// The final content-provider event of a transaction (paid, declined, completed or failed).
    #[must_use]
    pub fn outcome(&self, tid: &TransactionId) -> Option<&CpEvent> {
        self.events_of(tid)
            .into_iter()
            .rev()
            .find(|e| !matches!(e, CpEvent::Started | CpEvent::UserRedirected { .. }))
    }
}
