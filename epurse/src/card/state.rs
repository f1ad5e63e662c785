//! The purse applet's persistent state and its stable byte encoding.
//!
//! Everything the applet must remember across power cycles is in [`PurseState`]; everything
//! else (selection, PIN verified, a pending INITIALIZE, the issuer challenge, cached key
//! schedules) is in [`Session`](super::Session) and is lost on a power cut, as on a card.
//!
//! Encoding (version 1, all integers big-endian):
//! `"EPS1"(4) || body || CRC-32(4)` where CRC-32 is CRC-32/ISO-HDLC (the zlib CRC) over the
//! magic and the body. The body is a fixed sequence of fields documented in `docs/epurse.md`.

use alloc::vec::Vec;

use crate::Error;
use crate::crypto::Key16;
use crate::encoding::{self, Reader};
use crate::pboc::PurseKind;

/// Largest AID (ISO/IEC 7816-5: 5 to 16 bytes).
pub const MAX_AID: usize = 16;
/// Number of key slots (function, index) the applet keeps.
pub const MAX_KEYS: usize = 16;
/// Records in the cyclic transaction log (PBOC: 10).
pub const LOG_RECORDS: usize = 10;
/// Length of one log record (PBOC transaction detail record).
pub const LOG_RECORD_LEN: usize = 23;
/// Completed transactions kept for GET TRANSACTION PROVE.
pub const PROVE_RECORDS: usize = 16;
/// Longest AN10922 system identifier the purse stores for the tag.
pub const MAX_SYSTEM_IDENTIFIER: usize = 21;

const MAGIC: &[u8; 4] = b"EPS1";

/// Key functions (the low byte of the key DGI `02xx`, see `docs/epurse.md`).
pub mod key_function {
    /// DPK: purchase key.
    pub const PURCHASE: u8 = 0x01;
    /// DLK: load key.
    pub const LOAD: u8 = 0x02;
    /// DTK: TAC key.
    pub const TAC: u8 = 0x03;
    /// DULK: unload key.
    pub const UNLOAD: u8 = 0x04;
    /// DPUK: PIN unblock key.
    pub const PIN_UNBLOCK: u8 = 0x05;
    /// DRPK: PIN reload key.
    pub const PIN_RELOAD: u8 = 0x06;
    /// DAMK: application maintenance key (block, unblock, permanent lock).
    pub const MAINTENANCE: u8 = 0x07;

    /// `true` for a function the applet knows.
    #[must_use]
    pub const fn is_known(f: u8) -> bool {
        matches!(f, 0x01..=0x07)
    }
}

/// Application lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    /// Installed, accepting STORE DATA.
    Personalizing,
    /// Personalized and usable.
    Active,
    /// Temporarily blocked by the issuer (APPLICATION BLOCK P2 00).
    Blocked,
    /// Permanently locked (APPLICATION BLOCK P2 01): every command answers 9303.
    PermanentlyLocked,
}

impl Lifecycle {
    fn to_byte(self) -> u8 {
        match self {
            Lifecycle::Personalizing => 0x03,
            Lifecycle::Active => 0x07,
            Lifecycle::Blocked => 0x83,
            Lifecycle::PermanentlyLocked => 0xFF,
        }
    }

    fn from_byte(b: u8) -> Result<Self, Error> {
        Ok(match b {
            0x03 => Lifecycle::Personalizing,
            0x07 => Lifecycle::Active,
            0x83 => Lifecycle::Blocked,
            0xFF => Lifecycle::PermanentlyLocked,
            _ => return Err(Error::StateEncoding("lifecycle")),
        })
    }
}

/// Issuer data (DGI `0101`), readable in the issuer file (SFI `15`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IssuerData {
    /// Application serial number (the diversification input).
    pub asn: [u8; 8],
    /// Issuer identifier.
    pub issuer_id: [u8; 8],
    /// Application type (PBOC: `01` ED only, `02` EP only, `03` both).
    pub app_type: u8,
    /// Application version.
    pub app_version: u8,
    /// First valid date `YYYYMMDD` BCD.
    pub start_date: [u8; 4],
    /// Last valid date `YYYYMMDD` BCD.
    pub end_date: [u8; 4],
}

/// One personalized key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardKey {
    /// Function (see [`key_function`]).
    pub function: u8,
    /// Key index (the terminal's "key index" in INITIALIZE).
    pub index: u8,
    /// Key version (returned by INITIALIZE).
    pub version: u8,
    /// Algorithm identifier (returned by INITIALIZE).
    pub algorithm: u8,
    /// The diversified 3DES key.
    pub key: Key16,
}

/// The PIN reference data and its try counter.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin {
    /// Packed BCD PIN, `len` bytes used, rest zero.
    pub(crate) digits: [u8; 6],
    pub(crate) len: u8,
    /// Tries left.
    pub tries_left: u8,
    /// Try limit (tries after a successful VERIFY or an unblock).
    pub try_limit: u8,
}

impl core::fmt::Debug for Pin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pin")
            .field("digits", &"<redacted>")
            .field("tries_left", &self.tries_left)
            .field("try_limit", &self.try_limit)
            .finish()
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.digits);
    }
}

impl Pin {
    /// A PIN from 2..=6 packed BCD bytes (`F` allowed as trailing filler).
    ///
    /// # Errors
    /// [`Error::IncorrectData`] for a wrong length or non-BCD digits, or a zero try limit.
    pub fn new(bcd: &[u8], try_limit: u8) -> Result<Self, Error> {
        if !(2..=6).contains(&bcd.len()) || !is_pin_bcd(bcd) || !(1..=15).contains(&try_limit) {
            return Err(Error::IncorrectData);
        }
        let mut digits = [0u8; 6];
        digits[..bcd.len()].copy_from_slice(bcd);
        Ok(Pin {
            digits,
            len: u8::try_from(bcd.len()).map_err(|_| Error::IncorrectData)?,
            tries_left: try_limit,
            try_limit,
        })
    }

    /// Constant-time comparison with a presented PIN.
    #[must_use]
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        let mut padded = [0u8; 6];
        let n = presented.len().min(6);
        padded[..n].copy_from_slice(&presented[..n]);
        let same_len = usize::from(self.len) == presented.len();
        let same = crate::crypto::mac_eq(&self.digits, &padded);
        same_len & same
    }
}

/// `true` when every nibble is a decimal digit, except trailing `F` filler nibbles.
pub(crate) fn is_pin_bcd(bcd: &[u8]) -> bool {
    let mut filler = false;
    for nib in bcd.iter().flat_map(|b| [b >> 4, b & 0x0F]) {
        match nib {
            0..=9 if !filler => {}
            0x0F => filler = true,
            _ => return false,
        }
    }
    // At least four digits (PBOC PIN: 4 to 12 digits).
    bcd.iter()
        .flat_map(|b| [b >> 4, b & 0x0F])
        .filter(|n| *n <= 9)
        .count()
        >= 4
}

/// The balance and counters of one purse (ED or EP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Account {
    /// Balance (negative only for an ED in overdraft).
    pub balance: i32,
    /// Online ATC: loads and unloads.
    pub online_atc: u16,
    /// Offline ATC: purchases (and moves to the tag).
    pub offline_atc: u16,
}

/// A 23-byte transaction log record: `ATC(2) overdraft limit(3) amount(4) type(1) terminal
/// id(6) date(4) time(3)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogRecord {
    /// ATC of the transaction (before increment).
    pub atc: u16,
    /// Overdraft limit at the time (3 bytes on the wire).
    pub overdraft_limit: u32,
    /// Amount.
    pub amount: u32,
    /// Transaction type.
    pub tx_type: u8,
    /// Terminal id.
    pub terminal_id: [u8; 6],
    /// Date `YYYYMMDD`.
    pub date: [u8; 4],
    /// Time `hhmmss`.
    pub time: [u8; 3],
}

impl LogRecord {
    /// The 23 record bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; LOG_RECORD_LEN] {
        let mut out = [0u8; LOG_RECORD_LEN];
        out[..2].copy_from_slice(&self.atc.to_be_bytes());
        out[2..5].copy_from_slice(&self.overdraft_limit.to_be_bytes()[1..]);
        out[5..9].copy_from_slice(&self.amount.to_be_bytes());
        out[9] = self.tx_type;
        out[10..16].copy_from_slice(&self.terminal_id);
        out[16..20].copy_from_slice(&self.date);
        out[20..].copy_from_slice(&self.time);
        out
    }

    /// Parse 23 record bytes (as READ RECORD returns them).
    ///
    /// # Errors
    /// [`Error::BadLength`] when not 23 bytes.
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        let b: &[u8; LOG_RECORD_LEN] = b.try_into().map_err(|_| Error::BadLength {
            expected: LOG_RECORD_LEN,
            actual: b.len(),
        })?;
        let mut r = Reader::new(b);
        let atc = r.u16()?;
        let od: [u8; 3] = r.array()?;
        Ok(LogRecord {
            atc,
            overdraft_limit: u32::from_be_bytes([0, od[0], od[1], od[2]]),
            amount: r.u32()?,
            tx_type: r.u8()?,
            terminal_id: r.array()?,
            date: r.array()?,
            time: r.array()?,
        })
    }
}

/// What GET TRANSACTION PROVE answers for one completed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProveRecord {
    /// Transaction type.
    pub tx_type: u8,
    /// ATC of the transaction (before increment).
    pub atc: u16,
    /// MAC2 of the transaction (purchase: the card's MAC2; load: the issuer's MAC2).
    pub mac: [u8; 4],
    /// TAC of the transaction.
    pub tac: [u8; 4],
}

/// The value-block tag access data the purse holds as the tag's gatekeeper (DGI `0401`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagAccess {
    /// AN10922 master key from which every tag sector key is derived.
    pub master: Key16,
    /// AN10922 application identifier (3 bytes).
    pub aid: [u8; 3],
    /// AN10922 system identifier.
    pub(crate) system_identifier: [u8; MAX_SYSTEM_IDENTIFIER],
    pub(crate) system_identifier_len: u8,
}

impl TagAccess {
    /// New tag access data.
    ///
    /// # Errors
    /// [`Error::IncorrectData`] for a system identifier longer than 21 bytes.
    pub fn new(master: Key16, aid: [u8; 3], system_identifier: &[u8]) -> Result<Self, Error> {
        let mut si = [0u8; MAX_SYSTEM_IDENTIFIER];
        si.get_mut(..system_identifier.len())
            .ok_or(Error::IncorrectData)?
            .copy_from_slice(system_identifier);
        Ok(TagAccess {
            master,
            aid,
            system_identifier: si,
            system_identifier_len: u8::try_from(system_identifier.len())
                .map_err(|_| Error::IncorrectData)?,
        })
    }

    /// The system identifier.
    #[must_use]
    pub fn system_identifier(&self) -> &[u8] {
        self.system_identifier
            .get(..usize::from(self.system_identifier_len))
            .unwrap_or(&[])
    }
}

/// The purse applet's complete persistent state.
///
/// A command never edits it in place: the applet builds a complete new state and hands it
/// back ([`Outcome::new_state`](super::Outcome)); the host runtime persists it atomically and
/// only then replaces the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurseState {
    pub(crate) aid: [u8; MAX_AID],
    pub(crate) aid_len: u8,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) issuer: Option<IssuerData>,
    pub(crate) max_balance: u32,
    pub(crate) overdraft_limit: u32,
    pub(crate) keys: [Option<CardKey>; MAX_KEYS],
    pub(crate) pin: Option<Pin>,
    pub(crate) ed: Account,
    pub(crate) ep: Account,
    pub(crate) log: [LogRecord; LOG_RECORDS],
    pub(crate) log_count: u8,
    /// Index of the most recent record in `log`.
    pub(crate) log_head: u8,
    pub(crate) proves: [Option<ProveRecord>; PROVE_RECORDS],
    pub(crate) prove_next: u8,
    pub(crate) tag: Option<TagAccess>,
}

impl PurseState {
    /// A freshly installed, unpersonalized purse answering to `aid` (5..=16 bytes).
    ///
    /// # Errors
    /// [`Error::IncorrectData`] for an AID outside 5..=16 bytes.
    pub fn new(aid: &[u8]) -> Result<Self, Error> {
        if !(5..=MAX_AID).contains(&aid.len()) {
            return Err(Error::IncorrectData);
        }
        let mut a = [0u8; MAX_AID];
        a[..aid.len()].copy_from_slice(aid);
        Ok(PurseState {
            aid: a,
            aid_len: u8::try_from(aid.len()).map_err(|_| Error::IncorrectData)?,
            lifecycle: Lifecycle::Personalizing,
            issuer: None,
            max_balance: 0,
            overdraft_limit: 0,
            keys: Default::default(),
            pin: None,
            ed: Account::default(),
            ep: Account::default(),
            log: [LogRecord::default(); LOG_RECORDS],
            log_count: 0,
            log_head: 0,
            proves: [None; PROVE_RECORDS],
            prove_next: 0,
            tag: None,
        })
    }

    /// The applet's AID.
    #[must_use]
    pub fn aid(&self) -> &[u8] {
        self.aid.get(..usize::from(self.aid_len)).unwrap_or(&[])
    }

    /// Lifecycle state.
    #[must_use]
    pub const fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// Issuer data, once personalized.
    #[must_use]
    pub const fn issuer(&self) -> Option<&IssuerData> {
        self.issuer.as_ref()
    }

    /// The account of one purse.
    #[must_use]
    pub const fn account(&self, kind: PurseKind) -> &Account {
        match kind {
            PurseKind::Ed => &self.ed,
            PurseKind::Ep => &self.ep,
        }
    }

    pub(crate) fn account_mut(&mut self, kind: PurseKind) -> &mut Account {
        match kind {
            PurseKind::Ed => &mut self.ed,
            PurseKind::Ep => &mut self.ep,
        }
    }

    /// Maximum balance of each purse.
    #[must_use]
    pub const fn max_balance(&self) -> u32 {
        self.max_balance
    }

    /// Overdraft limit (ED only; the EP has none).
    #[must_use]
    pub const fn overdraft_limit(&self, kind: PurseKind) -> u32 {
        match kind {
            PurseKind::Ed => self.overdraft_limit,
            PurseKind::Ep => 0,
        }
    }

    /// PIN tries left (`None` before personalization).
    #[must_use]
    pub fn pin_tries_left(&self) -> Option<u8> {
        self.pin.as_ref().map(|p| p.tries_left)
    }

    /// Log records, most recent first.
    pub fn log(&self) -> impl Iterator<Item = &LogRecord> + '_ {
        let head = usize::from(self.log_head);
        (0..usize::from(self.log_count)).filter_map(move |i| {
            self.log
                .get((head + LOG_RECORDS - (i % LOG_RECORDS)) % LOG_RECORDS)
        })
    }

    /// The stored proof of a completed transaction.
    #[must_use]
    pub fn prove(&self, tx_type: u8, atc: u16) -> Option<&ProveRecord> {
        self.proves
            .iter()
            .flatten()
            .find(|p| p.tx_type == tx_type && p.atc == atc)
    }

    /// The key of `function` with `index`.
    #[must_use]
    pub fn key(&self, function: u8, index: u8) -> Option<&CardKey> {
        self.keys
            .iter()
            .flatten()
            .find(|k| k.function == function && k.index == index)
    }

    /// The first key personalized for `function` (used for the TAC key and issuer MACs).
    #[must_use]
    pub fn first_key(&self, function: u8) -> Option<&CardKey> {
        self.keys.iter().flatten().find(|k| k.function == function)
    }

    /// Tag access data (DGI `0401`).
    #[must_use]
    pub const fn tag_access(&self) -> Option<&TagAccess> {
        self.tag.as_ref()
    }

    pub(crate) fn push_log(&mut self, record: LogRecord) {
        let next = if self.log_count == 0 {
            0
        } else {
            (usize::from(self.log_head) + 1) % LOG_RECORDS
        };
        if let Some(slot) = self.log.get_mut(next) {
            *slot = record;
        }
        self.log_head = u8::try_from(next).unwrap_or(0);
        if usize::from(self.log_count) < LOG_RECORDS {
            self.log_count += 1;
        }
    }

    pub(crate) fn push_prove(&mut self, record: ProveRecord) {
        let at = usize::from(self.prove_next) % PROVE_RECORDS;
        if let Some(slot) = self.proves.get_mut(at) {
            *slot = Some(record);
        }
        self.prove_next = u8::try_from((at + 1) % PROVE_RECORDS).unwrap_or(0);
    }

    pub(crate) fn set_key(&mut self, key: CardKey) -> Result<(), Error> {
        if let Some(slot) = self
            .keys
            .iter_mut()
            .find(|k| matches!(k, Some(k) if k.function == key.function && k.index == key.index))
        {
            *slot = Some(key);
            return Ok(());
        }
        match self.keys.iter_mut().find(|k| k.is_none()) {
            Some(slot) => {
                *slot = Some(key);
                Ok(())
            }
            None => Err(Error::NotEnoughMemory),
        }
    }

    /// The stable byte encoding: `"EPS1" || body || CRC-32`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = encoding::begin(MAGIC, 1024);
        w.push(self.aid_len);
        w.extend_from_slice(&self.aid);
        w.push(self.lifecycle.to_byte());
        match &self.issuer {
            None => w.push(0),
            Some(i) => {
                w.push(1);
                w.extend_from_slice(&i.asn);
                w.extend_from_slice(&i.issuer_id);
                w.push(i.app_type);
                w.push(i.app_version);
                w.extend_from_slice(&i.start_date);
                w.extend_from_slice(&i.end_date);
            }
        }
        w.extend_from_slice(&self.max_balance.to_be_bytes());
        w.extend_from_slice(&self.overdraft_limit.to_be_bytes());
        for k in &self.keys {
            match k {
                None => w.push(0),
                Some(k) => {
                    w.push(1);
                    w.extend_from_slice(&[k.function, k.index, k.version, k.algorithm]);
                    w.extend_from_slice(k.key.expose());
                }
            }
        }
        match &self.pin {
            None => w.push(0),
            Some(p) => {
                w.push(1);
                w.push(p.len);
                w.extend_from_slice(&p.digits);
                w.push(p.tries_left);
                w.push(p.try_limit);
            }
        }
        for a in [&self.ed, &self.ep] {
            w.extend_from_slice(&a.balance.to_be_bytes());
            w.extend_from_slice(&a.online_atc.to_be_bytes());
            w.extend_from_slice(&a.offline_atc.to_be_bytes());
        }
        w.push(self.log_count);
        w.push(self.log_head);
        for r in &self.log {
            w.extend_from_slice(&r.to_bytes());
        }
        w.push(self.prove_next);
        for p in &self.proves {
            match p {
                None => w.push(0),
                Some(p) => {
                    w.push(1);
                    w.push(p.tx_type);
                    w.extend_from_slice(&p.atc.to_be_bytes());
                    w.extend_from_slice(&p.mac);
                    w.extend_from_slice(&p.tac);
                }
            }
        }
        match &self.tag {
            None => w.push(0),
            Some(t) => {
                w.push(1);
                w.extend_from_slice(t.master.expose());
                w.extend_from_slice(&t.aid);
                w.push(t.system_identifier_len);
                w.extend_from_slice(&t.system_identifier);
            }
        }
        encoding::seal(w)
    }

    /// Decode [`to_bytes`](Self::to_bytes) output, checking magic, version, CRC and every
    /// field's range.
    ///
    /// # Errors
    /// [`Error::StateEncoding`] naming what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = encoding::open(bytes, MAGIC)?;
        let aid_len = r.u8()?;
        let aid: [u8; MAX_AID] = r.array()?;
        if !(5..=MAX_AID).contains(&usize::from(aid_len)) {
            return Err(Error::StateEncoding("AID length"));
        }
        let lifecycle = Lifecycle::from_byte(r.u8()?)?;
        let issuer = if r.flag()? {
            Some(IssuerData {
                asn: r.array()?,
                issuer_id: r.array()?,
                app_type: r.u8()?,
                app_version: r.u8()?,
                start_date: r.array()?,
                end_date: r.array()?,
            })
        } else {
            None
        };
        let max_balance = r.u32()?;
        let overdraft_limit = r.u32()?;
        if max_balance > i32::MAX as u32 || overdraft_limit > 0x00FF_FFFF {
            return Err(Error::StateEncoding("limits"));
        }
        let mut keys: [Option<CardKey>; MAX_KEYS] = Default::default();
        for slot in &mut keys {
            if r.flag()? {
                let [function, index, version, algorithm]: [u8; 4] = r.array()?;
                *slot = Some(CardKey {
                    function,
                    index,
                    version,
                    algorithm,
                    key: Key16::new(r.array()?),
                });
            }
        }
        let pin = if r.flag()? {
            let len = r.u8()?;
            let digits: [u8; 6] = r.array()?;
            let tries_left = r.u8()?;
            let try_limit = r.u8()?;
            if !(2..=6).contains(&len) || tries_left > try_limit || try_limit == 0 {
                return Err(Error::StateEncoding("PIN"));
            }
            Some(Pin {
                digits,
                len,
                tries_left,
                try_limit,
            })
        } else {
            None
        };
        let mut accounts = [Account::default(); 2];
        for a in &mut accounts {
            a.balance = i32::from_be_bytes(r.array()?);
            a.online_atc = r.u16()?;
            a.offline_atc = r.u16()?;
        }
        let [ed, ep] = accounts;
        let overdraft = i64::from(overdraft_limit);
        let max = i64::from(max_balance);
        if i64::from(ed.balance) < -overdraft
            || ep.balance < 0
            || i64::from(ed.balance) > max
            || i64::from(ep.balance) > max
        {
            return Err(Error::StateEncoding("balance"));
        }
        let log_count = r.u8()?;
        let log_head = r.u8()?;
        if usize::from(log_count) > LOG_RECORDS || usize::from(log_head) >= LOG_RECORDS {
            return Err(Error::StateEncoding("log"));
        }
        let mut log = [LogRecord::default(); LOG_RECORDS];
        for rec in &mut log {
            let b: [u8; LOG_RECORD_LEN] = r.array()?;
            *rec = LogRecord::parse(&b)?;
        }
        let prove_next = r.u8()?;
        if usize::from(prove_next) >= PROVE_RECORDS {
            return Err(Error::StateEncoding("prove index"));
        }
        let mut proves = [None; PROVE_RECORDS];
        for p in &mut proves {
            if r.flag()? {
                *p = Some(ProveRecord {
                    tx_type: r.u8()?,
                    atc: r.u16()?,
                    mac: r.array()?,
                    tac: r.array()?,
                });
            }
        }
        let tag = if r.flag()? {
            let master = Key16::new(r.array()?);
            let aid: [u8; 3] = r.array()?;
            let len = r.u8()?;
            let si: [u8; MAX_SYSTEM_IDENTIFIER] = r.array()?;
            if usize::from(len) > MAX_SYSTEM_IDENTIFIER {
                return Err(Error::StateEncoding("system identifier"));
            }
            Some(TagAccess {
                master,
                aid,
                system_identifier: si,
                system_identifier_len: len,
            })
        } else {
            None
        };
        r.finish()?;
        Ok(PurseState {
            aid,
            aid_len,
            lifecycle,
            issuer,
            max_balance,
            overdraft_limit,
            keys,
            pin,
            ed,
            ep,
            log,
            log_count,
            log_head,
            proves,
            prove_next,
            tag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_bcd() {
        assert!(is_pin_bcd(&[0x12, 0x34]));
        assert!(is_pin_bcd(&[0x12, 0x34, 0x5F]));
        assert!(!is_pin_bcd(&[0x12, 0x3F, 0x45]));
        assert!(!is_pin_bcd(&[0x12, 0xA4]));
        assert!(!is_pin_bcd(&[0x12, 0xFF]));
    }
}
