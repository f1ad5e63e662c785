//! Single-function value-block tag (a MIFARE-style emulation hosted by the secure element),
//! with per-sector AES-128 keys diversified from the tag UID by NXP AN10922, an AES
//! challenge-response authentication in the style of DESFire EV1, and the voucher by which the
//! purse moves value onto the tag. The command set and formats are ours and are documented in
//! `docs/value-tag.md`.
//!
//! Like the purse, the tag is a state machine over an explicit persistent state
//! ([`TagState`]) and a transient session ([`TagSession`]); [`process`] returns the complete
//! new state when a command changed it.

use alloc::vec::Vec;

use aes::Aes128;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use apdu_codec::{CommandView, StatusWord};
use cmac::{Cmac, Mac};

use crate::Error;
use crate::card::state::TagAccess;
use crate::card::{Entropy, Reply};
use crate::crypto::{Key16, mac_eq};
use crate::encoding;

/// Length of the tag UID (7-byte double-size UID, ISO/IEC 14443-3).
pub const UID_LEN: usize = 7;
/// Sectors on the tag.
pub const SECTORS: usize = 4;
/// Blocks per sector (the last is the sector trailer, not addressable by value commands).
pub const BLOCKS_PER_SECTOR: usize = 4;
/// Blocks on the tag.
pub const BLOCKS: usize = SECTORS * BLOCKS_PER_SECTOR;

/// CLA of the tag commands (ours, like DESFire's wrapped native commands).
pub const CLA_TAG: u8 = 0x80;
/// AUTHENTICATE (first step): `80 AA 00 sector`.
pub const INS_AUTHENTICATE: u8 = 0xAA;
/// AUTHENTICATE (second step): `80 AF 00 00 20 E(RndA || RndB')`.
pub const INS_ADDITIONAL_FRAME: u8 = 0xAF;
/// READ VALUE `80 BD 00 block 08 CMAC`.
pub const INS_READ: u8 = 0xBD;
/// DECREMENT `80 DC 00 block 0C operand(4, LE) CMAC`.
pub const INS_DECREMENT: u8 = 0xDC;
/// INCREMENT `80 C1 00 block 0C operand CMAC`.
pub const INS_INCREMENT: u8 = 0xC1;
/// RESTORE `80 C2 00 block 08 CMAC`.
pub const INS_RESTORE: u8 = 0xC2;
/// TRANSFER `80 B7 00 block 08 CMAC`.
pub const INS_TRANSFER: u8 = 0xB7;
/// READ VOUCHER COUNTER `80 C6 00 block`.
pub const INS_READ_COUNTER: u8 = 0xC6;
/// CREDIT VOUCHER `80 C5 00 block 0C amount(4) voucher(8)`.
pub const INS_CREDIT_VOUCHER: u8 = 0xC5;

/// The sector of a value-capable block (`None` for a sector trailer or out of range).
#[must_use]
pub fn sector_of(block: u8) -> Option<u8> {
    let b = usize::from(block);
    if b >= BLOCKS || b % BLOCKS_PER_SECTOR == BLOCKS_PER_SECTOR - 1 {
        return None;
    }
    u8::try_from(b / BLOCKS_PER_SECTOR).ok()
}

/// NXP AN10922 §2.2 AES-128 key diversification: CMAC under `master` of `01 || m`, padded to
/// 32 bytes (`80 00..` and subkey K2 when padding was added, K1 otherwise). `m` is at most 31
/// bytes (`UID || AID || system identifier` in AN10922's example).
///
/// # Errors
/// [`Error::BadLength`] when `m` is empty or longer than 31 bytes.
pub fn an10922_aes128(master: &Key16, m: &[u8]) -> Result<Key16, Error> {
    if m.is_empty() || m.len() > 31 {
        return Err(Error::BadLength {
            expected: 31,
            actual: m.len(),
        });
    }
    let cipher = Aes128::new(&Array::from(*master.expose()));
    let enc = |b: &mut [u8; 16]| {
        let mut a = Array::from(*b);
        cipher.encrypt_block(&mut a);
        *b = a.into();
    };
    // NIST SP 800-38B §6.1 subkeys.
    let dbl = |b: [u8; 16]| -> [u8; 16] {
        let v = u128::from_be_bytes(b);
        let carry = (v >> 127) as u8;
        let out = (v << 1) ^ (u128::from(carry) * 0x87);
        out.to_be_bytes()
    };
    let mut l = [0u8; 16];
    enc(&mut l);
    let k1 = dbl(l);
    let k2 = dbl(k1);
    let mut d = [0u8; 32];
    d[0] = 0x01;
    d[1..=m.len()].copy_from_slice(m);
    let padded = m.len() + 1 < 32;
    if padded {
        d[m.len() + 1] = 0x80;
    }
    let sub = if padded { k2 } else { k1 };
    let mut state = [0u8; 16];
    for (i, chunk) in d.chunks_exact(16).enumerate() {
        for (j, (s, x)) in state.iter_mut().zip(chunk).enumerate() {
            *s ^= *x ^ if i == 1 { sub[j] } else { 0 };
        }
        enc(&mut state);
    }
    zeroize::Zeroize::zeroize(&mut l);
    zeroize::Zeroize::zeroize(&mut d);
    Ok(Key16::new(state))
}

/// The key of the sector holding `block` (ours): AN10922 with `m = UID || AID || system
/// identifier || sector number`.
///
/// # Errors
/// [`Error::IncorrectData`] for a block that is not value-capable; [`Error::BadLength`] when
/// the diversification input would exceed 31 bytes.
pub fn sector_key(access: &TagAccess, uid: &[u8; UID_LEN], block: u8) -> Result<Key16, Error> {
    let sector = sector_of(block).ok_or(Error::IncorrectData)?;
    let si = access.system_identifier();
    let mut m = [0u8; 32];
    let len = UID_LEN + 3 + si.len() + 1;
    let dst = m.get_mut(..len).ok_or(Error::BadLength {
        expected: 31,
        actual: len,
    })?;
    dst[..UID_LEN].copy_from_slice(uid);
    dst[UID_LEN..UID_LEN + 3].copy_from_slice(&access.aid);
    dst[UID_LEN + 3..len - 1].copy_from_slice(si);
    dst[len - 1] = sector;
    an10922_aes128(&access.master, dst)
}

fn cmac8(key: &Key16, parts: &[&[u8]]) -> [u8; 8] {
    let mut mac = <Cmac<Aes128> as cmac::KeyInit>::new(&Array::from(*key.expose()));
    for p in parts {
        mac.update(p);
    }
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 8];
    out.copy_from_slice(&full[..8]);
    out
}

/// The voucher that credits `amount` to `block` of tag `uid` when the tag's voucher counter is
/// `counter` (ours): first 8 bytes of AES-CMAC under the sector key over
/// `"MOVE" || UID || block || amount(4) || counter(4)`.
#[must_use]
pub fn voucher(
    sector_key: &Key16,
    uid: &[u8; UID_LEN],
    block: u8,
    amount: u32,
    counter: u32,
) -> [u8; 8] {
    cmac8(
        sector_key,
        &[
            b"MOVE",
            uid,
            &[block],
            &amount.to_be_bytes(),
            &counter.to_be_bytes(),
        ],
    )
}

/// A MIFARE Classic value block: `value(4, LE) || ~value || value || addr || ~addr || addr ||
/// ~addr`.
#[must_use]
pub fn value_block(value: i32, addr: u8) -> [u8; 16] {
    let v = value.to_le_bytes();
    let nv = (!value).to_le_bytes();
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&v);
    b[4..8].copy_from_slice(&nv);
    b[8..12].copy_from_slice(&v);
    b[12] = addr;
    b[13] = !addr;
    b[14] = addr;
    b[15] = !addr;
    b
}

/// Check a value block's redundancy and return `(value, addr)`.
///
/// # Errors
/// [`Error::ValueBlockInvalid`] when any copy disagrees.
pub fn parse_value_block(b: &[u8; 16]) -> Result<(i32, u8), Error> {
    let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let nv = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let v2 = i32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    if v != v2 || nv != !v || b[13] != !b[12] || b[14] != b[12] || b[15] != !b[12] {
        return Err(Error::ValueBlockInvalid);
    }
    Ok((v, b[12]))
}

/// The tag's persistent state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagState {
    aid: [u8; 16],
    aid_len: u8,
    uid: [u8; UID_LEN],
    keys: [Key16; SECTORS],
    blocks: [[u8; 16]; BLOCKS],
    counters: [u32; BLOCKS],
}

const TAG_MAGIC: &[u8; 4] = b"VTG1";

impl TagState {
    /// Personalize a tag: its UID, the sector keys derived from the gatekeeper's
    /// [`TagAccess`], and every value-capable block formatted as a value block of 0.
    ///
    /// # Errors
    /// [`Error::IncorrectData`] for an AID outside 5..=16 bytes; key derivation errors.
    pub fn personalize(aid: &[u8], uid: [u8; UID_LEN], access: &TagAccess) -> Result<Self, Error> {
        if !(5..=16).contains(&aid.len()) {
            return Err(Error::IncorrectData);
        }
        let mut a = [0u8; 16];
        a[..aid.len()].copy_from_slice(aid);
        let mut keys: [Key16; SECTORS] = core::array::from_fn(|_| Key16::new([0; 16]));
        for (s, k) in keys.iter_mut().enumerate() {
            let first = u8::try_from(s * BLOCKS_PER_SECTOR).map_err(|_| Error::IncorrectData)?;
            *k = sector_key(access, &uid, first)?;
        }
        let mut blocks = [[0u8; 16]; BLOCKS];
        for (i, b) in blocks.iter_mut().enumerate() {
            let addr = u8::try_from(i).map_err(|_| Error::IncorrectData)?;
            if sector_of(addr).is_some() {
                *b = value_block(0, addr);
            }
        }
        Ok(TagState {
            aid: a,
            aid_len: u8::try_from(aid.len()).map_err(|_| Error::IncorrectData)?,
            uid,
            keys,
            blocks,
            counters: [0; BLOCKS],
        })
    }

    /// The tag's UID.
    #[must_use]
    pub const fn uid(&self) -> &[u8; UID_LEN] {
        &self.uid
    }

    /// The value of a value block (for tests and the host's bookkeeping).
    ///
    /// # Errors
    /// [`Error::IncorrectData`] for a bad block number; [`Error::ValueBlockInvalid`].
    pub fn value(&self, block: u8) -> Result<i32, Error> {
        sector_of(block).ok_or(Error::IncorrectData)?;
        let b = self
            .blocks
            .get(usize::from(block))
            .ok_or(Error::IncorrectData)?;
        parse_value_block(b).map(|(v, _)| v)
    }

    /// Stable encoding: `"VTG1" || fields || CRC-32`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = encoding::begin(TAG_MAGIC, 400);
        w.push(self.aid_len);
        w.extend_from_slice(&self.aid);
        w.extend_from_slice(&self.uid);
        for k in &self.keys {
            w.extend_from_slice(k.expose());
        }
        for b in &self.blocks {
            w.extend_from_slice(b);
        }
        for c in &self.counters {
            w.extend_from_slice(&c.to_be_bytes());
        }
        encoding::seal(w)
    }

    /// Decode [`to_bytes`](Self::to_bytes) output.
    ///
    /// # Errors
    /// [`Error::StateEncoding`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = encoding::open(bytes, TAG_MAGIC)?;
        let (aid_len, aid) = r.aid()?;
        let uid = r.array()?;
        let mut keys: [Key16; SECTORS] = core::array::from_fn(|_| Key16::new([0; 16]));
        for k in &mut keys {
            *k = Key16::new(r.array()?);
        }
        let mut blocks = [[0u8; 16]; BLOCKS];
        for b in &mut blocks {
            *b = r.array()?;
        }
        let mut counters = [0u32; BLOCKS];
        for c in &mut counters {
            *c = r.u32()?;
        }
        r.finish()?;
        Ok(TagState {
            aid,
            aid_len,
            uid,
            keys,
            blocks,
            counters,
        })
    }

    fn aid(&self) -> &[u8] {
        self.aid.get(..usize::from(self.aid_len)).unwrap_or(&[])
    }
}

struct Authenticated {
    sector: u8,
    key: Key16,
    counter: u16,
}

/// The tag's transient state (authentication, transfer buffer).
#[derive(Default)]
pub struct TagSession {
    selected: bool,
    challenge: Option<(u8, [u8; 16])>,
    auth: Option<Authenticated>,
    transfer: Option<(u8, i32)>,
}

impl core::fmt::Debug for TagSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TagSession")
            .field("selected", &self.selected)
            .field(
                "authenticated_sector",
                &self.auth.as_ref().map(|a| a.sector),
            )
            .finish_non_exhaustive()
    }
}

impl TagSession {
    /// A fresh session.
    #[must_use]
    pub fn new() -> Self {
        TagSession::default()
    }

    /// Power cut or field reset.
    pub fn reset(&mut self) {
        *self = TagSession::default();
    }
}

/// What one tag command did (see [`crate::card::Outcome`]).
#[derive(Debug)]
#[must_use]
pub struct TagOutcome {
    /// The response.
    pub reply: Reply,
    /// The new persistent state to commit, if any.
    pub new_state: Option<TagState>,
}

fn aes_enc(key: &Key16, block: &mut [u8; 16]) {
    let c = Aes128::new(&Array::from(*key.expose()));
    let mut a = Array::from(*block);
    c.encrypt_block(&mut a);
    *block = a.into();
}

fn aes_dec(key: &Key16, block: &mut [u8; 16]) {
    let c = Aes128::new(&Array::from(*key.expose()));
    let mut a = Array::from(*block);
    c.decrypt_block(&mut a);
    *block = a.into();
}

fn rotate_left(b: &[u8; 16]) -> [u8; 16] {
    core::array::from_fn(|i| b[(i + 1) % 16])
}

/// DESFire EV1 AES session key: `RndA[0..4] || RndB[0..4] || RndA[12..16] || RndB[12..16]`.
fn session_key(rnd_a: &[u8; 16], rnd_b: &[u8; 16]) -> Key16 {
    let mut k = [0u8; 16];
    k[..4].copy_from_slice(&rnd_a[..4]);
    k[4..8].copy_from_slice(&rnd_b[..4]);
    k[8..12].copy_from_slice(&rnd_a[12..]);
    k[12..].copy_from_slice(&rnd_b[12..]);
    Key16::new(k)
}

/// Command MAC: first 8 bytes of AES-CMAC(session key, counter(2) || INS || block || data).
fn command_mac(key: &Key16, counter: u16, ins: u8, block: u8, data: &[u8]) -> [u8; 8] {
    cmac8(key, &[&counter.to_be_bytes(), &[ins, block], data])
}

/// Response MAC: first 8 bytes of AES-CMAC(session key, counter(2) || 90 00 || data).
fn response_mac(key: &Key16, counter: u16, data: &[u8]) -> [u8; 8] {
    cmac8(key, &[&counter.to_be_bytes(), &[0x90, 0x00], data])
}

/// Process one tag command.
pub fn process(
    state: &TagState,
    session: &mut TagSession,
    cmd: &CommandView<'_>,
    entropy: &Entropy,
) -> TagOutcome {
    let mut reply = Reply::new();
    let mut new_state = None;
    let challenge = session.challenge.take();
    match tag_dispatch(
        state,
        session,
        cmd,
        entropy,
        challenge,
        &mut reply,
        &mut new_state,
    ) {
        Ok(()) => TagOutcome { reply, new_state },
        Err(e) => {
            reply.fail(StatusWord::from(&e));
            TagOutcome {
                reply,
                new_state: None,
            }
        }
    }
}

fn tag_dispatch(
    state: &TagState,
    session: &mut TagSession,
    cmd: &CommandView<'_>,
    entropy: &Entropy,
    challenge: Option<(u8, [u8; 16])>,
    reply: &mut Reply,
    new_state: &mut Option<TagState>,
) -> Result<(), Error> {
    let [cla, ins, p1, p2] = cmd.header();
    if cla == 0x00 && ins == 0xA4 {
        session.reset();
        if p1 != 0x04 || p2 != 0x00 {
            return Err(Error::WrongP1P2);
        }
        if cmd.data() != state.aid() {
            return Err(Error::NotFound);
        }
        session.selected = true;
        return Ok(());
    }
    if !session.selected {
        return Err(Error::ConditionsNotSatisfied);
    }
    if cla != CLA_TAG {
        return Err(Error::ClassNotSupported);
    }
    if p1 != 0x00 {
        return Err(Error::WrongP1P2);
    }
    let data = cmd.data();
    match ins {
        INS_AUTHENTICATE => {
            session.auth = None;
            session.transfer = None;
            let sector = usize::from(p2);
            let key = state.keys.get(sector).ok_or(Error::WrongP1P2)?;
            if !data.is_empty() {
                return Err(Error::WrongLength);
            }
            let rnd_b: [u8; 16] = entropy.take();
            let mut enc = rnd_b;
            aes_enc(key, &mut enc);
            session.challenge = Some((p2, rnd_b));
            reply.push(&enc)
        }
        INS_ADDITIONAL_FRAME => {
            let (sector, rnd_b) = challenge.ok_or(Error::ConditionsNotSatisfied)?;
            if p2 != 0 || data.len() != 32 {
                return Err(Error::WrongLength);
            }
            let key = state
                .keys
                .get(usize::from(sector))
                .ok_or(Error::ConditionsNotSatisfied)?;
            // AES-CBC, IV 0, over RndA || rol(RndB).
            let mut c1: [u8; 16] = data[..16].try_into().map_err(|_| Error::WrongLength)?;
            let mut c2: [u8; 16] = data[16..].try_into().map_err(|_| Error::WrongLength)?;
            let prev = c1;
            aes_dec(key, &mut c1);
            aes_dec(key, &mut c2);
            for (x, p) in c2.iter_mut().zip(prev) {
                *x ^= p;
            }
            let rnd_a = c1;
            if !mac_eq(&c2, &rotate_left(&rnd_b)) {
                return Err(Error::MacInvalid);
            }
            let mut out = rotate_left(&rnd_a);
            aes_enc(key, &mut out);
            session.auth = Some(Authenticated {
                sector,
                key: session_key(&rnd_a, &rnd_b),
                counter: 0,
            });
            reply.push(&out)
        }
        INS_READ_COUNTER => {
            sector_of(p2).ok_or(Error::WrongP1P2)?;
            let c = state
                .counters
                .get(usize::from(p2))
                .ok_or(Error::WrongP1P2)?;
            reply.push(&c.to_be_bytes())
        }
        INS_CREDIT_VOUCHER => {
            let sector = sector_of(p2).ok_or(Error::WrongP1P2)?;
            if data.len() != 12 {
                return Err(Error::WrongLength);
            }
            let amount = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            let idx = usize::from(p2);
            let counter = *state.counters.get(idx).ok_or(Error::WrongP1P2)?;
            let key = state
                .keys
                .get(usize::from(sector))
                .ok_or(Error::WrongP1P2)?;
            let expected = voucher(key, &state.uid, p2, amount, counter);
            if !mac_eq(&expected, &data[4..]) {
                return Err(Error::MacInvalid);
            }
            let block = state.blocks.get(idx).ok_or(Error::WrongP1P2)?;
            let (value, addr) = parse_value_block(block)?;
            let amount = i32::try_from(amount).map_err(|_| Error::MaximumBalanceExceeded)?;
            let value = value
                .checked_add(amount)
                .ok_or(Error::MaximumBalanceExceeded)?;
            let mut next = state.clone();
            if let Some(b) = next.blocks.get_mut(idx) {
                *b = value_block(value, addr);
            }
            if let Some(c) = next.counters.get_mut(idx) {
                *c = counter.checked_add(1).ok_or(Error::CounterLimitReached)?;
            }
            *new_state = Some(next);
            reply.push(&value.to_be_bytes())
        }
        INS_READ | INS_DECREMENT | INS_INCREMENT | INS_RESTORE | INS_TRANSFER => {
            let auth = session
                .auth
                .as_mut()
                .ok_or(Error::SecurityStatusNotSatisfied)?;
            let sector = sector_of(p2).ok_or(Error::WrongP1P2)?;
            if sector != auth.sector {
                return Err(Error::SecurityStatusNotSatisfied);
            }
            let (body, mac) = data.split_last_chunk::<8>().ok_or(Error::WrongLength)?;
            let expected_len = if matches!(ins, INS_DECREMENT | INS_INCREMENT) {
                4
            } else {
                0
            };
            if body.len() != expected_len {
                return Err(Error::WrongLength);
            }
            let expected = command_mac(&auth.key, auth.counter, ins, p2, body);
            if !mac_eq(&expected, mac) {
                session.auth = None;
                session.transfer = None;
                return Err(Error::MacInvalid);
            }
            let counter = auth.counter;
            auth.counter = auth.counter.wrapping_add(1);
            let idx = usize::from(p2);
            let block = state.blocks.get(idx).ok_or(Error::WrongP1P2)?;
            match ins {
                INS_READ => {
                    reply.push(block)?;
                    let m = response_mac(&auth.key, counter, block);
                    reply.push(&m)
                }
                INS_TRANSFER => {
                    let (s, value) = session
                        .transfer
                        .take()
                        .ok_or(Error::ConditionsNotSatisfied)?;
                    if s != sector {
                        return Err(Error::ConditionsNotSatisfied);
                    }
                    let b = value_block(value, p2);
                    let mut next = state.clone();
                    if let Some(slot) = next.blocks.get_mut(idx) {
                        *slot = b;
                    }
                    *new_state = Some(next);
                    let m = response_mac(&auth.key, counter, &b);
                    reply.push(&b)?;
                    reply.push(&m)
                }
                _ => {
                    let (value, _) = parse_value_block(block)?;
                    let operand = i32::from_le_bytes(
                        body.get(..4)
                            .and_then(|b| <[u8; 4]>::try_from(b).ok())
                            .unwrap_or([0; 4]),
                    );
                    if operand < 0 {
                        return Err(Error::IncorrectData);
                    }
                    let result = match ins {
                        INS_DECREMENT => value
                            .checked_sub(operand)
                            .filter(|v| *v >= 0)
                            .ok_or(Error::InsufficientBalance)?,
                        INS_INCREMENT => value
                            .checked_add(operand)
                            .ok_or(Error::MaximumBalanceExceeded)?,
                        _ => value,
                    };
                    session.transfer = Some((sector, result));
                    let m = response_mac(&auth.key, counter, &[]);
                    reply.push(&m)
                }
            }
        }
        _ => Err(Error::InsNotSupported),
    }
}

/// The reader side of the tag protocol (what a POS SAM or the purse's host does): holds one
/// sector key, runs the authentication and builds MACed commands.
pub struct TagReader {
    key: Key16,
    block: u8,
    rnd_a: [u8; 16],
    session: Option<(Key16, u16)>,
    rnd_b: [u8; 16],
}

impl core::fmt::Debug for TagReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TagReader")
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

impl Drop for TagReader {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.rnd_a);
        zeroize::Zeroize::zeroize(&mut self.rnd_b);
    }
}

impl TagReader {
    /// A reader for `block` with the sector key (derive it with [`sector_key`]) and the
    /// reader's random `rnd_a`.
    #[must_use]
    pub fn new(sector_key: Key16, block: u8, rnd_a: [u8; 16]) -> Self {
        TagReader {
            key: sector_key,
            block,
            rnd_a,
            session: None,
            rnd_b: [0; 16],
        }
    }

    /// AUTHENTICATE `80 AA 00 sector 00`.
    ///
    /// # Errors
    /// [`Error::IncorrectData`] for a block that is not value-capable.
    pub fn authenticate(&self) -> Result<apdu_codec::Command, Error> {
        let sector = sector_of(self.block).ok_or(Error::IncorrectData)?;
        Ok(apdu_codec::Command::new(CLA_TAG, INS_AUTHENTICATE, 0, sector).with_le(256))
    }

    /// Second step: from the tag's `E(K, RndB)`, the command `80 AF 00 00 20 E(RndA ||
    /// rol(RndB))`.
    ///
    /// # Errors
    /// [`Error::BadLength`] for an answer that is not 16 bytes.
    pub fn answer(&mut self, enc_rnd_b: &[u8]) -> Result<apdu_codec::Command, Error> {
        let mut rnd_b: [u8; 16] = enc_rnd_b.try_into().map_err(|_| Error::BadLength {
            expected: 16,
            actual: enc_rnd_b.len(),
        })?;
        aes_dec(&self.key, &mut rnd_b);
        self.rnd_b = rnd_b;
        let mut c1 = self.rnd_a;
        aes_enc(&self.key, &mut c1);
        let mut c2 = rotate_left(&rnd_b);
        for (x, p) in c2.iter_mut().zip(c1) {
            *x ^= p;
        }
        aes_enc(&self.key, &mut c2);
        let mut data = Vec::with_capacity(32);
        data.extend_from_slice(&c1);
        data.extend_from_slice(&c2);
        Ok(
            apdu_codec::Command::new(CLA_TAG, INS_ADDITIONAL_FRAME, 0, 0)
                .with_data(data)
                .with_le(256),
        )
    }

    /// Check the tag's `E(K, rol(RndA))`; on success the session is established.
    ///
    /// # Errors
    /// [`Error::MacInvalid`] when the tag does not know the key.
    pub fn confirm(&mut self, enc_rnd_a: &[u8]) -> Result<(), Error> {
        let mut got: [u8; 16] = enc_rnd_a.try_into().map_err(|_| Error::BadLength {
            expected: 16,
            actual: enc_rnd_a.len(),
        })?;
        aes_dec(&self.key, &mut got);
        if !mac_eq(&got, &rotate_left(&self.rnd_a)) {
            return Err(Error::MacInvalid);
        }
        self.session = Some((session_key(&self.rnd_a, &self.rnd_b), 0));
        Ok(())
    }

    /// A MACed value command (`INS_READ`, `INS_DECREMENT`, `INS_INCREMENT`, `INS_RESTORE`,
    /// `INS_TRANSFER`); `operand` only for decrement and increment. Returns the command and the
    /// counter to check the response MAC with.
    ///
    /// # Errors
    /// [`Error::ConditionsNotSatisfied`] before authentication.
    pub fn command(
        &mut self,
        ins: u8,
        operand: Option<i32>,
    ) -> Result<(apdu_codec::Command, u16), Error> {
        let (key, counter) = self.session.as_mut().ok_or(Error::ConditionsNotSatisfied)?;
        let body: Vec<u8> = operand
            .map(|o| o.to_le_bytes().to_vec())
            .unwrap_or_default();
        let mac = command_mac(key, *counter, ins, self.block, &body);
        let used = *counter;
        *counter = counter.wrapping_add(1);
        let mut data = body;
        data.extend_from_slice(&mac);
        Ok((
            apdu_codec::Command::new(CLA_TAG, ins, 0, self.block)
                .with_data(data)
                .with_le(256),
            used,
        ))
    }

    /// Verify a response MAC (the last 8 bytes of `response_data`) for the command sent with
    /// `counter`; returns the data before the MAC.
    ///
    /// # Errors
    /// [`Error::MacInvalid`]; [`Error::ConditionsNotSatisfied`] before authentication.
    pub fn check_response<'a>(
        &self,
        counter: u16,
        response_data: &'a [u8],
    ) -> Result<&'a [u8], Error> {
        let (key, _) = self.session.as_ref().ok_or(Error::ConditionsNotSatisfied)?;
        let (data, mac) = response_data
            .split_last_chunk::<8>()
            .ok_or(Error::MacInvalid)?;
        if mac_eq(&response_mac(key, counter, data), mac) {
            Ok(data)
        } else {
            Err(Error::MacInvalid)
        }
    }
}
