//! The terminal side of the purse: load and unload (as the issuer's load authority), purchase
//! (with a software SAM), balance, log, transaction prove, for the EP and the ED; the
//! cardholder's PIN (VERIFY, CHANGE PIN) and the issuer's MAC-protected commands (RELOAD PIN,
//! PIN UNBLOCK, APPLICATION BLOCK / UNBLOCK, permanent lock); tear recovery after a lost answer.
//!
//! The load authority and the SAM hold master keys in this process: that is a test and
//! simulation set-up. A real load terminal asks the issuer's host (its HSM) for MAC2 and the
//! TAC check (`epurse::host::MasterKeyStore` is the seam), and a real POS uses a PSAM.

use std::time::Duration;

use apdu_codec::{Command, ResponseView, StatusWord, parse_response};
use epurse::card::{ISSUER_FILE_LEN, LOG_RECORD_LEN, LogRecord, key_function};
use epurse::crypto::{Key16, TdesKey};
use epurse::host::{InMemoryMasterKeys, LoadAuthority, TacKeyRef};
use epurse::pboc::{
    self, DateTime, InitLoadResponse, InitPurchaseResponse, InitializeData, PurseKind,
};

use zeroize::Zeroizing;

use crate::transport::{Transport, TransportError};

/// How long a terminal waits for the card to come back after a lost answer.
pub(crate) const RECONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a purse operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PurseError {
    /// The card refused a command.
    #[error("{what}: card answered {sw}{hint}")]
    Status {
        /// The command.
        what: String,
        /// Its status word (Display gives the code and its meaning).
        sw: StatusWord,
        /// What the status word means for the purse (`""` or `": ..."`).
        hint: String,
    },
    /// A MAC, TAC or the card's answer did not verify.
    #[error("{0}")]
    Verification(String),
    /// The reader or connection failed.
    #[error("{0}")]
    Link(#[from] TransportError),
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// The answer to DEBIT / CREDIT was lost: the transaction did not happen, or recovery
    /// could not settle what happened (the message says which).
    #[error("{0}")]
    Unknown(String),
}

/// The purse's identity and issuer data (SELECT and READ BINARY of the issuer file).
#[derive(Debug, Clone)]
pub(crate) struct PurseInfo {
    /// The application serial number.
    pub(crate) asn: [u8; 8],
    /// Issuer id.
    pub(crate) issuer_id: [u8; 8],
    /// Validity start (BCD YYYYMMDD).
    pub(crate) start: [u8; 4],
    /// Validity end.
    pub(crate) end: [u8; 4],
    /// SELECT answered `6283`: the issuer has temporarily blocked the application.
    pub(crate) blocked: bool,
}

/// A purse terminal over a link.
pub(crate) struct Terminal<'a> {
    link: &'a mut dyn Transport,
    aid: Vec<u8>,
    /// The cardholder PIN (packed BCD, `F` filler), presented with VERIFY after every SELECT.
    pin: Option<Zeroizing<Vec<u8>>>,
    /// The last SELECT answered `6283` (blocked by the issuer).
    blocked: bool,
}

/// What a load or purchase did.
#[derive(Debug, Clone)]
pub(crate) struct Receipt {
    /// "LOAD", "UNLOAD" or "PURCHASE".
    pub(crate) kind: &'static str,
    /// EP or ED.
    pub(crate) wallet: PurseKind,
    /// Purse AID.
    pub(crate) aid: Vec<u8>,
    /// Card ASN.
    pub(crate) asn: [u8; 8],
    /// Amount (cents).
    pub(crate) amount: u32,
    /// Balance before and after (cents).
    pub(crate) before: i32,
    /// Balance after.
    pub(crate) after: i32,
    /// Online ATC (load, unload) or offline ATC (purchase) of the transaction.
    pub(crate) atc: u16,
    /// Terminal id.
    pub(crate) terminal_id: [u8; 6],
    /// Terminal transaction serial (purchase).
    pub(crate) terminal_serial: Option<[u8; 4]>,
    /// Date and time.
    pub(crate) when: DateTime,
    /// TAC.
    pub(crate) tac: [u8; 4],
    /// How MAC2 / the TAC were checked.
    pub(crate) verified: &'static str,
    /// Recovered through GET TRANSACTION PROVE after a lost answer.
    pub(crate) recovered: bool,
}

/// What a status word means for a purse terminal, beyond its ISO/PBOC meaning
/// (`docs/epurse.md`, "Rules and status words").
pub(crate) fn hint(sw: StatusWord) -> String {
    match sw.retries_left() {
        Some(0) => return ": wrong PIN, no tries left: the PIN is now blocked".into(),
        Some(1) => return ": wrong PIN, 1 try left".into(),
        Some(left) => return format!(": wrong PIN, {left} tries left"),
        None => {}
    }
    match u16::from(sw) {
        0x6982 => ": ED operations need the cardholder PIN verified in the same session (--pin)".into(),
        0x6983 => ": the PIN is blocked; the issuer must unblock it (mec purse unblock-pin) or reload it (mec purse reload-pin)".into(),
        0x9302 => ": wrong key for this card (the card changed nothing)".into(),
        0x9303 => ": the issuer has locked the application for good; it can never be used again".into(),
        0x9403 => ": the card has no key with this index (--key-index)".into(),
        _ => String::new(),
    }
}

/// A refusal of `what` with status word `sw`.
pub(crate) fn refused(what: &str, sw: StatusWord) -> PurseError {
    PurseError::Status {
        what: what.into(),
        sw,
        hint: hint(sw),
    }
}

fn check(what: &str, r: &ResponseView<'_>) -> Result<(), PurseError> {
    if r.status() == StatusWord::SUCCESS {
        Ok(())
    } else {
        Err(refused(what, r.status()))
    }
}

fn shape(what: &str, e: epurse::Error) -> PurseError {
    match e {
        epurse::Error::Card(sw) => refused(what, sw),
        other => PurseError::Verification(format!("{what}: {other}")),
    }
}

/// Encode a PIN of 4 to 12 digits as the card stores and compares it: packed BCD, an `F`
/// filler nibble when the count is odd (`docs/epurse.md`, DGI `0301`).
///
/// # Errors
/// A usage message for anything but 4 to 12 decimal digits.
pub(crate) fn pin_bcd(pin: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    if !(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err("PIN: 4 to 12 digits".into());
    }
    // Room for the filler up front: a reallocating push would free a copy of the PIN
    // without zeroizing it.
    let mut text = Zeroizing::new(String::with_capacity(pin.len() + 1));
    text.push_str(pin);
    if !text.len().is_multiple_of(2) {
        text.push('F');
    }
    hex::decode(text.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| format!("PIN: {e}"))
}

/// The issuer's MAC-protected commands (`docs/epurse.md`, "Issuer command MAC").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IssuerCommand {
    /// RELOAD PIN `80 5E 00 00` under the DRPK.
    ReloadPin,
    /// PIN UNBLOCK `84 24 00 00` under the DPUK.
    UnblockPin,
    /// APPLICATION BLOCK `84 1E 00 00` (temporary) under the DAMK.
    Block,
    /// APPLICATION BLOCK `84 1E 00 01` (permanent) under the DAMK.
    LockPermanently,
    /// APPLICATION UNBLOCK `84 18 00 00` under the DAMK.
    Unblock,
}

impl IssuerCommand {
    /// The command's name.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            IssuerCommand::ReloadPin => "RELOAD PIN",
            IssuerCommand::UnblockPin => "PIN UNBLOCK",
            IssuerCommand::Block => "APPLICATION BLOCK (temporary)",
            IssuerCommand::LockPermanently => "APPLICATION BLOCK (permanent)",
            IssuerCommand::Unblock => "APPLICATION UNBLOCK",
        }
    }

    /// The key function whose card key MACs the command ([`key_function`]).
    pub(crate) const fn function(self) -> u8 {
        match self {
            IssuerCommand::ReloadPin => key_function::PIN_RELOAD,
            IssuerCommand::UnblockPin => key_function::PIN_UNBLOCK,
            IssuerCommand::Block | IssuerCommand::LockPermanently | IssuerCommand::Unblock => {
                key_function::MAINTENANCE
            }
        }
    }

    /// `CLA INS P1 P2` (`docs/epurse.md`, "Commands").
    const fn header(self) -> [u8; 4] {
        match self {
            IssuerCommand::ReloadPin => [
                pboc::CLA_PROPRIETARY,
                pboc::INS_PIN_CHANGE_RELOAD,
                0x00,
                0x00,
            ],
            IssuerCommand::UnblockPin => [pboc::CLA_SECURE, pboc::INS_PIN_UNBLOCK, 0x00, 0x00],
            IssuerCommand::Block => [pboc::CLA_SECURE, pboc::INS_APPLICATION_BLOCK, 0x00, 0x00],
            IssuerCommand::LockPermanently => {
                [pboc::CLA_SECURE, pboc::INS_APPLICATION_BLOCK, 0x00, 0x01]
            }
            IssuerCommand::Unblock => [pboc::CLA_SECURE, pboc::INS_APPLICATION_UNBLOCK, 0x00, 0x00],
        }
    }

    /// The APDU for the card whose function key is `card_key`, after GET CHALLENGE answered
    /// `challenge`; `new_pin` (packed BCD) for RELOAD PIN and PIN UNBLOCK.
    ///
    /// # Errors
    /// A usage message for a missing or malformed new PIN.
    pub(crate) fn apdu(
        self,
        card_key: &Key16,
        challenge: [u8; 8],
        new_pin: Option<&[u8]>,
    ) -> Result<Command, PurseError> {
        let need_pin = || new_pin.ok_or_else(|| PurseError::Usage("a new PIN is needed".into()));
        let body: Zeroizing<Vec<u8>> = match self {
            // RELOAD PIN carries the new PIN in the clear (as PBOC's RELOAD PIN does).
            IssuerCommand::ReloadPin => Zeroizing::new(need_pin()?.to_vec()),
            // PIN UNBLOCK: the PIN block, 3DES-ECB under the DPUK.
            IssuerCommand::UnblockPin => {
                let mut block = Zeroizing::new(
                    epurse::card::pin_block(need_pin()?)
                        .map_err(|e| PurseError::Usage(format!("new PIN: {e}")))?,
                );
                TdesKey::new(card_key).encrypt(&mut block);
                Zeroizing::new(block.to_vec())
            }
            IssuerCommand::Block | IssuerCommand::LockPermanently | IssuerCommand::Unblock => {
                Zeroizing::new(Vec::new())
            }
        };
        let header = self.header();
        let lc = u8::try_from(body.len() + 4)
            .map_err(|_| PurseError::Usage("issuer command too long".into()))?;
        let mac = epurse::card::issuer_mac(card_key, challenge, header, lc, &body)
            .map_err(|e| PurseError::Verification(format!("issuer MAC: {e}")))?;
        let mut data = body.to_vec();
        data.extend_from_slice(&mac);
        Ok(Command::new(header[0], header[1], header[2], header[3]).with_data(data))
    }
}

/// The issuer's keys a load (or unload) terminal simulates (test and simulation only).
pub(crate) struct IssuerKeys {
    /// Master key of the DLK (function 02) for a load, of the DULK (function 04) for an
    /// unload.
    pub(crate) load_master: Key16,
    /// Master key of the DTK (function 03).
    pub(crate) tac_master: Key16,
    /// Key index and version of the DLK (or DULK) the card carries.
    pub(crate) load_key: (u8, u8),
    /// The DTK the card carries.
    pub(crate) tac_key: TacKeyRef,
}

impl IssuerKeys {
    fn authority(&self, function: u8) -> LoadAuthority<InMemoryMasterKeys> {
        let mut store = InMemoryMasterKeys::new();
        store.insert(
            function,
            self.load_key.0,
            self.load_key.1,
            &self.load_master,
        );
        store.insert(
            key_function::TAC,
            self.tac_key.index,
            self.tac_key.version,
            &self.tac_master,
        );
        LoadAuthority::new(store, self.tac_key)
    }
}

impl<'a> Terminal<'a> {
    /// A terminal for the purse `aid` over `link`.
    pub(crate) fn new(link: &'a mut dyn Transport, aid: Vec<u8>) -> Self {
        Self {
            link,
            aid,
            pin: None,
            blocked: false,
        }
    }

    /// Whether the last SELECT found the application blocked by the issuer (`6283`).
    pub(crate) const fn blocked(&self) -> bool {
        self.blocked
    }

    /// Present this PIN (packed BCD) with VERIFY after every SELECT of a transaction (and
    /// again after a reconnect), as the ED requires.
    #[must_use]
    pub(crate) fn with_pin(mut self, pin: Option<Zeroizing<Vec<u8>>>) -> Self {
        self.pin = pin;
        self
    }

    pub(crate) fn send(&mut self, cmd: &Command) -> Result<(Vec<u8>, StatusWord), PurseError> {
        let bytes = cmd
            .to_vec()
            .map_err(|e| PurseError::Usage(format!("encoding a command: {e}")))?;
        let raw = self.link.transmit(&bytes)?;
        if raw.len() < 2 {
            // vpcd delivers an empty answer when the card drops the connection mid-command:
            // the answer was lost, not malformed.
            return Err(PurseError::Link(TransportError(
                "no answer from the card (connection lost)".into(),
            )));
        }
        let r = parse_response(&raw)
            .map_err(|e| PurseError::Verification(format!("malformed card answer: {e}")))?;
        Ok((r.data().to_vec(), r.status()))
    }

    pub(crate) fn expect(&mut self, what: &str, cmd: &Command) -> Result<Vec<u8>, PurseError> {
        let (data, sw) = self.send(cmd)?;
        check(what, &ResponseView::new(&data, sw))?;
        Ok(data)
    }

    /// SELECT the purse and read its issuer file. A temporarily blocked purse answers `6283`
    /// and is still selected ([`PurseInfo::blocked`]): the card itself then refuses the
    /// transactions (`6985`), which is what a card developer wants to see.
    ///
    /// # Errors
    /// [`PurseError`].
    pub(crate) fn select(&mut self) -> Result<PurseInfo, PurseError> {
        let select = Command::new(0x00, 0xA4, 0x04, 0x00)
            .with_data(self.aid.clone())
            .with_le(0x100);
        let (_, sw) = self.send(&select)?;
        // docs/epurse.md: SELECT answers 6283 (ISO/IEC 7816-4 "selected file invalidated")
        // with the FCI when the issuer blocked the application.
        let blocked = sw == StatusWord::SELECTED_FILE_INVALIDATED;
        self.blocked = blocked;
        if !blocked && sw != StatusWord::SUCCESS {
            return Err(refused("SELECT purse", sw));
        }
        // docs/epurse.md: READ BINARY SFI 15, 30 bytes.
        let read = Command::new(0x00, 0xB0, 0x80 | epurse::card::SFI_ISSUER, 0x00)
            .with_le(ISSUER_FILE_LEN);
        let f = self.expect("READ BINARY issuer file", &read)?;
        let part = |from: usize, to: usize| f.get(from..to).unwrap_or_default();
        let arr8 = |b: &[u8]| <[u8; 8]>::try_from(b).unwrap_or_default();
        let arr4 = |b: &[u8]| <[u8; 4]>::try_from(b).unwrap_or_default();
        if f.len() != ISSUER_FILE_LEN {
            return Err(PurseError::Verification(format!(
                "issuer file of {} bytes, expected {ISSUER_FILE_LEN}",
                f.len()
            )));
        }
        // issuer id(8) type(1) version(1) ASN(10: 0000 || ASN) start(4) end(4) 0000
        Ok(PurseInfo {
            issuer_id: arr8(part(0, 8)),
            asn: arr8(part(12, 20)),
            start: arr4(part(20, 24)),
            end: arr4(part(24, 28)),
            blocked,
        })
    }

    /// SELECT, then VERIFY the PIN given with [`with_pin`](Self::with_pin) (if any).
    pub(crate) fn open(&mut self) -> Result<PurseInfo, PurseError> {
        let info = self.select()?;
        self.verify_pin()?;
        Ok(info)
    }

    /// VERIFY the terminal's PIN, if it has one; `Ok(false)` when it has none.
    ///
    /// # Errors
    /// [`PurseError::Status`]: `63Cx` wrong PIN (x tries left), `6983` PIN blocked.
    pub(crate) fn verify_pin(&mut self) -> Result<bool, PurseError> {
        let Some(pin) = &self.pin else {
            return Ok(false);
        };
        let cmd = Command::new(0x00, 0x20, 0x00, 0x00).with_data(pin.to_vec());
        self.expect("VERIFY PIN", &cmd)?;
        Ok(true)
    }

    /// VERIFY without data: the PIN's tries left (`63Cx`), without spending a try.
    ///
    /// # Errors
    /// [`PurseError::Status`] (`6983` when the PIN is blocked).
    pub(crate) fn pin_tries_left(&mut self) -> Result<u8, PurseError> {
        let (_, sw) = self.send(&Command::new(0x00, 0x20, 0x00, 0x00))?;
        match sw.retries_left() {
            Some(n) => Ok(n),
            None => Err(refused("VERIFY (tries left)", sw)),
        }
    }

    /// CHANGE PIN `80 5E 01 00 Lc old FF new` (packed BCD PINs, `docs/epurse.md`).
    ///
    /// # Errors
    /// [`PurseError::Status`]: `63Cx` wrong old PIN, `6983` blocked, `6A80` malformed new PIN.
    pub(crate) fn change_pin(&mut self, old: &[u8], new: &[u8]) -> Result<(), PurseError> {
        let mut data = Zeroizing::new(old.to_vec());
        data.push(0xFF);
        data.extend_from_slice(new);
        let cmd = Command::new(
            pboc::CLA_PROPRIETARY,
            pboc::INS_PIN_CHANGE_RELOAD,
            0x01,
            0x00,
        )
        .with_data(data.to_vec());
        self.expect("CHANGE PIN", &cmd).map(|_| ())
    }

    /// An issuer command: GET CHALLENGE (8 bytes), then the command MACed with the card's
    /// function key, diversified here from `master` and the card's ASN.
    ///
    /// A lost answer is reported as [`PurseError::Unknown`]: the card may or may not have
    /// applied it; every issuer command can simply be repeated.
    ///
    /// # Errors
    /// [`PurseError`].
    pub(crate) fn issuer_command(
        &mut self,
        command: IssuerCommand,
        master: &Key16,
        new_pin: Option<&[u8]>,
    ) -> Result<PurseInfo, PurseError> {
        let info = self.select()?;
        let challenge = self.expect(
            "GET CHALLENGE",
            &Command::new(0x00, 0x84, 0x00, 0x00).with_le(8),
        )?;
        let challenge = <[u8; 8]>::try_from(challenge.as_slice()).map_err(|_| {
            PurseError::Verification(format!(
                "GET CHALLENGE answered {} bytes, expected 8",
                challenge.len()
            ))
        })?;
        let card_key = pboc::diversify(&TdesKey::new(master), &info.asn);
        let apdu = command.apdu(&card_key, challenge, new_pin)?;
        match self.send(&apdu) {
            Ok((d, sw)) => check(command.name(), &ResponseView::new(&d, sw))?,
            Err(PurseError::Link(e)) => {
                return Err(PurseError::Unknown(format!(
                    "{}: answer lost ({e}); the card may or may not have applied it: check with \
                     `mec purse balance` (or verify-pin) and repeat the command if needed",
                    command.name()
                )));
            }
            Err(other) => return Err(other),
        }
        Ok(info)
    }

    /// GET BALANCE of `kind` (the ED needs the PIN verified in this session).
    ///
    /// # Errors
    /// [`PurseError`].
    pub(crate) fn balance(&mut self, kind: PurseKind) -> Result<i32, PurseError> {
        let (d, sw) = self.send(&pboc::get_balance(kind))?;
        pboc::parse_balance(&ResponseView::new(&d, sw)).map_err(|e| {
            shape(
                match kind {
                    PurseKind::Ep => "GET BALANCE (EP)",
                    PurseKind::Ed => "GET BALANCE (ED)",
                },
                e,
            )
        })
    }

    /// The transaction log, most recent first.
    ///
    /// # Errors
    /// [`PurseError`].
    pub(crate) fn log(&mut self) -> Result<Vec<LogRecord>, PurseError> {
        let mut out = Vec::new();
        for n in 1..=u8::try_from(epurse::card::LOG_RECORDS).unwrap_or(10) {
            let cmd = Command::new(0x00, 0xB2, n, (epurse::card::SFI_LOG << 3) | 0x04)
                .with_le(LOG_RECORD_LEN);
            let (d, sw) = self.send(&cmd)?;
            if sw == StatusWord::RECORD_NOT_FOUND {
                break;
            }
            check(&format!("READ RECORD {n}"), &ResponseView::new(&d, sw))?;
            out.push(
                LogRecord::parse(&d)
                    .map_err(|e| PurseError::Verification(format!("log record {n}: {e}")))?,
            );
        }
        Ok(out)
    }

    /// GET TRANSACTION PROVE: `(MAC, TAC)`.
    ///
    /// # Errors
    /// [`PurseError`] (`9406` when the card has no such transaction).
    pub(crate) fn prove(
        &mut self,
        tx_type: u8,
        atc: u16,
    ) -> Result<([u8; 4], [u8; 4]), PurseError> {
        let (d, sw) = self.send(&pboc::get_transaction_prove(tx_type, atc))?;
        pboc::parse_pair(&ResponseView::new(&d, sw)).map_err(|e| {
            shape(
                &format!("GET TRANSACTION PROVE type {tx_type:02X} ATC {atc}"),
                e,
            )
        })
    }

    /// After a lost answer: reconnect, select, VERIFY again (the card forgot the session),
    /// read the balance of `kind`.
    /// Transport failures are retried until [`RECONNECT_TIMEOUT`] (the reader may come and go
    /// while the card returns); a status word ends the attempt at once.
    pub(crate) fn resume(&mut self, kind: PurseKind) -> Result<i32, PurseError> {
        self.reconnect_then(|t| t.open().and_then(|_| t.balance(kind)))
    }

    /// After a lost answer: reconnect to the card (retried until [`RECONNECT_TIMEOUT`]), then
    /// run `then` (which selects what it needs); transport failures inside `then` are retried
    /// too, a status word ends the attempt at once.
    pub(crate) fn reconnect_then<T>(
        &mut self,
        mut then: impl FnMut(&mut Self) -> Result<T, PurseError>,
    ) -> Result<T, PurseError> {
        let start = std::time::Instant::now();
        loop {
            let attempt = self
                .link
                .reconnect(RECONNECT_TIMEOUT)
                .map_err(PurseError::from)
                .and_then(|()| then(self));
            match attempt {
                Err(PurseError::Link(_)) if start.elapsed() < RECONNECT_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(300));
                }
                other => return other,
            }
        }
    }

    /// A load into `kind`: INITIALIZE FOR LOAD, MAC1 checked and MAC2 made by the load
    /// authority, CREDIT FOR LOAD, TAC checked. A lost CREDIT answer is settled with GET
    /// TRANSACTION PROVE.
    ///
    /// # Errors
    /// [`PurseError`].
    pub(crate) fn load(
        &mut self,
        keys: &IssuerKeys,
        kind: PurseKind,
        amount: u32,
        terminal_id: [u8; 6],
        when: DateTime,
    ) -> Result<Receipt, PurseError> {
        self.online(keys, Online::Load(kind), amount, terminal_id, when)
    }

    /// An ED unload: INITIALIZE FOR UNLOAD, MAC1 checked and MAC2 made by the issuer (DULK),
    /// DEBIT FOR UNLOAD, TAC checked. A lost DEBIT answer is settled with GET TRANSACTION
    /// PROVE; the DEBIT is never sent twice.
    ///
    /// # Errors
    /// [`PurseError`].
    pub(crate) fn unload(
        &mut self,
        keys: &IssuerKeys,
        amount: u32,
        terminal_id: [u8; 6],
        when: DateTime,
    ) -> Result<Receipt, PurseError> {
        self.online(keys, Online::Unload, amount, terminal_id, when)
    }

    fn online(
        &mut self,
        keys: &IssuerKeys,
        op: Online,
        amount: u32,
        terminal_id: [u8; 6],
        when: DateTime,
    ) -> Result<Receipt, PurseError> {
        let info = self.open()?;
        let req = InitializeData {
            key_index: keys.load_key.0,
            amount,
            terminal_id,
        };
        let (kind, init, init_name, finish_name, function) = match op {
            Online::Load(kind) => (
                kind,
                req.initialize_for_load(kind),
                "INITIALIZE FOR LOAD",
                "CREDIT FOR LOAD",
                key_function::LOAD,
            ),
            Online::Unload => (
                PurseKind::Ed,
                req.initialize_for_unload(),
                "INITIALIZE FOR UNLOAD",
                "DEBIT FOR UNLOAD",
                key_function::UNLOAD,
            ),
        };
        let (d, sw) = self.send(&init)?;
        let rsp =
            InitLoadResponse::parse(&ResponseView::new(&d, sw)).map_err(|e| shape(init_name, e))?;
        let authority = keys.authority(function);
        let begun = match op {
            Online::Load(kind) => authority.begin_load(&info.asn, kind, &req, &rsp),
            Online::Unload => authority.begin_unload(&info.asn, &req, &rsp),
        };
        let mut auth = begun.map_err(|e| {
            PurseError::Verification(format!("issuer refuses MAC1 of {init_name}: {e}"))
        })?;
        let finish = auth.command(&when);
        let mut receipt = Receipt {
            kind: match op {
                Online::Load(_) => "LOAD",
                Online::Unload => "UNLOAD",
            },
            wallet: kind,
            aid: self.aid.clone(),
            asn: info.asn,
            amount,
            before: rsp.balance,
            after: auth.new_balance(),
            atc: rsp.online_atc,
            terminal_id,
            terminal_serial: None,
            when,
            tac: [0; 4],
            verified: "MAC1 and TAC verified by the issuer load authority",
            recovered: false,
        };
        let answer = match self.send(&finish) {
            Ok(a) => a,
            Err(PurseError::Link(e)) => {
                let nothing = match op {
                    Online::Load(_) => "nothing was credited",
                    Online::Unload => "nothing was debited",
                };
                let balance = self.resume(kind).map_err(|r| {
                    PurseError::Unknown(format!(
                        "transaction outcome unknown: {finish_name} answer lost ({e}); {r}"
                    ))
                })?;
                let (d, sw) = self.send(&pboc::get_transaction_prove(
                    auth.tx_type(),
                    auth.online_atc(),
                ))?;
                if sw == StatusWord::MAC_UNAVAILABLE && balance == rsp.balance {
                    return Err(PurseError::Unknown(format!(
                        "{finish_name} answer lost ({e}); the card did not complete it \
                         (balance unchanged, GET TRANSACTION PROVE answered {sw}): {nothing}"
                    )));
                }
                receipt.tac = auth.verify_prove(&ResponseView::new(&d, sw)).map_err(|x| {
                    PurseError::Unknown(format!(
                        "transaction outcome unknown: GET TRANSACTION PROVE: {x}"
                    ))
                })?;
                if balance != auth.new_balance() {
                    return Err(PurseError::Unknown(format!(
                        "transaction outcome unknown: {finish_name} proved but the balance is {balance}, expected {}",
                        auth.new_balance()
                    )));
                }
                receipt.recovered = true;
                receipt.verified = "MAC2 and TAC proved by GET TRANSACTION PROVE, verified by the issuer load authority";
                return Ok(receipt);
            }
            Err(other) => return Err(other),
        };
        receipt.tac = auth
            .verify_tac(&ResponseView::new(&answer.0, answer.1))
            .map_err(|e| shape(finish_name, e))?;
        Ok(receipt)
    }

    /// A purchase from `kind`: INITIALIZE FOR PURCHASE, the SAM's MAC1, DEBIT FOR PURCHASE,
    /// MAC2 checked by the SAM. A lost DEBIT answer is settled by re-reading the balance and
    /// GET TRANSACTION PROVE; the DEBIT is never sent twice.
    ///
    /// # Errors
    /// [`PurseError`].
    pub(crate) fn purchase(
        &mut self,
        sam: &mut SoftSam,
        kind: PurseKind,
        amount: u32,
        terminal_id: [u8; 6],
        when: DateTime,
    ) -> Result<Receipt, PurseError> {
        let info = self.open()?;
        let req = InitializeData {
            key_index: sam.key_index,
            amount,
            terminal_id,
        };
        let (d, sw) = self.send(&req.initialize_for_purchase(kind))?;
        let rsp = InitPurchaseResponse::parse(&ResponseView::new(&d, sw))
            .map_err(|e| shape("INITIALIZE FOR PURCHASE", e))?;
        let tx_type = kind.purchase_type();
        let (serial, mac1) = sam.mac1(&info.asn, &rsp, tx_type, amount, &terminal_id, &when);
        let debit = pboc::debit_for_purchase(&serial, &when, &mac1);
        let mut receipt = Receipt {
            kind: "PURCHASE",
            wallet: kind,
            aid: self.aid.clone(),
            asn: info.asn,
            amount,
            before: rsp.balance,
            after: rsp
                .balance
                .saturating_sub(i32::try_from(amount).unwrap_or(i32::MAX)),
            atc: rsp.offline_atc,
            terminal_id,
            terminal_serial: Some(serial),
            when,
            tac: [0; 4],
            verified: "MAC2 verified by the SAM",
            recovered: false,
        };
        let (mac2, tac) = match self.send(&debit) {
            Ok((d, sw)) => {
                let (tac, mac2) = pboc::parse_pair(&ResponseView::new(&d, sw))
                    .map_err(|e| shape("DEBIT FOR PURCHASE", e))?;
                (mac2, tac)
            }
            Err(PurseError::Link(e)) => {
                // docs/epurse.md "Terminal tear recovery": the balance tells whether the debit
                // happened; never send the DEBIT again.
                let balance = self.resume(kind).map_err(|r| {
                    PurseError::Unknown(format!(
                        "transaction outcome unknown: DEBIT FOR PURCHASE answer lost ({e}); {r}"
                    ))
                })?;
                if balance == rsp.balance {
                    return Err(PurseError::Unknown(format!(
                        "DEBIT FOR PURCHASE answer lost ({e}); the balance is unchanged: the purchase did not happen and nothing was debited"
                    )));
                }
                if balance != receipt.after {
                    return Err(PurseError::Unknown(format!(
                        "transaction outcome unknown: DEBIT FOR PURCHASE answer lost ({e}); the balance is {balance}, neither {} nor {}",
                        rsp.balance, receipt.after
                    )));
                }
                let (mac2, tac) = self.prove(tx_type, rsp.offline_atc)?;
                receipt.recovered = true;
                receipt.verified = "MAC2 from GET TRANSACTION PROVE verified by the SAM";
                (mac2, tac)
            }
            Err(other) => return Err(other),
        };
        if !sam.check_mac2(&mac2) {
            return Err(PurseError::Verification(
                "the SAM rejects the card's MAC2 (not the card the SAM computed MAC1 for)".into(),
            ));
        }
        receipt.tac = tac;
        Ok(receipt)
    }
}

/// Which online transaction [`Terminal::online`] runs.
#[derive(Debug, Clone, Copy)]
enum Online {
    /// A load into the EP or the ED.
    Load(PurseKind),
    /// An ED unload.
    Unload,
}

/// A software PSAM (simulation): the purchase master key, diversified per card with its
/// ASN; MAC1 for DEBIT FOR PURCHASE, MAC2 check, a terminal transaction serial.
pub(crate) struct SoftSam {
    master: TdesKey,
    key_index: u8,
    serial: u32,
    pending: Option<(epurse::crypto::DesKey, u32)>,
}

impl SoftSam {
    /// A SAM with the DPK master key of `key_index`, starting after `serial`.
    pub(crate) fn new(master: &Key16, key_index: u8, serial: u32) -> Self {
        Self {
            master: TdesKey::new(master),
            key_index,
            serial,
            pending: None,
        }
    }

    fn mac1(
        &mut self,
        asn: &[u8; 8],
        rsp: &InitPurchaseResponse,
        tx_type: u8,
        amount: u32,
        terminal_id: &[u8; 6],
        when: &DateTime,
    ) -> ([u8; 4], [u8; 4]) {
        self.serial = self.serial.wrapping_add(1);
        let serial = self.serial.to_be_bytes();
        let dpk = TdesKey::new(&pboc::diversify(&self.master, asn));
        let ses = pboc::purchase_session_key(&dpk, &rsp.random, rsp.offline_atc, &serial);
        let mac1 = pboc::purchase_mac1(&ses, amount, tx_type, terminal_id, when);
        self.pending = Some((ses, amount));
        (serial, mac1)
    }

    fn check_mac2(&mut self, mac2: &[u8; 4]) -> bool {
        self.pending.take().is_some_and(|(ses, amount)| {
            epurse::crypto::mac_eq(&pboc::purchase_mac2(&ses, amount), mac2)
        })
    }
}
