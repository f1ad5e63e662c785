//! Application and security domain privileges (GPC 2.3 §11.1.2).

use core::fmt;

use super::CommandError;

/// One named privilege: its bits in the three privilege bytes.
///
/// A privilege is held when all of its bits are set: DAP verification (`C0 00 00`) is the
/// security domain bit `80` plus bit `40`, as GPC 2.3 §11.1.2 codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Privilege {
    /// Byte 1 `80` (GPC 2.3 §11.1.2, byte 1 b8).
    SecurityDomain,
    /// Byte 1 `C0`: security domain with DAP verification (b8 b7).
    DapVerification,
    /// Byte 1 `A0`: security domain with delegated management (b8 b6).
    DelegatedManagement,
    /// Byte 1 `10`: card lock (b5).
    CardLock,
    /// Byte 1 `08`: card terminate (b4).
    CardTerminate,
    /// Byte 1 `04`: card reset (b3; "default selected" before GP 2.2).
    CardReset,
    /// Byte 1 `02`: CVM management (b2).
    CvmManagement,
    /// Byte 1 `C1`: security domain with mandated DAP verification (b8 b7 b1).
    MandatedDapVerification,
    /// Byte 2 `80`: trusted path.
    TrustedPath,
    /// Byte 2 `40`: authorized management.
    AuthorizedManagement,
    /// Byte 2 `20`: token verification.
    TokenVerification,
    /// Byte 2 `10`: global delete.
    GlobalDelete,
    /// Byte 2 `08`: global lock.
    GlobalLock,
    /// Byte 2 `04`: global registry.
    GlobalRegistry,
    /// Byte 2 `02`: final application.
    FinalApplication,
    /// Byte 2 `01`: global service.
    GlobalService,
    /// Byte 3 `80`: receipt generation.
    ReceiptGeneration,
    /// Byte 3 `40`: ciphered load file data block.
    CipheredLoadFileDataBlock,
    /// Byte 3 `20`: contactless activation (GPC 2.3 §11.1.2, Amendment C).
    ContactlessActivation,
    /// Byte 3 `10`: contactless self-activation (Amendment C).
    ContactlessSelfActivation,
}

/// Every privilege with its name and bits, in the order GPC 2.3 §11.1.2 lists them.
pub const PRIVILEGES: [(Privilege, &str, [u8; 3]); 20] = [
    (Privilege::SecurityDomain, "Security Domain", [0x80, 0, 0]),
    (Privilege::DapVerification, "DAP Verification", [0xC0, 0, 0]),
    (
        Privilege::DelegatedManagement,
        "Delegated Management",
        [0xA0, 0, 0],
    ),
    (Privilege::CardLock, "Card Lock", [0x10, 0, 0]),
    (Privilege::CardTerminate, "Card Terminate", [0x08, 0, 0]),
    (Privilege::CardReset, "Card Reset", [0x04, 0, 0]),
    (Privilege::CvmManagement, "CVM Management", [0x02, 0, 0]),
    (
        Privilege::MandatedDapVerification,
        "Mandated DAP Verification",
        [0xC1, 0, 0],
    ),
    (Privilege::TrustedPath, "Trusted Path", [0, 0x80, 0]),
    (
        Privilege::AuthorizedManagement,
        "Authorized Management",
        [0, 0x40, 0],
    ),
    (
        Privilege::TokenVerification,
        "Token Verification",
        [0, 0x20, 0],
    ),
    (Privilege::GlobalDelete, "Global Delete", [0, 0x10, 0]),
    (Privilege::GlobalLock, "Global Lock", [0, 0x08, 0]),
    (Privilege::GlobalRegistry, "Global Registry", [0, 0x04, 0]),
    (
        Privilege::FinalApplication,
        "Final Application",
        [0, 0x02, 0],
    ),
    (Privilege::GlobalService, "Global Service", [0, 0x01, 0]),
    (
        Privilege::ReceiptGeneration,
        "Receipt Generation",
        [0, 0, 0x80],
    ),
    (
        Privilege::CipheredLoadFileDataBlock,
        "Ciphered Load File Data Block",
        [0, 0, 0x40],
    ),
    (
        Privilege::ContactlessActivation,
        "Contactless Activation",
        [0, 0, 0x20],
    ),
    (
        Privilege::ContactlessSelfActivation,
        "Contactless Self-Activation",
        [0, 0, 0x10],
    ),
];

impl Privilege {
    /// The privilege's bits in the three privilege bytes.
    #[must_use]
    pub fn bits(self) -> [u8; 3] {
        PRIVILEGES
            .iter()
            .find(|(p, _, _)| *p == self)
            .map_or([0; 3], |(_, _, bits)| *bits)
    }

    /// The privilege's name as GPC 2.3 §11.1.2 writes it.
    #[must_use]
    pub fn name(self) -> &'static str {
        PRIVILEGES
            .iter()
            .find(|(p, _, _)| *p == self)
            .map_or("", |(_, name, _)| name)
    }
}

/// The three privilege bytes of an application or security domain.
///
/// ```
/// use gp_scp::cmd::{Privilege, Privileges};
/// // A JCOP-class ISD.
/// let p = Privileges::from_bytes([0x9A, 0xFE, 0x80]);
/// assert!(p.has(Privilege::SecurityDomain));
/// assert!(p.has(Privilege::CardLock));
/// assert!(!p.has(Privilege::DapVerification));
/// assert_eq!(p.names().next(), Some("Security Domain"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Privileges(pub [u8; 3]);

impl Privileges {
    /// No privilege.
    pub const NONE: Privileges = Privileges([0; 3]);

    /// From the three bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 3]) -> Self {
        Privileges(bytes)
    }

    /// From a privileges field of one byte (GP 2.1.1 and the legacy GET STATUS format) or
    /// three bytes (GPC 2.3 §11.1.2).
    ///
    /// # Errors
    /// [`CommandError::FieldLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CommandError> {
        match *bytes {
            [b1] => Ok(Privileges([b1, 0, 0])),
            [b1, b2, b3] => Ok(Privileges([b1, b2, b3])),
            _ => Err(CommandError::FieldLength {
                field: "privileges",
                len: bytes.len(),
                min: 1,
                max: 3,
            }),
        }
    }

    /// From a list of privileges.
    #[must_use]
    pub fn from_list(list: &[Privilege]) -> Self {
        list.iter().fold(Privileges::NONE, |acc, p| acc.with(*p))
    }

    /// The three bytes.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 3] {
        self.0
    }

    /// `true` when every bit of the privilege is set.
    #[must_use]
    pub fn has(self, privilege: Privilege) -> bool {
        let bits = privilege.bits();
        self.0
            .iter()
            .zip(bits)
            .all(|(have, need)| have & need == need)
    }

    /// These privileges plus another.
    #[must_use]
    pub fn with(self, privilege: Privilege) -> Self {
        let bits = privilege.bits();
        Privileges([
            self.0[0] | bits[0],
            self.0[1] | bits[1],
            self.0[2] | bits[2],
        ])
    }

    /// `true` for a security domain (byte 1 b8).
    #[must_use]
    pub fn is_security_domain(self) -> bool {
        self.has(Privilege::SecurityDomain)
    }

    /// The privileges held.
    pub fn iter(self) -> impl Iterator<Item = Privilege> {
        PRIVILEGES
            .iter()
            .filter(move |(p, _, _)| self.has(*p))
            .map(|(p, _, _)| *p)
    }

    /// The names of the privileges held, in GPC 2.3 §11.1.2 order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.iter().map(Privilege::name)
    }

    /// Bits set that GPC 2.3 §11.1.2 reserves (byte 3 b4-b1), or bits that need the
    /// security domain bit without it (b7, b6 or b1 of byte 1 alone).
    #[must_use]
    pub fn reserved_bits(self) -> [u8; 3] {
        let mut bad = [0, 0, self.0[2] & 0x0F];
        if self.0[0] & 0x80 == 0 {
            bad[0] = self.0[0] & 0x61;
        }
        bad
    }
}

impl fmt::Display for Privileges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}{:02X}{:02X}", self.0[0], self.0[1], self.0[2])
    }
}

impl fmt::Debug for Privileges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Privileges({self}: ")?;
        let mut first = true;
        for name in self.names() {
            if !first {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
            first = false;
        }
        f.write_str(")")
    }
}
