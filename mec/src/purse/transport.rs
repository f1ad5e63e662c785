//! How `mec purse` reaches the purse: a [`Link`] moves one APDU and can reconnect after the
//! card went away (a lost response). Two implementations: [`PcscLink`] (a PC/SC reader, so
//! also the virtual SE behind vpcd) and [`VirtualLink`] (a `virtual_se` card in this process,
//! with an optional "response lost after commit" fault like `mec vse serve --lose-response`).

use std::time::{Duration, Instant};

use virtual_se::card::Card;
use virtual_se::store::Store;
use virtual_se::transport::VirtualCard;

/// A transport failure: the reader, the PC/SC service or the card connection (never a status
/// word, which is the card's answer).
#[derive(Debug)]
pub(crate) struct LinkError(pub(crate) String);

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LinkError {}

/// Moves APDUs to the purse's card.
pub(crate) trait Link {
    /// Send `apdu`, return `data || SW1 SW2`.
    ///
    /// # Errors
    /// [`LinkError`] when the reader or the connection fails (the answer may be lost).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError>;

    /// Connect again after a failure (the card left the field and came back), waiting up to
    /// `timeout` for it.
    ///
    /// # Errors
    /// [`LinkError`] when the card does not come back in time.
    fn reconnect(&mut self, timeout: Duration) -> Result<(), LinkError>;
}

/// A card in a PC/SC reader.
pub(crate) struct PcscLink {
    filter: Option<String>,
    card: pcsc::Card,
    reader: String,
    buffer: Vec<u8>,
}

fn context() -> Result<pcsc::Context, LinkError> {
    pcsc::Context::establish(pcsc::Scope::User).map_err(|e| {
        LinkError(format!(
            "cannot reach the PC/SC service ({e}); is pcscd running? (Debian: apt-get install pcscd)"
        ))
    })
}

/// Connect to the first reader whose name contains `filter` (case-insensitive) and holds a
/// card.
fn connect(filter: Option<&str>) -> Result<(pcsc::Card, String), LinkError> {
    let ctx = context()?;
    let names = match ctx.list_readers_owned() {
        Ok(n) => n,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(LinkError(format!("listing readers: {e}"))),
    };
    if names.is_empty() {
        return Err(LinkError(
            "no PC/SC reader found (is the reader plugged in, or `mec vse serve` running with vpcd?)"
                .into(),
        ));
    }
    let wanted = filter.map(str::to_lowercase);
    let mut seen = Vec::new();
    for name in &names {
        let text = name.to_string_lossy().into_owned();
        if wanted
            .as_deref()
            .is_some_and(|w| !text.to_lowercase().contains(w))
        {
            seen.push(format!("\"{text}\" (not matching)"));
            continue;
        }
        match ctx.connect(name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY) {
            Ok(card) => return Ok((card, text)),
            Err(e) => seen.push(format!("\"{text}\" ({e})")),
        }
    }
    Err(LinkError(format!(
        "no card in a matching reader; readers: {}",
        seen.join(", ")
    )))
}

impl PcscLink {
    /// Connect to the first matching reader holding a card.
    ///
    /// # Errors
    /// [`LinkError`] naming the readers seen when none matches or holds a card.
    pub(crate) fn connect(filter: Option<&str>) -> Result<Self, LinkError> {
        let (card, reader) = connect(filter)?;
        Ok(Self {
            filter: filter.map(str::to_owned),
            card,
            reader,
            buffer: vec![0; pcsc::MAX_BUFFER_SIZE],
        })
    }
}

impl Link for PcscLink {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
        let answer = self
            .card
            .transmit(apdu, &mut self.buffer)
            .map(<[u8]>::to_vec)
            .map_err(|e| LinkError(format!("{}: transmit: {e}", self.reader)))?;
        if answer.len() < 2 {
            // vpcd delivers an empty answer when the card drops the connection mid-command:
            // the answer was lost, not malformed.
            return Err(LinkError(format!(
                "{}: no answer from the card (connection lost)",
                self.reader
            )));
        }
        Ok(answer)
    }

    fn reconnect(&mut self, timeout: Duration) -> Result<(), LinkError> {
        let start = Instant::now();
        loop {
            match connect(self.filter.as_deref()) {
                Ok((card, reader)) => {
                    self.card = card;
                    self.reader = reader;
                    return Ok(());
                }
                Err(e) if start.elapsed() >= timeout => {
                    return Err(LinkError(format!(
                        "the card did not come back within {} s: {e}",
                        timeout.as_secs()
                    )));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// A virtual SE card in this process.
pub(crate) struct VirtualLink<S: Store + Send> {
    card: Card<S>,
    /// Drop the answer to this committing APDU (0-based), then power the card off.
    lose_response: Option<u64>,
    /// Power the card off instead of sending this APDU (0-based, counting every APDU): a
    /// power cut before the card processed it.
    drop_apdu: Option<u64>,
    committed: u64,
    sent: u64,
    present: bool,
}

impl<S: Store + Send> VirtualLink<S> {
    /// Power the card on and wrap it.
    pub(crate) fn new(
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

impl<S: Store + Send> Link for VirtualLink<S> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
        if !self.present {
            return Err(LinkError("in-process virtual SE: card removed".into()));
        }
        let n = self.sent;
        self.sent = self.sent.saturating_add(1);
        if self.drop_apdu == Some(n) {
            self.card.power_off();
            self.present = false;
            return Err(LinkError(
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
                return Err(LinkError(
                    "in-process virtual SE: response lost after commit (injected), card removed"
                        .into(),
                ));
            }
        }
        Ok(answer)
    }

    fn reconnect(&mut self, _timeout: Duration) -> Result<(), LinkError> {
        self.card.power_on();
        self.present = true;
        Ok(())
    }
}
