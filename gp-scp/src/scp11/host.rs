//! SCP11b host (off-card entity) side: [`Scp11bHost`] → [`Scp11HostSession`].

use alloc::vec::Vec;
use core::fmt;

use apdu_codec::tlv::TlvIter;
use apdu_codec::{Command, CommandView, Response, ResponseView, StatusWord};
use p256::PublicKey;
use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::Generate;

use super::{
    INS_INTERNAL_AUTHENTICATE, POINT_LEN, TAG_EPK, TAG_RECEIPT, command_data, ct_eq, decode_point,
    derive_session, encode_point, into_messaging, receipt,
};
use crate::Error;
use crate::apdu::PlainRef;
use crate::keys::SecretKey;
use crate::level::SecurityLevel;
use crate::sm::AesMessaging;

/// What the host asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scp11HostConfig {
    /// Key version of the SD's SCP11b key (INTERNAL AUTHENTICATE P1).
    pub key_version: u8,
    /// Key id of the SD's SCP11b key (P2; `13` is the SCP11b default).
    pub key_id: u8,
    /// PK.SD, the security domain's static public key, as taken from its certificate
    /// ([`super::public_key_from_certificate`]).
    pub card_key: PublicKey,
}

/// The host before INTERNAL AUTHENTICATE.
pub struct Scp11bHost {
    config: Scp11HostConfig,
    esk: EphemeralSecret,
    command_data: Vec<u8>,
}

impl fmt::Debug for Scp11bHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp11bHost")
            .field("key_version", &self.config.key_version)
            .finish_non_exhaustive()
    }
}

impl Scp11bHost {
    /// A host for the card key in `config`, which must be one of `trusted` (the keys whose
    /// certificates the caller has verified or pinned). The ephemeral key comes from `rng`.
    ///
    /// # Errors
    /// [`Error::UntrustedCardKey`] when `config.card_key` is not in `trusted`.
    pub fn new(
        config: Scp11HostConfig,
        trusted: &[PublicKey],
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Self, Error> {
        if !trusted.iter().any(|k| k == &config.card_key) {
            return Err(Error::UntrustedCardKey);
        }
        let esk = <EphemeralSecret as Generate>::generate_from_rng(rng);
        let epk = encode_point(&esk.public_key());
        Ok(Self {
            config,
            esk,
            command_data: command_data(&epk),
        })
    }

    /// INTERNAL AUTHENTICATE `80 88 kvn kid Lc A6{..} 5F49 ePK.OCE 00`.
    #[must_use]
    pub fn internal_authenticate(&self) -> Command {
        Command::new(
            0x80,
            INS_INTERNAL_AUTHENTICATE,
            self.config.key_version,
            self.config.key_id,
        )
        .with_data(self.command_data.clone())
        .with_le(256)
    }

    /// Check the card's answer (`5F49 ePK.SD 86 receipt`), derive the session keys and verify
    /// the receipt in constant time.
    ///
    /// # Errors
    /// [`Error::Status`], [`Error::Malformed`], [`Error::Ecc`], [`Error::Receipt`].
    pub fn process_internal_authenticate(
        self,
        response: &ResponseView<'_>,
    ) -> Result<Scp11HostSession, Error> {
        if response.status() != StatusWord::SUCCESS {
            return Err(Error::Status(response.status()));
        }
        let (mut epk_sd, mut card_receipt) = (None, None);
        for item in TlvIter::new(response.data()) {
            let tlv = item.map_err(|_| Error::Malformed("INTERNAL AUTHENTICATE response (TLV)"))?;
            match tlv.tag().value() {
                TAG_EPK => epk_sd = Some(tlv.value()),
                TAG_RECEIPT => card_receipt = Some(tlv.value()),
                _ => {
                    return Err(Error::Malformed(
                        "INTERNAL AUTHENTICATE response (unexpected tag)",
                    ));
                }
            }
        }
        let (Some(epk_bytes), Some(card_receipt)) = (epk_sd, card_receipt) else {
            return Err(Error::Malformed(
                "INTERNAL AUTHENTICATE response (missing 5F49 or 86)",
            ));
        };
        let epk_sd = decode_point(epk_bytes)?;
        let sh_see = self.esk.diffie_hellman(&epk_sd);
        let sh_ses = self.esk.diffie_hellman(&self.config.card_key);
        let keys = derive_session(sh_see.raw_secret_bytes(), sh_ses.raw_secret_bytes())?;
        let mut epk_arr = [0u8; POINT_LEN];
        epk_arr.copy_from_slice(epk_bytes);
        let expected = receipt(&keys, &self.command_data, &epk_arr);
        if !ct_eq(&expected, card_receipt) {
            return Err(Error::Receipt);
        }
        let (messaging, dek) = into_messaging(keys, expected);
        Ok(Scp11HostSession { messaging, dek })
    }
}

/// An open SCP11b session on the host side (level 33).
pub struct Scp11HostSession {
    messaging: AesMessaging,
    dek: SecretKey,
}

impl fmt::Debug for Scp11HostSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp11HostSession")
            .field("messaging", &self.messaging)
            .finish_non_exhaustive()
    }
}

impl Scp11HostSession {
    /// The security level (always 33).
    #[must_use]
    pub fn level(&self) -> SecurityLevel {
        self.messaging.level()
    }

    /// S-DEK, which encrypts PUT KEY data in this session.
    #[must_use]
    pub fn dek(&self) -> &SecretKey {
        &self.dek
    }

    /// Protect a command.
    ///
    /// # Errors
    /// [`Error::TooLong`], [`Error::CounterExhausted`].
    pub fn wrap(&mut self, command: &Command) -> Result<Command, Error> {
        self.messaging.wrap(PlainRef::from(command))
    }

    /// As [`Scp11HostSession::wrap`], from a borrowed command.
    ///
    /// # Errors
    /// As [`Scp11HostSession::wrap`].
    pub fn wrap_view(&mut self, command: &CommandView<'_>) -> Result<Command, Error> {
        self.messaging.wrap(PlainRef::from(command))
    }

    /// Verify and decrypt a response.
    ///
    /// # Errors
    /// [`Error::ResponseMac`], [`Error::Padding`].
    pub fn unwrap(&mut self, response: &ResponseView<'_>) -> Result<Response, Error> {
        self.messaging.unwrap_response(response)
    }
}
