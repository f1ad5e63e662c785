//! The value-block tag (AN10922 keys, AES challenge-response, decrement/increment/restore/
//! transfer, vouchers from the purse) and the e-ticket store.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

mod common;

use apdu_codec::{Command, StatusWord, parse_command};
use common::*;
use epurse::card::{Entropy, INS_MOVE_TO_TAG, Reply};
use epurse::crypto::Key16;
use epurse::danger;
use epurse::pboc::{self, PurseKind};
use epurse::tag::{self, TagReader, TagSession, TagState};
use epurse::ticket::{self, Ticket, TicketInfo, TicketSession, TicketState};

const TAG_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x06, 0x47, 0x54, 0x01];
const UID: [u8; 7] = [0x04, 0x78, 0x2E, 0x21, 0x80, 0x1D, 0x80];

struct Tag {
    state: TagState,
    session: TagSession,
    n: u8,
}

impl Tag {
    fn new() -> Self {
        let mut t = Tag {
            state: TagState::personalize(&TAG_AID, UID, &danger::test_tag_access().unwrap())
                .unwrap(),
            session: TagSession::new(),
            n: 0,
        };
        let r = t.send(&Command::new(0x00, 0xA4, 0x04, 0x00).with_data(TAG_AID.to_vec()));
        assert_eq!(r.status(), StatusWord::SUCCESS);
        t
    }

    fn send(&mut self, cmd: &Command) -> Reply {
        self.n = self.n.wrapping_add(1);
        let bytes = cmd.to_vec().unwrap();
        let view = parse_command(&bytes).unwrap();
        let out = tag::process(
            &self.state,
            &mut self.session,
            &view,
            &Entropy([self.n; 16]),
        );
        if let Some(next) = out.new_state {
            let bytes = next.to_bytes();
            self.state = TagState::from_bytes(&bytes).unwrap();
        }
        out.reply
    }
}

fn reader_for(block: u8) -> TagReader {
    let key = tag::sector_key(&danger::test_tag_access().unwrap(), &UID, block).unwrap();
    TagReader::new(key, block, [0x5A; 16])
}

fn authenticate(tag: &mut Tag, reader: &mut TagReader) -> StatusWord {
    let r = tag.send(&reader.authenticate().unwrap());
    if r.status() != StatusWord::SUCCESS {
        return r.status();
    }
    let r = tag.send(&reader.answer(r.data()).unwrap());
    if r.status() != StatusWord::SUCCESS {
        return r.status();
    }
    reader.confirm(r.data()).unwrap();
    StatusWord::SUCCESS
}

#[test]
fn value_block_format() {
    let b = tag::value_block(1234, 5);
    assert_eq!(
        b,
        [
            0xD2, 0x04, 0, 0, 0x2D, 0xFB, 0xFF, 0xFF, 0xD2, 0x04, 0, 0, 5, 0xFA, 5, 0xFA
        ]
    );
    assert_eq!(tag::parse_value_block(&b).unwrap(), (1234, 5));
    for i in 0..16 {
        let mut bad = b;
        bad[i] ^= 0x01;
        assert!(tag::parse_value_block(&bad).is_err(), "byte {i}");
    }
}

#[test]
fn authenticate_decrement_increment_restore_transfer() {
    let mut t = Tag::new();
    // Value comes in by voucher first (the tag starts at 0).
    let key = tag::sector_key(&danger::test_tag_access().unwrap(), &UID, 1).unwrap();
    let v = tag::voucher(&key, &UID, 1, 500, 0);
    let mut data = 500u32.to_be_bytes().to_vec();
    data.extend_from_slice(&v);
    let credit = Command::new(0x80, tag::INS_CREDIT_VOUCHER, 0, 1).with_data(data);
    assert_eq!(t.send(&credit).status(), StatusWord::SUCCESS);
    assert_eq!(t.state.value(1).unwrap(), 500);
    // The same voucher again: the counter moved on.
    assert_eq!(t.send(&credit).status(), StatusWord::MAC_INVALID);
    assert_eq!(t.state.value(1).unwrap(), 500);

    // Value commands need authentication of the block's sector.
    let mut reader = reader_for(1);
    let (cmd, _) = {
        let mut unauth = reader_for(1);
        assert!(unauth.command(tag::INS_DECREMENT, Some(1)).is_err());
        (
            Command::new(0x80, tag::INS_DECREMENT, 0, 1).with_data(vec![0; 12]),
            0,
        )
    };
    assert_eq!(
        t.send(&cmd).status(),
        StatusWord::SECURITY_STATUS_NOT_SATISFIED
    );
    assert_eq!(authenticate(&mut t, &mut reader), StatusWord::SUCCESS);

    let (cmd, c) = reader.command(tag::INS_READ, None).unwrap();
    let r = t.send(&cmd);
    let block = reader.check_response(c, r.data()).unwrap();
    assert_eq!(
        tag::parse_value_block(block.try_into().unwrap()).unwrap(),
        (500, 1)
    );

    let (cmd, c) = reader.command(tag::INS_DECREMENT, Some(120)).unwrap();
    let r = t.send(&cmd);
    reader.check_response(c, r.data()).unwrap();
    // Nothing written before TRANSFER.
    assert_eq!(t.state.value(1).unwrap(), 500);
    let (cmd, c) = reader.command(tag::INS_TRANSFER, None).unwrap();
    let r = t.send(&cmd);
    let written = reader.check_response(c, r.data()).unwrap();
    assert_eq!(
        tag::parse_value_block(written.try_into().unwrap())
            .unwrap()
            .0,
        380
    );
    assert_eq!(t.state.value(1).unwrap(), 380);

    // Decrement below zero is refused.
    let (cmd, _) = reader.command(tag::INS_DECREMENT, Some(381)).unwrap();
    assert_eq!(t.send(&cmd).status(), StatusWord::INSUFFICIENT_BALANCE);
    // Increment then restore (restore reloads the stored value into the buffer).
    let (cmd, _) = reader.command(tag::INS_INCREMENT, Some(20)).unwrap();
    assert_eq!(t.send(&cmd).status(), StatusWord::SUCCESS);
    let (cmd, _) = reader.command(tag::INS_RESTORE, None).unwrap();
    assert_eq!(t.send(&cmd).status(), StatusWord::SUCCESS);
    let (cmd, _) = reader.command(tag::INS_TRANSFER, None).unwrap();
    assert_eq!(t.send(&cmd).status(), StatusWord::SUCCESS);
    assert_eq!(t.state.value(1).unwrap(), 380);

    // A replayed (old-counter) command is rejected and ends the session.
    let (cmd, _) = reader.command(tag::INS_INCREMENT, Some(1)).unwrap();
    assert_eq!(t.send(&cmd).status(), StatusWord::SUCCESS);
    assert_eq!(t.send(&cmd).status(), StatusWord::MAC_INVALID);
    let (cmd, _) = reader.command(tag::INS_TRANSFER, None).unwrap();
    assert_eq!(
        t.send(&cmd).status(),
        StatusWord::SECURITY_STATUS_NOT_SATISFIED
    );
    assert_eq!(t.state.value(1).unwrap(), 380);

    // Another sector's block is not covered by this authentication.
    let mut reader = reader_for(1);
    authenticate(&mut t, &mut reader);
    let mut other = reader_for(4);
    let cmd = Command::new(0x80, tag::INS_READ, 0, 4).with_data(vec![0; 8]);
    assert_eq!(
        t.send(&cmd).status(),
        StatusWord::SECURITY_STATUS_NOT_SATISFIED
    );
    assert!(other.command(tag::INS_READ, None).is_err());
}

#[test]
fn wrong_key_fails_authentication() {
    let mut t = Tag::new();
    let mut reader = TagReader::new(Key16::new([7; 16]), 1, [1; 16]);
    assert_eq!(authenticate(&mut t, &mut reader), StatusWord::MAC_INVALID);
    // Sector keys differ per sector and per UID.
    let access = danger::test_tag_access().unwrap();
    let k1 = tag::sector_key(&access, &UID, 1).unwrap();
    assert_ne!(k1, tag::sector_key(&access, &UID, 4).unwrap());
    let mut uid2 = UID;
    uid2[6] ^= 1;
    assert_ne!(k1, tag::sector_key(&access, &uid2, 1).unwrap());
    assert!(tag::sector_key(&access, &UID, 3).is_err(), "sector trailer");
}

#[test]
fn purse_value_moves_to_the_tag() {
    let mut card = Card::personalized();
    let mut t = Tag::new();
    load(&mut card, PurseKind::Ep, 2_000).unwrap();
    let counter_cmd = Command::new(0x80, tag::INS_READ_COUNTER, 0, 2).with_le(4);
    let counter = t.send(&counter_cmd);
    let mut data = 750u32.to_be_bytes().to_vec();
    data.extend_from_slice(&UID);
    data.push(2);
    data.extend_from_slice(counter.data());
    data.extend_from_slice(&WHEN.date);
    data.extend_from_slice(&WHEN.time);
    let mv = Command::new(0x80, INS_MOVE_TO_TAG, 0, 0)
        .with_data(data)
        .with_le(10);
    // The cardholder must authorize with the PIN.
    assert_eq!(
        card.send(&mv).status(),
        StatusWord::SECURITY_STATUS_NOT_SATISFIED
    );
    card.verify_pin(&danger::TEST_PIN);
    // The MOVE answer is lost after the commit; the voucher is recovered by TRANSACTION PROVE.
    assert!(card.send_with(&mv, Fate::LoseResponse).is_none());
    assert_eq!(card.balance(PurseKind::Ep), 1_250);
    card.select();
    let r = card.send(&pboc::get_transaction_prove(pboc::TYPE_EP_TO_TAG, 0));
    assert_eq!(r.status(), StatusWord::SUCCESS);
    let voucher = r.data().to_vec();
    let mut data = 750u32.to_be_bytes().to_vec();
    data.extend_from_slice(&voucher);
    let credit = Command::new(0x80, tag::INS_CREDIT_VOUCHER, 0, 2).with_data(data);
    assert_eq!(t.send(&credit).status(), StatusWord::SUCCESS);
    assert_eq!(t.state.value(2).unwrap(), 750);
    // Presented twice, credited once.
    assert_eq!(t.send(&credit).status(), StatusWord::MAC_INVALID);
    assert_eq!(t.state.value(2).unwrap(), 750);
    // Money conserved across purse and tag.
    assert_eq!(
        i64::from(card.balance(PurseKind::Ep)) + i64::from(t.state.value(2).unwrap()),
        2_000
    );
    // More than the balance cannot be moved.
    card.verify_pin(&danger::TEST_PIN);
    let mut data = 1_251u32.to_be_bytes().to_vec();
    data.extend_from_slice(&UID);
    data.push(2);
    data.extend_from_slice(&1u32.to_be_bytes());
    data.extend_from_slice(&WHEN.date);
    data.extend_from_slice(&WHEN.time);
    let mv = Command::new(0x80, INS_MOVE_TO_TAG, 0, 0).with_data(data);
    assert_eq!(card.send(&mv).status(), StatusWord::INSUFFICIENT_BALANCE);
}

#[test]
fn tag_state_encoding() {
    let t = Tag::new();
    let mut bytes = t.state.to_bytes();
    assert_eq!(TagState::from_bytes(&bytes).unwrap(), t.state);
    bytes[20] ^= 4;
    assert!(TagState::from_bytes(&bytes).is_err());
}

const TICKET_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x06, 0x47, 0x54, 0x02];

fn ticket_fixture() -> (Key16, Ticket) {
    let delivery = Key16::new([0x33; 16]);
    let t = Ticket {
        info: TicketInfo {
            id: *b"TKT00001",
            event: *b"CONCERT1",
            valid_from: [0x20, 0x25, 0x06, 0x01],
            valid_to: [0x20, 0x25, 0x06, 0x30],
        },
        gate_key: Key16::new([0x44; 16]),
    };
    (delivery, t)
}

fn send_ticket(state: &mut TicketState, session: &mut TicketSession, cmd: &Command) -> Reply {
    let bytes = cmd.to_vec().unwrap();
    let view = parse_command(&bytes).unwrap();
    let out = ticket::process(state, session, &view, &Entropy::default());
    if let Some(next) = out.new_state {
        *state = TicketState::from_bytes(&next.to_bytes()).unwrap();
    }
    out.reply
}

#[test]
fn ticket_store_and_gate_read() {
    let (delivery, t) = ticket_fixture();
    let mut state = TicketState::new(&TICKET_AID, delivery.clone()).unwrap();
    let mut s = TicketSession::new();
    let sel = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(TICKET_AID.to_vec());
    assert_eq!(
        send_ticket(&mut state, &mut s, &sel).status(),
        StatusWord::SUCCESS
    );

    // Delivery with a wrong MAC, then right (twice: idempotent).
    let mut bad = ticket::store_ticket_command(&delivery, &t);
    bad.data[10] ^= 1;
    assert_eq!(
        send_ticket(&mut state, &mut s, &bad).status(),
        StatusWord::MAC_INVALID
    );
    let good = ticket::store_ticket_command(&delivery, &t);
    assert_eq!(
        send_ticket(&mut state, &mut s, &good).status(),
        StatusWord::SUCCESS
    );
    assert_eq!(
        send_ticket(&mut state, &mut s, &good).status(),
        StatusWord::SUCCESS
    );
    assert_eq!(state.tickets().count(), 1);
    let list = send_ticket(
        &mut state,
        &mut s,
        &Command::new(0x80, ticket::INS_LIST_TICKETS, 0, 0),
    );
    assert_eq!(list.data(), b"TKT00001");

    // Gate read: fresh challenge, verified with the gate key.
    let date = [0x20, 0x25, 0x06, 0x15];
    let challenge = [9u8; 8];
    let r = send_ticket(
        &mut state,
        &mut s,
        &ticket::gate_read_command(&t.info.id, &challenge, &date),
    );
    let info = ticket::verify_gate_response(&t.gate_key, &challenge, &date, &r.view()).unwrap();
    assert_eq!(info, t.info);
    // A recorded answer does not verify against another challenge.
    assert_eq!(
        ticket::verify_gate_response(&t.gate_key, &[8u8; 8], &date, &r.view()).unwrap_err(),
        epurse::Error::MacInvalid
    );
    // Outside the validity window; unknown ticket.
    let r = send_ticket(
        &mut state,
        &mut s,
        &ticket::gate_read_command(&t.info.id, &challenge, &[0x20, 0x25, 0x07, 0x01]),
    );
    assert_eq!(r.status(), StatusWord::CONDITIONS_NOT_SATISFIED);
    let r = send_ticket(
        &mut state,
        &mut s,
        &ticket::gate_read_command(b"NOSUCHTK", &challenge, &date),
    );
    assert_eq!(r.status(), StatusWord::REFERENCED_DATA_NOT_FOUND);
    // Full store.
    for i in 1..8u8 {
        let mut more = t.clone();
        more.info.id[7] = b'1' + i;
        let cmd = ticket::store_ticket_command(&delivery, &more);
        assert_eq!(
            send_ticket(&mut state, &mut s, &cmd).status(),
            StatusWord::SUCCESS
        );
    }
    let mut extra = t.clone();
    extra.info.id = *b"TKT99999";
    let cmd = ticket::store_ticket_command(&delivery, &extra);
    assert_eq!(
        send_ticket(&mut state, &mut s, &cmd).status(),
        StatusWord::NOT_ENOUGH_MEMORY
    );
}

mod conservation {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, Copy)]
    enum TagOp {
        /// Move value from the purse; `lose` drops the purse's answer after its commit.
        Move { amount: u32, lose: bool },
        /// Spend from the tag (decrement + transfer); `tear` drops the transfer's new state.
        Spend { amount: i32, tear: bool },
        /// Present the last voucher again.
        Replay,
    }

    fn tag_op() -> impl Strategy<Value = TagOp> {
        prop_oneof![
            (1u32..3_000, any::<bool>()).prop_map(|(amount, lose)| TagOp::Move { amount, lose }),
            (1i32..3_000, any::<bool>()).prop_map(|(amount, tear)| TagOp::Spend { amount, tear }),
            Just(TagOp::Replay),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// Purse balance + tag value + value spent from the tag = value loaded, whatever
        /// answers are lost and transfers torn; no voucher credits twice.
        #[test]
        fn value_is_conserved_between_purse_and_tag(ops in proptest::collection::vec(tag_op(), 1..40)) {
            let mut card = Card::personalized();
            let mut t = Tag::new();
            load(&mut card, PurseKind::Ep, 20_000).unwrap();
            let mut spent: i64 = 0;
            let mut last_credit: Option<Command> = None;
            const BLOCK: u8 = 5;
            for op in ops {
                match op {
                    TagOp::Move { amount, lose } => {
                        card.verify_pin(&danger::TEST_PIN);
                        let counter = t.send(&Command::new(0x80, tag::INS_READ_COUNTER, 0, BLOCK).with_le(4));
                        let mut data = amount.to_be_bytes().to_vec();
                        data.extend_from_slice(&UID);
                        data.push(BLOCK);
                        data.extend_from_slice(counter.data());
                        data.extend_from_slice(&WHEN.date);
                        data.extend_from_slice(&WHEN.time);
                        let atc = card.state.account(PurseKind::Ep).offline_atc;
                        let mv = Command::new(0x80, INS_MOVE_TO_TAG, 0, 0).with_data(data);
                        let fate = if lose { Fate::LoseResponse } else { Fate::Normal };
                        let voucher = match card.send_with(&mv, fate) {
                            Some(r) if r.status() == StatusWord::SUCCESS => Some(r.data()[2..].to_vec()),
                            Some(_) => None,
                            None => {
                                card.select();
                                let r = card.send(&pboc::get_transaction_prove(pboc::TYPE_EP_TO_TAG, atc));
                                (r.status() == StatusWord::SUCCESS).then(|| r.data().to_vec())
                            }
                        };
                        if let Some(v) = voucher {
                            let mut data = amount.to_be_bytes().to_vec();
                            data.extend_from_slice(&v);
                            let credit = Command::new(0x80, tag::INS_CREDIT_VOUCHER, 0, BLOCK).with_data(data);
                            prop_assert_eq!(t.send(&credit).status(), StatusWord::SUCCESS);
                            last_credit = Some(credit);
                        }
                    }
                    TagOp::Spend { amount, tear } => {
                        let mut reader = reader_for(BLOCK);
                        prop_assert_eq!(authenticate(&mut t, &mut reader), StatusWord::SUCCESS);
                        let (cmd, _) = reader.command(tag::INS_DECREMENT, Some(amount)).unwrap();
                        if t.send(&cmd).status() != StatusWord::SUCCESS {
                            continue;
                        }
                        let (cmd, _) = reader.command(tag::INS_TRANSFER, None).unwrap();
                        let bytes = cmd.to_vec().unwrap();
                        let view = parse_command(&bytes).unwrap();
                        let out = tag::process(&t.state, &mut t.session, &view, &Entropy([0; 16]));
                        prop_assert_eq!(out.reply.status(), StatusWord::SUCCESS);
                        if tear {
                            // Power cut before the commit: the runtime drops the new state,
                            // and after power-on the tag is selected again.
                            t.session.reset();
                            let sel = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(TAG_AID.to_vec());
                            prop_assert_eq!(t.send(&sel).status(), StatusWord::SUCCESS);
                        } else {
                            t.state = out.new_state.unwrap();
                            spent += i64::from(amount);
                        }
                    }
                    TagOp::Replay => {
                        if let Some(c) = &last_credit {
                            prop_assert_eq!(t.send(c).status(), StatusWord::MAC_INVALID);
                        }
                    }
                }
                let total = i64::from(card.balance(PurseKind::Ep))
                    + i64::from(t.state.value(BLOCK).unwrap())
                    + spent;
                prop_assert_eq!(total, 20_000);
            }
        }
    }
}
