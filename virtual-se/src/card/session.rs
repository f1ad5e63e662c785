//! Secure channel sessions of a security domain on one logical channel, over `gp-scp`'s card
//! sides (SCP02, SCP03, SCP11b).

use apdu_codec::{Command, CommandView, Response, StatusWord};
use gp_scp::SecurityLevel;
use gp_scp::keys::{KeySet, KeyType};
use gp_scp::scp02::Scp02Option;
use gp_scp::scp02::card::{Scp02CardConfig, Scp02CardPending, Scp02CardSession};
use gp_scp::scp03::card::{Scp03CardPending, Scp03CardSession};
use gp_scp::scp03::{Scp03Option, pseudo_random_challenge};
use gp_scp::scp11::card::{Scp11CardKeys, Scp11CardSession};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::model::{DomainRecord, Scp};
use crate::profile::SCP11B_KEY_ID;

/// The handshake state between INITIALIZE UPDATE and EXTERNAL AUTHENTICATE.
pub(crate) enum Pending {
    Scp02(Box<Scp02CardPending>),
    Scp03 {
        pending: Box<Scp03CardPending>,
        dek: Zeroizing<Vec<u8>>,
    },
}

/// An open secure channel session.
pub(crate) enum Session {
    Scp02(Box<Scp02CardSession>),
    Scp03 {
        session: Box<Scp03CardSession>,
        dek: Zeroizing<Vec<u8>>,
    },
    Scp11(Box<Scp11CardSession>),
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Scp02(s) => write!(f, "Session(SCP02 level {})", s.level()),
            Self::Scp03 { session, .. } => write!(f, "Session(SCP03 level {})", session.level()),
            Self::Scp11(s) => write!(f, "Session(SCP11b level {})", s.level()),
        }
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Scp02(_) => f.write_str("Pending(SCP02)"),
            Self::Scp03 { .. } => f.write_str("Pending(SCP03)"),
        }
    }
}

/// The symmetric key sets of a domain: key ids 1/2/3 of each version, all of one type.
pub(crate) fn key_sets(domain: &DomainRecord, key_type: KeyType) -> Vec<KeySet> {
    let mut out = Vec::new();
    for kvn in domain.key_versions() {
        let (Some(enc), Some(mac), Some(dek)) =
            (domain.key(kvn, 1), domain.key(kvn, 2), domain.key(kvn, 3))
        else {
            continue;
        };
        if enc.key_type != key_type.to_byte()
            || mac.key_type != enc.key_type
            || dek.key_type != enc.key_type
        {
            continue;
        }
        if let Ok(ks) = KeySet::new(kvn, key_type, &enc.value, &mac.value, &dek.value) {
            out.push(ks);
        }
    }
    out
}

/// The result of INITIALIZE UPDATE: the response, the handshake state, and the sequence
/// counter value to persist.
pub(crate) struct InitUpdate {
    pub(crate) response: Response,
    pub(crate) pending: Pending,
    pub(crate) next_counter: u32,
}

fn kdd_array(domain: &DomainRecord) -> [u8; 10] {
    let mut kdd = [0u8; 10];
    for (d, s) in kdd.iter_mut().zip(domain.kdd.iter()) {
        *d = *s;
    }
    kdd
}

/// The TEST ONLY fixed SCP02 card challenge of a domain (profile `card_challenge`).
fn fixed_scp02_challenge(domain: &DomainRecord) -> Option<[u8; 6]> {
    domain
        .card_challenge
        .as_deref()
        .and_then(|c| <[u8; 6]>::try_from(c).ok())
}

/// Answer INITIALIZE UPDATE for a domain.
pub(crate) fn initialize_update(
    cmd: &CommandView<'_>,
    domain: &DomainRecord,
    sd_aid: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<InitUpdate, StatusWord> {
    match domain.scp {
        Scp::Scp02 => {
            let sets = key_sets(domain, KeyType::Des);
            let option = Scp02Option::new(domain.i).map_err(|e| e.status_word())?;
            let config = Scp02CardConfig {
                option,
                sd_aid: sd_aid.to_vec(),
            };
            let counter = u16::try_from(domain.sequence_counter)
                .map_err(|_| StatusWord::REFERENCE_DATA_NOT_USABLE)?;
            let (response, pending) = match fixed_scp02_challenge(domain) {
                // TEST ONLY (profile `card_challenge`): replay a recorded session.
                Some(challenge) => {
                    if counter == u16::MAX {
                        return Err(gp_scp::Error::CounterExhausted.status_word());
                    }
                    let keys = sets
                        .iter()
                        .find(|k| cmd.p1() == 0 || k.version() == cmd.p1())
                        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
                    gp_scp::scp02::card::answer_initialize_update(
                        cmd,
                        keys,
                        option,
                        counter.to_be_bytes(),
                        challenge,
                        kdd_array(domain),
                    )
                }
                None => gp_scp::scp02::card::initialize_update(
                    cmd,
                    &sets,
                    &config,
                    counter,
                    kdd_array(domain),
                    rng,
                ),
            }
            .map_err(|e| e.status_word())?;
            Ok(InitUpdate {
                response,
                pending: Pending::Scp02(Box::new(pending)),
                next_counter: domain.sequence_counter.saturating_add(1),
            })
        }
        Scp::Scp03 => {
            let sets = key_sets(domain, KeyType::Aes);
            let option = Scp03Option::new(domain.i).map_err(|e| e.status_word())?;
            let n = option.block_len();
            if cmd.data().len() != n {
                return Err(StatusWord::WRONG_LENGTH);
            }
            let keys = sets
                .iter()
                .find(|k| cmd.p1() == 0 || k.version() == cmd.p1())
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
            let mut challenge = [0u8; 16];
            let counter = domain.sequence_counter;
            let fixed = domain.card_challenge.as_deref().filter(|c| c.len() == n);
            let (seq, next_counter) = if option.pseudo_random() {
                if counter >= gp_scp::scp03::card::MAX_SEQUENCE_COUNTER {
                    return Err(StatusWord::REFERENCE_DATA_NOT_USABLE);
                }
                let [_, a, b, c] = counter.to_be_bytes();
                match fixed {
                    // TEST ONLY (profile `card_challenge`): replay a recorded session.
                    Some(f) => challenge[..n].copy_from_slice(f),
                    None => pseudo_random_challenge(
                        keys.enc().as_bytes(),
                        [a, b, c],
                        sd_aid,
                        &mut challenge[..n],
                    )
                    .map_err(|e| e.status_word())?,
                }
                (Some([a, b, c]), counter.saturating_add(1))
            } else {
                match fixed {
                    Some(f) => challenge[..n].copy_from_slice(f),
                    None => rng.fill_bytes(&mut challenge[..n]),
                }
                (None, counter)
            };
            let dek = Zeroizing::new(keys.dek().as_bytes().to_vec());
            let (response, pending) = gp_scp::scp03::card::answer_initialize_update(
                cmd,
                keys,
                option,
                &challenge[..n],
                seq,
                kdd_array(domain),
            )
            .map_err(|e| e.status_word())?;
            Ok(InitUpdate {
                response,
                pending: Pending::Scp03 {
                    pending: Box::new(pending),
                    dek,
                },
                next_counter,
            })
        }
        // An SCP11b-only domain has no INITIALIZE UPDATE (Amd F §7.5 uses INTERNAL
        // AUTHENTICATE).
        Scp::Scp11b => Err(StatusWord::INS_NOT_SUPPORTED),
    }
}

/// Answer INTERNAL AUTHENTICATE (SCP11b, Amd F §7.6) when the domain has an SCP11b key.
pub(crate) fn internal_authenticate(
    cmd: &CommandView<'_>,
    domain: &DomainRecord,
    rng: &mut impl CryptoRng,
) -> Result<(Response, Session), StatusWord> {
    let key = domain
        .keys
        .iter()
        .find(|k| k.id == SCP11B_KEY_ID && k.key_type == KeyType::EcPrivate.to_byte())
        .ok_or(StatusWord::INS_NOT_SUPPORTED)?;
    let keys = Scp11CardKeys::from_scalar(key.kvn, key.id, &key.value, domain.certificates.clone())
        .map_err(|e| e.status_word())?;
    let (response, session) =
        gp_scp::scp11::card::internal_authenticate(cmd, &keys, rng).map_err(|e| e.status_word())?;
    Ok((response, Session::Scp11(Box::new(session))))
}

/// Why EXTERNAL AUTHENTICATE failed: the status word to answer. (The attempt itself was
/// counted by INITIALIZE UPDATE.)
pub(crate) struct AuthError {
    pub(crate) status: StatusWord,
}

/// Check EXTERNAL AUTHENTICATE.
pub(crate) fn external_authenticate(
    pending: Pending,
    cmd: &CommandView<'_>,
) -> Result<(Response, Session), AuthError> {
    let map = |e: gp_scp::Error| AuthError {
        status: e.status_word(),
    };
    match pending {
        Pending::Scp02(p) => {
            let (r, s) = p.external_authenticate(cmd).map_err(map)?;
            Ok((r, Session::Scp02(Box::new(s))))
        }
        Pending::Scp03 { pending, dek } => {
            let (r, s) = pending.external_authenticate(cmd).map_err(map)?;
            Ok((
                r,
                Session::Scp03 {
                    session: Box::new(s),
                    dek,
                },
            ))
        }
    }
}

impl Session {
    /// The session's security level.
    pub(crate) fn level(&self) -> SecurityLevel {
        match self {
            Self::Scp02(s) => s.level(),
            Self::Scp03 { session, .. } => session.level(),
            Self::Scp11(s) => s.level(),
        }
    }

    /// The key that decrypts PUT KEY key components, and its type.
    pub(crate) fn dek(&self) -> (Vec<u8>, KeyType) {
        match self {
            Self::Scp02(s) => (s.dek().as_bytes().to_vec(), KeyType::Des),
            Self::Scp03 { dek, .. } => (dek.to_vec(), KeyType::Aes),
            Self::Scp11(s) => (s.dek().as_bytes().to_vec(), KeyType::Aes),
        }
    }

    /// Verify and decrypt a command.
    pub(crate) fn unwrap(&mut self, cmd: &CommandView<'_>) -> Result<Command, StatusWord> {
        match self {
            Self::Scp02(s) => s.unwrap(cmd),
            Self::Scp03 { session, .. } => session.unwrap(cmd),
            Self::Scp11(s) => s.unwrap(cmd),
        }
        .map_err(|e| e.status_word())
    }

    /// Protect a response.
    pub(crate) fn wrap(&mut self, data: &[u8], status: StatusWord) -> Response {
        match self {
            Self::Scp02(s) => s.wrap(data, status),
            Self::Scp03 { session, .. } => session.wrap(data, status),
            Self::Scp11(s) => s.wrap(data, status),
        }
    }
}
