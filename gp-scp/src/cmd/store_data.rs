//! STORE DATA (GPC 2.3 §11.11): block splitting with the P1 format and encryption bits on
//! the host, block parsing and reassembly with block-number checks on the card, and DGI
//! parsing (GPC 2.3 §11.11.2.3, EMV CPS 1.1 §A).

use alloc::vec::Vec;

use apdu_codec::{Command, CommandView, ins};

use super::blocks::Blocks;
use super::load::split_blocks;
use super::reader::{Reader, expect_ins};
use super::{CLA_GP, CommandError, LE_MAX_SHORT};

/// P1 b8: last block (GPC 2.3 §11.11.2.1, Table 11-89).
pub const P1_LAST_BLOCK: u8 = 0x80;
/// P1 b7-b6 mask: encryption information.
pub const P1_ENCRYPTION_MASK: u8 = 0x60;
/// P1 b5-b4 mask: data structure information.
pub const P1_STRUCTURE_MASK: u8 = 0x18;
/// P1 b1: a response may be returned (GPC 2.3).
pub const P1_RESPONSE: u8 = 0x01;
/// P1 b3-b2: reserved for future use.
pub const P1_RFU_MASK: u8 = 0x06;

/// P1 b7-b6 (GPC 2.3 Table 11-89).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encryption {
    /// `00`: no general encryption information or not encrypted.
    #[default]
    None,
    /// `01` (`20`): application dependent encryption.
    ApplicationDependent,
    /// `11` (`60`): encrypted data (under the DEK session key).
    Encrypted,
}

impl Encryption {
    const fn bits(self) -> u8 {
        match self {
            Encryption::None => 0x00,
            Encryption::ApplicationDependent => 0x20,
            Encryption::Encrypted => 0x60,
        }
    }
}

/// P1 b5-b4 (GPC 2.3 Table 11-89).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Structure {
    /// `00`: no general data structure information.
    #[default]
    None,
    /// `01` (`08`): DGI format.
    Dgi,
    /// `10` (`10`): BER-TLV format.
    BerTlv,
}

impl Structure {
    const fn bits(self) -> u8 {
        match self {
            Structure::None => 0x00,
            Structure::Dgi => 0x08,
            Structure::BerTlv => 0x10,
        }
    }
}

/// The P1 flags that every block of one STORE DATA sequence shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StoreDataOptions {
    /// Data structure.
    pub structure: Structure,
    /// Encryption.
    pub encryption: Encryption,
    /// b1: a response may be returned.
    pub response: bool,
}

impl StoreDataOptions {
    /// P1 without the last-block bit.
    #[must_use]
    pub const fn p1(self) -> u8 {
        self.structure.bits() | self.encryption.bits() | if self.response { P1_RESPONSE } else { 0 }
    }

    /// Decode P1 (ignoring b8).
    ///
    /// # Errors
    /// [`CommandError::P1P2`] for the reserved codings (encryption `10`, structure `11`,
    /// b3-b2 set).
    pub const fn from_p1(p1: u8, p2: u8) -> Result<Self, CommandError> {
        let bad = CommandError::P1P2 {
            command: "STORE DATA",
            p1,
            p2,
        };
        let encryption = match p1 & P1_ENCRYPTION_MASK {
            0x00 => Encryption::None,
            0x20 => Encryption::ApplicationDependent,
            0x60 => Encryption::Encrypted,
            _ => return Err(bad),
        };
        let structure = match p1 & P1_STRUCTURE_MASK {
            0x00 => Structure::None,
            0x08 => Structure::Dgi,
            0x10 => Structure::BerTlv,
            _ => return Err(bad),
        };
        if p1 & P1_RFU_MASK != 0 {
            return Err(bad);
        }
        Ok(StoreDataOptions {
            structure,
            encryption,
            response: p1 & P1_RESPONSE != 0,
        })
    }
}

/// Host: the STORE DATA commands carrying `data`, at most `block_size` bytes each; P1 has
/// the options and b8 on the last block, P2 numbers the blocks from `00`.
///
/// ```
/// use gp_scp::cmd::store_data::{store_data, StoreDataOptions, Structure};
/// let options = StoreDataOptions { structure: Structure::Dgi, ..Default::default() };
/// let commands = store_data(&[0x01, 0x01, 0x02, 0xAA, 0xBB], options, 255)?;
/// assert_eq!(commands[0].to_vec().unwrap(),
///            [0x80, 0xE2, 0x88, 0x00, 0x05, 0x01, 0x01, 0x02, 0xAA, 0xBB, 0x00]);
/// # Ok::<(), gp_scp::cmd::CommandError>(())
/// ```
///
/// # Errors
/// [`CommandError::FieldLength`] for a block size outside 1..=65535,
/// [`CommandError::TooManyBlocks`] beyond 256 blocks.
pub fn store_data(
    data: &[u8],
    options: StoreDataOptions,
    block_size: usize,
) -> Result<Vec<Command>, CommandError> {
    split_blocks(data, block_size, |last, number, chunk| {
        let p1 = options.p1() | if last { P1_LAST_BLOCK } else { 0 };
        Command::new(CLA_GP, ins::STORE_DATA, p1, number)
            .with_data(chunk.to_vec())
            .with_le(LE_MAX_SHORT)
    })
}

/// Host: STORE DATA commands that keep whole objects (DGIs or TLVs) in one block where they
/// fit, packing consecutive objects together up to `block_size` bytes (EMV CPS 1.1 §4.3
/// practice); an object larger than a block is split across blocks.
///
/// # Errors
/// As [`store_data`].
pub fn store_data_objects(
    objects: &[&[u8]],
    options: StoreDataOptions,
    block_size: usize,
) -> Result<Vec<Command>, CommandError> {
    if block_size == 0 || block_size > apdu_codec::MAX_EXTENDED_DATA {
        return Err(CommandError::FieldLength {
            field: "block size",
            len: block_size,
            min: 1,
            max: apdu_codec::MAX_EXTENDED_DATA,
        });
    }
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for object in objects {
        if !current.is_empty() && current.len() + object.len() > block_size {
            blocks.push(core::mem::take(&mut current));
        }
        if object.len() > block_size {
            for chunk in object.chunks(block_size) {
                if chunk.len() == block_size {
                    blocks.push(chunk.to_vec());
                } else {
                    current.extend_from_slice(chunk);
                }
            }
        } else {
            current.extend_from_slice(object);
        }
    }
    if !current.is_empty() || blocks.is_empty() {
        blocks.push(current);
    }
    if blocks.len() > 256 {
        return Err(CommandError::TooManyBlocks(
            blocks.iter().map(Vec::len).sum(),
        ));
    }
    let count = blocks.len();
    let mut out = Vec::with_capacity(count);
    for (index, block) in blocks.into_iter().enumerate() {
        let number = u8::try_from(index).map_err(|_| CommandError::TooManyBlocks(index))?;
        let p1 = options.p1() | if index + 1 == count { P1_LAST_BLOCK } else { 0 };
        out.push(
            Command::new(CLA_GP, ins::STORE_DATA, p1, number)
                .with_data(block)
                .with_le(LE_MAX_SHORT),
        );
    }
    Ok(out)
}

/// One STORE DATA block as the card sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreDataBlock<'a> {
    /// P1 b8.
    pub last: bool,
    /// P1 options.
    pub options: StoreDataOptions,
    /// P2: block number.
    pub number: u8,
    /// The block's bytes.
    pub data: &'a [u8],
}

/// Card side: parse one STORE DATA command.
///
/// # Errors
/// [`CommandError::Instruction`], [`CommandError::P1P2`] for reserved P1 codings,
/// [`CommandError::DataLength`] without data.
pub fn parse_store_data<'a>(command: &CommandView<'a>) -> Result<StoreDataBlock<'a>, CommandError> {
    expect_ins(command, ins::STORE_DATA)?;
    let (p1, p2) = (command.p1(), command.p2());
    let options = StoreDataOptions::from_p1(p1, p2)?;
    if command.data().is_empty() {
        return Err(CommandError::DataLength {
            command: "STORE DATA",
            len: 0,
        });
    }
    Ok(StoreDataBlock {
        last: p1 & P1_LAST_BLOCK != 0,
        options,
        number: p2,
        data: command.data(),
    })
}

/// Card side: collects the blocks of one STORE DATA sequence in order (block numbers from
/// `00`, the same P1 options on every block) and returns the data after the last block.
/// A rejected block changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDataReassembler {
    blocks: Blocks,
    options: Option<StoreDataOptions>,
}

/// Reassembled STORE DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDataSequence {
    /// The sequence's P1 options.
    pub options: StoreDataOptions,
    /// All blocks' data, concatenated.
    pub data: Vec<u8>,
}

impl StoreDataReassembler {
    /// A reassembler accepting at most `max_len` bytes.
    #[must_use]
    pub const fn new(max_len: usize) -> Self {
        StoreDataReassembler {
            blocks: Blocks::new(max_len),
            options: None,
        }
    }

    /// Take one STORE DATA command; returns the sequence after the last block.
    ///
    /// # Errors
    /// The errors of [`parse_store_data`], [`CommandError::Sequence`] after the last block
    /// or for P1 options that differ from the first block's, [`CommandError::BlockNumber`]
    /// out of order, [`CommandError::TooLong`] past the limit, and
    /// [`CommandError::TooManyBlocks`] after block `FF`.
    pub fn push(
        &mut self,
        command: &CommandView<'_>,
    ) -> Result<Option<StoreDataSequence>, CommandError> {
        let block = parse_store_data(command)?;
        if self.options.is_some_and(|o| o != block.options) {
            return Err(CommandError::Sequence("STORE DATA"));
        }
        self.blocks.push(
            "STORE DATA",
            "STORE DATA",
            block.number,
            block.data,
            block.last,
        )?;
        self.options = Some(block.options);
        if !block.last {
            return Ok(None);
        }
        Ok(Some(StoreDataSequence {
            options: block.options,
            data: self.blocks.take(),
        }))
    }
}

/// One data group (DGI): a 2-byte identifier and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dgi<'a> {
    /// Data group identifier.
    pub id: u16,
    /// Value.
    pub value: &'a [u8],
}

/// Parse concatenated DGIs: 2-byte identifier, length on one byte (`00`-`FE`) or `FF` and
/// two bytes (GPC 2.3 §11.11.2.3, EMV CPS 1.1 §A.1).
///
/// # Errors
/// [`CommandError::Truncated`] for a short identifier, length or value.
pub fn parse_dgis(data: &[u8]) -> Result<Vec<Dgi<'_>>, CommandError> {
    let mut r = Reader::new(data);
    let mut out = Vec::new();
    while !r.is_empty() {
        let id = r.u16("DGI")?;
        let len = match r.byte("DGI length")? {
            0xFF => usize::from(r.u16("DGI length")?),
            short => usize::from(short),
        };
        out.push(Dgi {
            id,
            value: r.take(len, "DGI value")?,
        });
    }
    Ok(out)
}

/// Append one DGI (length on one byte below 255, else `FF` and two bytes).
///
/// # Errors
/// [`CommandError::TooLong`] for a value over 65535 bytes.
pub fn write_dgi(out: &mut Vec<u8>, id: u16, value: &[u8]) -> Result<(), CommandError> {
    let len = u16::try_from(value.len()).map_err(|_| CommandError::TooLong {
        field: "DGI value",
        len: value.len(),
        max: 0xFFFF,
    })?;
    out.extend_from_slice(&id.to_be_bytes());
    match u8::try_from(len) {
        Ok(short) if short < 0xFF => out.push(short),
        _ => {
            out.push(0xFF);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(value);
    Ok(())
}
