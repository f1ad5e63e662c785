//! The e-ticket store (second module of the e-purse load file) on the virtual SE: installed
//! through the GP card manager over SCP03 with its delivery key as install parameter, tickets
//! delivered with a MAC, a gate read answered with a MAC over the reader's challenge; the
//! tickets survive a power cycle.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod card_support;

use apdu_codec::ResponseView;
use card_support::*;
use epurse::crypto::Key16;
use epurse::ticket::{self, Ticket, TicketInfo};
use gp_scp::SecurityLevel;
use virtual_se::applet::{EPURSE_LOAD_FILE, EPURSE_TICKET_MODULE};

const STORE: &[u8] = &[0xA0, 0x00, 0x00, 0x06, 0x47, 0x54, 0x4B, 0x01];
const DELIVERY: [u8; 16] = [0x33; 16];

fn ticket() -> Ticket {
    Ticket {
        info: TicketInfo {
            id: *b"TKT00001",
            event: *b"CONCERT1",
            valid_from: [0x20, 0x26, 0x11, 0x01],
            valid_to: [0x20, 0x26, 0x11, 0x30],
        },
        gate_key: Key16::new([0x44; 16]),
    }
}

fn tx<S: virtual_se::store::Store>(
    card: &mut virtual_se::card::Card<S>,
    cmd: &apdu_codec::Command,
) -> (Vec<u8>, u16) {
    send(card, &cmd.to_vec().unwrap())
}

#[test]
fn install_deliver_and_gate_read() {
    let mut card = default_card();
    let mut host = open_scp03(&mut card, SecurityLevel::ALL);
    // Without (or with a malformed) delivery key INSTALL fails.
    let bad = apdu(
        0x80,
        0xE6,
        0x0C,
        0x00,
        &install_data(
            EPURSE_LOAD_FILE,
            EPURSE_TICKET_MODULE,
            STORE,
            &[0x00],
            &[0xC9, 0x00],
        ),
    );
    assert_eq!(host.send(&mut card, &bad).view().status().to_u16(), 0x6A80);
    let mut params = vec![0xC9, 0x10];
    params.extend_from_slice(&DELIVERY);
    let install = apdu(
        0x80,
        0xE6,
        0x0C,
        0x00,
        &install_data(
            EPURSE_LOAD_FILE,
            EPURSE_TICKET_MODULE,
            STORE,
            &[0x00],
            &params,
        ),
    );
    ok(host.send(&mut card, &install).view().status().to_u16());

    ok(tx(&mut card, &apdu(0x00, 0xA4, 0x04, 0x00, STORE)).1);
    let t = ticket();
    let mut forged = ticket::store_ticket_command(&Key16::new(DELIVERY), &t);
    forged.data[10] ^= 1;
    assert_eq!(tx(&mut card, &forged).1, 0x9302);
    ok(tx(
        &mut card,
        &ticket::store_ticket_command(&Key16::new(DELIVERY), &t),
    )
    .1);

    // The ticket survives a power cycle; the gate read verifies with the gate key.
    card.power_off();
    card.power_on();
    ok(tx(&mut card, &apdu(0x00, 0xA4, 0x04, 0x00, STORE)).1);
    let list = tx(&mut card, &apdu(0x80, ticket::INS_LIST_TICKETS, 0, 0, &[]));
    assert_eq!(list.0, b"TKT00001");
    let date = [0x20, 0x26, 0x11, 0x21];
    let challenge = [9u8; 8];
    let r = tx(
        &mut card,
        &ticket::gate_read_command(&t.info.id, &challenge, &date),
    );
    let view = ResponseView::new(&r.0, apdu_codec::StatusWord::from_u16(r.1));
    let info = ticket::verify_gate_response(&t.gate_key, &challenge, &date, &view).unwrap();
    assert_eq!(info, t.info);
    // A recorded read does not verify against another challenge.
    assert!(ticket::verify_gate_response(&t.gate_key, &[8u8; 8], &date, &view).is_err());
    // Outside the validity: refused.
    let r = tx(
        &mut card,
        &ticket::gate_read_command(&t.info.id, &challenge, &[0x20, 0x26, 0x12, 0x01]),
    );
    assert_ne!(r.1, 0x9000);
}
