//! `mec purse tag ...`: the value-block tag hosted next to the purse (`epurse::tag`,
//! `docs/value-tag.md`): its values read after the AES authentication with the sector key
//! (AN10922-diversified from the tag UID), value moved from the purse with the purse as
//! gatekeeper (MOVE TO TAG, then CREDIT VOUCHER), and a transit gate's DECREMENT + TRANSFER.
//!
//! Value moves exactly once: the voucher the purse answers is bound to the tag's voucher
//! counter, so presenting it again after a lost answer can credit at most once; the purse keeps
//! it as the prove record of its MOVE (GET TRANSACTION PROVE type `09`), so a power cut between
//! the debit and the credit loses nothing: `mec purse tag resume` presents it later.

use apdu_codec::{Command, StatusWord};
use clap::{Args, Subcommand};
use epurse::card::TagAccess;
use epurse::crypto::Key16;
use epurse::pboc::{self, DateTime, PurseKind};
use epurse::tag::{self, TagReader, UID_LEN};

use super::terminal::{PurseError, Terminal};
use super::{
    format_amount, format_when, now, parse_amount, parse_hex_exact, parse_key, parse_when,
};

/// Default AID of the tag instance (the one `docs/value-tag.md`'s examples install).
pub(crate) const DEFAULT_TAG_AID: &str = "A000000647565401";

/// `mec purse tag [OPTIONS] <VERB>`
#[derive(Args, Debug)]
#[command(
    after_help = "The tag is module F06D6563505503 of the e-purse load file; install it with its \
UID and AN10922 access data as install parameters:\n  \
mec gp install --package F06D65635055 --applet F06D6563505503 --create A000000647565401 \
--params $(mec purse tag --uid 04527A9A3C1180 params)\n\
The purse must be personalized with the same tag access data (`mec purse perso-data` emits DGI 0401 \
from its --tag-master-key, --tag-an10922-aid and --tag-system-id).\n\
Keys default to the well-known TEST tag master key of epurse::danger (never on a real card).\n\
Exit codes: 0 ok, 1 card refused (status word), 2 usage, 3 MAC/voucher verification failed, \
4 answer lost and the transfer did not complete (or could not be settled: the message says how \
to finish it), 5 reader/PC/SC."
)]
pub(crate) struct TagArgs {
    /// The tag's UID (7 bytes hex): the tag does not reveal it over APDUs; it is the
    /// diversification input of the sector keys and bound into every voucher.
    #[arg(long, value_name = "HEX", global = true, value_parser = parse_uid)]
    uid: Option<[u8; UID_LEN]>,
    /// The tag instance's AID.
    #[arg(long, value_name = "AID", global = true, default_value = DEFAULT_TAG_AID)]
    tag_aid: String,
    /// The issuer's AN10922 tag master key (16 bytes hex). Default: the test key.
    #[arg(long, value_name = "HEX", global = true, value_parser = parse_key)]
    tag_master_key: Option<Key16>,
    /// AN10922 application identifier (3 bytes hex) in the diversification input.
    #[arg(long, value_name = "HEX", global = true, default_value = "3042F5")]
    an10922_aid: String,
    /// AN10922 system identifier (0 to 21 bytes hex; default "MEC TAG").
    #[arg(
        long,
        value_name = "HEX",
        global = true,
        default_value = "4D454320544147"
    )]
    system_id: String,
    /// The operation.
    #[command(subcommand)]
    verb: TagVerb,
}

/// The tag verbs.
#[derive(Subcommand, Debug)]
pub(crate) enum TagVerb {
    /// Print the tag's INSTALL parameters (hex, for `mec gp install --params`):
    /// UID || tag master key || AN10922 AID || system identifier.
    Params,
    /// Authenticate each sector with its AN10922 key and show every value block (value,
    /// address, integrity) and its voucher counter.
    #[command(after_help = "Example:\n  mec purse tag --uid 04527A9A3C1180 show\n\
A block whose copies disagree is shown as INVALID and makes the verb exit 3.")]
    Show {
        /// Only this block (0..=14, not a sector trailer 3, 7, 11).
        #[arg(long)]
        block: Option<u8>,
    },
    /// Move value from the EP to a tag block, the purse as gatekeeper (needs --pin): READ
    /// VOUCHER COUNTER on the tag, VERIFY + MOVE TO TAG on the purse (debits the EP, answers
    /// the voucher), CREDIT VOUCHER on the tag.
    #[command(
        after_help = "Example:\n  mec purse --pin 123456 tag --uid 04527A9A3C1180 move --amount 7.50 --block 1\n\
A lost MOVE answer is settled with GET BALANCE, the purse log and GET TRANSACTION PROVE type 09 \
(the voucher), never by a second MOVE; a lost CREDIT answer by re-reading the tag's voucher \
counter (the voucher is bound to it: it credits once). If the tag cannot be reached after the \
debit, the voucher stays provable on the purse: finish with `mec purse tag resume --atc N`."
    )]
    Move {
        /// Amount in currency units with up to 2 decimals.
        #[arg(long, value_parser = parse_amount)]
        amount: u32,
        /// The tag block to credit.
        #[arg(long, default_value_t = 1)]
        block: u8,
        /// Date and time of the transaction, YYYYMMDDhhmmss (default: now, UTC).
        #[arg(long, value_name = "YYYYMMDDhhmmss", value_parser = parse_when)]
        when: Option<DateTime>,
    },
    /// Finish a move whose credit never reached the tag (terminal or power lost after MOVE TO
    /// TAG): the voucher from the purse (GET TRANSACTION PROVE type 09), presented to the tag
    /// unless the tag already took it.
    #[command(
        after_help = "Example:\n  mec purse tag --uid 04527A9A3C1180 resume --atc 3 --block 1\n\
The ATC is the purse's offline ATC of the move (`mec purse log`, type \"EP to tag\"). The voucher \
is matched against the tag's voucher counter with the sector key: it is presented only when it is \
for the counter the tag has now, so it never credits twice."
    )]
    Resume {
        /// Offline ATC of the MOVE TO TAG (decimal).
        #[arg(long)]
        atc: u16,
        /// The tag block the move was for.
        #[arg(long, default_value_t = 1)]
        block: u8,
    },
    /// Spend from a tag block as a transit gate: authenticate, READ, DECREMENT, TRANSFER
    /// (the only write), every answer MAC checked with the session key.
    #[command(
        after_help = "Example:\n  mec purse tag --uid 04527A9A3C1180 decrement --amount 2.40 --block 1\n\
More than the block holds is refused by the tag (9401) and changes nothing. A lost TRANSFER \
answer is settled by authenticating again and reading the block, never by a second TRANSFER."
    )]
    Decrement {
        /// Amount in currency units with up to 2 decimals.
        #[arg(long, value_parser = parse_amount)]
        amount: u32,
        /// The tag block to debit.
        #[arg(long, default_value_t = 1)]
        block: u8,
    },
}

fn parse_uid(s: &str) -> Result<[u8; UID_LEN], String> {
    parse_hex_exact::<UID_LEN>(s, "UID")
}

/// What a tag status word means (`docs/value-tag.md`), for the command `what`.
pub(crate) fn tag_hint(what: &str, sw: StatusWord) -> String {
    match u16::from(sw) {
        0x9302 if what.starts_with("AUTHENTICATE") => {
            ": wrong key: the sector key diversified from --tag-master-key, --uid, --an10922-aid \
             and --system-id is not this tag's (nothing changed)"
                .into()
        }
        0x9302 if what.starts_with("CREDIT VOUCHER") => {
            ": the tag refuses the voucher: it is not for this tag's UID, block and current \
             voucher counter (already credited, or made for another tag or counter)"
                .into()
        }
        0x9302 => ": the tag rejects the command MAC; the session ended (nothing changed)".into(),
        0x9401 if what.starts_with("MOVE") => {
            ": the EP holds less than the amount (nothing moved)".into()
        }
        0x9401 => ": the block holds less than the amount (nothing changed)".into(),
        0x9402 => ": the purse's offline ATC is exhausted".into(),
        0x9501 => ": the block would overflow (nothing changed)".into(),
        0x6400 => ": the block's value copies disagree: the value block is corrupt".into(),
        0x6982 if what.starts_with("MOVE") => {
            ": moving value off the purse needs the cardholder PIN (--pin)".into()
        }
        0x6982 => ": not authenticated for this block's sector".into(),
        0x6A82 => ": no tag with this AID on the card (--tag-aid; install it with `mec gp \
                   install --package F06D65635055 --applet F06D6563505503 ... --params $(mec purse \
                   tag --uid UID params)`)"
            .into(),
        0x6A86 => ": not a value block (0..=14 without the sector trailers 3, 7, 11)".into(),
        0x6A88 if what.starts_with("MOVE") => {
            ": the purse holds no tag access data (personalize it with DGI 0401: `mec purse \
             perso-data` emits it)"
                .into()
        }
        0x6985 if what.starts_with("MOVE") => {
            ": the purse is blocked or outside its validity dates".into()
        }
        _ => super::terminal::hint(sw),
    }
}

fn tag_refused(what: &str, sw: StatusWord) -> PurseError {
    PurseError::Status {
        what: what.into(),
        sw,
        hint: tag_hint(what, sw),
    }
}

/// The tag options resolved.
struct TagCtx {
    uid: [u8; UID_LEN],
    aid: Vec<u8>,
    access: TagAccess,
}

impl TagCtx {
    fn key(&self, block: u8) -> Result<Key16, PurseError> {
        if tag::sector_of(block).is_none() {
            return Err(PurseError::Usage(format!(
                "--block {block}: not a value block (0..=14 without the sector trailers 3, 7, 11)"
            )));
        }
        tag::sector_key(&self.access, &self.uid, block)
            .map_err(|e| PurseError::Usage(format!("sector key: {e}")))
    }
}

fn tag_access(args: &TagArgs) -> Result<TagAccess, PurseError> {
    let aid =
        parse_hex_exact::<3>(&args.an10922_aid, "--an10922-aid").map_err(PurseError::Usage)?;
    let si =
        hex::decode(&args.system_id).map_err(|e| PurseError::Usage(format!("--system-id: {e}")))?;
    let master = args
        .tag_master_key
        .clone()
        .unwrap_or_else(epurse::danger::test_tag_master_key);
    TagAccess::new(master, aid, &si)
        .map_err(|_| PurseError::Usage("--system-id: at most 21 bytes".into()))
}

/// The tag's INSTALL parameters (`docs/value-tag.md`, "Hosted by the virtual SE").
fn install_params(uid: &[u8; UID_LEN], access: &TagAccess) -> String {
    let mut p = uid.to_vec();
    p.extend_from_slice(access.master.expose());
    p.extend_from_slice(&access.aid);
    p.extend_from_slice(access.system_identifier());
    hex::encode_upper(p)
}

fn warn_test_tag_key(args: &TagArgs) {
    if args.tag_master_key.is_none() {
        eprintln!("mec purse: using the well-known TEST tag master key (epurse::danger)");
    }
}

/// Run a tag verb. `term` is opened lazily: `params` touches no card.
pub(crate) fn execute(
    args: &TagArgs,
    purse_aid: &[u8],
    wallet_ed: bool,
    has_pin: bool,
    open: impl FnOnce() -> Result<Box<dyn crate::transport::Transport>, PurseError>,
    pin: Option<zeroize::Zeroizing<Vec<u8>>>,
) -> Result<String, PurseError> {
    let uid = args
        .uid
        .ok_or_else(|| PurseError::Usage("--uid: the tag's UID (7 bytes hex) is needed".into()))?;
    let aid =
        hex::decode(&args.tag_aid).map_err(|e| PurseError::Usage(format!("--tag-aid: {e}")))?;
    if !(5..=16).contains(&aid.len()) {
        return Err(PurseError::Usage("--tag-aid: 5 to 16 bytes".into()));
    }
    let access = tag_access(args)?;
    warn_test_tag_key(args);
    let ctx = TagCtx { uid, aid, access };
    if let TagVerb::Params = args.verb {
        return Ok(install_params(&ctx.uid, &ctx.access));
    }
    if let TagVerb::Move { .. } = args.verb
        && wallet_ed
    {
        return Err(PurseError::Usage(
            "move: value moves to the tag from the EP only (drop --wallet ed)".into(),
        ));
    }
    if let TagVerb::Move { .. } = args.verb
        && !has_pin
    {
        return Err(PurseError::Usage(
            "move: the purse moves value off only after VERIFY: give --pin".into(),
        ));
    }
    // Check the block before touching the card.
    match &args.verb {
        TagVerb::Show { block: Some(b) }
        | TagVerb::Move { block: b, .. }
        | TagVerb::Resume { block: b, .. }
        | TagVerb::Decrement { block: b, .. } => {
            ctx.key(*b)?;
        }
        _ => {}
    }
    let mut link = open()?;
    let mut term = Terminal::new(link.as_mut(), purse_aid.to_vec()).with_pin(pin);
    match &args.verb {
        TagVerb::Params => Ok(install_params(&ctx.uid, &ctx.access)),
        TagVerb::Show { block } => show(&mut term, &ctx, *block),
        TagVerb::Move {
            amount,
            block,
            when,
        } => move_value(
            &mut term,
            &ctx,
            purse_aid,
            *amount,
            *block,
            when.unwrap_or_else(now),
        ),
        TagVerb::Resume { atc, block } => resume(&mut term, &ctx, *atc, *block),
        TagVerb::Decrement { amount, block } => decrement(&mut term, &ctx, *amount, *block),
    }
}

fn select_tag(term: &mut Terminal<'_>, ctx: &TagCtx) -> Result<(), PurseError> {
    let select = Command::new(0x00, 0xA4, 0x04, 0x00).with_data(ctx.aid.clone());
    let (_, sw) = term.send(&select)?;
    if sw == StatusWord::SUCCESS {
        Ok(())
    } else {
        Err(tag_refused("SELECT tag", sw))
    }
}

fn tag_expect(term: &mut Terminal<'_>, what: &str, cmd: &Command) -> Result<Vec<u8>, PurseError> {
    let (d, sw) = term.send(cmd)?;
    if sw == StatusWord::SUCCESS {
        Ok(d)
    } else {
        Err(tag_refused(what, sw))
    }
}

/// READ VOUCHER COUNTER `80 C6 00 block 04` (public).
fn read_counter(term: &mut Terminal<'_>, block: u8) -> Result<u32, PurseError> {
    let cmd = Command::new(tag::CLA_TAG, tag::INS_READ_COUNTER, 0, block).with_le(4);
    let d = tag_expect(term, &format!("READ VOUCHER COUNTER block {block}"), &cmd)?;
    let c = <[u8; 4]>::try_from(d.as_slice()).map_err(|_| {
        PurseError::Verification(format!(
            "READ VOUCHER COUNTER answered {} bytes, expected 4",
            d.len()
        ))
    })?;
    Ok(u32::from_be_bytes(c))
}

fn random16() -> Result<[u8; 16], PurseError> {
    let mut r = [0u8; 16];
    getrandom::fill(&mut r)
        .map_err(|e| PurseError::Usage(format!("no OS randomness for RndA: {e}")))?;
    Ok(r)
}

/// The two-step AES authentication of `block`'s sector; the reader holds the session.
fn authenticate(term: &mut Terminal<'_>, ctx: &TagCtx, block: u8) -> Result<TagReader, PurseError> {
    let mut reader = TagReader::new(ctx.key(block)?, block, random16()?);
    let sector = tag::sector_of(block).unwrap_or(0);
    let what = format!("AUTHENTICATE sector {sector}");
    let first = reader
        .authenticate()
        .map_err(|e| PurseError::Usage(format!("{what}: {e}")))?;
    let enc_b = tag_expect(term, &what, &first)?;
    let second = reader
        .answer(&enc_b)
        .map_err(|e| PurseError::Verification(format!("{what}: {e}")))?;
    let enc_a = tag_expect(term, &format!("{what} (second step)"), &second)?;
    reader.confirm(&enc_a).map_err(|e| {
        PurseError::Verification(format!(
            "{what}: the tag's answer does not verify ({e}): not a tag holding this key"
        ))
    })?;
    Ok(reader)
}

fn ins_name(ins: u8) -> &'static str {
    match ins {
        tag::INS_READ => "READ VALUE",
        tag::INS_DECREMENT => "DECREMENT",
        tag::INS_INCREMENT => "INCREMENT",
        tag::INS_RESTORE => "RESTORE",
        tag::INS_TRANSFER => "TRANSFER",
        _ => "tag command",
    }
}

/// A MACed value command; returns the answer data with its response MAC checked.
fn value_command(
    term: &mut Terminal<'_>,
    reader: &mut TagReader,
    block: u8,
    ins: u8,
    operand: Option<i32>,
) -> Result<Vec<u8>, PurseError> {
    let what = format!("{} block {block}", ins_name(ins));
    let (cmd, counter) = reader
        .command(ins, operand)
        .map_err(|e| PurseError::Usage(format!("{what}: {e}")))?;
    let d = tag_expect(term, &what, &cmd)?;
    reader
        .check_response(counter, &d)
        .map(<[u8]>::to_vec)
        .map_err(|e| {
            PurseError::Verification(format!(
                "{what}: the answer's MAC does not verify with the session key ({e})"
            ))
        })
}

/// A value block's content as read: `Ok(value)` or why it is not a valid value block.
fn parse_block(block: u8, data: &[u8]) -> Result<i32, String> {
    let b = <[u8; 16]>::try_from(data).map_err(|_| format!("{} bytes, expected 16", data.len()))?;
    match tag::parse_value_block(&b) {
        Ok((v, addr)) if addr == block => Ok(v),
        Ok((_, addr)) => Err(format!("address byte {addr}, expected {block}")),
        Err(_) => Err("the value copies disagree (corrupt value block)".into()),
    }
}

fn read_value(
    term: &mut Terminal<'_>,
    reader: &mut TagReader,
    block: u8,
) -> Result<i32, PurseError> {
    let d = value_command(term, reader, block, tag::INS_READ, None)?;
    parse_block(block, &d).map_err(|e| PurseError::Verification(format!("block {block}: {e}")))
}

fn show(term: &mut Terminal<'_>, ctx: &TagCtx, only: Option<u8>) -> Result<String, PurseError> {
    select_tag(term, ctx)?;
    let blocks: Vec<u8> = match only {
        Some(b) => vec![b],
        None => (0..u8::try_from(tag::BLOCKS).unwrap_or(16))
            .filter(|b| tag::sector_of(*b).is_some())
            .collect(),
    };
    let mut lines = vec![
        format!("{:<20}{}", "Tag", hex::encode_upper(&ctx.aid)),
        format!("{:<20}{}", "UID", hex::encode_upper(ctx.uid)),
        format!(
            "{:>5}  {:>6}  {:>14}  {:>8}  {}",
            "block", "sector", "value", "vouchers", "block data"
        ),
    ];
    let mut bad = Vec::new();
    for b in blocks {
        let sector = tag::sector_of(b).unwrap_or(0);
        let counter = read_counter(term, b)?;
        // A TagReader is bound to one block (its commands carry it as P2): one authentication
        // per block.
        let mut r = authenticate(term, ctx, b)?;
        let d = value_command(term, &mut r, b, tag::INS_READ, None)?;
        let value = match parse_block(b, &d) {
            Ok(v) => format_amount(i64::from(v)),
            Err(e) => {
                bad.push(format!("block {b}: {e}"));
                "INVALID".into()
            }
        };
        lines.push(format!(
            "{b:>5}  {sector:>6}  {value:>14}  {counter:>8}  {}",
            hex::encode_upper(&d)
        ));
    }
    lines.push("Every answer's MAC verified with the session key".into());
    if bad.is_empty() {
        Ok(lines.join("\n"))
    } else {
        println!("{}", lines.join("\n"));
        Err(PurseError::Verification(format!(
            "value block integrity: {}",
            bad.join("; ")
        )))
    }
}

/// MOVE TO TAG `80 56 00 00 17 amount(4) UID(7) block(1) counter(4) date(4) time(3)`.
fn move_command(
    amount: u32,
    uid: &[u8; UID_LEN],
    block: u8,
    counter: u32,
    when: &DateTime,
) -> Command {
    let mut data = amount.to_be_bytes().to_vec();
    data.extend_from_slice(uid);
    data.push(block);
    data.extend_from_slice(&counter.to_be_bytes());
    data.extend_from_slice(&when.date);
    data.extend_from_slice(&when.time);
    Command::new(0x80, epurse::card::INS_MOVE_TO_TAG, 0, 0)
        .with_data(data)
        .with_le(10)
}

/// CREDIT VOUCHER `80 C5 00 block 0C amount(4) voucher(8)`.
fn credit_command(block: u8, amount: u32, voucher: &[u8; 8]) -> Command {
    let mut data = amount.to_be_bytes().to_vec();
    data.extend_from_slice(voucher);
    Command::new(tag::CLA_TAG, tag::INS_CREDIT_VOUCHER, 0, block)
        .with_data(data)
        .with_le(4)
}

fn resume_hint(ctx: &TagCtx, atc: u16, block: u8) -> String {
    format!(
        "the voucher stays provable on the purse: finish with `mec purse tag --uid {} resume --atc {atc} --block {block}`",
        hex::encode_upper(ctx.uid)
    )
}

/// How the credit went.
struct Credited {
    value: Option<i32>,
    /// How a lost answer (or a tag lost before the command) was settled.
    recovered: Option<&'static str>,
}

/// CREDIT VOUCHER with the voucher made for `counter`; a lost answer (or a tag gone before
/// the command) is settled by re-reading the counter: advanced means credited, unchanged means
/// the voucher is presented once more (it can only ever credit at `counter`).
fn credit(
    term: &mut Terminal<'_>,
    ctx: &TagCtx,
    block: u8,
    amount: u32,
    voucher: &[u8; 8],
    counter: u32,
) -> Result<Credited, PurseError> {
    let cmd = credit_command(block, amount, voucher);
    let first = select_tag(term, ctx).and_then(|()| term.send(&cmd));
    let (d, sw) = match first {
        Ok(a) => a,
        Err(PurseError::Link(e)) => {
            let now = term.reconnect_then(|t| {
                select_tag(t, ctx)?;
                read_counter(t, block)
            });
            let now = now
                .map_err(|r| PurseError::Unknown(format!("CREDIT VOUCHER: tag lost ({e}); {r}")))?;
            if now == counter.wrapping_add(1) {
                // Credited before the answer was lost; read the value if we can.
                let value = authenticate(term, ctx, block)
                    .and_then(|mut r| read_value(term, &mut r, block))
                    .ok();
                return Ok(Credited {
                    value,
                    recovered: Some(
                        "Tag lost during CREDIT VOUCHER: its voucher counter had advanced, so it \
                         took the voucher (credited once)",
                    ),
                });
            }
            if now != counter {
                return Err(PurseError::Unknown(format!(
                    "CREDIT VOUCHER: tag lost ({e}); the voucher counter is now {now}, neither \
                     {counter} nor {}",
                    counter.wrapping_add(1)
                )));
            }
            let (d, sw) = term.send(&cmd)?;
            if sw != StatusWord::SUCCESS {
                return Err(tag_refused(&format!("CREDIT VOUCHER block {block}"), sw));
            }
            return Ok(Credited {
                value: parse_credit(&d).ok(),
                recovered: Some(
                    "Tag lost before it took the voucher (counter unchanged): presented again \
                     after reconnecting (credited once)",
                ),
            });
        }
        Err(other) => return Err(other),
    };
    if sw != StatusWord::SUCCESS {
        return Err(tag_refused(&format!("CREDIT VOUCHER block {block}"), sw));
    }
    Ok(Credited {
        value: Some(parse_credit(&d)?),
        recovered: None,
    })
}

fn parse_credit(d: &[u8]) -> Result<i32, PurseError> {
    <[u8; 4]>::try_from(d).map(i32::from_be_bytes).map_err(|_| {
        PurseError::Verification(format!(
            "CREDIT VOUCHER answered {} bytes, expected 4",
            d.len()
        ))
    })
}

fn row(name: &str, value: impl std::fmt::Display) -> String {
    format!("{name:<20}{value:>25}")
}

fn move_value(
    term: &mut Terminal<'_>,
    ctx: &TagCtx,
    purse_aid: &[u8],
    amount: u32,
    block: u8,
    when: DateTime,
) -> Result<String, PurseError> {
    select_tag(term, ctx)?;
    let counter = read_counter(term, block)?;
    // Before anything is debited: the tag must be the one --uid names (the voucher is bound to
    // the UID; a voucher for another UID could never be credited here). Authenticating with
    // the sector key diversified from --uid proves it.
    authenticate(term, ctx, block)?;
    let info = term.open()?;
    let before = term.balance(PurseKind::Ep)?;
    let mv = move_command(amount, &ctx.uid, block, counter, &when);
    let mut notes = Vec::new();
    let (atc, voucher) = match term.send(&mv) {
        Ok((d, sw)) => {
            if sw != StatusWord::SUCCESS {
                return Err(tag_refused("MOVE TO TAG", sw));
            }
            let (atc, v) = d
                .split_first_chunk::<2>()
                .and_then(|(a, v)| Some((u16::from_be_bytes(*a), <[u8; 8]>::try_from(v).ok()?)))
                .ok_or_else(|| {
                    PurseError::Verification(format!(
                        "MOVE TO TAG answered {} bytes, expected 10",
                        d.len()
                    ))
                })?;
            (atc, v)
        }
        Err(PurseError::Link(e)) => {
            // The purse's state tells: balance unchanged = nothing moved; debited = the log
            // names the ATC and GET TRANSACTION PROVE type 09 returns the voucher.
            let balance = term.resume(PurseKind::Ep).map_err(|r| {
                PurseError::Unknown(format!(
                    "transaction outcome unknown: MOVE TO TAG answer lost ({e}); {r}"
                ))
            })?;
            if balance == before {
                return Err(PurseError::Unknown(format!(
                    "MOVE TO TAG answer lost ({e}); the EP balance is unchanged: nothing was \
                     debited and nothing moved"
                )));
            }
            let expected = i64::from(before) - i64::from(amount);
            if i64::from(balance) != expected {
                return Err(PurseError::Unknown(format!(
                    "transaction outcome unknown: MOVE TO TAG answer lost ({e}); the EP balance \
                     is {}, neither {} nor {}",
                    format_amount(i64::from(balance)),
                    format_amount(i64::from(before)),
                    format_amount(expected)
                )));
            }
            let log = term.log()?;
            let record = log
                .first()
                .filter(|r| {
                    r.tx_type == pboc::TYPE_EP_TO_TAG
                        && r.amount == amount
                        && r.terminal_id[..] == ctx.uid[1..]
                        && r.date == when.date
                        && r.time == when.time
                })
                .ok_or_else(|| {
                    PurseError::Unknown(format!(
                        "MOVE TO TAG answer lost ({e}); the EP was debited but the last log \
                         record is not this move: find its ATC with `mec purse log` and run \
                         `mec purse tag --uid {} resume --atc N --block {block}`",
                        hex::encode_upper(ctx.uid)
                    ))
                })?;
            let (mac, tac) = term.prove(pboc::TYPE_EP_TO_TAG, record.atc)?;
            let mut v = [0u8; 8];
            v[..4].copy_from_slice(&mac);
            v[4..].copy_from_slice(&tac);
            notes.push(
                "MOVE answer lost after the purse committed: voucher recovered with GET \
                 TRANSACTION PROVE (debited once)",
            );
            (record.atc, v)
        }
        Err(other) => return Err(other),
    };
    let credited = credit(term, ctx, block, amount, &voucher, counter).map_err(|e| {
        let more = resume_hint(ctx, atc, block);
        match e {
            PurseError::Status { what, sw, hint } => PurseError::Status {
                what,
                sw,
                hint: format!(
                    "{hint}; the EP was debited {}: {more}",
                    format_amount(i64::from(amount))
                ),
            },
            PurseError::Link(l) => PurseError::Unknown(format!(
                "the EP was debited {} (offline ATC {atc}) but the tag was lost before the \
                 credit ({l}); {more}",
                format_amount(i64::from(amount))
            )),
            PurseError::Unknown(m) | PurseError::Verification(m) | PurseError::Usage(m) => {
                PurseError::Unknown(format!(
                    "the EP was debited {} (offline ATC {atc}); the credit did not settle: {m}; \
                     {more}",
                    format_amount(i64::from(amount))
                ))
            }
        }
    })?;
    notes.extend(credited.recovered);
    let mut lines = vec![
        "================ MEC E-PURSE ================".to_string(),
        format!("{:<28}{:>17}", "MOVE TO TAG", "APPROVED"),
        row("Date/time", format_when(&when)),
        row("Purse", hex::encode_upper(purse_aid)),
        row("Card ASN", hex::encode_upper(info.asn)),
        row("Amount", format_amount(i64::from(amount))),
        row("EP balance before", format_amount(i64::from(before))),
        row(
            "EP balance after",
            format_amount(i64::from(before) - i64::from(amount)),
        ),
        row("Offline ATC", atc),
        row("Tag", hex::encode_upper(&ctx.aid)),
        row("Tag UID", hex::encode_upper(ctx.uid)),
        row("Block", block),
        row(
            "Voucher counter",
            format!("{counter} -> {}", counter.wrapping_add(1)),
        ),
        row(
            "Tag value after",
            credited
                .value
                .map_or_else(|| "(not read)".to_string(), |v| format_amount(i64::from(v))),
        ),
        row("Voucher", hex::encode_upper(voucher)),
        "Voucher checked by the tag (sector key, UID, block, counter)".to_string(),
    ];
    lines.extend(notes.into_iter().map(str::to_string));
    lines.push("=============================================".into());
    Ok(lines.join("\n"))
}

fn resume(
    term: &mut Terminal<'_>,
    ctx: &TagCtx,
    atc: u16,
    block: u8,
) -> Result<String, PurseError> {
    term.select()?;
    let log = term.log()?;
    let record = log
        .iter()
        .find(|r| r.tx_type == pboc::TYPE_EP_TO_TAG && r.atc == atc)
        .ok_or_else(|| {
            PurseError::Usage(format!(
                "no \"EP to tag\" record with offline ATC {atc} in the purse log (`mec purse log`)"
            ))
        })?;
    if record.terminal_id[..] != ctx.uid[1..] {
        return Err(PurseError::Usage(format!(
            "ATC {atc} moved value to another tag (UID bytes 2..7 {}, not {})",
            hex::encode_upper(record.terminal_id),
            hex::encode_upper(&ctx.uid[1..])
        )));
    }
    let amount = record.amount;
    let (mac, tac) = term.prove(pboc::TYPE_EP_TO_TAG, atc)?;
    let mut voucher = [0u8; 8];
    voucher[..4].copy_from_slice(&mac);
    voucher[4..].copy_from_slice(&tac);
    select_tag(term, ctx)?;
    let now = read_counter(term, block)?;
    let key = ctx.key(block)?;
    // Which counter was the voucher made for? (It credits only at that counter.)
    let made_for = (now.saturating_sub(100_000)..=now)
        .rev()
        .find(|c| {
            epurse::crypto::mac_eq(&tag::voucher(&key, &ctx.uid, block, amount, *c), &voucher)
        })
        .ok_or_else(|| {
            PurseError::Verification(format!(
                "the voucher of ATC {atc} is not for block {block} of tag {} under these keys \
                 (--block, --uid, --tag-master-key)",
                hex::encode_upper(ctx.uid)
            ))
        })?;
    let head = [
        row("Offline ATC", atc),
        row("Amount", format_amount(i64::from(amount))),
        row("Tag UID", hex::encode_upper(ctx.uid)),
        row("Block", block),
        row("Voucher", hex::encode_upper(voucher)),
    ]
    .join("\n");
    if made_for < now {
        // The tag took a voucher for `made_for`: this one, unless another move to this block
        // was debited for the same counter (two moves in flight at once). Ask the purse for
        // the vouchers of its other moves to this tag.
        term.select()?;
        let mut rivals = Vec::new();
        for r in log.iter().filter(|r| {
            r.tx_type == pboc::TYPE_EP_TO_TAG && r.atc != atc && r.terminal_id[..] == ctx.uid[1..]
        }) {
            let Ok((m, t)) = term.prove(pboc::TYPE_EP_TO_TAG, r.atc) else {
                continue;
            };
            let mut other = [0u8; 8];
            other[..4].copy_from_slice(&m);
            other[4..].copy_from_slice(&t);
            let same_counter = tag::voucher(&key, &ctx.uid, block, r.amount, made_for);
            if epurse::crypto::mac_eq(&other, &same_counter) {
                rivals.push(r.atc);
            }
        }
        if !rivals.is_empty() {
            return Err(PurseError::Unknown(format!(
                "{head}\nthe tag's voucher counter moved past {made_for}, but the purse also \
                 debited the move(s) with offline ATC {rivals:?} for the same block and counter: \
                 only one of them can have been credited, and which one is not recorded on the \
                 tag; settle it with the issuer from the purse log"
            )));
        }
        return Ok(format!(
            "{head}\nAlready on the tag: the voucher was made for voucher counter {made_for} and \
             the tag's counter is {now}; no other move this purse proves was for that counter, \
             so the tag took this one (once); nothing to do"
        ));
    }
    let c = credit(term, ctx, block, amount, &voucher, now)?;
    Ok(format!(
        "{head}\n{}\nCREDITED now: the tag's voucher counter went {now} -> {}",
        row(
            "Tag value after",
            c.value
                .map_or_else(|| "(not read)".to_string(), |v| format_amount(i64::from(v)))
        ),
        now.wrapping_add(1)
    ))
}

fn decrement(
    term: &mut Terminal<'_>,
    ctx: &TagCtx,
    amount: u32,
    block: u8,
) -> Result<String, PurseError> {
    let operand =
        i32::try_from(amount).map_err(|_| PurseError::Usage("amount too large".into()))?;
    select_tag(term, ctx)?;
    let mut reader = authenticate(term, ctx, block)?;
    let before = read_value(term, &mut reader, block)?;
    value_command(term, &mut reader, block, tag::INS_DECREMENT, Some(operand))?;
    // i64: a value block read from the tag may hold any i32 (i32::MIN - 1 must not overflow).
    let expected = i64::from(before) - i64::from(operand);
    let mut note = None;
    let after = match value_command(term, &mut reader, block, tag::INS_TRANSFER, None) {
        Ok(d) => parse_block(block, &d)
            .map_err(|e| PurseError::Verification(format!("TRANSFER block {block}: {e}")))?,
        Err(PurseError::Link(e)) => {
            let now = term
                .reconnect_then(|t| {
                    select_tag(t, ctx)?;
                    let mut r = authenticate(t, ctx, block)?;
                    read_value(t, &mut r, block)
                })
                .map_err(|r| {
                    PurseError::Unknown(format!(
                        "transaction outcome unknown: TRANSFER answer lost ({e}); {r}"
                    ))
                })?;
            if now == before {
                return Err(PurseError::Unknown(format!(
                    "TRANSFER answer lost ({e}); the block still holds {}: nothing was taken",
                    format_amount(i64::from(before))
                )));
            }
            if i64::from(now) != expected {
                return Err(PurseError::Unknown(format!(
                    "transaction outcome unknown: TRANSFER answer lost ({e}); the block holds {}, \
                     neither {} nor {}",
                    format_amount(i64::from(now)),
                    format_amount(i64::from(before)),
                    format_amount(expected)
                )));
            }
            note = Some(
                "TRANSFER answer lost after the tag committed: settled by reading the block \
                 (debited once)",
            );
            now
        }
        Err(other) => return Err(other),
    };
    if i64::from(after) != expected {
        return Err(PurseError::Verification(format!(
            "TRANSFER wrote {}, expected {}",
            format_amount(i64::from(after)),
            format_amount(expected)
        )));
    }
    let mut lines = vec![
        "================ MEC E-PURSE ================".to_string(),
        format!("{:<28}{:>17}", "TAG DECREMENT", "APPROVED"),
        row("Tag", hex::encode_upper(&ctx.aid)),
        row("Tag UID", hex::encode_upper(ctx.uid)),
        row("Block", block),
        row("Amount", format_amount(i64::from(amount))),
        row("Value before", format_amount(i64::from(before))),
        row("Value after", format_amount(i64::from(after))),
        "Answer MACs verified with the session key".to_string(),
    ];
    lines.extend(note.map(str::to_string));
    lines.push("=============================================".into());
    Ok(lines.join("\n"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn value_blocks_are_checked_for_integrity_and_address() {
        let good = tag::value_block(1250, 5);
        assert_eq!(parse_block(5, &good), Ok(1250));
        assert!(parse_block(6, &good).unwrap_err().contains("address"));
        for i in 0..16 {
            let mut bad = good;
            bad[i] ^= 0x10;
            assert!(parse_block(5, &bad).is_err(), "byte {i}");
        }
        assert!(parse_block(5, &good[..15]).is_err());
    }

    #[test]
    fn commands_have_the_documented_layout() {
        let uid = [0x04, 0x52, 0x7A, 0x9A, 0x3C, 0x11, 0x80];
        let when = parse_when("20261121071500").unwrap();
        let mv = move_command(750, &uid, 2, 3, &when).to_vec().unwrap();
        assert_eq!(mv[..5], [0x80, 0x56, 0x00, 0x00, 0x17]);
        assert_eq!(mv[5..9], 750u32.to_be_bytes());
        assert_eq!(mv[9..16], uid);
        assert_eq!(mv[16], 2);
        assert_eq!(mv[17..21], 3u32.to_be_bytes());
        assert_eq!(mv[21..28], [0x20, 0x26, 0x11, 0x21, 0x07, 0x15, 0x00]);
        let c = credit_command(2, 750, &[9; 8]).to_vec().unwrap();
        assert_eq!(c[..5], [0x80, 0xC5, 0x00, 0x02, 0x0C]);
        let access = epurse::danger::test_tag_access().unwrap();
        let p = install_params(&uid, &access);
        assert_eq!(p.len(), 2 * (7 + 16 + 3 + 7));
        assert!(p.starts_with("04527A9A3C1180"));
        assert!(p.ends_with("3042F54D454320544147"));
    }

    /// The tag state machine behind a transport, as the virtual SE hosts it.
    struct FakeTag {
        state: tag::TagState,
        session: tag::TagSession,
        n: u8,
    }

    impl crate::transport::Transport for FakeTag {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, crate::transport::TransportError> {
            let view = apdu_codec::parse_command(apdu)
                .map_err(|e| crate::transport::TransportError(e.to_string()))?;
            self.n = self.n.wrapping_add(1);
            let out = tag::process(
                &self.state,
                &mut self.session,
                &view,
                &epurse::card::Entropy([self.n; 16]),
            );
            if let Some(next) = out.new_state {
                self.state = next;
            }
            let mut answer = out.reply.data().to_vec();
            answer.extend_from_slice(&u16::from(out.reply.status()).to_be_bytes());
            Ok(answer)
        }
    }

    /// CRC-32 (IEEE 802.3, reflected, as `epurse`'s sealed encodings use).
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
            }
        }
        !crc
    }

    /// A personalized tag whose block 1 has one value copy flipped (the state re-sealed with
    /// a valid checksum, as a tag whose memory was tampered with would look).
    fn tampered_tag(ctx: &TagCtx) -> FakeTag {
        let state = tag::TagState::personalize(&ctx.aid, ctx.uid, &ctx.access).unwrap();
        let mut bytes = state.to_bytes();
        // "VTG1" || AID length(1) || AID(16) || UID(7) || 4 sector keys(16) || blocks(16 each)
        let block1 = 4 + 1 + 16 + UID_LEN + 4 * 16 + 16;
        bytes[block1] ^= 0x01;
        let body = bytes.len() - 4;
        let crc = crc32(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_be_bytes());
        FakeTag {
            state: tag::TagState::from_bytes(&bytes).unwrap(),
            session: tag::TagSession::new(),
            n: 0,
        }
    }

    #[test]
    fn a_tampered_value_block_is_reported_and_refused() {
        let ctx = TagCtx {
            uid: [0x04, 0x52, 0x7A, 0x9A, 0x3C, 0x11, 0x80],
            aid: hex::decode(DEFAULT_TAG_AID).unwrap(),
            access: epurse::danger::test_tag_access().unwrap(),
        };
        let mut fake = tampered_tag(&ctx);
        let mut term = Terminal::new(&mut fake, epurse::danger::TEST_AID.to_vec());
        // show: the block is INVALID and the verb fails with a verification error (exit 3).
        match show(&mut term, &ctx, Some(1)) {
            Err(PurseError::Verification(m)) => {
                assert!(m.contains("block 1") && m.contains("corrupt"), "{m}");
            }
            other => panic!("{:?}", other.map_err(|e| e.to_string())),
        }
        // The other blocks of the sector are intact.
        assert!(show(&mut term, &ctx, Some(2)).unwrap().contains("0.00"));
        // decrement checks the value it read before sending anything that changes it.
        assert!(matches!(
            decrement(&mut term, &ctx, 1, 1),
            Err(PurseError::Verification(_))
        ));
        // The tag itself refuses a value command on it: 6400, explained.
        select_tag(&mut term, &ctx).unwrap();
        let mut reader = authenticate(&mut term, &ctx, 1).unwrap();
        match value_command(&mut term, &mut reader, 1, tag::INS_DECREMENT, Some(1)) {
            Err(PurseError::Status { sw, hint, .. }) => {
                assert_eq!(u16::from(sw), 0x6400);
                assert!(hint.contains("corrupt"), "{hint}");
            }
            other => panic!("{:?}", other.map_err(|e| e.to_string())),
        }
        // A wrong master key fails the authentication with 9302 and a hint.
        let wrong = TagCtx {
            access: TagAccess::new(Key16::new([9; 16]), [0x30, 0x42, 0xF5], b"MEC TAG").unwrap(),
            ..ctx
        };
        select_tag(&mut term, &wrong).unwrap();
        match authenticate(&mut term, &wrong, 1) {
            Err(PurseError::Status { sw, hint, .. }) => {
                assert_eq!(u16::from(sw), 0x9302);
                assert!(hint.contains("wrong key"), "{hint}");
            }
            other => panic!("{:?}", other.map(|_| ()).map_err(|e| e.to_string())),
        }
    }

    /// A tag whose block 1 reads as `i32::MIN` but which, from DECREMENT on, answers from
    /// memory holding 100 (a tag that is not the honest applet: the terminal must still
    /// not overflow computing what the block should hold afterwards).
    struct ShiftingTag {
        tag: FakeTag,
        later: Option<tag::TagState>,
    }

    impl crate::transport::Transport for ShiftingTag {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, crate::transport::TransportError> {
            if apdu.get(1) == Some(&tag::INS_DECREMENT)
                && let Some(state) = self.later.take()
            {
                self.tag.state = state;
            }
            self.tag.transmit(apdu)
        }
    }

    /// A personalized tag's state with block 1 holding `value` (re-sealed).
    fn tag_with_block1(ctx: &TagCtx, value: i32) -> tag::TagState {
        let state = tag::TagState::personalize(&ctx.aid, ctx.uid, &ctx.access).unwrap();
        let mut bytes = state.to_bytes();
        let block1 = 4 + 1 + 16 + UID_LEN + 4 * 16 + 16;
        bytes[block1..block1 + 16].copy_from_slice(&tag::value_block(value, 1));
        let body = bytes.len() - 4;
        let crc = crc32(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_be_bytes());
        tag::TagState::from_bytes(&bytes).unwrap()
    }

    #[test]
    fn decrement_of_a_block_at_i32_min_is_refused_without_overflow() {
        let ctx = TagCtx {
            uid: [0x04, 0x52, 0x7A, 0x9A, 0x3C, 0x11, 0x80],
            aid: hex::decode(DEFAULT_TAG_AID).unwrap(),
            access: epurse::danger::test_tag_access().unwrap(),
        };
        let mut fake = ShiftingTag {
            tag: FakeTag {
                state: tag_with_block1(&ctx, i32::MIN),
                session: tag::TagSession::new(),
                n: 0,
            },
            later: Some(tag_with_block1(&ctx, 100)),
        };
        let mut term = Terminal::new(&mut fake, epurse::danger::TEST_AID.to_vec());
        // Read -21474836.48, decrement 0.01: expected -21474836.49 (below i32), written 0.99.
        match decrement(&mut term, &ctx, 1, 1) {
            Err(PurseError::Verification(m)) => {
                assert_eq!(m, "TRANSFER wrote 0.99, expected -21474836.49");
            }
            other => panic!("{:?}", other.map_err(|e| e.to_string())),
        }
    }

    #[test]
    fn hints_name_the_tag_condition() {
        let mac = StatusWord::new(0x93, 0x02);
        assert!(tag_hint("AUTHENTICATE sector 0 (second step)", mac).contains("wrong key"));
        assert!(tag_hint("CREDIT VOUCHER block 1", mac).contains("voucher"));
        let low = StatusWord::new(0x94, 0x01);
        assert!(tag_hint("DECREMENT block 1", low).contains("block holds less"));
        assert!(tag_hint("MOVE TO TAG", low).contains("EP holds less"));
    }
}
