//! E-ticket store: tickets delivered after a purchase (ticket id, event, validity, gate key)
//! and a gate read answered with a MAC over the reader's challenge, so that a recorded read
//! cannot be replayed. Formats are ours, documented in `docs/value-tag.md` ("E-ticket store").
//!
//! A state machine like the purse: [`TicketState`] (persistent), [`TicketSession`]
//! (transient), [`process`].

use alloc::vec::Vec;

use aes::Aes128;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use apdu_codec::{Command, CommandView, ResponseView, StatusWord};
use cmac::{Cmac, Mac};

use crate::Error;
use crate::card::{Entropy, Reply};
use crate::crypto::{Key16, mac_eq};
use crate::encoding::{self, Reader};
use crate::pboc::DateTime;

/// Tickets the store holds.
pub const MAX_TICKETS: usize = 8;
/// STORE TICKET `80 D2 00 00 30`.
pub const INS_STORE_TICKET: u8 = 0xD2;
/// GATE READ `80 D4 00 00 14`.
pub const INS_GATE_READ: u8 = 0xD4;
/// LIST TICKETS `80 D6 00 00`.
pub const INS_LIST_TICKETS: u8 = 0xD6;

/// The public part of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketInfo {
    /// Ticket id.
    pub id: [u8; 8],
    /// Event id.
    pub event: [u8; 8],
    /// First valid date `YYYYMMDD` BCD.
    pub valid_from: [u8; 4],
    /// Last valid date `YYYYMMDD` BCD.
    pub valid_to: [u8; 4],
}

impl TicketInfo {
    fn to_bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.id);
        b[8..16].copy_from_slice(&self.event);
        b[16..20].copy_from_slice(&self.valid_from);
        b[20..].copy_from_slice(&self.valid_to);
        b
    }

    fn parse(b: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(b);
        let t = TicketInfo {
            id: r.array()?,
            event: r.array()?,
            valid_from: r.array()?,
            valid_to: r.array()?,
        };
        if !r.is_at_end() {
            return Err(Error::WrongLength);
        }
        Ok(t)
    }
}

/// A stored ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Public data.
    pub info: TicketInfo,
    /// The key the gate shares (AES-128).
    pub gate_key: Key16,
}

/// The store's persistent state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketState {
    aid: [u8; 16],
    aid_len: u8,
    delivery_key: Key16,
    tickets: [Option<Ticket>; MAX_TICKETS],
}

const MAGIC: &[u8; 4] = b"TKS1";

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

impl TicketState {
    /// An empty store answering to `aid`, accepting tickets MACed under `delivery_key`.
    ///
    /// # Errors
    /// [`Error::IncorrectData`] for an AID outside 5..=16 bytes.
    pub fn new(aid: &[u8], delivery_key: Key16) -> Result<Self, Error> {
        if !(5..=16).contains(&aid.len()) {
            return Err(Error::IncorrectData);
        }
        let mut a = [0u8; 16];
        a[..aid.len()].copy_from_slice(aid);
        Ok(TicketState {
            aid: a,
            aid_len: u8::try_from(aid.len()).map_err(|_| Error::IncorrectData)?,
            delivery_key,
            tickets: Default::default(),
        })
    }

    /// The stored tickets.
    pub fn tickets(&self) -> impl Iterator<Item = &TicketInfo> + '_ {
        self.tickets.iter().flatten().map(|t| &t.info)
    }

    fn aid(&self) -> &[u8] {
        self.aid.get(..usize::from(self.aid_len)).unwrap_or(&[])
    }

    /// Stable encoding `"TKS1" || fields || CRC-32`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = encoding::begin(MAGIC, 400);
        w.push(self.aid_len);
        w.extend_from_slice(&self.aid);
        w.extend_from_slice(self.delivery_key.expose());
        for t in &self.tickets {
            match t {
                None => w.push(0),
                Some(t) => {
                    w.push(1);
                    w.extend_from_slice(&t.info.to_bytes());
                    w.extend_from_slice(t.gate_key.expose());
                }
            }
        }
        encoding::seal(w)
    }

    /// Decode [`to_bytes`](Self::to_bytes) output.
    ///
    /// # Errors
    /// [`Error::StateEncoding`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = encoding::open(bytes, MAGIC)?;
        let (aid_len, aid) = r.aid()?;
        let delivery_key = Key16::new(r.array()?);
        let mut tickets: [Option<Ticket>; MAX_TICKETS] = Default::default();
        for t in &mut tickets {
            if r.flag()? {
                let info: [u8; 24] = r.array()?;
                *t = Some(Ticket {
                    info: TicketInfo::parse(&info).map_err(|_| Error::StateEncoding("ticket"))?,
                    gate_key: Key16::new(r.array()?),
                });
            }
        }
        r.finish()?;
        Ok(TicketState {
            aid,
            aid_len,
            delivery_key,
            tickets,
        })
    }
}

/// Transient state of the ticket store.
#[derive(Debug, Default)]
pub struct TicketSession {
    selected: bool,
}

impl TicketSession {
    /// A fresh session.
    #[must_use]
    pub fn new() -> Self {
        TicketSession::default()
    }

    /// Power cut or deselection.
    pub fn reset(&mut self) {
        self.selected = false;
    }
}

/// What one command did (see [`crate::card::Outcome`]).
#[derive(Debug)]
#[must_use]
pub struct TicketOutcome {
    /// The response.
    pub reply: Reply,
    /// The new persistent state to commit, if any.
    pub new_state: Option<TicketState>,
}

/// Process one command. `_entropy` is unused today (the gate supplies the challenge) and kept
/// for a uniform applet interface.
pub fn process(
    state: &TicketState,
    session: &mut TicketSession,
    cmd: &CommandView<'_>,
    _entropy: &Entropy,
) -> TicketOutcome {
    let mut reply = Reply::new();
    let mut new_state = None;
    match dispatch(state, session, cmd, &mut reply, &mut new_state) {
        Ok(()) => TicketOutcome { reply, new_state },
        Err(e) => {
            reply.fail(StatusWord::from(&e));
            TicketOutcome {
                reply,
                new_state: None,
            }
        }
    }
}

fn dispatch(
    state: &TicketState,
    session: &mut TicketSession,
    cmd: &CommandView<'_>,
    reply: &mut Reply,
    new_state: &mut Option<TicketState>,
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
    if cla != 0x80 {
        return Err(Error::ClassNotSupported);
    }
    if p1 != 0 || p2 != 0 {
        return Err(Error::WrongP1P2);
    }
    let data = cmd.data();
    match ins {
        INS_STORE_TICKET => {
            if data.len() != 48 {
                return Err(Error::WrongLength);
            }
            let (body, mac) = data.split_at(40);
            if !mac_eq(&cmac8(&state.delivery_key, &[b"TKT", body]), mac) {
                return Err(Error::MacInvalid);
            }
            let info = TicketInfo::parse(&body[..24])?;
            let mut gate = [0u8; 16];
            gate.copy_from_slice(&body[24..40]);
            let c = Aes128::new(&Array::from(*state.delivery_key.expose()));
            let mut a = Array::from(gate);
            c.decrypt_block(&mut a);
            let ticket = Ticket {
                info,
                gate_key: Key16::new(a.into()),
            };
            zeroize::Zeroize::zeroize(&mut gate);
            if let Some(existing) = state
                .tickets
                .iter()
                .flatten()
                .find(|t| t.info.id == info.id)
            {
                // A re-delivered ticket (lost response) is accepted without change.
                return if *existing == ticket {
                    Ok(())
                } else {
                    Err(Error::ConditionsNotSatisfied)
                };
            }
            let mut next = state.clone();
            let slot = next
                .tickets
                .iter_mut()
                .find(|t| t.is_none())
                .ok_or(Error::NotEnoughMemory)?;
            *slot = Some(ticket);
            *new_state = Some(next);
            Ok(())
        }
        INS_LIST_TICKETS => {
            if !data.is_empty() {
                return Err(Error::WrongLength);
            }
            for t in state.tickets.iter().flatten() {
                reply.push(&t.info.id)?;
            }
            Ok(())
        }
        INS_GATE_READ => {
            if data.len() != 20 {
                return Err(Error::WrongLength);
            }
            let mut r = Reader::new(data);
            let id: [u8; 8] = r.array()?;
            let challenge: [u8; 8] = r.array()?;
            let date: [u8; 4] = r.array()?;
            if !(DateTime { date, time: [0; 3] }).is_valid() {
                return Err(Error::IncorrectData);
            }
            let t = state
                .tickets
                .iter()
                .flatten()
                .find(|t| t.info.id == id)
                .ok_or(Error::ReferencedDataNotFound)?;
            if date < t.info.valid_from || date > t.info.valid_to {
                return Err(Error::ApplicationExpired);
            }
            let info = t.info.to_bytes();
            let mac = cmac8(&t.gate_key, &[b"GATE", &challenge, &date, &info]);
            reply.push(&info)?;
            reply.push(&mac)
        }
        _ => Err(Error::InsNotSupported),
    }
}

/// Issuer side: the STORE TICKET command delivering `ticket` under `delivery_key`.
#[must_use]
pub fn store_ticket_command(delivery_key: &Key16, ticket: &Ticket) -> Command {
    let c = Aes128::new(&Array::from(*delivery_key.expose()));
    let mut a = Array::from(*ticket.gate_key.expose());
    c.encrypt_block(&mut a);
    let enc: [u8; 16] = a.into();
    let mut body = Vec::with_capacity(48);
    body.extend_from_slice(&ticket.info.to_bytes());
    body.extend_from_slice(&enc);
    let mac = cmac8(delivery_key, &[b"TKT", &body]);
    body.extend_from_slice(&mac);
    Command::new(0x80, INS_STORE_TICKET, 0, 0).with_data(body)
}

/// Gate side: GATE READ for ticket `id` with a fresh `challenge` and today's `date`.
#[must_use]
pub fn gate_read_command(id: &[u8; 8], challenge: &[u8; 8], date: &[u8; 4]) -> Command {
    let mut body = Vec::with_capacity(20);
    body.extend_from_slice(id);
    body.extend_from_slice(challenge);
    body.extend_from_slice(date);
    Command::new(0x80, INS_GATE_READ, 0, 0)
        .with_data(body)
        .with_le(32)
}

/// Gate side: verify a GATE READ answer against the gate key, the challenge and the date the
/// gate sent; returns the ticket's public data.
///
/// # Errors
/// [`Error::Card`] for a non-9000 answer, [`Error::BadLength`], [`Error::MacInvalid`].
pub fn verify_gate_response(
    gate_key: &Key16,
    challenge: &[u8; 8],
    date: &[u8; 4],
    rsp: &ResponseView<'_>,
) -> Result<TicketInfo, Error> {
    if rsp.status() != StatusWord::SUCCESS {
        return Err(Error::Card(rsp.status()));
    }
    let d = rsp.data();
    if d.len() != 32 {
        return Err(Error::BadLength {
            expected: 32,
            actual: d.len(),
        });
    }
    let (info, mac) = d.split_at(24);
    if !mac_eq(&cmac8(gate_key, &[b"GATE", challenge, date, info]), mac) {
        return Err(Error::MacInvalid);
    }
    TicketInfo::parse(info)
}
