//! GET DATA (GPC 2.3 §11.3) and the data objects a security domain returns: CPLC, card data
//! (card recognition data, GPC 2.3 §H.2), key information template (§11.3.3.1), key
//! diversification data, sequence counter, IIN, CIN and the SCP11 certificate store
//! (Amendment F).

use alloc::vec::Vec;

use apdu_codec::tlv::{self, Tag, TlvBuilder};
use apdu_codec::{Command, CommandView, ins};

use super::reader::{Reader, be_uint, expect_ins, unwrap_tag};
use super::select::set_once;
use super::{CLA_GP, CommandError, LE_MAX_SHORT};

/// `9F7F` Card Production Life Cycle data (GET DATA object, GPC 2.3 §11.3.3.1).
pub const TAG_CPLC: Tag = Tag::new(0x9F7F);
/// `66` card data: the card recognition data template (GPC 2.3 §H.2).
pub const TAG_CARD_DATA: Tag = Tag::new(0x66);
/// `CF` key diversification data (GPC 2.3 §11.3.3.1; 10 bytes on most cards).
pub const TAG_KDD: Tag = Tag::new(0xCF);
/// `C1` sequence counter of the default key version (GPC 2.3 §11.3.3.1, §E.4.2, Amd D §6.2.1).
pub const TAG_SEQUENCE_COUNTER: Tag = Tag::new(0xC1);
/// `E0` key information template (GPC 2.3 §11.3.3.1).
pub const TAG_KEY_INFORMATION: Tag = Tag::new(0xE0);
/// `C0` key information data inside `E0` (GPC 2.3 §11.3.3.1).
pub const TAG_KEY_INFORMATION_DATA: Tag = Tag::new(0xC0);
/// `42` issuer identification number (GPC 2.3 §11.3.3.1).
pub const TAG_IIN: Tag = Tag::new(0x42);
/// `45` card image number (GPC 2.3 §11.3.3.1).
pub const TAG_CIN: Tag = Tag::new(0x45);
/// `BF21` certificate store (GPC Amendment F, GET DATA for the certificate store).
pub const TAG_CERTIFICATE_STORE: Tag = Tag::new(0xBF21);
/// `A6` control reference template selecting the key whose certificates are wanted
/// (Amendment F GET DATA; as yubikit sends it).
pub const TAG_KEY_CONTROL_REFERENCE: Tag = Tag::new(0xA6);
/// `83` key identifier and key version inside `A6` (Amendment F GET DATA; as yubikit sends it).
pub const TAG_KEY_ID_VERSION: Tag = Tag::new(0x83);
/// `73` card recognition data inside `66` (GPC 2.3 §H.2).
pub const TAG_CARD_RECOGNITION: Tag = Tag::new(0x73);
/// `06` object identifier.
pub const TAG_OID: Tag = Tag::new(0x06);
/// `7F21` a GlobalPlatform (BSI TR-03111 style) certificate (Amendment F certificate format).
pub const TAG_GP_CERTIFICATE: Tag = Tag::new(0x7F21);
/// `30` an X.509 certificate (DER SEQUENCE), as yubikit stores them.
pub const TAG_DER_SEQUENCE: Tag = Tag::new(0x30);

/// The GlobalPlatform OID arc {iso(1) member-body(2) us(840) globalPlatform(114283)}:
/// `2A 86 48 86 FC 6B` (GPC 2.3 §H.2).
pub const GP_OID: [u8; 6] = [0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B];
/// {globalPlatform 1}: card recognition data (GPC 2.3 §H.2).
pub const OID_ARC_RECOGNITION: u8 = 0x01;
/// {globalPlatform 2 v}: card management type and version (GPC 2.3 §H.2, tag `60`).
pub const OID_ARC_VERSION: u8 = 0x02;
/// {globalPlatform 3}: card identification scheme (GPC 2.3 §H.2, tag `63`).
pub const OID_ARC_ID_SCHEME: u8 = 0x03;
/// {globalPlatform 4 scp i}: secure channel protocol and its option (GPC 2.3 §H.2, tag `64`).
pub const OID_ARC_SCP: u8 = 0x04;

/// Length of the CPLC data (Visa GlobalPlatform Card Implementation Requirements; the layout
/// GlobalPlatformPro `CPLC.java` reads).
pub const CPLC_LEN: usize = 42;

/// Host: GET DATA `80 CA P1 P2 00` for the object with the given tag (one or two bytes).
///
/// ```
/// use gp_scp::cmd::get_data::{get_data, TAG_CPLC, TAG_CARD_DATA};
/// assert_eq!(get_data(TAG_CPLC).to_vec()?, [0x80, 0xCA, 0x9F, 0x7F, 0x00]);
/// assert_eq!(get_data(TAG_CARD_DATA).to_vec()?, [0x80, 0xCA, 0x00, 0x66, 0x00]);
/// # Ok::<(), apdu_codec::Error>(())
/// ```
#[must_use]
pub fn get_data(tag: Tag) -> Command {
    let [_, _, p1, p2] = tag.value().to_be_bytes();
    Command::new(CLA_GP, ins::GET_DATA, p1, p2).with_le(LE_MAX_SHORT)
}

/// A key identifier and key version (`83` inside `A6`, Amendment F GET DATA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyReference {
    /// Key identifier.
    pub id: u8,
    /// Key version number.
    pub version: u8,
}

/// Host: GET DATA `BF21` for the certificate store, optionally of one key
/// (`A6 { 83 02 id version }`, Amendment F GET DATA).
#[must_use]
pub fn get_certificate_store(key: Option<KeyReference>) -> Command {
    let command = get_data(TAG_CERTIFICATE_STORE);
    match key {
        None => command,
        Some(k) => {
            let mut b = TlvBuilder::new();
            b.constructed(TAG_KEY_CONTROL_REFERENCE, |a6| {
                a6.primitive(TAG_KEY_ID_VERSION, &[k.id, k.version]);
            });
            command.with_data(b.into_vec())
        }
    }
}

/// A GET DATA request as the card sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetData {
    /// The tag from P1 P2 (P1 `00` means a one-byte tag in P2).
    pub tag: Tag,
    /// For the certificate store: the key asked for.
    pub key: Option<KeyReference>,
}

/// Card side: parse GET DATA.
///
/// # Errors
/// [`CommandError::Instruction`], [`CommandError::P1P2`] for P1 P2 `0000`,
/// [`CommandError::DataLength`] for data with another tag than `BF21`, and for `BF21` the
/// errors of a malformed `A6 { 83 }` template.
pub fn parse_get_data(command: &CommandView<'_>) -> Result<GetData, CommandError> {
    expect_ins(command, ins::GET_DATA)?;
    let (p1, p2) = (command.p1(), command.p2());
    if p1 == 0 && p2 == 0 {
        return Err(CommandError::P1P2 {
            command: "GET DATA",
            p1,
            p2,
        });
    }
    let tag = Tag::new(u32::from(u16::from_be_bytes([p1, p2])));
    let data = command.data();
    if data.is_empty() {
        return Ok(GetData { tag, key: None });
    }
    if tag != TAG_CERTIFICATE_STORE {
        return Err(CommandError::DataLength {
            command: "GET DATA",
            len: data.len(),
        });
    }
    let a6 = tlv::parse_single(data)?;
    if a6.tag() != TAG_KEY_CONTROL_REFERENCE {
        return Err(CommandError::UnexpectedTag {
            context: "GET DATA key reference",
            found: a6.tag(),
        });
    }
    let mut key = None;
    for child in a6.children() {
        let child = child?;
        if child.tag() != TAG_KEY_ID_VERSION {
            return Err(CommandError::UnexpectedTag {
                context: "GET DATA key reference",
                found: child.tag(),
            });
        }
        let [id, version] = *child.value() else {
            return Err(CommandError::FieldLength {
                field: "key identifier and version",
                len: child.value().len(),
                min: 2,
                max: 2,
            });
        };
        set_once(&mut key, KeyReference { id, version }, TAG_KEY_ID_VERSION)?;
    }
    match key {
        Some(key) => Ok(GetData {
            tag,
            key: Some(key),
        }),
        None => Err(CommandError::MissingTag(TAG_KEY_ID_VERSION)),
    }
}

/// The value of a GET DATA response object, checking its tag (`CF`, `C1`, `42`, `45`, ...).
///
/// # Errors
/// [`CommandError::Tlv`], [`CommandError::UnexpectedTag`].
pub fn parse_data_object(data: &[u8], tag: Tag) -> Result<&[u8], CommandError> {
    unwrap_tag(data, tag)
}

/// The sequence counter `C1` (2 bytes for SCP02, 3 for SCP03).
///
/// # Errors
/// As [`parse_data_object`], plus [`CommandError::FieldLength`] outside 2..=3 bytes.
pub fn parse_sequence_counter(data: &[u8]) -> Result<u32, CommandError> {
    let value = unwrap_tag(data, TAG_SEQUENCE_COUNTER)?;
    if !(2..=3).contains(&value.len()) {
        return Err(CommandError::FieldLength {
            field: "sequence counter",
            len: value.len(),
            min: 2,
            max: 3,
        });
    }
    be_uint(value, "sequence counter")
}

/// Card Production Life Cycle data (42 bytes; Visa GlobalPlatform Card Implementation
/// Requirements). Dates are `YDDD` in BCD: last digit of the year, day of the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cplc {
    /// Bytes 0-1: IC fabricator.
    pub ic_fabricator: u16,
    /// Bytes 2-3: IC type.
    pub ic_type: u16,
    /// Bytes 4-5: operating system identifier.
    pub os_id: u16,
    /// Bytes 6-7: operating system release date.
    pub os_release_date: u16,
    /// Bytes 8-9: operating system release level.
    pub os_release_level: u16,
    /// Bytes 10-11: IC fabrication date.
    pub ic_fabrication_date: u16,
    /// Bytes 12-15: IC serial number.
    pub ic_serial_number: u32,
    /// Bytes 16-17: IC batch identifier.
    pub ic_batch_id: u16,
    /// Bytes 18-19: IC module fabricator.
    pub ic_module_fabricator: u16,
    /// Bytes 20-21: IC module packaging date.
    pub ic_module_packaging_date: u16,
    /// Bytes 22-23: ICC manufacturer.
    pub icc_manufacturer: u16,
    /// Bytes 24-25: IC embedding date.
    pub ic_embedding_date: u16,
    /// Bytes 26-27: IC pre-personalizer.
    pub pre_personalizer: u16,
    /// Bytes 28-29: IC pre-personalization date.
    pub pre_personalization_date: u16,
    /// Bytes 30-33: IC pre-personalization equipment identifier.
    pub pre_personalization_equipment: u32,
    /// Bytes 34-35: IC personalizer.
    pub personalizer: u16,
    /// Bytes 36-37: IC personalization date.
    pub personalization_date: u16,
    /// Bytes 38-41: IC personalization equipment identifier.
    pub personalization_equipment: u32,
}

impl Cplc {
    /// Decode the 42 data bytes (without the `9F7F` header).
    ///
    /// # Errors
    /// [`CommandError::FieldLength`] unless exactly 42 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CommandError> {
        let Ok(b) = <&[u8; CPLC_LEN]>::try_from(bytes) else {
            return Err(CommandError::FieldLength {
                field: "CPLC",
                len: bytes.len(),
                min: CPLC_LEN,
                max: CPLC_LEN,
            });
        };
        let w = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let d = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Ok(Cplc {
            ic_fabricator: w(0),
            ic_type: w(2),
            os_id: w(4),
            os_release_date: w(6),
            os_release_level: w(8),
            ic_fabrication_date: w(10),
            ic_serial_number: d(12),
            ic_batch_id: w(16),
            ic_module_fabricator: w(18),
            ic_module_packaging_date: w(20),
            icc_manufacturer: w(22),
            ic_embedding_date: w(24),
            pre_personalizer: w(26),
            pre_personalization_date: w(28),
            pre_personalization_equipment: d(30),
            personalizer: w(34),
            personalization_date: w(36),
            personalization_equipment: d(38),
        })
    }

    /// The 42 data bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; CPLC_LEN] {
        let mut out = Vec::with_capacity(CPLC_LEN);
        for word in [
            self.ic_fabricator,
            self.ic_type,
            self.os_id,
            self.os_release_date,
            self.os_release_level,
            self.ic_fabrication_date,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&self.ic_serial_number.to_be_bytes());
        for word in [
            self.ic_batch_id,
            self.ic_module_fabricator,
            self.ic_module_packaging_date,
            self.icc_manufacturer,
            self.ic_embedding_date,
            self.pre_personalizer,
            self.pre_personalization_date,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&self.pre_personalization_equipment.to_be_bytes());
        out.extend_from_slice(&self.personalizer.to_be_bytes());
        out.extend_from_slice(&self.personalization_date.to_be_bytes());
        out.extend_from_slice(&self.personalization_equipment.to_be_bytes());
        let mut fixed = [0u8; CPLC_LEN];
        for (dst, src) in fixed.iter_mut().zip(out) {
            *dst = src;
        }
        fixed
    }

    /// Card side: the GET DATA response `9F7F 2A <42 bytes>`.
    #[must_use]
    pub fn to_tlv(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CPLC_LEN + 3);
        tlv::write_tlv(&mut out, TAG_CPLC, &self.to_bytes());
        out
    }
}

/// Host side: parse a CPLC response, with its `9F7F` header or as the bare 42 bytes.
///
/// # Errors
/// [`CommandError::Tlv`], [`CommandError::UnexpectedTag`], [`CommandError::FieldLength`].
pub fn parse_cplc(data: &[u8]) -> Result<Cplc, CommandError> {
    if data.len() == CPLC_LEN {
        return Cplc::from_bytes(data);
    }
    Cplc::from_bytes(unwrap_tag(data, TAG_CPLC)?)
}

/// A CPLC date `YDDD` (BCD): `(last digit of the year, day of the year)`, or `None` when
/// the digits are not BCD or the day is outside 1..=366 (unset fields are often `0000`).
#[must_use]
pub fn parse_cplc_date(raw: u16) -> Option<(u8, u16)> {
    let [hi, lo] = raw.to_be_bytes();
    let digits = [hi >> 4, hi & 0x0F, lo >> 4, lo & 0x0F];
    if digits.iter().any(|d| *d > 9) {
        return None;
    }
    let day = u16::from(digits[1]) * 100 + u16::from(digits[2]) * 10 + u16::from(digits[3]);
    (1..=366).contains(&day).then_some((digits[0], day))
}

/// A secure channel protocol and its option `i`, from `64 { 06 {gp 4 scp i} }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScpInfo {
    /// Protocol number (`02`, `03`, `11`, ...).
    pub scp: u8,
    /// Implementation option `i`.
    pub i: u8,
}

/// SCP02 `i` bits (GPC 2.3 §E.1.1).
const SCP02_OPTIONS: [(u8, &str, &str); 7] = [
    (0x01, "3 secure channel keys", "1 secure channel base key"),
    (0x02, "implicit initiation", "explicit initiation"),
    (0x04, "C-MAC on modified APDU", "C-MAC on unmodified APDU"),
    (0x08, "ICV is MAC over AID", "ICV set to zero"),
    (
        0x10,
        "ICV encryption for C-MAC session",
        "no ICV encryption",
    ),
    (0x20, "R-MAC supported", "no R-MAC"),
    (
        0x40,
        "well-known pseudo-random card challenge",
        "unpredictable card challenge",
    ),
];

/// SCP03 `i` bits (GPC Amendment D §5.1).
const SCP03_OPTIONS: [(u8, &str, &str); 4] = [
    (
        0x01,
        "S16 (16-byte cryptograms and MACs)",
        "S8 (8-byte cryptograms and MACs)",
    ),
    (
        0x10,
        "pseudo-random card challenge",
        "random card challenge",
    ),
    (0x20, "R-MAC supported", "no R-MAC"),
    (0x40, "R-ENC supported", "no R-ENC"),
];

impl ScpInfo {
    /// What the `i` bits mean for SCP02 (GPC 2.3 §E.1.1) and SCP03 (Amendment D §5.1); empty
    /// for other protocols.
    #[must_use]
    pub fn option_names(&self) -> Vec<&'static str> {
        let table: &[(u8, &str, &str)] = match self.scp {
            0x02 => &SCP02_OPTIONS,
            0x03 => &SCP03_OPTIONS,
            _ => &[],
        };
        table
            .iter()
            .map(|(bit, set, clear)| if self.i & bit != 0 { *set } else { *clear })
            .collect()
    }
}

/// Card recognition data (GPC 2.3 §H.2): the `73` template inside card data `66`, also the
/// security domain management data of an FCI (§H.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CardRecognitionData {
    /// `60 { 06 {gp 2 v} }`: the card management version arcs (`[2, 3, 1]` for GP 2.3.1).
    pub gp_version: Option<Vec<u8>>,
    /// `63 { 06 {gp 3 ...} }`: the card identification scheme OID arcs after `{gp 3}`
    /// (usually empty).
    pub card_id_scheme: Option<Vec<u8>>,
    /// Every `64 { 06 {gp 4 scp i} }`.
    pub secure_channels: Vec<ScpInfo>,
    /// `65`: card configuration details (raw value).
    pub card_configuration: Option<Vec<u8>>,
    /// `66`: card / chip details (raw value).
    pub chip_details: Option<Vec<u8>>,
    /// `67`: issuer security domain's trust point certificate information (raw value).
    pub trust_point_info: Option<Vec<u8>>,
    /// `68`: issuer security domain certificate information (raw value).
    pub certificate_info: Option<Vec<u8>>,
}

fn gp_oid(arc: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(GP_OID.len() + 1 + rest.len());
    v.extend_from_slice(&GP_OID);
    v.push(arc);
    v.extend_from_slice(rest);
    v
}

/// The arcs after `{gp arc}` inside the `06` of a constructed object's value.
fn gp_oid_arcs(value: &[u8], arc: u8, field: &'static str) -> Result<Vec<u8>, CommandError> {
    let oid = tlv::parse_single(value)?;
    if oid.tag() != TAG_OID {
        return Err(CommandError::UnexpectedTag {
            context: field,
            found: oid.tag(),
        });
    }
    let v = oid.value();
    match v.strip_prefix(&GP_OID[..]) {
        Some([a, rest @ ..]) if *a == arc => Ok(rest.to_vec()),
        _ => Err(CommandError::Value {
            field,
            value: v.first().copied().map_or(0, u32::from),
        }),
    }
}

impl CardRecognitionData {
    /// Card side: the GET DATA `66` response `66 { 73 { 06 {gp 1} ... } }`.
    #[must_use]
    pub fn to_card_data(&self) -> Vec<u8> {
        let mut b = TlvBuilder::new();
        b.constructed(TAG_CARD_DATA, |c| {
            c.raw(&self.to_template());
        });
        b.into_vec()
    }

    /// The `73` template alone.
    #[must_use]
    pub fn to_template(&self) -> Vec<u8> {
        let mut out = Vec::new();
        tlv::write_tlv(&mut out, TAG_CARD_RECOGNITION, &self.to_template_value());
        out
    }

    /// The value of the `73` template (without tag and length): the security domain
    /// management data of an FCI ([`Fci::management_data`](super::select::Fci)).
    #[must_use]
    pub fn to_template_value(&self) -> Vec<u8> {
        let mut t = TlvBuilder::new();
        t.primitive(TAG_OID, &gp_oid(OID_ARC_RECOGNITION, &[]));
        if let Some(v) = &self.gp_version {
            t.constructed(Tag::new(0x60), |x| {
                x.primitive(TAG_OID, &gp_oid(OID_ARC_VERSION, v));
            });
        }
        if let Some(s) = &self.card_id_scheme {
            t.constructed(Tag::new(0x63), |x| {
                x.primitive(TAG_OID, &gp_oid(OID_ARC_ID_SCHEME, s));
            });
        }
        for scp in &self.secure_channels {
            t.constructed(Tag::new(0x64), |x| {
                x.primitive(TAG_OID, &gp_oid(OID_ARC_SCP, &[scp.scp, scp.i]));
            });
        }
        for (tag, value) in [
            (0x65, &self.card_configuration),
            (0x66, &self.chip_details),
            (0x67, &self.trust_point_info),
            (0x68, &self.certificate_info),
        ] {
            if let Some(v) = value {
                t.primitive(Tag::new(tag), v);
            }
        }
        t.into_vec()
    }
}

/// Host side: parse card data (`66 { 73 { ... } }`, GPC 2.3 §H.2) or a bare `73` template.
///
/// # Errors
/// [`CommandError::Tlv`], [`CommandError::UnexpectedTag`] for another outer tag,
/// [`CommandError::MissingTag`] without `73`, [`CommandError::Value`] for an OID outside
/// the GlobalPlatform arc, [`CommandError::FieldLength`] for an SCP OID without `scp i`,
/// [`CommandError::DuplicateTag`].
pub fn parse_card_recognition_data(data: &[u8]) -> Result<CardRecognitionData, CommandError> {
    let outer = tlv::parse_single(data)?;
    let template = match outer.tag() {
        TAG_CARD_RECOGNITION => outer,
        TAG_CARD_DATA => outer
            .find(TAG_CARD_RECOGNITION)?
            .ok_or(CommandError::MissingTag(TAG_CARD_RECOGNITION))?,
        other => {
            return Err(CommandError::UnexpectedTag {
                context: "card data",
                found: other,
            });
        }
    };
    let mut out = CardRecognitionData::default();
    for child in template.children() {
        let child = child?;
        let value = child.value();
        match child.tag().value() {
            0x06 => {
                if value != gp_oid(OID_ARC_RECOGNITION, &[]).as_slice() {
                    return Err(CommandError::Value {
                        field: "card recognition OID",
                        value: value.first().copied().map_or(0, u32::from),
                    });
                }
            }
            0x60 => set_once(
                &mut out.gp_version,
                gp_oid_arcs(value, OID_ARC_VERSION, "card management version OID")?,
                child.tag(),
            )?,
            0x63 => set_once(
                &mut out.card_id_scheme,
                gp_oid_arcs(value, OID_ARC_ID_SCHEME, "card identification scheme OID")?,
                child.tag(),
            )?,
            0x64 => {
                let arcs = gp_oid_arcs(value, OID_ARC_SCP, "secure channel protocol OID")?;
                let [scp, i] = *arcs.as_slice() else {
                    return Err(CommandError::FieldLength {
                        field: "secure channel protocol OID",
                        len: arcs.len(),
                        min: 2,
                        max: 2,
                    });
                };
                out.secure_channels.push(ScpInfo { scp, i });
            }
            0x65 => set_once(&mut out.card_configuration, value.to_vec(), child.tag())?,
            0x66 => set_once(&mut out.chip_details, value.to_vec(), child.tag())?,
            0x67 => set_once(&mut out.trust_point_info, value.to_vec(), child.tag())?,
            0x68 => set_once(&mut out.certificate_info, value.to_vec(), child.tag())?,
            _ => {
                return Err(CommandError::UnexpectedTag {
                    context: "card recognition data",
                    found: child.tag(),
                });
            }
        }
    }
    Ok(out)
}

/// One component of a key: its type (GPC 2.3 §11.1.8: `80` DES, `88` AES, `B0` EC public,
/// ...) and length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyComponent {
    /// Key type coding.
    pub key_type: u8,
    /// Key length in bytes.
    pub length: u16,
}

/// Key usage and key access of the extended key information format (GPC 2.3 §11.3.3.1,
/// §11.1.9, §11.1.10), each 0 or 1 byte on the wire (kept as given).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyUsageAccess {
    /// Key usage qualifier.
    pub usage: Vec<u8>,
    /// Key access.
    pub access: Vec<u8>,
}

/// One key information data object `C0` (GPC 2.3 §11.3.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInformation {
    /// Key identifier.
    pub id: u8,
    /// Key version number.
    pub version: u8,
    /// One or more components.
    pub components: Vec<KeyComponent>,
    /// `Some` for the extended format (key type `FF xx`, 2-byte lengths, usage and access).
    pub extended: Option<KeyUsageAccess>,
}

impl KeyInformation {
    /// A key in the basic format with one component.
    #[must_use]
    pub fn basic(id: u8, version: u8, key_type: u8, length: u8) -> Self {
        KeyInformation {
            id,
            version,
            components: alloc::vec![KeyComponent {
                key_type,
                length: u16::from(length),
            }],
            extended: None,
        }
    }

    /// The `C0` value.
    ///
    /// # Errors
    /// [`CommandError::Value`] for a basic-format component whose type is `FF` or whose
    /// length does not fit one byte, [`CommandError::TooLong`] for usage/access over 255
    /// bytes, [`CommandError::FieldLength`] without components.
    pub fn to_value(&self) -> Result<Vec<u8>, CommandError> {
        if self.components.is_empty() {
            return Err(CommandError::FieldLength {
                field: "key components",
                len: 0,
                min: 1,
                max: usize::MAX,
            });
        }
        let mut out = alloc::vec![self.id, self.version];
        match &self.extended {
            None => {
                for c in &self.components {
                    let len = u8::try_from(c.length).map_err(|_| CommandError::Value {
                        field: "basic key length",
                        value: u32::from(c.length),
                    })?;
                    if c.key_type == 0xFF {
                        return Err(CommandError::Value {
                            field: "basic key type",
                            value: 0xFF,
                        });
                    }
                    out.extend_from_slice(&[c.key_type, len]);
                }
            }
            Some(ext) => {
                for c in &self.components {
                    out.extend_from_slice(&[0xFF, c.key_type]);
                    out.extend_from_slice(&c.length.to_be_bytes());
                }
                super::reader::put_lv(&mut out, &ext.usage, "key usage")?;
                super::reader::put_lv(&mut out, &ext.access, "key access")?;
            }
        }
        Ok(out)
    }
}

fn parse_key_information_data(value: &[u8]) -> Result<KeyInformation, CommandError> {
    let mut r = Reader::new(value);
    let id = r.byte("key identifier")?;
    let version = r.byte("key version number")?;
    let mut components = Vec::new();
    if r.peek() == Some(0xFF) {
        while r.peek() == Some(0xFF) {
            let _ff = r.byte("extended key type")?;
            let key_type = r.byte("extended key type")?;
            let length = r.u16("extended key length")?;
            components.push(KeyComponent { key_type, length });
        }
        let usage = r.lv("key usage")?.to_vec();
        let access = r.lv("key access")?.to_vec();
        r.finish("extended key information")?;
        return Ok(KeyInformation {
            id,
            version,
            components,
            extended: Some(KeyUsageAccess { usage, access }),
        });
    }
    while !r.is_empty() {
        let key_type = r.byte("key type")?;
        if key_type == 0xFF {
            // The extended format cannot follow a basic component.
            return Err(CommandError::Value {
                field: "basic key type",
                value: 0xFF,
            });
        }
        let length = r.byte("key length")?;
        components.push(KeyComponent {
            key_type,
            length: u16::from(length),
        });
    }
    if components.is_empty() {
        return Err(CommandError::Truncated {
            field: "key type",
            needed: 2,
            available: 0,
        });
    }
    Ok(KeyInformation {
        id,
        version,
        components,
        extended: None,
    })
}

/// Host side: parse the key information template, with the outer `E0` (GlobalPlatform
/// tools) or as the bare `C0` objects (how yubikit reads a YubiKey's answer). Empty `C0`
/// objects (a security domain without keys) are skipped.
///
/// # Errors
/// [`CommandError::Tlv`], [`CommandError::UnexpectedTag`] for anything but `C0` entries,
/// the field errors of each entry.
pub fn parse_key_information(data: &[u8]) -> Result<Vec<KeyInformation>, CommandError> {
    let entries = match tlv::parse_single(data) {
        Ok(e0) if e0.tag() == TAG_KEY_INFORMATION => e0.value(),
        _ => data,
    };
    let mut out = Vec::new();
    for item in tlv::TlvIter::new(entries) {
        let item = item?;
        if item.tag() != TAG_KEY_INFORMATION_DATA {
            return Err(CommandError::UnexpectedTag {
                context: "key information template",
                found: item.tag(),
            });
        }
        if item.value().is_empty() {
            // A fresh security domain without keys answers an empty `C0` (seen on real
            // cards, and skipped by GlobalPlatformPro's GPKeyInfo.parseTemplate).
            continue;
        }
        out.push(parse_key_information_data(item.value())?);
    }
    Ok(out)
}

/// Card side: encode the key information template, with the outer `E0` or without it (a
/// card-profile option, see `PROTOCOLS.md`: yubikit expects it without).
///
/// # Errors
/// As [`KeyInformation::to_value`].
pub fn encode_key_information(
    keys: &[KeyInformation],
    with_template: bool,
) -> Result<Vec<u8>, CommandError> {
    let mut entries = Vec::new();
    for key in keys {
        tlv::write_tlv(&mut entries, TAG_KEY_INFORMATION_DATA, &key.to_value()?);
    }
    if !with_template {
        return Ok(entries);
    }
    let mut out = Vec::with_capacity(entries.len() + 4);
    tlv::write_tlv(&mut out, TAG_KEY_INFORMATION, &entries);
    Ok(out)
}

/// Every complete TLV object of `data`, as the slices of the input they occupy.
fn raw_objects(data: &[u8]) -> Result<Vec<&[u8]>, CommandError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (_, after) = tlv::parse_tlv(rest)?;
        let used = rest.len() - after.len();
        let (object, after) = rest.split_at(used);
        out.push(object);
        rest = after;
    }
    Ok(out)
}

fn check_certificate_tag(object: &[u8]) -> Result<(), CommandError> {
    let tag = tlv::parse_single(object)?.tag();
    if tag == TAG_GP_CERTIFICATE || tag == TAG_DER_SEQUENCE {
        Ok(())
    } else {
        Err(CommandError::UnexpectedTag {
            context: "certificate store",
            found: tag,
        })
    }
}

/// Host side: the certificates of a certificate store, with the outer `BF21` (Amendment F)
/// or as bare concatenated certificates (yubikit). Each certificate is returned
/// whole (tag, length and value): `7F21` GlobalPlatform certificates or `30` X.509 DER.
///
/// # Errors
/// [`CommandError::Tlv`], [`CommandError::UnexpectedTag`] for another object.
pub fn parse_certificate_store(data: &[u8]) -> Result<Vec<&[u8]>, CommandError> {
    let certificates = match tlv::parse_single(data) {
        Ok(store) if store.tag() == TAG_CERTIFICATE_STORE => store.value(),
        _ => data,
    };
    let out = raw_objects(certificates)?;
    for cert in &out {
        check_certificate_tag(cert)?;
    }
    Ok(out)
}

/// Card side: encode a certificate store, with the outer `BF21` or without it.
///
/// # Errors
/// [`CommandError::Tlv`] or [`CommandError::UnexpectedTag`] when a certificate is not one
/// complete `7F21` or `30` object.
pub fn encode_certificate_store(
    certificates: &[&[u8]],
    with_template: bool,
) -> Result<Vec<u8>, CommandError> {
    let mut body = Vec::new();
    for cert in certificates {
        check_certificate_tag(cert)?;
        body.extend_from_slice(cert);
    }
    if !with_template {
        return Ok(body);
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    tlv::write_tlv(&mut out, TAG_CERTIFICATE_STORE, &body);
    Ok(out)
}
