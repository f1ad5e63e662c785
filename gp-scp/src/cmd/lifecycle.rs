//! Life cycle states of the card, applications, security domains and load files
//! (codings GPC 2.3 §11.1.1, transitions GPC 2.3 §5.1).

use core::fmt;

use super::CommandError;

/// Card life cycle (GPC 2.3 §11.1.1 card life cycle coding; transitions §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CardLifeCycle {
    /// `01` OP_READY.
    OpReady,
    /// `07` INITIALIZED.
    Initialized,
    /// `0F` SECURED.
    Secured,
    /// `7F` CARD_LOCKED.
    CardLocked,
    /// `FF` TERMINATED.
    Terminated,
}

impl CardLifeCycle {
    /// The coding.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        match self {
            CardLifeCycle::OpReady => 0x01,
            CardLifeCycle::Initialized => 0x07,
            CardLifeCycle::Secured => 0x0F,
            CardLifeCycle::CardLocked => 0x7F,
            CardLifeCycle::Terminated => 0xFF,
        }
    }

    /// Decode.
    ///
    /// # Errors
    /// [`CommandError::LifeCycle`] for a coding GPC 2.3 §11.1.1 does not define.
    pub const fn from_byte(b: u8) -> Result<Self, CommandError> {
        match b {
            0x01 => Ok(CardLifeCycle::OpReady),
            0x07 => Ok(CardLifeCycle::Initialized),
            0x0F => Ok(CardLifeCycle::Secured),
            0x7F => Ok(CardLifeCycle::CardLocked),
            0xFF => Ok(CardLifeCycle::Terminated),
            _ => Err(CommandError::LifeCycle {
                kind: "card",
                value: b,
            }),
        }
    }

    /// The name GPC 2.3 uses.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            CardLifeCycle::OpReady => "OP_READY",
            CardLifeCycle::Initialized => "INITIALIZED",
            CardLifeCycle::Secured => "SECURED",
            CardLifeCycle::CardLocked => "CARD_LOCKED",
            CardLifeCycle::Terminated => "TERMINATED",
        }
    }

    /// `true` when GPC 2.3 §5.1.1 allows the transition: OP_READY → INITIALIZED →
    /// SECURED (forward only, steps may be skipped), SECURED ↔ CARD_LOCKED, and any state
    /// except TERMINATED → TERMINATED.
    #[must_use]
    pub fn can_transition_to(self, to: CardLifeCycle) -> bool {
        use CardLifeCycle::{CardLocked, Initialized, OpReady, Secured, Terminated};
        matches!(
            (self, to),
            (OpReady, Initialized | Secured)
                | (Initialized, Secured)
                | (Secured, CardLocked)
                | (CardLocked, Secured)
                | (OpReady | Initialized | Secured | CardLocked, Terminated)
        )
    }

    /// The new state, or the error a card answers.
    ///
    /// # Errors
    /// [`CommandError::Transition`] when [`can_transition_to`](Self::can_transition_to)
    /// says no.
    pub fn transition(self, to: CardLifeCycle) -> Result<CardLifeCycle, CommandError> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(CommandError::Transition {
                kind: "card",
                from: self.to_byte(),
                to: to.to_byte(),
            })
        }
    }
}

/// Application life cycle coding (GPC 2.3 §11.1.1): INSTALLED `03`, SELECTABLE `07`,
/// application-specific states `0xxxx111` (bits 7-4 chosen by the application), and LOCKED
/// with b8 set over the state the application was in (`1xxxxx11`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicationLifeCycle(u8);

impl ApplicationLifeCycle {
    /// `03` INSTALLED.
    pub const INSTALLED: Self = ApplicationLifeCycle(0x03);
    /// `07` SELECTABLE.
    pub const SELECTABLE: Self = ApplicationLifeCycle(0x07);
    /// `83` LOCKED (locked while INSTALLED; the usual coding reported).
    pub const LOCKED: Self = ApplicationLifeCycle(0x83);

    /// Decode.
    ///
    /// # Errors
    /// [`CommandError::LifeCycle`] for a coding outside the three patterns above.
    pub const fn from_byte(b: u8) -> Result<Self, CommandError> {
        let valid = if b & 0x80 != 0 {
            b & 0x03 == 0x03
        } else {
            b == 0x03 || b & 0x07 == 0x07
        };
        if valid {
            Ok(ApplicationLifeCycle(b))
        } else {
            Err(CommandError::LifeCycle {
                kind: "application",
                value: b,
            })
        }
    }

    /// The coding.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        self.0
    }

    /// `true` when b8 (LOCKED) is set.
    #[must_use]
    pub const fn is_locked(self) -> bool {
        self.0 & 0x80 != 0
    }

    /// `true` for SELECTABLE or an application-specific state, not locked.
    #[must_use]
    pub const fn is_selectable(self) -> bool {
        !self.is_locked() && self.0 & 0x07 == 0x07
    }

    /// The application-specific bits (b7-b4), 0 for INSTALLED and SELECTABLE.
    #[must_use]
    pub const fn application_specific(self) -> u8 {
        (self.0 >> 3) & 0x0F
    }

    /// The name GPC 2.3 uses (`application specific` for the application's own states).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self.0 {
            _ if self.is_locked() => "LOCKED",
            0x03 => "INSTALLED",
            0x07 => "SELECTABLE",
            _ => "application specific",
        }
    }

    /// Lock (GPC 2.3 §5.3.1: any state → LOCKED, keeping the previous state's bits).
    ///
    /// # Errors
    /// [`CommandError::Transition`] when already locked.
    pub const fn lock(self) -> Result<Self, CommandError> {
        if self.is_locked() {
            return Err(self.refuse(self.0));
        }
        Ok(ApplicationLifeCycle(self.0 | 0x80))
    }

    /// Unlock (GPC 2.3 §5.3.1: LOCKED → the state before locking).
    ///
    /// # Errors
    /// [`CommandError::Transition`] when not locked.
    pub const fn unlock(self) -> Result<Self, CommandError> {
        if !self.is_locked() {
            return Err(self.refuse(self.0 & 0x7F));
        }
        Ok(ApplicationLifeCycle(self.0 & 0x7F))
    }

    /// A transition requested by SET STATUS or the application itself (GPC 2.3 §5.3.1):
    /// INSTALLED → SELECTABLE; SELECTABLE and application-specific states → another
    /// application-specific state or SELECTABLE; never back to INSTALLED and never while
    /// locked (use [`unlock`](Self::unlock)).
    ///
    /// # Errors
    /// [`CommandError::LifeCycle`] for an undefined target coding,
    /// [`CommandError::Transition`] for a transition not allowed.
    pub const fn transition(self, to: u8) -> Result<Self, CommandError> {
        let target = match ApplicationLifeCycle::from_byte(to) {
            Ok(t) => t,
            Err(e) => return Err(e),
        };
        if to & 0x80 != 0 {
            return if to & 0x7F == self.0 {
                self.lock()
            } else {
                Err(self.refuse(to))
            };
        }
        let allowed = !self.is_locked()
            && to != 0x03
            && to != self.0
            && (self.0 == 0x03 && to == 0x07 || self.is_selectable());
        if allowed {
            Ok(target)
        } else {
            Err(self.refuse(to))
        }
    }

    const fn refuse(self, to: u8) -> CommandError {
        CommandError::Transition {
            kind: "application",
            from: self.0,
            to,
        }
    }
}

impl fmt::Debug for ApplicationLifeCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApplicationLifeCycle({:02X} {})", self.0, self.name())
    }
}

/// Security domain life cycle coding (GPC 2.3 §11.1.1): INSTALLED `03`, SELECTABLE `07`,
/// PERSONALIZED `0F`, LOCKED = b8 set over the previous state (`83`, `87`, `8F`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecurityDomainLifeCycle(u8);

impl SecurityDomainLifeCycle {
    /// `03` INSTALLED.
    pub const INSTALLED: Self = SecurityDomainLifeCycle(0x03);
    /// `07` SELECTABLE.
    pub const SELECTABLE: Self = SecurityDomainLifeCycle(0x07);
    /// `0F` PERSONALIZED.
    pub const PERSONALIZED: Self = SecurityDomainLifeCycle(0x0F);
    /// `83` LOCKED (locked while INSTALLED).
    pub const LOCKED: Self = SecurityDomainLifeCycle(0x83);

    /// Decode.
    ///
    /// # Errors
    /// [`CommandError::LifeCycle`] for other codings.
    pub const fn from_byte(b: u8) -> Result<Self, CommandError> {
        match b & 0x7F {
            0x03 | 0x07 | 0x0F => Ok(SecurityDomainLifeCycle(b)),
            _ => Err(CommandError::LifeCycle {
                kind: "security domain",
                value: b,
            }),
        }
    }

    /// The coding.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        self.0
    }

    /// `true` when b8 (LOCKED) is set.
    #[must_use]
    pub const fn is_locked(self) -> bool {
        self.0 & 0x80 != 0
    }

    /// The name GPC 2.3 uses.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self.0 {
            _ if self.is_locked() => "LOCKED",
            0x03 => "INSTALLED",
            0x07 => "SELECTABLE",
            _ => "PERSONALIZED",
        }
    }

    /// A transition (GPC 2.3 §5.3.2): INSTALLED → SELECTABLE → PERSONALIZED (forward only),
    /// any unlocked state → LOCKED (`80` | state, or plain `80`/`83`), LOCKED → the previous
    /// state.
    ///
    /// # Errors
    /// [`CommandError::LifeCycle`] for an undefined target, [`CommandError::Transition`]
    /// for a transition not allowed.
    pub const fn transition(self, to: u8) -> Result<Self, CommandError> {
        let refuse = CommandError::Transition {
            kind: "security domain",
            from: self.0,
            to,
        };
        if to == 0x80 || to == 0x83 {
            // Lock request in the short forms SET STATUS uses.
            return if self.is_locked() {
                Err(refuse)
            } else {
                Ok(SecurityDomainLifeCycle(self.0 | 0x80))
            };
        }
        let target = match SecurityDomainLifeCycle::from_byte(to) {
            Ok(t) => t,
            Err(e) => return Err(e),
        };
        if self.is_locked() {
            // Unlocking returns to the state before the lock.
            return if to == self.0 & 0x7F {
                Ok(target)
            } else {
                Err(refuse)
            };
        }
        if target.is_locked() {
            return if to & 0x7F == self.0 {
                Ok(target)
            } else {
                Err(refuse)
            };
        }
        if to > self.0 { Ok(target) } else { Err(refuse) }
    }
}

impl fmt::Debug for SecurityDomainLifeCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecurityDomainLifeCycle({:02X} {})", self.0, self.name())
    }
}

/// Executable load file life cycle (GPC 2.3 §11.1.1): only LOADED `01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadFileLifeCycle {
    /// `01` LOADED.
    Loaded,
}

impl LoadFileLifeCycle {
    /// The coding.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        0x01
    }

    /// Decode.
    ///
    /// # Errors
    /// [`CommandError::LifeCycle`] for anything but `01`.
    pub const fn from_byte(b: u8) -> Result<Self, CommandError> {
        if b == 0x01 {
            Ok(LoadFileLifeCycle::Loaded)
        } else {
            Err(CommandError::LifeCycle {
                kind: "load file",
                value: b,
            })
        }
    }

    /// The name GPC 2.3 uses.
    #[must_use]
    pub const fn name(self) -> &'static str {
        "LOADED"
    }
}

/// A life cycle state of any registry entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifeCycle {
    /// The card (the ISD's entry).
    Card(CardLifeCycle),
    /// An application.
    Application(ApplicationLifeCycle),
    /// A security domain.
    SecurityDomain(SecurityDomainLifeCycle),
    /// An executable load file.
    LoadFile(LoadFileLifeCycle),
}

impl LifeCycle {
    /// The coding.
    #[must_use]
    pub const fn to_byte(self) -> u8 {
        match self {
            LifeCycle::Card(s) => s.to_byte(),
            LifeCycle::Application(s) => s.to_byte(),
            LifeCycle::SecurityDomain(s) => s.to_byte(),
            LifeCycle::LoadFile(s) => s.to_byte(),
        }
    }

    /// The name GPC 2.3 uses.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            LifeCycle::Card(s) => s.name(),
            LifeCycle::Application(s) => s.name(),
            LifeCycle::SecurityDomain(s) => s.name(),
            LifeCycle::LoadFile(s) => s.name(),
        }
    }
}

impl fmt::Display for LifeCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X} ({})", self.to_byte(), self.name())
    }
}
