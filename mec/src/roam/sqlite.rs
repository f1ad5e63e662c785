//! SQLite (bundled `rusqlite`) implementations of the library's store traits, plus the
//! servers' durable journal of transactions and sent messages.
//!
//! Each object owns its own connection to the one database file (WAL mode, so readers never
//! block the writer). Every change that must happen at most once (a wallet debit, its
//! reversal, an acquirer payment) runs in one `BEGIN IMMEDIATE` transaction keyed by the
//! transaction's idempotency key, so a retried message finds the first outcome and moves no
//! money again.

use std::path::Path;
use std::time::Duration;

use mec_roaming::E164;
use mec_roaming::error::Error;
use mec_roaming::jose::keys::{self, PrivateKey};
use mec_roaming::message::{Amount, PaymentMethod};
use mec_roaming::server::{Acquirer, AcquirerOutcome, PaymentInstruction};
use mec_roaming::store::{CardCredential, PinVerifier, Subscriber, SubscriberStore, WalletDebit};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use zeroize::Zeroizing;

use super::seal::{self, Kek, OpenError, Slot};

/// Schema of every table, created on open when missing.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS subscribers (
    id TEXT PRIMARY KEY,
    pin_verifier BLOB NOT NULL,
    pin_tries_left INTEGER NOT NULL,
    payment_methods TEXT NOT NULL,
    signing_key BLOB,
    device_key BLOB,
    card BLOB,
    wallet_value INTEGER,
    wallet_currency TEXT,
    wallet BLOB
);
CREATE TABLE IF NOT EXISTS storage_meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS wallet_ledger (
    key TEXT PRIMARY KEY,
    subscriber TEXT NOT NULL,
    value INTEGER NOT NULL,
    currency TEXT NOT NULL,
    reversed INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS acquirer_payments (
    tid TEXT PRIMARY KEY,
    merchant TEXT NOT NULL,
    value INTEGER NOT NULL,
    currency TEXT NOT NULL,
    method TEXT NOT NULL,
    token TEXT UNIQUE,
    masked_pan TEXT,
    wallet_home TEXT,
    wallet_debit TEXT,
    approved INTEGER NOT NULL,
    detail TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS merchant_accounts (
    merchant TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance INTEGER NOT NULL,
    PRIMARY KEY (merchant, currency)
);
CREATE TABLE IF NOT EXISTS transactions (
    party TEXT NOT NULL,
    tid TEXT NOT NULL,
    state TEXT NOT NULL,
    cp_ref TEXT,
    request TEXT,
    user_url TEXT,
    outcome TEXT,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (party, tid)
);
CREATE INDEX IF NOT EXISTS transactions_cp_ref ON transactions (party, cp_ref);
CREATE TABLE IF NOT EXISTS cp_events (
    tid TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (tid, seq)
);
CREATE TABLE IF NOT EXISTS machine_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    snapshot TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    serial INTEGER NOT NULL,
    config TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tid TEXT NOT NULL,
    to_partner TEXT NOT NULL,
    url TEXT NOT NULL,
    message_type TEXT NOT NULL,
    jws TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status TEXT
);
";

fn store_err(e: &rusqlite::Error) -> Error {
    Error::Store(format!("sqlite: {e}"))
}

/// Opens (creating if needed) the database at `path` with the schema, WAL and a busy timeout.
///
/// # Errors
/// The SQLite error.
pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn methods_text(m: &[PaymentMethod]) -> String {
    m.iter()
        .map(|x| match x {
            PaymentMethod::Card => "card",
            PaymentMethod::Wallet => "wallet",
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_methods(t: &str) -> Result<Vec<PaymentMethod>, Error> {
    t.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "card" => Ok(PaymentMethod::Card),
            "wallet" => Ok(PaymentMethod::Wallet),
            _ => Err(Error::Store(format!(
                "unknown payment method {s:?} in database"
            ))),
        })
        .collect()
}

fn to_i64(v: u64) -> Result<i64, Error> {
    i64::try_from(v).map_err(|_| Error::Store("amount too large for the database".into()))
}

fn to_u64(v: i64) -> Result<u64, Error> {
    u64::try_from(v).map_err(|_| Error::Store("negative amount in the database".into()))
}

/// A subscriber as provisioned from the configuration.
pub(crate) struct NewSubscriber {
    pub(crate) id: E164,
    pub(crate) pin_verifier: PinVerifier,
    pub(crate) pin_tries: u8,
    pub(crate) payment_methods: Vec<PaymentMethod>,
    pub(crate) signing_key: Option<PrivateKey>,
    pub(crate) device_key: Option<p256::PublicKey>,
    pub(crate) card_number: Option<Zeroizing<String>>,
    pub(crate) wallet: Option<Amount>,
}

/// The home server's [`SubscriberStore`] in SQLite. The secret columns (`signing_key`, `card`,
/// `wallet`) hold values sealed with the KEK (see [`seal`]); the PIN verifier is a keyed hash
/// and stays as it is.
#[derive(Debug)]
pub(crate) struct SqliteSubscriberStore {
    conn: Connection,
    kek: Kek,
}

/// Plaintext of the key-check value in `storage_meta`.
const KEK_CHECK: &[u8] = b"mec roam key-encryption key check v1";

const fn slot<'a>(column: &'a str, id: &'a str) -> Slot<'a> {
    Slot {
        table: "subscribers",
        column,
        row: id,
    }
}

const KEK_CHECK_SLOT: Slot<'static> = Slot {
    table: "storage_meta",
    column: "value",
    row: "kek_check",
};

/// What [`SqliteSubscriberStore::open`] did to the database.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Migration {
    /// Plaintext values (written before secrets were sealed) now sealed.
    pub(crate) sealed: usize,
}

fn wallet_plain(w: &Amount) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(w.value.to_be_bytes().to_vec());
    v.extend_from_slice(w.currency.as_bytes());
    v
}

fn parse_wallet_plain(p: &[u8]) -> Result<Amount, Error> {
    let bad = || Error::Store("sealed wallet value malformed".into());
    let (value, currency) = p.split_at_checked(8).ok_or_else(bad)?;
    let value = u64::from_be_bytes(value.try_into().map_err(|_| bad())?);
    let currency = std::str::from_utf8(currency).map_err(|_| bad())?.to_owned();
    Ok(Amount { value, currency })
}

impl SqliteSubscriberStore {
    /// Opens the store with its key-encryption key. A database written before secrets were
    /// sealed is migrated first: every plaintext secret is sealed in place, in one transaction.
    /// A KEK other than the database's is refused before anything is written.
    ///
    /// # Errors
    /// SQLite errors, a KEK that does not open the database, or a malformed stored value.
    pub(crate) fn open(path: &Path, kek: Kek) -> Result<(Self, Migration), Error> {
        let mut conn = open(path).map_err(|e| store_err(&e))?;
        // Space freed by this connection (old sealed values, migrated plaintext) is zeroed.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(|e| store_err(&e))?;
        let migration = migrate(&mut conn, &kek)?;
        Ok((Self { conn, kek }, migration))
    }

    fn seal(&self, column: &str, id: &str, plain: &[u8]) -> Result<Vec<u8>, Error> {
        self.kek.seal(slot(column, id), plain).map_err(Error::Store)
    }

    fn unseal(&self, column: &str, id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        unseal(&self.kek, column, id, sealed)
    }

    /// Adds `s` unless a subscriber with its id exists (then nothing changes: counters and
    /// wallet survive restarts). Returns true when added.
    pub(crate) fn provision(&mut self, s: &NewSubscriber) -> Result<bool, Error> {
        let id = s.id.to_string();
        let signing = match &s.signing_key {
            Some(k) => Some(self.seal("signing_key", &id, &k.to_pkcs8_der()?)?),
            None => None,
        };
        let card = match &s.card_number {
            Some(c) => Some(self.seal("card", &id, c.as_bytes())?),
            None => None,
        };
        let wallet = match &s.wallet {
            Some(w) => {
                to_i64(w.value)?;
                Some(self.seal("wallet", &id, &wallet_plain(w))?)
            }
            None => None,
        };
        let device = s.device_key.as_ref().map(keys::public_key_sec1);
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO subscribers (id, pin_verifier, pin_tries_left, payment_methods, signing_key, device_key, card, wallet)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    s.pin_verifier.0.as_slice(),
                    s.pin_tries,
                    methods_text(&s.payment_methods),
                    signing,
                    device,
                    card,
                    wallet,
                ],
            )
            .map_err(|e| store_err(&e))?;
        Ok(n == 1)
    }
}

/// The wallet of `id` read through `tx`: `None` without a subscriber or a wallet.
fn wallet_in(kek: &Kek, tx: &Connection, id: &str) -> Result<Option<Amount>, Error> {
    let row: Option<Option<Vec<u8>>> = tx
        .query_row("SELECT wallet FROM subscribers WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| store_err(&e))?;
    match row.flatten() {
        Some(sealed) => {
            let p = unseal(kek, "wallet", id, &sealed)?;
            parse_wallet_plain(&p).map(Some)
        }
        None => Ok(None),
    }
}

fn set_wallet_in(kek: &Kek, tx: &Connection, id: &str, w: &Amount) -> Result<(), Error> {
    let sealed = kek
        .seal(slot("wallet", id), &wallet_plain(w))
        .map_err(Error::Store)?;
    tx.execute(
        "UPDATE subscribers SET wallet = ?2 WHERE id = ?1",
        params![id, sealed],
    )
    .map_err(|e| store_err(&e))?;
    Ok(())
}

fn unseal(kek: &Kek, column: &str, id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    kek.open(slot(column, id), sealed).map_err(|e| {
        Error::Store(match e {
            OpenError::NotSealed => format!("{column} of {id} is not sealed in the database"),
            OpenError::Mismatch => format!(
                "{column} of {id} does not open with this KEK (another key, or a value moved from another row)"
            ),
        })
    })
}

/// Checks the KEK against the database's key-check value (creating it on first use) and seals
/// every plaintext secret left by an older version, all in one `BEGIN IMMEDIATE` transaction:
/// on any error nothing is written.
fn migrate(conn: &mut Connection, kek: &Kek) -> Result<Migration, Error> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| store_err(&e))?;
    let has_wallet_column: bool = tx
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('subscribers') WHERE name = 'wallet'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| store_err(&e))?;
    if !has_wallet_column {
        tx.execute_batch("ALTER TABLE subscribers ADD COLUMN wallet BLOB")
            .map_err(|e| store_err(&e))?;
    }
    let check: Option<Vec<u8>> = tx
        .query_row(
            "SELECT value FROM storage_meta WHERE name = 'kek_check'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| store_err(&e))?;
    match check {
        Some(c) => {
            let ok = kek
                .open(KEK_CHECK_SLOT, &c)
                .is_ok_and(|p| p.as_slice() == KEK_CHECK);
            if !ok {
                return Err(Error::Store(
                    "the key-encryption key does not open this database (wrong [storage] kek_file?); nothing was changed".into(),
                ));
            }
        }
        None => {
            let sealed_rows: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM subscribers WHERE wallet IS NOT NULL OR typeof(card) = 'blob' OR substr(signing_key, 1, 4) = ?1",
                    [seal::MAGIC.as_slice()],
                    |r| r.get(0),
                )
                .map_err(|e| store_err(&e))?;
            if sealed_rows != 0 {
                return Err(Error::Store(
                    "the database holds sealed secrets but no key-check value; refusing to guess the key".into(),
                ));
            }
            let c = kek.seal(KEK_CHECK_SLOT, KEK_CHECK).map_err(Error::Store)?;
            tx.execute(
                "INSERT INTO storage_meta (name, value) VALUES ('kek_check', ?1)",
                [c],
            )
            .map_err(|e| store_err(&e))?;
        }
    }
    type Row = (
        String,
        Option<Vec<u8>>,
        Option<rusqlite::types::Value>,
        Option<i64>,
        Option<String>,
    );
    let rows: Vec<Row> = {
        let mut st = tx
            .prepare("SELECT id, signing_key, card, wallet_value, wallet_currency FROM subscribers")
            .map_err(|e| store_err(&e))?;
        st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .and_then(Iterator::collect)
        .map_err(|e| store_err(&e))?
    };
    let mut m = Migration::default();
    for (id, signing, card, wallet_value, wallet_currency) in rows {
        let seal_for =
            |column: &str, plain: &[u8]| kek.seal(slot(column, &id), plain).map_err(Error::Store);
        if let Some(der) = signing {
            let der = Zeroizing::new(der);
            if seal::is_sealed(&der) {
                unseal(kek, "signing_key", &id, &der)?;
            } else {
                // Refuse to seal garbage: it must be the PKCS#8 key an older version wrote.
                PrivateKey::from_pkcs8_der(&der)?;
                let sealed = seal_for("signing_key", &der)?;
                tx.execute(
                    "UPDATE subscribers SET signing_key = ?2 WHERE id = ?1",
                    params![id, sealed],
                )
                .map_err(|e| store_err(&e))?;
                m.sealed += 1;
            }
        }
        match card {
            None | Some(rusqlite::types::Value::Null) => {}
            Some(rusqlite::types::Value::Text(pan)) => {
                let pan = Zeroizing::new(pan);
                let sealed = seal_for("card", pan.as_bytes())?;
                tx.execute(
                    "UPDATE subscribers SET card = ?2 WHERE id = ?1",
                    params![id, sealed],
                )
                .map_err(|e| store_err(&e))?;
                m.sealed += 1;
            }
            Some(rusqlite::types::Value::Blob(b)) => {
                unseal(kek, "card", &id, &b)?;
            }
            Some(_) => return Err(Error::Store(format!("card of {id}: unexpected type"))),
        }
        match (wallet_value, wallet_currency) {
            (None, None) => {}
            (Some(v), Some(currency)) => {
                let w = Amount {
                    value: to_u64(v)?,
                    currency,
                };
                let sealed = seal_for("wallet", &wallet_plain(&w))?;
                tx.execute(
                    "UPDATE subscribers SET wallet = ?2, wallet_value = NULL, wallet_currency = NULL WHERE id = ?1",
                    params![id, sealed],
                )
                .map_err(|e| store_err(&e))?;
                m.sealed += 1;
            }
            _ => {
                return Err(Error::Store(format!(
                    "wallet of {id}: half a plaintext wallet"
                )));
            }
        }
    }
    tx.commit().map_err(|e| store_err(&e))?;
    Ok(m)
}

impl SubscriberStore for SqliteSubscriberStore {
    fn subscriber(&self, id: &E164) -> Result<Option<Subscriber>, Error> {
        let row = self
            .conn
            .query_row(
                "SELECT pin_verifier, pin_tries_left, payment_methods, signing_key IS NOT NULL, device_key FROM subscribers WHERE id = ?1",
                [id.to_string()],
                |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?, r.get::<_, bool>(3)?, r.get::<_, Option<Vec<u8>>>(4)?)),
            )
            .optional()
            .map_err(|e| store_err(&e))?;
        let Some((verifier, tries, methods, has_key, device)) = row else {
            return Ok(None);
        };
        let verifier: [u8; 32] = verifier
            .try_into()
            .map_err(|_| Error::Store("PIN verifier length".into()))?;
        let device_key = device
            .map(|d| keys::parse_public_key_sec1(&d))
            .transpose()?;
        Ok(Some(Subscriber {
            id: *id,
            pin_verifier: PinVerifier(verifier),
            pin_tries_left: u8::try_from(tries)
                .map_err(|_| Error::Store("PIN tries out of range".into()))?,
            payment_methods: parse_methods(&methods)?,
            has_signing_key: has_key,
            device_key,
        }))
    }

    fn set_pin_tries_left(&mut self, id: &E164, tries: u8) -> Result<(), Error> {
        let n = self
            .conn
            .execute(
                "UPDATE subscribers SET pin_tries_left = ?2 WHERE id = ?1",
                params![id.to_string(), tries],
            )
            .map_err(|e| store_err(&e))?;
        if n != 1 {
            return Err(Error::Store(format!("unknown subscriber {id}")));
        }
        Ok(())
    }

    fn signing_key(&self, id: &E164) -> Result<Option<PrivateKey>, Error> {
        let id = id.to_string();
        let sealed: Option<Option<Vec<u8>>> = self
            .conn
            .query_row(
                "SELECT signing_key FROM subscribers WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| store_err(&e))?;
        match sealed.flatten() {
            Some(s) => {
                let der = self.unseal("signing_key", &id, &s)?;
                PrivateKey::from_pkcs8_der(&der).map(Some)
            }
            None => Ok(None),
        }
    }

    fn card(&self, id: &E164) -> Result<Option<CardCredential>, Error> {
        let id = id.to_string();
        let sealed: Option<Option<Vec<u8>>> = self
            .conn
            .query_row("SELECT card FROM subscribers WHERE id = ?1", [&id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| store_err(&e))?;
        match sealed.flatten() {
            Some(s) => {
                let pan = self.unseal("card", &id, &s)?;
                let pan = std::str::from_utf8(&pan)
                    .map_err(|_| Error::Store(format!("card of {id} is not text")))?;
                CardCredential::new(pan).map(Some)
            }
            None => Ok(None),
        }
    }

    fn wallet_debit(
        &mut self,
        id: &E164,
        key: &str,
        amount: &Amount,
    ) -> Result<WalletDebit, Error> {
        let value = to_i64(amount.value)?;
        let sid = id.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| store_err(&e))?;
        let prior: Option<(String, i64, String, bool)> = tx
            .query_row(
                "SELECT subscriber, value, currency, reversed FROM wallet_ledger WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| store_err(&e))?;
        if let Some((who, v, cur, reversed)) = prior {
            if who == sid && v == value && cur == amount.currency && !reversed {
                return Ok(WalletDebit::Debited(key.to_owned()));
            }
            return Err(Error::Store(format!("ledger key {key} already used")));
        }
        let Some(wallet) = wallet_in(&self.kek, &tx, &sid)? else {
            return Err(Error::Store("no wallet".into()));
        };
        if wallet.currency != amount.currency {
            return Err(Error::Store("wallet currency differs".into()));
        }
        let Some(left) = wallet.value.checked_sub(amount.value) else {
            return Ok(WalletDebit::InsufficientFunds);
        };
        set_wallet_in(
            &self.kek,
            &tx,
            &sid,
            &Amount {
                value: left,
                currency: wallet.currency,
            },
        )?;
        tx.execute(
            "INSERT INTO wallet_ledger (key, subscriber, value, currency, reversed, created_ms) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            params![key, sid, value, amount.currency, now_ms()],
        )
        .map_err(|e| store_err(&e))?;
        tx.commit().map_err(|e| store_err(&e))?;
        Ok(WalletDebit::Debited(key.to_owned()))
    }

    fn wallet_reverse(&mut self, id: &E164, key: &str) -> Result<(), Error> {
        let sid = id.to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| store_err(&e))?;
        let prior: Option<(String, i64, bool)> = tx
            .query_row(
                "SELECT subscriber, value, reversed FROM wallet_ledger WHERE key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| store_err(&e))?;
        let Some((who, value, reversed)) = prior else {
            return Ok(());
        };
        if reversed || who != sid {
            return Ok(());
        }
        let Some(wallet) = wallet_in(&self.kek, &tx, &sid)? else {
            return Err(Error::Store("no wallet to reverse into".into()));
        };
        let back = wallet
            .value
            .checked_add(to_u64(value)?)
            .ok_or_else(|| Error::Store("wallet balance overflow".into()))?;
        to_i64(back)?;
        tx.execute(
            "UPDATE wallet_ledger SET reversed = 1 WHERE key = ?1",
            [key],
        )
        .map_err(|e| store_err(&e))?;
        set_wallet_in(
            &self.kek,
            &tx,
            &sid,
            &Amount {
                value: back,
                currency: wallet.currency,
            },
        )?;
        tx.commit().map_err(|e| store_err(&e))
    }

    fn wallet_balance(&self, id: &E164) -> Result<Option<Amount>, Error> {
        wallet_in(&self.kek, &self.conn, &id.to_string())
    }
}

/// Milliseconds since the Unix epoch (for bookkeeping columns only; protocol time is passed in).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The visited server's acquirer: merchant accounts credited in SQLite, once per transaction.
#[derive(Debug)]
pub(crate) struct SqliteAcquirer {
    conn: Connection,
    decline_above: Option<u64>,
}

impl SqliteAcquirer {
    /// Opens the acquirer ledger.
    pub(crate) fn open(path: &Path, decline_above: Option<u64>) -> rusqlite::Result<Self> {
        Ok(Self {
            conn: open(path)?,
            decline_above,
        })
    }

    fn execute_db(&mut self, ins: &PaymentInstruction) -> Result<AcquirerOutcome, Error> {
        let tid = ins.tid.as_str();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| store_err(&e))?;
        let prior: Option<(bool, String)> = tx
            .query_row(
                "SELECT approved, detail FROM acquirer_payments WHERE tid = ?1",
                [tid],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| store_err(&e))?;
        if let Some((approved, detail)) = prior {
            return Ok(if approved {
                AcquirerOutcome::Approved {
                    authorization_code: detail,
                }
            } else {
                AcquirerOutcome::Declined { reason: detail }
            });
        }
        let value = to_i64(ins.amount.value)?;
        let token_used = match &ins.card {
            Some(card) => tx
                .query_row(
                    "SELECT 1 FROM acquirer_payments WHERE token = ?1",
                    [card.token.as_str()],
                    |_| Ok(()),
                )
                .optional()
                .map_err(|e| store_err(&e))?
                .is_some(),
            None => false,
        };
        let decline = if self.decline_above.is_some_and(|l| ins.amount.value > l) {
            Some("amount over limit")
        } else if token_used {
            Some("token already used")
        } else if ins.card.is_none() && ins.wallet_debit.is_none() {
            Some("no instrument")
        } else {
            None
        };
        let method = methods_text(&[ins.method]);
        let outcome = match decline {
            Some(reason) => AcquirerOutcome::Declined {
                reason: reason.to_owned(),
            },
            None => {
                let n: i64 = tx
                    .query_row(
                        "SELECT COUNT(*) FROM acquirer_payments WHERE approved = 1",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(|e| store_err(&e))?;
                tx.execute(
                    "INSERT INTO merchant_accounts (merchant, currency, balance) VALUES (?1, ?2, ?3)
                     ON CONFLICT (merchant, currency) DO UPDATE SET balance = balance + excluded.balance",
                    params![ins.merchant, ins.amount.currency, value],
                )
                .map_err(|e| store_err(&e))?;
                AcquirerOutcome::Approved {
                    authorization_code: format!("A{:06}", n.saturating_add(1)),
                }
            }
        };
        let (approved, detail) = match &outcome {
            AcquirerOutcome::Approved { authorization_code } => (true, authorization_code.clone()),
            AcquirerOutcome::Declined { reason } => (false, reason.clone()),
        };
        // A declined reused token is not stored as the token's row (the first use keeps it).
        let token = if token_used {
            None
        } else {
            ins.card.as_ref().map(|c| c.token.clone())
        };
        tx.execute(
            "INSERT INTO acquirer_payments (tid, merchant, value, currency, method, token, masked_pan, wallet_home, wallet_debit, approved, detail, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                tid,
                ins.merchant,
                value,
                ins.amount.currency,
                method,
                token,
                ins.card.as_ref().map(|c| c.masked_pan.clone()),
                ins.wallet_debit.as_ref().map(|w| w.0.clone()),
                ins.wallet_debit.as_ref().map(|w| w.1.clone()),
                approved,
                detail,
                now_ms()
            ],
        )
        .map_err(|e| store_err(&e))?;
        tx.commit().map_err(|e| store_err(&e))?;
        Ok(outcome)
    }

    /// Balance of a merchant's account per currency.
    pub(crate) fn balances(&self, merchant: &str) -> Result<Vec<Amount>, Error> {
        let mut st = self
            .conn
            .prepare("SELECT currency, balance FROM merchant_accounts WHERE merchant = ?1 ORDER BY currency")
            .map_err(|e| store_err(&e))?;
        let rows = st
            .query_map([merchant], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| store_err(&e))?;
        let mut out = Vec::new();
        for row in rows {
            let (currency, v) = row.map_err(|e| store_err(&e))?;
            out.push(Amount {
                value: to_u64(v)?,
                currency,
            });
        }
        Ok(out)
    }

    /// Number of approved payments of a transaction (0 or 1).
    #[cfg(test)]
    pub(crate) fn approved_payments(
        &self,
        tid: &mec_roaming::message::TransactionId,
    ) -> Result<u64, Error> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM acquirer_payments WHERE tid = ?1 AND approved = 1",
                [tid.as_str()],
                |r| r.get(0),
            )
            .map_err(|e| store_err(&e))?;
        to_u64(n)
    }
}

impl Acquirer for SqliteAcquirer {
    fn execute(&mut self, ins: &PaymentInstruction) -> AcquirerOutcome {
        match self.execute_db(ins) {
            Ok(o) => o,
            Err(e) => {
                // Nothing was committed: no money moved, and the decline makes home give the
                // wallet debit back.
                tracing::error!(tid = %ins.tid, error = %e, "acquirer ledger unavailable; payment declined");
                AcquirerOutcome::Declined {
                    reason: "acquirer unavailable".into(),
                }
            }
        }
    }
}

/// Durable record of transactions (for status queries and audit) and of every message sent.
#[derive(Debug)]
pub(crate) struct Journal {
    conn: Connection,
}

/// Optional columns of a transaction update (`None` keeps the stored value).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TxFields<'a> {
    pub(crate) cp_ref: Option<&'a str>,
    pub(crate) request: Option<&'a str>,
    pub(crate) user_url: Option<&'a str>,
    pub(crate) outcome: Option<&'a str>,
}

/// A transaction row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TxRow {
    pub(crate) state: String,
    pub(crate) cp_ref: Option<String>,
    pub(crate) request: Option<String>,
    pub(crate) user_url: Option<String>,
    pub(crate) outcome: Option<String>,
}

impl Journal {
    /// Opens the journal.
    pub(crate) fn open(path: &Path) -> rusqlite::Result<Self> {
        Ok(Self { conn: open(path)? })
    }

    /// Creates or updates a transaction's state (and, when given, its other columns).
    pub(crate) fn upsert_tx(
        &self,
        party: &str,
        tid: &str,
        state: &str,
        f: &TxFields<'_>,
    ) -> rusqlite::Result<()> {
        let now = now_ms();
        let TxFields {
            cp_ref,
            request,
            user_url,
            outcome,
        } = *f;
        self.conn.execute(
            "INSERT INTO transactions (party, tid, state, cp_ref, request, user_url, outcome, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
             ON CONFLICT (party, tid) DO UPDATE SET state = excluded.state,
                cp_ref = COALESCE(excluded.cp_ref, cp_ref), request = COALESCE(excluded.request, request),
                user_url = COALESCE(excluded.user_url, user_url), outcome = COALESCE(excluded.outcome, outcome),
                updated_ms = excluded.updated_ms",
            params![party, tid, state, cp_ref, request, user_url, outcome, now],
        )?;
        Ok(())
    }

    /// A transaction row.
    pub(crate) fn tx(&self, party: &str, tid: &str) -> rusqlite::Result<Option<TxRow>> {
        self.conn
            .query_row(
                "SELECT state, cp_ref, request, user_url, outcome FROM transactions WHERE party = ?1 AND tid = ?2",
                [party, tid],
                |r| Ok(TxRow { state: r.get(0)?, cp_ref: r.get(1)?, request: r.get(2)?, user_url: r.get(3)?, outcome: r.get(4)? }),
            )
            .optional()
    }

    /// The first transaction a content provider started under `cp_ref` whose request JSON
    /// `matches` (the caller's merchant: cpRefs are per merchant): (tid, request JSON).
    pub(crate) fn tx_by_cp_ref(
        &self,
        cp_ref: &str,
        matches: impl Fn(Option<&str>) -> bool,
    ) -> rusqlite::Result<Option<(String, Option<String>)>> {
        let mut st = self.conn.prepare(
            "SELECT tid, request FROM transactions WHERE party = '' AND cp_ref = ?1 ORDER BY created_ms, tid",
        )?;
        let rows = st.query_map([cp_ref], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        for row in rows {
            let (tid, request) = row?;
            if matches(request.as_deref()) {
                return Ok(Some((tid, request)));
            }
        }
        Ok(None)
    }

    /// Appends a content-provider event.
    pub(crate) fn add_event(&self, tid: &str, event: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO cp_events (tid, seq, event, at_ms) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM cp_events WHERE tid = ?1), ?2, ?3)",
            params![tid, event, now_ms()],
        )?;
        Ok(())
    }

    /// The content-provider events of a transaction, in order.
    pub(crate) fn events(&self, tid: &str) -> rusqlite::Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT event FROM cp_events WHERE tid = ?1 ORDER BY seq")?;
        let rows = st.query_map([tid], |r| r.get(0))?;
        rows.collect()
    }

    /// Stores the machine's snapshot (replacing the previous one).
    pub(crate) fn save_snapshot(&self, json: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO machine_state (id, snapshot, updated_ms) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET snapshot = excluded.snapshot, updated_ms = excluded.updated_ms",
            params![json, now_ms()],
        )?;
        Ok(())
    }

    /// The last stored snapshot.
    pub(crate) fn load_snapshot(&self) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row("SELECT snapshot FROM machine_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
    }

    /// Stores the partner registry after an update (JSON `RegistryConfig`).
    pub(crate) fn save_registry(&self, serial: u64, json: &str) -> rusqlite::Result<()> {
        let serial = i64::try_from(serial).unwrap_or(i64::MAX);
        self.conn.execute(
            "INSERT INTO registry_state (id, serial, config, updated_ms) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET serial = excluded.serial, config = excluded.config, updated_ms = excluded.updated_ms",
            params![serial, json, now_ms()],
        )?;
        Ok(())
    }

    /// The last stored registry (JSON `RegistryConfig`).
    pub(crate) fn load_registry(&self) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row("SELECT config FROM registry_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
    }

    /// Records a message about to be sent; returns its row id.
    pub(crate) fn outbox_add(
        &self,
        tid: &str,
        to: &str,
        url: &str,
        message_type: &str,
        jws: &str,
    ) -> rusqlite::Result<i64> {
        self.conn.execute(
            "INSERT INTO outbox (tid, to_partner, url, message_type, jws, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![tid, to, url, message_type, jws, now_ms()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records a delivery attempt's outcome.
    pub(crate) fn outbox_result(
        &self,
        id: i64,
        attempts: u32,
        status: &str,
    ) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE outbox SET attempts = ?2, last_status = ?3 WHERE id = ?1",
            params![id, attempts, status],
        )?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mec_roaming::message::{TokenizedCard, TransactionId};
    use mec_roaming::store::{Pin, PinKey};

    fn alice() -> E164 {
        E164::parse("+447700900123").unwrap()
    }

    fn kek() -> Kek {
        Kek::new([0x4b; 32])
    }

    fn store(dir: &tempfile::TempDir) -> SqliteSubscriberStore {
        let (mut s, m) = SqliteSubscriberStore::open(&dir.path().join("h.sqlite3"), kek()).unwrap();
        assert_eq!(m, Migration::default());
        let k = PinKey::new([7; 32]);
        let added = s
            .provision(&NewSubscriber {
                id: alice(),
                pin_verifier: k.verifier(&alice(), &Pin::parse("1234").unwrap()),
                pin_tries: 3,
                payment_methods: vec![PaymentMethod::Card, PaymentMethod::Wallet],
                signing_key: None,
                device_key: None,
                card_number: Some(Zeroizing::new("4111111111111111".into())),
                wallet: Some(Amount {
                    value: 1000,
                    currency: "EUR".into(),
                }),
            })
            .unwrap();
        assert!(added);
        s
    }

    #[test]
    fn subscriber_round_trip_and_provisioning_keeps_existing_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        let r = s.subscriber(&alice()).unwrap().unwrap();
        assert_eq!(r.pin_tries_left, 3);
        assert_eq!(
            r.payment_methods,
            vec![PaymentMethod::Card, PaymentMethod::Wallet]
        );
        assert!(!r.has_signing_key && r.device_key.is_none());
        assert_eq!(
            s.card(&alice()).unwrap().unwrap().masked_pan(),
            "411111******1111"
        );
        s.set_pin_tries_left(&alice(), 1).unwrap();
        drop(s);
        // Re-provisioning (a restart) leaves the counter as it was.
        let s = store_again(&dir);
        assert_eq!(s.subscriber(&alice()).unwrap().unwrap().pin_tries_left, 1);
        assert!(
            s.subscriber(&E164::parse("+15550100").unwrap())
                .unwrap()
                .is_none()
        );
    }

    fn store_again(dir: &tempfile::TempDir) -> SqliteSubscriberStore {
        let (mut s, _) = SqliteSubscriberStore::open(&dir.path().join("h.sqlite3"), kek()).unwrap();
        let added = s
            .provision(&NewSubscriber {
                id: alice(),
                pin_verifier: PinVerifier([0; 32]),
                pin_tries: 3,
                payment_methods: vec![],
                signing_key: None,
                device_key: None,
                card_number: None,
                wallet: None,
            })
            .unwrap();
        assert!(!added);
        s
    }

    fn raw(dir: &tempfile::TempDir, column: &str, id: &str) -> Option<Vec<u8>> {
        let c = Connection::open(dir.path().join("h.sqlite3")).unwrap();
        c.query_row(
            &format!("SELECT CAST({column} AS BLOB) FROM subscribers WHERE id = ?1"),
            [id],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn bob() -> E164 {
        E164::parse("+447701900456").unwrap()
    }

    fn signing_key() -> PrivateKey {
        let mut rng = chacha20::ChaCha20Rng::from_seed([3; 32]);
        PrivateKey::generate(&mut rng)
    }

    use rand_core::SeedableRng;

    #[test]
    fn secrets_are_sealed_at_rest_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        let key = signing_key();
        s.provision(&NewSubscriber {
            id: bob(),
            pin_verifier: PinVerifier([1; 32]),
            pin_tries: 3,
            payment_methods: vec![PaymentMethod::Card],
            signing_key: Some(key.clone()),
            device_key: None,
            card_number: Some(Zeroizing::new("5500000000000004".into())),
            wallet: None,
        })
        .unwrap();
        let der = key.to_pkcs8_der().unwrap();
        assert_eq!(
            s.signing_key(&bob())
                .unwrap()
                .unwrap()
                .to_pkcs8_der()
                .unwrap()
                .as_slice(),
            der.as_slice()
        );
        assert!(s.subscriber(&bob()).unwrap().unwrap().has_signing_key);
        assert_eq!(
            s.card(&bob()).unwrap().unwrap().masked_pan(),
            "550000******0004"
        );
        assert_eq!(s.wallet_balance(&alice()).unwrap().unwrap().value, 1000);
        // On disk: sealed values only, no plaintext.
        let b = alice().to_string();
        let sealed_card = raw(&dir, "card", &b).unwrap();
        assert!(seal::is_sealed(&sealed_card));
        assert!(!contains(&sealed_card, b"4111111111111111"));
        let sealed_key = raw(&dir, "signing_key", &bob().to_string()).unwrap();
        assert!(seal::is_sealed(&sealed_key) && !contains(&sealed_key, &der[der.len() - 32..]));
        assert!(seal::is_sealed(&raw(&dir, "wallet", &b).unwrap()));
        assert_eq!(raw(&dir, "wallet_value", &b), None);
        let file = std::fs::read(dir.path().join("h.sqlite3")).unwrap();
        let wal = std::fs::read(dir.path().join("h.sqlite3-wal")).unwrap_or_default();
        for f in [&file, &wal] {
            assert!(!contains(f, b"4111111111111111") && !contains(f, b"5500000000000004"));
        }
        // A debit re-seals the wallet with a fresh nonce.
        let before = raw(&dir, "wallet", &b).unwrap();
        s.wallet_debit(
            &alice(),
            "k",
            &Amount {
                value: 1,
                currency: "EUR".into(),
            },
        )
        .unwrap();
        assert_ne!(raw(&dir, "wallet", &b).unwrap(), before);
        assert_eq!(s.wallet_balance(&alice()).unwrap().unwrap().value, 999);
    }

    #[test]
    fn a_sealed_value_moved_to_another_row_or_column_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        let c = Connection::open(dir.path().join("h.sqlite3")).unwrap();
        c.execute(
            "INSERT INTO subscribers (id, pin_verifier, pin_tries_left, payment_methods) VALUES (?1, ?2, 3, 'card,wallet')",
            params![bob().to_string(), [0u8; 32].as_slice()],
        )
        .unwrap();
        // Bob gets Alice's sealed card and wallet; Alice's card goes into her signing key.
        c.execute(
            "UPDATE subscribers SET card = (SELECT card FROM subscribers WHERE id = ?1), wallet = (SELECT wallet FROM subscribers WHERE id = ?1) WHERE id = ?2",
            params![alice().to_string(), bob().to_string()],
        )
        .unwrap();
        c.execute(
            "UPDATE subscribers SET signing_key = card WHERE id = ?1",
            [alice().to_string()],
        )
        .unwrap();
        let e = s.card(&bob()).unwrap_err().to_string();
        assert!(e.contains("does not open"), "{e}");
        assert!(s.wallet_balance(&bob()).is_err());
        assert!(s.signing_key(&alice()).is_err());
        assert!(s.card(&alice()).is_ok(), "the original stays readable");
        // A restart refuses the swapped database too (the migration checks sealed values).
        drop(s);
        let e = SqliteSubscriberStore::open(&dir.path().join("h.sqlite3"), kek()).unwrap_err();
        assert!(e.to_string().contains("does not open"), "{e}");
    }

    #[test]
    fn a_wrong_kek_is_refused_at_open_and_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        drop(store(&dir));
        let path = dir.path().join("h.sqlite3");
        let dump = |p: &Path| -> Vec<Vec<Option<Vec<u8>>>> {
            let c = Connection::open(p).unwrap();
            let mut st = c
                .prepare("SELECT CAST(signing_key AS BLOB), CAST(card AS BLOB), wallet, wallet_value FROM subscribers ORDER BY id")
                .unwrap();
            st.query_map([], |r| {
                Ok(vec![
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, Option<i64>>(3)?
                        .map(|v| v.to_be_bytes().to_vec()),
                ])
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        let before = dump(&path);
        let e = SqliteSubscriberStore::open(&path, Kek::new([0x4c; 32])).unwrap_err();
        assert!(e.to_string().contains("does not open this database"), "{e}");
        assert_eq!(dump(&path), before);
        let (s, m) = SqliteSubscriberStore::open(&path, kek()).unwrap();
        assert_eq!(m.sealed, 0);
        assert_eq!(s.wallet_balance(&alice()).unwrap().unwrap().value, 1000);
    }

    /// The subscribers table as versions before sealing created it.
    const OLD_SUBSCRIBERS: &str = "CREATE TABLE subscribers (
        id TEXT PRIMARY KEY, pin_verifier BLOB NOT NULL, pin_tries_left INTEGER NOT NULL,
        payment_methods TEXT NOT NULL, signing_key BLOB, device_key BLOB, card TEXT,
        wallet_value INTEGER, wallet_currency TEXT)";

    fn old_database(dir: &tempfile::TempDir, bob_key: &[u8]) -> std::path::PathBuf {
        let path = dir.path().join("h.sqlite3");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(OLD_SUBSCRIBERS).unwrap();
        let ins = "INSERT INTO subscribers VALUES (?1, ?2, 3, ?3, ?4, NULL, ?5, ?6, ?7)";
        c.execute(
            ins,
            params![
                alice().to_string(),
                [2u8; 32].as_slice(),
                "card,wallet",
                None::<Vec<u8>>,
                "4111111111111111",
                750,
                "EUR"
            ],
        )
        .unwrap();
        c.execute(
            ins,
            params![
                bob().to_string(),
                [3u8; 32].as_slice(),
                "card",
                bob_key,
                None::<String>,
                None::<i64>,
                None::<String>
            ],
        )
        .unwrap();
        path
    }

    #[test]
    fn a_plaintext_database_is_sealed_in_place_once() {
        let dir = tempfile::tempdir().unwrap();
        let key = signing_key();
        let der = key.to_pkcs8_der().unwrap();
        let path = old_database(&dir, &der);
        let (s, m) = SqliteSubscriberStore::open(&path, kek()).unwrap();
        assert_eq!(m.sealed, 3, "Alice's card and wallet, Bob's key");
        assert_eq!(
            s.card(&alice()).unwrap().unwrap().masked_pan(),
            "411111******1111"
        );
        assert_eq!(
            s.wallet_balance(&alice()).unwrap(),
            Some(Amount {
                value: 750,
                currency: "EUR".into()
            })
        );
        assert_eq!(
            s.signing_key(&bob())
                .unwrap()
                .unwrap()
                .to_pkcs8_der()
                .unwrap()
                .as_slice(),
            der.as_slice()
        );
        assert_eq!(
            s.subscriber(&alice()).unwrap().unwrap().pin_verifier,
            PinVerifier([2; 32])
        );
        assert!(seal::is_sealed(
            &raw(&dir, "card", &alice().to_string()).unwrap()
        ));
        assert!(seal::is_sealed(
            &raw(&dir, "signing_key", &bob().to_string()).unwrap()
        ));
        assert_eq!(raw(&dir, "wallet_value", &alice().to_string()), None);
        // Once the WAL is checkpointed, the database file holds no plaintext (secure_delete).
        s.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let file = std::fs::read(&path).unwrap();
        assert!(!contains(&file, b"4111111111111111"));
        assert!(!contains(&file, &der[der.len() - 32..]));
        drop(s);
        let (_, m) = SqliteSubscriberStore::open(&path, kek()).unwrap();
        assert_eq!(m.sealed, 0, "nothing left to seal");
        assert!(
            SqliteSubscriberStore::open(&path, Kek::new([1; 32])).is_err(),
            "the migrated database now has a key check"
        );
    }

    #[test]
    fn a_migration_that_fails_leaves_the_plaintext_database_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        // Bob's "key" is not a PKCS#8 key: the migration refuses it, after Alice's row.
        let path = old_database(&dir, b"\x30\x03not a key");
        let e = SqliteSubscriberStore::open(&path, kek()).unwrap_err();
        assert!(matches!(e, Error::Key(_) | Error::Store(_)), "{e:?}");
        let c = Connection::open(&path).unwrap();
        let (card, wallet, checks): (String, i64, i64) = c
            .query_row(
                "SELECT card, wallet_value, (SELECT COUNT(*) FROM storage_meta) FROM subscribers WHERE id = ?1",
                [alice().to_string()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            (card.as_str(), wallet, checks),
            ("4111111111111111", 750, 0)
        );
        let has_wallet: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('subscribers') WHERE name = 'wallet'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(has_wallet, 0, "the added column was rolled back too");
    }

    #[test]
    fn wallet_debit_is_idempotent_per_key_and_reversal_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        let a = Amount {
            value: 300,
            currency: "EUR".into(),
        };
        assert_eq!(
            s.wallet_debit(&alice(), "v/t1", &a).unwrap(),
            WalletDebit::Debited("v/t1".into())
        );
        assert_eq!(
            s.wallet_debit(&alice(), "v/t1", &a).unwrap(),
            WalletDebit::Debited("v/t1".into())
        );
        assert_eq!(s.wallet_balance(&alice()).unwrap().unwrap().value, 700);
        assert!(
            s.wallet_debit(
                &alice(),
                "v/t1",
                &Amount {
                    value: 1,
                    currency: "EUR".into()
                }
            )
            .is_err()
        );
        assert_eq!(
            s.wallet_debit(
                &alice(),
                "v/t2",
                &Amount {
                    value: 701,
                    currency: "EUR".into()
                }
            )
            .unwrap(),
            WalletDebit::InsufficientFunds
        );
        assert!(
            s.wallet_debit(
                &alice(),
                "v/t3",
                &Amount {
                    value: 1,
                    currency: "USD".into()
                }
            )
            .is_err()
        );
        s.wallet_reverse(&alice(), "v/t1").unwrap();
        s.wallet_reverse(&alice(), "v/t1").unwrap();
        s.wallet_reverse(&alice(), "v/none").unwrap();
        assert_eq!(s.wallet_balance(&alice()).unwrap().unwrap().value, 1000);
    }

    #[test]
    fn acquirer_pays_once_per_transaction_and_refuses_reused_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = SqliteAcquirer::open(&dir.path().join("v.sqlite3"), Some(5000)).unwrap();
        let tid = TransactionId::parse("t1").unwrap();
        let card = TokenizedCard {
            token: "tok".into(),
            masked_pan: "411111******1111".into(),
            expires: 0,
        };
        let ins = PaymentInstruction {
            tid: tid.clone(),
            merchant: "M".into(),
            amount: Amount {
                value: 250,
                currency: "EUR".into(),
            },
            method: PaymentMethod::Card,
            card: Some(card.clone()),
            wallet_debit: None,
        };
        let first = a.execute(&ins);
        assert!(matches!(first, AcquirerOutcome::Approved { .. }));
        assert_eq!(a.execute(&ins), first, "a retry recalls the first outcome");
        assert_eq!(
            a.balances("M").unwrap(),
            vec![Amount {
                value: 250,
                currency: "EUR".into()
            }]
        );
        assert_eq!(a.approved_payments(&tid).unwrap(), 1);
        let again = PaymentInstruction {
            tid: TransactionId::parse("t2").unwrap(),
            ..ins.clone()
        };
        assert_eq!(
            a.execute(&again),
            AcquirerOutcome::Declined {
                reason: "token already used".into()
            }
        );
        let big = PaymentInstruction {
            tid: TransactionId::parse("t3").unwrap(),
            amount: Amount {
                value: 5001,
                currency: "EUR".into(),
            },
            card: Some(TokenizedCard {
                token: "tok3".into(),
                ..card
            }),
            ..ins
        };
        assert_eq!(
            a.execute(&big),
            AcquirerOutcome::Declined {
                reason: "amount over limit".into()
            }
        );
        assert_eq!(a.balances("M").unwrap()[0].value, 250);
    }

    #[test]
    fn journal_records_transactions_events_and_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite3")).unwrap();
        j.upsert_tx(
            "",
            "t1",
            "locating",
            &TxFields {
                cp_ref: Some("order-1"),
                request: Some("{}"),
                ..TxFields::default()
            },
        )
        .unwrap();
        j.upsert_tx(
            "",
            "t1",
            "awaitingUser",
            &TxFields {
                user_url: Some("http://u"),
                ..TxFields::default()
            },
        )
        .unwrap();
        let row = j.tx("", "t1").unwrap().unwrap();
        assert_eq!(
            j.tx_by_cp_ref("order-1", |_| true).unwrap(),
            Some(("t1".to_owned(), Some("{}".to_owned())))
        );
        assert_eq!(
            j.tx_by_cp_ref("order-1", |r| r != Some("{}")).unwrap(),
            None
        );
        assert_eq!(j.tx_by_cp_ref("order-2", |_| true).unwrap(), None);
        assert_eq!(row.state, "awaitingUser");
        assert_eq!(row.cp_ref.as_deref(), Some("order-1"));
        assert_eq!(row.user_url.as_deref(), Some("http://u"));
        j.add_event("t1", "a").unwrap();
        j.add_event("t1", "b").unwrap();
        assert_eq!(
            j.events("t1").unwrap(),
            vec!["a".to_owned(), "b".to_owned()]
        );
        let id = j
            .outbox_add("t1", "home", "http://h", "contract", "x.y.z")
            .unwrap();
        j.outbox_result(id, 1, "202").unwrap();
        assert_eq!(j.load_snapshot().unwrap(), None);
        j.save_snapshot("{\"a\":1}").unwrap();
        j.save_snapshot("{\"a\":2}").unwrap();
        assert_eq!(j.load_snapshot().unwrap().as_deref(), Some("{\"a\":2}"));
    }

    mod model {
        //! The SQLite store against the library's in-memory reference store: any sequence of
        //! wallet debits (retried or not), reversals and PIN-counter updates gives the same
        //! answers and balances.
        use super::*;
        use mec_roaming::store::{MemorySubscriber, MemorySubscriberStore};
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            Debit { key: u8, value: u64, usd: bool },
            Reverse { key: u8 },
            Tries(u8),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0u8..4, 1u64..600, proptest::bool::weighted(0.1))
                    .prop_map(|(key, value, usd)| Op::Debit { key, value, usd }),
                (0u8..4).prop_map(|key| Op::Reverse { key }),
                (0u8..4).prop_map(Op::Tries),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]
            #[test]
            fn sqlite_store_behaves_like_the_memory_store(ops in proptest::collection::vec(op(), 1..40)) {
                let dir = tempfile::tempdir().unwrap();
                let mut sql = store(&dir);
                let mut mem = MemorySubscriberStore::new();
                mem.insert(MemorySubscriber {
                    record: sql.subscriber(&alice()).unwrap().unwrap(),
                    signing_key_der: None,
                    card: None,
                    wallet: Some(Amount { value: 1000, currency: "EUR".into() }),
                });
                for op in ops {
                    match op {
                        Op::Debit { key, value, usd } => {
                            let a = Amount { value, currency: if usd { "USD" } else { "EUR" }.into() };
                            let k = format!("visited-fi/t{key}");
                            let (x, y) = (sql.wallet_debit(&alice(), &k, &a), mem.wallet_debit(&alice(), &k, &a));
                            prop_assert_eq!(x.is_ok(), y.is_ok(), "debit {} {:?}: {:?} vs {:?}", k, a, x, y);
                            if let (Ok(x), Ok(y)) = (x, y) {
                                prop_assert_eq!(x, y);
                            }
                        }
                        Op::Reverse { key } => {
                            let k = format!("visited-fi/t{key}");
                            prop_assert!(sql.wallet_reverse(&alice(), &k).is_ok());
                            prop_assert!(mem.wallet_reverse(&alice(), &k).is_ok());
                        }
                        Op::Tries(n) => {
                            sql.set_pin_tries_left(&alice(), n).unwrap();
                            mem.set_pin_tries_left(&alice(), n).unwrap();
                        }
                    }
                    prop_assert_eq!(sql.wallet_balance(&alice()).unwrap(), mem.wallet_balance(&alice()).unwrap());
                    prop_assert_eq!(sql.subscriber(&alice()).unwrap(), mem.subscriber(&alice()).unwrap());
                }
            }
        }
    }
}
