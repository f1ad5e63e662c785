//! The built-in e-purse applet: the `epurse` crate's PBOC-style purse state machine hosted by
//! the applet runtime (the contract is `docs/epurse.md`, "What a host runtime calls").
//!
//! - INSTALL [for install]: a fresh [`PurseState`] for the instance AID, stored as one record
//!   (key [`STATE_KEY`]) of the applet's namespace, in the stable checksummed encoding
//!   (`PurseState::to_bytes`).
//! - STORE DATA routed by the security domain after INSTALL [for personalization]:
//!   [`epurse::card::personalize`]; DGIs in the clear (the SD removed secure messaging).
//! - SELECT (performed by the registry): [`epurse::card::select`] answers the FCI, or `9303`
//!   for a permanently locked purse.
//! - Every other APDU: [`epurse::card::process`] with 16 random bytes from the card's random
//!   source; a new state is written in the command's transaction, so balance, ATC, log record
//!   and prove record commit together or not at all (the runtime commits after the applet
//!   returns, before the response leaves the card).
//! - The persistent state is read from the store at every command (never cached across
//!   commands), so a command whose commit failed (a tear) can never leave the instance with a
//!   state the store does not have. The transient [`Session`] lives in the instance: it is
//!   lost at deselection, reset and power off, as the contract requires.
//!
//! The same load file has a second module, [`EPURSE_TICKET_MODULE`]: the e-ticket store
//! ([`epurse::ticket`]), whose INSTALL parameters (tag `C9`) are the 16-byte ticket delivery
//! key (the store has no STORE DATA; the key travels inside the secure channel of INSTALL).
//!
//! A third module, [`EPURSE_TAG_MODULE`], is the value-block tag ([`epurse::tag`], commands
//! with CLA `80`, `docs/value-tag.md`). Its INSTALL parameters (tag `C9`) are
//! `UID(7) || tag master key(16) || AN10922 AID(3) || system identifier(0..=21)`: the
//! instance is [`TagState::personalize`]d with them (the per-sector AN10922 keys are derived
//! at INSTALL and only they are stored; the master key travels inside the secure channel of
//! INSTALL and is not kept); malformed parameters fail INSTALL with `6A80`. The tag has no
//! STORE DATA. Only TRANSFER and CREDIT VOUCHER change its persistent state, each as one
//! record write of the command's transaction.
//!
//! A temporarily blocked purse answers SELECT with `6283` and its FCI
//! ([`Applet::select_with_status`]) and refuses transactions with `6985`.

use std::sync::Arc;

use apdu_codec::{CommandView, Response, StatusWord};
use epurse::card::TagAccess;
use epurse::card::{self, Entropy, PurseState, Reply, Session};
use epurse::crypto::Key16;
use epurse::tag::{self, TagSession, TagState, UID_LEN};
use epurse::ticket::{self, TicketSession, TicketState};

use super::{Applet, AppletContext, Package, StoreDataBlock};

/// Load file AID of the built-in e-purse package (project-proprietary, ISO 7816-5 category
/// `F`: "mecPU").
pub const EPURSE_LOAD_FILE: &[u8] = &[0xF0, 0x6D, 0x65, 0x63, 0x50, 0x55];
/// Module AID of the e-purse applet. Instances usually take a PBOC-style ADF AID such as
/// `A000000333010101` (`epurse::danger::TEST_AID`).
pub const EPURSE_MODULE: &[u8] = &[0xF0, 0x6D, 0x65, 0x63, 0x50, 0x55, 0x01];

/// Module AID of the e-ticket store applet (same load file).
pub const EPURSE_TICKET_MODULE: &[u8] = &[0xF0, 0x6D, 0x65, 0x63, 0x50, 0x55, 0x02];

/// Module AID of the value-block tag applet (same load file).
pub const EPURSE_TAG_MODULE: &[u8] = &[0xF0, 0x6D, 0x65, 0x63, 0x50, 0x55, 0x03];

/// The key of the one record holding the encoded [`PurseState`] in the applet's namespace.
pub const STATE_KEY: &[u8] = b"purse";

/// The e-purse applet instance: only the transient session (the persistent state is in the
/// store).
#[derive(Debug, Default)]
pub struct EpurseApplet {
    session: Session,
}

impl EpurseApplet {
    /// Its package (load file and three modules: purse, ticket store, value-block tag).
    #[must_use]
    pub fn package() -> Package {
        Package {
            load_file: EPURSE_LOAD_FILE.to_vec(),
            modules: vec![
                (
                    EPURSE_MODULE.to_vec(),
                    Arc::new(|| Box::new(EpurseApplet::default()) as Box<dyn Applet>),
                ),
                (
                    EPURSE_TICKET_MODULE.to_vec(),
                    Arc::new(|| Box::new(TicketApplet::default()) as Box<dyn Applet>),
                ),
                (
                    EPURSE_TAG_MODULE.to_vec(),
                    Arc::new(|| Box::new(TagApplet::default()) as Box<dyn Applet>),
                ),
            ],
        }
    }
}

/// What the adapters of the three epurse state machines (purse, ticket store, value-block
/// tag) share: the persistent state lives in one record ([`STATE_KEY`]) in its stable
/// checksummed encoding, is read at every command, and a command's new state is written in
/// the command's transaction; the transient session lives in the instance.
trait HostedMachine {
    /// The persistent state.
    type State;
    /// The transient session.
    type Session;

    fn session(&mut self) -> &mut Self::Session;
    fn reset_session(&mut self);
    fn decode(bytes: &[u8]) -> Result<Self::State, epurse::Error>;
    fn encode(state: &Self::State) -> Vec<u8>;
    /// One command: the reply and the new state to commit, if any.
    fn step(
        state: &Self::State,
        session: &mut Self::Session,
        command: &CommandView<'_>,
        entropy: &Entropy,
    ) -> (Reply, Option<Self::State>);

    /// Read and decode the committed state. A missing or corrupt record is a memory failure
    /// (`6581`): the store checksums every value, so only a bug gets here.
    fn load(ctx: &AppletContext<'_>) -> Result<Self::State, StatusWord> {
        let bytes = ctx.read(STATE_KEY)?.ok_or(StatusWord::MEMORY_FAILURE)?;
        Self::decode(&bytes).map_err(|_| StatusWord::MEMORY_FAILURE)
    }

    /// Write `state` as the one record of the command's transaction (for the purse: balance,
    /// ATC, log and prove record in one write; for the tag: block and voucher counter).
    fn save(ctx: &mut AppletContext<'_>, state: &Self::State) {
        ctx.write(STATE_KEY, &Self::encode(state));
    }

    /// INSTALL: store the fresh state, start a fresh session.
    fn install_state(
        &mut self,
        ctx: &mut AppletContext<'_>,
        state: &Self::State,
    ) -> Result<(), StatusWord> {
        Self::save(ctx, state);
        self.reset_session();
        Ok(())
    }

    /// Run one command against the committed state with 16 random bytes from the card's
    /// random source, writing the new state if the command made one.
    fn run(
        &mut self,
        command: &CommandView<'_>,
        ctx: &mut AppletContext<'_>,
    ) -> Result<Reply, StatusWord> {
        let state = Self::load(ctx)?;
        let entropy = entropy(ctx);
        let (reply, next) = Self::step(&state, self.session(), command, &entropy);
        if let Some(next) = next {
            Self::save(ctx, &next);
        }
        Ok(reply)
    }

    /// SELECT for a machine that selects itself by processing SELECT with its own AID.
    fn select_by_processing(&mut self, ctx: &mut AppletContext<'_>) -> Result<Vec<u8>, StatusWord> {
        let mut apdu = vec![0x00, 0xA4, 0x04, 0x00];
        apdu.push(u8::try_from(ctx.aid().len()).map_err(|_| StatusWord::WRONG_LENGTH)?);
        apdu.extend_from_slice(ctx.aid());
        let cmd = apdu_codec::parse_command(&apdu).map_err(|e| StatusWord::from(&e))?;
        let reply = self.run(&cmd, ctx)?;
        if reply.status() == StatusWord::SUCCESS {
            Ok(reply.data().to_vec())
        } else {
            Err(reply.status())
        }
    }
}

fn entropy(ctx: &mut AppletContext<'_>) -> Entropy {
    let mut e = [0u8; 16];
    ctx.fill_random(&mut e);
    Entropy(e)
}

/// The [`HostedMachine`] of an applet type: its state machine's state and session types and
/// its `process` function (the encodings are the states' `to_bytes` / `from_bytes`).
macro_rules! hosted_machine {
    ($applet:ty, $state:ty, $session:ty, $process:path) => {
        impl HostedMachine for $applet {
            type State = $state;
            type Session = $session;

            fn session(&mut self) -> &mut $session {
                &mut self.session
            }
            fn reset_session(&mut self) {
                self.session.reset();
            }
            fn decode(bytes: &[u8]) -> Result<$state, epurse::Error> {
                <$state>::from_bytes(bytes)
            }
            fn encode(state: &$state) -> Vec<u8> {
                state.to_bytes()
            }
            fn step(
                state: &$state,
                session: &mut $session,
                command: &CommandView<'_>,
                entropy: &Entropy,
            ) -> (Reply, Option<$state>) {
                let outcome = $process(state, session, command, entropy);
                (outcome.reply, outcome.new_state)
            }
        }
    };
}

hosted_machine!(EpurseApplet, PurseState, Session, card::process);
hosted_machine!(TicketApplet, TicketState, TicketSession, ticket::process);
// Only TRANSFER and CREDIT VOUCHER make a new tag state.
hosted_machine!(TagApplet, TagState, TagSession, tag::process);

impl Applet for EpurseApplet {
    fn install(&mut self, ctx: &mut AppletContext<'_>, params: &[u8]) -> Result<(), StatusWord> {
        // The purse takes no install parameters: everything comes with STORE DATA.
        if !params.is_empty() {
            return Err(StatusWord::INCORRECT_DATA);
        }
        let state = PurseState::new(ctx.aid()).map_err(|e| StatusWord::from(&e))?;
        self.install_state(ctx, &state)
    }

    fn select(&mut self, ctx: &mut AppletContext<'_>) -> Result<Vec<u8>, StatusWord> {
        self.select_with_status(ctx).map(|(fci, _)| fci)
    }

    fn select_with_status(
        &mut self,
        ctx: &mut AppletContext<'_>,
    ) -> Result<(Vec<u8>, StatusWord), StatusWord> {
        let state = Self::load(ctx)?;
        let reply = card::select(&state, &mut self.session);
        let sw = reply.status();
        // 9000, or 6283 with the FCI (blocked: selectable, transactions refused with 6985).
        if sw == StatusWord::SUCCESS || sw == StatusWord::SELECTED_FILE_INVALIDATED {
            Ok((reply.data().to_vec(), sw))
        } else {
            Err(sw)
        }
    }

    fn deselect(&mut self, _ctx: &mut AppletContext<'_>) {
        self.reset_session();
    }

    fn process(
        &mut self,
        command: &CommandView<'_>,
        ctx: &mut AppletContext<'_>,
    ) -> Result<Response, StatusWord> {
        self.run(command, ctx).map(|r| r.to_response())
    }

    fn personalize(
        &mut self,
        block: StoreDataBlock<'_>,
        ctx: &mut AppletContext<'_>,
    ) -> Result<Vec<u8>, StatusWord> {
        if block.p1 & 0x60 != 0 {
            // GPC 2.3 Table 11-77: application-level encryption of the data; the purse takes
            // its DGIs in the clear (protected by the secure channel's C-DECRYPTION).
            return Err(StatusWord::INCORRECT_DATA);
        }
        let state = Self::load(ctx)?;
        let outcome = card::personalize(&state, block.p1, block.data);
        match outcome.new_state {
            Some(next) => {
                Self::save(ctx, &next);
                Ok(outcome.reply.data().to_vec())
            }
            None => Err(outcome.reply.status()),
        }
    }
}

/// The e-ticket store instance: only the transient session.
#[derive(Debug, Default)]
pub struct TicketApplet {
    session: TicketSession,
}

impl Applet for TicketApplet {
    fn install(&mut self, ctx: &mut AppletContext<'_>, params: &[u8]) -> Result<(), StatusWord> {
        let key = Key16::from_slice(params).map_err(|_| StatusWord::INCORRECT_DATA)?;
        let state = TicketState::new(ctx.aid(), key).map_err(|e| StatusWord::from(&e))?;
        self.install_state(ctx, &state)
    }

    fn select(&mut self, ctx: &mut AppletContext<'_>) -> Result<Vec<u8>, StatusWord> {
        self.select_by_processing(ctx)
    }

    fn deselect(&mut self, _ctx: &mut AppletContext<'_>) {
        self.reset_session();
    }

    fn process(
        &mut self,
        command: &CommandView<'_>,
        ctx: &mut AppletContext<'_>,
    ) -> Result<Response, StatusWord> {
        self.run(command, ctx).map(|r| r.to_response())
    }
}

/// The value-block tag instance: only the transient session (authentication, transfer
/// buffer).
#[derive(Debug, Default)]
pub struct TagApplet {
    session: TagSession,
}

/// Parse the tag's INSTALL parameters `UID(7) || master key(16) || AN10922 AID(3) || system
/// identifier(0..=21)` (ours, `docs/value-tag.md`).
fn parse_tag_params(params: &[u8]) -> Result<([u8; UID_LEN], TagAccess), StatusWord> {
    let (uid, rest) = params
        .split_first_chunk::<UID_LEN>()
        .ok_or(StatusWord::INCORRECT_DATA)?;
    let (master, rest) = rest
        .split_first_chunk::<16>()
        .ok_or(StatusWord::INCORRECT_DATA)?;
    let (aid, system_identifier) = rest
        .split_first_chunk::<3>()
        .ok_or(StatusWord::INCORRECT_DATA)?;
    let access = TagAccess::new(Key16::new(*master), *aid, system_identifier)
        .map_err(|_| StatusWord::INCORRECT_DATA)?;
    Ok((*uid, access))
}

impl Applet for TagApplet {
    fn install(&mut self, ctx: &mut AppletContext<'_>, params: &[u8]) -> Result<(), StatusWord> {
        let (uid, access) = parse_tag_params(params)?;
        let state =
            TagState::personalize(ctx.aid(), uid, &access).map_err(|e| StatusWord::from(&e))?;
        self.install_state(ctx, &state)
    }

    fn select(&mut self, ctx: &mut AppletContext<'_>) -> Result<Vec<u8>, StatusWord> {
        // The tag answers no FCI.
        self.select_by_processing(ctx)
    }

    fn deselect(&mut self, _ctx: &mut AppletContext<'_>) {
        self.reset_session();
    }

    fn process(
        &mut self,
        command: &CommandView<'_>,
        ctx: &mut AppletContext<'_>,
    ) -> Result<Response, StatusWord> {
        self.run(command, ctx).map(|r| r.to_response())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::applet::{AppletStorage, Records};
    use crate::store::StoreError;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Mem(BTreeMap<Vec<u8>, Vec<u8>>);

    impl AppletStorage for Mem {
        fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self.0.get(key).cloned())
        }
        fn scan(&self) -> Result<Records, StoreError> {
            Ok(self.0.clone().into_iter().collect())
        }
        fn write(&mut self, key: &[u8], value: &[u8]) {
            self.0.insert(key.to_vec(), value.to_vec());
        }
        fn remove(&mut self, key: &[u8]) {
            self.0.remove(key);
        }
        fn begin_nested(&mut self) -> Result<(), StoreError> {
            Ok(())
        }
        fn commit_nested(&mut self) -> Result<(), StoreError> {
            Ok(())
        }
        fn abort_nested(&mut self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn run<T>(mem: &mut Mem, f: impl FnOnce(&mut AppletContext<'_>) -> T) -> T {
        let aid = epurse::danger::TEST_AID;
        let mut random = |b: &mut [u8]| b.fill(0x5A);
        let mut ctx = AppletContext::new(&aid, 0, 0, mem, &mut random);
        f(&mut ctx)
    }

    #[test]
    fn install_personalize_select_balance() {
        let mut mem = Mem::default();
        let mut applet = EpurseApplet::default();
        run(&mut mem, |ctx| applet.install(ctx, &[])).unwrap();
        assert_eq!(
            run(&mut mem, |ctx| applet.install(ctx, &[1])),
            Err(StatusWord::INCORRECT_DATA)
        );
        let perso = epurse::danger::test_personalization().unwrap();
        for cmd in perso.store_data_commands().unwrap() {
            let block = StoreDataBlock {
                p1: cmd.p1 | 0x08,
                block: cmd.p2,
                data: &cmd.data,
            };
            run(&mut mem, |ctx| applet.personalize(block, ctx)).unwrap();
        }
        // Personalizing an active purse is refused and changes nothing.
        let before = mem.0.clone();
        let block = StoreDataBlock {
            p1: 0x88,
            block: 0,
            data: &[0x01, 0x02, 0x00],
        };
        assert_eq!(
            run(&mut mem, |ctx| applet.personalize(block, ctx)),
            Err(StatusWord::CONDITIONS_NOT_SATISFIED)
        );
        assert_eq!(mem.0, before);
        let fci = run(&mut mem, |ctx| applet.select(ctx)).unwrap();
        assert_eq!(fci.first(), Some(&0x6F));
        let bytes = [0x80, 0x5C, 0x00, 0x02, 0x04];
        let cmd = apdu_codec::parse_command(&bytes).unwrap();
        let r = run(&mut mem, |ctx| applet.process(&cmd, ctx)).unwrap();
        assert_eq!(r.view().status(), StatusWord::SUCCESS);
        assert_eq!(r.view().data(), &[0, 0, 0, 0]);
        // Deselection forgets the selection: the purse then answers 6985.
        run(&mut mem, |ctx| applet.deselect(ctx));
        let r = run(&mut mem, |ctx| applet.process(&cmd, ctx)).unwrap();
        assert_eq!(r.view().status(), StatusWord::CONDITIONS_NOT_SATISFIED);
    }

    #[test]
    fn missing_or_corrupt_state_is_a_memory_failure() {
        let mut mem = Mem::default();
        let mut applet = EpurseApplet::default();
        assert_eq!(
            run(&mut mem, |ctx| applet.select(ctx)),
            Err(StatusWord::MEMORY_FAILURE)
        );
        mem.0.insert(STATE_KEY.to_vec(), b"EPS1 garbage".to_vec());
        assert_eq!(
            run(&mut mem, |ctx| applet.select(ctx)),
            Err(StatusWord::MEMORY_FAILURE)
        );
    }
}
