//! PBOC 2.0-style electronic purse (EP) and electronic deposit (ED): constants, key
//! diversification, session keys, the MAC1 / MAC2 / TAC formulas and the command and response
//! layouts. Shared by the card (this crate's applet), the issuer's load authority and a POS
//! SAM. Formulas as reconstructed in the project's PROTOCOLS.md ("PBOC 2.0-style e-purse").

use alloc::vec::Vec;

use apdu_codec::{Command, ResponseView, StatusWord};

use crate::Error;
use crate::crypto::{DesKey, Key16, Padding, TdesKey, cbc_mac_des};

/// CLA of the purse commands (PBOC: proprietary class `80`).
pub const CLA_PROPRIETARY: u8 = 0x80;
/// CLA of the MAC-protected issuer commands (PBOC: `84`, secure messaging indicated).
pub const CLA_SECURE: u8 = 0x84;

/// INS `50`: INITIALIZE FOR LOAD / PURCHASE / UNLOAD (P1 selects which).
pub const INS_INITIALIZE: u8 = 0x50;
/// INS `52`: CREDIT FOR LOAD.
pub const INS_CREDIT_FOR_LOAD: u8 = 0x52;
/// INS `54`: DEBIT FOR PURCHASE (P1 01) / DEBIT FOR UNLOAD (P1 03).
pub const INS_DEBIT: u8 = 0x54;
/// INS `5A`: GET TRANSACTION PROVE.
pub const INS_GET_TRANSACTION_PROVE: u8 = 0x5A;
/// INS `5C`: GET BALANCE.
pub const INS_GET_BALANCE: u8 = 0x5C;
/// INS `5E`: RELOAD PIN (P1 00) / CHANGE PIN (P1 01).
pub const INS_PIN_CHANGE_RELOAD: u8 = 0x5E;
/// INS `1E`: APPLICATION BLOCK (P2 00 temporary, 01 permanent).
pub const INS_APPLICATION_BLOCK: u8 = 0x1E;
/// INS `18`: APPLICATION UNBLOCK.
pub const INS_APPLICATION_UNBLOCK: u8 = 0x18;
/// INS `24`: PIN UNBLOCK.
pub const INS_PIN_UNBLOCK: u8 = 0x24;

/// P1 of INITIALIZE FOR LOAD.
pub const P1_LOAD: u8 = 0x00;
/// P1 of INITIALIZE FOR PURCHASE and DEBIT FOR PURCHASE.
pub const P1_PURCHASE: u8 = 0x01;
/// P1 of INITIALIZE FOR UNLOAD.
pub const P1_INIT_UNLOAD: u8 = 0x05;
/// P1 of DEBIT FOR UNLOAD.
pub const P1_DEBIT_UNLOAD: u8 = 0x03;

/// Algorithm identifier returned by INITIALIZE: `00` = DES / 3DES (PBOC).
pub const ALGORITHM_DES: u8 = 0x00;

/// Which of the two stored-value functions a command addresses (its P2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurseKind {
    /// Electronic deposit (ED, P2 `01`): PIN-protected, may have an overdraft limit.
    Ed,
    /// Electronic purse (EP, P2 `02`): anonymous purchases.
    Ep,
}

impl PurseKind {
    /// From P2 (`01` ED, `02` EP).
    #[must_use]
    pub const fn from_p2(p2: u8) -> Option<Self> {
        match p2 {
            0x01 => Some(PurseKind::Ed),
            0x02 => Some(PurseKind::Ep),
            _ => None,
        }
    }

    /// P2 value.
    #[must_use]
    pub const fn p2(self) -> u8 {
        match self {
            PurseKind::Ed => 0x01,
            PurseKind::Ep => 0x02,
        }
    }

    /// Transaction type of a load into this purse (`01` ED, `02` EP).
    #[must_use]
    pub const fn load_type(self) -> u8 {
        match self {
            PurseKind::Ed => TYPE_ED_LOAD,
            PurseKind::Ep => TYPE_EP_LOAD,
        }
    }

    /// Transaction type of a purchase from this purse (`05` ED, `06` EP).
    #[must_use]
    pub const fn purchase_type(self) -> u8 {
        match self {
            PurseKind::Ed => TYPE_ED_PURCHASE,
            PurseKind::Ep => TYPE_EP_PURCHASE,
        }
    }
}

/// Transaction type: ED load.
pub const TYPE_ED_LOAD: u8 = 0x01;
/// Transaction type: EP load.
pub const TYPE_EP_LOAD: u8 = 0x02;
/// Transaction type: ED unload.
pub const TYPE_ED_UNLOAD: u8 = 0x03;
/// Transaction type: ED purchase.
pub const TYPE_ED_PURCHASE: u8 = 0x05;
/// Transaction type: EP purchase.
pub const TYPE_EP_PURCHASE: u8 = 0x06;
/// Transaction type (ours): EP value moved to the value-block tag (`docs/value-tag.md`).
pub const TYPE_EP_TO_TAG: u8 = 0x09;

/// A transaction's date `YYYYMMDD` and time `hhmmss`, packed BCD as in the commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DateTime {
    /// `YYYYMMDD`, BCD.
    pub date: [u8; 4],
    /// `hhmmss`, BCD.
    pub time: [u8; 3],
}

impl DateTime {
    /// From the seven bytes `date(4) time(3)`.
    #[must_use]
    pub fn from_bytes(bytes: &[u8; 7]) -> Self {
        let mut date = [0u8; 4];
        let mut time = [0u8; 3];
        date.copy_from_slice(&bytes[..4]);
        time.copy_from_slice(&bytes[4..]);
        DateTime { date, time }
    }

    /// `true` when the date is a plausible BCD calendar date and the time a BCD time of day.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        let bcd = |b: u8| (b >> 4) <= 9 && (b & 0x0F) <= 9;
        let val = |b: u8| (b >> 4) * 10 + (b & 0x0F);
        if !self.date.iter().chain(self.time.iter()).all(|b| bcd(*b)) {
            return false;
        }
        let (month, day) = (val(self.date[2]), val(self.date[3]));
        let (h, m, s) = (val(self.time[0]), val(self.time[1]), val(self.time[2]));
        (1..=12).contains(&month) && (1..=31).contains(&day) && h < 24 && m < 60 && s < 60
    }
}

/// Card key diversification: `DK = 3DES_MK(ASN) || 3DES_MK(ASN xor FF..FF)` (PROTOCOLS.md
/// "PBOC 2.0-style e-purse", keys).
#[must_use]
pub fn diversify(master: &TdesKey, asn: &[u8; 8]) -> Key16 {
    let mut left = *asn;
    let mut right = asn.map(|b| !b);
    master.encrypt(&mut left);
    master.encrypt(&mut right);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&left);
    out[8..].copy_from_slice(&right);
    let key = Key16::new(out);
    zeroize::Zeroize::zeroize(&mut out);
    key
}

/// Load (and unload) session key `SESLK = 3DES(DLK, random || online ATC || 8000)`.
#[must_use]
pub fn load_session_key(dlk: &TdesKey, random: &[u8; 4], online_atc: u16) -> DesKey {
    let mut block = [0u8; 8];
    block[..4].copy_from_slice(random);
    block[4..6].copy_from_slice(&online_atc.to_be_bytes());
    block[6..].copy_from_slice(&[0x80, 0x00]);
    dlk.encrypt(&mut block);
    let key = DesKey::new(&block);
    zeroize::Zeroize::zeroize(&mut block);
    key
}

/// Purchase session key `SESPK = 3DES(DPK, random || offline ATC || last 2 bytes of the
/// terminal transaction serial)`.
#[must_use]
pub fn purchase_session_key(
    dpk: &TdesKey,
    random: &[u8; 4],
    offline_atc: u16,
    terminal_serial: &[u8; 4],
) -> DesKey {
    let mut block = [0u8; 8];
    block[..4].copy_from_slice(random);
    block[4..6].copy_from_slice(&offline_atc.to_be_bytes());
    block[6..].copy_from_slice(&terminal_serial[2..]);
    dpk.encrypt(&mut block);
    let key = DesKey::new(&block);
    zeroize::Zeroize::zeroize(&mut block);
    key
}

/// The TAC key: `DTK left half xor right half`, single DES.
#[must_use]
pub fn tac_key(dtk: &Key16) -> DesKey {
    let mut k = dtk.left();
    for (a, b) in k.iter_mut().zip(dtk.right()) {
        *a ^= b;
    }
    let key = DesKey::new(&k);
    zeroize::Zeroize::zeroize(&mut k);
    key
}

/// The purse MAC: single-DES CBC-MAC, zero IV, padding `80 00..` always appended, left 4
/// bytes.
#[must_use]
pub fn mac4(key: &DesKey, parts: &[&[u8]]) -> [u8; 4] {
    // Padding method 2 accepts every length, so the chaining cannot fail.
    let full = cbc_mac_des(key, parts, Padding::Method2).unwrap_or([0; 8]);
    [full[0], full[1], full[2], full[3]]
}

/// Load (or unload) MAC1 over `old balance || amount || type || terminal id`.
#[must_use]
pub fn load_mac1(
    session: &DesKey,
    balance: i32,
    amount: u32,
    tx_type: u8,
    terminal_id: &[u8; 6],
) -> [u8; 4] {
    mac4(
        session,
        &[
            &balance.to_be_bytes(),
            &amount.to_be_bytes(),
            &[tx_type],
            terminal_id,
        ],
    )
}

/// Load (or unload) MAC2 over `amount || type || terminal id || date || time`.
#[must_use]
pub fn load_mac2(
    session: &DesKey,
    amount: u32,
    tx_type: u8,
    terminal_id: &[u8; 6],
    when: &DateTime,
) -> [u8; 4] {
    mac4(
        session,
        &[
            &amount.to_be_bytes(),
            &[tx_type],
            terminal_id,
            &when.date,
            &when.time,
        ],
    )
}

/// Load (or unload) TAC over `new balance || online ATC (before increment) || amount || type
/// || terminal id || date || time`, under the TAC key.
#[must_use]
pub fn load_tac(
    tac_key: &DesKey,
    new_balance: i32,
    online_atc: u16,
    amount: u32,
    tx_type: u8,
    terminal_id: &[u8; 6],
    when: &DateTime,
) -> [u8; 4] {
    mac4(
        tac_key,
        &[
            &new_balance.to_be_bytes(),
            &online_atc.to_be_bytes(),
            &amount.to_be_bytes(),
            &[tx_type],
            terminal_id,
            &when.date,
            &when.time,
        ],
    )
}

/// Purchase MAC1 (computed by the SAM) over `amount || type || terminal id || date || time`.
#[must_use]
pub fn purchase_mac1(
    session: &DesKey,
    amount: u32,
    tx_type: u8,
    terminal_id: &[u8; 6],
    when: &DateTime,
) -> [u8; 4] {
    load_mac2(session, amount, tx_type, terminal_id, when)
}

/// Purchase MAC2 (computed by the card) over `amount`.
#[must_use]
pub fn purchase_mac2(session: &DesKey, amount: u32) -> [u8; 4] {
    mac4(session, &[&amount.to_be_bytes()])
}

/// Purchase TAC over `amount || type || terminal id || terminal serial || date || time`.
#[must_use]
pub fn purchase_tac(
    tac_key: &DesKey,
    amount: u32,
    tx_type: u8,
    terminal_id: &[u8; 6],
    terminal_serial: &[u8; 4],
    when: &DateTime,
) -> [u8; 4] {
    mac4(
        tac_key,
        &[
            &amount.to_be_bytes(),
            &[tx_type],
            terminal_id,
            terminal_serial,
            &when.date,
            &when.time,
        ],
    )
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], Error> {
    bytes
        .get(at..at + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(Error::BadLength {
            expected: at + N,
            actual: bytes.len(),
        })
}

fn exact(bytes: &[u8], len: usize) -> Result<(), Error> {
    if bytes.len() == len {
        Ok(())
    } else {
        Err(Error::BadLength {
            expected: len,
            actual: bytes.len(),
        })
    }
}

fn check_status(rsp: &ResponseView<'_>) -> Result<(), Error> {
    if rsp.status() == StatusWord::SUCCESS {
        Ok(())
    } else {
        Err(Error::Card(rsp.status()))
    }
}

/// Data of INITIALIZE FOR LOAD / PURCHASE / UNLOAD: `key index(1) amount(4) terminal id(6)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitializeData {
    /// Index of the card key to use (selects DLK, DPK or DULK and its version).
    pub key_index: u8,
    /// Amount in the smallest currency unit.
    pub amount: u32,
    /// Terminal (or load device) identifier.
    pub terminal_id: [u8; 6],
}

impl InitializeData {
    /// Encoded length.
    pub const LEN: usize = 11;

    /// Parse the 11-byte data field.
    ///
    /// # Errors
    /// [`Error::BadLength`] when the field is not 11 bytes.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        exact(data, Self::LEN)?;
        Ok(InitializeData {
            key_index: data[0],
            amount: u32::from_be_bytes(array(data, 1)?),
            terminal_id: array(data, 5)?,
        })
    }

    /// The 11 data bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 11] {
        let mut out = [0u8; 11];
        out[0] = self.key_index;
        out[1..5].copy_from_slice(&self.amount.to_be_bytes());
        out[5..].copy_from_slice(&self.terminal_id);
        out
    }

    /// INITIALIZE FOR LOAD `80 50 00 P2 0B data 10`.
    #[must_use]
    pub fn initialize_for_load(&self, kind: PurseKind) -> Command {
        Command::new(CLA_PROPRIETARY, INS_INITIALIZE, P1_LOAD, kind.p2())
            .with_data(self.to_bytes().to_vec())
            .with_le(0x10)
    }

    /// INITIALIZE FOR PURCHASE `80 50 01 P2 0B data 0F`.
    #[must_use]
    pub fn initialize_for_purchase(&self, kind: PurseKind) -> Command {
        Command::new(CLA_PROPRIETARY, INS_INITIALIZE, P1_PURCHASE, kind.p2())
            .with_data(self.to_bytes().to_vec())
            .with_le(0x0F)
    }

    /// INITIALIZE FOR UNLOAD `80 50 05 01 0B data 10` (ED only).
    #[must_use]
    pub fn initialize_for_unload(&self) -> Command {
        Command::new(
            CLA_PROPRIETARY,
            INS_INITIALIZE,
            P1_INIT_UNLOAD,
            PurseKind::Ed.p2(),
        )
        .with_data(self.to_bytes().to_vec())
        .with_le(0x10)
    }
}

/// Response of INITIALIZE FOR LOAD and INITIALIZE FOR UNLOAD: `balance(4) online ATC(2) key
/// version(1) algorithm(1) random(4) MAC1(4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitLoadResponse {
    /// Balance before the transaction (two's complement; negative only for an ED in overdraft).
    pub balance: i32,
    /// Online ATC before the transaction.
    pub online_atc: u16,
    /// Version of the key that was selected by the key index.
    pub key_version: u8,
    /// Algorithm identifier.
    pub algorithm: u8,
    /// Card random (pseudo-random number).
    pub random: [u8; 4],
    /// MAC1.
    pub mac1: [u8; 4],
}

impl InitLoadResponse {
    /// Encoded length.
    pub const LEN: usize = 16;

    /// Parse a card response (status must be 9000).
    ///
    /// # Errors
    /// [`Error::Card`] for a non-9000 status, [`Error::BadLength`] for a wrong length.
    pub fn parse(rsp: &ResponseView<'_>) -> Result<Self, Error> {
        check_status(rsp)?;
        let d = rsp.data();
        exact(d, Self::LEN)?;
        Ok(InitLoadResponse {
            balance: i32::from_be_bytes(array(d, 0)?),
            online_atc: u16::from_be_bytes(array(d, 4)?),
            key_version: d[6],
            algorithm: d[7],
            random: array(d, 8)?,
            mac1: array(d, 12)?,
        })
    }

    /// The 16 data bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&self.balance.to_be_bytes());
        out[4..6].copy_from_slice(&self.online_atc.to_be_bytes());
        out[6] = self.key_version;
        out[7] = self.algorithm;
        out[8..12].copy_from_slice(&self.random);
        out[12..].copy_from_slice(&self.mac1);
        out
    }
}

/// Response of INITIALIZE FOR PURCHASE: `balance(4) offline ATC(2) overdraft limit(3) key
/// version(1) algorithm(1) random(4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitPurchaseResponse {
    /// Balance before the transaction.
    pub balance: i32,
    /// Offline ATC before the transaction.
    pub offline_atc: u16,
    /// Overdraft limit (3 bytes on the wire).
    pub overdraft_limit: u32,
    /// Version of the purchase key.
    pub key_version: u8,
    /// Algorithm identifier.
    pub algorithm: u8,
    /// Card random.
    pub random: [u8; 4],
}

impl InitPurchaseResponse {
    /// Encoded length.
    pub const LEN: usize = 15;

    /// Parse a card response (status must be 9000).
    ///
    /// # Errors
    /// [`Error::Card`] for a non-9000 status, [`Error::BadLength`] for a wrong length.
    pub fn parse(rsp: &ResponseView<'_>) -> Result<Self, Error> {
        check_status(rsp)?;
        let d = rsp.data();
        exact(d, Self::LEN)?;
        let od: [u8; 3] = array(d, 6)?;
        Ok(InitPurchaseResponse {
            balance: i32::from_be_bytes(array(d, 0)?),
            offline_atc: u16::from_be_bytes(array(d, 4)?),
            overdraft_limit: u32::from_be_bytes([0, od[0], od[1], od[2]]),
            key_version: d[9],
            algorithm: d[10],
            random: array(d, 11)?,
        })
    }

    /// The 15 data bytes (the overdraft limit is truncated to its low 3 bytes).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 15] {
        let mut out = [0u8; 15];
        out[..4].copy_from_slice(&self.balance.to_be_bytes());
        out[4..6].copy_from_slice(&self.offline_atc.to_be_bytes());
        out[6..9].copy_from_slice(&self.overdraft_limit.to_be_bytes()[1..]);
        out[9] = self.key_version;
        out[10] = self.algorithm;
        out[11..].copy_from_slice(&self.random);
        out
    }
}

/// CREDIT FOR LOAD `80 52 00 00 0B date(4) time(3) MAC2(4) 04`.
#[must_use]
pub fn credit_for_load(when: &DateTime, mac2: &[u8; 4]) -> Command {
    Command::new(CLA_PROPRIETARY, INS_CREDIT_FOR_LOAD, 0x00, 0x00)
        .with_data(concat(&[&when.date, &when.time, mac2]))
        .with_le(4)
}

/// DEBIT FOR UNLOAD `80 54 03 00 0B date(4) time(3) MAC2(4) 04` (ours: same body as CREDIT
/// FOR LOAD).
#[must_use]
pub fn debit_for_unload(when: &DateTime, mac2: &[u8; 4]) -> Command {
    Command::new(CLA_PROPRIETARY, INS_DEBIT, P1_DEBIT_UNLOAD, 0x00)
        .with_data(concat(&[&when.date, &when.time, mac2]))
        .with_le(4)
}

/// DEBIT FOR PURCHASE `80 54 01 00 0F serial(4) date(4) time(3) MAC1(4) 08`.
#[must_use]
pub fn debit_for_purchase(terminal_serial: &[u8; 4], when: &DateTime, mac1: &[u8; 4]) -> Command {
    Command::new(CLA_PROPRIETARY, INS_DEBIT, P1_PURCHASE, 0x00)
        .with_data(concat(&[terminal_serial, &when.date, &when.time, mac1]))
        .with_le(8)
}

/// GET BALANCE `80 5C 00 P2 04`.
#[must_use]
pub fn get_balance(kind: PurseKind) -> Command {
    Command::new(CLA_PROPRIETARY, INS_GET_BALANCE, 0x00, kind.p2()).with_le(4)
}

/// GET TRANSACTION PROVE `80 5A 00 type 02 ATC(2) 08`.
#[must_use]
pub fn get_transaction_prove(tx_type: u8, atc: u16) -> Command {
    Command::new(CLA_PROPRIETARY, INS_GET_TRANSACTION_PROVE, 0x00, tx_type)
        .with_data(atc.to_be_bytes().to_vec())
        .with_le(8)
}

/// Parse a 4-byte TAC answer (CREDIT FOR LOAD, DEBIT FOR UNLOAD).
///
/// # Errors
/// [`Error::Card`] for a non-9000 status, [`Error::BadLength`] for a wrong length.
pub fn parse_tac(rsp: &ResponseView<'_>) -> Result<[u8; 4], Error> {
    check_status(rsp)?;
    exact(rsp.data(), 4)?;
    array(rsp.data(), 0)
}

/// Parse an 8-byte `first(4) second(4)` answer: DEBIT FOR PURCHASE gives `TAC || MAC2`, GET
/// TRANSACTION PROVE gives `MAC || TAC` (see `docs/epurse.md`).
///
/// # Errors
/// [`Error::Card`] for a non-9000 status, [`Error::BadLength`] for a wrong length.
pub fn parse_pair(rsp: &ResponseView<'_>) -> Result<([u8; 4], [u8; 4]), Error> {
    check_status(rsp)?;
    exact(rsp.data(), 8)?;
    Ok((array(rsp.data(), 0)?, array(rsp.data(), 4)?))
}

/// Parse a GET BALANCE answer.
///
/// # Errors
/// [`Error::Card`] for a non-9000 status, [`Error::BadLength`] for a wrong length.
pub fn parse_balance(rsp: &ResponseView<'_>) -> Result<i32, Error> {
    check_status(rsp)?;
    exact(rsp.data(), 4)?;
    Ok(i32::from_be_bytes(array(rsp.data(), 0)?))
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// INS of INIT SAM FOR PURCHASE (PSAM `80 70 00 00 1C`).
pub const INS_INIT_SAM_FOR_PURCHASE: u8 = 0x70;
/// INS of CREDIT SAM FOR PURCHASE (PSAM `80 72 00 00 04`).
pub const INS_CREDIT_SAM_FOR_PURCHASE: u8 = 0x72;

/// Data of the PSAM's INIT SAM FOR PURCHASE: `card random(4) offline ATC(2) amount(4) type(1)
/// date-time(7) key version(1) algorithm(1) ASN(8)` (28 bytes), answered with `terminal
/// serial(4) MAC1(4)` (PROTOCOLS.md, PSAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitSamForPurchase {
    /// The card's random from INITIALIZE FOR PURCHASE.
    pub random: [u8; 4],
    /// The card's offline ATC.
    pub offline_atc: u16,
    /// Amount.
    pub amount: u32,
    /// Transaction type.
    pub tx_type: u8,
    /// Date and time.
    pub when: DateTime,
    /// The card's purchase key version.
    pub key_version: u8,
    /// The card's algorithm identifier.
    pub algorithm: u8,
    /// The card's ASN (the SAM diversifies its master key with it).
    pub asn: [u8; 8],
}

impl InitSamForPurchase {
    /// Encoded length.
    pub const LEN: usize = 28;

    /// The 28 data bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 28] {
        let mut out = [0u8; 28];
        out[..4].copy_from_slice(&self.random);
        out[4..6].copy_from_slice(&self.offline_atc.to_be_bytes());
        out[6..10].copy_from_slice(&self.amount.to_be_bytes());
        out[10] = self.tx_type;
        out[11..15].copy_from_slice(&self.when.date);
        out[15..18].copy_from_slice(&self.when.time);
        out[18] = self.key_version;
        out[19] = self.algorithm;
        out[20..].copy_from_slice(&self.asn);
        out
    }

    /// Parse the 28 data bytes.
    ///
    /// # Errors
    /// [`Error::BadLength`] when the field is not 28 bytes.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        exact(data, Self::LEN)?;
        Ok(InitSamForPurchase {
            random: array(data, 0)?,
            offline_atc: u16::from_be_bytes(array(data, 4)?),
            amount: u32::from_be_bytes(array(data, 6)?),
            tx_type: data[10],
            when: DateTime::from_bytes(&array(data, 11)?),
            key_version: data[18],
            algorithm: data[19],
            asn: array(data, 20)?,
        })
    }

    /// The command `80 70 00 00 1C data 08`.
    #[must_use]
    pub fn command(&self) -> Command {
        Command::new(CLA_PROPRIETARY, INS_INIT_SAM_FOR_PURCHASE, 0x00, 0x00)
            .with_data(self.to_bytes().to_vec())
            .with_le(8)
    }

    /// The request for a card's INITIALIZE FOR PURCHASE answer.
    #[must_use]
    pub fn from_card(
        rsp: &InitPurchaseResponse,
        amount: u32,
        tx_type: u8,
        when: DateTime,
        asn: [u8; 8],
    ) -> Self {
        InitSamForPurchase {
            random: rsp.random,
            offline_atc: rsp.offline_atc,
            amount,
            tx_type,
            when,
            key_version: rsp.key_version,
            algorithm: rsp.algorithm,
            asn,
        }
    }
}

/// CREDIT SAM FOR PURCHASE `80 72 00 00 04 MAC2`.
#[must_use]
pub fn credit_sam_for_purchase(mac2: &[u8; 4]) -> Command {
    Command::new(CLA_PROPRIETARY, INS_CREDIT_SAM_FOR_PURCHASE, 0x00, 0x00).with_data(mac2.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_sam_for_purchase_round_trip() {
        let req = InitSamForPurchase {
            random: [1, 2, 3, 4],
            offline_atc: 0x0102,
            amount: 0x1000,
            tx_type: TYPE_EP_PURCHASE,
            when: DateTime {
                date: [0x20, 0x12, 0x02, 0x29],
                time: [0x13, 0x51, 0x00],
            },
            key_version: 1,
            algorithm: 0,
            asn: [9; 8],
        };
        assert_eq!(InitSamForPurchase::parse(&req.to_bytes()).unwrap(), req);
        let bytes = req.command().to_vec().unwrap();
        assert_eq!(&bytes[..5], &[0x80, 0x70, 0x00, 0x00, 0x1C]);
        assert!(InitSamForPurchase::parse(&bytes[5..]).is_err());
    }

    #[test]
    fn date_time_validation() {
        let ok = DateTime {
            date: [0x20, 0x25, 0x12, 0x31],
            time: [0x23, 0x59, 0x59],
        };
        assert!(ok.is_valid());
        for bad in [
            DateTime {
                date: [0x20, 0x25, 0x13, 0x01],
                ..ok
            },
            DateTime {
                date: [0x20, 0x25, 0x00, 0x01],
                ..ok
            },
            DateTime {
                date: [0x20, 0x25, 0x01, 0x32],
                ..ok
            },
            DateTime {
                date: [0x20, 0x2A, 0x01, 0x01],
                ..ok
            },
            DateTime {
                time: [0x24, 0x00, 0x00],
                ..ok
            },
            DateTime {
                time: [0x23, 0x60, 0x00],
                ..ok
            },
        ] {
            assert!(!bad.is_valid(), "{bad:?}");
        }
    }
}
