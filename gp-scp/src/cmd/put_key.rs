//! PUT KEY (GPC 2.3 §11.8): the APDU framing — key version numbers, key identifier, the
//! list of key data blocks and the response with the key check values.
//!
//! The key data blocks carry keys already encrypted under the DEK; producing and opening
//! them (encryption, KCV computation and check) is [`crate::put_key`]'s job: feed
//! [`PutKey::data`] (host) or the command's data field (card) to it. This module moves the
//! blocks as opaque bytes.

use alloc::vec::Vec;
use core::fmt;

use apdu_codec::{Command, CommandView, ins};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::reader::{Reader, expect_ins, put_ber_lv, put_lv};
use super::{CLA_GP, CommandError, LE_MAX_SHORT};

/// P1 b8: more PUT KEY commands follow (GPC 2.3 §11.8.2.1).
pub const P1_MORE: u8 = 0x80;
/// P2 b8: the command carries several keys (GPC 2.3 §11.8.2.2).
pub const P2_MULTIPLE_KEYS: u8 = 0x80;
/// Key type `FF`: the extended key data format (GPC 2.3 §11.8.2.3.2), not handled here.
pub const KEY_TYPE_EXTENDED: u8 = 0xFF;

/// One key data block (GPC 2.3 §11.8.2.3.1, basic format): type, encrypted key data, KCV.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct KeyBlock {
    /// Key type (GPC 2.3 §11.1.8: `80` DES, `88` AES, `B0` EC public key, ...).
    pub key_type: u8,
    /// The key data as sent: encrypted under the DEK (for AES, led by the key length).
    pub data: Vec<u8>,
    /// Key check value (usually 3 bytes; empty when not sent).
    pub kcv: Vec<u8>,
}

impl fmt::Debug for KeyBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KeyBlock {{ key_type: {:02X}, data: {} bytes (redacted), kcv: ",
            self.key_type,
            self.data.len()
        )?;
        for b in &self.kcv {
            write!(f, "{b:02X}")?;
        }
        f.write_str(" }")
    }
}

/// A PUT KEY command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutKey {
    /// P1 b7-b1: the key version to replace, `00` to add a new key set.
    pub old_version: u8,
    /// P1 b8: more PUT KEY commands follow.
    pub more: bool,
    /// P2 b7-b1: identifier of the first key (the others follow in order).
    pub first_key_id: u8,
    /// First data byte: the new key version number (`01`-`7F`).
    pub new_version: u8,
    /// The key data blocks (P2 b8 is set when there are several).
    pub keys: Vec<KeyBlock>,
}

fn check_version(v: u8, field: &'static str) -> Result<(), CommandError> {
    if (0x01..=0x7F).contains(&v) {
        Ok(())
    } else {
        Err(CommandError::Value {
            field,
            value: u32::from(v),
        })
    }
}

impl PutKey {
    /// Frame an already encoded data field (for example from
    /// [`crate::put_key::encode_put_key_data`]): the first byte is the new key version, the
    /// rest the key data blocks.
    ///
    /// # Errors
    /// As [`parse_put_key_data_field`].
    pub fn from_data(old_version: u8, first_key_id: u8, data: &[u8]) -> Result<Self, CommandError> {
        let (new_version, keys) = parse_put_key_data_field(data)?;
        Ok(PutKey {
            old_version,
            more: false,
            first_key_id,
            new_version,
            keys,
        })
    }

    /// The data field: new key version, then `type len data kcv-len kcv` per key.
    ///
    /// # Errors
    /// [`CommandError::Value`] for a new version outside `01`-`7F` or the extended key
    /// type `FF`; [`CommandError::FieldLength`] without keys; [`CommandError::TooLong`].
    pub fn data(&self) -> Result<Vec<u8>, CommandError> {
        check_version(self.new_version, "new key version")?;
        if self.keys.is_empty() {
            return Err(CommandError::FieldLength {
                field: "key data blocks",
                len: 0,
                min: 1,
                max: 0x7F,
            });
        }
        let mut data = alloc::vec![self.new_version];
        for key in &self.keys {
            if key.key_type == KEY_TYPE_EXTENDED {
                return Err(CommandError::Value {
                    field: "key type",
                    value: u32::from(key.key_type),
                });
            }
            data.push(key.key_type);
            put_ber_lv(&mut data, &key.data, "key data")?;
            put_lv(&mut data, &key.kcv, "key check value")?;
        }
        Ok(data)
    }

    /// Host: `80 D8 P1 P2 Lc kvn (type len data kcv-len kcv)* 00`.
    ///
    /// # Errors
    /// [`CommandError::Value`] for an old version over `7F`, a new version outside
    /// `01`-`7F`, a key identifier over `7F` or the extended key type `FF`;
    /// [`CommandError::FieldLength`] without keys; [`CommandError::TooLong`] for oversized
    /// fields.
    pub fn to_command(&self) -> Result<Command, CommandError> {
        if self.old_version > 0x7F {
            return Err(CommandError::Value {
                field: "old key version",
                value: u32::from(self.old_version),
            });
        }
        if self.first_key_id > 0x7F {
            return Err(CommandError::Value {
                field: "key identifier",
                value: u32::from(self.first_key_id),
            });
        }
        let data = self.data()?;
        let p1 = self.old_version | if self.more { P1_MORE } else { 0 };
        let p2 = self.first_key_id
            | if self.keys.len() > 1 {
                P2_MULTIPLE_KEYS
            } else {
                0
            };
        Ok(Command::new(CLA_GP, ins::PUT_KEY, p1, p2)
            .with_data(data)
            .with_le(LE_MAX_SHORT))
    }
}

/// Card side: parse the framing of PUT KEY.
///
/// # Errors
/// [`CommandError::Instruction`]; [`CommandError::P1P2`] when P2 b8 does not agree with
/// the number of key blocks; [`CommandError::DataLength`] without data;
/// [`CommandError::Value`] for a new version outside `01`-`7F`, an unknown length coding
/// or the extended format; [`CommandError::Truncated`] for a short block.
pub fn parse_put_key(command: &CommandView<'_>) -> Result<PutKey, CommandError> {
    expect_ins(command, ins::PUT_KEY)?;
    let (p1, p2) = (command.p1(), command.p2());
    if command.data().is_empty() {
        return Err(CommandError::DataLength {
            command: "PUT KEY",
            len: 0,
        });
    }
    let (new_version, keys) = parse_put_key_data_field(command.data())?;
    if (p2 & P2_MULTIPLE_KEYS != 0) != (keys.len() > 1) {
        return Err(CommandError::P1P2 {
            command: "PUT KEY",
            p1,
            p2,
        });
    }
    Ok(PutKey {
        old_version: p1 & !P1_MORE,
        more: p1 & P1_MORE != 0,
        first_key_id: p2 & !P2_MULTIPLE_KEYS,
        new_version,
        keys,
    })
}

/// Split a PUT KEY data field into the new key version and the key data blocks (basic
/// format, GPC 2.3 §11.8.2.3.1; lengths BER-coded on 1 to 3 bytes).
///
/// # Errors
/// [`CommandError::Truncated`] for an empty field, no key or a short block;
/// [`CommandError::Value`] for a new version outside `01`-`7F`, an unknown length coding
/// or the extended format (key type `FF`).
pub fn parse_put_key_data_field(data: &[u8]) -> Result<(u8, Vec<KeyBlock>), CommandError> {
    let mut r = Reader::new(data);
    let new_version = r.byte("new key version")?;
    check_version(new_version, "new key version")?;
    let mut keys = Vec::new();
    while !r.is_empty() {
        let key_type = r.byte("key type")?;
        if key_type == KEY_TYPE_EXTENDED {
            return Err(CommandError::Value {
                field: "key type",
                value: u32::from(key_type),
            });
        }
        let data = r.ber_lv("key data")?.to_vec();
        let kcv = r.lv("key check value")?.to_vec();
        keys.push(KeyBlock {
            key_type,
            data,
            kcv,
        });
    }
    if keys.is_empty() {
        return Err(CommandError::Truncated {
            field: "key type",
            needed: 1,
            available: 0,
        });
    }
    Ok((new_version, keys))
}

/// The PUT KEY response (GPC 2.3 §11.8.3.1): the new key version and one 3-byte key check
/// value per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutKeyResponse {
    /// Key version number.
    pub version: u8,
    /// Key check values in key order.
    pub kcvs: Vec<[u8; 3]>,
}

impl PutKeyResponse {
    /// Card side: the response data.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = alloc::vec![self.version];
        for kcv in &self.kcvs {
            out.extend_from_slice(kcv);
        }
        out
    }
}

/// Host side: parse the PUT KEY response data.
///
/// # Errors
/// [`CommandError::Truncated`] when empty, [`CommandError::FieldLength`] when the key
/// check values are not a multiple of 3 bytes.
pub fn parse_put_key_response(data: &[u8]) -> Result<PutKeyResponse, CommandError> {
    let Some((version, rest)) = data.split_first() else {
        return Err(CommandError::Truncated {
            field: "key version",
            needed: 1,
            available: 0,
        });
    };
    let chunks = rest.chunks_exact(3);
    if !chunks.remainder().is_empty() {
        return Err(CommandError::FieldLength {
            field: "key check values",
            len: rest.len(),
            min: 0,
            max: rest.len() - chunks.remainder().len(),
        });
    }
    Ok(PutKeyResponse {
        version: *version,
        kcvs: chunks.filter_map(|c| <[u8; 3]>::try_from(c).ok()).collect(),
    })
}
