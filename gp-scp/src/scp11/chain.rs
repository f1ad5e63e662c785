//! SCP11 host side: verify the security domain's certificate chain (GET DATA BF21) against
//! the caller's trust anchors and return the SD's key-agreement key PK.SD.ECKA.
//!
//! Two certificate formats are accepted, both with ECDSA over P-256 and SHA-256:
//!
//! - **X.509** (RFC 5280), signed with `ecdsa-with-SHA256` (RFC 5758 §3.2), as YubiKeys and the
//!   virtual SE serve them;
//! - **GlobalPlatform** certificates (GPC 2.3 Amd F, GlobalPlatform certificate format):
//!   `7F21 { 93 serial, 42 CA-KLOC identifier, 5F20 subject identifier, 95 key usage,
//!   [5F25 effective date], 5F24 expiration date, [53 | 73 discretionary data], [BF20 ..],
//!   7F49 { B0 Q, F0 key parameter reference }, 5F37 signature }`. The signature covers the
//!   data objects inside `7F21` that precede `5F37`, tag and length included; it is read as
//!   DER (`30 ..`) or as the 64-byte `r || s`. (Tags: Amd F certificate format; the signed span and
//!   the DER signature as read by the public OneKeyHQ/firmware-pro `core/embed/lite_card/scp11.c`
//!   and imKey `CertificateSCP11.getSignatureMessage`.)
//!
//! The chain is ordered as BF21 serves it: the certificate closest to the root first, the SD's
//! own certificate last (yubikit's `get_certificate_bundle` documents it as "leaf-last" and
//! takes the last certificate as the SD's; the virtual SE serves it so). Sans-IO: the caller
//! passes the time ([`UnixTime`]) when validity periods are to be checked; without one they
//! are not.
//!
//! ```
//! use gp_scp::cmd::get_data::parse_certificate_store;
//! use gp_scp::scp11::{TrustAnchor, UnixTime, verify_chain};
//!
//! # fn main() -> Result<(), Box<dyn core::error::Error>> {
//! // The virtual SE's TEST chain: BF21 = test CA certificate || SD certificate.
//! let ca = include_bytes!(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/../virtual-se/profiles/danger-test-scp11b-ca-cert.der"
//! ));
//! let sd = include_bytes!(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/../virtual-se/profiles/danger-test-scp11b-cert.der"
//! ));
//! let bf21 = [&ca[..], &sd[..]].concat(); // what GET DATA BF21 answered
//! let certificates = parse_certificate_store(&bf21)?;
//! let anchors = [TrustAnchor::from_der(ca)?]; // what the host trusts
//! let now = UnixTime::from_date(2027, 1, 1); // the caller's clock
//! let pk_sd = verify_chain(&certificates, &anchors, now)?;
//! // A chain the anchors did not sign is refused, naming the certificate and the reason.
//! let err = verify_chain(&certificates[1..], &[TrustAnchor::from_der(sd)?], now).unwrap_err();
//! assert!(err.to_string().contains("certificate 1 of 1"));
//! # let _ = pk_sd;
//! # Ok(())
//! # }
//! ```

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use apdu_codec::tlv::{Tag, parse_single, parse_tlv};
use p256::PublicKey;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode, Header, Reader, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::Error;

/// `ecdsa-with-SHA256` (RFC 5758 §3.2).
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// `id-ecPublicKey` (RFC 5480 §2.1.1).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `secp256r1` / `prime256v1` (RFC 5480 §2.1.1.1).
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// Extensions this verifier understands; any other extension marked critical is refused
/// (RFC 5280 §4.2): subject key identifier, key usage, subject alternative name, basic
/// constraints, authority key identifier, extended key usage.
const KNOWN_EXTENSIONS: [ObjectIdentifier; 6] = [
    ObjectIdentifier::new_unwrap("2.5.29.14"),
    ObjectIdentifier::new_unwrap("2.5.29.15"),
    ObjectIdentifier::new_unwrap("2.5.29.17"),
    ObjectIdentifier::new_unwrap("2.5.29.19"),
    ObjectIdentifier::new_unwrap("2.5.29.35"),
    ObjectIdentifier::new_unwrap("2.5.29.37"),
];

/// GlobalPlatform certificate (GPC 2.3 Amd F certificate format).
const TAG_GP_CERTIFICATE: u32 = 0x7F21;
/// Certificate serial number.
const TAG_GP_SERIAL: u32 = 0x93;
/// CA-KLOC (or KA-KLOC) identifier: who signed the certificate.
const TAG_GP_ISSUER: u32 = 0x42;
/// Subject identifier.
const TAG_GP_SUBJECT: u32 = 0x5F20;
/// Key usage (1 or 2 bytes).
const TAG_GP_KEY_USAGE: u32 = 0x95;
/// Effective date, YYYYMMDD in BCD.
const TAG_GP_EFFECTIVE: u32 = 0x5F25;
/// Expiration date, YYYYMMDD in BCD.
const TAG_GP_EXPIRATION: u32 = 0x5F24;
/// Public key template: `B0` point, `F0` key parameter reference.
const TAG_GP_PUBLIC_KEY: u32 = 0x7F49;
/// Signature over the preceding data objects.
const TAG_GP_SIGNATURE: u32 = 0x5F37;
/// Key usage bit "key agreement" (`0080`), as in the SD/OCE ECKA certificates (Amd F
/// certificate format; the public OneKey OCE certificate carries `95 02 0080`).
const GP_KEY_USAGE_KEY_AGREEMENT: u16 = 0x0080;
/// Key parameter reference `00`: NIST P-256 (the `F0` value of GPC 2.3 ECC keys on P-256, as in
/// PUT KEY; the public OneKey certificate carries `F0 01 00`).
const GP_CURVE_P256: u8 = 0x00;

/// Largest chain and certificate accepted (a DoS bound; real chains hold 1-3 certificates of
/// a few hundred bytes).
pub const MAX_CHAIN_LEN: usize = 8;
/// Largest certificate accepted, in bytes.
pub const MAX_CERTIFICATE_LEN: usize = 8192;

/// A point in time, in seconds since 1970-01-01T00:00:00Z (the caller reads its clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// Midnight UTC at the start of a calendar date, `None` for an invalid date or one before
    /// 1970.
    #[must_use]
    pub fn from_date(year: u16, month: u8, day: u8) -> Option<Self> {
        days_from_civil(year, month, day).map(|d| Self(d * 86_400))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: u16, month: u8, day: u8) -> Option<u64> {
    if year < 1970 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day > *month_days.get(usize::from(month) - 1)? {
        return None;
    }
    let y = u64::from(year) - u64::from(month <= 2);
    let era = y / 400;
    let yoe = y - era * 400;
    let m = u64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + u64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    // 719468 = days from 0000-03-01 to 1970-01-01.
    (era * 146_097 + doe).checked_sub(719_468)
}

/// Why one certificate of a chain (or a trust anchor) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateFault {
    /// The chain holds no certificate.
    EmptyChain,
    /// More certificates than [`MAX_CHAIN_LEN`], or one larger than [`MAX_CERTIFICATE_LEN`].
    TooLarge,
    /// Not a well-formed X.509 or GlobalPlatform certificate; names the field.
    Malformed(&'static str),
    /// A signature algorithm, key type or curve other than ECDSA/ECDH over P-256 with SHA-256.
    UnsupportedAlgorithm(&'static str),
    /// No trust anchor signed this certificate (or its signature does not verify under any).
    UnknownIssuer {
        /// The issuer the certificate names.
        issuer: String,
    },
    /// The certificate names another issuer than the subject of the certificate before it.
    IssuerMismatch {
        /// The issuer the certificate names.
        issuer: String,
        /// The subject of the certificate before it in the chain.
        expected: String,
    },
    /// The signature does not verify under the issuer's key.
    BadSignature,
    /// The validity period starts after the time given.
    NotYetValid,
    /// The validity period ended before the time given.
    Expired,
    /// The certificate signs another one but is not a CA (X.509 basic constraints).
    NotCa,
    /// The key usage does not allow what the chain uses the key for.
    KeyUsage(&'static str),
    /// A critical extension this verifier does not understand (RFC 5280 §4.2).
    UnsupportedCriticalExtension(String),
}

impl fmt::Display for CertificateFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyChain => f.write_str("the certificate chain is empty"),
            Self::TooLarge => write!(
                f,
                "too large (at most {MAX_CHAIN_LEN} certificates of {MAX_CERTIFICATE_LEN} bytes)"
            ),
            Self::Malformed(what) => write!(f, "malformed {what}"),
            Self::UnsupportedAlgorithm(what) => write!(f, "unsupported algorithm: {what}"),
            Self::UnknownIssuer { issuer } => write!(
                f,
                "issuer {issuer} is not a trusted CA (no trust anchor verifies its signature)"
            ),
            Self::IssuerMismatch { issuer, expected } => write!(
                f,
                "issuer {issuer} is not the subject {expected} of the certificate before it"
            ),
            Self::BadSignature => f.write_str("signature does not verify under the issuer's key"),
            Self::NotYetValid => f.write_str("not yet valid"),
            Self::Expired => f.write_str("expired"),
            Self::NotCa => f.write_str("signs another certificate but is not a CA"),
            Self::KeyUsage(what) => write!(f, "key usage does not allow {what}"),
            Self::UnsupportedCriticalExtension(oid) => {
                write!(f, "unsupported critical extension {oid}")
            }
        }
    }
}

/// A refused certificate chain: which certificate (0-based `index`, root-most first) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateError {
    /// Position of the refused certificate in the chain (0 = root-most).
    pub index: usize,
    /// Number of certificates in the chain.
    pub count: usize,
    /// The certificate's subject, when it could be read.
    pub subject: Option<String>,
    /// Why it was refused.
    pub fault: CertificateFault,
}

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fault == CertificateFault::EmptyChain {
            return fmt::Display::fmt(&self.fault, f);
        }
        // The fields are public: saturate rather than overflow on a hand-made error.
        let position = self.index.saturating_add(1);
        write!(f, "certificate {position} of {}", self.count)?;
        if position == self.count {
            f.write_str(" (the SD's own)")?;
        }
        if let Some(s) = &self.subject {
            write!(f, " [{s}]")?;
        }
        write!(f, ": {}", self.fault)
    }
}

impl core::error::Error for CertificateError {}

/// A key the caller trusts to sign security domain certificates.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    key: PublicKey,
    /// For an anchor taken from an X.509 certificate: its subject (DER), which the first
    /// certificate it signs must name as issuer.
    subject: Option<Vec<u8>>,
    label: String,
}

impl fmt::Debug for TrustAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustAnchor")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl TrustAnchor {
    /// An anchor from a bare P-256 public key.
    #[must_use]
    pub fn from_public_key(key: PublicKey) -> Self {
        Self {
            key,
            subject: None,
            label: String::from("public key"),
        }
    }

    /// An anchor from a DER `SubjectPublicKeyInfo` (`id-ecPublicKey`, P-256).
    ///
    /// # Errors
    /// [`Error::TrustAnchor`] for anything else.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der)
            .map_err(|_| Error::TrustAnchor(CertificateFault::Malformed("SubjectPublicKeyInfo")))?;
        let key = spki_key(&spki).map_err(Error::TrustAnchor)?;
        Ok(Self::from_public_key(key))
    }

    /// An anchor from a CA certificate (X.509 DER or GlobalPlatform `7F21`): its public key,
    /// and for X.509 its subject name. The certificate's own signature and dates are not
    /// checked: the caller trusts it by configuration.
    ///
    /// # Errors
    /// [`Error::TrustAnchor`] when it is not a certificate with a P-256 key.
    pub fn from_certificate(der: &[u8]) -> Result<Self, Error> {
        let cert = parse_certificate(der).map_err(|(_, fault)| Error::TrustAnchor(fault))?;
        Ok(Self {
            key: cert.key,
            subject: match cert.format {
                Format::X509 => Some(cert.subject),
                Format::GlobalPlatform => None,
            },
            label: cert.subject_text,
        })
    }

    /// An anchor from DER bytes that hold a certificate or a `SubjectPublicKeyInfo`.
    ///
    /// # Errors
    /// [`Error::TrustAnchor`] when it is neither (with the certificate parser's reason).
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        match Self::from_certificate(der) {
            Ok(a) => Ok(a),
            Err(e) => Self::from_spki_der(der).map_err(|_| e),
        }
    }

    /// The anchor's public key.
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// The anchor's subject as text (a certificate's subject, or "public key").
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// Verify the SD certificate chain `certificates` (root-most first, the SD's certificate
/// last, as GET DATA BF21 serves it) and return the SD's public key.
///
/// The chain starts at the first certificate that one of `anchors` signed (certificates
/// before it, such as a self-signed root above the anchor, are ignored); every following
/// certificate must be signed by the one before it, name it as issuer (X.509 issuer/subject,
/// GlobalPlatform `42`/`5F20`), and every issuing X.509 certificate must be a CA. Key usage is
/// checked where present (X.509 issuers: certificate signing; the SD's certificate, X.509 or
/// GlobalPlatform: key agreement); a GlobalPlatform issuer's key usage is not interpreted.
/// Validity periods are checked only when `now` is given.
///
/// # Errors
/// [`Error::Certificate`] naming the refused certificate and the [`CertificateFault`].
pub fn verify_chain(
    certificates: &[&[u8]],
    anchors: &[TrustAnchor],
    now: Option<UnixTime>,
) -> Result<PublicKey, Error> {
    let count = certificates.len();
    let fail = |index: usize, subject: Option<String>, fault| {
        Error::Certificate(CertificateError {
            index,
            count,
            subject,
            fault,
        })
    };
    if count == 0 {
        return Err(fail(0, None, CertificateFault::EmptyChain));
    }
    if count > MAX_CHAIN_LEN {
        return Err(fail(0, None, CertificateFault::TooLarge));
    }
    let mut parsed = Vec::with_capacity(count);
    for (i, der) in certificates.iter().enumerate() {
        parsed.push(parse_certificate(der).map_err(|(subject, fault)| fail(i, subject, fault))?);
    }
    let Some(start) = parsed.iter().position(|c| signed_by_anchor(c, anchors)) else {
        let first = parsed.first();
        return Err(fail(
            0,
            first.map(|c| c.subject_text.clone()),
            CertificateFault::UnknownIssuer {
                issuer: first.map(|c| c.issuer_text.clone()).unwrap_or_default(),
            },
        ));
    };
    let last = count - 1;
    for (i, cert) in parsed.iter().enumerate().skip(start) {
        let here = |fault| fail(i, Some(cert.subject_text.clone()), fault);
        cert.check_validity(now).map_err(here)?;
        if i > start {
            let Some(issuer) = parsed.get(i - 1) else {
                return Err(here(CertificateFault::Malformed("chain")));
            };
            issuer
                .check_can_sign()
                .map_err(|fault| fail(i - 1, Some(issuer.subject_text.clone()), fault))?;
            if issuer.format == cert.format
                && !issuer.subject.is_empty()
                && !cert.issuer.is_empty()
                && issuer.subject != cert.issuer
            {
                return Err(here(CertificateFault::IssuerMismatch {
                    issuer: cert.issuer_text.clone(),
                    expected: issuer.subject_text.clone(),
                }));
            }
            if !cert.verify(&issuer.key) {
                return Err(here(CertificateFault::BadSignature));
            }
        } else if i < last {
            cert.check_can_sign().map_err(here)?;
        }
        if i == last {
            cert.check_key_agreement().map_err(here)?;
        }
    }
    parsed
        .last()
        .map(|c| c.key)
        .ok_or_else(|| fail(0, None, CertificateFault::EmptyChain))
}

/// Whether an anchor signed `cert` (and, for an anchor from an X.509 certificate, is the
/// issuer `cert` names).
fn signed_by_anchor(cert: &Parsed<'_>, anchors: &[TrustAnchor]) -> bool {
    anchors.iter().any(|a| {
        let name_ok = match (&a.subject, cert.format) {
            (Some(subject), Format::X509) => *subject == cert.issuer,
            _ => true,
        };
        name_ok && cert.verify(&a.key)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    X509,
    GlobalPlatform,
}

/// The fields of one certificate that the chain check uses.
struct Parsed<'a> {
    format: Format,
    /// The signed bytes.
    signed: &'a [u8],
    signature: Option<Signature>,
    key: PublicKey,
    /// X.509: DER of the issuer Name; GlobalPlatform: the `42` value.
    issuer: Vec<u8>,
    /// X.509: DER of the subject Name; GlobalPlatform: the `5F20` value.
    subject: Vec<u8>,
    issuer_text: String,
    subject_text: String,
    not_before: Option<u64>,
    not_after: Option<u64>,
    /// X.509 basic constraints cA (None: extension absent or a GlobalPlatform certificate).
    is_ca: Option<bool>,
    /// Whether the key may sign certificates / agree keys (None: no key usage given).
    may_sign: Option<bool>,
    may_agree: Option<bool>,
}

impl Parsed<'_> {
    fn verify(&self, key: &PublicKey) -> bool {
        let Some(sig) = &self.signature else {
            return false;
        };
        VerifyingKey::from(*key).verify(self.signed, sig).is_ok()
    }

    fn check_validity(&self, now: Option<UnixTime>) -> Result<(), CertificateFault> {
        let Some(UnixTime(now)) = now else {
            return Ok(());
        };
        if self.not_before.is_some_and(|t| now < t) {
            return Err(CertificateFault::NotYetValid);
        }
        if self.not_after.is_some_and(|t| now > t) {
            return Err(CertificateFault::Expired);
        }
        Ok(())
    }

    fn check_can_sign(&self) -> Result<(), CertificateFault> {
        // RFC 5280 §6.1.4 (k): an X.509 issuer must assert cA in basic constraints.
        if self.format == Format::X509 && self.is_ca != Some(true) {
            return Err(CertificateFault::NotCa);
        }
        if self.format == Format::X509 && self.may_sign == Some(false) {
            return Err(CertificateFault::KeyUsage(
                "certificate signing (keyCertSign)",
            ));
        }
        Ok(())
    }

    fn check_key_agreement(&self) -> Result<(), CertificateFault> {
        if self.may_agree == Some(false) {
            return Err(CertificateFault::KeyUsage("key agreement"));
        }
        Ok(())
    }
}

type ParseError = (Option<String>, CertificateFault);

fn parse_certificate(der: &[u8]) -> Result<Parsed<'_>, ParseError> {
    if der.len() > MAX_CERTIFICATE_LEN {
        return Err((None, CertificateFault::TooLarge));
    }
    match der.first() {
        Some(0x30) => parse_x509(der),
        Some(0x7F) => parse_gp(der),
        _ => Err((
            None,
            CertificateFault::Malformed("certificate (neither X.509 nor GlobalPlatform 7F21)"),
        )),
    }
}

/// The P-256 key of an X.509 `SubjectPublicKeyInfo`.
fn spki_key(spki: &SubjectPublicKeyInfoOwned) -> Result<PublicKey, CertificateFault> {
    if spki.algorithm.oid != OID_EC_PUBLIC_KEY {
        return Err(CertificateFault::UnsupportedAlgorithm(
            "public key is not an EC key (id-ecPublicKey)",
        ));
    }
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    if curve != Some(OID_P256) {
        return Err(CertificateFault::UnsupportedAlgorithm(
            "public key is not on P-256 (prime256v1)",
        ));
    }
    let bits = spki
        .subject_public_key
        .as_bytes()
        .ok_or(CertificateFault::Malformed(
            "subject public key (unused bits)",
        ))?;
    PublicKey::from_sec1_bytes(bits)
        .map_err(|_| CertificateFault::Malformed("subject public key (not a P-256 point)"))
}

fn parse_x509(der: &[u8]) -> Result<Parsed<'_>, ParseError> {
    let cert = Certificate::from_der(der)
        .map_err(|_| (None, CertificateFault::Malformed("X.509 certificate (DER)")))?;
    let tbs = cert.tbs_certificate();
    let subject_text = tbs.subject().to_string();
    let err = |fault| (Some(subject_text.clone()), fault);
    // The signed bytes exactly as received: the first element of the outer SEQUENCE.
    let signed = {
        let mut reader = SliceReader::new(der)
            .map_err(|_| err(CertificateFault::Malformed("X.509 certificate (DER)")))?;
        Header::decode(&mut reader)
            .and_then(|_| reader.tlv_bytes())
            .map_err(|_| err(CertificateFault::Malformed("tbsCertificate")))?
    };
    // RFC 5280 §4.1.1.2 / §4.1.2.3: both algorithm fields the same; RFC 5758 §3.2: no params.
    let alg = cert.signature_algorithm();
    if alg.oid != OID_ECDSA_SHA256 || alg.parameters.is_some() {
        return Err(err(CertificateFault::UnsupportedAlgorithm(
            "signature is not ecdsa-with-SHA256",
        )));
    }
    if tbs.signature() != alg {
        return Err(err(CertificateFault::Malformed(
            "tbsCertificate signature algorithm differs from the outer one",
        )));
    }
    let signature = cert
        .signature()
        .as_bytes()
        .and_then(|b| Signature::from_der(b).ok());
    let key = spki_key(tbs.subject_public_key_info()).map_err(err)?;
    let mut is_ca = None;
    let mut may_sign = None;
    let mut may_agree = None;
    for ext in tbs.extensions().map(|e| e.as_slice()).unwrap_or(&[]) {
        if ext.critical && !KNOWN_EXTENSIONS.contains(&ext.extn_id) {
            return Err(err(CertificateFault::UnsupportedCriticalExtension(
                ext.extn_id.to_string(),
            )));
        }
    }
    match tbs.get_extension::<BasicConstraints>() {
        Ok(Some((_, bc))) => is_ca = Some(bc.ca),
        Ok(None) => {}
        Err(_) => return Err(err(CertificateFault::Malformed("basic constraints"))),
    }
    match tbs.get_extension::<KeyUsage>() {
        Ok(Some((_, ku))) => {
            may_sign = Some(ku.0.contains(KeyUsages::KeyCertSign));
            may_agree = Some(ku.0.contains(KeyUsages::KeyAgreement));
        }
        Ok(None) => {}
        Err(_) => return Err(err(CertificateFault::Malformed("key usage"))),
    }
    let validity = tbs.validity();
    let issuer = tbs
        .issuer()
        .to_der()
        .map_err(|_| err(CertificateFault::Malformed("issuer name")))?;
    let subject = tbs
        .subject()
        .to_der()
        .map_err(|_| err(CertificateFault::Malformed("subject name")))?;
    Ok(Parsed {
        format: Format::X509,
        signed,
        signature,
        key,
        issuer,
        subject,
        issuer_text: tbs.issuer().to_string(),
        subject_text: subject_text.clone(),
        not_before: Some(validity.not_before.to_unix_duration().as_secs()),
        not_after: Some(validity.not_after.to_unix_duration().as_secs()),
        is_ca,
        may_sign,
        may_agree,
    })
}

/// A BCD date `YYYYMMDD` (4 bytes) as seconds: the start of the day, or its last second.
fn gp_date(v: &[u8], end_of_day: bool) -> Result<u64, CertificateFault> {
    const BAD: CertificateFault = CertificateFault::Malformed("date (YYYYMMDD in BCD)");
    let mut n = [0u16; 4];
    if v.len() != 4 {
        return Err(BAD);
    }
    for (out, b) in n.iter_mut().zip(v) {
        let (hi, lo) = (b >> 4, b & 0x0F);
        if hi > 9 || lo > 9 {
            return Err(BAD);
        }
        *out = u16::from(hi) * 10 + u16::from(lo);
    }
    let [c, y, m, d] = n;
    let month = u8::try_from(m).map_err(|_| BAD)?;
    let day = u8::try_from(d).map_err(|_| BAD)?;
    let days = days_from_civil(c * 100 + y, month, day).ok_or(BAD)?;
    Ok(days * 86_400 + if end_of_day { 86_399 } else { 0 })
}

fn hex_text(bytes: &[u8]) -> String {
    let printable = !bytes.is_empty() && bytes.iter().all(|b| (0x20..0x7F).contains(b));
    if printable {
        return bytes.iter().map(|&b| char::from(b)).collect();
    }
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

fn parse_gp(der: &[u8]) -> Result<Parsed<'_>, ParseError> {
    const BAD: CertificateFault = CertificateFault::Malformed("GlobalPlatform certificate (7F21)");
    let outer = parse_single(der).map_err(|_| (None, BAD))?;
    if outer.tag() != Tag::new(TAG_GP_CERTIFICATE) {
        return Err((None, BAD));
    }
    let body = outer.value();
    let mut rest = body;
    let mut signed_len = None;
    let mut signature_bytes = None;
    let (mut serial, mut issuer, mut subject, mut usage) = (None, None, None, None);
    let (mut effective, mut expiration, mut point, mut curve) = (None, None, None, None);
    while !rest.is_empty() {
        let (tlv, after) = parse_tlv(rest).map_err(|_| (None, BAD))?;
        let offset = body.len() - rest.len();
        if signed_len.is_some() {
            // Amd F certificate format: the signature is the last data object.
            return Err((
                None,
                CertificateFault::Malformed("data after the signature (5F37)"),
            ));
        }
        match tlv.tag().value() {
            TAG_GP_SERIAL => serial = Some(tlv.value()),
            TAG_GP_ISSUER => issuer = Some(tlv.value()),
            TAG_GP_SUBJECT => subject = Some(tlv.value()),
            TAG_GP_KEY_USAGE => usage = Some(tlv.value()),
            TAG_GP_EFFECTIVE => effective = Some(tlv.value()),
            TAG_GP_EXPIRATION => expiration = Some(tlv.value()),
            TAG_GP_PUBLIC_KEY => {
                for child in tlv.children() {
                    let child = child.map_err(|_| (None, BAD))?;
                    match child.tag().value() {
                        0xB0 => point = Some(child.value()),
                        0xF0 => curve = Some(child.value()),
                        _ => {}
                    }
                }
            }
            TAG_GP_SIGNATURE => {
                signed_len = Some(offset);
                signature_bytes = Some(tlv.value());
            }
            // 53/73 discretionary data, BF20 restrictions and others: signed, not interpreted.
            _ => {}
        }
        rest = after;
    }
    let subject_text = subject.map_or_else(
        || serial.map_or_else(String::new, |s| format!("serial {}", hex_text(s))),
        hex_text,
    );
    let err = |fault| (Some(subject_text.clone()), fault);
    let (Some(signed_len), Some(sig)) = (signed_len, signature_bytes) else {
        return Err(err(CertificateFault::Malformed(
            "certificate without signature (5F37)",
        )));
    };
    let signed = body
        .get(..signed_len)
        .ok_or_else(|| err(CertificateFault::Malformed("signature position")))?;
    if serial.is_none() {
        return Err(err(CertificateFault::Malformed(
            "certificate without serial number (93)",
        )));
    }
    if curve.is_some_and(|c| c != [GP_CURVE_P256]) {
        return Err(err(CertificateFault::UnsupportedAlgorithm(
            "key parameter reference (F0) is not 00 (P-256)",
        )));
    }
    let point =
        point.ok_or_else(|| err(CertificateFault::Malformed("public key (7F49 without B0)")))?;
    let key = PublicKey::from_sec1_bytes(point).map_err(|_| {
        err(CertificateFault::Malformed(
            "public key (B0 is not a P-256 point)",
        ))
    })?;
    let signature = if sig.len() == 64 {
        Signature::from_slice(sig).ok()
    } else {
        Signature::from_der(sig).ok()
    };
    let may_agree = match usage {
        None => None,
        Some([b]) => Some(u16::from(*b) & GP_KEY_USAGE_KEY_AGREEMENT != 0),
        Some([a, b]) => Some(u16::from_be_bytes([*a, *b]) & GP_KEY_USAGE_KEY_AGREEMENT != 0),
        Some(_) => return Err(err(CertificateFault::Malformed("key usage (95)"))),
    };
    let not_before = effective
        .map(|v| gp_date(v, false))
        .transpose()
        .map_err(err)?;
    let not_after = expiration
        .map(|v| gp_date(v, true))
        .transpose()
        .map_err(err)?;
    Ok(Parsed {
        format: Format::GlobalPlatform,
        signed,
        signature,
        key,
        issuer: issuer.map(<[u8]>::to_vec).unwrap_or_default(),
        subject: subject.map(<[u8]>::to_vec).unwrap_or_default(),
        issuer_text: issuer.map_or_else(String::new, hex_text),
        subject_text: subject_text.clone(),
        not_before,
        not_after,
        is_ca: None,
        may_sign: None,
        may_agree,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(days_from_civil(2024, 2, 29), Some(19_782));
        assert_eq!(days_from_civil(2023, 2, 29), None);
        assert_eq!(days_from_civil(1969, 12, 31), None);
        assert_eq!(
            gp_date(&[0x20, 0x25, 0x05, 0x24], true),
            Ok(20_232 * 86_400 + 86_399)
        );
        assert!(gp_date(&[0x20, 0x25, 0x13, 0x01], false).is_err());
        assert!(gp_date(&[0x20, 0x2A, 0x01, 0x01], false).is_err());
    }

    #[test]
    fn error_display_saturates() {
        let e = CertificateError {
            index: usize::MAX,
            count: usize::MAX,
            subject: None,
            fault: CertificateFault::BadSignature,
        };
        assert_eq!(
            e.to_string(),
            format!(
                "certificate {0} of {0} (the SD's own): signature does not verify under the \
                 issuer's key",
                usize::MAX
            )
        );
    }
}
