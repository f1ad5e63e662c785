//! Test, fuzz and benchmark support: a seeded random source, an in-memory host ↔ card pair
//! and the checking functions the fuzz targets run (the same functions replay the committed
//! corpus in `cargo test`). Not part of the stable API.

use alloc::vec;
use alloc::vec::Vec;

use apdu_codec::{Command, Response, StatusWord, parse_command, parse_response};

use crate::Error;
use crate::channel::{
    CardChannel, CardInput, CardProtocol, CardStep, HostProtocol, HostSession, HostStep,
};
use crate::keys::{KeySet, KeyType};
use crate::level::SecurityLevel;
use crate::scp02::Scp02Option;
use crate::scp02::card::Scp02CardConfig;
use crate::scp02::host::Scp02HostConfig;
use crate::scp03::Scp03Option;
use crate::scp03::card::Scp03CardConfig;
use crate::scp03::host::Scp03HostConfig;
use crate::scp11::card::Scp11CardKeys;
use crate::scp11::host::Scp11HostConfig;

/// A deterministic random source (SplitMix64). NOT cryptographic: tests, fuzzing and
/// simulations only.
#[derive(Debug, Clone)]
pub struct DangerSeededRng(u64);

impl DangerSeededRng {
    /// A source from a seed.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }
}

impl rand_core::TryRng for DangerSeededRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let [a, b, c, d, ..] = self.try_next_u64()?.to_le_bytes();
        Ok(u32::from_le_bytes([a, b, c, d]))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(v.get(..chunk.len()).unwrap_or(&[]));
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for DangerSeededRng {}

/// Which protocol a [`Pair`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// SCP02 with this `i`.
    Scp02(u8),
    /// SCP03 with this `i` and AES key length.
    Scp03 {
        /// The `i` parameter.
        i: u8,
        /// 16, 24 or 32.
        key_len: usize,
    },
    /// SCP11b.
    Scp11b,
}

/// The AID of the security domain in the pair.
pub const SD_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

/// A host and a card connected in memory.
#[derive(Debug)]
pub struct Pair {
    /// The host side.
    pub host: HostSession,
    /// The card side.
    pub card: CardChannel,
    /// The card's key sets.
    pub key_sets: Vec<KeySet>,
    /// The card's sequence counter.
    pub counter: u32,
    /// The shared random source.
    pub rng: DangerSeededRng,
}

impl Pair {
    /// Set up both sides and run the handshake at `level` (SCP11b ignores it: always 33).
    ///
    /// # Errors
    /// Any handshake error.
    pub fn open(variant: Variant, level: SecurityLevel, seed: u64) -> Result<Self, Error> {
        let mut rng = DangerSeededRng::new(seed);
        let mut key = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut rng, &mut key);
        let (keys, card_protocol, host_protocol) = match variant {
            Variant::Scp02(i) => {
                let keys = KeySet::new(0x20, KeyType::Des, &key[..16], &key[8..24], &key[16..32])?;
                let option = Scp02Option::new(i)?;
                (
                    keys,
                    CardProtocol::Scp02(Scp02CardConfig {
                        option,
                        sd_aid: SD_AID.to_vec(),
                    }),
                    HostProtocol::Scp02(Scp02HostConfig {
                        key_version: 0x20,
                        level,
                        option,
                        ..Scp02HostConfig::default()
                    }),
                )
            }
            Variant::Scp03 { i, key_len } => {
                let k = key.get(..key_len).ok_or(Error::KeyLength)?;
                let keys = KeySet::new(
                    0x30,
                    KeyType::Aes,
                    k,
                    &k.iter().map(|b| b ^ 1).collect::<Vec<_>>(),
                    &k.iter().map(|b| b ^ 2).collect::<Vec<_>>(),
                )?;
                let option = Scp03Option::new(i)?;
                (
                    keys,
                    CardProtocol::Scp03(Scp03CardConfig {
                        option,
                        sd_aid: SD_AID.to_vec(),
                    }),
                    HostProtocol::Scp03(Scp03HostConfig {
                        key_version: 0x30,
                        level,
                        s16: option.s16(),
                        ..Scp03HostConfig::default()
                    }),
                )
            }
            Variant::Scp11b => {
                let sk = <p256::SecretKey as p256::elliptic_curve::Generate>::generate_from_rng(
                    &mut rng,
                );
                let card_keys = Scp11CardKeys::from_scalar(0x01, 0x13, &sk.to_bytes(), vec![])?;
                let pk = card_keys.public_key();
                let keys = KeySet::single(0x30, KeyType::Aes, &key[..16])?;
                (
                    keys,
                    CardProtocol::Scp11b(card_keys),
                    HostProtocol::Scp11b(
                        Scp11HostConfig {
                            key_version: 0x01,
                            key_id: 0x13,
                            card_key: pk,
                        },
                        vec![pk],
                    ),
                )
            }
        };
        let host = HostSession::new(keys.clone(), host_protocol, &mut rng)?;
        let mut pair = Self {
            host,
            card: CardChannel::new(card_protocol),
            key_sets: vec![keys],
            counter: 1,
            rng,
        };
        let mut step = HostStep::Send(pair.host.begin()?);
        while let HostStep::Send(cmd) = step {
            let bytes = cmd.to_vec()?;
            let response = pair.card_process(&bytes)?;
            let rbytes = response.to_vec();
            step = pair.host.process(&parse_response(&rbytes)?)?;
        }
        Ok(pair)
    }

    /// Feed raw command bytes to the card; returns the card's final response (commands for
    /// the domain are answered with their data echoed back and 9000).
    ///
    /// # Errors
    /// [`Error::Codec`] when the bytes are not an APDU.
    pub fn card_process(&mut self, bytes: &[u8]) -> Result<Response, Error> {
        let view = parse_command(bytes)?;
        let step = self.card.process(
            &view,
            CardInput {
                key_sets: &self.key_sets,
                counter: self.counter,
                kdd: [0; 10],
                rng: &mut self.rng,
            },
        );
        Ok(match step {
            CardStep::Respond {
                response,
                counter_used,
            } => {
                if let Some(c) = counter_used {
                    self.counter = c.saturating_add(1);
                }
                response
            }
            CardStep::Process(plain) => self.card.wrap(&plain.data, StatusWord::SUCCESS),
        })
    }

    /// One full exchange: host wrap, card unwrap (returns the plain command the card
    /// recovered), card wrap of `response`, host unwrap (returns the plain response).
    ///
    /// # Errors
    /// Any wrap/unwrap error on either side; [`Error::Status`] when the card refused.
    pub fn exchange(
        &mut self,
        command: &Command,
        response_data: &[u8],
        status: StatusWord,
    ) -> Result<(Command, Response), Error> {
        let wrapped = self.host.wrap(command)?.to_vec()?;
        let view = parse_command(&wrapped)?;
        let step = self.card.process(
            &view,
            CardInput {
                key_sets: &self.key_sets,
                counter: self.counter,
                kdd: [0; 10],
                rng: &mut self.rng,
            },
        );
        let plain = match step {
            CardStep::Process(plain) => plain,
            CardStep::Respond { response, .. } => return Err(Error::Status(response.status)),
        };
        let response = self.card.wrap(response_data, status).to_vec();
        let unwrapped = self.host.unwrap(&parse_response(&response)?)?;
        Ok((plain, unwrapped))
    }
}

/// Fuzz check: an open SCP session's card side fed arbitrary bytes never panics, and any
/// failure closes the session. `data[0]` picks the protocol and level, the rest is the APDU.
pub fn card_unwrap(variant: Variant, data: &[u8]) {
    let Some((&selector, apdu)) = data.split_first() else {
        return;
    };
    let levels: &[SecurityLevel] = match variant {
        Variant::Scp02(_) => &SecurityLevel::SCP02_LEVELS,
        _ => &SecurityLevel::SCP03_LEVELS,
    };
    let level = levels
        .get(usize::from(selector) % levels.len())
        .copied()
        .unwrap_or(SecurityLevel::ALL);
    let Ok(mut pair) = Pair::open(variant, level, u64::from(selector)) else {
        return;
    };
    let Ok(view) = parse_command(apdu) else {
        return;
    };
    let step = pair.card.process(
        &view,
        CardInput {
            key_sets: &pair.key_sets,
            counter: pair.counter,
            kdd: [0; 10],
            rng: &mut pair.rng,
        },
    );
    if let CardStep::Respond { response, .. } = step
        && response.status != StatusWord::SUCCESS
    {
        assert!(
            !pair.card.is_open(),
            "a failed command must close the session"
        );
    }
}

/// Fuzz check: INITIALIZE UPDATE response parsers never panic, and what they accept
/// re-encodes to the same bytes.
pub fn initialize_update_response(data: &[u8]) {
    if let Ok(r) = crate::scp03::parse_initialize_update_response(data) {
        assert_eq!(r.to_vec(), data);
    }
    if let Ok(r) = crate::scp02::parse_initialize_update_response(data) {
        assert_eq!(r.to_vec(), data);
    }
}

/// Fuzz check: PUT KEY data parsing never panics, and what it accepts re-encodes to the same
/// bytes.
pub fn put_key_data(data: &[u8]) {
    let dek = [0x40u8; 16];
    for key_type in [KeyType::Des, KeyType::Aes] {
        if let Ok(parsed) = crate::put_key::parse_put_key_data(data, &dek, key_type) {
            let again = crate::put_key::encode_parsed(&parsed, &dek, key_type);
            assert_eq!(again.as_deref().ok(), Some(data));
        }
    }
}

/// Fuzz check: the card side of SCP11b fed an arbitrary INTERNAL AUTHENTICATE never panics
/// and opens a session only on a well-formed request.
pub fn internal_authenticate_request(data: &[u8]) {
    let mut rng = DangerSeededRng::new(0x11);
    let Ok(keys) = Scp11CardKeys::from_scalar(0x01, 0x13, &[0x5A; 32], vec![]) else {
        return;
    };
    let mut apdu = vec![0x80, 0x88, 0x01, 0x13];
    match u8::try_from(data.len()) {
        Ok(0) => {}
        Ok(n) => {
            apdu.push(n);
            apdu.extend_from_slice(data);
        }
        Err(_) => return,
    }
    let Ok(view) = parse_command(&apdu) else {
        return;
    };
    if let Ok((response, session)) =
        crate::scp11::card::internal_authenticate(&view, &keys, &mut rng)
    {
        assert_eq!(response.status, StatusWord::SUCCESS);
        assert_eq!(session.level(), SecurityLevel::ALL);
    }
}

/// Fuzz target `scp11_cert_chain`: SD certificate chain verification never panics, is
/// deterministic, and when it accepts a chain returns the key of the chain's last
/// certificate.
///
/// Input: one flags byte (bit 0: an 8-byte big-endian Unix time follows, passed as `now`),
/// then segments of `u16` big-endian length + bytes: the first segment is the trust anchor
/// (a certificate or a `SubjectPublicKeyInfo`), the others are the chain, root-most first.
pub fn cert_chain(data: &[u8]) {
    use crate::scp11::chain::{TrustAnchor, UnixTime, verify_chain};
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut now = None;
    if flags & 1 == 1 {
        let Some((time, after)) = rest.split_first_chunk::<8>() else {
            return;
        };
        now = Some(UnixTime(u64::from_be_bytes(*time)));
        rest = after;
    }
    let mut segments = Vec::new();
    while let Some((len, after)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len));
        let Some(segment) = after.get(..len) else {
            break;
        };
        segments.push(segment);
        rest = after.get(len..).unwrap_or(&[]);
    }
    let Some((anchor, chain)) = segments.split_first() else {
        return;
    };
    let anchors: Vec<TrustAnchor> = TrustAnchor::from_der(anchor).into_iter().collect();
    let first = verify_chain(chain, &anchors, now);
    assert_eq!(
        first,
        verify_chain(chain, &anchors, now),
        "not deterministic"
    );
    if let (Ok(key), Some(last)) = (first, chain.last()) {
        let leaf = TrustAnchor::from_certificate(last).map(|a| *a.public_key());
        assert_eq!(
            leaf,
            Ok(key),
            "accepted chain returned another key than its last"
        );
    }
}
