//! The checking function of the `card_apdus` fuzz target, kept in the library so that
//! `tests/card_fuzz.rs` replays the committed corpus through the same code. Not stable API.

use std::sync::OnceLock;

use apdu_codec::{Command, parse_command, parse_response};
use chacha20::ChaCha20Rng;
use gp_scp::keys::{KeySet, KeyType, danger_test_keys::K40};
use gp_scp::scp03::host::Scp03HostConfig;
use gp_scp::{HostProtocol, HostSession, HostStep, SecurityLevel};
use rand_core::SeedableRng;

use super::Card;
use crate::applet::Packages;
use crate::profile::Profile;
use crate::store::MemoryStore;

/// Open an SCP03 session with the default keys; `None` if the card refuses.
fn open_session(card: &mut Card<MemoryStore>, level: u8) -> Option<HostSession> {
    let level = SecurityLevel::scp03(level).unwrap_or(SecurityLevel::ALL);
    let keys = KeySet::single(0xFF, KeyType::Aes, &K40).ok()?;
    let cfg = Scp03HostConfig {
        level,
        ..Scp03HostConfig::default()
    };
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut session = HostSession::new(keys, HostProtocol::Scp03(cfg), &mut rng).ok()?;
    let mut step = HostStep::Send(session.begin().ok()?);
    while let HostStep::Send(cmd) = step {
        let raw = card.transmit(&cmd.to_vec().ok()?);
        let view = parse_response(&raw).ok()?;
        step = session.process(&view).ok()?;
    }
    Some(session)
}

/// Drive the whole card with an arbitrary APDU sequence.
///
/// Input: a flags byte (bit 0: open an SCP03 session first, level from bits 4-5: 01, 03, 13,
/// 33; bit 1: install the store applet first), then records `prefix, length, bytes`: prefix bit
/// 0 wraps the APDU with the host session (when one is open), bits 1-2 set the logical
/// channel, bit 3 resets the card before the APDU.
///
/// Checks: the card never panics and always answers at least SW1 SW2; after every APDU the
/// registry invariants hold and the in-memory state equals the committed store; a card
/// reopened from the store at the end has the same registry.
///
/// # Panics
/// When an invariant breaks.
pub fn card_apdus(data: &[u8]) {
    // The profile is a constant: parse its TOML once, not per input (7% of an execution).
    static PROFILE: OnceLock<Profile> = OnceLock::new();
    let profile = PROFILE.get_or_init(|| {
        let Ok(profile) = Profile::default_profile() else {
            panic!("default profile")
        };
        profile
    });
    let Ok(mut card) = Card::open(MemoryStore::new(), profile, Packages::builtin(), [2; 32]) else {
        panic!("card does not open")
    };
    card.power_on();
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let level = [0x01, 0x03, 0x13, 0x33][usize::from((flags >> 4) & 0x03)];
    let mut session = if flags & 0x01 != 0 {
        open_session(&mut card, level)
    } else {
        None
    };
    if flags & 0x02 != 0
        && let Some(s) = session.as_mut()
    {
        let elf = crate::applet::STORE_APPLET_LOAD_FILE;
        let module = crate::applet::STORE_APPLET_MODULE;
        let app = [0xF0, 0x6D, 0x65, 0x63, 0x41, 0x50, 0x50, 0x31];
        let mut d = Vec::new();
        for f in [elf, module, &app[..], &[0x00][..], &[0xC9, 0x00][..]] {
            d.push(u8::try_from(f.len()).unwrap_or(0));
            d.extend_from_slice(f);
        }
        d.push(0);
        if let Ok(w) = s.wrap(&Command::new(0x80, 0xE6, 0x0C, 0x00).with_data(d))
            && let Ok(bytes) = w.to_vec()
            && let Ok(v) = parse_response(&card.transmit(&bytes))
        {
            let _ = s.unwrap(&v);
        }
    }
    while let Some((&prefix, r)) = rest.split_first() {
        let Some((&len, r)) = r.split_first() else {
            break;
        };
        let n = usize::from(len).min(r.len());
        let (apdu, r) = r.split_at(n);
        rest = r;
        if prefix & 0x08 != 0 {
            card.reset();
            session = None;
        }
        let mut bytes = apdu.to_vec();
        if prefix & 0x01 != 0
            && let (Some(s), Ok(view)) = (session.as_mut(), parse_command(apdu))
            && let Ok(w) = s
                .wrap(&view.to_command())
                .and_then(|c| c.to_vec().map_err(Into::into))
        {
            bytes = w;
        }
        let channel = (prefix >> 1) & 0x03;
        if let Some(first) = bytes.first_mut()
            && *first & 0x40 == 0
        {
            *first = (*first & !0x03) | channel;
        }
        let response = card.transmit(&bytes);
        assert!(response.len() >= 2, "a response without status word");
        if let Err(e) = card.check_invariants() {
            panic!("invariant broken after {}: {e}", hex::encode_upper(&bytes));
        }
    }
    let registry = card.registry();
    let store = card.into_store();
    let Ok(reopened) = Card::open(store, profile, Packages::builtin(), [2; 32]) else {
        panic!("card does not reopen from its store")
    };
    assert_eq!(
        reopened.registry(),
        registry,
        "registry differs after reopening"
    );
}
