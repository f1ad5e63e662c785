//! Security levels (GPC 2.3 §10.6 / Table 11-23 for SCP02, Amd D §5.1 / Table 5-1 for SCP03).

use core::fmt;

use crate::Error;

/// A secure channel security level: which protections every command and response carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SecurityLevel(u8);

impl fmt::Debug for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecurityLevel({:02X})", self.0)
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}", self.0)
    }
}

impl SecurityLevel {
    /// `01` C-MAC (Amd D Table 5-1 b1).
    pub const C_MAC_BIT: u8 = 0x01;
    /// `02` C-DECRYPTION (b2).
    pub const C_DECRYPTION_BIT: u8 = 0x02;
    /// `10` R-MAC (b5).
    pub const R_MAC_BIT: u8 = 0x10;
    /// `20` R-ENCRYPTION (b6).
    pub const R_ENCRYPTION_BIT: u8 = 0x20;

    /// `00`: authentication only, no secure messaging.
    pub const NONE: SecurityLevel = SecurityLevel(0x00);
    /// `01`: C-MAC.
    pub const C_MAC: SecurityLevel = SecurityLevel(0x01);
    /// `03`: C-DECRYPTION and C-MAC.
    pub const C_DEC_C_MAC: SecurityLevel = SecurityLevel(0x03);
    /// `11`: C-MAC and R-MAC.
    pub const C_MAC_R_MAC: SecurityLevel = SecurityLevel(0x11);
    /// `13`: C-DECRYPTION, C-MAC and R-MAC.
    pub const C_DEC_C_MAC_R_MAC: SecurityLevel = SecurityLevel(0x13);
    /// `31`: C-MAC, R-MAC and R-ENCRYPTION.
    pub const C_MAC_R_MAC_R_ENC: SecurityLevel = SecurityLevel(0x31);
    /// `33`: everything (C-DECRYPTION, C-MAC, R-ENCRYPTION, R-MAC).
    pub const ALL: SecurityLevel = SecurityLevel(0x33);

    /// Every SCP03 level (Amd D §5.1).
    pub const SCP03_LEVELS: [SecurityLevel; 7] = [
        Self::NONE,
        Self::C_MAC,
        Self::C_DEC_C_MAC,
        Self::C_MAC_R_MAC,
        Self::C_DEC_C_MAC_R_MAC,
        Self::C_MAC_R_MAC_R_ENC,
        Self::ALL,
    ];
    /// Every SCP02 level (GPC 2.3 §E.5.2.3: 00, 01, 03, 11, 13).
    pub const SCP02_LEVELS: [SecurityLevel; 5] = [
        Self::NONE,
        Self::C_MAC,
        Self::C_DEC_C_MAC,
        Self::C_MAC_R_MAC,
        Self::C_DEC_C_MAC_R_MAC,
    ];

    /// An SCP03 level from its byte (EXTERNAL AUTHENTICATE P1).
    ///
    /// # Errors
    /// [`Error::SecurityLevel`] for a combination SCP03 does not define.
    pub fn scp03(byte: u8) -> Result<Self, Error> {
        Self::SCP03_LEVELS
            .into_iter()
            .find(|l| l.0 == byte)
            .ok_or(Error::SecurityLevel(byte))
    }

    /// An SCP02 level from its byte (EXTERNAL AUTHENTICATE P1).
    ///
    /// # Errors
    /// [`Error::SecurityLevel`] for a combination SCP02 does not define.
    pub fn scp02(byte: u8) -> Result<Self, Error> {
        Self::SCP02_LEVELS
            .into_iter()
            .find(|l| l.0 == byte)
            .ok_or(Error::SecurityLevel(byte))
    }

    /// The level byte.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        self.0
    }

    /// Commands carry a C-MAC.
    #[must_use]
    pub const fn c_mac(self) -> bool {
        self.0 & Self::C_MAC_BIT != 0
    }

    /// Command data is encrypted.
    #[must_use]
    pub const fn c_decryption(self) -> bool {
        self.0 & Self::C_DECRYPTION_BIT != 0
    }

    /// Responses carry an R-MAC.
    #[must_use]
    pub const fn r_mac(self) -> bool {
        self.0 & Self::R_MAC_BIT != 0
    }

    /// Response data is encrypted.
    #[must_use]
    pub const fn r_encryption(self) -> bool {
        self.0 & Self::R_ENCRYPTION_BIT != 0
    }
}
