//! `mec purse`: a terminal for the PBOC-style e-purse applet (`epurse` crate) on a card in a
//! PC/SC reader, or on an in-process virtual SE.
//!
//! - `balance`, `log`, `prove`: read the purse.
//! - `load` (EP or ED), `unload` (ED): act as load terminal and issuer load authority
//!   (master keys given on the command line: test and simulation only; a real deployment
//!   asks the issuer's HSM).
//! - `purchase` (EP or ED): acts as POS terminal with a software SAM (purchase master key on
//!   the command line); a lost DEBIT answer is settled with GET BALANCE and GET TRANSACTION
//!   PROVE, never by a second DEBIT.
//! - `--wallet ed --pin PIN`: the ED, with VERIFY in the same card session.
//! - `verify-pin`, `change-pin`: the cardholder's PIN.
//! - `reload-pin`, `unblock-pin`, `block`, `unblock`, `lock-permanently`: the issuer's
//!   MAC-protected commands (GET CHALLENGE, then the command with its MAC under the card's
//!   function key, diversified here from a master key).
//! - `perso-data`: the personalization DGIs for `mec gp store-data` (with the value-block
//!   tag's access data, DGI `0401`).
//! - `tag ...` ([`tag`]): the value-block tag: show its blocks, move value from the purse
//!   (the purse as gatekeeper), resume a move, decrement as a transit gate.
//! - `ticket ...` ([`ticket`]): the e-ticket store: list, deliver, buy, gate reader.

mod tag;
mod terminal;
mod ticket;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use apdu_codec::StatusWord;
use clap::{Args, Subcommand, ValueEnum};
use epurse::card::{IssuerData, LogRecord, key_function};
use epurse::crypto::Key16;
use epurse::host::TacKeyRef;
use epurse::pboc::{self, DateTime, PurseKind};
use epurse::perso::{KeyRecord, Personalization};

use crate::transport::{PcscTransport, Transport, VirtualTransport};
use zeroize::Zeroizing;

use terminal::{
    IssuerCommand, IssuerKeys, PurseError, PurseInfo, Receipt, SoftSam, Terminal, pin_bcd,
};

/// The POS terminal and its software SAM, for `purchase` and `ticket buy`.
#[derive(Args, Debug)]
pub(crate) struct PosArgs {
    /// POS terminal id (6 bytes hex).
    #[arg(long, value_name = "HEX", default_value = "000000000777", value_parser = parse_terminal)]
    terminal_id: [u8; 6],
    /// DPK master key (16 bytes hex) held by the SAM. Default: the test key.
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    purchase_master_key: Option<Key16>,
    /// DPK key index on the card.
    #[arg(long, default_value_t = 1)]
    key_index: u8,
    /// Previous terminal transaction serial (the SAM uses the next one). Default: the
    /// Unix time, so serials grow from run to run.
    #[arg(long)]
    serial: Option<u32>,
    /// Date and time of the transaction, YYYYMMDDhhmmss (default: now, UTC).
    #[arg(long, value_name = "YYYYMMDDhhmmss", value_parser = parse_when)]
    when: Option<DateTime>,
}

impl PosArgs {
    /// A purchase of `amount` from `kind`, MAC2 made and the TAC checked by a software SAM
    /// holding the DPK master key (the test key when none is given, with a warning).
    pub(crate) fn purchase(
        &self,
        term: &mut Terminal<'_>,
        kind: PurseKind,
        amount: u32,
    ) -> Result<Receipt, PurseError> {
        warn_test_keys(&[&self.purchase_master_key]);
        let master = master_or_test(&self.purchase_master_key, key_function::PURCHASE);
        let serial = self.serial.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u32::try_from(d.as_secs() & 0xFFFF_FFFF).unwrap_or(0))
        });
        let mut sam = SoftSam::new(&master, self.key_index, serial);
        term.purchase(
            &mut sam,
            kind,
            amount,
            self.terminal_id,
            self.when.unwrap_or_else(now),
        )
    }
}

/// `mec purse [OPTIONS] <VERB>`
#[derive(Args, Debug)]
#[command(
    about = "E-purse terminal over PC/SC: EP and ED balance, load, unload, purchase, log, prove; PIN and issuer commands (PBOC-style purse applet); the value-block tag and the e-ticket store",
    after_help = "Options go before the verb: `mec purse --reader \"Virtual SE\" balance`; --wallet \
and --pin may also follow it.\n\
ED: `mec purse --wallet ed --pin 123456 purchase --amount 5` (VERIFY, then the ED command, in one card session).\n\
Master keys default to the well-known TEST keys of epurse::danger (never on a real card).\n\
Exit codes: 0 ok, 1 card refused (status word), 2 usage, 3 MAC/TAC verification failed, \
4 answer lost and the transaction did not complete (or could not be settled), 5 reader/PC/SC."
)]
pub(crate) struct PurseArgs {
    /// Use the first PC/SC reader whose name contains this text (case-insensitive).
    #[arg(long, value_name = "NAME")]
    reader: Option<String>,
    /// Talk to an in-process virtual SE with this card profile instead of a PC/SC reader.
    #[arg(long = "virtual", value_name = "PROFILE", conflicts_with = "reader")]
    virtual_profile: Option<PathBuf>,
    /// With --virtual: keep the card state in this directory (share it with `mec gp
    /// --virtual-state` to install and personalize the purse first).
    #[arg(long, value_name = "DIR", requires = "virtual_profile")]
    virtual_state: Option<PathBuf>,
    /// With --virtual: fault injection like `mec vse serve --lose-response N`: the answer to
    /// the N-th (0-based) APDU that commits is lost and the card removed (it comes back when
    /// the terminal reconnects).
    #[arg(long, value_name = "N", requires = "virtual_profile")]
    virtual_lose_response: Option<u64>,
    /// With --virtual: fault injection: the card is removed instead of receiving the N-th
    /// (0-based) APDU of this invocation (a power cut before the card processed it); it comes
    /// back when the terminal reconnects.
    #[arg(long, value_name = "N", requires = "virtual_profile")]
    virtual_drop_apdu: Option<u64>,
    /// The purse application AID.
    #[arg(long, value_name = "AID", default_value = "A000000333010101")]
    aid: String,
    /// Which stored value: `ep` (electronic purse, anonymous purchases) or `ed` (electronic
    /// deposit: every operation needs --pin). Default: ep (`balance` also shows the ED
    /// balance when --pin is given; `log` shows both).
    #[arg(long, value_enum, global = true)]
    wallet: Option<Wallet>,
    /// The cardholder PIN (4 to 12 digits), presented with VERIFY right after SELECT; `-`
    /// reads it from the first line of standard input (`perso-data`: the PIN to
    /// personalize, default 123456).
    #[arg(long, value_name = "DIGITS", global = true)]
    pin: Option<String>,
    /// The operation.
    #[command(subcommand)]
    verb: Verb,
}

/// The verbs.
#[derive(Subcommand, Debug)]
pub(crate) enum Verb {
    /// SELECT the purse, show its issuer data and the EP balance (and the ED balance with
    /// --pin, or only it with --wallet ed).
    Balance,
    /// Load (credit) the EP (or with --wallet ed --pin, the ED) as load terminal + issuer
    /// load authority.
    #[command(
        after_help = "Example:\n  mec purse load --amount 50.00 --terminal-id 000000000042\n\
A real load terminal sends INITIALIZE FOR LOAD's answer to the issuer's host, whose HSM checks MAC1, \
returns MAC2 and later checks the TAC; here the master keys are in this process (test/simulation)."
    )]
    Load {
        /// Amount in currency units with up to 2 decimals (12.34).
        #[arg(long, value_parser = parse_amount)]
        amount: u32,
        /// Load terminal id (6 bytes hex).
        #[arg(long, value_name = "HEX", default_value = "000000000042", value_parser = parse_terminal)]
        terminal_id: [u8; 6],
        /// DLK master key (16 bytes hex) of the issuer. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        issuer_master_key: Option<Key16>,
        /// DTK (TAC) master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        tac_master_key: Option<Key16>,
        /// DLK key index on the card.
        #[arg(long, default_value_t = 1)]
        key_index: u8,
        /// DLK key version on the card.
        #[arg(long, default_value_t = 1)]
        key_version: u8,
        /// Date and time of the transaction, YYYYMMDDhhmmss (default: now, UTC).
        #[arg(long, value_name = "YYYYMMDDhhmmss", value_parser = parse_when)]
        when: Option<DateTime>,
    },
    /// Pay from the EP (or with --wallet ed --pin, the ED) as POS terminal with a software
    /// SAM.
    #[command(
        after_help = "Example:\n  mec purse purchase --amount 12.50 --terminal-id 000000000777"
    )]
    Purchase {
        /// Amount in currency units with up to 2 decimals.
        #[arg(long, value_parser = parse_amount)]
        amount: u32,
        #[command(flatten)]
        pos: PosArgs,
    },
    /// Unload (debit) the ED back to the issuer's account (ED only; needs --pin).
    #[command(
        after_help = "Example:\n  mec purse --pin 123456 unload --amount 20.00\n\
INITIALIZE FOR UNLOAD's MAC1 is verified and DEBIT FOR UNLOAD's MAC2 computed with the DULK \
(issuer side, in this process: test/simulation), the TAC checked with the DTK. A lost DEBIT \
answer is settled with GET TRANSACTION PROVE, never by a second DEBIT."
    )]
    Unload {
        /// Amount in currency units with up to 2 decimals.
        #[arg(long, value_parser = parse_amount)]
        amount: u32,
        /// Terminal id (6 bytes hex).
        #[arg(long, value_name = "HEX", default_value = "000000000042", value_parser = parse_terminal)]
        terminal_id: [u8; 6],
        /// DULK master key (16 bytes hex). Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        unload_master_key: Option<Key16>,
        /// DTK (TAC) master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        tac_master_key: Option<Key16>,
        /// DULK key index on the card.
        #[arg(long, default_value_t = 1)]
        key_index: u8,
        /// DULK key version on the card.
        #[arg(long, default_value_t = 1)]
        key_version: u8,
        /// Date and time of the transaction, YYYYMMDDhhmmss (default: now, UTC).
        #[arg(long, value_name = "YYYYMMDDhhmmss", value_parser = parse_when)]
        when: Option<DateTime>,
    },
    /// VERIFY the cardholder PIN (--pin); without --pin, show the tries left.
    #[command(
        after_help = "A wrong PIN costs a try (63Cx, x tries left, exit 1); at 0 the PIN is \
blocked (6983) until the issuer unblocks or reloads it."
    )]
    VerifyPin,
    /// CHANGE PIN: the cardholder replaces the PIN (the old one must be right).
    #[command(
        after_help = "`-` reads a PIN from standard input (one line each, --old first), which \
keeps it out of the process list: `printf '123456\\n2468\\n' | mec purse change-pin --old - --new -`."
    )]
    ChangePin {
        /// The current PIN (`-`: read it from standard input).
        #[arg(long, value_name = "DIGITS")]
        old: String,
        /// The new PIN (4 to 12 digits; `-`: read it from standard input).
        #[arg(long, value_name = "DIGITS")]
        new: String,
    },
    /// Issuer: RELOAD PIN (MAC under the DRPK): set a new PIN and reset the try counter.
    ReloadPin {
        /// The new PIN (4 to 12 digits; `-`: read it from standard input).
        #[arg(long, value_name = "DIGITS")]
        new: String,
        /// DRPK (PIN reload) master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        key: Option<Key16>,
    },
    /// Issuer: PIN UNBLOCK (PIN block enciphered and MACed under the DPUK): set a new PIN
    /// and reset the try counter.
    UnblockPin {
        /// The new PIN (4 to 12 digits; `-`: read it from standard input).
        #[arg(long, value_name = "DIGITS")]
        new: String,
        /// DPUK (PIN unblock) master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        key: Option<Key16>,
    },
    /// Issuer: APPLICATION BLOCK (temporary, MAC under the DAMK): transactions are refused
    /// (6985) until `unblock`.
    Block {
        /// DAMK (application maintenance) master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        key: Option<Key16>,
    },
    /// Issuer: APPLICATION UNBLOCK (MAC under the DAMK) of a temporarily blocked purse.
    Unblock {
        /// DAMK (application maintenance) master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        key: Option<Key16>,
    },
    /// Issuer: permanent APPLICATION BLOCK (MAC under the DAMK). IRREVERSIBLE: afterwards
    /// the purse answers 9303 to every command, whatever value it holds.
    LockPermanently {
        /// Required: confirms that the purse is to be locked for good.
        #[arg(long)]
        yes_really: bool,
        /// DAMK (application maintenance) master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        key: Option<Key16>,
    },
    /// The transaction log (READ RECORD, most recent first); --wallet keeps only that
    /// wallet's records.
    Log,
    /// GET TRANSACTION PROVE: the MAC and TAC of a completed transaction.
    Prove {
        /// The ATC of the transaction (decimal; offline ATC for purchases, online for loads
        /// and unloads).
        #[arg(long)]
        atc: u16,
        /// Transaction type (of the --wallet's purse; `unload` is always ED).
        #[arg(long = "type", value_enum, default_value_t = TxType::Purchase)]
        tx_type: TxType,
    },
    /// The value-block tag next to the purse: show its blocks, move value from the purse to
    /// it, resume a move, decrement it as a transit gate.
    Tag(tag::TagArgs),
    /// The e-ticket store next to the purse: list, deliver, buy (purchase + delivery), gate.
    Ticket(ticket::TicketArgs),
    /// Print the personalization DGIs (hex, one per line) for `mec gp store-data AID --dgi ...`.
    #[command(
        after_help = "Example (in-process card; drop --virtual/--virtual-state for a reader):\n  \
mec gp --virtual P --virtual-state S install --package F06D65635055 --applet F06D6563505501 --create A000000333010101\n  \
mec gp --virtual P --virtual-state S store-data A000000333010101 --dgi $(mec purse perso-data)"
    )]
    PersoData {
        /// Application serial number (8 bytes hex).
        #[arg(long, value_name = "HEX", default_value = "0000000012345678")]
        asn: String,
        /// Issuer id (8 bytes hex).
        #[arg(long, value_name = "HEX", default_value = "1000000000000001")]
        issuer_id: String,
        /// PIN try limit (1 to 15).
        #[arg(long, default_value_t = 3)]
        pin_tries: u8,
        /// ED overdraft limit (currency units; 0 for none).
        #[arg(long, value_parser = parse_amount_or_zero, default_value = "0")]
        ed_overdraft: u32,
        /// Maximum balance (currency units).
        #[arg(long, value_parser = parse_amount, default_value = "10000.00")]
        max_balance: u32,
        /// First valid day, YYYYMMDD.
        #[arg(long, default_value = "20200101")]
        start: String,
        /// Last valid day, YYYYMMDD.
        #[arg(long, default_value = "20351231")]
        end: String,
        /// DPK master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        purchase_master_key: Option<Key16>,
        /// DLK master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        issuer_master_key: Option<Key16>,
        /// DTK master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        tac_master_key: Option<Key16>,
        /// DULK (unload) master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        unload_master_key: Option<Key16>,
        /// DPUK (PIN unblock) master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        pin_unblock_master_key: Option<Key16>,
        /// DRPK (PIN reload) master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        pin_reload_master_key: Option<Key16>,
        /// DAMK (application block / unblock / lock) master key. Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        maintenance_master_key: Option<Key16>,
        /// The value-block tag's AN10922 master key, kept by the purse as the tag's gatekeeper
        /// (DGI 0401; `mec purse tag move`). Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        tag_master_key: Option<Key16>,
        /// AN10922 application identifier of the tag keys (3 bytes hex).
        #[arg(long, value_name = "HEX", default_value = "3042F5")]
        tag_an10922_aid: String,
        /// AN10922 system identifier of the tag keys (0 to 21 bytes hex; default "MEC TAG").
        #[arg(long, value_name = "HEX", default_value = "4D454320544147")]
        tag_system_id: String,
        /// Personalize no tag access data (the purse then refuses MOVE TO TAG with 6A88).
        #[arg(long, conflicts_with = "tag_master_key")]
        no_tag: bool,
    },
}

/// `--wallet`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Wallet {
    /// Electronic purse (P2 02): anonymous purchases.
    Ep,
    /// Electronic deposit (P2 01): every operation needs a verified PIN.
    Ed,
}

impl Wallet {
    const fn kind(self) -> PurseKind {
        match self {
            Wallet::Ep => PurseKind::Ep,
            Wallet::Ed => PurseKind::Ed,
        }
    }
}

/// `prove --type`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TxType {
    /// EP purchase (type 06), or ED purchase (05) with --wallet ed.
    Purchase,
    /// EP load (type 02), or ED load (01) with --wallet ed.
    Load,
    /// ED unload (type 03).
    Unload,
}

/// Parse `12`, `12.3` or `12.34` into cents.
pub(crate) fn parse_amount(s: &str) -> Result<u32, String> {
    let (units, cents) = match s.split_once('.') {
        Some((u, c)) => (u, c),
        None => (s, ""),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(units) || (!cents.is_empty() && !digits(cents)) || cents.len() > 2 {
        return Err(format!(
            "amount \"{s}\": expected currency units with up to 2 decimals, e.g. 12.50"
        ));
    }
    let units: u64 = units
        .parse()
        .map_err(|_| format!("amount \"{s}\" too large"))?;
    let cents: u64 = match cents.len() {
        0 => 0,
        1 => cents.parse::<u64>().map_err(|e| e.to_string())? * 10,
        _ => cents.parse::<u64>().map_err(|e| e.to_string())?,
    };
    let total = units
        .checked_mul(100)
        .and_then(|u| u.checked_add(cents))
        .and_then(|t| u32::try_from(t).ok())
        .filter(|t| i32::try_from(*t).is_ok())
        .ok_or_else(|| format!("amount \"{s}\" too large"))?;
    if total == 0 {
        return Err("amount must be more than 0.00".into());
    }
    Ok(total)
}

/// Like [`parse_amount`], also accepting `0`.
fn parse_amount_or_zero(s: &str) -> Result<u32, String> {
    if matches!(s, "0" | "0.0" | "0.00") {
        return Ok(0);
    }
    parse_amount(s)
}

/// Format cents with 2 decimals.
pub(crate) fn format_amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let a = cents.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

fn parse_hex_exact<const N: usize>(s: &str, what: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(s.replace([' ', ':'], "")).map_err(|e| format!("{what}: {e}"))?;
    <[u8; N]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{what}: expected {N} bytes, got {}", bytes.len()))
}

fn parse_terminal(s: &str) -> Result<[u8; 6], String> {
    parse_hex_exact::<6>(s, "terminal id")
}

fn parse_key(s: &str) -> Result<Key16, String> {
    parse_hex_exact::<16>(s, "master key").map(Key16::new)
}

fn bcd(digits: &str) -> Result<Vec<u8>, String> {
    if !digits.len().is_multiple_of(2) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("\"{digits}\": expected an even number of digits"));
    }
    hex::decode(digits).map_err(|e| e.to_string())
}

fn parse_when(s: &str) -> Result<DateTime, String> {
    if s.len() != 14 {
        return Err(format!("\"{s}\": expected YYYYMMDDhhmmss"));
    }
    let b = bcd(s)?;
    let mut raw = [0u8; 7];
    raw.copy_from_slice(&b);
    let when = DateTime::from_bytes(&raw);
    if when.is_valid() {
        Ok(when)
    } else {
        Err(format!("\"{s}\": not a valid date and time"))
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (the
/// "civil from days" algorithm of H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn now() -> DateTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let secs = i64::try_from(secs).unwrap_or(0);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    let text = format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        t / 3600,
        (t / 60) % 60,
        t % 60
    );
    parse_when(&text).unwrap_or(DateTime {
        date: [0x20, 0x00, 0x01, 0x01],
        time: [0, 0, 0],
    })
}

fn format_when(w: &DateTime) -> String {
    let d = hex::encode(w.date);
    let t = hex::encode(w.time);
    format!(
        "{}-{}-{} {}:{}:{}",
        d.get(0..4).unwrap_or_default(),
        d.get(4..6).unwrap_or_default(),
        d.get(6..8).unwrap_or_default(),
        t.get(0..2).unwrap_or_default(),
        t.get(2..4).unwrap_or_default(),
        t.get(4..6).unwrap_or_default()
    )
}

fn format_day(d: &[u8; 4]) -> String {
    let s = hex::encode(d);
    format!(
        "{}-{}-{}",
        s.get(0..4).unwrap_or_default(),
        s.get(4..6).unwrap_or_default(),
        s.get(6..8).unwrap_or_default()
    )
}

/// The receipt text.
pub(crate) fn format_receipt(r: &Receipt) -> String {
    let up = |b: &[u8]| hex::encode_upper(b);
    let mut lines = vec![
        "================ MEC E-PURSE ================".to_string(),
        format!("{:<28}{:>17}", r.kind, "APPROVED"),
        format!("{:<20}{:>25}", "Date/time", format_when(&r.when)),
        format!("{:<20}{:>25}", "Terminal", up(&r.terminal_id)),
    ];
    if let Some(s) = r.terminal_serial {
        lines.push(format!(
            "{:<20}{:>25}",
            "Terminal serial",
            u32::from_be_bytes(s)
        ));
    }
    lines.extend([
        format!("{:<20}{:>25}", "Purse", up(&r.aid)),
        format!("{:<20}{:>25}", "Card ASN", up(&r.asn)),
        format!("{:<20}{:>25}", "Wallet", wallet_name(r.wallet)),
        format!("{:<20}{:>25}", "Amount", format_amount(i64::from(r.amount))),
        format!(
            "{:<20}{:>25}",
            "Balance before",
            format_amount(i64::from(r.before))
        ),
        format!(
            "{:<20}{:>25}",
            "Balance after",
            format_amount(i64::from(r.after))
        ),
        format!(
            "{:<20}{:>25}",
            if r.kind == "PURCHASE" {
                "Offline ATC"
            } else {
                "Online ATC"
            },
            r.atc
        ),
        format!("{:<20}{:>25}", "TAC", up(&r.tac)),
        r.verified.to_string(),
    ]);
    if r.recovered {
        lines.push(
            "Answer lost after the card committed: recovered with GET TRANSACTION PROVE \
             (applied once)"
                .to_string(),
        );
    }
    lines.push("=============================================".to_string());
    lines.join("\n")
}

fn wallet_name(kind: PurseKind) -> &'static str {
    match kind {
        PurseKind::Ep => "EP (electronic purse)",
        PurseKind::Ed => "ED (electronic deposit)",
    }
}

/// The wallet a logged transaction type belongs to.
fn wallet_of(t: u8) -> Option<Wallet> {
    match t {
        pboc::TYPE_ED_LOAD | pboc::TYPE_ED_UNLOAD | pboc::TYPE_ED_PURCHASE => Some(Wallet::Ed),
        pboc::TYPE_EP_LOAD | pboc::TYPE_EP_PURCHASE | pboc::TYPE_EP_TO_TAG => Some(Wallet::Ep),
        _ => None,
    }
}

fn type_name(t: u8) -> &'static str {
    match t {
        pboc::TYPE_ED_LOAD => "ED load",
        pboc::TYPE_EP_LOAD => "EP load",
        pboc::TYPE_ED_UNLOAD => "ED unload",
        pboc::TYPE_ED_PURCHASE => "ED purchase",
        pboc::TYPE_EP_PURCHASE => "EP purchase",
        pboc::TYPE_EP_TO_TAG => "EP to tag",
        _ => "unknown",
    }
}

fn format_log(records: &[LogRecord]) -> String {
    let mut out = vec![format!(
        "{:>3}  {:>5}  {:<12} {:>12}  {:<12}  {}",
        "#", "ATC", "type", "amount", "terminal", "date/time"
    )];
    for (n, r) in records.iter().enumerate() {
        out.push(format!(
            "{:>3}  {:>5}  {:<12} {:>12}  {:<12}  {}",
            n + 1,
            r.atc,
            type_name(r.tx_type),
            format_amount(i64::from(r.amount)),
            hex::encode_upper(r.terminal_id),
            format_when(&DateTime {
                date: r.date,
                time: r.time
            })
        ));
    }
    if records.is_empty() {
        out.push("(no transactions)".into());
    }
    out.join("\n")
}

fn info_lines(aid: &[u8], info: &PurseInfo, balances: &[(PurseKind, i32)]) -> String {
    let mut lines = vec![
        format!("{:<20}{}", "Purse", hex::encode_upper(aid)),
        format!("{:<20}{}", "Card ASN", hex::encode_upper(info.asn)),
        format!("{:<20}{}", "Issuer", hex::encode_upper(info.issuer_id)),
        format!(
            "{:<20}{} to {}",
            "Valid",
            format_day(&info.start),
            format_day(&info.end)
        ),
    ];
    if info.blocked {
        lines.push(format!(
            "{:<20}{}",
            "Status", "BLOCKED by the issuer (SELECT answered 6283; `mec purse unblock`)"
        ));
    }
    for (kind, balance) in balances {
        let name = match kind {
            PurseKind::Ep => "EP balance",
            PurseKind::Ed => "ED balance",
        };
        lines.push(format!("{name:<20}{}", format_amount(i64::from(*balance))));
    }
    lines.join("\n")
}

fn test_key(function: u8) -> Key16 {
    epurse::danger::test_master_key(function, 1)
}

fn perso_dgis(verb: &Verb, pin: Option<&str>) -> Result<Vec<String>, PurseError> {
    let Verb::PersoData {
        asn,
        issuer_id,
        pin_tries,
        ed_overdraft,
        max_balance,
        start,
        end,
        purchase_master_key,
        issuer_master_key,
        tac_master_key,
        unload_master_key,
        pin_unblock_master_key,
        pin_reload_master_key,
        maintenance_master_key,
        tag_master_key,
        tag_an10922_aid,
        tag_system_id,
        no_tag,
    } = verb
    else {
        return Err(PurseError::Usage("not perso-data".into()));
    };
    let asn = parse_hex_exact::<8>(asn, "ASN").map_err(PurseError::Usage)?;
    let issuer_id = parse_hex_exact::<8>(issuer_id, "issuer id").map_err(PurseError::Usage)?;
    let day = |s: &str| -> Result<[u8; 4], PurseError> {
        let w = parse_when(&format!("{s}000000")).map_err(PurseError::Usage)?;
        Ok(w.date)
    };
    let pin = pin_bcd(pin.unwrap_or("123456")).map_err(PurseError::Usage)?;
    if !(1..=15).contains(pin_tries) {
        return Err(PurseError::Usage("--pin-tries: 1 to 15".into()));
    }
    let diversify = |function: u8, master: &Option<Key16>| KeyRecord {
        function,
        index: 1,
        version: 1,
        key: pboc::diversify(
            &epurse::crypto::TdesKey::new(master.as_ref().unwrap_or(&test_key(function))),
            &asn,
        ),
    };
    let perso = Personalization {
        issuer: IssuerData {
            asn,
            issuer_id,
            app_type: 0x03,
            app_version: 0x01,
            start_date: day(start)?,
            end_date: day(end)?,
        },
        max_balance: *max_balance,
        overdraft_limit: *ed_overdraft,
        keys: vec![
            diversify(key_function::PURCHASE, purchase_master_key),
            diversify(key_function::LOAD, issuer_master_key),
            diversify(key_function::TAC, tac_master_key),
            diversify(key_function::UNLOAD, unload_master_key),
            diversify(key_function::PIN_UNBLOCK, pin_unblock_master_key),
            diversify(key_function::PIN_RELOAD, pin_reload_master_key),
            diversify(key_function::MAINTENANCE, maintenance_master_key),
        ],
        pin: pin.to_vec(),
        pin_try_limit: *pin_tries,
        tag: if *no_tag {
            None
        } else {
            let aid = parse_hex_exact::<3>(tag_an10922_aid, "--tag-an10922-aid")
                .map_err(PurseError::Usage)?;
            let si = hex::decode(tag_system_id)
                .map_err(|e| PurseError::Usage(format!("--tag-system-id: {e}")))?;
            let master = tag_master_key
                .clone()
                .unwrap_or_else(epurse::danger::test_tag_master_key);
            Some(
                epurse::card::TagAccess::new(master, aid, &si)
                    .map_err(|_| PurseError::Usage("--tag-system-id: at most 21 bytes".into()))?,
            )
        },
    };
    let dgis = perso
        .dgis()
        .map_err(|e| PurseError::Usage(format!("personalization: {e}")))?;
    Ok(dgis.iter().map(hex::encode_upper).collect())
}

fn open_link(args: &PurseArgs) -> Result<Box<dyn Transport>, PurseError> {
    if let Some(profile_path) = &args.virtual_profile {
        let profile = virtual_se::profile::Profile::from_file(profile_path)
            .map_err(|e| PurseError::Usage(format!("profile {}: {e}", profile_path.display())))?;
        let packages = virtual_se::applet::Packages::builtin();
        let seed = [0x5E; 32];
        let link: Box<dyn Transport> = match &args.virtual_state {
            Some(dir) => {
                let store = virtual_se::store::DiskStore::open(dir).map_err(|e| {
                    PurseError::Usage(format!("virtual card state {}: {e}", dir.display()))
                })?;
                let card = virtual_se::card::Card::open(store, &profile, packages, seed)
                    .map_err(|e| PurseError::Usage(format!("opening the virtual card: {e}")))?;
                Box::new(VirtualTransport::with_faults(
                    card,
                    args.virtual_lose_response,
                    args.virtual_drop_apdu,
                ))
            }
            None => {
                let card = virtual_se::card::Card::open(
                    virtual_se::store::MemoryStore::new(),
                    &profile,
                    packages,
                    seed,
                )
                .map_err(|e| PurseError::Usage(format!("opening the virtual card: {e}")))?;
                Box::new(VirtualTransport::with_faults(
                    card,
                    args.virtual_lose_response,
                    args.virtual_drop_apdu,
                ))
            }
        };
        return Ok(link);
    }
    Ok(Box::new(PcscTransport::connect(args.reader.as_deref())?))
}

fn exit_code(e: &PurseError) -> u8 {
    match e {
        PurseError::Status { .. } => 1,
        PurseError::Usage(_) => 2,
        PurseError::Verification(_) => 3,
        PurseError::Unknown(_) => 4,
        PurseError::Link(_) => 5,
    }
}

fn warn_test_keys(keys: &[&Option<Key16>]) {
    if keys.iter().any(|k| k.is_none()) {
        eprintln!("mec purse: using the well-known TEST master keys (epurse::danger)");
    }
}

fn master_or_test(key: &Option<Key16>, function: u8) -> Key16 {
    key.clone().unwrap_or_else(|| test_key(function))
}

/// The issuer verb's command, master key and new PIN.
fn issuer_verb(verb: &Verb) -> Option<(IssuerCommand, &Option<Key16>, Option<&str>)> {
    match verb {
        Verb::ReloadPin { new, key } => Some((IssuerCommand::ReloadPin, key, Some(new))),
        Verb::UnblockPin { new, key } => Some((IssuerCommand::UnblockPin, key, Some(new))),
        Verb::Block { key } => Some((IssuerCommand::Block, key, None)),
        Verb::Unblock { key } => Some((IssuerCommand::Unblock, key, None)),
        Verb::LockPermanently { key, .. } => Some((IssuerCommand::LockPermanently, key, None)),
        _ => None,
    }
}

fn issuer_done(command: IssuerCommand, aid: &[u8], info: &PurseInfo) -> String {
    let what = match command {
        IssuerCommand::ReloadPin => "PIN reloaded: the new PIN is set and the try counter reset",
        IssuerCommand::UnblockPin => "PIN unblocked: the new PIN is set and the try counter reset",
        IssuerCommand::Block => {
            "application blocked: SELECT now answers 6283 and transactions 6985 until `mec purse unblock`"
        }
        IssuerCommand::Unblock => "application unblocked: transactions are accepted again",
        IssuerCommand::LockPermanently => {
            "application permanently locked: every command now answers 9303"
        }
    };
    format!(
        "{} {}: {what}\n{:<20}{}\n{:<20}{}",
        command.name(),
        "9000",
        "Purse",
        hex::encode_upper(aid),
        "Card ASN",
        hex::encode_upper(info.asn)
    )
}

/// `--pin -`: the PIN is the first line of standard input (kept out of the process list).
fn read_pin_line(option: &str) -> Result<Zeroizing<String>, PurseError> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| PurseError::Usage(format!("{option} -: reading standard input: {e}")))?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

/// A PIN option's value as packed BCD; `-` reads it from the next line of standard input.
fn pin_arg(value: &str, option: &str) -> Result<Zeroizing<Vec<u8>>, PurseError> {
    let text = if value == "-" {
        read_pin_line(option)?
    } else {
        Zeroizing::new(value.to_string())
    };
    pin_bcd(&text).map_err(|e| PurseError::Usage(format!("{option}: {e}")))
}

fn execute(args: &PurseArgs) -> Result<String, PurseError> {
    let pin_text = match args.pin.as_deref() {
        Some("-") => Some(read_pin_line("--pin")?),
        Some(p) => Some(Zeroizing::new(p.to_string())),
        None => None,
    };
    if let Verb::PersoData { .. } = &args.verb {
        return Ok(perso_dgis(&args.verb, pin_text.as_deref().map(String::as_str))?.join("\n"));
    }
    let aid = hex::decode(&args.aid).map_err(|e| PurseError::Usage(format!("--aid: {e}")))?;
    if !(5..=16).contains(&aid.len()) {
        return Err(PurseError::Usage("--aid: 5 to 16 bytes".into()));
    }
    let pin = pin_text
        .as_deref()
        .map(|p| pin_bcd(p))
        .transpose()
        .map_err(|e| PurseError::Usage(format!("--pin: {e}")))?;
    let kind = args.wallet.map_or(PurseKind::Ep, Wallet::kind);
    match &args.verb {
        Verb::Tag(t) => {
            return tag::execute(
                t,
                &aid,
                args.wallet == Some(Wallet::Ed),
                pin.is_some(),
                || open_link(args),
                pin,
            );
        }
        Verb::Ticket(t) => {
            return ticket::execute(t, kind, &aid, || open_link(args), pin);
        }
        _ => {}
    }
    // Arguments that cannot work are refused before the card is touched.
    match &args.verb {
        Verb::Unload { .. } if args.wallet == Some(Wallet::Ep) => {
            return Err(PurseError::Usage(
                "unload: only the ED can be unloaded (drop --wallet ep)".into(),
            ));
        }
        Verb::LockPermanently {
            yes_really: false, ..
        } => {
            return Err(PurseError::Usage(
                "lock-permanently is irreversible: the purse and the value in it can never be \
                 used again; add --yes-really to confirm"
                    .into(),
            ));
        }
        Verb::ChangePin { .. } | Verb::ReloadPin { .. } | Verb::UnblockPin { .. }
            if args.pin.is_some() =>
        {
            return Err(PurseError::Usage(
                "--pin is for VERIFY; this verb takes --old/--new or --new".into(),
            ));
        }
        _ => {}
    }
    let mut link = open_link(args)?;
    let term = Terminal::new(link.as_mut(), aid.clone());
    // Issuer and PIN-management verbs do not VERIFY first.
    let mut term = match &args.verb {
        Verb::Balance
        | Verb::Load { .. }
        | Verb::Unload { .. }
        | Verb::Purchase { .. }
        | Verb::VerifyPin => term.with_pin(pin),
        _ => term,
    };
    let result = run_verb(args, &mut term, &aid, kind);
    // 6985 is generic ("conditions of use not satisfied"); say which condition when we know.
    result.map_err(|e| match e {
        PurseError::Status { what, sw, hint } if sw == StatusWord::CONDITIONS_NOT_SATISFIED => {
            let hint = if matches!(args.verb, Verb::Unblock { .. }) && !term.blocked() {
                ": the application is not blocked".to_string()
            } else if term.blocked() {
                ": the issuer has blocked the application (SELECT answered 6283); \
                 `mec purse unblock` lifts the block"
                    .to_string()
            } else {
                hint
            };
            PurseError::Status { what, sw, hint }
        }
        other => other,
    })
}

fn run_verb(
    args: &PurseArgs,
    term: &mut Terminal<'_>,
    aid: &[u8],
    kind: PurseKind,
) -> Result<String, PurseError> {
    if let Some((command, key, new_pin)) = issuer_verb(&args.verb) {
        warn_test_keys(&[key]);
        let master = master_or_test(key, command.function());
        let new_pin = new_pin.map(|p| pin_arg(p, "--new")).transpose()?;
        let info = term.issuer_command(command, &master, new_pin.as_ref().map(|p| p.as_slice()))?;
        return Ok(issuer_done(command, aid, &info));
    }
    match &args.verb {
        Verb::Balance => {
            let info = term.select()?;
            let mut balances = Vec::new();
            if args.wallet != Some(Wallet::Ed) {
                balances.push((PurseKind::Ep, term.balance(PurseKind::Ep)?));
            }
            if args.wallet == Some(Wallet::Ed) || (args.wallet.is_none() && args.pin.is_some()) {
                term.verify_pin()?;
                balances.push((PurseKind::Ed, term.balance(PurseKind::Ed)?));
            }
            Ok(info_lines(aid, &info, &balances))
        }
        Verb::Log => {
            term.select()?;
            let records: Vec<LogRecord> = term
                .log()?
                .into_iter()
                .filter(|r| args.wallet.is_none() || wallet_of(r.tx_type) == args.wallet)
                .collect();
            Ok(format_log(&records))
        }
        Verb::Prove { atc, tx_type } => {
            term.select()?;
            let t = match tx_type {
                TxType::Purchase => kind.purchase_type(),
                TxType::Load => kind.load_type(),
                TxType::Unload => pboc::TYPE_ED_UNLOAD,
            };
            let (mac, tac) = term.prove(t, *atc)?;
            Ok(format!(
                "{} ATC {atc}: {} {}, TAC {}",
                type_name(t),
                if *tx_type == TxType::Purchase {
                    "card MAC2"
                } else {
                    "issuer MAC2"
                },
                hex::encode_upper(mac),
                hex::encode_upper(tac)
            ))
        }
        Verb::VerifyPin => {
            term.select()?;
            if term.verify_pin()? {
                Ok("VERIFY 9000: PIN correct (the try counter is back at its limit)".into())
            } else {
                let left = term.pin_tries_left()?;
                Ok(format!("PIN tries left: {left}"))
            }
        }
        Verb::ChangePin { old, new } => {
            let old = pin_arg(old, "--old")?;
            let new = pin_arg(new, "--new")?;
            term.select()?;
            term.change_pin(&old, &new)?;
            Ok("CHANGE PIN 9000: the new PIN is set".into())
        }
        Verb::Load {
            amount,
            terminal_id,
            issuer_master_key,
            tac_master_key,
            key_index,
            key_version,
            when,
        } => {
            warn_test_keys(&[issuer_master_key, tac_master_key]);
            let keys = IssuerKeys {
                load_master: master_or_test(issuer_master_key, key_function::LOAD),
                tac_master: master_or_test(tac_master_key, key_function::TAC),
                load_key: (*key_index, *key_version),
                tac_key: TacKeyRef {
                    index: 1,
                    version: 1,
                },
            };
            let r = term.load(&keys, kind, *amount, *terminal_id, when.unwrap_or_else(now))?;
            Ok(format_receipt(&r))
        }
        Verb::Unload {
            amount,
            terminal_id,
            unload_master_key,
            tac_master_key,
            key_index,
            key_version,
            when,
        } => {
            warn_test_keys(&[unload_master_key, tac_master_key]);
            let keys = IssuerKeys {
                load_master: master_or_test(unload_master_key, key_function::UNLOAD),
                tac_master: master_or_test(tac_master_key, key_function::TAC),
                load_key: (*key_index, *key_version),
                tac_key: TacKeyRef {
                    index: 1,
                    version: 1,
                },
            };
            let r = term.unload(&keys, *amount, *terminal_id, when.unwrap_or_else(now))?;
            Ok(format_receipt(&r))
        }
        Verb::Purchase { amount, pos } => {
            let r = pos.purchase(term, kind, *amount)?;
            Ok(format_receipt(&r))
        }
        Verb::PersoData { .. }
        | Verb::Tag(_)
        | Verb::Ticket(_)
        | Verb::ReloadPin { .. }
        | Verb::UnblockPin { .. }
        | Verb::Block { .. }
        | Verb::Unblock { .. }
        | Verb::LockPermanently { .. } => Err(PurseError::Usage("unexpected verb".into())),
    }
}

/// Run `mec purse ...`.
pub(crate) fn run(args: PurseArgs) -> anyhow::Result<ExitCode> {
    match execute(&args) {
        Ok(text) => {
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("mec purse: {e}");
            Ok(ExitCode::from(exit_code(&e)))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("12"), Ok(1200));
        assert_eq!(parse_amount("12.5"), Ok(1250));
        assert_eq!(parse_amount("0.07"), Ok(7));
        assert!(parse_amount("0").is_err());
        assert!(parse_amount("1.234").is_err());
        assert!(parse_amount("-1").is_err());
        assert!(parse_amount("1e3").is_err());
        assert!(parse_amount(".5").is_err());
        assert!(parse_amount("21474836.48").is_err());
        assert_eq!(parse_amount("21474836.47"), Ok(i32::MAX as u32));
        assert_eq!(format_amount(1250), "12.50");
        assert_eq!(format_amount(-7), "-0.07");
        assert_eq!(format_amount(0), "0.00");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2000-02-29 is day 11 016; 2026-11-21 is day 20 778.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_778), (2026, 11, 21));
        let w = parse_when("20261121071500").unwrap();
        assert_eq!(format_when(&w), "2026-11-21 07:15:00");
        assert!(parse_when("20261341071500").is_err());
        assert!(parse_when("2026112107150").is_err());
        assert!(now().is_valid());
    }

    #[test]
    fn pins_are_packed_bcd_with_f_filler() {
        assert_eq!(pin_bcd("123456").unwrap().as_slice(), &[0x12, 0x34, 0x56]);
        assert_eq!(pin_bcd("12345").unwrap().as_slice(), &[0x12, 0x34, 0x5F]);
        assert_eq!(pin_bcd("123456789012").unwrap().len(), 6);
        for bad in ["123", "1234567890123", "12a4", "", "12 34"] {
            assert!(pin_bcd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn issuer_commands_carry_the_documented_header_and_mac() {
        let key = Key16::new([0x11; 16]);
        let challenge = [1, 2, 3, 4, 5, 6, 7, 8];
        for (cmd, header) in [
            (IssuerCommand::Block, [0x84, 0x1E, 0x00, 0x00]),
            (IssuerCommand::LockPermanently, [0x84, 0x1E, 0x00, 0x01]),
            (IssuerCommand::Unblock, [0x84, 0x18, 0x00, 0x00]),
        ] {
            let apdu = cmd.apdu(&key, challenge, None).unwrap().to_vec().unwrap();
            let mac = epurse::card::issuer_mac(&key, challenge, header, 4, &[]).unwrap();
            assert_eq!(apdu[..4], header);
            assert_eq!(apdu[4], 4);
            assert_eq!(apdu[5..], mac);
        }
        let pin = pin_bcd("1234").unwrap();
        let apdu = IssuerCommand::ReloadPin
            .apdu(&key, challenge, Some(&pin))
            .unwrap()
            .to_vec()
            .unwrap();
        assert_eq!(apdu[..7], [0x80, 0x5E, 0x00, 0x00, 0x06, 0x12, 0x34]);
        // PIN UNBLOCK: the PIN block enciphered under the DPUK, then the MAC.
        let apdu = IssuerCommand::UnblockPin
            .apdu(&key, challenge, Some(&pin))
            .unwrap()
            .to_vec()
            .unwrap();
        assert_eq!(apdu[..5], [0x84, 0x24, 0x00, 0x00, 0x0C]);
        let mut block: [u8; 8] = apdu[5..13].try_into().unwrap();
        epurse::crypto::TdesKey::new(&key).decrypt(&mut block);
        assert_eq!(block, [0x02, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(
            IssuerCommand::UnblockPin
                .apdu(&key, challenge, None)
                .is_err()
        );
    }

    #[test]
    fn status_word_hints() {
        assert!(terminal::hint(StatusWord::new(0x63, 0xC1)).contains("1 try left"));
        assert!(terminal::hint(StatusWord::new(0x63, 0xC0)).contains("now blocked"));
        assert!(terminal::hint(StatusWord::new(0x69, 0x82)).contains("--pin"));
        assert!(terminal::hint(StatusWord::new(0x93, 0x03)).contains("for good"));
        assert_eq!(terminal::hint(StatusWord::SUCCESS), "");
    }
}
