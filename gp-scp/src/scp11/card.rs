//! SCP11b card (security domain) side: holds SK.SD and its certificate chain, answers
//! INTERNAL AUTHENTICATE and opens an AES session at level 33.

use alloc::vec::Vec;
use core::fmt;

use apdu_codec::{Command, CommandView, Response, StatusWord};
use p256::SecretKey as EcSecretKey;
use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::ecdh::diffie_hellman;

use super::{
    INS_INTERNAL_AUTHENTICATE, derive_session, encode_point, into_messaging, parse_request, receipt,
};
use crate::Error;
use crate::keys::SecretKey;
use crate::level::SecurityLevel;
use crate::sm::AesMessaging;

/// The security domain's SCP11b key material.
pub struct Scp11CardKeys {
    key_version: u8,
    key_id: u8,
    sk_sd: EcSecretKey,
    certificates: Vec<Vec<u8>>,
}

impl fmt::Debug for Scp11CardKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp11CardKeys")
            .field("key_version", &self.key_version)
            .field("key_id", &self.key_id)
            .field("certificates", &self.certificates.len())
            .finish_non_exhaustive()
    }
}

impl Scp11CardKeys {
    /// Key material from SK.SD as PKCS#8 DER and the certificate chain (leaf last, as GET
    /// DATA BF21 serves it).
    ///
    /// # Errors
    /// [`Error::Ecc`] when the PKCS#8 document is not a P-256 private key.
    pub fn from_pkcs8_der(
        key_version: u8,
        key_id: u8,
        pkcs8_der: &[u8],
        certificates: Vec<Vec<u8>>,
    ) -> Result<Self, Error> {
        use p256::pkcs8::DecodePrivateKey;
        let sk_sd = EcSecretKey::from_pkcs8_der(pkcs8_der)
            .map_err(|_| Error::Ecc("PKCS#8 document is not a P-256 key"))?;
        Ok(Self {
            key_version,
            key_id,
            sk_sd,
            certificates,
        })
    }

    /// Key material from a raw 32-byte scalar.
    ///
    /// # Errors
    /// [`Error::Ecc`] for an invalid scalar.
    pub fn from_scalar(
        key_version: u8,
        key_id: u8,
        scalar: &[u8],
        certificates: Vec<Vec<u8>>,
    ) -> Result<Self, Error> {
        let sk_sd =
            EcSecretKey::from_slice(scalar).map_err(|_| Error::Ecc("invalid P-256 scalar"))?;
        Ok(Self {
            key_version,
            key_id,
            sk_sd,
            certificates,
        })
    }

    /// PK.SD.
    #[must_use]
    pub fn public_key(&self) -> p256::PublicKey {
        self.sk_sd.public_key()
    }

    /// The certificate chain (for GET DATA BF21).
    #[must_use]
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }

    /// Key version number.
    #[must_use]
    pub fn key_version(&self) -> u8 {
        self.key_version
    }

    /// Key id.
    #[must_use]
    pub fn key_id(&self) -> u8 {
        self.key_id
    }
}

/// Answer INTERNAL AUTHENTICATE (Amd F §7.6): check the control reference template, generate
/// the card's ephemeral key from `rng`, derive the session keys and return `5F49 ePK.SD 86
/// receipt` with the open session.
///
/// # Errors
/// [`Error::UnexpectedCommand`], [`Error::KeyVersionNotFound`] (6A88) for another key
/// reference, [`Error::Malformed`]/[`Error::ImplementationOption`] for a bad template,
/// [`Error::Ecc`] (6A80) for an invalid ephemeral key.
pub fn internal_authenticate(
    cmd: &CommandView<'_>,
    keys: &Scp11CardKeys,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(Response, Scp11CardSession), Error> {
    if cmd.ins() != INS_INTERNAL_AUTHENTICATE || cmd.cla().has_secure_messaging() {
        return Err(Error::UnexpectedCommand("INTERNAL AUTHENTICATE expected"));
    }
    if (cmd.p1() != 0 && cmd.p1() != keys.key_version) || (cmd.p2() != 0 && cmd.p2() != keys.key_id)
    {
        return Err(Error::KeyVersionNotFound(cmd.p1()));
    }
    let request = parse_request(cmd.data())?;
    let esk = <EphemeralSecret as Generate>::generate_from_rng(rng);
    let epk_sd = encode_point(&esk.public_key());
    let sh_see = esk.diffie_hellman(&request.epk_oce);
    let sh_ses = diffie_hellman(keys.sk_sd.to_nonzero_scalar(), request.epk_oce.as_affine());
    let session = derive_session(sh_see.raw_secret_bytes(), sh_ses.raw_secret_bytes())?;
    let r = receipt(&session, request.raw, &epk_sd);
    let mut data = Vec::with_capacity(3 + epk_sd.len() + 2 + r.len());
    data.extend_from_slice(&[0x5F, 0x49, 0x41]);
    data.extend_from_slice(&epk_sd);
    data.extend_from_slice(&[0x86, 0x10]);
    data.extend_from_slice(&r);
    let (messaging, dek) = into_messaging(session, r);
    Ok((Response::success(data), Scp11CardSession { messaging, dek }))
}

/// An open SCP11b session on the card side.
pub struct Scp11CardSession {
    messaging: AesMessaging,
    dek: SecretKey,
}

impl fmt::Debug for Scp11CardSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scp11CardSession")
            .field("messaging", &self.messaging)
            .finish_non_exhaustive()
    }
}

impl Scp11CardSession {
    /// The security level (33).
    #[must_use]
    pub fn level(&self) -> SecurityLevel {
        self.messaging.level()
    }

    /// S-DEK (to decrypt PUT KEY key data).
    #[must_use]
    pub fn dek(&self) -> &SecretKey {
        &self.dek
    }

    /// Verify and decrypt a command; on error the caller closes the session.
    ///
    /// # Errors
    /// [`Error::SecureMessagingMissing`], [`Error::CommandMac`], [`Error::Padding`] (6982).
    pub fn unwrap(&mut self, cmd: &CommandView<'_>) -> Result<Command, Error> {
        self.messaging.unwrap(cmd)
    }

    /// Protect a response.
    #[must_use]
    pub fn wrap(&mut self, data: &[u8], status: StatusWord) -> Response {
        self.messaging.wrap_response(data, status)
    }
}
