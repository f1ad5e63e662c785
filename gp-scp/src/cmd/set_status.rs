//! SET STATUS (GPC 2.3 §11.10) and the life cycle transition checks a card applies to it
//! (GPC 2.3 §5.1).

use apdu_codec::{Command, CommandView, ins};

use super::reader::expect_ins;
use super::{
    Aid, ApplicationLifeCycle, CLA_GP, CardLifeCycle, CommandError, SecurityDomainLifeCycle,
};

/// P1 `80`: the issuer security domain, i.e. the card life cycle (GPC 2.3 §11.10.2.1).
pub const P1_CARD: u8 = 0x80;
/// P1 `40`: an application or supplementary security domain.
pub const P1_APPLICATION: u8 = 0x40;
/// P1 `60`: a security domain and its associated applications.
pub const P1_SD_AND_APPLICATIONS: u8 = 0x60;
/// P2 `80`: lock (b8 set; GPC 2.3 §11.10.2.2).
pub const P2_LOCK: u8 = 0x80;
/// P2 `00`: unlock (as GlobalPlatformPro sends it).
pub const P2_UNLOCK: u8 = 0x00;

/// What SET STATUS acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// P1 `80`: the card (optionally naming the ISD).
    Card(Option<Aid>),
    /// P1 `40`: an application or supplementary security domain.
    Application(Aid),
    /// P1 `60`: a security domain and its applications.
    SecurityDomainAndApplications(Aid),
}

/// A SET STATUS command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SetStatus {
    /// P1 and the data field.
    pub scope: Scope,
    /// P2: the requested state (or `80` lock / `00` unlock for applications and domains).
    pub state: u8,
}

/// What a SET STATUS asks an application or security domain to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Request {
    /// b8 set: lock.
    Lock,
    /// `00`: unlock.
    Unlock,
    /// Move to this state.
    State(u8),
}

impl SetStatus {
    /// Change the card life cycle state.
    #[must_use]
    pub const fn card(state: CardLifeCycle) -> Self {
        SetStatus {
            scope: Scope::Card(None),
            state: state.to_byte(),
        }
    }

    /// Lock an application or security domain.
    #[must_use]
    pub const fn lock(aid: Aid) -> Self {
        SetStatus {
            scope: Scope::Application(aid),
            state: P2_LOCK,
        }
    }

    /// Unlock an application or security domain.
    #[must_use]
    pub const fn unlock(aid: Aid) -> Self {
        SetStatus {
            scope: Scope::Application(aid),
            state: P2_UNLOCK,
        }
    }

    /// Host: `80 F0 P1 P2 [Lc AID]`.
    #[must_use]
    pub fn to_command(&self) -> Command {
        let (p1, aid) = match &self.scope {
            Scope::Card(aid) => (P1_CARD, aid.as_ref()),
            Scope::Application(aid) => (P1_APPLICATION, Some(aid)),
            Scope::SecurityDomainAndApplications(aid) => (P1_SD_AND_APPLICATIONS, Some(aid)),
        };
        let command = Command::new(CLA_GP, ins::SET_STATUS, p1, self.state);
        match aid {
            Some(aid) => command.with_data(aid.as_bytes().to_vec()),
            None => command,
        }
    }

    /// How P2 reads for an application or security domain.
    #[must_use]
    pub const fn request(&self) -> Request {
        match self.state {
            P2_UNLOCK => Request::Unlock,
            s if s & 0x80 != 0 => Request::Lock,
            s => Request::State(s),
        }
    }

    /// Card side: the new card life cycle state (P1 `80`).
    ///
    /// # Errors
    /// [`CommandError::P1P2`] for another scope, [`CommandError::LifeCycle`] for an
    /// undefined state, [`CommandError::Transition`] for a transition GPC 2.3 §5.1.1 does
    /// not allow.
    pub fn apply_to_card(&self, current: CardLifeCycle) -> Result<CardLifeCycle, CommandError> {
        if !matches!(self.scope, Scope::Card(_)) {
            return Err(self.wrong_scope());
        }
        current.transition(CardLifeCycle::from_byte(self.state)?)
    }

    /// Card side: the new state of an application (P1 `40` or `60`; `60` only locks and
    /// unlocks).
    ///
    /// # Errors
    /// [`CommandError::P1P2`] for the card scope, [`CommandError::LifeCycle`],
    /// [`CommandError::Transition`] (GPC 2.3 §5.3.1).
    pub fn apply_to_application(
        &self,
        current: ApplicationLifeCycle,
    ) -> Result<ApplicationLifeCycle, CommandError> {
        if matches!(self.scope, Scope::Card(_)) {
            return Err(self.wrong_scope());
        }
        match self.request() {
            Request::Lock => current.lock(),
            Request::Unlock => current.unlock(),
            Request::State(s) if matches!(self.scope, Scope::Application(_)) => {
                if current.is_locked() && s == current.to_byte() & 0x7F {
                    current.unlock()
                } else {
                    current.transition(s)
                }
            }
            Request::State(s) => Err(CommandError::Transition {
                kind: "application",
                from: current.to_byte(),
                to: s,
            }),
        }
    }

    /// Card side: the new state of a security domain (P1 `40` or `60`; `60` only locks and
    /// unlocks).
    ///
    /// # Errors
    /// [`CommandError::P1P2`] for the card scope, [`CommandError::LifeCycle`],
    /// [`CommandError::Transition`] (GPC 2.3 §5.3.2).
    pub fn apply_to_security_domain(
        &self,
        current: SecurityDomainLifeCycle,
    ) -> Result<SecurityDomainLifeCycle, CommandError> {
        if matches!(self.scope, Scope::Card(_)) {
            return Err(self.wrong_scope());
        }
        let refuse = |to| CommandError::Transition {
            kind: "security domain",
            from: current.to_byte(),
            to,
        };
        match self.request() {
            Request::Lock if current.is_locked() => Err(refuse(self.state)),
            Request::Lock => current.transition(current.to_byte() | 0x80),
            Request::Unlock if current.is_locked() => current.transition(current.to_byte() & 0x7F),
            Request::Unlock => Err(refuse(self.state)),
            Request::State(s) if matches!(self.scope, Scope::Application(_)) => {
                current.transition(s)
            }
            Request::State(s) => Err(refuse(s)),
        }
    }

    const fn wrong_scope(&self) -> CommandError {
        let p1 = match self.scope {
            Scope::Card(_) => P1_CARD,
            Scope::Application(_) => P1_APPLICATION,
            Scope::SecurityDomainAndApplications(_) => P1_SD_AND_APPLICATIONS,
        };
        CommandError::P1P2 {
            command: "SET STATUS",
            p1,
            p2: self.state,
        }
    }
}

/// Card side: parse SET STATUS.
///
/// # Errors
/// [`CommandError::Instruction`], [`CommandError::P1P2`] for P1 other than `80`/`40`/`60`,
/// [`CommandError::DataLength`] without the AID P1 `40`/`60` need,
/// [`CommandError::AidLength`].
pub fn parse_set_status(command: &CommandView<'_>) -> Result<SetStatus, CommandError> {
    expect_ins(command, ins::SET_STATUS)?;
    let (p1, p2) = (command.p1(), command.p2());
    let data = command.data();
    let scope = match p1 {
        P1_CARD => Scope::Card(if data.is_empty() {
            None
        } else {
            Some(Aid::new(data)?)
        }),
        P1_APPLICATION | P1_SD_AND_APPLICATIONS => {
            if data.is_empty() {
                return Err(CommandError::DataLength {
                    command: "SET STATUS",
                    len: 0,
                });
            }
            let aid = Aid::new(data)?;
            if p1 == P1_APPLICATION {
                Scope::Application(aid)
            } else {
                Scope::SecurityDomainAndApplications(aid)
            }
        }
        _ => {
            return Err(CommandError::P1P2 {
                command: "SET STATUS",
                p1,
                p2,
            });
        }
    };
    Ok(SetStatus { scope, state: p2 })
}
