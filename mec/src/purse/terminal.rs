//! The terminal side of the purse: load (as the issuer's load authority), purchase (with a
//! software SAM), balance, log, transaction prove; tear recovery after a lost answer.
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

use crate::transport::{Transport, TransportError};

/// How long a terminal waits for the card to come back after a lost answer.
pub(crate) const RECONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a purse operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PurseError {
    /// The card refused a command.
    #[error("{what}: card answered {sw}")]
    Status {
        /// The command.
        what: String,
        /// Its status word (Display gives the code and its meaning).
        sw: StatusWord,
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
}

/// A purse terminal over a link.
pub(crate) struct Terminal<'a> {
    link: &'a mut dyn Transport,
    aid: Vec<u8>,
}

/// What a load or purchase did.
#[derive(Debug, Clone)]
pub(crate) struct Receipt {
    /// "LOAD" or "PURCHASE".
    pub(crate) kind: &'static str,
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
    /// Online ATC (load) or offline ATC (purchase) of the transaction.
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

fn check(what: &str, r: &ResponseView<'_>) -> Result<(), PurseError> {
    if r.status() == StatusWord::SUCCESS {
        Ok(())
    } else {
        Err(PurseError::Status {
            what: what.into(),
            sw: r.status(),
        })
    }
}

fn shape(what: &str, e: epurse::Error) -> PurseError {
    match e {
        epurse::Error::Card(sw) => PurseError::Status {
            what: what.into(),
            sw,
        },
        other => PurseError::Verification(format!("{what}: {other}")),
    }
}

/// The issuer's keys a load terminal simulates (test and simulation only).
pub(crate) struct IssuerKeys {
    /// Master key of the DLK (function 02), index and version.
    pub(crate) load_master: Key16,
    /// Master key of the DTK (function 03).
    pub(crate) tac_master: Key16,
    /// Key index and version of the DLK the card carries.
    pub(crate) load_key: (u8, u8),
    /// The DTK the card carries.
    pub(crate) tac_key: TacKeyRef,
}

impl IssuerKeys {
    fn authority(&self) -> LoadAuthority<InMemoryMasterKeys> {
        let mut store = InMemoryMasterKeys::new();
        store.insert(
            key_function::LOAD,
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
        Self { link, aid }
    }

    fn send(&mut self, cmd: &Command) -> Result<(Vec<u8>, StatusWord), PurseError> {
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

    fn expect(&mut self, what: &str, cmd: &Command) -> Result<Vec<u8>, PurseError> {
        let (data, sw) = self.send(cmd)?;
        check(what, &ResponseView::new(&data, sw))?;
        Ok(data)
    }

    /// SELECT the purse and read its issuer file.
    ///
    /// # Errors
    /// [`PurseError`].
    pub(crate) fn select(&mut self) -> Result<PurseInfo, PurseError> {
        let select = Command::new(0x00, 0xA4, 0x04, 0x00)
            .with_data(self.aid.clone())
            .with_le(0x100);
        self.expect("SELECT purse", &select)?;
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
        })
    }

    /// GET BALANCE of the EP.
    ///
    /// # Errors
    /// [`PurseError`].
    pub(crate) fn balance(&mut self) -> Result<i32, PurseError> {
        let (d, sw) = self.send(&pboc::get_balance(PurseKind::Ep))?;
        pboc::parse_balance(&ResponseView::new(&d, sw)).map_err(|e| shape("GET BALANCE", e))
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

    /// After a lost answer: reconnect, select, read the balance.
    /// Transport failures are retried until [`RECONNECT_TIMEOUT`] (the reader may come and go
    /// while the card returns); a status word ends the attempt at once.
    fn resume(&mut self) -> Result<i32, PurseError> {
        let start = std::time::Instant::now();
        loop {
            let attempt = self
                .link
                .reconnect(RECONNECT_TIMEOUT)
                .map_err(PurseError::from)
                .and_then(|()| self.select())
                .and_then(|_| self.balance());
            match attempt {
                Err(PurseError::Link(e)) if start.elapsed() < RECONNECT_TIMEOUT => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(300));
                }
                other => return other,
            }
        }
    }

    /// A load: INITIALIZE FOR LOAD, MAC1 checked and MAC2 made by the load authority, CREDIT
    /// FOR LOAD, TAC checked. A lost CREDIT answer is settled with GET TRANSACTION PROVE.
    ///
    /// # Errors
    /// [`PurseError`].
    pub(crate) fn load(
        &mut self,
        keys: &IssuerKeys,
        amount: u32,
        terminal_id: [u8; 6],
        when: DateTime,
    ) -> Result<Receipt, PurseError> {
        let info = self.select()?;
        let req = InitializeData {
            key_index: keys.load_key.0,
            amount,
            terminal_id,
        };
        let (d, sw) = self.send(&req.initialize_for_load(PurseKind::Ep))?;
        let rsp = InitLoadResponse::parse(&ResponseView::new(&d, sw))
            .map_err(|e| shape("INITIALIZE FOR LOAD", e))?;
        let mut auth = keys
            .authority()
            .begin_load(&info.asn, PurseKind::Ep, &req, &rsp)
            .map_err(|e| {
                PurseError::Verification(format!("issuer refuses MAC1 of INITIALIZE FOR LOAD: {e}"))
            })?;
        let credit = auth.command(&when);
        let mut receipt = Receipt {
            kind: "LOAD",
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
        let answer = match self.send(&credit) {
            Ok(a) => a,
            Err(PurseError::Link(e)) => {
                let balance = self.resume().map_err(|r| {
                    PurseError::Unknown(format!(
                        "transaction outcome unknown: CREDIT FOR LOAD answer lost ({e}); {r}"
                    ))
                })?;
                let (d, sw) = self.send(&pboc::get_transaction_prove(
                    auth.tx_type(),
                    auth.online_atc(),
                ))?;
                if sw == StatusWord::MAC_UNAVAILABLE && balance == rsp.balance {
                    return Err(PurseError::Unknown(format!(
                        "CREDIT FOR LOAD answer lost ({e}); the card did not complete the load \
                         (balance unchanged, GET TRANSACTION PROVE answered {sw}): nothing was credited"
                    )));
                }
                receipt.tac = auth.verify_prove(&ResponseView::new(&d, sw)).map_err(|x| {
                    PurseError::Unknown(format!(
                        "transaction outcome unknown: GET TRANSACTION PROVE: {x}"
                    ))
                })?;
                if balance != auth.new_balance() {
                    return Err(PurseError::Unknown(format!(
                        "transaction outcome unknown: load proved but the balance is {balance}, expected {}",
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
            .map_err(|e| shape("CREDIT FOR LOAD", e))?;
        Ok(receipt)
    }

    /// A purchase: INITIALIZE FOR PURCHASE, the SAM's MAC1, DEBIT FOR PURCHASE, MAC2 checked
    /// by the SAM. A lost DEBIT answer is settled by re-reading the balance and GET
    /// TRANSACTION PROVE; the DEBIT is never sent twice.
    ///
    /// # Errors
    /// [`PurseError`].
    pub(crate) fn purchase(
        &mut self,
        sam: &mut SoftSam,
        amount: u32,
        terminal_id: [u8; 6],
        when: DateTime,
    ) -> Result<Receipt, PurseError> {
        let info = self.select()?;
        let req = InitializeData {
            key_index: sam.key_index,
            amount,
            terminal_id,
        };
        let (d, sw) = self.send(&req.initialize_for_purchase(PurseKind::Ep))?;
        let rsp = InitPurchaseResponse::parse(&ResponseView::new(&d, sw))
            .map_err(|e| shape("INITIALIZE FOR PURCHASE", e))?;
        let (serial, mac1) = sam.mac1(&info.asn, &rsp, amount, &terminal_id, &when);
        let debit = pboc::debit_for_purchase(&serial, &when, &mac1);
        let mut receipt = Receipt {
            kind: "PURCHASE",
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
                let balance = self.resume().map_err(|r| {
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
                let (mac2, tac) = self.prove(pboc::TYPE_EP_PURCHASE, rsp.offline_atc)?;
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
        amount: u32,
        terminal_id: &[u8; 6],
        when: &DateTime,
    ) -> ([u8; 4], [u8; 4]) {
        self.serial = self.serial.wrapping_add(1);
        let serial = self.serial.to_be_bytes();
        let dpk = TdesKey::new(&pboc::diversify(&self.master, asn));
        let ses = pboc::purchase_session_key(&dpk, &rsp.random, rsp.offline_atc, &serial);
        let mac1 = pboc::purchase_mac1(&ses, amount, pboc::TYPE_EP_PURCHASE, terminal_id, when);
        self.pending = Some((ses, amount));
        (serial, mac1)
    }

    fn check_mac2(&mut self, mac2: &[u8; 4]) -> bool {
        self.pending.take().is_some_and(|(ses, amount)| {
            epurse::crypto::mac_eq(&pboc::purchase_mac2(&ses, amount), mac2)
        })
    }
}
