//! The purse applet's command processing: `process(&state, &mut session, command, entropy)`.

use apdu_codec::{CommandView, StatusWord};
use core::mem;

use super::reply::{Entropy, Reply};
use super::state::{
    CardKey, IssuerData, LOG_RECORD_LEN, Lifecycle, LogRecord, Pin, ProveRecord, PurseState,
    TagAccess, is_pin_bcd, key_function,
};
use crate::Error;
use crate::crypto::{DesKey, Key16, Padding, RetailMacKey, TdesKey, mac_eq};
use crate::pboc::{self, DateTime, PurseKind};
use crate::tag;

/// SFI of the issuer data file (PBOC `0015`), read with READ BINARY.
pub const SFI_ISSUER: u8 = 0x15;
/// SFI of the cyclic transaction log (PBOC `0018`), read with READ RECORD.
pub const SFI_LOG: u8 = 0x18;
/// Length of the issuer data file.
pub const ISSUER_FILE_LEN: usize = 30;

/// ISO/IEC 7816-4 SELECT.
const INS_SELECT: u8 = 0xA4;
/// ISO/IEC 7816-4 READ BINARY.
const INS_READ_BINARY: u8 = 0xB0;
/// ISO/IEC 7816-4 READ RECORD.
const INS_READ_RECORD: u8 = 0xB2;
/// ISO/IEC 7816-4 VERIFY.
const INS_VERIFY: u8 = 0x20;
/// ISO/IEC 7816-4 GET CHALLENGE.
const INS_GET_CHALLENGE: u8 = 0x84;
/// GPC 2.3 §11.11 STORE DATA.
const INS_STORE_DATA: u8 = 0xE2;
/// Ours: MOVE TO TAG (`docs/value-tag.md`).
pub const INS_MOVE_TO_TAG: u8 = 0x56;

/// DGI of the issuer data (ours, `docs/epurse.md`).
pub const DGI_ISSUER: u16 = 0x0101;
/// DGI of the limits.
pub const DGI_LIMITS: u16 = 0x0102;
/// DGI of the PIN.
pub const DGI_PIN: u16 = 0x0301;
/// DGI of the tag access data.
pub const DGI_TAG: u16 = 0x0401;
/// DGIs `0201`..`0207`: one key of the function in the low byte.
pub const DGI_KEY_BASE: u16 = 0x0200;

/// A pending two-step transaction, created by INITIALIZE and consumed by the next command.
#[derive(Default)]
enum Pending {
    #[default]
    None,
    Load(PendingOnline),
    Unload(PendingOnline),
    Purchase(PendingPurchase),
}

struct PendingOnline {
    kind: PurseKind,
    amount: u32,
    terminal_id: [u8; 6],
    tx_type: u8,
    atc: u16,
    session: DesKey,
}

struct PendingPurchase {
    kind: PurseKind,
    amount: u32,
    terminal_id: [u8; 6],
    random: [u8; 4],
    atc: u16,
    key_index: u8,
}

/// Key schedules kept between commands (derived from the persistent keys, never persisted).
#[derive(Default)]
struct KeyCache {
    purchase: Option<(Key16, TdesKey)>,
    tac: Option<(Key16, DesKey)>,
}

/// Transient state: lost on power cut or deselection, never persisted.
#[derive(Default)]
pub struct Session {
    selected: bool,
    pin_verified: bool,
    pending: Pending,
    challenge: Option<[u8; 8]>,
    cache: KeyCache,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("selected", &self.selected)
            .field("pin_verified", &self.pin_verified)
            .field("pending", &!matches!(self.pending, Pending::None))
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A fresh session (after power-on): nothing selected, PIN not verified.
    #[must_use]
    pub fn new() -> Self {
        Session::default()
    }

    /// Power cut, reset or deselection: forget everything transient.
    pub fn reset(&mut self) {
        self.selected = false;
        self.pin_verified = false;
        self.pending = Pending::None;
        self.challenge = None;
    }

    /// `true` once SELECT chose this applet.
    #[must_use]
    pub const fn is_selected(&self) -> bool {
        self.selected
    }

    /// `true` after a successful VERIFY in this session.
    #[must_use]
    pub const fn pin_verified(&self) -> bool {
        self.pin_verified
    }
}

/// What one command did: the reply, and the complete new persistent state when (and only
/// when) the command changed it. The host runtime must persist `new_state` atomically before
/// it sends `reply`; if it cannot (a power cut), it drops both and calls
/// [`Session::reset`], and the old state stays valid.
#[derive(Debug)]
#[must_use]
pub struct Outcome {
    /// The response APDU.
    pub reply: Reply,
    /// The new persistent state to commit, or `None` when nothing persistent changed.
    pub new_state: Option<PurseState>,
}

/// Process one command APDU.
///
/// Never panics; a refused command answers a precise status word and returns no new state.
pub fn process(
    state: &PurseState,
    session: &mut Session,
    cmd: &CommandView<'_>,
    entropy: &Entropy,
) -> Outcome {
    let mut reply = Reply::new();
    let mut new_state = None;
    let pending = mem::take(&mut session.pending);
    let challenge = session.challenge.take();
    let mut ctx = Ctx {
        state,
        session,
        cmd,
        entropy,
        reply: &mut reply,
        new: &mut new_state,
        pending,
        challenge,
    };
    match dispatch(&mut ctx) {
        Ok(()) => Outcome { reply, new_state },
        Err(e) => {
            reply.fail(StatusWord::from(&e));
            Outcome {
                reply,
                new_state: None,
            }
        }
    }
}

struct Ctx<'a, 'b> {
    state: &'a PurseState,
    session: &'a mut Session,
    cmd: &'a CommandView<'b>,
    entropy: &'a Entropy,
    reply: &'a mut Reply,
    new: &'a mut Option<PurseState>,
    pending: Pending,
    challenge: Option<[u8; 8]>,
}

impl Ctx<'_, '_> {
    fn data(&self) -> &[u8] {
        self.cmd.data()
    }

    fn data_len(&self, len: usize) -> Result<(), Error> {
        if self.cmd.data().len() == len {
            Ok(())
        } else {
            Err(Error::WrongLength)
        }
    }

    fn p1p2(&self, p1: u8, p2: u8) -> Result<(), Error> {
        if self.cmd.p1() == p1 && self.cmd.p2() == p2 {
            Ok(())
        } else {
            Err(Error::WrongP1P2)
        }
    }

    fn active(&self) -> Result<(), Error> {
        match self.state.lifecycle {
            Lifecycle::Active => Ok(()),
            Lifecycle::Blocked => Err(Error::ApplicationBlocked),
            Lifecycle::PermanentlyLocked => Err(Error::PermanentlyLocked),
            Lifecycle::Personalizing => Err(Error::ConditionsNotSatisfied),
        }
    }

    fn pin_for(&self, kind: PurseKind) -> Result<(), Error> {
        if kind == PurseKind::Ed && !self.session.pin_verified {
            Err(Error::SecurityStatusNotSatisfied)
        } else {
            Ok(())
        }
    }

    fn next_state(&mut self) -> &mut PurseState {
        self.new.get_or_insert_with(|| self.state.clone())
    }

    fn check_validity(&self, when: &DateTime) -> Result<(), Error> {
        if !when.is_valid() {
            return Err(Error::IncorrectData);
        }
        let issuer = self
            .state
            .issuer
            .as_ref()
            .ok_or(Error::ConditionsNotSatisfied)?;
        // Packed BCD dates compare correctly as big-endian byte strings.
        if when.date < issuer.start_date || when.date > issuer.end_date {
            return Err(Error::ApplicationExpired);
        }
        Ok(())
    }

    fn tac_key(&mut self) -> Result<DesKey, Error> {
        let dtk = self
            .state
            .first_key(key_function::TAC)
            .ok_or(Error::ReferencedDataNotFound)?;
        match &self.session.cache.tac {
            Some((k, schedule)) if *k == dtk.key => Ok(schedule.clone()),
            _ => {
                let schedule = pboc::tac_key(&dtk.key);
                self.session.cache.tac = Some((dtk.key.clone(), schedule.clone()));
                Ok(schedule)
            }
        }
    }

    fn purchase_key(&mut self, key: &CardKey) -> TdesKey {
        match &self.session.cache.purchase {
            Some((k, schedule)) if *k == key.key => schedule.clone(),
            _ => {
                let schedule = TdesKey::new(&key.key);
                self.session.cache.purchase = Some((key.key.clone(), schedule.clone()));
                schedule
            }
        }
    }

    /// Issuer command MAC (ours, `docs/epurse.md`): retail MAC under the function key with
    /// ICV = the GET CHALLENGE value, over `CLA INS P1 P2 Lc || data without the MAC`, padding
    /// method 2, left 4 bytes.
    fn check_issuer_mac(&self, function: u8) -> Result<usize, Error> {
        let challenge = self.challenge.ok_or(Error::ConditionsNotSatisfied)?;
        let key = self
            .state
            .first_key(function)
            .ok_or(Error::ReferencedDataNotFound)?;
        let data = self.data();
        let body_len = data.len().checked_sub(4).ok_or(Error::WrongLength)?;
        let (body, mac) = data.split_at(body_len);
        let lc = u8::try_from(data.len()).map_err(|_| Error::WrongLength)?;
        let expected = issuer_mac(&key.key, challenge, self.cmd.header(), lc, body)?;
        if mac_eq(&expected, mac) {
            Ok(body_len)
        } else {
            Err(Error::MacInvalid)
        }
    }
}

/// The issuer command MAC (ours, `docs/epurse.md`): ISO/IEC 9797-1 MAC algorithm 3 under the
/// 16-byte function key, ICV = `challenge`, over `header || Lc || body`, padding method 2,
/// left 4 bytes. `Lc` is the length of the whole data field including the 4 MAC bytes.
///
/// # Errors
/// Never in practice (padding method 2 takes any length); typed for uniformity.
pub fn issuer_mac(
    key: &Key16,
    challenge: [u8; 8],
    header: [u8; 4],
    lc: u8,
    body: &[u8],
) -> Result<[u8; 4], Error> {
    let full = RetailMacKey::new(key).mac_with_icv(
        challenge,
        &[&header, &[lc], body],
        Padding::Method2,
    )?;
    Ok([full[0], full[1], full[2], full[3]])
}

fn dispatch(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    if c.state.lifecycle == Lifecycle::PermanentlyLocked {
        return Err(Error::PermanentlyLocked);
    }
    let cla = c.cmd.header()[0];
    if cla & 0x10 != 0 {
        return Err(Error::Card(StatusWord::CHAINING_NOT_SUPPORTED));
    }
    // Logical channels 0-3 are accepted; the class must be interindustry (00) or proprietary (80),
    // with the secure-messaging indication (04) only on the issuer commands.
    let class = cla & 0xFC;
    let sm = cla & 0x0C != 0;
    if class != 0x00 && class != 0x80 && !(class == 0x84 || class == 0x04) {
        return Err(Error::ClassNotSupported);
    }
    let ins = c.cmd.ins();
    if ins == INS_SELECT && cla & 0x80 == 0 {
        return select_apdu(c);
    }
    if !c.session.selected {
        return Err(Error::ConditionsNotSatisfied);
    }
    let issuer_cmd = matches!(
        ins,
        pboc::INS_APPLICATION_BLOCK | pboc::INS_APPLICATION_UNBLOCK | pboc::INS_PIN_UNBLOCK
    );
    if sm && !issuer_cmd {
        return Err(Error::Card(StatusWord::SECURE_MESSAGING_NOT_SUPPORTED));
    }
    let proprietary = cla & 0x80 != 0;
    match (proprietary, ins) {
        (false, INS_READ_BINARY) => read_binary(c),
        (false, INS_READ_RECORD) => read_record(c),
        (false, INS_VERIFY) => verify(c),
        (false, INS_GET_CHALLENGE) => get_challenge(c),
        (true, INS_STORE_DATA) => store_data(c),
        (true, pboc::INS_INITIALIZE) => match c.cmd.p1() {
            pboc::P1_LOAD => initialize_load(c),
            pboc::P1_PURCHASE => initialize_purchase(c),
            pboc::P1_INIT_UNLOAD => initialize_unload(c),
            _ => Err(Error::WrongP1P2),
        },
        (true, pboc::INS_CREDIT_FOR_LOAD) => credit_for_load(c),
        (true, pboc::INS_DEBIT) => match c.cmd.p1() {
            pboc::P1_PURCHASE => debit_for_purchase(c),
            pboc::P1_DEBIT_UNLOAD => debit_for_unload(c),
            _ => Err(Error::WrongP1P2),
        },
        (true, pboc::INS_GET_BALANCE) => get_balance(c),
        (true, pboc::INS_GET_TRANSACTION_PROVE) => get_transaction_prove(c),
        (true, pboc::INS_PIN_CHANGE_RELOAD) => match c.cmd.p1() {
            0x00 => reload_pin(c),
            0x01 => change_pin(c),
            _ => Err(Error::WrongP1P2),
        },
        (true, pboc::INS_APPLICATION_BLOCK) => application_block(c),
        (true, pboc::INS_APPLICATION_UNBLOCK) => application_unblock(c),
        (true, pboc::INS_PIN_UNBLOCK) => pin_unblock(c),
        (true, INS_MOVE_TO_TAG) => move_to_tag(c),
        _ => Err(Error::InsNotSupported),
    }
}

fn select_apdu(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.session.reset();
    if c.cmd.p1() != 0x04 || !matches!(c.cmd.p2(), 0x00 | 0x0C) {
        return Err(Error::WrongP1P2);
    }
    if c.data() != c.state.aid() {
        return Err(Error::NotFound);
    }
    c.session.selected = true;
    if c.cmd.p2() == 0x00 {
        // FCI: 6F { 84 AID, A5 { 50 label, 9F08 version } } (ISO/IEC 7816-4 §5.3.3).
        let aid = c.state.aid();
        let label = b"MEC PURSE";
        let version = c.state.issuer.map_or(0, |i| i.app_version);
        let a5_len = 2 + label.len() + 4;
        let inner = 2 + aid.len() + 2 + a5_len;
        let b = |n: usize| u8::try_from(n).map_err(|_| Error::WrongLength);
        c.reply.push(&[0x6F, b(inner)?, 0x84, b(aid.len())?])?;
        c.reply.push(aid)?;
        c.reply.push(&[0xA5, b(a5_len)?, 0x50, b(label.len())?])?;
        c.reply.push(label)?;
        c.reply.push(&[0x9F, 0x08, 0x01, version])?;
    }
    if c.state.lifecycle == Lifecycle::Blocked {
        c.reply.set_status(StatusWord::SELECTED_FILE_INVALIDATED);
    }
    Ok(())
}

fn issuer_file(issuer: &IssuerData) -> [u8; ISSUER_FILE_LEN] {
    let mut f = [0u8; ISSUER_FILE_LEN];
    f[..8].copy_from_slice(&issuer.issuer_id);
    f[8] = issuer.app_type;
    f[9] = issuer.app_version;
    // ASN as a 10-byte field, the 8-byte diversification ASN right-aligned.
    f[12..20].copy_from_slice(&issuer.asn);
    f[20..24].copy_from_slice(&issuer.start_date);
    f[24..28].copy_from_slice(&issuer.end_date);
    f
}

fn read_binary(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    let p1 = c.cmd.p1();
    if p1 & 0xE0 != 0x80 {
        return Err(Error::WrongP1P2);
    }
    if p1 & 0x1F != SFI_ISSUER {
        return Err(Error::NotFound);
    }
    if !c.data().is_empty() {
        return Err(Error::WrongLength);
    }
    let issuer = c.state.issuer.as_ref().ok_or(Error::NotFound)?;
    let file = issuer_file(issuer);
    let offset = usize::from(c.cmd.p2());
    let rest = file
        .get(offset..)
        .filter(|r| !r.is_empty())
        .ok_or(Error::WrongP1P2)?;
    let want = c.cmd.le().unwrap_or(rest.len());
    let take = want.min(rest.len());
    c.reply.push(rest.get(..take).unwrap_or(&[]))?;
    if want > rest.len() && want != 256 {
        c.reply.set_status(StatusWord::END_OF_DATA);
    }
    Ok(())
}

fn read_record(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    let p2 = c.cmd.p2();
    if p2 & 0x07 != 0x04 {
        return Err(Error::WrongP1P2);
    }
    if p2 >> 3 != SFI_LOG {
        return Err(Error::NotFound);
    }
    if !c.data().is_empty() {
        return Err(Error::WrongLength);
    }
    let n = usize::from(c.cmd.p1());
    if n == 0 {
        return Err(Error::WrongP1P2);
    }
    let record = c.state.log().nth(n - 1).ok_or(Error::RecordNotFound)?;
    if c.cmd.le().is_some_and(|le| le < LOG_RECORD_LEN) {
        return Err(Error::Card(StatusWord::new(0x6C, 0x17)));
    }
    c.reply.push(&record.to_bytes())
}

fn verify(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.active()?;
    c.p1p2(0x00, 0x00)?;
    let pin = c.state.pin.as_ref().ok_or(Error::ReferencedDataNotFound)?;
    if pin.tries_left == 0 {
        return Err(Error::PinBlocked);
    }
    if c.data().is_empty() {
        c.reply
            .set_status(StatusWord::with_retries_left(pin.tries_left));
        return Ok(());
    }
    if !(2..=6).contains(&c.data().len()) {
        return Err(Error::WrongLength);
    }
    let presented = c.data();
    if pin.matches(presented) {
        c.session.pin_verified = true;
        if pin.tries_left != pin.try_limit
            && let Some(p) = c.next_state().pin.as_mut()
        {
            p.tries_left = p.try_limit;
        }
        Ok(())
    } else {
        c.session.pin_verified = false;
        let left = pin.tries_left.saturating_sub(1);
        if let Some(p) = c.next_state().pin.as_mut() {
            p.tries_left = left;
        }
        c.reply.set_status(StatusWord::with_retries_left(left));
        Ok(())
    }
}

fn change_pin(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.active()?;
    c.p1p2(0x01, 0x00)?;
    let pin = c.state.pin.as_ref().ok_or(Error::ReferencedDataNotFound)?;
    if pin.tries_left == 0 {
        return Err(Error::PinBlocked);
    }
    let data = c.data();
    let sep = data
        .iter()
        .position(|b| *b == 0xFF)
        .ok_or(Error::IncorrectData)?;
    let (old, new) = (&data[..sep], data.get(sep + 1..).unwrap_or(&[]));
    if !(2..=6).contains(&old.len()) {
        return Err(Error::IncorrectData);
    }
    let new_pin = Pin::new(new, pin.try_limit)?;
    if pin.matches(old) {
        c.session.pin_verified = true;
        c.next_state().pin = Some(new_pin);
        Ok(())
    } else {
        c.session.pin_verified = false;
        let left = pin.tries_left.saturating_sub(1);
        if let Some(p) = c.next_state().pin.as_mut() {
            p.tries_left = left;
        }
        c.reply.set_status(StatusWord::with_retries_left(left));
        Ok(())
    }
}

fn reload_pin(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.active()?;
    c.p1p2(0x00, 0x00)?;
    let limit = c
        .state
        .pin
        .as_ref()
        .map(|p| p.try_limit)
        .ok_or(Error::ReferencedDataNotFound)?;
    let body_len = c.check_issuer_mac(key_function::PIN_RELOAD)?;
    let new_pin = Pin::new(c.data().get(..body_len).unwrap_or(&[]), limit)?;
    c.next_state().pin = Some(new_pin);
    Ok(())
}

fn pin_unblock(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.active()?;
    c.p1p2(0x00, 0x00)?;
    c.data_len(12)?;
    let limit = c
        .state
        .pin
        .as_ref()
        .map(|p| p.try_limit)
        .ok_or(Error::ReferencedDataNotFound)?;
    c.check_issuer_mac(key_function::PIN_UNBLOCK)?;
    let key = c
        .state
        .first_key(key_function::PIN_UNBLOCK)
        .ok_or(Error::ReferencedDataNotFound)?;
    let mut block: [u8; 8] = c
        .data()
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::WrongLength)?;
    TdesKey::new(&key.key).decrypt(&mut block);
    // PIN block: length in bytes (2..=6), the packed BCD PIN, FF filler.
    let len = usize::from(block[0]);
    let pin = block.get(1..1 + len).ok_or(Error::IncorrectData)?;
    if block
        .get(1 + len..)
        .is_some_and(|rest| rest.iter().any(|b| *b != 0xFF))
    {
        return Err(Error::IncorrectData);
    }
    let new_pin = Pin::new(pin, limit)?;
    zeroize::Zeroize::zeroize(&mut block);
    c.next_state().pin = Some(new_pin);
    Ok(())
}

/// The PIN block PIN UNBLOCK carries, before encryption (ours, `docs/epurse.md`).
///
/// # Errors
/// [`Error::IncorrectData`] for a PIN that is not 2..=6 packed BCD bytes.
pub fn pin_block(pin: &[u8]) -> Result<[u8; 8], Error> {
    if !(2..=6).contains(&pin.len()) || !is_pin_bcd(pin) {
        return Err(Error::IncorrectData);
    }
    let mut block = [0xFFu8; 8];
    block[0] = u8::try_from(pin.len()).map_err(|_| Error::IncorrectData)?;
    block[1..=pin.len()].copy_from_slice(pin);
    Ok(block)
}

fn get_challenge(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.p1p2(0x00, 0x00)?;
    if !c.data().is_empty() {
        return Err(Error::WrongLength);
    }
    let random: [u8; 8] = c.entropy.take();
    match c.cmd.le() {
        Some(4) => {
            c.challenge = Some([random[0], random[1], random[2], random[3], 0, 0, 0, 0]);
            c.reply.push(&random[..4])?;
        }
        Some(8) => {
            c.challenge = Some(random);
            c.reply.push(&random)?;
        }
        _ => return Err(Error::WrongLength),
    }
    c.session.challenge = c.challenge;
    Ok(())
}

fn application_block(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    if !matches!(c.state.lifecycle, Lifecycle::Active | Lifecycle::Blocked) {
        return Err(Error::ConditionsNotSatisfied);
    }
    if c.cmd.p1() != 0x00 || c.cmd.p2() > 0x01 {
        return Err(Error::WrongP1P2);
    }
    c.data_len(4)?;
    c.check_issuer_mac(key_function::MAINTENANCE)?;
    let next = if c.cmd.p2() == 0x01 {
        Lifecycle::PermanentlyLocked
    } else {
        Lifecycle::Blocked
    };
    c.next_state().lifecycle = next;
    c.session.pin_verified = false;
    Ok(())
}

fn application_unblock(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    if c.state.lifecycle != Lifecycle::Blocked {
        return Err(Error::ConditionsNotSatisfied);
    }
    c.p1p2(0x00, 0x00)?;
    c.data_len(4)?;
    c.check_issuer_mac(key_function::MAINTENANCE)?;
    c.next_state().lifecycle = Lifecycle::Active;
    Ok(())
}

fn store_data(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    let next = apply_store_data(c.state, c.cmd.p1(), c.cmd.data())?;
    *c.new = Some(next);
    Ok(())
}

/// STORE DATA semantics shared by the APDU and [`personalize`].
fn apply_store_data(state: &PurseState, p1: u8, data: &[u8]) -> Result<PurseState, Error> {
    if state.lifecycle != Lifecycle::Personalizing {
        return Err(Error::ConditionsNotSatisfied);
    }
    // GPC 2.3 §11.11.2.1: P1 bits 18 give the data structure; only DGI (08) or "no
    // information" (00) is accepted. Encryption bits (60) are for the security domain to
    // remove; the applet receives DGIs in the clear.
    if p1 & 0x18 == 0x10 || p1 & 0x18 == 0x18 {
        return Err(Error::WrongP1P2);
    }
    if data.is_empty() {
        return Err(Error::WrongLength);
    }
    let last = p1 & 0x80 != 0;
    let mut next = state.clone();
    let mut at = 0usize;
    while at < data.len() {
        let (dgi, value, used) = parse_dgi(data.get(at..).unwrap_or(&[]))?;
        apply_dgi(&mut next, dgi, value)?;
        at += used;
    }
    if last {
        let complete = next.issuer.is_some()
            && next.max_balance > 0
            && next.pin.is_some()
            && next.first_key(key_function::PURCHASE).is_some()
            && next.first_key(key_function::LOAD).is_some()
            && next.first_key(key_function::TAC).is_some();
        if !complete {
            return Err(Error::ReferencedDataNotFound);
        }
        next.lifecycle = Lifecycle::Active;
    }
    Ok(next)
}

/// One STORE DATA block routed by a security domain (GP INSTALL [for personalization]),
/// without a SELECT: `p1` as in the APDU (bit `80` = last block), `data` the plain DGIs.
/// Returns the outcome exactly as [`process`] would for `80 E2 p1 .. data`.
pub fn personalize(state: &PurseState, p1: u8, data: &[u8]) -> Outcome {
    match apply_store_data(state, p1, data) {
        Ok(next) => Outcome {
            reply: Reply::new(),
            new_state: Some(next),
        },
        Err(e) => Outcome {
            reply: Reply::status_only(StatusWord::from(&e)),
            new_state: None,
        },
    }
}

/// What SELECT by this applet's AID answers, for a runtime that performs the selection
/// itself (the GP registry) and only informs the applet: resets the session, marks it
/// selected and returns the FCI with `9000`, `6283` (blocked) or `9303` (permanently locked,
/// not selected).
#[must_use]
pub fn select(state: &PurseState, session: &mut Session) -> Reply {
    let mut data = [0u8; super::state::MAX_AID + 5];
    data[..5].copy_from_slice(&[0x00, 0xA4, 0x04, 0x00, state.aid_len]);
    let aid = state.aid();
    let end = 5 + aid.len();
    if let Some(slot) = data.get_mut(5..end) {
        slot.copy_from_slice(aid);
    }
    match apdu_codec::parse_command(data.get(..end).unwrap_or(&[])) {
        Ok(cmd) => process(state, session, &cmd, &Entropy::default()).reply,
        Err(e) => Reply::status_only(StatusWord::from(&e)),
    }
}

/// Split one DGI: `tag(2) || length(1, or FF + 2) || value`; returns the bytes consumed.
fn parse_dgi(b: &[u8]) -> Result<(u16, &[u8], usize), Error> {
    let (&[t0, t1], rest) = b.split_first_chunk::<2>().ok_or(Error::IncorrectData)?;
    let (len, head) = match rest.first() {
        Some(0xFF) => {
            let hi = *rest.get(1).ok_or(Error::IncorrectData)?;
            let lo = *rest.get(2).ok_or(Error::IncorrectData)?;
            (usize::from(u16::from_be_bytes([hi, lo])), 5)
        }
        Some(l) => (usize::from(*l), 3),
        None => return Err(Error::IncorrectData),
    };
    let value = b.get(head..head + len).ok_or(Error::IncorrectData)?;
    Ok((u16::from_be_bytes([t0, t1]), value, head + len))
}

fn apply_dgi(next: &mut PurseState, dgi: u16, v: &[u8]) -> Result<(), Error> {
    let bytes = |from: usize, to: usize| v.get(from..to).ok_or(Error::IncorrectData);
    let arr = |from: usize| -> Result<[u8; 4], Error> {
        bytes(from, from + 4)?
            .try_into()
            .map_err(|_| Error::IncorrectData)
    };
    match dgi {
        DGI_ISSUER => {
            if v.len() != 26 {
                return Err(Error::IncorrectData);
            }
            let mut i = IssuerData {
                app_type: v[16],
                app_version: v[17],
                start_date: arr(18)?,
                end_date: arr(22)?,
                ..IssuerData::default()
            };
            i.asn.copy_from_slice(bytes(0, 8)?);
            i.issuer_id.copy_from_slice(bytes(8, 16)?);
            let start = DateTime {
                date: i.start_date,
                time: [0; 3],
            };
            let end = DateTime {
                date: i.end_date,
                time: [0; 3],
            };
            if !start.is_valid() || !end.is_valid() || i.start_date > i.end_date {
                return Err(Error::IncorrectData);
            }
            next.issuer = Some(i);
        }
        DGI_LIMITS => {
            if v.len() != 7 {
                return Err(Error::IncorrectData);
            }
            let max = u32::from_be_bytes(arr(0)?);
            if max == 0 || max > i32::MAX as u32 {
                return Err(Error::IncorrectData);
            }
            next.max_balance = max;
            next.overdraft_limit = u32::from_be_bytes([0, v[4], v[5], v[6]]);
        }
        DGI_PIN => {
            let (&limit, pin) = v.split_first().ok_or(Error::IncorrectData)?;
            next.pin = Some(Pin::new(pin, limit)?);
        }
        DGI_TAG => {
            if v.len() < 19 {
                return Err(Error::IncorrectData);
            }
            let master = Key16::from_slice(bytes(0, 16)?)?;
            let aid: [u8; 3] = bytes(16, 19)?
                .try_into()
                .map_err(|_| Error::IncorrectData)?;
            let si = v.get(19..).unwrap_or(&[]);
            // AN10922 (AES-128 diversification): the diversification input M = UID || AID || system identifier
            // is at most 31 bytes (the constant 01 makes 32).
            if tag::UID_LEN + 3 + si.len() > 31 {
                return Err(Error::IncorrectData);
            }
            next.tag = Some(TagAccess::new(master, aid, si)?);
        }
        d if d & 0xFF00 == DGI_KEY_BASE && key_function::is_known(d.to_be_bytes()[1]) => {
            if v.len() != 19 {
                return Err(Error::IncorrectData);
            }
            next.set_key(CardKey {
                function: d.to_be_bytes()[1],
                index: v[0],
                version: v[1],
                algorithm: v[2],
                key: Key16::from_slice(bytes(3, 19)?)?,
            })?;
        }
        _ => return Err(Error::ReferencedDataNotFound),
    }
    Ok(())
}

fn kind_of(c: &Ctx<'_, '_>) -> Result<PurseKind, Error> {
    PurseKind::from_p2(c.cmd.p2()).ok_or(Error::WrongP1P2)
}

fn initialize_load(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.active()?;
    let kind = kind_of(c)?;
    c.data_len(pboc::InitializeData::LEN)?;
    c.pin_for(kind)?;
    let init = pboc::InitializeData::parse(c.data())?;
    let key = c
        .state
        .key(key_function::LOAD, init.key_index)
        .ok_or(Error::KeyIndexNotSupported)?;
    if init.amount == 0 {
        return Err(Error::IncorrectData);
    }
    let account = c.state.account(kind);
    if account.online_atc == u16::MAX {
        return Err(Error::CounterLimitReached);
    }
    if i64::from(account.balance) + i64::from(init.amount) > i64::from(c.state.max_balance) {
        return Err(Error::MaximumBalanceExceeded);
    }
    let random: [u8; 4] = c.entropy.take();
    let session = pboc::load_session_key(&TdesKey::new(&key.key), &random, account.online_atc);
    let tx_type = kind.load_type();
    let mac1 = pboc::load_mac1(
        &session,
        account.balance,
        init.amount,
        tx_type,
        &init.terminal_id,
    );
    let rsp = pboc::InitLoadResponse {
        balance: account.balance,
        online_atc: account.online_atc,
        key_version: key.version,
        algorithm: key.algorithm,
        random,
        mac1,
    };
    c.reply.push(&rsp.to_bytes())?;
    c.session.pending = Pending::Load(PendingOnline {
        kind,
        amount: init.amount,
        terminal_id: init.terminal_id,
        tx_type,
        atc: account.online_atc,
        session,
    });
    Ok(())
}

fn initialize_unload(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.active()?;
    if c.cmd.p2() != PurseKind::Ed.p2() {
        return Err(Error::WrongP1P2);
    }
    c.data_len(pboc::InitializeData::LEN)?;
    c.pin_for(PurseKind::Ed)?;
    let init = pboc::InitializeData::parse(c.data())?;
    let key = c
        .state
        .key(key_function::UNLOAD, init.key_index)
        .ok_or(Error::KeyIndexNotSupported)?;
    if init.amount == 0 {
        return Err(Error::IncorrectData);
    }
    let account = c.state.ed;
    if account.online_atc == u16::MAX {
        return Err(Error::CounterLimitReached);
    }
    if i64::from(account.balance) < i64::from(init.amount) {
        return Err(Error::InsufficientBalance);
    }
    let random: [u8; 4] = c.entropy.take();
    let session = pboc::load_session_key(&TdesKey::new(&key.key), &random, account.online_atc);
    let tx_type = pboc::TYPE_ED_UNLOAD;
    let mac1 = pboc::load_mac1(
        &session,
        account.balance,
        init.amount,
        tx_type,
        &init.terminal_id,
    );
    let rsp = pboc::InitLoadResponse {
        balance: account.balance,
        online_atc: account.online_atc,
        key_version: key.version,
        algorithm: key.algorithm,
        random,
        mac1,
    };
    c.reply.push(&rsp.to_bytes())?;
    c.session.pending = Pending::Unload(PendingOnline {
        kind: PurseKind::Ed,
        amount: init.amount,
        terminal_id: init.terminal_id,
        tx_type,
        atc: account.online_atc,
        session,
    });
    Ok(())
}

fn parse_when_mac(data: &[u8]) -> Result<(DateTime, [u8; 4]), Error> {
    let when: [u8; 7] = data
        .get(..7)
        .and_then(|d| d.try_into().ok())
        .ok_or(Error::WrongLength)?;
    let mac: [u8; 4] = data
        .get(7..11)
        .and_then(|d| d.try_into().ok())
        .ok_or(Error::WrongLength)?;
    Ok((DateTime::from_bytes(&when), mac))
}

/// CREDIT FOR LOAD and DEBIT FOR UNLOAD share everything but the sign and the MAC key.
fn finish_online(c: &mut Ctx<'_, '_>, unload: bool) -> Result<(), Error> {
    c.active()?;
    let pending = match (mem::take(&mut c.pending), unload) {
        (Pending::Load(p), false) | (Pending::Unload(p), true) => p,
        _ => return Err(Error::ConditionsNotSatisfied),
    };
    c.data_len(11)?;
    let (when, mac2) = parse_when_mac(c.data())?;
    let expected = pboc::load_mac2(
        &pending.session,
        pending.amount,
        pending.tx_type,
        &pending.terminal_id,
        &when,
    );
    if !mac_eq(&expected, &mac2) {
        return Err(Error::MacInvalid);
    }
    c.check_validity(&when)?;
    let tac_key = c.tac_key()?;
    let max = i64::from(c.state.max_balance);
    let overdraft = i64::from(c.state.overdraft_limit(pending.kind));
    let account = *c.state.account(pending.kind);
    let delta = i64::from(pending.amount);
    let new_balance = if unload {
        i64::from(account.balance) - delta
    } else {
        i64::from(account.balance) + delta
    };
    if new_balance > max {
        return Err(Error::MaximumBalanceExceeded);
    }
    if new_balance < -overdraft || (unload && new_balance < 0) {
        return Err(Error::InsufficientBalance);
    }
    let new_balance = i32::try_from(new_balance).map_err(|_| Error::MaximumBalanceExceeded)?;
    let next_atc = account
        .online_atc
        .checked_add(1)
        .ok_or(Error::CounterLimitReached)?;
    if account.online_atc != pending.atc {
        return Err(Error::ConditionsNotSatisfied);
    }
    let tac = pboc::load_tac(
        &tac_key,
        new_balance,
        pending.atc,
        pending.amount,
        pending.tx_type,
        &pending.terminal_id,
        &when,
    );
    let od = c.state.overdraft_limit(pending.kind);
    let next = c.next_state();
    let acc = next.account_mut(pending.kind);
    acc.balance = new_balance;
    acc.online_atc = next_atc;
    next.push_log(LogRecord {
        atc: pending.atc,
        overdraft_limit: od,
        amount: pending.amount,
        tx_type: pending.tx_type,
        terminal_id: pending.terminal_id,
        date: when.date,
        time: when.time,
    });
    next.push_prove(ProveRecord {
        tx_type: pending.tx_type,
        atc: pending.atc,
        mac: mac2,
        tac,
    });
    c.reply.push(&tac)
}

fn credit_for_load(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.p1p2(0x00, 0x00)?;
    finish_online(c, false)
}

fn debit_for_unload(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.p1p2(pboc::P1_DEBIT_UNLOAD, 0x00)?;
    finish_online(c, true)
}

fn initialize_purchase(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.active()?;
    let kind = kind_of(c)?;
    c.data_len(pboc::InitializeData::LEN)?;
    c.pin_for(kind)?;
    let init = pboc::InitializeData::parse(c.data())?;
    let key = c
        .state
        .key(key_function::PURCHASE, init.key_index)
        .ok_or(Error::KeyIndexNotSupported)?;
    if init.amount == 0 {
        return Err(Error::IncorrectData);
    }
    let account = c.state.account(kind);
    if account.offline_atc == u16::MAX {
        return Err(Error::CounterLimitReached);
    }
    let overdraft = c.state.overdraft_limit(kind);
    if i64::from(account.balance) + i64::from(overdraft) < i64::from(init.amount) {
        return Err(Error::InsufficientBalance);
    }
    let random: [u8; 4] = c.entropy.take();
    let rsp = pboc::InitPurchaseResponse {
        balance: account.balance,
        offline_atc: account.offline_atc,
        overdraft_limit: overdraft,
        key_version: key.version,
        algorithm: key.algorithm,
        random,
    };
    c.reply.push(&rsp.to_bytes())?;
    c.session.pending = Pending::Purchase(PendingPurchase {
        kind,
        amount: init.amount,
        terminal_id: init.terminal_id,
        random,
        atc: account.offline_atc,
        key_index: init.key_index,
    });
    Ok(())
}

fn debit_for_purchase(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.active()?;
    c.p1p2(pboc::P1_PURCHASE, 0x00)?;
    let Pending::Purchase(p) = mem::take(&mut c.pending) else {
        return Err(Error::ConditionsNotSatisfied);
    };
    c.data_len(15)?;
    let d = c.data();
    let serial: [u8; 4] = d
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::WrongLength)?;
    let (when, mac1) = parse_when_mac(d.get(4..).unwrap_or(&[]))?;
    let key = c
        .state
        .key(key_function::PURCHASE, p.key_index)
        .ok_or(Error::KeyIndexNotSupported)?;
    let dpk = c.purchase_key(key);
    let session = pboc::purchase_session_key(&dpk, &p.random, p.atc, &serial);
    let tx_type = p.kind.purchase_type();
    let expected = pboc::purchase_mac1(&session, p.amount, tx_type, &p.terminal_id, &when);
    if !mac_eq(&expected, &mac1) {
        return Err(Error::MacInvalid);
    }
    c.check_validity(&when)?;
    let account = *c.state.account(p.kind);
    if account.offline_atc != p.atc {
        return Err(Error::ConditionsNotSatisfied);
    }
    let od = c.state.overdraft_limit(p.kind);
    let new_balance = i64::from(account.balance) - i64::from(p.amount);
    if new_balance < -i64::from(od) {
        return Err(Error::InsufficientBalance);
    }
    let new_balance = i32::try_from(new_balance).map_err(|_| Error::InsufficientBalance)?;
    let next_atc = p.atc.checked_add(1).ok_or(Error::CounterLimitReached)?;
    let tac_key = c.tac_key()?;
    let mac2 = pboc::purchase_mac2(&session, p.amount);
    let tac = pboc::purchase_tac(&tac_key, p.amount, tx_type, &p.terminal_id, &serial, &when);
    let next = c.next_state();
    let acc = next.account_mut(p.kind);
    acc.balance = new_balance;
    acc.offline_atc = next_atc;
    next.push_log(LogRecord {
        atc: p.atc,
        overdraft_limit: od,
        amount: p.amount,
        tx_type,
        terminal_id: p.terminal_id,
        date: when.date,
        time: when.time,
    });
    next.push_prove(ProveRecord {
        tx_type,
        atc: p.atc,
        mac: mac2,
        tac,
    });
    c.reply.push(&tac)?;
    c.reply.push(&mac2)
}

fn get_balance(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.active()?;
    if c.cmd.p1() != 0x00 {
        return Err(Error::WrongP1P2);
    }
    let kind = kind_of(c)?;
    if !c.data().is_empty() {
        return Err(Error::WrongLength);
    }
    c.pin_for(kind)?;
    c.reply.push(&c.state.account(kind).balance.to_be_bytes())
}

fn get_transaction_prove(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.active()?;
    if c.cmd.p1() != 0x00 {
        return Err(Error::WrongP1P2);
    }
    c.data_len(2)?;
    let atc = u16::from_be_bytes([c.data()[0], c.data()[1]]);
    let p = c
        .state
        .prove(c.cmd.p2(), atc)
        .ok_or(Error::MacUnavailable)?;
    let (mac, tac) = (p.mac, p.tac);
    c.reply.push(&mac)?;
    c.reply.push(&tac)
}

/// MOVE TO TAG (ours, `docs/value-tag.md`): debit the EP and answer the voucher that credits
/// the value-block tag. Data: `amount(4) UID(7) block(1) voucher counter(4) date(4) time(3)`.
fn move_to_tag(c: &mut Ctx<'_, '_>) -> Result<(), Error> {
    c.active()?;
    c.p1p2(0x00, 0x00)?;
    c.data_len(23)?;
    // The cardholder authorizes moving value off the purse.
    if !c.session.pin_verified {
        return Err(Error::SecurityStatusNotSatisfied);
    }
    let d = c.data();
    let amount = u32::from_be_bytes(
        d.get(..4)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::WrongLength)?,
    );
    let uid: [u8; tag::UID_LEN] = d
        .get(4..11)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::WrongLength)?;
    let block = d[11];
    let counter = u32::from_be_bytes(
        d.get(12..16)
            .and_then(|s| s.try_into().ok())
            .ok_or(Error::WrongLength)?,
    );
    let when_b: [u8; 7] = d
        .get(16..23)
        .and_then(|s| s.try_into().ok())
        .ok_or(Error::WrongLength)?;
    let when = DateTime::from_bytes(&when_b);
    let access = c.state.tag.as_ref().ok_or(Error::ReferencedDataNotFound)?;
    if amount == 0 || amount > i32::MAX as u32 || tag::sector_of(block).is_none() {
        return Err(Error::IncorrectData);
    }
    c.check_validity(&when)?;
    let account = c.state.ep;
    if account.offline_atc == u16::MAX {
        return Err(Error::CounterLimitReached);
    }
    if i64::from(account.balance) < i64::from(amount) {
        return Err(Error::InsufficientBalance);
    }
    let key = tag::sector_key(access, &uid, block)?;
    let voucher = tag::voucher(&key, &uid, block, amount, counter);
    let mut terminal_id = [0u8; 6];
    terminal_id.copy_from_slice(&uid[1..]);
    let atc = account.offline_atc;
    let next = c.next_state();
    next.ep.balance = account.balance - i32::try_from(amount).map_err(|_| Error::IncorrectData)?;
    next.ep.offline_atc = atc + 1;
    next.push_log(LogRecord {
        atc,
        overdraft_limit: 0,
        amount,
        tx_type: pboc::TYPE_EP_TO_TAG,
        terminal_id,
        date: when.date,
        time: when.time,
    });
    let mut mac = [0u8; 4];
    let mut tac = [0u8; 4];
    mac.copy_from_slice(&voucher[..4]);
    tac.copy_from_slice(&voucher[4..]);
    next.push_prove(ProveRecord {
        tx_type: pboc::TYPE_EP_TO_TAG,
        atc,
        mac,
        tac,
    });
    c.reply.push(&atc.to_be_bytes())?;
    c.reply.push(&voucher)
}
