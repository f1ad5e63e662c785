//! A deterministic random generator for simulations, tests and benchmarks.

use core::convert::Infallible;
use core::fmt;

use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// SHA-256 in counter mode over a 32-byte seed: block `i` is `SHA-256(seed || i)` (`i` a 64-bit
/// big-endian counter).
///
/// Same seed, same bytes: this is what makes simulations reproducible. It is as unpredictable as
/// its seed, so a server must seed it from the operating system (or use the OS generator
/// directly); a seed written in a test is public and gives public keys and tokens.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SeededRng {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl fmt::Debug for SeededRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededRng")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl SeededRng {
    /// A generator from a 32-byte seed.
    #[must_use]
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    /// A generator from a 64-bit seed (expanded with SHA-256), for tests and simulations.
    #[must_use]
    pub fn from_u64(seed: u64) -> Self {
        let mut h = Sha256::new();
        h.update(b"mec-roaming seeded rng");
        h.update(seed.to_be_bytes());
        Self::from_seed(h.finalize().into())
    }

    fn refill(&mut self) {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.counter.to_be_bytes());
        self.block = h.finalize().into();
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }
}

impl TryRng for SeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for out in dst.iter_mut() {
            if self.used >= self.block.len() {
                self.refill();
            }
            *out = self.block.get(self.used).copied().unwrap_or(0);
            self.used += 1;
        }
        Ok(())
    }
}

impl TryCryptoRng for SeededRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn same_seed_same_stream() {
        let mut a = SeededRng::from_u64(7);
        let mut b = SeededRng::from_u64(7);
        let mut c = SeededRng::from_u64(8);
        let (x, y, z) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(x, y);
        assert_ne!(x, z);
        let mut buf = [0u8; 100];
        a.fill_bytes(&mut buf);
        assert!(buf.iter().any(|&v| v != 0));
    }
}
