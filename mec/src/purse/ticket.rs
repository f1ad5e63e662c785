//! `mec purse ticket ...`: the e-ticket store hosted next to the purse (`epurse::ticket`,
//! `docs/value-tag.md`, "E-ticket store"): list the stored tickets, deliver a ticket (MACed and
//! its gate key enciphered under the store's delivery key), buy one (a purchase from the purse,
//! then the delivery), and a gate reader (a fresh random challenge per read, the answer's MAC
//! checked with the gate key: a recorded answer is refused).

use apdu_codec::{Command, ResponseView, StatusWord};
use clap::{Args, Subcommand};
use epurse::crypto::Key16;
use epurse::pboc::PurseKind;
use epurse::ticket::{self, Ticket, TicketInfo};

use super::terminal::{PurseError, Terminal};
use super::{
    PosArgs, format_day, format_receipt, now, parse_amount, parse_hex_exact, parse_key, parse_when,
};

/// Default AID of the ticket store instance.
pub(crate) const DEFAULT_STORE_AID: &str = "A000000647544B01";

/// The well-known TEST delivery key of the ticket store (the virtual SE's tests use it too).
/// Never on a real card.
const TEST_DELIVERY_KEY: [u8; 16] = [0x33; 16];
/// The well-known TEST gate key. Never on a real card.
const TEST_GATE_KEY: [u8; 16] = [0x44; 16];

/// `mec purse ticket [OPTIONS] <VERB>`
#[derive(Args, Debug)]
#[command(
    after_help = "The store is module F06D6563505502 of the e-purse load file; its INSTALL \
parameter is the 16-byte delivery key:\n  \
mec gp install --package F06D65635055 --applet F06D6563505502 --create A000000647544B01 \
--params $(mec purse ticket params)\n\
Keys default to well-known TEST keys (delivery 33..33, gate 44..44; never on a real card).\n\
Exit codes: 0 ok (gate: ACCEPT), 1 card refused (status word; gate: REFUSED by the card), \
2 usage, 3 MAC verification failed (gate: REFUSED, the answer does not verify), 4 answer lost \
and not settled, 5 reader/PC/SC."
)]
pub(crate) struct TicketArgs {
    /// The ticket store instance's AID.
    #[arg(long, value_name = "AID", global = true, default_value = DEFAULT_STORE_AID)]
    store_aid: String,
    /// The store's delivery key (16 bytes hex, AES-128). Default: the test key.
    #[arg(long, value_name = "HEX", global = true, value_parser = parse_key)]
    delivery_key: Option<Key16>,
    /// The operation.
    #[command(subcommand)]
    verb: TicketVerb,
}

/// A ticket as the issuer makes it.
#[derive(Args, Debug)]
pub(crate) struct TicketSpec {
    /// Ticket id: 8 ASCII characters or 16 hex digits.
    #[arg(long, value_name = "ID", value_parser = parse_id)]
    id: [u8; 8],
    /// Event id: 8 ASCII characters or 16 hex digits.
    #[arg(long, value_name = "ID", value_parser = parse_id)]
    event: [u8; 8],
    /// First valid day, YYYYMMDD.
    #[arg(long, value_name = "YYYYMMDD", value_parser = parse_day)]
    from: [u8; 4],
    /// Last valid day, YYYYMMDD.
    #[arg(long, value_name = "YYYYMMDD", value_parser = parse_day)]
    to: [u8; 4],
    /// The gate key of the event (16 bytes hex): delivered enciphered under the delivery key.
    /// Default: the test key.
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    gate_key: Option<Key16>,
}

/// The ticket verbs.
#[derive(Subcommand, Debug)]
pub(crate) enum TicketVerb {
    /// Print the store's INSTALL parameter (the delivery key, hex) for `mec gp install --params`.
    Params,
    /// LIST TICKETS: the ids of the stored tickets.
    List,
    /// STORE TICKET: deliver a ticket (MAC and enciphered gate key under the delivery key).
    #[command(
        after_help = "Example:\n  mec purse ticket deliver --id TKT00001 --event CONCERT1 \
--from 20261101 --to 20261130\n\
Delivering the same ticket again is accepted without change (so a lost answer is settled by \
sending it again); a different ticket with a stored id is refused (6985); a full store (8 \
tickets) answers 6A84."
    )]
    Deliver {
        #[command(flatten)]
        spec: TicketSpec,
    },
    /// Buy a ticket: a purchase from the EP (or with --wallet ed --pin, the ED) as POS with a
    /// software SAM, then the delivery of the ticket into the store.
    #[command(
        after_help = "Example:\n  mec purse ticket buy --amount 25 --id TKT00001 --event \
CONCERT1 --from 20261101 --to 20261130\n\
The ticket is delivered only after an approved purchase (also one settled after a lost DEBIT \
answer). If the delivery then fails, the receipt is printed and the delivery can be repeated \
with `mec purse ticket deliver` and the same ticket options: the purchase is never repeated."
    )]
    Buy {
        /// Price in currency units with up to 2 decimals.
        #[arg(long, value_parser = parse_amount)]
        amount: u32,
        #[command(flatten)]
        pos: PosArgs,
        #[command(flatten)]
        spec: TicketSpec,
    },
    /// A gate reader: GATE READ with a fresh random challenge and the date, the answer's MAC
    /// checked with the gate key; prints ACCEPT or REFUSED.
    #[command(
        after_help = "Example:\n  mec purse ticket gate --id TKT00001 --date 20261121\n\
Every read sends a new random challenge, so an answer recorded from an earlier read does not \
verify: `--replay-answer HEX` plays a recorded answer (the `Answer` line of an earlier read) \
against this read's challenge, as a cloned or relaying device would, and is REFUSED (exit 3)."
    )]
    Gate {
        /// Ticket id: 8 ASCII characters or 16 hex digits.
        #[arg(long, value_name = "ID", value_parser = parse_id)]
        id: [u8; 8],
        /// The event's gate key (16 bytes hex). Default: the test key.
        #[arg(long, value_name = "HEX", value_parser = parse_key)]
        gate_key: Option<Key16>,
        /// Today's date at the gate, YYYYMMDD (default: today, UTC).
        #[arg(long, value_name = "YYYYMMDD", value_parser = parse_day)]
        date: Option<[u8; 4]>,
        /// Verify this recorded answer (hex: ticket data and MAC, 32 bytes) instead of asking
        /// the card: what a replaying device would present.
        #[arg(long, value_name = "HEX")]
        replay_answer: Option<String>,
    },
}

fn parse_id(s: &str) -> Result<[u8; 8], String> {
    if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return parse_hex_exact::<8>(s, "id");
    }
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        let mut id = [0u8; 8];
        id.copy_from_slice(s.as_bytes());
        return Ok(id);
    }
    Err(format!(
        "\"{s}\": expected 8 ASCII characters or 16 hex digits"
    ))
}

fn parse_day(s: &str) -> Result<[u8; 4], String> {
    if s.len() != 8 {
        return Err(format!("\"{s}\": expected YYYYMMDD"));
    }
    parse_when(&format!("{s}000000")).map(|w| w.date)
}

/// An id as text when it is printable ASCII, else hex.
fn show_id(id: &[u8; 8]) -> String {
    if id.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        String::from_utf8_lossy(id).into_owned()
    } else {
        hex::encode_upper(id)
    }
}

/// What a ticket-store status word means (`docs/value-tag.md`).
pub(crate) fn ticket_hint(what: &str, sw: StatusWord) -> String {
    match u16::from(sw) {
        0x9302 if what.starts_with("STORE") => {
            ": the delivery MAC does not verify: wrong --delivery-key for this store (nothing stored)"
                .into()
        }
        0x6985 if what.starts_with("STORE") => {
            ": a different ticket with this id is already stored".into()
        }
        0x6985 => ": the ticket is not valid on this date".into(),
        0x6A84 => ": the store is full (8 tickets)".into(),
        0x6A88 => ": no ticket with this id in the store".into(),
        0x6A82 => ": no ticket store with this AID on the card (--store-aid; install it with \
                   `mec gp install --package F06D65635055 --applet F06D6563505502 ... --params \
                   $(mec purse ticket params)`)"
            .into(),
        _ => super::terminal::hint(sw),
    }
}

fn ticket_refused(what: &str, sw: StatusWord) -> PurseError {
    PurseError::Status {
        what: what.into(),
        sw,
        hint: ticket_hint(what, sw),
    }
}

fn warn_test_ticket_keys(keys: &[&Option<Key16>]) {
    if keys.iter().any(|k| k.is_none()) {
        eprintln!("mec purse: using the well-known TEST ticket keys (mec purse ticket --help)");
    }
}

fn key_or(key: &Option<Key16>, test: [u8; 16]) -> Key16 {
    key.clone().unwrap_or_else(|| Key16::new(test))
}

impl TicketSpec {
    fn ticket(&self) -> Result<Ticket, PurseError> {
        if self.from > self.to {
            return Err(PurseError::Usage("--from is after --to".into()));
        }
        Ok(Ticket {
            info: TicketInfo {
                id: self.id,
                event: self.event,
                valid_from: self.from,
                valid_to: self.to,
            },
            gate_key: key_or(&self.gate_key, TEST_GATE_KEY),
        })
    }
}

/// Run a ticket verb; `open` connects to the card (not needed by `params`).
pub(crate) fn execute(
    args: &TicketArgs,
    kind: PurseKind,
    purse_aid: &[u8],
    open: impl FnOnce() -> Result<Box<dyn crate::transport::Transport>, PurseError>,
    pin: Option<zeroize::Zeroizing<Vec<u8>>>,
) -> Result<String, PurseError> {
    let store =
        hex::decode(&args.store_aid).map_err(|e| PurseError::Usage(format!("--store-aid: {e}")))?;
    if !(5..=16).contains(&store.len()) {
        return Err(PurseError::Usage("--store-aid: 5 to 16 bytes".into()));
    }
    let delivery = key_or(&args.delivery_key, TEST_DELIVERY_KEY);
    match &args.verb {
        TicketVerb::Params => {
            warn_test_ticket_keys(&[&args.delivery_key]);
            return Ok(hex::encode_upper(delivery.expose()));
        }
        TicketVerb::Deliver { spec } | TicketVerb::Buy { spec, .. } => {
            warn_test_ticket_keys(&[&args.delivery_key, &spec.gate_key]);
            spec.ticket()?;
        }
        TicketVerb::Gate {
            gate_key,
            replay_answer,
            ..
        } => {
            warn_test_ticket_keys(&[gate_key]);
            if let Some(a) = replay_answer {
                hex::decode(a).map_err(|e| PurseError::Usage(format!("--replay-answer: {e}")))?;
            }
        }
        TicketVerb::List => {}
    }
    let mut link = open()?;
    let mut term = Terminal::new(link.as_mut(), purse_aid.to_vec()).with_pin(pin);
    match &args.verb {
        TicketVerb::Params => Ok(hex::encode_upper(delivery.expose())),
        TicketVerb::List => list(&mut term, &store),
        TicketVerb::Deliver { spec } => {
            let t = spec.ticket()?;
            deliver(&mut term, &store, &delivery, &t)
        }
        TicketVerb::Buy { amount, pos, spec } => {
            let t = spec.ticket()?;
            let receipt = format_receipt(&pos.purchase(&mut term, kind, *amount)?);
            match deliver(&mut term, &store, &delivery, &t) {
                Ok(d) => Ok(format!("{receipt}\n{d}")),
                Err(e) => {
                    println!("{receipt}");
                    Err(not_delivered(e))
                }
            }
        }
        TicketVerb::Gate {
            id,
            gate_key,
            date,
            replay_answer,
        } => gate(
            &mut term,
            &store,
            id,
            &key_or(gate_key, TEST_GATE_KEY),
            date.unwrap_or_else(|| now().date),
            replay_answer.as_deref(),
        ),
    }
}

/// A delivery that failed after a paid purchase: say how to finish it.
fn not_delivered(e: PurseError) -> PurseError {
    let more = "; the purchase above is paid and is not repeated: deliver the ticket with `mec \
                purse ticket deliver` and the same ticket options";
    match e {
        PurseError::Status { what, sw, hint } => PurseError::Status {
            what,
            sw,
            hint: format!("{hint}{more}"),
        },
        PurseError::Verification(m) => PurseError::Verification(format!("{m}{more}")),
        PurseError::Usage(m) => PurseError::Usage(format!("{m}{more}")),
        PurseError::Unknown(m) => PurseError::Unknown(format!("{m}{more}")),
        PurseError::Link(l) => PurseError::Unknown(format!("ticket store lost ({l}){more}")),
    }
}

fn select_store(term: &mut Terminal<'_>, store: &[u8]) -> Result<(), PurseError> {
    let (_, sw) = term.send(&Command::new(0x00, 0xA4, 0x04, 0x00).with_data(store.to_vec()))?;
    if sw == StatusWord::SUCCESS {
        Ok(())
    } else {
        Err(ticket_refused("SELECT ticket store", sw))
    }
}

fn list(term: &mut Terminal<'_>, store: &[u8]) -> Result<String, PurseError> {
    select_store(term, store)?;
    let (d, sw) = term.send(&Command::new(0x80, ticket::INS_LIST_TICKETS, 0, 0).with_le(0x100))?;
    if sw != StatusWord::SUCCESS {
        return Err(ticket_refused("LIST TICKETS", sw));
    }
    if d.len() % 8 != 0 {
        return Err(PurseError::Verification(format!(
            "LIST TICKETS answered {} bytes, not a multiple of 8",
            d.len()
        )));
    }
    let mut lines = vec![
        format!("{:<20}{}", "Ticket store", hex::encode_upper(store)),
        format!("{:<20}{}", "Tickets", d.len() / 8),
    ];
    for (n, id) in d.chunks_exact(8).enumerate() {
        let id = <[u8; 8]>::try_from(id).unwrap_or_default();
        lines.push(format!("{:>3}  {}", n + 1, show_id(&id)));
    }
    Ok(lines.join("\n"))
}

fn deliver(
    term: &mut Terminal<'_>,
    store: &[u8],
    delivery: &Key16,
    t: &Ticket,
) -> Result<String, PurseError> {
    let cmd = ticket::store_ticket_command(delivery, t);
    let mut note = "";
    let first = select_store(term, store).and_then(|()| term.send(&cmd));
    let sw = match first {
        Ok((_, sw)) => sw,
        Err(PurseError::Link(e)) => {
            // The store accepts the same ticket again without change: re-sending settles it.
            note = "\nSTORE TICKET answer lost: sent again (the store keeps a ticket once)";
            term.reconnect_then(|tm| {
                select_store(tm, store)?;
                tm.send(&cmd).map(|(_, sw)| sw)
            })
            .map_err(|r| {
                PurseError::Unknown(format!(
                    "STORE TICKET answer lost ({e}); {r}: deliver again (it is stored once)"
                ))
            })?
        }
        Err(other) => return Err(other),
    };
    if sw != StatusWord::SUCCESS {
        return Err(ticket_refused("STORE TICKET", sw));
    }
    Ok(format!(
        "STORE TICKET 9000: ticket {} for event {} valid {} to {} delivered to store {}{note}",
        show_id(&t.info.id),
        show_id(&t.info.event),
        format_day(&t.info.valid_from),
        format_day(&t.info.valid_to),
        hex::encode_upper(store)
    ))
}

fn gate(
    term: &mut Terminal<'_>,
    store: &[u8],
    id: &[u8; 8],
    gate_key: &Key16,
    date: [u8; 4],
    replay: Option<&str>,
) -> Result<String, PurseError> {
    let mut challenge = [0u8; 8];
    getrandom::fill(&mut challenge)
        .map_err(|e| PurseError::Usage(format!("no OS randomness for the challenge: {e}")))?;
    let (data, sw) = match replay {
        Some(hexed) => {
            let raw = hex::decode(hexed)
                .map_err(|e| PurseError::Usage(format!("--replay-answer: {e}")))?;
            (raw, StatusWord::SUCCESS)
        }
        None => {
            select_store(term, store)?;
            term.send(&ticket::gate_read_command(id, &challenge, &date))?
        }
    };
    if sw != StatusWord::SUCCESS {
        let mut e = ticket_refused("GATE READ", sw);
        if let PurseError::Status { hint, .. } = &mut e {
            hint.push_str(": REFUSED");
        }
        return Err(e);
    }
    let info = ticket::verify_gate_response(
        gate_key,
        &challenge,
        &date,
        &ResponseView::new(&data, sw),
    )
    .map_err(|e| {
        PurseError::Verification(format!(
            "GATE READ: REFUSED: the answer does not verify with the gate key over this read's \
                 challenge {} ({e}): a recorded, forged or other-event answer",
            hex::encode_upper(challenge)
        ))
    })?;
    if info.id != *id {
        return Err(PurseError::Verification(format!(
            "GATE READ: REFUSED: the answer is for ticket {}, not {}",
            show_id(&info.id),
            show_id(id)
        )));
    }
    Ok([
        format!("{:<28}{:>17}", "GATE", "ACCEPT"),
        format!("{:<20}{}", "Ticket", show_id(&info.id)),
        format!("{:<20}{}", "Event", show_id(&info.event)),
        format!(
            "{:<20}{} to {}",
            "Valid",
            format_day(&info.valid_from),
            format_day(&info.valid_to)
        ),
        format!("{:<20}{}", "Date", format_day(&date)),
        format!("{:<20}{}", "Challenge", hex::encode_upper(challenge)),
        format!("{:<20}{}", "Answer", hex::encode_upper(&data)),
        "MAC verified with the gate key over this read's fresh challenge".to_string(),
    ]
    .join("\n"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_days() {
        assert_eq!(&parse_id("TKT00001").unwrap(), b"TKT00001");
        assert_eq!(
            parse_id("0102030405060708").unwrap(),
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert!(parse_id("TKT0001").is_err());
        assert!(parse_id("TKT000011").is_err());
        assert_eq!(show_id(&[1, 2, 3, 4, 5, 6, 7, 8]), "0102030405060708");
        assert_eq!(parse_day("20261121").unwrap(), [0x20, 0x26, 0x11, 0x21]);
        assert!(parse_day("20261321").is_err());
        assert!(parse_day("2026112").is_err());
    }

    #[test]
    fn hints() {
        let mac = StatusWord::new(0x93, 0x02);
        assert!(ticket_hint("STORE TICKET", mac).contains("--delivery-key"));
        let cns = StatusWord::new(0x69, 0x85);
        assert!(ticket_hint("GATE READ", cns).contains("not valid on this date"));
        assert!(ticket_hint("STORE TICKET", cns).contains("different ticket"));
    }
}
