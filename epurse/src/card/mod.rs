//! Card side: the PBOC-style purse applet as a state machine.
//!
//! - [`PurseState`]: everything persistent, with a stable checksummed encoding.
//! - [`Session`]: everything transient (selection, PIN verified, a pending INITIALIZE).
//! - [`process`]: one command in, an [`Outcome`] out: the reply and, only when the command
//!   changed persistent state, the complete new state. A host runtime persists that state
//!   atomically and only then answers; that is how every command commits all or nothing.
//! - [`Purse`]: a convenience runtime that keeps both in memory and commits at once.

mod applet;
mod reply;
pub(crate) mod state;

pub use applet::{
    DGI_ISSUER, DGI_KEY_BASE, DGI_LIMITS, DGI_PIN, DGI_TAG, INS_MOVE_TO_TAG, ISSUER_FILE_LEN,
    Outcome, SFI_ISSUER, SFI_LOG, Session, issuer_mac, personalize, pin_block, process, select,
};
pub use reply::{Entropy, REPLY_MAX, Reply};
pub use state::{
    Account, CardKey, IssuerData, LOG_RECORD_LEN, LOG_RECORDS, Lifecycle, LogRecord, MAX_AID,
    MAX_KEYS, MAX_SYSTEM_IDENTIFIER, PROVE_RECORDS, Pin, ProveRecord, PurseState, TagAccess,
    key_function,
};

use apdu_codec::{CommandView, StatusWord, parse_command};

/// An in-memory purse: the state and the session together, committing each command's new
/// state immediately. Useful for tests, examples and single-process simulations; a runtime
/// with a persistent store (the virtual SE) uses [`process`] directly.
#[derive(Debug)]
pub struct Purse {
    state: PurseState,
    session: Session,
}

impl Purse {
    /// A purse over a state (fresh session, nothing selected).
    #[must_use]
    pub fn new(state: PurseState) -> Self {
        Purse {
            state,
            session: Session::new(),
        }
    }

    /// The committed persistent state.
    #[must_use]
    pub const fn state(&self) -> &PurseState {
        &self.state
    }

    /// The transient session.
    #[must_use]
    pub const fn session(&self) -> &Session {
        &self.session
    }

    /// Process a parsed command and commit its new state.
    pub fn process(&mut self, cmd: &CommandView<'_>, entropy: &Entropy) -> Reply {
        let out = process(&self.state, &mut self.session, cmd, entropy);
        if let Some(next) = out.new_state {
            self.state = next;
        }
        out.reply
    }

    /// Process raw APDU bytes (a malformed APDU gets the codec's status word).
    pub fn process_apdu(&mut self, apdu: &[u8], entropy: &Entropy) -> Reply {
        match parse_command(apdu) {
            Ok(cmd) => self.process(&cmd, entropy),
            Err(e) => Reply::status_only(StatusWord::from(&e)),
        }
    }

    /// Simulate a power cut: the session is lost, committed state stays.
    pub fn power_cycle(&mut self) {
        self.session.reset();
    }

    /// Take the state back out.
    #[must_use]
    pub fn into_state(self) -> PurseState {
        self.state
    }
}
