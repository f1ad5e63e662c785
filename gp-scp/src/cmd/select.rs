//! SELECT (GPC 2.3 §11.9) and the File Control Information it returns (§11.9.3.1).

use alloc::vec::Vec;

use apdu_codec::tlv::{self, Tag, TlvBuilder};
use apdu_codec::{Command, CommandView, ins};

use super::get_data::{CardRecognitionData, parse_card_recognition_data};
use super::reader::{be_uint, be_uint_bytes, expect_ins};
use super::{AID_MAX_LEN, Aid, CLA_ISO, CommandError, LE_MAX_SHORT};

/// P1 `04`: select by name (GPC 2.3 §11.9.2.1).
pub const P1_BY_NAME: u8 = 0x04;
/// P2 `00`: first or only occurrence (GPC 2.3 §11.9.2.2).
pub const P2_FIRST: u8 = 0x00;
/// P2 `02`: next occurrence (GPC 2.3 §11.9.2.2).
pub const P2_NEXT: u8 = 0x02;

/// FCI template (GPC 2.3 §11.9.3.1).
pub const TAG_FCI: Tag = Tag::new(0x6F);
/// Application / file AID (DF name) in the FCI.
pub const TAG_AID: Tag = Tag::new(0x84);
/// Proprietary data template.
pub const TAG_PROPRIETARY: Tag = Tag::new(0xA5);
/// Security domain management data (same structure as card recognition data, GPC 2.3 §H.3).
pub const TAG_SD_MANAGEMENT_DATA: Tag = Tag::new(0x73);
/// Application production life cycle data.
pub const TAG_PRODUCTION_LIFE_CYCLE: Tag = Tag::new(0x9F6E);
/// Maximum length of the data field in a command message.
pub const TAG_MAX_COMMAND_DATA: Tag = Tag::new(0x9F65);

/// P2 b4-b3 `11` (`0C`): no response data (ISO/IEC 7816-4 §11.1.1, Table 63).
pub const P2_NO_RESPONSE_DATA: u8 = 0x0C;
/// P2 b4-b3 `01` (`04`): return the FCP template (ISO/IEC 7816-4 §11.1.1, Table 63).
pub const P2_FCP: u8 = 0x04;
/// P2 b4-b3 mask: which template the response carries (ISO/IEC 7816-4 §11.1.1).
pub const P2_RESPONSE_MASK: u8 = 0x0C;

/// What a SELECT asks to get back (ISO/IEC 7816-4 §11.1.1, P2 b4-b3). GlobalPlatform
/// commands use [`SelectResponse::Fci`] (GPC 2.3 §11.9.2.2); cards also accept the ISO codings
/// PC/SC tools send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SelectResponse {
    /// `00`: the FCI.
    #[default]
    Fci,
    /// `04`: the FCP template (a GlobalPlatform card answers its FCI).
    Fcp,
    /// `0C`: no response data.
    NoData,
}

impl SelectResponse {
    const fn p2_bits(self) -> u8 {
        match self {
            SelectResponse::Fci => 0x00,
            SelectResponse::Fcp => P2_FCP,
            SelectResponse::NoData => P2_NO_RESPONSE_DATA,
        }
    }
}

/// Which occurrence a SELECT by (partial) name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Occurrence {
    /// First or only (P2 `00`).
    First,
    /// Next (P2 `02`).
    Next,
}

/// A SELECT by name as the card sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Select<'a> {
    /// The full or partial AID; empty selects the ISD (GPC 2.3 §11.9.2.3).
    pub name: &'a [u8],
    /// First or next occurrence.
    pub occurrence: Occurrence,
    /// What the response carries (P2 b4-b3).
    pub response: SelectResponse,
}

impl Select<'_> {
    /// The host command: `00 A4 04 P2 Lc name 00`.
    ///
    /// # Errors
    /// [`CommandError::FieldLength`] for a name over 16 bytes.
    pub fn to_command(&self) -> Result<Command, CommandError> {
        if self.name.len() > AID_MAX_LEN {
            return Err(CommandError::FieldLength {
                field: "SELECT name",
                len: self.name.len(),
                min: 0,
                max: AID_MAX_LEN,
            });
        }
        let p2 = match self.occurrence {
            Occurrence::First => P2_FIRST,
            Occurrence::Next => P2_NEXT,
        } | self.response.p2_bits();
        let command =
            Command::new(CLA_ISO, ins::SELECT, P1_BY_NAME, p2).with_data(self.name.to_vec());
        Ok(match self.response {
            SelectResponse::NoData => command,
            SelectResponse::Fci | SelectResponse::Fcp => command.with_le(LE_MAX_SHORT),
        })
    }
}

/// `00 A4 04 00 Lc AID 00`: select an application or security domain by its full AID.
#[must_use]
pub fn select(aid: &Aid) -> Command {
    Command::new(CLA_ISO, ins::SELECT, P1_BY_NAME, P2_FIRST)
        .with_data(aid.as_bytes().to_vec())
        .with_le(LE_MAX_SHORT)
}

/// SELECT by partial AID (first or next occurrence, GPC 2.3 §11.9.2.3).
///
/// # Errors
/// [`CommandError::FieldLength`] for a prefix over 16 bytes.
pub fn select_partial(prefix: &[u8], occurrence: Occurrence) -> Result<Command, CommandError> {
    Select {
        name: prefix,
        occurrence,
        response: SelectResponse::Fci,
    }
    .to_command()
}

/// `00 A4 04 00 00`: SELECT without data, which selects the ISD (GPC 2.3 §11.9.2.3).
#[must_use]
pub fn select_isd() -> Command {
    Command::new(CLA_ISO, ins::SELECT, P1_BY_NAME, P2_FIRST).with_le(LE_MAX_SHORT)
}

/// Card side: parse a SELECT by name.
///
/// # Errors
/// [`CommandError::Instruction`], [`CommandError::P1P2`] (only P1 `04` with P2 `00`/`02`
/// is a GlobalPlatform SELECT; the ISO/IEC 7816-4 response options `04` FCP and `0C` no data
/// may be added to either, FMD `08` may not), [`CommandError::DataLength`] for a name over 16
/// bytes.
pub fn parse_select<'a>(command: &CommandView<'a>) -> Result<Select<'a>, CommandError> {
    expect_ins(command, ins::SELECT)?;
    let (p1, p2) = (command.p1(), command.p2());
    let bad = CommandError::P1P2 {
        command: "SELECT",
        p1,
        p2,
    };
    if p1 != P1_BY_NAME {
        return Err(bad);
    }
    let response = match p2 & P2_RESPONSE_MASK {
        0x00 => SelectResponse::Fci,
        P2_FCP => SelectResponse::Fcp,
        P2_NO_RESPONSE_DATA => SelectResponse::NoData,
        _ => return Err(bad),
    };
    let occurrence = match p2 & !P2_RESPONSE_MASK {
        P2_FIRST => Occurrence::First,
        P2_NEXT => Occurrence::Next,
        _ => return Err(bad),
    };
    if command.data().len() > AID_MAX_LEN {
        return Err(CommandError::DataLength {
            command: "SELECT",
            len: command.data().len(),
        });
    }
    Ok(Select {
        name: command.data(),
        occurrence,
        response,
    })
}

/// The File Control Information a security domain returns on SELECT (GPC 2.3 §11.9.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fci {
    /// `84`: the selected AID.
    pub aid: Aid,
    /// `73` inside `A5`: security domain management data (raw value).
    pub management_data: Option<Vec<u8>>,
    /// `9F6E` inside `A5`: application production life cycle data.
    pub production_life_cycle: Option<Vec<u8>>,
    /// `9F65` inside `A5`: maximum length of the data field in a command message.
    pub max_command_data: Option<u32>,
}

impl Fci {
    /// An FCI with only the AID.
    #[must_use]
    pub const fn new(aid: Aid) -> Self {
        Fci {
            aid,
            management_data: None,
            production_life_cycle: None,
            max_command_data: None,
        }
    }

    /// The security domain management data decoded (GPC 2.3 §H.3: the structure of card
    /// recognition data, without the outer `66`).
    ///
    /// # Errors
    /// As [`parse_card_recognition_data`]; [`CommandError::MissingTag`] when absent.
    pub fn management(&self) -> Result<CardRecognitionData, CommandError> {
        let data = self
            .management_data
            .as_deref()
            .ok_or(CommandError::MissingTag(TAG_SD_MANAGEMENT_DATA))?;
        let mut wrapped = Vec::with_capacity(data.len() + 4);
        tlv::write_tlv(&mut wrapped, TAG_SD_MANAGEMENT_DATA, data);
        parse_card_recognition_data(&wrapped)
    }

    /// Card side: the encoded `6F` template.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut b = TlvBuilder::new();
        b.constructed(TAG_FCI, |fci| {
            fci.primitive(TAG_AID, self.aid.as_bytes());
            fci.constructed(TAG_PROPRIETARY, |a5| {
                if let Some(m) = &self.management_data {
                    a5.primitive(TAG_SD_MANAGEMENT_DATA, m);
                }
                if let Some(p) = &self.production_life_cycle {
                    a5.primitive(TAG_PRODUCTION_LIFE_CYCLE, p);
                }
                if let Some(max) = self.max_command_data {
                    a5.primitive(TAG_MAX_COMMAND_DATA, &be_uint_bytes(max));
                }
            });
        });
        b.into_vec()
    }
}

/// Host side: parse the FCI returned by SELECT (`6F { 84, A5 { 73, 9F6E, 9F65 } }`).
/// Unknown objects inside `6F` and `A5` are skipped, as ISO/IEC 7816-4 §5.3.3 lets a card
/// add its own.
///
/// # Errors
/// [`CommandError::Tlv`], [`CommandError::UnexpectedTag`] when the outer tag is not `6F`,
/// [`CommandError::MissingTag`] without `84`, [`CommandError::AidLength`],
/// [`CommandError::DuplicateTag`], [`CommandError::FieldLength`] for a bad `9F65`.
pub fn parse_fci(data: &[u8]) -> Result<Fci, CommandError> {
    let fci = tlv::parse_single(data)?;
    if fci.tag() != TAG_FCI {
        return Err(CommandError::UnexpectedTag {
            context: "FCI",
            found: fci.tag(),
        });
    }
    let mut aid = None;
    let mut out_m = None;
    let mut out_p = None;
    let mut out_max = None;
    let mut seen_a5 = false;
    for child in fci.children() {
        let child = child?;
        match child.tag() {
            TAG_AID => set_once(&mut aid, Aid::new(child.value())?, TAG_AID)?,
            TAG_PROPRIETARY => {
                if seen_a5 {
                    return Err(CommandError::DuplicateTag(TAG_PROPRIETARY));
                }
                seen_a5 = true;
                for item in child.children() {
                    let item = item?;
                    match item.tag() {
                        TAG_SD_MANAGEMENT_DATA => {
                            set_once(&mut out_m, item.value().to_vec(), item.tag())?;
                        }
                        TAG_PRODUCTION_LIFE_CYCLE => {
                            set_once(&mut out_p, item.value().to_vec(), item.tag())?;
                        }
                        TAG_MAX_COMMAND_DATA => set_once(
                            &mut out_max,
                            be_uint(item.value(), "maximum command data length")?,
                            item.tag(),
                        )?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Fci {
        aid: aid.ok_or(CommandError::MissingTag(TAG_AID))?,
        management_data: out_m,
        production_life_cycle: out_p,
        max_command_data: out_max,
    })
}

pub(crate) fn set_once<T>(slot: &mut Option<T>, value: T, tag: Tag) -> Result<(), CommandError> {
    if slot.is_some() {
        return Err(CommandError::DuplicateTag(tag));
    }
    *slot = Some(value);
    Ok(())
}
