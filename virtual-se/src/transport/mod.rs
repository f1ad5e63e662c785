//! The vpcd transport: serves a [`VirtualCard`] to pcscd's `vpcd` reader driver.
//!
//! - [`frame`] is the Sans-IO wire format (2-byte big-endian length + payload, 1-byte control
//!   codes), decoded without panicking on any bytes.
//! - [`server`] is the blocking socket loop for both vpcd modes: `--listen` (reverse mode, the
//!   card listens on loopback and vpcd connects) and `--connect` (vpcd listens, the card
//!   connects).

pub mod frame;
pub mod server;

pub use frame::{Control, FrameDecoder, FrameError, Request, encode_frame};
pub use server::{
    ConnectionEnd, Endpoint, Event, EventSink, ResponseLoss, ServeOptions, Server, SessionState,
    ShutdownHandle, VPCD_DEFAULT_PORT, serve_connection,
};

/// The card behind the transport: what a reader can do to a smart card.
///
/// The card runtime implements this; the transport only moves bytes.
pub trait VirtualCard: Send {
    /// The answer to reset (ISO/IEC 7816-3 §8) the card presents at power on and reset.
    fn atr(&self) -> Vec<u8>;

    /// Power the card on (vpcd control code `01`).
    fn power_on(&mut self);

    /// Power the card off (vpcd control code `00`): transient state is lost, secure channels
    /// close, selections are cleared.
    fn power_off(&mut self);

    /// Warm reset (vpcd control code `02`): the same effect on transient state as a power cycle.
    fn reset(&mut self);

    /// Process one command APDU and return the response `data || SW1 SW2`.
    ///
    /// Must never panic and must always return at least the two status bytes.
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8>;

    /// Called once when the server shuts down, so the card can flush anything it buffers.
    ///
    /// The default does nothing (a card that commits every APDU has nothing to flush).
    ///
    /// # Errors
    /// [`crate::Error`] when the card could not flush its state.
    fn shutdown(&mut self) -> Result<(), crate::Error> {
        Ok(())
    }

    /// Whether the APDU just answered by [`transmit`](Self::transmit) committed persistent
    /// changes. Used by the "response lost after commit" fault mode; the default says `true`
    /// (conservatively treating every APDU as a writer).
    fn last_apdu_committed(&self) -> bool {
        true
    }
}

impl<C: VirtualCard + ?Sized> VirtualCard for Box<C> {
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }
    fn power_on(&mut self) {
        (**self).power_on();
    }
    fn power_off(&mut self) {
        (**self).power_off();
    }
    fn reset(&mut self) {
        (**self).reset();
    }
    fn transmit(&mut self, apdu: &[u8]) -> Vec<u8> {
        (**self).transmit(apdu)
    }
    fn shutdown(&mut self) -> Result<(), crate::Error> {
        (**self).shutdown()
    }
    fn last_apdu_committed(&self) -> bool {
        (**self).last_apdu_committed()
    }
}

/// Errors of the transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the server was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The peer sent bytes that are not vpcd framing.
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    /// An address could not be parsed or resolved.
    #[error("bad address {0:?}")]
    Address(String),
}
