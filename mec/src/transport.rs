//! How `mec gp` and `mec purse` reach a card: a [`Transport`] moves one APDU and its answer
//! and can reconnect after the card went away (a lost response). Two implementations:
//! [`PcscTransport`] (a PC/SC reader, so also the virtual SE behind vpcd) and
//! [`VirtualTransport`] (a `virtual_se` card object in this process, for tests and for trying
//! `mec` without any reader, with optional injected faults like
//! `mec vse serve --lose-response`). [`Tracer`] writes the `--trace` lines.

use std::ffi::CString;
use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, Instant};

use virtual_se::card::Card;
use virtual_se::store::Store;
use virtual_se::transport::VirtualCard;

/// A transport failure (the reader, the PC/SC service or the card connection; never a status
/// word, which is the card's answer).
#[derive(Debug)]
pub(crate) struct TransportError(pub(crate) String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TransportError {}

/// Moves one command APDU to the card and returns its answer (`data || SW1 SW2`).
pub(crate) trait Transport {
    /// Send `apdu`, return the card's answer.
    ///
    /// # Errors
    /// [`TransportError`] when the reader or the connection fails.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// What the transport is connected to (for the trace).
    fn describe(&self) -> String {
        String::new()
    }

    /// The card's answer to reset (empty when unknown). `mec gp` reads the card capabilities
    /// in its historical bytes to decide on extended-length APDUs.
    fn atr(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Connect again after a failure (the card left the field and came back), waiting up to
    /// `timeout` for it.
    ///
    /// The default cannot reconnect.
    ///
    /// # Errors
    /// [`TransportError`] when the card does not come back in time.
    fn reconnect(&mut self, timeout: Duration) -> Result<(), TransportError> {
        let _ = timeout;
        Err(TransportError("this transport cannot reconnect".into()))
    }
}

/// A virtual SE card in this process.
pub(crate) struct VirtualTransport<S: Store> {
    /// The card (public so tests can look at its counters and registry).
    pub(crate) card: Card<S>,
    /// Drop the answer to this committing APDU (0-based), then power the card off.
    lose_response: Option<u64>,
    /// Power the card off instead of sending this APDU (0-based, counting every APDU): a
    /// power cut before the card processed it.
    drop_apdu: Option<u64>,
    committed: u64,
    sent: u64,
    present: bool,
}

impl<S: Store> VirtualTransport<S> {
    /// Power the card on and wrap it (no injected faults).
    pub(crate) fn new(card: Card<S>) -> Self {
        Self::with_faults(card, None, None)
    }

    /// Power the card on and wrap it, losing the answer to committing APDU number
    /// `lose_response` and/or cutting power instead of sending APDU number `drop_apdu`
    /// (both 0-based); after either, the card is removed until [`Transport::reconnect`].
    pub(crate) fn with_faults(
        mut card: Card<S>,
        lose_response: Option<u64>,
        drop_apdu: Option<u64>,
    ) -> Self {
        card.power_on();
        Self {
            card,
            lose_response,
            drop_apdu,
            committed: 0,
            sent: 0,
            present: true,
        }
    }
}

impl<S: Store> Transport for VirtualTransport<S> {
    fn atr(&self) -> Vec<u8> {
        self.card.atr().to_vec()
    }

    fn describe(&self) -> String {
        format!(
            "in-process virtual SE, ATR {}",
            hex::encode_upper(self.card.atr())
        )
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if !self.present {
            return Err(TransportError("in-process virtual SE: card removed".into()));
        }
        let n = self.sent;
        self.sent = self.sent.saturating_add(1);
        if self.drop_apdu == Some(n) {
            self.card.power_off();
            self.present = false;
            return Err(TransportError(
                "in-process virtual SE: card removed before the command (injected)".into(),
            ));
        }
        let answer = self.card.transmit(apdu);
        if VirtualCard::last_apdu_committed(&self.card) {
            let n = self.committed;
            self.committed = self.committed.saturating_add(1);
            if self.lose_response == Some(n) {
                self.card.power_off();
                self.present = false;
                return Err(TransportError(
                    "in-process virtual SE: response lost after commit (injected), card removed"
                        .into(),
                ));
            }
        }
        Ok(answer)
    }

    fn reconnect(&mut self, _timeout: Duration) -> Result<(), TransportError> {
        self.card.power_on();
        self.present = true;
        Ok(())
    }
}

/// A card in a PC/SC reader.
pub(crate) struct PcscTransport {
    /// The reader-name filter given to [`PcscTransport::connect`] (used again to reconnect).
    filter: Option<String>,
    card: pcsc::Card,
    /// The reader's name.
    pub(crate) reader: String,
    /// The card's ATR.
    pub(crate) atr: Vec<u8>,
    buffer: Vec<u8>,
}

/// One PC/SC reader and its card.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ReaderInfo {
    /// Reader name.
    pub(crate) name: String,
    /// Whether a card is present.
    pub(crate) card_present: bool,
    /// The card's ATR (hex) when one is present.
    pub(crate) atr: Option<String>,
}

fn pcsc_context() -> Result<pcsc::Context, TransportError> {
    pcsc::Context::establish(pcsc::Scope::User).map_err(|e| {
        TransportError(format!(
            "cannot reach the PC/SC service ({e}); is pcscd running? (Debian: apt-get install pcscd)"
        ))
    })
}

/// List the PC/SC readers with card presence and ATR.
///
/// # Errors
/// [`TransportError`] when the PC/SC service cannot be reached.
pub(crate) fn list_readers() -> Result<Vec<ReaderInfo>, TransportError> {
    let ctx = pcsc_context()?;
    let names = match ctx.list_readers_owned() {
        Ok(n) => n,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(TransportError(format!("listing readers: {e}"))),
    };
    let mut states: Vec<pcsc::ReaderState> = names
        .iter()
        .map(|n| pcsc::ReaderState::new(n.clone(), pcsc::State::UNAWARE))
        .collect();
    if !states.is_empty() {
        ctx.get_status_change(std::time::Duration::from_millis(500), &mut states)
            .map_err(|e| TransportError(format!("reading reader states: {e}")))?;
    }
    Ok(states
        .iter()
        .map(|s| {
            let present = s.event_state().contains(pcsc::State::PRESENT);
            ReaderInfo {
                name: s.name().to_string_lossy().into_owned(),
                card_present: present,
                atr: (present && !s.atr().is_empty()).then(|| hex::encode_upper(s.atr())),
            }
        })
        .collect())
}

impl PcscTransport {
    /// Connect to the first reader whose name contains `filter` (case-insensitive) and that
    /// holds a card; without a filter, the first reader with a card.
    ///
    /// # Errors
    /// [`TransportError`] naming the readers seen when none matches or holds a card.
    pub(crate) fn connect(filter: Option<&str>) -> Result<Self, TransportError> {
        let readers = list_readers()?;
        if readers.is_empty() {
            return Err(TransportError(
                "no PC/SC reader found (is the reader plugged in, or `mec vse serve` running with vpcd?)"
                    .into(),
            ));
        }
        let wanted = filter.map(str::to_lowercase);
        let matching: Vec<&ReaderInfo> = readers
            .iter()
            .filter(|r| {
                wanted
                    .as_deref()
                    .is_none_or(|w| r.name.to_lowercase().contains(w))
            })
            .collect();
        let seen = readers
            .iter()
            .map(|r| {
                format!(
                    "\"{}\" ({})",
                    r.name,
                    if r.card_present { "card" } else { "empty" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        if matching.is_empty() {
            return Err(TransportError(format!(
                "no reader name contains \"{}\"; readers: {seen}",
                filter.unwrap_or_default()
            )));
        }
        let Some(reader) = matching.iter().find(|r| r.card_present) else {
            return Err(TransportError(format!(
                "no card in the matching reader(s); readers: {seen}"
            )));
        };
        let ctx = pcsc_context()?;
        let name = CString::new(reader.name.clone())
            .map_err(|_| TransportError("reader name with a NUL byte".into()))?;
        let card = ctx
            .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
            .map_err(|e| TransportError(format!("connecting to \"{}\": {e}", reader.name)))?;
        let atr = card
            .status2_owned()
            .map(|s| s.atr().to_vec())
            .unwrap_or_default();
        Ok(Self {
            filter: filter.map(str::to_owned),
            card,
            reader: reader.name.clone(),
            atr,
            buffer: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        })
    }
}

impl Transport for PcscTransport {
    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn describe(&self) -> String {
        format!(
            "reader \"{}\", ATR {}",
            self.reader,
            hex::encode_upper(&self.atr)
        )
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.card
            .transmit(apdu, &mut self.buffer)
            .map(<[u8]>::to_vec)
            .map_err(|e| TransportError(format!("{}: transmit: {e}", self.reader)))
    }

    fn reconnect(&mut self, timeout: Duration) -> Result<(), TransportError> {
        let start = Instant::now();
        loop {
            match Self::connect(self.filter.as_deref()) {
                Ok(fresh) => {
                    *self = fresh;
                    return Ok(());
                }
                Err(e) if start.elapsed() >= timeout => {
                    return Err(TransportError(format!(
                        "the card did not come back within {} s: {e}",
                        timeout.as_secs()
                    )));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// Writes `--trace` lines: `C: <hex>` and `R: <hex>` for what crosses the wire, and the
/// plain APDU before secure messaging wraps it as a `# C: <hex>` comment (the unwrapped
/// response as `# R: <hex>`).
pub(crate) struct Tracer {
    out: Option<Box<dyn Write>>,
}

impl Tracer {
    /// No tracing.
    pub(crate) fn off() -> Self {
        Self { out: None }
    }

    /// Trace to `out`.
    pub(crate) fn to(out: Box<dyn Write>) -> Self {
        Self { out: Some(out) }
    }

    fn line(&mut self, prefix: &str, bytes: &[u8]) {
        if let Some(out) = self.out.as_mut() {
            let mut s = String::with_capacity(prefix.len() + bytes.len() * 2 + 1);
            s.push_str(prefix);
            for b in bytes {
                let _ = write!(s, "{b:02X}");
            }
            // Tracing must never stop the card session: a closed stderr is ignored.
            let _ = writeln!(out, "{s}");
        }
    }

    /// A command on the wire.
    pub(crate) fn command(&mut self, apdu: &[u8]) {
        self.line("C: ", apdu);
    }

    /// A response on the wire.
    pub(crate) fn response(&mut self, apdu: &[u8]) {
        self.line("R: ", apdu);
    }

    /// The plain command before wrapping.
    pub(crate) fn plain_command(&mut self, apdu: &[u8]) {
        self.line("# C: ", apdu);
    }

    /// The plain response after unwrapping.
    pub(crate) fn plain_response(&mut self, apdu: &[u8]) {
        self.line("# R: ", apdu);
    }

    /// A free comment line.
    pub(crate) fn comment(&mut self, text: &str) {
        if let Some(out) = self.out.as_mut() {
            let _ = writeln!(out, "# {text}");
        }
    }
}
