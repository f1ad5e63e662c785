//! The driver: feeds the Sans-IO machines with real time and HTTP inputs, drains their outputs
//! into the journal, the outbox and the HTTP answers, and keeps their timers.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context, bail};
use chacha20::ChaCha20Rng;
use mec_roaming::message::TransactionId;
use mec_roaming::security::Endpoint;
use mec_roaming::server::{
    HomeConfig, HomeInput, HomeOutput, HomeServer, Transmit, Undeliverable, UserReply,
    VisitedConfig, VisitedInput, VisitedOutput, VisitedServer,
};
use mec_roaming::store::{CardCredential, Pin, PinVerifier};
use mec_roaming::{E164, Timestamp};
use rand_core::SeedableRng;
use tokio::sync::{Notify, mpsc};
use tracing::{debug, error, info, warn};
use zeroize::Zeroizing;

use super::api::{CpEventJson, home_state, visited_state};
use super::config::{HttpConfig, Loaded, Role, hex32, read_private_key, read_public_key};
use super::sqlite::{Journal, NewSubscriber, SqliteAcquirer, SqliteSubscriberStore, TxFields};

/// The visited machine as the reference server runs it.
pub(crate) type Visited = VisitedServer<SqliteAcquirer, ChaCha20Rng>;
/// The home machine as the reference server runs it.
pub(crate) type Home = HomeServer<SqliteSubscriberStore, ChaCha20Rng>;

/// One of the two machines.
#[derive(Debug)]
pub(crate) enum Machine {
    Visited(Box<Visited>),
    Home(Box<Home>),
}

impl Machine {
    pub(crate) fn poll_timeout(&self) -> Option<Timestamp> {
        match self {
            Self::Visited(v) => v.poll_timeout(),
            Self::Home(h) => h.poll_timeout(),
        }
    }

    pub(crate) fn registry(&self) -> &mec_roaming::Registry {
        match self {
            Self::Visited(v) => v.registry(),
            Self::Home(h) => h.registry(),
        }
    }

    pub(crate) fn registry_mut(&mut self) -> &mut mec_roaming::Registry {
        match self {
            Self::Visited(v) => v.registry_mut(),
            Self::Home(h) => h.registry_mut(),
        }
    }
}

/// The machine and the journal, behind one lock.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) machine: Machine,
    pub(crate) journal: Journal,
}

/// Outputs that leave the lock: messages to deliver and answers for user agents.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    transmits: Vec<(i64, Transmit)>,
    pub(crate) user: Vec<(String, UserReply)>,
}

impl Core {
    /// Drains every output of the machine: journals it and returns what must leave the lock.
    pub(crate) fn drain(&mut self) -> Drained {
        let mut d = Drained::default();
        match &mut self.machine {
            Machine::Visited(v) => {
                let mut touched: BTreeSet<TransactionId> = BTreeSet::new();
                while let Some(o) = v.poll_output() {
                    match o {
                        VisitedOutput::Transmit(t) => {
                            touched.insert(t.tid.clone());
                            d.transmits.push((outbox(&self.journal, &t), t));
                        }
                        VisitedOutput::RedirectUser { tid, url } => {
                            info!(%tid, %url, "user agent redirected to home");
                            log_db(self.journal.upsert_tx(
                                "",
                                tid.as_str(),
                                "awaitingUser",
                                &TxFields {
                                    user_url: Some(&url),
                                    ..TxFields::default()
                                },
                            ));
                            touched.insert(tid);
                        }
                        VisitedOutput::ContentProvider { cp_ref, tid, event } => {
                            let ev = CpEventJson::from(&event);
                            let text = serde_json::to_string(&ev).unwrap_or_default();
                            info!(%tid, cp_ref, event = %text, "content provider notified");
                            log_db(self.journal.add_event(tid.as_str(), &text));
                            if ev.is_outcome() {
                                let state = v.state(&tid).map_or("failed", visited_state);
                                log_db(self.journal.upsert_tx(
                                    "",
                                    tid.as_str(),
                                    state,
                                    &TxFields {
                                        outcome: Some(&text),
                                        ..TxFields::default()
                                    },
                                ));
                            }
                            touched.insert(tid);
                        }
                    }
                }
                for tid in touched {
                    if let Some(s) = v.state(&tid) {
                        log_db(self.journal.upsert_tx(
                            "",
                            tid.as_str(),
                            visited_state(s),
                            &TxFields::default(),
                        ));
                    }
                }
            }
            Machine::Home(h) => {
                let mut touched: BTreeSet<(String, TransactionId)> = BTreeSet::new();
                while let Some(o) = h.poll_output() {
                    match o {
                        HomeOutput::Transmit(t) => {
                            touched.insert((t.to.clone(), t.tid.clone()));
                            d.transmits.push((outbox(&self.journal, &t), t));
                        }
                        HomeOutput::ToUser { session, reply } => d.user.push((session, reply)),
                    }
                }
                for (visited, tid) in touched {
                    if let Some(s) = h.state(&visited, &tid) {
                        log_db(self.journal.upsert_tx(
                            &visited,
                            tid.as_str(),
                            home_state(s),
                            &TxFields::default(),
                        ));
                    }
                }
            }
        }
        d
    }
}

impl Core {
    /// Stores the machine's snapshot (transactions, sessions, cached answers, replay cache).
    pub(crate) fn persist(&self) {
        let json = match &self.machine {
            Machine::Visited(v) => serde_json::to_string(&v.snapshot()),
            Machine::Home(h) => serde_json::to_string(&h.snapshot()),
        };
        match json {
            Ok(j) => log_db(self.journal.save_snapshot(&j)),
            Err(e) => error!(error = %e, "snapshot encoding failed"),
        }
    }

    /// Restores the stored snapshot, if any; returns true when one was restored.
    fn restore(&mut self) -> anyhow::Result<bool> {
        let Some(json) = self
            .journal
            .load_snapshot()
            .context("reading the stored machine state")?
        else {
            return Ok(false);
        };
        match &mut self.machine {
            Machine::Visited(v) => {
                v.restore(serde_json::from_str(&json).context("stored visited state")?)
            }
            Machine::Home(h) => {
                h.restore(serde_json::from_str(&json).context("stored home state")?)
            }
        }
        Ok(true)
    }
}

fn outbox(j: &Journal, t: &Transmit) -> i64 {
    debug!(to = %t.to, tid = %t.tid, message_type = %t.message_type, "message queued");
    match j.outbox_add(t.tid.as_str(), &t.to, &t.url, &t.message_type, &t.jws) {
        Ok(id) => id,
        Err(e) => {
            error!(error = %e, "journal: outbox insert failed");
            0
        }
    }
}

fn log_db(r: rusqlite::Result<()>) {
    if let Err(e) = r {
        error!(error = %e, "journal write failed");
    }
}

/// The time now, as the machines take it.
pub(crate) fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Timestamp(ms)
}

/// Shared state of a running server.
#[derive(Debug)]
pub(crate) struct App {
    core: Mutex<Core>,
    wake: Notify,
    outbox: mpsc::UnboundedSender<(i64, Transmit)>,
    pub(crate) role: Role,
    pub(crate) name: String,
    pub(crate) http: HttpConfig,
    /// Accepted bearer tokens (hashes) of the content-provider and admin endpoints.
    pub(crate) tokens: super::auth::Tokens,
    client: reqwest::Client,
}

impl App {
    /// Locks the core (a poisoned lock is taken over: every change in it is transactional).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the core, drains the machine, hands messages to the delivery task, wakes the
    /// timer, and returns `f`'s result with the user-agent answers.
    pub(crate) fn input<T>(&self, f: impl FnOnce(&mut Core) -> T) -> (T, Vec<(String, UserReply)>) {
        let (out, drained) = {
            let mut core = self.lock();
            let out = f(&mut core);
            let drained = core.drain();
            // Durable before anything leaves: the messages below and the HTTP answer.
            core.persist();
            (out, drained)
        };
        for t in drained.transmits {
            if self.outbox.send(t).is_err() {
                warn!("delivery task gone; message dropped (the machine will retransmit)");
            }
        }
        self.wake.notify_one();
        (out, drained.user)
    }
}

/// Builds the machine from the configuration.
fn build(
    mut loaded: Loaded,
) -> anyhow::Result<(Core, Role, String, HttpConfig, std::net::SocketAddr)> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice())
        .map_err(|e| anyhow::anyhow!("operating system random generator: {e}"))?;
    let rng = ChaCha20Rng::from_seed(*seed);
    let journal = Journal::open(&loaded.database)
        .with_context(|| format!("opening {}", loaded.database.display()))?;
    stored_registry(&journal, &mut loaded)?;
    let key = loaded.key.take().context("private key")?;
    let pin_key = loaded.pin_key.take();
    let file = &loaded.file;
    let timeouts = file.timeouts.to_timeouts();
    let validity = file.validity.to_validity();
    let machine = match loaded.role {
        Role::Visited => {
            let decline_above = file.acquirer.as_ref().and_then(|a| a.decline_above);
            let acquirer = SqliteAcquirer::open(&loaded.database, decline_above)?;
            let endpoint = Endpoint::new(file.name.clone(), key, validity);
            let config = VisitedConfig {
                timeouts,
                ..VisitedConfig::default()
            };
            Machine::Visited(Box::new(VisitedServer::new(
                config,
                endpoint,
                loaded.registry.clone(),
                acquirer,
                rng,
            )))
        }
        Role::Home => {
            let home = file.home.as_ref().context("[home] section")?;
            let pin_key = pin_key.context("PIN key")?;
            let kek_path = loaded.resolve(
                &file
                    .storage
                    .as_ref()
                    .context("a home server needs [storage] kek_file")?
                    .kek_file,
            );
            let kek = super::seal::read_kek(&kek_path)?;
            let (mut store, migration) = SqliteSubscriberStore::open(&loaded.database, kek)
                .with_context(|| {
                    format!(
                        "opening {} with the KEK in {}",
                        loaded.database.display(),
                        kek_path.display()
                    )
                })?;
            if migration.sealed > 0 {
                info!(
                    values = migration.sealed,
                    "sealed plaintext secrets left by an older version"
                );
            }
            for s in &file.subscribers {
                let id = E164::parse(&s.id)
                    .with_context(|| format!("subscriber id {:?} (write +<digits>)", s.id))?;
                let verifier = match (&s.pin, &s.pin_verifier) {
                    (Some(pin), None) => pin_key.verifier(
                        &id,
                        &Pin::parse(pin).with_context(|| format!("PIN of {id}"))?,
                    ),
                    (None, Some(v)) => {
                        PinVerifier(hex32(v).with_context(|| format!("PIN verifier of {id}"))?)
                    }
                    _ => bail!("subscriber {id}: give exactly one of pin and pin_verifier"),
                };
                let card_number = match &s.card {
                    Some(pan) => {
                        CardCredential::new(pan).with_context(|| format!("card of {id}"))?;
                        Some(Zeroizing::new(pan.clone()))
                    }
                    None => None,
                };
                if let Some(w) = &s.wallet
                    && (w.currency.len() != 3
                        || !w.currency.bytes().all(|b| b.is_ascii_uppercase()))
                {
                    bail!("subscriber {id}: wallet currency must be an ISO 4217 code");
                }
                let new = NewSubscriber {
                    id,
                    pin_verifier: verifier,
                    pin_tries: home.max_pin_tries,
                    payment_methods: s.payment_methods.clone(),
                    signing_key: s
                        .signing_key
                        .as_ref()
                        .map(|p| read_private_key(&loaded.resolve(p)))
                        .transpose()?,
                    device_key: s
                        .device_key
                        .as_ref()
                        .map(|p| read_public_key(&loaded.resolve(p)))
                        .transpose()?,
                    card_number,
                    wallet: s.wallet.clone(),
                };
                if store.provision(&new)? {
                    info!(subscriber = %id, "subscriber provisioned");
                }
            }
            let endpoint = Endpoint::new(file.name.clone(), key, validity);
            let config = HomeConfig {
                timeouts,
                user_base_url: format!("{}{}", loaded.public_url, super::http::USER_SESSIONS),
                token_ttl: Duration::from_secs(home.token_ttl_s),
                max_pin_tries: home.max_pin_tries,
            };
            Machine::Home(Box::new(HomeServer::new(
                config,
                endpoint,
                loaded.registry.clone(),
                store,
                pin_key,
                rng,
            )))
        }
    };
    for p in loaded.registry.partners() {
        if p.name() != file.name && !is_loopback_http(p.url()) {
            warn!(
                partner = p.name(),
                url = p.url(),
                "partner URL is not plain HTTP on loopback; messages to it will not be sent"
            );
        }
    }
    let http = HttpConfig { ..loaded.file.http };
    let mut core = Core { machine, journal };
    if core.restore()? {
        info!(
            "machine state restored from the database; pending messages are retransmitted on their timers"
        );
    }
    Ok((
        core,
        loaded.role,
        loaded.file.name,
        http,
        loaded.file.listen,
    ))
}

/// Uses the registry stored by a run-time update when it is newer than the file's.
fn stored_registry(journal: &Journal, loaded: &mut Loaded) -> anyhow::Result<()> {
    let Some(json) = journal
        .load_registry()
        .context("reading the stored registry")?
    else {
        return Ok(());
    };
    let config: mec_roaming::RegistryConfig =
        serde_json::from_str(&json).context("stored registry")?;
    let stored = mec_roaming::Registry::from_config(config).context("stored registry")?;
    if stored.serial() <= loaded.registry.serial() {
        info!(
            file = loaded.registry.serial(),
            stored = stored.serial(),
            "registry file is current"
        );
        return Ok(());
    }
    let me = stored
        .partner(&loaded.file.name)
        .context("the stored registry no longer lists this server")?;
    let key = loaded.key.as_ref().context("private key")?;
    if *me.verifying_key() != key.verifying_key() {
        bail!(
            "the stored registry's key for {} does not match the configured private key",
            loaded.file.name
        );
    }
    info!(
        file = loaded.registry.serial(),
        stored = stored.serial(),
        "using the registry stored by run-time updates"
    );
    loaded.registry = stored;
    Ok(())
}

/// True for `http://` URLs whose host is a loopback address or `localhost`.
pub(crate) fn is_loopback_http(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    if u.scheme() != "http" {
        return false;
    }
    let Some(h) = u.host_str() else { return false };
    let h = h.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// Runs the server until Ctrl-C or SIGTERM.
pub(crate) async fn serve(loaded: Loaded) -> anyhow::Result<()> {
    let tokens = loaded.tokens.clone();
    if tokens.is_empty(super::auth::Scope::Admin) {
        warn!("no [auth] admin_token_sha256: the admin endpoints refuse every request");
    }
    let (core, role, name, http, listen) = build(loaded)?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(http.request_timeout_ms))
        .timeout(Duration::from_millis(http.request_timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("HTTP client")?;
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Arc::new(App {
        core: Mutex::new(core),
        wake: Notify::new(),
        outbox: tx,
        role,
        name,
        http,
        tokens,
        client,
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let local = listener.local_addr()?;
    info!(role = role.as_str(), name = %app.name, address = %local, "roaming server listening");
    let timer = tokio::spawn(timer_loop(Arc::clone(&app)));
    let delivery = tokio::spawn(delivery_loop(Arc::clone(&app), rx));
    let router = super::http::router(Arc::clone(&app));
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server")?;
    timer.abort();
    delivery.abort();
    info!(name = %app.name, "roaming server stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("Ctrl-C: shutting down"),
        () = term => info!("SIGTERM: shutting down"),
    }
}

/// Feeds `Timeout` whenever the machine's next deadline passes.
async fn timer_loop(app: Arc<App>) {
    let mut last_fed: Option<Timestamp> = None;
    let mut stale = TIMER_FLOOR;
    loop {
        let deadline = app.lock().machine.poll_timeout();
        let wait = timer_wait(deadline, now(), last_fed, &mut stale);
        tokio::select! {
            () = tokio::time::sleep(wait) => {
                if deadline.is_some() {
                    let t = now();
                    last_fed = Some(t);
                    let _ = app.input(|c| match &mut c.machine {
                        Machine::Visited(v) => v.handle_input(t, mec_roaming::server::VisitedInput::Timeout),
                        Machine::Home(h) => h.handle_input(t, mec_roaming::server::HomeInput::Timeout),
                    });
                }
            }
            () = app.wake.notified() => {}
        }
    }
}

/// Shortest sleep of the timer task.
const TIMER_FLOOR: Duration = Duration::from_millis(5);
/// Longest back-off for a deadline the machine keeps reporting after it was fed.
const TIMER_STALE_MAX: Duration = Duration::from_secs(1);

/// How long the timer task sleeps before feeding `Timeout`: until the deadline (at least
/// [`TIMER_FLOOR`]); an hour when there is none. A deadline that is already past although
/// `Timeout` was fed after it (the machine did not move it) is retried with a doubling back-off
/// up to [`TIMER_STALE_MAX`], so such a deadline cannot spin the task (and the snapshot writes).
fn timer_wait(
    deadline: Option<Timestamp>,
    now: Timestamp,
    last_fed: Option<Timestamp>,
    stale: &mut Duration,
) -> Duration {
    match deadline {
        None => {
            *stale = TIMER_FLOOR;
            Duration::from_secs(3600)
        }
        Some(d) if d <= now && last_fed.is_some_and(|f| d <= f) => {
            *stale = stale.saturating_mul(2).min(TIMER_STALE_MAX);
            *stale
        }
        Some(d) => {
            *stale = TIMER_FLOOR;
            Duration::from_millis(d.as_millis().saturating_sub(now.as_millis())).max(TIMER_FLOOR)
        }
    }
}

async fn delivery_loop(app: Arc<App>, mut rx: mpsc::UnboundedReceiver<(i64, Transmit)>) {
    while let Some((id, t)) = rx.recv().await {
        tokio::spawn(deliver(Arc::clone(&app), id, t));
    }
}

/// Tells the machine that the transport gave up on `t` (see [`Undeliverable`]).
fn report_undeliverable(app: &App, t: &Transmit, permanent: bool, reason: String) {
    warn!(to = %t.to, tid = %t.tid, message_type = %t.message_type, mid = %t.mid, permanent, reason = %reason, "message undeliverable; reported to the state machine");
    let u = Undeliverable::new(t, permanent, reason);
    let _ = app.input(|c| match &mut c.machine {
        Machine::Visited(v) => v.handle_input(now(), VisitedInput::Undeliverable(u)),
        Machine::Home(h) => h.handle_input(now(), HomeInput::Undeliverable(u)),
    });
}

/// At most this much of a refusal's body goes into the failure reason.
const REASON_MAX: usize = 200;

/// POSTs one message, retrying connection errors and 5xx answers with exponential back-off.
/// A 4xx refusal (the receiver changed nothing) is reported to the machine as a permanent
/// failure, exhausted retries as a transient one; the machine decides what that means for the
/// transaction (next home candidate, abort, or its own re-send timer).
async fn deliver(app: Arc<App>, id: i64, t: Transmit) {
    if !is_loopback_http(&t.url) {
        error!(to = %t.to, url = %t.url, "refusing to send to a URL that is not plain HTTP on loopback");
        log_db(
            app.lock()
                .journal
                .outbox_result(id, 0, "not sent: URL not on loopback"),
        );
        report_undeliverable(
            &app,
            &t,
            true,
            "partner URL is not plain HTTP on loopback".into(),
        );
        return;
    }
    let attempts = app.http.delivery_attempts.max(1);
    let mut backoff = Duration::from_millis(app.http.retry_backoff_ms);
    for attempt in 1..=attempts {
        let r = app
            .client
            .post(&t.url)
            .header(reqwest::header::CONTENT_TYPE, super::http::JOSE)
            .body(t.jws.clone())
            .send()
            .await;
        let (status, outcome) = match r {
            Ok(resp) => {
                let code = resp.status();
                let body = resp.text().await.unwrap_or_default();
                if code.is_success() {
                    info!(to = %t.to, tid = %t.tid, message_type = %t.message_type, status = code.as_u16(), attempt, "message delivered");
                } else {
                    warn!(to = %t.to, tid = %t.tid, message_type = %t.message_type, status = code.as_u16(), answer = %body, attempt, "message refused");
                }
                let outcome = if code.is_success() {
                    Attempt::Delivered
                } else if code.is_server_error() {
                    Attempt::Retry(format!("HTTP {}", code.as_u16()))
                } else {
                    let answer: String = body.chars().take(REASON_MAX).collect();
                    Attempt::Refused(format!("HTTP {}: {answer}", code.as_u16()))
                };
                (code.as_u16().to_string(), outcome)
            }
            Err(e) => {
                warn!(to = %t.to, tid = %t.tid, message_type = %t.message_type, error = %e, attempt, "delivery failed");
                (
                    format!("error: {e}"),
                    Attempt::Retry(format!("delivery failed: {e}")),
                )
            }
        };
        log_db(app.lock().journal.outbox_result(id, attempt, &status));
        match outcome {
            Attempt::Delivered => return,
            Attempt::Refused(reason) => {
                report_undeliverable(&app, &t, true, reason);
                return;
            }
            Attempt::Retry(reason) if attempt == attempts => {
                report_undeliverable(
                    &app,
                    &t,
                    false,
                    format!("{reason} (after {attempts} attempts)"),
                );
                return;
            }
            Attempt::Retry(_) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
}

/// What one POST came to.
enum Attempt {
    /// 2xx.
    Delivered,
    /// 4xx (or another non-retryable answer): the receiver refused it.
    Refused(String),
    /// Connection error, timeout or 5xx: try again.
    Retry(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_waits_for_the_deadline_and_backs_off_on_a_stale_one() {
        let mut stale = TIMER_FLOOR;
        let t = |ms| Timestamp(ms);
        assert_eq!(
            timer_wait(None, t(1000), None, &mut stale),
            Duration::from_secs(3600)
        );
        assert_eq!(
            timer_wait(Some(t(1500)), t(1000), None, &mut stale),
            Duration::from_millis(500)
        );
        assert_eq!(
            timer_wait(Some(t(900)), t(1000), None, &mut stale),
            TIMER_FLOOR,
            "past, never fed: now"
        );
        assert_eq!(
            timer_wait(Some(t(900)), t(1000), Some(t(800)), &mut stale),
            TIMER_FLOOR,
            "fed before it"
        );
        // Fed at or after the deadline and still reported: back off, doubling, capped.
        let waits: Vec<Duration> = (0..12)
            .map(|_| timer_wait(Some(t(900)), t(1000), Some(t(950)), &mut stale))
            .collect();
        assert_eq!(waits[0], Duration::from_millis(10));
        assert_eq!(waits[1], Duration::from_millis(20));
        assert_eq!(*waits.last().unwrap_or(&Duration::ZERO), TIMER_STALE_MAX);
        // A fresh deadline resets the back-off.
        assert_eq!(
            timer_wait(Some(t(1200)), t(1000), Some(t(950)), &mut stale),
            Duration::from_millis(200)
        );
        assert_eq!(stale, TIMER_FLOOR);
    }

    #[test]
    fn only_loopback_http_is_sent_to() {
        assert!(is_loopback_http(
            "http://127.0.0.1:8080/roam/v1/s2s/messages"
        ));
        assert!(is_loopback_http("http://[::1]:1/x"));
        assert!(is_loopback_http("http://localhost:1/x"));
        assert!(!is_loopback_http("https://127.0.0.1/x"));
        assert!(!is_loopback_http("http://192.0.2.1/x"));
        assert!(!is_loopback_http("http://example.invalid/x"));
        assert!(!is_loopback_http("not a url"));
    }
}
