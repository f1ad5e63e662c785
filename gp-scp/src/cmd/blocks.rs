//! Numbered command blocks collected in order, shared by the LOAD and STORE DATA
//! reassemblers (block numbers start at `00` and increase by one: GPC 2.3 §11.6.2.2 and
//! §11.11.2.2).

use alloc::vec::Vec;

use super::CommandError;

/// The blocks received so far, the next expected number and the limit on their total length.
/// A rejected block changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blocks {
    buffer: Vec<u8>,
    next: u16,
    max_len: usize,
    finished: bool,
}

impl Blocks {
    /// No block yet; at most `max_len` bytes in total.
    pub(crate) const fn new(max_len: usize) -> Self {
        Blocks {
            buffer: Vec::new(),
            next: 0,
            max_len,
            finished: false,
        }
    }

    /// Bytes received so far.
    pub(crate) fn len(&self) -> usize {
        self.buffer.len()
    }

    /// The bytes received so far.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buffer
    }

    /// Take the bytes out (after the last block).
    pub(crate) fn take(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.buffer)
    }

    /// Append block `number` of `command`; `last` ends the sequence.
    ///
    /// # Errors
    /// [`CommandError::Sequence`] after the last block, [`CommandError::TooManyBlocks`]
    /// after block `FF`, [`CommandError::BlockNumber`] out of order,
    /// [`CommandError::TooLong`] (naming `field`) past the limit.
    pub(crate) fn push(
        &mut self,
        command: &'static str,
        field: &'static str,
        number: u8,
        data: &[u8],
        last: bool,
    ) -> Result<(), CommandError> {
        if self.finished {
            return Err(CommandError::Sequence(command));
        }
        let expected =
            u8::try_from(self.next).map_err(|_| CommandError::TooManyBlocks(self.buffer.len()))?;
        if number != expected {
            return Err(CommandError::BlockNumber {
                expected,
                found: number,
            });
        }
        let total = self.buffer.len() + data.len();
        if total > self.max_len {
            return Err(CommandError::TooLong {
                field,
                len: total,
                max: self.max_len,
            });
        }
        self.buffer.extend_from_slice(data);
        self.next += 1;
        self.finished = last;
        Ok(())
    }
}
