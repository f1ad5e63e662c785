//! The class byte (ISO/IEC 7816-4 §5.4.1, GlobalPlatform Card Specification 2.3 §11.1.4).

use core::fmt;

/// Secure-messaging indication carried by the class byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecureMessaging {
    /// No secure messaging (or none indicated).
    None,
    /// Proprietary secure messaging (bit `04`; GlobalPlatform's `84` commands).
    Proprietary,
    /// ISO secure messaging, command header not processed (first interindustry `08`).
    IsoHeaderNotAuthenticated,
    /// ISO secure messaging, command header authenticated (first interindustry `0C`).
    IsoHeaderAuthenticated,
}

/// A decoded class byte.
///
/// Interindustry classes (`0x`-`7x`) follow ISO/IEC 7816-4 §5.4.1; proprietary classes
/// (`8x`-`Fx`, bit `80` set) are decoded the same way, as GlobalPlatform does (GPC 2.3 §11.1.4):
/// `80`/`84` on channels 0-3, `C0`-`CF`/`E0`-`EF` on channels 4-19.
///
/// ```
/// use apdu_codec::{Cla, SecureMessaging};
/// let cla = Cla(0x84);
/// assert!(cla.is_proprietary());
/// assert_eq!(cla.secure_messaging(), SecureMessaging::Proprietary);
/// assert_eq!(cla.logical_channel(), 0);
/// assert_eq!(Cla(0x00).with_logical_channel(5), Some(Cla(0x41)));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cla(pub u8);

impl Cla {
    /// `true` for the further interindustry coding (bit `40`): logical channels 4-19.
    #[must_use]
    pub const fn is_further(self) -> bool {
        self.0 & 0x40 != 0
    }

    /// `true` when bit `80` is set (proprietary class, e.g. GlobalPlatform `80`/`84`).
    #[must_use]
    pub const fn is_proprietary(self) -> bool {
        self.0 & 0x80 != 0
    }

    /// `true` for `FF`, which ISO/IEC 7816-4 reserves (never a valid command class).
    #[must_use]
    pub const fn is_invalid(self) -> bool {
        self.0 == 0xFF
    }

    /// `true` when bit `10` announces that more commands of a chain follow (§5.3.3).
    #[must_use]
    pub const fn is_chained(self) -> bool {
        self.0 & 0x10 != 0
    }

    /// The secure-messaging indication.
    #[must_use]
    pub const fn secure_messaging(self) -> SecureMessaging {
        if self.is_further() {
            if self.0 & 0x20 != 0 {
                SecureMessaging::IsoHeaderNotAuthenticated
            } else {
                SecureMessaging::None
            }
        } else {
            match (self.0 >> 2) & 0x03 {
                0 => SecureMessaging::None,
                1 => SecureMessaging::Proprietary,
                2 => SecureMessaging::IsoHeaderNotAuthenticated,
                _ => SecureMessaging::IsoHeaderAuthenticated,
            }
        }
    }

    /// `true` when any secure messaging is indicated.
    #[must_use]
    pub const fn has_secure_messaging(self) -> bool {
        !matches!(self.secure_messaging(), SecureMessaging::None)
    }

    /// The logical channel number, 0-3 (first interindustry) or 4-19 (further interindustry).
    #[must_use]
    pub const fn logical_channel(self) -> u8 {
        if self.is_further() {
            4 + (self.0 & 0x0F)
        } else {
            self.0 & 0x03
        }
    }

    /// The same class on another logical channel, keeping the proprietary bit, chaining and
    /// secure messaging (as far as the target coding can express it). `None` above channel 19.
    #[must_use]
    pub const fn with_logical_channel(self, channel: u8) -> Option<Cla> {
        let proprietary = self.0 & 0x80;
        let chained = self.0 & 0x10;
        let sm = self.has_secure_messaging();
        if channel <= 3 {
            let sm_bits = if self.is_further() {
                if sm { 0x04 } else { 0 }
            } else {
                self.0 & 0x0C
            };
            Some(Cla(proprietary | chained | sm_bits | channel))
        } else if channel <= 19 {
            let sm_bit = if sm { 0x20 } else { 0 };
            Some(Cla(proprietary | 0x40 | sm_bit | chained | (channel - 4)))
        } else {
            None
        }
    }

    /// The same class with the chaining bit set or cleared.
    #[must_use]
    pub const fn with_chaining(self, more_follow: bool) -> Cla {
        if more_follow {
            Cla(self.0 | 0x10)
        } else {
            Cla(self.0 & !0x10)
        }
    }

    /// The same class with GlobalPlatform's secure-messaging bit `04` set (`80` → `84`).
    /// On further-interindustry classes the SM bit is `20`.
    #[must_use]
    pub const fn with_secure_messaging(self) -> Cla {
        if self.is_further() {
            Cla(self.0 | 0x20)
        } else {
            Cla(self.0 | 0x04)
        }
    }
}

impl fmt::Debug for Cla {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cla({:02X})", self.0)
    }
}

impl fmt::Display for Cla {
    /// `84 (proprietary, secure messaging, channel 0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_invalid() {
            return write!(f, "FF (invalid class)");
        }
        write!(
            f,
            "{:02X} ({}",
            self.0,
            if self.is_proprietary() {
                "proprietary"
            } else {
                "interindustry"
            }
        )?;
        match self.secure_messaging() {
            SecureMessaging::None => {}
            SecureMessaging::Proprietary => write!(f, ", secure messaging")?,
            SecureMessaging::IsoHeaderNotAuthenticated => write!(f, ", ISO secure messaging")?,
            SecureMessaging::IsoHeaderAuthenticated => {
                write!(f, ", ISO secure messaging with header")?;
            }
        }
        if self.is_chained() {
            write!(f, ", chained")?;
        }
        write!(f, ", channel {})", self.logical_channel())
    }
}

impl From<u8> for Cla {
    fn from(byte: u8) -> Self {
        Cla(byte)
    }
}

impl From<Cla> for u8 {
    fn from(cla: Cla) -> Self {
        cla.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip() {
        for base in [0x00u8, 0x80, 0x84, 0x0C, 0x10] {
            for ch in 0..=19u8 {
                let cla = Cla(base).with_logical_channel(ch).unwrap();
                assert_eq!(cla.logical_channel(), ch, "base {base:02X} ch {ch}");
                assert_eq!(cla.is_proprietary(), base & 0x80 != 0);
                assert_eq!(cla.is_chained(), base & 0x10 != 0);
                assert_eq!(cla.has_secure_messaging(), base & 0x0C != 0);
            }
            assert_eq!(Cla(base).with_logical_channel(20), None);
        }
    }

    #[test]
    fn decodes_known_classes() {
        assert_eq!(Cla(0x80).secure_messaging(), SecureMessaging::None);
        assert_eq!(Cla(0x84).secure_messaging(), SecureMessaging::Proprietary);
        assert_eq!(
            Cla(0x0C).secure_messaging(),
            SecureMessaging::IsoHeaderAuthenticated
        );
        assert_eq!(
            Cla(0x08).secure_messaging(),
            SecureMessaging::IsoHeaderNotAuthenticated
        );
        assert_eq!(
            Cla(0x63).secure_messaging(),
            SecureMessaging::IsoHeaderNotAuthenticated
        );
        assert_eq!(Cla(0x63).logical_channel(), 7);
        assert_eq!(Cla(0xC1).logical_channel(), 5);
        assert_eq!(Cla(0x93).logical_channel(), 3);
        assert!(Cla(0x93).is_chained());
        assert!(Cla(0xFF).is_invalid());
        assert_eq!(Cla(0x80).with_secure_messaging(), Cla(0x84));
        assert_eq!(Cla(0x84).with_chaining(true), Cla(0x94));
    }
}
