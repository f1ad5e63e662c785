//! Secrets at rest: the home server's secret database columns sealed with AES-256-GCM
//! (NIST SP 800-38D) under a key-encryption key (KEK) read from a file.
//!
//! A sealed value is `MAGIC || nonce (12 bytes) || ciphertext || tag (16 bytes)`. Every value
//! gets a fresh 96-bit nonce from the operating system's random generator (SP 800-38D §8.2.2,
//! random IV construction), and its associated data names the table, column and row key, so a
//! value copied into another row or column fails to open.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use anyhow::{Context, bail};
use zeroize::Zeroizing;

/// Prefix of every sealed value (version 1). Plaintext values it could be confused with do not
/// start with it: PKCS#8 DER starts with 0x30 (SEQUENCE) and card numbers are stored as TEXT.
pub(crate) const MAGIC: &[u8; 4] = b"MKS1";
/// AES-GCM nonce length: 96 bits (SP 800-38D §5.2.1.1 recommends 96-bit IVs).
const NONCE_LEN: usize = 12;
/// AES-GCM tag length: 128 bits.
const TAG_LEN: usize = 16;
/// Length of a KEK (AES-256).
pub(crate) const KEK_LEN: usize = 32;

/// The key-encryption key. `Debug` never shows it; it is zeroized when dropped.
#[derive(Clone)]
pub(crate) struct Kek(Zeroizing<[u8; KEK_LEN]>);

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kek(..)")
    }
}

/// Where a sealed value lives: its associated data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot<'a> {
    pub(crate) table: &'a str,
    pub(crate) column: &'a str,
    pub(crate) row: &'a str,
}

impl Slot<'_> {
    /// `"mec-roam-seal-v1"` then table, column and row, each with a 4-byte big-endian length
    /// (so no two slots share associated data).
    fn aad(&self) -> Vec<u8> {
        let mut out = b"mec-roam-seal-v1".to_vec();
        for part in [self.table, self.column, self.row] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// Why a value could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Not a sealed value (no magic, too short).
    NotSealed,
    /// The tag did not verify: another key, another slot or a changed value.
    Mismatch,
}

impl Kek {
    /// A KEK from its bytes.
    pub(crate) fn new(bytes: [u8; KEK_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&(*self.0).into())
    }

    /// Seals `plaintext` for `slot` with a fresh random nonce.
    ///
    /// # Errors
    /// The operating system's random generator failed, or the value is too long for AES-GCM.
    pub(crate) fn seal(&self, slot: Slot<'_>, plaintext: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| format!("operating system random generator: {e}"))?;
        self.seal_with_nonce(slot, plaintext, nonce)
    }

    fn seal_with_nonce(
        &self,
        slot: Slot<'_>,
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let body = out.get_mut(start..).unwrap_or_default();
        let tag = self
            .cipher()
            .encrypt_inout_detached(&Nonce::from(nonce), &slot.aad(), body.into())
            .map_err(|_| "AES-GCM: value too long".to_owned())?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a value sealed for `slot`; the plaintext is zeroized when dropped.
    ///
    /// # Errors
    /// [`OpenError::NotSealed`] for something that is not a sealed value,
    /// [`OpenError::Mismatch`] when the tag does not verify.
    pub(crate) fn open(
        &self,
        slot: Slot<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let rest = sealed.strip_prefix(MAGIC).ok_or(OpenError::NotSealed)?;
        let (nonce, rest) = rest
            .split_at_checked(NONCE_LEN)
            .ok_or(OpenError::NotSealed)?;
        let body_len = rest
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(OpenError::NotSealed)?;
        let (body, tag) = rest
            .split_at_checked(body_len)
            .ok_or(OpenError::NotSealed)?;
        let nonce = Nonce::try_from(nonce).map_err(|_| OpenError::NotSealed)?;
        let tag = Tag::try_from(tag).map_err(|_| OpenError::NotSealed)?;
        let mut buf = Zeroizing::new(body.to_vec());
        self.cipher()
            .decrypt_inout_detached(&nonce, &slot.aad(), buf.as_mut_slice().into(), &tag)
            .map_err(|_| OpenError::Mismatch)?;
        Ok(buf)
    }
}

/// True when `v` looks like a sealed value (starts with [`MAGIC`]).
pub(crate) fn is_sealed(v: &[u8]) -> bool {
    v.starts_with(MAGIC)
}

/// Reads the KEK file: exactly 32 bytes, or 64 hex digits (surrounding whitespace ignored).
/// On unix the file must not be readable or writable by group or others (mode 0600 or 0400).
///
/// # Errors
/// A missing or unreadable file, loose permissions, or another length.
pub(crate) fn read_kek(path: &Path) -> anyhow::Result<Kek> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("reading KEK file {}", path.display()))?;
    if !meta.is_file() {
        bail!("KEK file {} is not a regular file", path.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "KEK file {} has mode {mode:04o}; it must be readable by its owner only (chmod 600 {})",
                path.display(),
                path.display()
            );
        }
    }
    let bytes = Zeroizing::new(
        std::fs::read(path).with_context(|| format!("reading KEK file {}", path.display()))?,
    );
    let mut key: [u8; KEK_LEN] = if let Ok(raw) = <[u8; KEK_LEN]>::try_from(bytes.as_slice()) {
        raw
    } else if let Ok(text) = std::str::from_utf8(&bytes)
        && text.trim().len() == 2 * KEK_LEN
    {
        super::config::hex32(text)
            .with_context(|| format!("KEK file {}: 64 hex digits", path.display()))?
    } else {
        bail!(
            "KEK file {} must hold exactly 32 bytes (or 64 hex digits); it has {} bytes",
            path.display(),
            bytes.len()
        );
    };
    let kek = Kek::new(key);
    zeroize::Zeroize::zeroize(&mut key);
    Ok(kek)
}

/// Writes a new random KEK (32 raw bytes) to `out`, created with mode 0600; an existing file
/// is never overwritten.
///
/// # Errors
/// The random generator or the file.
pub(crate) fn generate_kek(out: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let mut key = Zeroizing::new([0u8; KEK_LEN]);
    getrandom::fill(key.as_mut_slice())
        .map_err(|e| anyhow::anyhow!("operating system random generator: {e}"))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    f.write_all(key.as_slice())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SLOT: Slot<'static> = Slot {
        table: "subscribers",
        column: "card",
        row: "+447700900123",
    };

    #[test]
    fn known_answer_and_round_trip() {
        // NIST GCM test vector "Test Case 13" (McGrew & Viega, The Galois/Counter Mode of
        // Operation, Appendix B): zero key, zero IV, empty plaintext, empty AAD gives tag
        // 530f8afbc74536b9a963b4f1c4cb738b. With our AAD the tag differs, so check the
        // primitive directly, then the framing.
        let c = Aes256Gcm::new(&[0u8; 32].into());
        let mut empty: [u8; 0] = [];
        let tag = c
            .encrypt_inout_detached(&Nonce::from([0u8; 12]), &[], empty.as_mut_slice().into())
            .unwrap();
        assert_eq!(
            tag.as_slice(),
            [
                0x53, 0x0f, 0x8a, 0xfb, 0xc7, 0x45, 0x36, 0xb9, 0xa9, 0x63, 0xb4, 0xf1, 0xc4, 0xcb,
                0x73, 0x8b
            ]
        );
        let k = Kek::new([9; 32]);
        let a = k.seal(SLOT, b"4111111111111111").unwrap();
        let b = k.seal(SLOT, b"4111111111111111").unwrap();
        assert_ne!(a, b, "fresh nonce per value");
        assert_eq!(a.len(), 4 + 12 + 16 + 16);
        assert!(is_sealed(&a));
        assert_eq!(k.open(SLOT, &a).unwrap().as_slice(), b"4111111111111111");
        assert_eq!(format!("{k:?}"), "Kek(..)");
    }

    #[test]
    fn another_slot_key_or_a_changed_byte_is_refused() {
        let k = Kek::new([9; 32]);
        let a = k.seal(SLOT, b"secret").unwrap();
        for other in [
            Slot {
                row: "+447701900456",
                ..SLOT
            },
            Slot {
                column: "signing_key",
                ..SLOT
            },
            Slot {
                table: "other",
                ..SLOT
            },
        ] {
            assert_eq!(k.open(other, &a), Err(OpenError::Mismatch));
        }
        assert_eq!(Kek::new([8; 32]).open(SLOT, &a), Err(OpenError::Mismatch));
        for i in 4..a.len() {
            let mut bad = a.clone();
            bad[i] ^= 1;
            assert_eq!(k.open(SLOT, &bad), Err(OpenError::Mismatch), "byte {i}");
        }
        assert_eq!(k.open(SLOT, b"MKS1short"), Err(OpenError::NotSealed));
        assert_eq!(k.open(SLOT, b"0\x82plain der"), Err(OpenError::NotSealed));
        assert_eq!(k.open(SLOT, &a[..a.len() - 1]), Err(OpenError::Mismatch));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Any value round-trips in its slot; any byte string given to `open` gives an error or
        /// a plaintext, never a panic, and a changed sealed value never opens.
        #[test]
        fn round_trip_and_open_never_panics(
            plain in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            row in "[+0-9]{0,16}",
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            flip in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let k = Kek::new([0x21; 32]);
            let slot = Slot { row: &row, ..SLOT };
            let sealed = k.seal(slot, &plain).unwrap();
            let opened = k.open(slot, &sealed).unwrap();
            proptest::prop_assert_eq!(opened.as_slice(), plain.as_slice());
            let mut bad = sealed.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 0x80;
            proptest::prop_assert!(k.open(slot, &bad).is_err());
            let _ = k.open(slot, &junk);
            let mut framed = MAGIC.to_vec();
            framed.extend_from_slice(&junk);
            proptest::prop_assert!(k.open(slot, &framed).is_err());
        }
    }

    #[test]
    fn kek_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kek");
        generate_kek(&p).unwrap();
        assert!(generate_kek(&p).is_err(), "never overwritten");
        let raw = std::fs::read(&p).unwrap();
        assert_eq!(raw.len(), 32);
        let k = read_kek(&p).unwrap();
        assert_eq!(k.0.as_slice(), raw.as_slice());
        let hex = dir.path().join("kek.hex");
        generate_kek(&hex).unwrap();
        std::fs::write(&hex, format!("{}\n", "ab".repeat(32))).unwrap();
        assert_eq!(read_kek(&hex).unwrap().0.as_slice(), [0xab; 32]);
        std::fs::write(&hex, "ab".repeat(31)).unwrap();
        assert!(read_kek(&hex).is_err());
        assert!(read_kek(&dir.path().join("missing")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = format!("{:#}", read_kek(&p).unwrap_err());
            assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        }
    }
}
