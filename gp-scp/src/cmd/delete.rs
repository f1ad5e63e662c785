//! DELETE (GPC 2.3 §11.2): an application, load file or security domain, optionally with
//! its related objects, or a key.

use alloc::vec::Vec;

use apdu_codec::tlv::{self, Tag};
use apdu_codec::{Command, CommandView, ins};

use super::reader::expect_ins;
use super::select::set_once;
use super::{Aid, CLA_GP, CommandError};

/// P1 b8: more DELETE commands follow (GPC 2.3 §11.2.2.1); `00`: last (or only) command.
pub const P1_MORE: u8 = 0x80;
/// P2 `00`: delete the object (GPC 2.3 §11.2.2.2).
pub const P2_OBJECT: u8 = 0x00;
/// P2 `80`: delete the object and its related objects (GPC 2.3 §11.2.2.2).
pub const P2_OBJECT_AND_RELATED: u8 = 0x80;

/// `4F` AID of the executable load file or application (GPC 2.3 §11.2.2.3.1).
pub const TAG_AID: Tag = Tag::new(0x4F);
/// `B6` control reference template for digital signature (token, §11.2.2.3.1).
pub const TAG_SIGNATURE_CRT: Tag = Tag::new(0xB6);
/// `9E` delete token (§11.2.2.3.1).
pub const TAG_TOKEN: Tag = Tag::new(0x9E);
/// `D0` key identifier (§11.2.2.3.2).
pub const TAG_KEY_ID: Tag = Tag::new(0xD0);
/// `D2` key version number (§11.2.2.3.2).
pub const TAG_KEY_VERSION: Tag = Tag::new(0xD2);

/// What to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An executable load file, application or security domain.
    Object {
        /// Its AID.
        aid: Aid,
        /// P2 `80`: also delete the related objects (the load file's applications).
        related: bool,
        /// `B6` control reference template (delegated management).
        signature_crt: Option<Vec<u8>>,
        /// `9E` delete token (delegated management).
        token: Option<Vec<u8>>,
    },
    /// A key, by identifier, version or both (at least one).
    Key {
        /// `D0` key identifier.
        id: Option<u8>,
        /// `D2` key version number.
        version: Option<u8>,
    },
}

/// A DELETE command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// What to delete.
    pub target: Target,
    /// P1 b8: more DELETE commands follow.
    pub more: bool,
}

impl Delete {
    /// Delete an object (P2 `00`).
    #[must_use]
    pub const fn object(aid: Aid) -> Self {
        Delete {
            target: Target::Object {
                aid,
                related: false,
                signature_crt: None,
                token: None,
            },
            more: false,
        }
    }

    /// Delete a key by identifier and/or version.
    #[must_use]
    pub const fn key(id: Option<u8>, version: Option<u8>) -> Self {
        Delete {
            target: Target::Key { id, version },
            more: false,
        }
    }

    /// For an object: also delete its related objects (P2 `80`). No effect for keys.
    #[must_use]
    pub fn with_related(mut self, related: bool) -> Self {
        if let Target::Object { related: r, .. } = &mut self.target {
            *r = related;
        }
        self
    }

    /// For an object: attach a delete token (`9E`) and its `B6` template.
    #[must_use]
    pub fn with_token(mut self, crt: Option<Vec<u8>>, token: Vec<u8>) -> Self {
        if let Target::Object {
            signature_crt,
            token: t,
            ..
        } = &mut self.target
        {
            *signature_crt = crt;
            *t = Some(token);
        }
        self
    }

    /// Host: `80 E4 P1 P2 Lc data` (no Le, as kaoh/globalplatform, the GPShell library, sends it).
    ///
    /// # Errors
    /// [`CommandError::MissingTag`] for a key delete with neither identifier nor version.
    pub fn to_command(&self) -> Result<Command, CommandError> {
        let mut data = Vec::new();
        let p2 = match &self.target {
            Target::Object {
                aid,
                related,
                signature_crt,
                token,
            } => {
                tlv::write_tlv(&mut data, TAG_AID, aid.as_bytes());
                if let Some(crt) = signature_crt {
                    tlv::write_tlv(&mut data, TAG_SIGNATURE_CRT, crt);
                }
                if let Some(t) = token {
                    tlv::write_tlv(&mut data, TAG_TOKEN, t);
                }
                if *related {
                    P2_OBJECT_AND_RELATED
                } else {
                    P2_OBJECT
                }
            }
            Target::Key { id, version } => {
                if id.is_none() && version.is_none() {
                    return Err(CommandError::MissingTag(TAG_KEY_ID));
                }
                if let Some(id) = id {
                    tlv::write_tlv(&mut data, TAG_KEY_ID, &[*id]);
                }
                if let Some(v) = version {
                    tlv::write_tlv(&mut data, TAG_KEY_VERSION, &[*v]);
                }
                P2_OBJECT
            }
        };
        let p1 = if self.more { P1_MORE } else { 0x00 };
        Ok(Command::new(CLA_GP, ins::DELETE, p1, p2).with_data(data))
    }
}

fn one_byte(v: &[u8], field: &'static str) -> Result<u8, CommandError> {
    match *v {
        [b] => Ok(b),
        _ => Err(CommandError::FieldLength {
            field,
            len: v.len(),
            min: 1,
            max: 1,
        }),
    }
}

/// Card side: parse DELETE.
///
/// # Errors
/// [`CommandError::Instruction`], [`CommandError::P1P2`] (P1 other than `00`/`80`, P2 other
/// than `00`/`80`, or P2 `80` for a key), [`CommandError::DataLength`] without data,
/// [`CommandError::Tlv`], [`CommandError::UnexpectedTag`] (unknown tags, or object and key
/// tags mixed), [`CommandError::DuplicateTag`], [`CommandError::AidLength`],
/// [`CommandError::FieldLength`] for a key identifier or version that is not one byte.
pub fn parse_delete(command: &CommandView<'_>) -> Result<Delete, CommandError> {
    expect_ins(command, ins::DELETE)?;
    let (p1, p2) = (command.p1(), command.p2());
    let bad = CommandError::P1P2 {
        command: "DELETE",
        p1,
        p2,
    };
    if p1 & !P1_MORE != 0 || (p2 != P2_OBJECT && p2 != P2_OBJECT_AND_RELATED) {
        return Err(bad);
    }
    if command.data().is_empty() {
        return Err(CommandError::DataLength {
            command: "DELETE",
            len: 0,
        });
    }
    let mut aid = None;
    let mut crt = None;
    let mut token = None;
    let mut id = None;
    let mut version = None;
    for item in tlv::TlvIter::new(command.data()) {
        let item = item?;
        let tag = item.tag();
        let v = item.value();
        match tag {
            TAG_AID => set_once(&mut aid, Aid::new(v)?, tag)?,
            TAG_SIGNATURE_CRT => set_once(&mut crt, v.to_vec(), tag)?,
            TAG_TOKEN => set_once(&mut token, v.to_vec(), tag)?,
            TAG_KEY_ID => set_once(&mut id, one_byte(v, "key identifier")?, tag)?,
            TAG_KEY_VERSION => set_once(&mut version, one_byte(v, "key version number")?, tag)?,
            other => {
                return Err(CommandError::UnexpectedTag {
                    context: "DELETE",
                    found: other,
                });
            }
        }
    }
    let more = p1 & P1_MORE != 0;
    match aid {
        Some(aid) => {
            if id.is_some() || version.is_some() {
                return Err(CommandError::UnexpectedTag {
                    context: "DELETE object",
                    found: if id.is_some() {
                        TAG_KEY_ID
                    } else {
                        TAG_KEY_VERSION
                    },
                });
            }
            Ok(Delete {
                target: Target::Object {
                    aid,
                    related: p2 == P2_OBJECT_AND_RELATED,
                    signature_crt: crt,
                    token,
                },
                more,
            })
        }
        None => {
            if id.is_none() && version.is_none() {
                return Err(CommandError::MissingTag(TAG_AID));
            }
            if crt.is_some() || token.is_some() {
                return Err(CommandError::UnexpectedTag {
                    context: "DELETE key",
                    found: if crt.is_some() {
                        TAG_SIGNATURE_CRT
                    } else {
                        TAG_TOKEN
                    },
                });
            }
            if p2 != P2_OBJECT {
                return Err(bad);
            }
            Ok(Delete {
                target: Target::Key { id, version },
                more,
            })
        }
    }
}
