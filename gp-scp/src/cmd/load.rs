//! LOAD (GPC 2.3 §11.6): splitting a load file into numbered blocks on the host, and
//! reassembling them with block-number checks on the card.

use alloc::vec::Vec;

use apdu_codec::tlv::{self, Tag};
use apdu_codec::{Command, CommandView, ins};

use super::blocks::Blocks;
use super::reader::expect_ins;
use super::{Aid, CLA_GP, CommandError, LE_MAX_SHORT, MAX_SHORT_DATA};

/// P1 `80`: last block (GPC 2.3 §11.6.2.1); `00`: more blocks follow.
pub const P1_LAST_BLOCK: u8 = 0x80;
/// `C4` load file data block (GPC 2.3 §11.6.2.3).
pub const TAG_LOAD_FILE_DATA_BLOCK: Tag = Tag::new(0xC4);
/// `D4` ciphered load file data block (GPC 2.3 §11.6.2.3, Amendment A).
pub const TAG_CIPHERED_LOAD_FILE_DATA_BLOCK: Tag = Tag::new(0xD4);
/// `E2` DAP block (GPC 2.3 §11.6.2.3).
pub const TAG_DAP_BLOCK: Tag = Tag::new(0xE2);
/// `4F` security domain AID inside a DAP block.
pub const TAG_SD_AID: Tag = Tag::new(0x4F);
/// `C3` load file data block signature inside a DAP block.
pub const TAG_SIGNATURE: Tag = Tag::new(0xC3);

/// A DAP block: the security domain that verifies it and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DapBlock {
    /// Security domain AID (`4F`).
    pub security_domain: Aid,
    /// Load file data block signature (`C3`).
    pub signature: Vec<u8>,
}

/// The whole load file as the LOAD commands carry it (GPC 2.3 §11.6.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadFile {
    /// DAP blocks (`E2`), before the data block.
    pub dap_blocks: Vec<DapBlock>,
    /// `true` for a ciphered load file data block (`D4`) instead of `C4`.
    pub ciphered: bool,
    /// The load file data block (for Java Card: the CAP file components).
    pub data: Vec<u8>,
}

impl LoadFile {
    /// A plain load file without DAP blocks.
    #[must_use]
    pub fn new(data: &[u8]) -> Self {
        LoadFile {
            dap_blocks: Vec::new(),
            ciphered: false,
            data: data.to_vec(),
        }
    }

    /// The bytes that the LOAD commands carry: `E2 {4F, C3}*` then `C4 len data`.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 8);
        for dap in &self.dap_blocks {
            let mut inner = Vec::new();
            tlv::write_tlv(&mut inner, TAG_SD_AID, dap.security_domain.as_bytes());
            tlv::write_tlv(&mut inner, TAG_SIGNATURE, &dap.signature);
            tlv::write_tlv(&mut out, TAG_DAP_BLOCK, &inner);
        }
        let tag = if self.ciphered {
            TAG_CIPHERED_LOAD_FILE_DATA_BLOCK
        } else {
            TAG_LOAD_FILE_DATA_BLOCK
        };
        tlv::write_tlv(&mut out, tag, &self.data);
        out
    }

    /// Host: the LOAD commands, each carrying at most `block_size` bytes (1..=255 for
    /// short APDUs; less when secure messaging adds a MAC and padding): P1 `80` on the last
    /// block, P2 the block number from `00`.
    ///
    /// ```
    /// use gp_scp::cmd::load::LoadFile;
    /// let commands = LoadFile::new(&[0xAB; 300]).to_commands(240)?;
    /// assert_eq!(commands.len(), 2);
    /// assert_eq!(commands[0].header(), [0x80, 0xE8, 0x00, 0x00]);
    /// assert_eq!(&commands[0].data[..4], &[0xC4, 0x82, 0x01, 0x2C]);
    /// assert_eq!(commands[1].header(), [0x80, 0xE8, 0x80, 0x01]);
    /// # Ok::<(), gp_scp::cmd::CommandError>(())
    /// ```
    ///
    /// # Errors
    /// [`CommandError::FieldLength`] for a block size outside 1..=65535,
    /// [`CommandError::TooManyBlocks`] when more than 256 blocks would be needed.
    pub fn to_commands(&self, block_size: usize) -> Result<Vec<Command>, CommandError> {
        split_blocks(&self.to_vec(), block_size, |last, number, chunk| {
            Command::new(
                CLA_GP,
                ins::LOAD,
                if last { P1_LAST_BLOCK } else { 0x00 },
                number,
            )
            .with_data(chunk.to_vec())
            .with_le(LE_MAX_SHORT)
        })
    }
}

/// Split `bytes` into numbered blocks (shared by LOAD and STORE DATA).
pub(crate) fn split_blocks(
    bytes: &[u8],
    block_size: usize,
    mut build: impl FnMut(bool, u8, &[u8]) -> Command,
) -> Result<Vec<Command>, CommandError> {
    if block_size == 0 || block_size > apdu_codec::MAX_EXTENDED_DATA {
        return Err(CommandError::FieldLength {
            field: "block size",
            len: block_size,
            min: 1,
            max: apdu_codec::MAX_EXTENDED_DATA,
        });
    }
    let count = bytes.len().div_ceil(block_size).max(1);
    if count > 256 {
        return Err(CommandError::TooManyBlocks(bytes.len()));
    }
    let mut out = Vec::with_capacity(count);
    let mut chunks = bytes.chunks(block_size);
    for index in 0..count {
        let chunk = chunks.next().unwrap_or(&[]);
        let number = u8::try_from(index).map_err(|_| CommandError::TooManyBlocks(bytes.len()))?;
        out.push(build(index + 1 == count, number, chunk));
    }
    Ok(out)
}

/// Parse the reassembled LOAD data into DAP blocks and the load file data block.
///
/// # Errors
/// [`CommandError::Tlv`], [`CommandError::UnexpectedTag`], [`CommandError::MissingTag`]
/// (no `C4`/`D4`, or a DAP block without `4F`/`C3`), [`CommandError::TrailingBytes`] after
/// the data block, [`CommandError::AidLength`].
pub fn parse_load_file(bytes: &[u8]) -> Result<LoadFile, CommandError> {
    let mut dap_blocks = Vec::new();
    let mut iter = tlv::TlvIter::new(bytes);
    for item in iter.by_ref() {
        let item = item?;
        match item.tag() {
            TAG_DAP_BLOCK => {
                let aid = item
                    .find(TAG_SD_AID)?
                    .ok_or(CommandError::MissingTag(TAG_SD_AID))?;
                let signature = item
                    .find(TAG_SIGNATURE)?
                    .ok_or(CommandError::MissingTag(TAG_SIGNATURE))?;
                for child in item.children() {
                    let tag = child?.tag();
                    if tag != TAG_SD_AID && tag != TAG_SIGNATURE {
                        return Err(CommandError::UnexpectedTag {
                            context: "DAP block",
                            found: tag,
                        });
                    }
                }
                dap_blocks.push(DapBlock {
                    security_domain: Aid::new(aid.value())?,
                    signature: signature.value().to_vec(),
                });
            }
            TAG_LOAD_FILE_DATA_BLOCK | TAG_CIPHERED_LOAD_FILE_DATA_BLOCK => {
                let rest = iter.remaining();
                if !rest.is_empty() {
                    return Err(CommandError::TrailingBytes {
                        field: "load file data block",
                        count: rest.len(),
                    });
                }
                return Ok(LoadFile {
                    dap_blocks,
                    ciphered: item.tag() == TAG_CIPHERED_LOAD_FILE_DATA_BLOCK,
                    data: item.value().to_vec(),
                });
            }
            other => {
                return Err(CommandError::UnexpectedTag {
                    context: "load file",
                    found: other,
                });
            }
        }
    }
    Err(CommandError::MissingTag(TAG_LOAD_FILE_DATA_BLOCK))
}

/// One LOAD block as the card sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadBlock<'a> {
    /// P1 `80`.
    pub last: bool,
    /// P2.
    pub number: u8,
    /// The block's bytes.
    pub data: &'a [u8],
}

/// Card side: parse one LOAD command.
///
/// # Errors
/// [`CommandError::Instruction`], [`CommandError::P1P2`] for P1 other than `00`/`80`,
/// [`CommandError::DataLength`] without data.
pub fn parse_load<'a>(command: &CommandView<'a>) -> Result<LoadBlock<'a>, CommandError> {
    expect_ins(command, ins::LOAD)?;
    let last = match command.p1() {
        0x00 => false,
        P1_LAST_BLOCK => true,
        p1 => {
            return Err(CommandError::P1P2 {
                command: "LOAD",
                p1,
                p2: command.p2(),
            });
        }
    };
    if command.data().is_empty() {
        return Err(CommandError::DataLength {
            command: "LOAD",
            len: 0,
        });
    }
    Ok(LoadBlock {
        last,
        number: command.p2(),
        data: command.data(),
    })
}

/// Card side: collects LOAD blocks in order (GPC 2.3 §11.6.2.2: block numbers start at
/// `00` and increase by one) and yields the parsed load file after the last block.
///
/// A rejected block changes nothing, so the host may resend the right one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReassembler {
    blocks: Blocks,
}

impl LoadReassembler {
    /// A reassembler that accepts at most `max_len` bytes in total (the card's free
    /// memory; more answers `6A84`).
    #[must_use]
    pub const fn new(max_len: usize) -> Self {
        LoadReassembler {
            blocks: Blocks::new(max_len),
        }
    }

    /// Default limit: 1 MiB.
    #[must_use]
    pub const fn with_default_limit() -> Self {
        Self::new(1 << 20)
    }

    /// Bytes received so far.
    #[must_use]
    pub fn received(&self) -> usize {
        self.blocks.len()
    }

    /// Take one LOAD command; returns the load file after the last block.
    ///
    /// # Errors
    /// The errors of [`parse_load`], [`CommandError::Sequence`] after the last block,
    /// [`CommandError::BlockNumber`] out of order, [`CommandError::TooLong`] past the
    /// limit, and on the last block the errors of [`parse_load_file`] (after which the
    /// reassembler is finished; start a new one).
    pub fn push(&mut self, command: &CommandView<'_>) -> Result<Option<LoadFile>, CommandError> {
        let block = parse_load(command)?;
        self.blocks
            .push("LOAD", "load file", block.number, block.data, block.last)?;
        if !block.last {
            return Ok(None);
        }
        parse_load_file(self.blocks.as_slice()).map(Some)
    }
}

/// The largest LOAD block for short APDUs (GPC 2.3 §11.6.2.3).
pub const MAX_BLOCK: usize = MAX_SHORT_DATA;
