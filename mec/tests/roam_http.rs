//! The roaming flows over real HTTP between two `mec roam serve` processes (visited and home)
//! on 127.0.0.1, with this test acting as the content provider and the user agent.
//!
//! Every test starts its own pair of servers on free ports with fresh keys in a temporary
//! directory, uses timeouts on every wait, and kills exactly the processes it started (by pid,
//! from a `Drop` guard, so also when an assertion panics).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mec_roaming::jose::b64;
use mec_roaming::jose::keys::PrivateKey;
use mec_roaming::message::{Body, Contract, Envelope, MessageId, parse_envelope};
use mec_roaming::seeded_rng::SeededRng;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

const ALICE: &str = "+447700900123";
const BOB: &str = "+447701900456";
/// Served by prefix 7799 at `dead-uk` (a free loopback port with nothing listening), found at
/// `home-uk` (same country code) after that.
const CAROL: &str = "+447799900789";
const NOBODY: &str = "+15550100";
const MERCHANT: &str = "Helsinki Tickets Oy";
const WAIT: Duration = Duration::from_secs(30);

/// A server process; killed (by its pid) and reaped when dropped.
struct Server {
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    fn start(role: &str, config: &Path, log: PathBuf) -> Self {
        let err = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mec"))
            .args(["roam", "serve", "--role", role, "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn mec roam serve");
        Self {
            child: Some(child),
            log,
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL to this pid only
            let _ = c.wait();
        }
    }

    /// Ctrl-C: SIGINT to this pid; waits (bounded) for a clean exit.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill -INT");
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > end {
                let _ = c.kill();
                let _ = c.wait();
                panic!("no clean exit within 10 s of SIGINT:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two servers, their configuration and the test's keys.
struct World {
    dir: tempfile::TempDir,
    visited: Server,
    home: Server,
    v_url: String,
    h_url: String,
    home_key: PrivateKey,
    device_key: PrivateKey,
    http: Client,
    orders: std::cell::Cell<u32>,
    /// Port of the `dead-uk` partner (nothing listens there unless a test starts something).
    dead_port: u16,
    /// Bearer tokens made with `mec roam token`.
    cp_token: String,
    admin_token: String,
    /// Content-provider tokens bound to [`MERCHANT`] and to [`OTHER_MERCHANT`].
    shop_token: String,
    other_token: String,
}

const OTHER_MERCHANT: &str = "Tampere \"Other\" Shop";

/// `mec roam token --scope cp --merchant <merchant>`: (token, `[[auth.cp]]` table).
fn make_bound_token(merchant: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mec"))
        .args(["roam", "token", "--scope", "cp", "--merchant", merchant])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (token, table) = text.split_once('\n').unwrap();
    assert!(
        table.starts_with("[[auth.cp]]\ntoken_sha256 = \""),
        "{table}"
    );
    assert!(!table.contains(token));
    (token.to_owned(), table.to_owned())
}

/// `mec roam token --scope <scope>`: (token, config line).
fn make_token(scope: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mec"))
        .args(["roam", "token", "--scope", scope])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let token = lines.next().unwrap().to_owned();
    let line = lines.next().unwrap().to_owned();
    assert!(
        line.starts_with(&format!("{scope}_token_sha256 = [\"")),
        "{line}"
    );
    assert!(
        !line.contains(&token),
        "only the hash goes into the configuration"
    );
    (token, line)
}

fn pem_toml(key: &PrivateKey) -> String {
    key.public_key_pem().unwrap()
}

impl World {
    fn new(seed: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut rng = SeededRng::from_u64(seed);
        let visited_key = PrivateKey::generate(&mut rng);
        let home_key = PrivateKey::generate(&mut rng);
        let signing = PrivateKey::generate(&mut rng);
        let device_key = PrivateKey::generate(&mut rng);
        let (vp, hp, dead) = (free_port(), free_port(), free_port());
        fs::write(
            d.join("visited.key.pem"),
            visited_key.to_pkcs8_pem().unwrap().as_bytes(),
        )
        .unwrap();
        fs::write(
            d.join("home.key.pem"),
            home_key.to_pkcs8_pem().unwrap().as_bytes(),
        )
        .unwrap();
        fs::write(
            d.join("alice-signing.key.pem"),
            signing.to_pkcs8_pem().unwrap().as_bytes(),
        )
        .unwrap();
        fs::write(
            d.join("alice-device.pub.pem"),
            device_key.public_key_pem().unwrap(),
        )
        .unwrap();
        fs::write(d.join("pin.hex"), "11".repeat(32)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_mec"))
            .args(["roam", "kek", "--out"])
            .arg(d.join("home.kek"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let (cp_token, cp_line) = make_token("cp");
        let (admin_token, admin_line) = make_token("admin");
        let (shop_token, shop_table) = make_bound_token(MERCHANT);
        let (other_token, other_table) = make_bound_token(OTHER_MERCHANT);
        fs::write(
            d.join("partners.toml"),
            format!(
                r#"serial = 1
[[partner]]
name = "visited-fi"
url = "http://127.0.0.1:{vp}/roam/v1/s2s/messages"
country = "FI"
country_code = "358"
verifying_key = """
{vk}"""
encryption_key = """
{vk}"""

[[partner]]
name = "home-uk"
url = "http://127.0.0.1:{hp}/roam/v1/s2s/messages"
country = "GB"
country_code = "44"
local_prefixes = ["7700", "7701"]
verifying_key = """
{hk}"""

[[partner]]
name = "dead-uk"
url = "http://127.0.0.1:{dead}/roam/v1/s2s/messages"
country = "GB"
country_code = "44"
local_prefixes = ["7799"]
verifying_key = """
{dk}"""
"#,
                vk = pem_toml(&visited_key),
                hk = pem_toml(&home_key),
                dk = pem_toml(&signing),
            ),
        )
        .unwrap();
        fs::write(
            d.join("visited.toml"),
            format!(
                r#"name = "visited-fi"
listen = "127.0.0.1:{vp}"
key = "visited.key.pem"
database = "visited.sqlite3"
registry = "partners.toml"
[timeouts]
retransmit_ms = 1000
home_response_ms = 5000
user_ms = 60000
give_up_ms = 30000
linger_ms = 600000
[http]
request_timeout_ms = 2000
delivery_attempts = 3
retry_backoff_ms = 100
max_body_bytes = 65536
[auth]
{cp_line}
{admin_line}
{shop_table}
{other_table}
[acquirer]
decline_above = 100000
"#
            ),
        )
        .unwrap();
        fs::write(
            d.join("home.toml"),
            format!(
                r#"name = "home-uk"
listen = "127.0.0.1:{hp}"
key = "home.key.pem"
database = "home.sqlite3"
registry = "partners.toml"
[timeouts]
retransmit_ms = 1000
home_response_ms = 5000
user_ms = 60000
give_up_ms = 30000
linger_ms = 600000
[auth]
{admin_line}
[storage]
kek_file = "home.kek"
[home]
pin_key = "pin.hex"
max_pin_tries = 3

[[subscriber]]
id = "{ALICE}"
pin = "1234"
payment_methods = ["card", "wallet"]
signing_key = "alice-signing.key.pem"
device_key = "alice-device.pub.pem"
card = "4111111111111111"
wallet = {{ value = 10000, currency = "EUR" }}

[[subscriber]]
id = "{BOB}"
pin = "4321"
payment_methods = ["card"]
card = "5500000000000004"

[[subscriber]]
id = "{CAROL}"
pin = "2468"
payment_methods = ["wallet"]
wallet = {{ value = 500, currency = "EUR" }}
"#
            ),
        )
        .unwrap();
        let home = Server::start("home", &d.join("home.toml"), d.join("home.log"));
        let visited = Server::start("visited", &d.join("visited.toml"), d.join("visited.log"));
        let http = Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let w = Self {
            v_url: format!("http://127.0.0.1:{vp}"),
            h_url: format!("http://127.0.0.1:{hp}"),
            dir,
            visited,
            home,
            home_key,
            device_key,
            http,
            orders: std::cell::Cell::new(0),
            dead_port: dead,
            cp_token,
            admin_token,
            shop_token,
            other_token,
        };
        w.wait_healthy(&w.v_url, "visited");
        w.wait_healthy(&w.h_url, "home");
        w
    }

    fn wait_healthy(&self, base: &str, role: &str) {
        let url = format!("{base}/roam/v1/health");
        self.wait(&format!("{role} server up"), || {
            let r = self.http.get(&url).send().ok()?;
            let v: Value = serde_json::from_str(&r.text().ok()?).ok()?;
            (v["role"] == role).then_some(())
        });
    }

    /// Polls `f` every 50 ms until it gives a value; panics with the server logs after [`WAIT`].
    fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let end = Instant::now() + WAIT;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > end {
                panic!(
                    "timed out waiting for {what}\n--- visited log ---\n{}\n--- home log ---\n{}",
                    self.visited.log(),
                    self.home.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Adds the bearer token the endpoint at `url` needs (content provider or admin).
    fn authed(
        &self,
        req: reqwest::blocking::RequestBuilder,
        url: &str,
    ) -> reqwest::blocking::RequestBuilder {
        if url.contains("/roam/v1/cp/") {
            req.bearer_auth(&self.cp_token)
        } else if url.contains("/roam/v1/admin/") {
            req.bearer_auth(&self.admin_token)
        } else {
            req
        }
    }

    fn get(&self, url: &str) -> (StatusCode, Value) {
        let r = self.authed(self.http.get(url), url).send().unwrap();
        let s = r.status();
        (
            s,
            serde_json::from_str(&r.text().unwrap_or_default()).unwrap_or(Value::Null),
        )
    }

    fn post(&self, url: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .authed(self.http.post(url), url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap();
        let s = r.status();
        (
            s,
            serde_json::from_str(&r.text().unwrap_or_default()).unwrap_or(Value::Null),
        )
    }

    fn post_jws(&self, base: &str, jws: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{base}/roam/v1/s2s/messages"))
            .header("content-type", "application/jose")
            .body(jws.to_owned())
            .send()
            .unwrap();
        let s = r.status();
        (
            s,
            serde_json::from_str(&r.text().unwrap_or_default()).unwrap_or(Value::Null),
        )
    }

    /// A content provider's start request with a fresh `cpRef`.
    fn order(
        &self,
        subscriber: &str,
        request_type: &str,
        amount: Option<u64>,
        methods: &[&str],
    ) -> Value {
        self.orders.set(self.orders.get() + 1);
        let mut body = json!({
            "cpRef": format!("order-{}", self.orders.get()),
            "subscriber": subscriber,
            "requestType": request_type,
            "merchant": MERCHANT,
            "text": "One tram day ticket, zone AB",
            "acceptedMethods": methods,
            "continueUrl": "http://cp.invalid/done",
        });
        if let Some(v) = amount {
            body["amount"] = json!({ "value": v, "currency": "EUR" });
        }
        body
    }

    /// Content provider: starts a transaction, returns its id.
    fn start(
        &self,
        subscriber: &str,
        request_type: &str,
        amount: Option<u64>,
        methods: &[&str],
    ) -> String {
        let body = self.order(subscriber, request_type, amount, methods);
        let (s, v) = self.post(&format!("{}/roam/v1/cp/transactions", self.v_url), &body);
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["events"][0]["event"], "started");
        v["transactionId"].as_str().unwrap().to_owned()
    }

    fn status(&self, tid: &str) -> Value {
        let (s, v) = self.get(&format!("{}/roam/v1/cp/transactions/{tid}", self.v_url));
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    /// Content provider: waits for the user URL to redirect the user agent to.
    fn user_url(&self, tid: &str) -> String {
        self.wait("the redirect to home", || {
            let v = self.status(tid);
            assert_ne!(v["state"], "failed", "{v}");
            v["userUrl"].as_str().map(str::to_owned)
        })
    }

    /// Content provider: waits for the transaction to end (completed or failed) with an outcome.
    fn outcome(&self, tid: &str) -> Value {
        self.wait("the outcome", || {
            let v = self.status(tid);
            let done = v["state"] == "completed" || v["state"] == "failed";
            (done && !v["outcome"].is_null()).then(|| v["outcome"].clone())
        })
    }

    /// User agent: fetches the contract.
    fn contract(&self, user_url: &str) -> (Contract, Vec<u8>) {
        let (s, v) = self.get(user_url);
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "contract", "{v}");
        let contract: Contract = serde_json::from_value(v["contract"].clone()).unwrap();
        let signing = b64::decode(v["signingInput"].as_str().unwrap()).unwrap();
        assert_eq!(
            signing,
            contract.signing_bytes(),
            "signingInput is the contract's signing bytes"
        );
        (contract, signing)
    }

    fn pin(&self, user_url: &str, pin: &str, method: Option<&str>) -> Value {
        let mut body = json!({ "pin": pin });
        if let Some(m) = method {
            body["method"] = json!(m);
        }
        let (s, v) = self.post(&format!("{user_url}/pin"), &body);
        assert!(s == StatusCode::OK, "{s} {v}");
        v
    }

    /// User agent: waits for the receipt.
    fn receipt(&self, user_url: &str) -> Value {
        self.wait("the receipt", || {
            let (_, v) = self.get(&format!("{user_url}/status"));
            (v["status"] == "receipt").then(|| v["receipt"].clone())
        })
    }

    fn subscriber(&self, id: &str) -> Value {
        let (s, v) = self.get(&format!("{}/roam/v1/admin/subscribers/{id}", self.h_url));
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    fn merchant_balance(&self) -> u64 {
        let (s, v) = self.get(&format!(
            "{}/roam/v1/cp/accounts/{}",
            self.v_url,
            MERCHANT.replace(' ', "%20")
        ));
        assert_eq!(s, StatusCode::OK, "{v}");
        v["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["currency"] == "EUR")
            .map_or(0, |b| b["value"].as_u64().unwrap())
    }

    /// The messages a server sent for `tid`, from its durable outbox: (type, JWS).
    fn sent(&self, db: &str, tid: &str) -> Vec<(String, String)> {
        let c = rusqlite::Connection::open_with_flags(
            self.dir.path().join(db),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut st = c
            .prepare("SELECT message_type, jws FROM outbox WHERE tid = ?1 ORDER BY id")
            .unwrap();
        st.query_map([tid], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

/// Verifies `jws` with joserfc (scripts/jose_check.py) when the project venv has it; `None`
/// when it does not (tests/roam_jose.rs insists on the venv in CI).
fn joserfc_verifies(dir: &Path, jws: &str, key: &PrivateKey) -> Option<bool> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let py = root.join(".venv/bin/python");
    if !py.exists() {
        return None;
    }
    fs::write(dir.join("check.jws"), jws).unwrap();
    fs::write(dir.join("check.pub.pem"), key.public_key_pem().unwrap()).unwrap();
    let out = Command::new(py)
        .arg(root.join("scripts/jose_check.py"))
        .args(["verify", "--key"])
        .arg(dir.join("check.pub.pem"))
        .arg("--token")
        .arg(dir.join("check.jws"))
        .output()
        .unwrap();
    match out.status.code() {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => None, // joserfc missing
    }
}

fn envelope_of(jws: &str) -> Envelope {
    let parsed = mec_roaming::jose::jws::parse_compact(jws).unwrap();
    parse_envelope(parsed.unverified_payload()).unwrap()
}

#[test]
fn security_flows_authentication_delegated_and_end_to_end_signature() {
    let w = World::new(1);

    // Authentication (patent Fig. 5): PIN verified at home, visited and CP notified.
    let tid = w.start(ALICE, "authentication", None, &[]);
    let url = w.user_url(&tid);
    assert!(
        url.starts_with(&w.h_url),
        "the user agent is sent to the home server: {url}"
    );
    let (contract, _) = w.contract(&url);
    assert_eq!(contract.transaction_id.as_str(), tid);
    assert_eq!(w.pin(&url, "1234", None)["status"], "submitted");
    let receipt = w.receipt(&url);
    assert_eq!(receipt["continueUrl"], "http://cp.invalid/done");
    let out = w.outcome(&tid);
    assert_eq!(out["event"], "securityCompleted", "{out}");
    assert_eq!(out["result"]["requestType"], "authentication");
    assert_eq!(out["result"]["subscriber"], ALICE);
    assert_eq!(out["result"]["contractDigest"], contract.digest());
    assert_eq!(w.status(&tid)["state"], "completed");
    let kinds: Vec<String> = w
        .sent("visited.sqlite3", &tid)
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(kinds, ["roamUserRequest", "contract", "receipt"]);

    // Delegated signature: home signs the contract with Alice's key after the PIN; the content
    // provider can verify it against the contract it asked for.
    let tid = w.start(ALICE, "digitalSignature", None, &[]);
    let url = w.user_url(&tid);
    let (contract, _) = w.contract(&url);
    assert_eq!(w.pin(&url, "1234", None)["status"], "submitted");
    let out = w.outcome(&tid);
    assert_eq!(out["event"], "securityCompleted", "{out}");
    let result: mec_roaming::message::SecurityResult =
        serde_json::from_value(out["result"].clone()).unwrap();
    mec_roaming::server::visited::verify_security_result(
        &contract,
        mec_roaming::E164::parse(ALICE).unwrap(),
        &result,
    )
    .unwrap();
    assert!(result.signature.is_some());

    // End-to-end signature: the device signs the contract bytes; home verifies and forwards.
    let tid = w.start(ALICE, "endToEndSignature", None, &[]);
    let url = w.user_url(&tid);
    let (contract, signing) = w.contract(&url);
    let (s, v) = w.post(&format!("{url}/pin"), &json!({ "pin": "1234" }));
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a PIN is refused where the device must sign: {v}"
    );
    let sig: Signature = w.device_key.signing_key().sign(&signing);
    let (s, v) = w.post(
        &format!("{url}/signature"),
        &json!({ "signature": b64::encode(&sig.to_bytes()) }),
    );
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("submitted")),
        "{v}"
    );
    let out = w.outcome(&tid);
    assert_eq!(out["event"], "securityCompleted", "{out}");
    let result: mec_roaming::message::SecurityResult =
        serde_json::from_value(out["result"].clone()).unwrap();
    mec_roaming::server::visited::verify_security_result(
        &contract,
        mec_roaming::E164::parse(ALICE).unwrap(),
        &result,
    )
    .unwrap();
    assert_eq!(
        result.signature.as_deref(),
        Some(b64::encode(&sig.to_bytes()).as_str())
    );

    // A device signature over something else fails the transaction on both sides.
    let tid = w.start(ALICE, "endToEndSignature", None, &[]);
    let url = w.user_url(&tid);
    let _ = w.contract(&url);
    let bad: Signature = w.device_key.signing_key().sign(b"another contract");
    let (_, v) = w.post(
        &format!("{url}/signature"),
        &json!({ "signature": b64::encode(&bad.to_bytes()) }),
    );
    assert_eq!(v["status"], "failed", "{v}");
    let out = w.outcome(&tid);
    assert_eq!(
        (out["event"].as_str(), out["code"].as_u64()),
        (Some("failed"), Some(305)),
        "{out}"
    );
}

#[test]
fn payment_card_and_wallet_flows_move_money_once_and_replays_are_refused() {
    let w = World::new(2);
    assert_eq!(w.merchant_balance(), 0);

    // Card payment (Fig. 6): Bob has a card only; the content provider accepts wallet and card.
    let tid = w.start(BOB, "payment", Some(1250), &["wallet", "card"]);
    let url = w.user_url(&tid);
    let (contract, _) = w.contract(&url);
    assert_eq!(
        contract.payment_methods,
        vec![mec_roaming::message::PaymentMethod::Card],
        "methods intersected"
    );
    assert_eq!(w.pin(&url, "4321", Some("card"))["status"], "submitted");
    let out = w.outcome(&tid);
    assert_eq!(out["event"], "paid", "{out}");
    assert_eq!(out["method"], "card");
    assert_eq!(out["amount"]["value"], 1250);
    let receipt = w.receipt(&url);
    assert_eq!(receipt["outcome"], "paid");
    assert_eq!(w.merchant_balance(), 1250);
    // The card travelled as a single-use token encrypted to the visited server, never as a PAN.
    let auth = w
        .sent("home.sqlite3", &tid)
        .into_iter()
        .find(|m| m.0 == "paymentAuthorization")
        .unwrap()
        .1;
    let env = envelope_of(&auth);
    let Body::PaymentAuthorization { authorization } = &env.body else {
        panic!("{env:?}")
    };
    assert!(matches!(
        authorization.instrument,
        mec_roaming::message::PaymentInstrument::EncryptedToken { .. }
    ));
    assert!(!auth.contains("5500000000000004") && !w.home.log().contains("5500000000000004"));

    // Wallet payment: the home wallet pays the content provider's account, exactly once.
    let tid = w.start(ALICE, "payment", Some(2500), &["wallet"]);
    let url = w.user_url(&tid);
    let _ = w.contract(&url);
    assert_eq!(w.pin(&url, "1234", Some("wallet"))["status"], "submitted");
    let out = w.outcome(&tid);
    assert_eq!(
        (out["event"].as_str(), out["method"].as_str()),
        (Some("paid"), Some("wallet")),
        "{out}"
    );
    assert_eq!(w.receipt(&url)["amount"]["value"], 2500);
    assert_eq!(w.merchant_balance(), 3750);
    assert_eq!(w.subscriber(ALICE)["wallet"]["value"], 7500);

    // What the running home server signed verifies with a standard JOSE library.
    if let Some(ok) = joserfc_verifies(w.dir.path(), &auth, &w.home_key) {
        assert!(ok, "joserfc refused the home server's JWS");
    }

    // The network repeats home's payment authorization: answered as before, acted on once.
    let auth = w
        .sent("home.sqlite3", &tid)
        .into_iter()
        .find(|m| m.0 == "paymentAuthorization")
        .unwrap()
        .1;
    for _ in 0..3 {
        let (s, v) = w.post_jws(&w.v_url, &auth);
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }
    // A replay under the same message id with other content (an attacker holding a key would
    // need home's key; we have it in this test) is refused: 303.
    let mut env = envelope_of(&auth);
    if let Body::PaymentAuthorization { authorization } = &mut env.body {
        authorization.amount.value = 1;
    }
    let forged = mec_roaming::jose::jws::sign_compact(
        &w.home_key,
        "home-uk",
        &serde_json::to_vec(&env).unwrap(),
    )
    .unwrap();
    let (s, v) = w.post_jws(&w.v_url, &forged);
    assert_eq!(
        (s, v["code"].as_u64()),
        (StatusCode::FORBIDDEN, Some(303)),
        "{v}"
    );
    // A stale message (issued before the validity window) is refused: 303.
    let mut stale = envelope_of(&auth);
    stale.mid = MessageId::parse("stale-message-1").unwrap();
    stale.iat = stale.iat.saturating_sub(3600);
    let stale = mec_roaming::jose::jws::sign_compact(
        &w.home_key,
        "home-uk",
        &serde_json::to_vec(&stale).unwrap(),
    )
    .unwrap();
    let (s, v) = w.post_jws(&w.v_url, &stale);
    assert_eq!(
        (s, v["code"].as_u64()),
        (StatusCode::FORBIDDEN, Some(303)),
        "{v}"
    );
    // A tampered signature is refused: 303.
    // (The first character of the signature part carries six full bits, so any other
    // base64url character there is still canonical base64url: the signature check refuses it.)
    let sig_at = auth.rfind('.').unwrap() + 1;
    let mut bad = auth.clone();
    let first = if auth[sig_at..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    bad.replace_range(sig_at..=sig_at, first);
    let (s, v) = w.post_jws(&w.v_url, &bad);
    assert_eq!(
        (s, v["code"].as_u64()),
        (StatusCode::FORBIDDEN, Some(303)),
        "{v}"
    );
    // Not a JWS at all: 101; wrong media type: 415.
    let (s, v) = w.post_jws(&w.v_url, "not a jws");
    assert_eq!(
        (s, v["code"].as_u64()),
        (StatusCode::BAD_REQUEST, Some(101)),
        "{v}"
    );
    let r = w
        .http
        .post(format!("{}/roam/v1/s2s/messages", w.v_url))
        .body(auth.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.merchant_balance(), 3750, "no second payment");
    assert_eq!(
        w.subscriber(ALICE)["wallet"]["value"],
        7500,
        "no second debit"
    );
    assert_eq!(w.status(&tid)["state"], "completed");
    let paid: usize = w.status(&tid)["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "paid")
        .count();
    assert_eq!(paid, 1, "the content provider is told once");
}

#[test]
fn wrong_pin_three_times_locks_the_subscriber() {
    let w = World::new(3);
    let tid = w.start(BOB, "authentication", None, &[]);
    let url = w.user_url(&tid);
    let _ = w.contract(&url);
    assert_eq!(
        w.pin(&url, "0000", None),
        json!({ "status": "wrongPin", "triesLeft": 2 })
    );
    assert_eq!(
        w.pin(&url, "1111", None),
        json!({ "status": "wrongPin", "triesLeft": 1 })
    );
    assert_eq!(w.pin(&url, "2222", None), json!({ "status": "blocked" }));
    let out = w.outcome(&tid);
    assert_eq!(
        (out["event"].as_str(), out["code"].as_u64()),
        (Some("failed"), Some(303)),
        "{out}"
    );
    assert_eq!(w.subscriber(BOB)["pinTriesLeft"], 0);
    // The right PIN no longer helps on that session...
    let v = w.pin(&url, "4321", None);
    assert_eq!(v["status"], "failed", "{v}");
    // ...and a new request for Bob is refused by home (subscriber blocked).
    let tid = w.start(BOB, "payment", Some(100), &["card"]);
    let out = w.outcome(&tid);
    assert_eq!(
        (out["event"].as_str(), out["code"].as_u64()),
        (Some("failed"), Some(303)),
        "{out}"
    );
    assert!(
        w.status(&tid)["userUrl"].is_null(),
        "no redirect for a blocked subscriber"
    );
    // A PIN that is not 4-12 digits never reaches the machine.
    let (s, v) = w.post(&format!("{url}/pin"), &json!({ "pin": "12" }));
    assert_eq!(
        (s, v["code"].as_u64()),
        (StatusCode::BAD_REQUEST, Some(203)),
        "{v}"
    );
}

#[test]
fn unknown_subscriber_bad_requests_and_restart_keeps_transactions() {
    let mut w = World::new(4);
    // Nobody serves +1...: refused without asking any partner.
    let tid = w.start(NOBODY, "authentication", None, &[]);
    let out = w.outcome(&tid);
    assert_eq!(
        (out["event"].as_str(), out["code"].as_u64()),
        (Some("failed"), Some(303)),
        "{out}"
    );
    assert!(w.sent("visited.sqlite3", &tid).is_empty(), "no broadcast");
    // Bad content-provider requests.
    let (s, v) = w.post(
        &format!("{}/roam/v1/cp/transactions", w.v_url),
        &json!({ "cpRef": "x" }),
    );
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = w.post(
        &format!("{}/roam/v1/cp/transactions", w.v_url),
        &json!({ "cpRef": "x", "subscriber": "not a number", "requestType": "authentication", "merchant": "M", "text": "t", "continueUrl": "http://x" }),
    );
    assert_eq!(
        (s, v["code"].as_u64()),
        (StatusCode::BAD_REQUEST, Some(203)),
        "{v}"
    );
    let (s, _) = w.get(&format!("{}/roam/v1/cp/transactions/unknown", w.v_url));
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = w.get(&format!("{}/roam/v1/user/sessions/nosuchsession", w.h_url));
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknownSession"))
    );

    // cpRef is the idempotency key of a start: a retried POST gets the same transaction, the
    // same cpRef with another request is refused.
    let body = w.order(ALICE, "authentication", None, &[]);
    let starts = format!("{}/roam/v1/cp/transactions", w.v_url);
    let (s, first) = w.post(&starts, &body);
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, again) = w.post(&starts, &body);
    assert_eq!(
        (s, &again["transactionId"]),
        (StatusCode::OK, &first["transactionId"]),
        "{again}"
    );
    let mut other = body.clone();
    other["text"] = json!("something else");
    let (s, v) = w.post(&starts, &other);
    assert_eq!(
        (s, v["code"].as_u64()),
        (StatusCode::CONFLICT, Some(305)),
        "{v}"
    );

    // Crash-restart: the home server is killed while the user is on the contract page; the
    // restarted process restores the transaction from SQLite and the flow completes.
    let tid = w.start(ALICE, "authentication", None, &[]);
    let url = w.user_url(&tid);
    let _ = w.contract(&url);
    w.home.kill();
    let d = w.dir.path().to_owned();
    // Secrets are sealed at rest: no card number in the database file, and a restart with
    // another key-encryption key (or a KEK file others can read) stops with a clear error and
    // changes nothing.
    let db = fs::read(d.join("home.sqlite3")).unwrap();
    assert!(!db.windows(16).any(|x| x == b"4111111111111111"));
    let good_kek = fs::read(d.join("home.kek")).unwrap();
    let swap_kek = |bytes: &[u8], mode: u32| {
        let p = d.join("home.kek");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
            fs::write(&p, bytes).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        {
            let _ = mode;
            fs::write(&p, bytes).unwrap();
        }
    };
    for (bytes, mode, expect) in [
        (vec![0x5a; 32], 0o600, "does not open this database"),
        (good_kek.clone(), 0o644, "chmod 600"),
    ] {
        if cfg!(not(unix)) && mode != 0o600 {
            continue;
        }
        swap_kek(&bytes, mode);
        let out = Command::new(env!("CARGO_BIN_EXE_mec"))
            .args(["roam", "serve", "--role", "home", "--config"])
            .arg(d.join("home.toml"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(expect), "{err}");
    }
    swap_kek(&good_kek, 0o600);
    w.home = Server::start("home", &d.join("home.toml"), d.join("home.log"));
    w.wait_healthy(&w.h_url.clone(), "home");
    let _ = w.contract(&url);
    assert_eq!(w.pin(&url, "1234", None)["status"], "submitted");
    let out = w.outcome(&tid);
    assert_eq!(out["event"], "securityCompleted", "{out}");
    assert!(w.home.log().contains("restored"), "{}", w.home.log());

    // Serial-numbered registry updates at run time: applied in order, stored, refused on a
    // duplicate or a gap.
    let add = |serial: u64| {
        json!({ "serial": serial, "operation": [{ "op": "add", "partner": {
            "name": format!("home-us-{serial}"), "url": "http://127.0.0.1:9/roam/v1/s2s/messages",
            "country": "US", "country_code": "1", "local_prefixes": [format!("55{serial}")],
            "verifying_key": w.device_key.public_key_pem().unwrap() } }] })
    };
    let updates = format!("{}/roam/v1/admin/registry/updates", w.v_url);
    let (s, v) = w.post(&updates, &add(2));
    assert_eq!(
        (s, v["serial"].as_u64(), v["partners"].as_u64()),
        (StatusCode::OK, Some(2), Some(4)), // visited-fi, home-uk, dead-uk + the new one
        "{v}"
    );
    let (s, v) = w.post(&updates, &add(2));
    assert_eq!(s, StatusCode::CONFLICT, "duplicate serial: {v}");
    let (s, v) = w.post(&updates, &add(4));
    assert_eq!(s, StatusCode::CONFLICT, "gap: {v}");

    // Ctrl-C shuts the visited server down cleanly; restarted, it keeps the updated registry.
    let status = w.visited.interrupt();
    assert!(status.success(), "exit status {status}");
    assert!(
        w.visited.log().contains("shutting down"),
        "{}",
        w.visited.log()
    );
    w.visited = Server::start("visited", &d.join("visited.toml"), d.join("visited.log"));
    w.wait_healthy(&w.v_url.clone(), "visited");
    let (_, v) = w.get(&format!("{}/roam/v1/health", w.v_url));
    assert_eq!(v["registrySerial"], 2, "{v}");
    let (_, v) = w.post(&updates, &add(3));
    assert_eq!(v["serial"], 3, "{v}");
}

#[test]
fn a_home_server_that_is_down_fails_the_transaction_promptly() {
    let mut w = World::new(5);
    w.home.kill();
    let t0 = Instant::now();
    let tid = w.start(ALICE, "authentication", None, &[]);
    // Deliveries fail (connection refused) to home-uk and then to the other GB candidate
    // (dead-uk); each report of the delivery task moves location on, and with no candidate
    // left the transaction fails with 405 (system connection failure), well before the 5 s
    // home-response deadline.
    let out = w.outcome(&tid);
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_eq!(
        (out["event"].as_str(), out["code"].as_u64()),
        (Some("failed"), Some(405)),
        "{out}"
    );
    let asked: Vec<String> = w
        .sent("visited.sqlite3", &tid)
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(
        asked,
        ["roamUserRequest", "roamUserRequest"],
        "each candidate once"
    );
    let c = rusqlite::Connection::open_with_flags(
        w.dir.path().join("visited.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (attempts, status): (u32, String) = c
        .query_row(
            "SELECT attempts, last_status FROM outbox WHERE tid = ?1 ORDER BY id LIMIT 1",
            [&tid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(attempts, 3, "bounded retries: {status}");
    assert!(status.starts_with("error"), "{status}");
}

#[test]
fn a_partner_with_nothing_listening_is_skipped_and_the_home_found() {
    let w = World::new(7);
    let t0 = Instant::now();
    let tid = w.start(CAROL, "payment", Some(300), &["wallet"]);
    let url = w.user_url(&tid);
    // Failed over when the delivery task gave up on dead-uk (3 attempts, 100 + 200 ms
    // back-off), not at the 5 s home-response deadline.
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert!(url.starts_with(&w.h_url), "{url}");
    assert_eq!(w.pin(&url, "2468", None)["status"], "submitted");
    let out = w.outcome(&tid);
    assert_eq!(out["event"], "paid", "{out}");
    assert_eq!(w.subscriber(CAROL)["wallet"]["value"], 200);
    let c = rusqlite::Connection::open_with_flags(
        w.dir.path().join("visited.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut st = c
        .prepare(
            "SELECT to_partner, message_type, attempts, last_status FROM outbox \
             WHERE tid = ?1 ORDER BY id",
        )
        .unwrap();
    let rows: Vec<(String, String, u32, String)> = st
        .query_map([&tid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str(), rows[0].2),
        ("dead-uk", "roamUserRequest", 3),
        "{rows:?}"
    );
    assert!(rows[0].3.starts_with("error"), "{rows:?}");
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str()),
        ("home-uk", "roamUserRequest"),
        "{rows:?}"
    );
    assert_eq!(
        rows.iter().filter(|r| r.0 == "dead-uk").count(),
        1,
        "dead-uk asked once: {rows:?}"
    );
    assert!(
        w.visited.log().contains("undeliverable"),
        "{}",
        w.visited.log()
    );

    // Now dead-uk answers, but refuses every message (403): refused once, not retried, and
    // location moves on; home-uk does not know this number either, so the transaction fails
    // with 404 (a candidate refused) at once.
    let listener = TcpListener::bind(("127.0.0.1", w.dead_port)).unwrap();
    std::thread::spawn(move || refuse_everything(&listener));
    let t0 = Instant::now();
    let tid = w.start("+447799000001", "authentication", None, &[]);
    let out = w.outcome(&tid);
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_eq!(
        (out["event"].as_str(), out["code"].as_u64()),
        (Some("failed"), Some(404)),
        "{out}"
    );
    let (attempts, status): (u32, String) = c
        .query_row(
            "SELECT attempts, last_status FROM outbox WHERE tid = ?1 AND to_partner = 'dead-uk'",
            [&tid],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (attempts, status.as_str()),
        (1, "403"),
        "a refusal is not retried"
    );
}

/// A partner endpoint that answers every request with 403 and a wire error body.
fn refuse_everything(listener: &TcpListener) {
    use std::io::{Read, Write};
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { return };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        // Read the whole request (headers, then content-length bytes) before answering, so
        // closing the socket cannot reset the connection under the client.
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let head_end = req.windows(4).position(|w| w == b"\r\n\r\n");
            if let Some(end) = head_end {
                let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if req.len() >= end + 4 + len {
                    break;
                }
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => req.extend_from_slice(&buf[..n]),
            }
        }
        let body = r#"{"code":303,"detail":"unknown sender"}"#;
        let _ = write!(
            s,
            "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

/// The content-provider and admin endpoints need their bearer token: without one, with a
/// wrong one, or with the other scope's, 401 with `WWW-Authenticate: Bearer` and nothing
/// changes; with it, success.
#[test]
fn content_provider_and_admin_endpoints_need_their_bearer_token() {
    let w = World::new(8);
    let starts = format!("{}/roam/v1/cp/transactions", w.v_url);
    let body = w.order(ALICE, "authentication", None, &[]);
    let wrong = "d3JvbmctdG9rZW4td3JvbmctdG9rZW4td3JvbmctdG9rZW4";
    let try_post = |url: &str, token: Option<&str>, body: String| {
        let mut r = w
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().unwrap()
    };
    let try_get = |url: &str, token: Option<&str>| {
        let mut r = w.http.get(url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().unwrap()
    };
    let refused = |r: reqwest::blocking::Response, what: &str| {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer "), "{what}: {challenge}");
        let v: Value = serde_json::from_str(&r.text().unwrap()).unwrap();
        assert_eq!(v["code"], 303, "{what}: {v}");
        challenge
    };
    let c = refused(try_post(&starts, None, body.to_string()), "no token");
    assert!(
        !c.contains("error="),
        "no token: no error code (RFC 6750 §3.1): {c}"
    );
    let c = refused(
        try_post(&starts, Some(wrong), body.to_string()),
        "wrong token",
    );
    assert!(c.contains("error=\"invalid_token\""), "{c}");
    refused(
        try_post(&starts, Some(&w.admin_token), body.to_string()),
        "admin token at a cp endpoint",
    );
    let r = w
        .http
        .post(&starts)
        .header("content-type", "application/json")
        .header("authorization", format!("Basic {}", w.cp_token))
        .body(body.to_string())
        .send()
        .unwrap();
    refused(r, "another scheme");
    // Nothing was started: the same cpRef with the right token creates the transaction.
    let r = try_post(&starts, Some(&w.cp_token), body.to_string());
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = serde_json::from_str(&r.text().unwrap()).unwrap();
    let tid = v["transactionId"].as_str().unwrap().to_owned();
    let status = format!("{}/roam/v1/cp/transactions/{tid}", w.v_url);
    refused(try_get(&status, None), "status without token");
    refused(try_get(&status, Some(wrong)), "status with a wrong token");
    assert_eq!(try_get(&status, Some(&w.cp_token)).status(), StatusCode::OK);
    let account = format!("{}/roam/v1/cp/accounts/M", w.v_url);
    refused(try_get(&account, Some(wrong)), "account with a wrong token");
    assert_eq!(
        try_get(&account, Some(&w.cp_token)).status(),
        StatusCode::OK
    );

    // Admin: registry updates (both servers) and subscribers (home).
    let update = json!({ "serial": 2, "operation": [{ "op": "delete", "name": "dead-uk" }] });
    for base in [&w.v_url, &w.h_url] {
        let url = format!("{base}/roam/v1/admin/registry/updates");
        refused(
            try_post(&url, None, update.to_string()),
            "update without token",
        );
        refused(
            try_post(&url, Some(wrong), update.to_string()),
            "wrong token",
        );
        refused(
            try_post(&url, Some(&w.cp_token), update.to_string()),
            "cp token at an admin endpoint",
        );
        let (_, v) = w.get(&format!("{base}/roam/v1/health"));
        assert_eq!(v["registrySerial"], 1, "nothing applied: {v}");
        let r = try_post(&url, Some(&w.admin_token), update.to_string());
        let v: Value = serde_json::from_str(&r.text().unwrap()).unwrap();
        assert_eq!(v["serial"], 2, "{v}");
    }
    let sub = format!("{}/roam/v1/admin/subscribers/{ALICE}", w.h_url);
    refused(try_get(&sub, None), "subscriber without token");
    refused(try_get(&sub, Some(wrong)), "subscriber with a wrong token");
    let r = try_get(&sub, Some(&w.admin_token));
    assert_eq!(r.status(), StatusCode::OK);

    // Health, s2s and user-agent endpoints take no bearer token.
    assert_eq!(
        try_get(&format!("{}/roam/v1/health", w.h_url), None).status(),
        StatusCode::OK
    );
    let url = w.user_url(&tid);
    assert_eq!(try_get(&url, None).status(), StatusCode::OK);
    assert_eq!(w.pin(&url, "1234", None)["status"], "submitted");
    assert_eq!(w.outcome(&tid)["event"], "securityCompleted");
}

/// Percent-encodes every byte (a valid path segment whatever the bytes).
/// Merchant-bound content-provider tokens (`[[auth.cp]]`): a token starts transactions and
/// reads accounts only for its merchant (403 otherwise, nothing started), another merchant's
/// transaction answers as unknown (404), and cpRefs are per merchant.
#[test]
fn merchant_bound_content_provider_tokens_see_only_their_merchant() {
    let w = World::new(9);
    let send = |req: reqwest::blocking::RequestBuilder, token: &str| {
        let r = req.bearer_auth(token).send().unwrap();
        let s = r.status();
        (
            s,
            serde_json::from_str::<Value>(&r.text().unwrap()).unwrap_or(Value::Null),
        )
    };
    let starts = format!("{}/roam/v1/cp/transactions", w.v_url);
    let post = |token: &str, body: &Value| {
        send(
            w.http
                .post(&starts)
                .header("content-type", "application/json")
                .body(body.to_string()),
            token,
        )
    };
    let get = |token: &str, url: &str| send(w.http.get(url), token);

    // The shop's own token starts a transaction for its merchant and reads it.
    let body = w.order(ALICE, "authentication", None, &[]);
    let (s, v) = post(&w.shop_token, &body);
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let tid = v["transactionId"].as_str().unwrap().to_owned();
    let status = format!("{starts}/{tid}");
    assert_eq!(get(&w.shop_token, &status).0, StatusCode::OK);
    assert_eq!(
        get(&w.cp_token, &status).0,
        StatusCode::OK,
        "all-merchants token"
    );

    // The other merchant's token: the transaction is unknown, exactly as a missing one.
    let (s, v) = get(&w.other_token, &status);
    let (s2, v2) = get(&w.other_token, &format!("{starts}/no-such-transaction"));
    assert_eq!((s, &v), (StatusCode::NOT_FOUND, &v2), "{v}");
    assert_eq!(s2, StatusCode::NOT_FOUND);
    assert_eq!(v["code"], 301, "{v}");

    // ... may not start one for the shop (nothing is started: the shop's token then gets a
    // new transaction under that cpRef) ...
    let body2 = w.order(ALICE, "authentication", None, &[]);
    let (s, v) = post(&w.other_token, &body2);
    assert_eq!(
        (s, v["code"].as_u64()),
        (StatusCode::FORBIDDEN, Some(303)),
        "{v}"
    );
    let (s, v) = post(&w.shop_token, &body2);
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // ... and cpRefs are per merchant: the shop's cpRef is free for the other merchant.
    let mut mine = body.clone();
    mine["merchant"] = json!(OTHER_MERCHANT);
    let (s, v) = post(&w.other_token, &mine);
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_ne!(v["transactionId"].as_str(), Some(tid.as_str()));
    let (s, v) = post(&w.shop_token, &body);
    assert_eq!(
        (s, v["transactionId"].as_str()),
        (StatusCode::OK, Some(tid.as_str())),
        "the shop's retry still finds its own transaction: {v}"
    );

    // Accounts: only the token's own merchant (403 otherwise); all-merchants tokens see every one.
    let account = |m: &str| format!("{}/roam/v1/cp/accounts/{}", w.v_url, pct(m.as_bytes()));
    let (s, v) = get(&w.other_token, &account(MERCHANT));
    assert_eq!(
        (s, v["code"].as_u64()),
        (StatusCode::FORBIDDEN, Some(303)),
        "{v}"
    );
    let (s, v) = get(&w.shop_token, &account(MERCHANT));
    assert_eq!(
        (s, v["merchant"].as_str()),
        (StatusCode::OK, Some(MERCHANT)),
        "{v}"
    );
    let (s, v) = get(&w.other_token, &account(OTHER_MERCHANT));
    assert_eq!(
        (s, v["merchant"].as_str()),
        (StatusCode::OK, Some(OTHER_MERCHANT)),
        "{v}"
    );
    assert_eq!(get(&w.cp_token, &account(OTHER_MERCHANT)).0, StatusCode::OK);
    assert_eq!(
        get(&w.shop_token, &account(OTHER_MERCHANT)).0,
        StatusCode::FORBIDDEN
    );
    assert!(
        w.visited.log().contains("bound to another merchant"),
        "{}",
        w.visited.log()
    );
}

fn pct(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn mutate(rng: &mut SeededRng, sample: &[u8]) -> Vec<u8> {
    use rand_core::Rng;
    let mut m = sample.to_vec();
    match rng.next_u32() % 4 {
        0 => m.truncate(usize::try_from(rng.next_u32()).unwrap() % (m.len() + 1)),
        1 => {
            let mut extra = vec![0u8; usize::try_from(rng.next_u32() % 64).unwrap()];
            rng.fill_bytes(&mut extra);
            m.extend_from_slice(&extra);
        }
        _ => {
            for _ in 0..=(rng.next_u32() % 4) {
                if m.is_empty() {
                    break;
                }
                let i = usize::try_from(rng.next_u32()).unwrap() % m.len();
                m[i] = u8::try_from(rng.next_u32() % 256).unwrap();
            }
        }
    }
    m
}

/// Garbage and mutated messages at every endpoint: always an HTTP answer (no handler panic
/// drops the connection), never a 500, both servers stay up and still complete a flow.
#[test]
fn garbage_at_every_endpoint_never_crashes_a_server() {
    use rand_core::Rng;
    let w = World::new(6);
    let tid = w.start(ALICE, "digitalSignature", None, &[]);
    let url = w.user_url(&tid);
    let _ = w.contract(&url);
    assert_eq!(w.pin(&url, "1234", None)["status"], "submitted");
    let _ = w.outcome(&tid);
    let session = url.rsplit('/').next().unwrap().to_owned();
    let mut jws: Vec<(String, Vec<u8>)> = Vec::new();
    for (db, to) in [("visited.sqlite3", &w.h_url), ("home.sqlite3", &w.v_url)] {
        for (_, m) in w.sent(db, &tid) {
            jws.push((to.clone(), m.into_bytes()));
        }
    }
    let start = serde_json::to_vec(&w.order(ALICE, "payment", Some(100), &["card"])).unwrap();
    let pin = br#"{"pin":"1234","method":"card"}"#.to_vec();
    let mut rng = SeededRng::from_u64(0x6761_7262);
    for i in 0..400u32 {
        let (method, target, ct, body): (&str, String, &str, Vec<u8>) = match i % 6 {
            0 | 1 => {
                let (to, sample) = &jws[usize::try_from(rng.next_u32()).unwrap() % jws.len()];
                (
                    "POST",
                    format!("{to}/roam/v1/s2s/messages"),
                    "application/jose",
                    mutate(&mut rng, sample),
                )
            }
            2 => (
                "POST",
                format!("{}/roam/v1/cp/transactions", w.v_url),
                "application/json",
                mutate(&mut rng, &start),
            ),
            3 => (
                "POST",
                format!("{url}/pin"),
                "application/json",
                mutate(&mut rng, &pin),
            ),
            4 => {
                let mut seg = vec![0u8; 1 + usize::try_from(rng.next_u32() % 80).unwrap()];
                rng.fill_bytes(&mut seg);
                let paths = [
                    format!("{}/roam/v1/cp/transactions/{}", w.v_url, pct(&seg)),
                    format!("{}/roam/v1/cp/accounts/{}", w.v_url, pct(&seg)),
                    format!("{}/roam/v1/user/sessions/{}", w.h_url, pct(&seg)),
                    format!("{}/roam/v1/user/sessions/{}/status", w.h_url, pct(&seg)),
                    format!("{}/roam/v1/admin/subscribers/{}", w.h_url, pct(&seg)),
                ];
                (
                    "GET",
                    paths[usize::try_from(rng.next_u32()).unwrap() % paths.len()].clone(),
                    "",
                    Vec::new(),
                )
            }
            _ => (
                "POST",
                format!("{}/roam/v1/user/sessions/{session}/signature", w.h_url),
                "application/json",
                mutate(&mut rng, br#"{"signature":"AAAA"}"#),
            ),
        };
        let req = if method == "GET" {
            w.authed(w.http.get(&target), &target)
        } else {
            w.authed(w.http.post(&target), &target)
                .header("content-type", ct)
                .body(body)
        };
        let r = req.send().unwrap_or_else(|e| {
            panic!(
                "request {i} to {target} got no answer: {e}\n{}\n{}",
                w.visited.log(),
                w.home.log()
            )
        });
        assert!(
            !r.status().is_server_error() || r.status() == StatusCode::SERVICE_UNAVAILABLE,
            "request {i} {target}: {}",
            r.status()
        );
    }
    w.wait_healthy(&w.v_url, "visited");
    w.wait_healthy(&w.h_url, "home");
    let tid = w.start(BOB, "authentication", None, &[]);
    let url = w.user_url(&tid);
    let _ = w.contract(&url);
    assert_eq!(w.pin(&url, "4321", None)["status"], "submitted");
    assert_eq!(w.outcome(&tid)["event"], "securityCompleted");
}
