//! AID, privileges, life cycle states and transitions, and the error → status word mapping.
#![allow(clippy::unwrap_used, missing_docs)]

use apdu_codec::StatusWord;
use apdu_codec::tlv::{Tag, TlvError};
use gp_scp::cmd::{
    Aid, ApplicationLifeCycle, CardLifeCycle, CommandError, LoadFileLifeCycle, Privilege,
    Privileges, SecurityDomainLifeCycle,
};

#[test]
fn aid_lengths_and_text() {
    for len in 0..=20usize {
        let bytes = vec![0xA0; len];
        let result = Aid::new(&bytes);
        if (5..=16).contains(&len) {
            let aid = result.unwrap();
            assert_eq!(aid.as_bytes(), &bytes[..]);
            assert_eq!(aid.len(), len);
            assert_eq!(aid.to_string().parse::<Aid>().unwrap(), aid);
        } else {
            assert_eq!(result, Err(CommandError::AidLength(len)));
        }
    }
    assert_eq!(
        "a0000001510000".parse::<Aid>().unwrap().to_string(),
        "A0000001510000"
    );
    for (text, err) in [
        ("A00000015", CommandError::AidHex),
        ("A0000001XX", CommandError::AidHex),
        ("A0000001", CommandError::AidLength(4)),
        ("", CommandError::AidLength(0)),
        (
            "A0000001510000000000000000000000FF",
            CommandError::AidLength(17),
        ),
    ] {
        assert_eq!(text.parse::<Aid>(), Err(err), "{text}");
    }
    assert_eq!(Aid::GP_ISD.to_string(), "A000000151000000");
    assert_eq!(Aid::GP_ISD.rid(), &[0xA0, 0, 0, 0x01, 0x51]);
    assert!(Aid::GP_ISD.starts_with(&[0xA0, 0x00]));
    assert!(!Aid::GP_ISD.starts_with(&[0xA1]));
    assert_eq!(format!("{:?}", Aid::OP_ISD), "Aid(A000000003000000)");
}

#[test]
fn privileges_named_bits() {
    // GPC 2.3 §11.1.2: every privilege decodes from its own bits and lists its name.
    let table = [
        ([0x80, 0, 0], Privilege::SecurityDomain),
        ([0xC0, 0, 0], Privilege::DapVerification),
        ([0xA0, 0, 0], Privilege::DelegatedManagement),
        ([0x10, 0, 0], Privilege::CardLock),
        ([0x08, 0, 0], Privilege::CardTerminate),
        ([0x04, 0, 0], Privilege::CardReset),
        ([0x02, 0, 0], Privilege::CvmManagement),
        ([0xC1, 0, 0], Privilege::MandatedDapVerification),
        ([0, 0x80, 0], Privilege::TrustedPath),
        ([0, 0x40, 0], Privilege::AuthorizedManagement),
        ([0, 0x20, 0], Privilege::TokenVerification),
        ([0, 0x10, 0], Privilege::GlobalDelete),
        ([0, 0x08, 0], Privilege::GlobalLock),
        ([0, 0x04, 0], Privilege::GlobalRegistry),
        ([0, 0x02, 0], Privilege::FinalApplication),
        ([0, 0x01, 0], Privilege::GlobalService),
        ([0, 0, 0x80], Privilege::ReceiptGeneration),
        ([0, 0, 0x40], Privilege::CipheredLoadFileDataBlock),
        ([0, 0, 0x20], Privilege::ContactlessActivation),
        ([0, 0, 0x10], Privilege::ContactlessSelfActivation),
    ];
    for (bits, privilege) in table {
        let p = Privileges::from_bytes(bits);
        assert!(p.has(privilege), "{privilege:?}");
        assert_eq!(privilege.bits(), bits);
        assert_eq!(Privileges::from_list(&[privilege]), p);
        assert!(p.names().any(|n| n == privilege.name()));
    }
    // DAP verification needs the security domain bit: 40 alone is not DAP verification.
    let bare = Privileges::from_bytes([0x40, 0, 0]);
    assert!(!bare.has(Privilege::DapVerification));
    assert_eq!(bare.reserved_bits(), [0x40, 0, 0]);
    assert_eq!(
        Privileges::from_bytes([0, 0, 0x0F]).reserved_bits(),
        [0, 0, 0x0F]
    );
    // A JCOP-class ISD (PROTOCOLS.md: 9AFE80).
    let isd = Privileges::from_bytes([0x9A, 0xFE, 0x80]);
    let names: Vec<_> = isd.names().collect();
    assert_eq!(
        names,
        [
            "Security Domain",
            "Card Lock",
            "Card Terminate",
            "CVM Management",
            "Trusted Path",
            "Authorized Management",
            "Token Verification",
            "Global Delete",
            "Global Lock",
            "Global Registry",
            "Final Application",
            "Receipt Generation"
        ]
    );
    assert_eq!(isd.to_string(), "9AFE80");
    // Source: andreas-mausch/docker-javacard docs/globalplatformpro.md (`gp --list`): an ISD
    // listed as "SecurityDomain, CardLock, CardTerminate, CardReset, CVMManagement,
    // TrustedPath, AuthorizedManagement, TokenVerification, GlobalDelete, GlobalLock,
    // GlobalRegistry, FinalApplication, ReceiptGeneration", i.e. privileges 9EFE80.
    let listed: Vec<_> = Privileges::from_bytes([0x9E, 0xFE, 0x80]).names().collect();
    assert_eq!(listed.len(), 13);
    assert_eq!(listed[3], "Card Reset");
    assert!(format!("{isd:?}").contains("Card Lock"));
    assert_eq!(
        Privileges::from_slice(&[0x80]).unwrap(),
        Privileges::from_bytes([0x80, 0, 0])
    );
    for bad in [&[][..], &[1, 2], &[1, 2, 3, 4]] {
        assert!(matches!(
            Privileges::from_slice(bad),
            Err(CommandError::FieldLength {
                field: "privileges",
                ..
            })
        ));
    }
}

#[test]
fn card_life_cycle_transitions() {
    use CardLifeCycle::*;
    let all = [OpReady, Initialized, Secured, CardLocked, Terminated];
    // GPC 2.3 §5.1.1.
    let allowed = [
        (OpReady, Initialized),
        (OpReady, Secured),
        (Initialized, Secured),
        (Secured, CardLocked),
        (CardLocked, Secured),
        (OpReady, Terminated),
        (Initialized, Terminated),
        (Secured, Terminated),
        (CardLocked, Terminated),
    ];
    for from in all {
        assert_eq!(CardLifeCycle::from_byte(from.to_byte()), Ok(from));
        for to in all {
            let ok = allowed.contains(&(from, to));
            assert_eq!(from.can_transition_to(to), ok, "{from:?} -> {to:?}");
            match from.transition(to) {
                Ok(s) => assert!(ok && s == to),
                Err(e) => {
                    assert!(!ok);
                    assert_eq!(e.status_word(), StatusWord::CONDITIONS_NOT_SATISFIED);
                }
            }
        }
    }
    assert_eq!(
        [OpReady, Initialized, Secured, CardLocked, Terminated].map(CardLifeCycle::name),
        [
            "OP_READY",
            "INITIALIZED",
            "SECURED",
            "CARD_LOCKED",
            "TERMINATED"
        ]
    );
    for b in 0..=255u8 {
        let known = [0x01, 0x07, 0x0F, 0x7F, 0xFF].contains(&b);
        assert_eq!(CardLifeCycle::from_byte(b).is_ok(), known, "{b:02X}");
    }
    assert_eq!(
        CardLifeCycle::from_byte(0x03).unwrap_err().status_word(),
        StatusWord::INCORRECT_DATA
    );
}

#[test]
fn application_life_cycle() {
    let installed = ApplicationLifeCycle::INSTALLED;
    let selectable = installed.transition(0x07).unwrap();
    assert_eq!(selectable, ApplicationLifeCycle::SELECTABLE);
    assert!(selectable.is_selectable());
    let specific = selectable.transition(0x0F).unwrap();
    assert_eq!(specific.name(), "application specific");
    assert_eq!(specific.application_specific(), 1);
    assert_eq!(specific.transition(0x07).unwrap(), selectable);
    let locked = specific.lock().unwrap();
    assert_eq!(locked.to_byte(), 0x8F);
    assert_eq!(locked.name(), "LOCKED");
    assert!(!locked.is_selectable());
    assert_eq!(locked.unlock().unwrap(), specific);
    for (from, to) in [
        (selectable, 0x03), // never back to INSTALLED
        (installed, 0x0F),  // application-specific only once selectable
        (selectable, 0x07), // no-op is not a transition
        (locked, 0x07),     // locked: unlock first
    ] {
        assert!(
            matches!(from.transition(to), Err(CommandError::Transition { .. })),
            "{from:?} {to:02X}"
        );
    }
    assert!(matches!(
        locked.lock(),
        Err(CommandError::Transition { .. })
    ));
    assert!(matches!(
        selectable.unlock(),
        Err(CommandError::Transition { .. })
    ));
    assert!(matches!(
        selectable.transition(0x05),
        Err(CommandError::LifeCycle { .. })
    ));
    for b in 0..=255u8 {
        let valid = if b & 0x80 != 0 {
            b & 0x03 == 0x03
        } else {
            b == 0x03 || b & 0x07 == 0x07
        };
        assert_eq!(ApplicationLifeCycle::from_byte(b).is_ok(), valid, "{b:02X}");
    }
}

#[test]
fn security_domain_and_load_file_life_cycles() {
    let installed = SecurityDomainLifeCycle::INSTALLED;
    let selectable = installed.transition(0x07).unwrap();
    let personalized = selectable.transition(0x0F).unwrap();
    assert_eq!(personalized, SecurityDomainLifeCycle::PERSONALIZED);
    assert_eq!(installed.transition(0x0F).unwrap(), personalized);
    let locked = personalized.transition(0x80).unwrap();
    assert_eq!(locked.to_byte(), 0x8F);
    assert_eq!(locked.name(), "LOCKED");
    assert_eq!(locked.transition(0x0F).unwrap(), personalized);
    assert!(matches!(
        locked.transition(0x07),
        Err(CommandError::Transition { .. })
    ));
    assert!(matches!(
        locked.transition(0x80),
        Err(CommandError::Transition { .. })
    ));
    assert!(matches!(
        personalized.transition(0x07),
        Err(CommandError::Transition { .. })
    ));
    assert!(matches!(
        personalized.transition(0x01),
        Err(CommandError::LifeCycle { .. })
    ));
    assert_eq!(
        SecurityDomainLifeCycle::from_byte(0x83).unwrap(),
        SecurityDomainLifeCycle::LOCKED
    );
    assert_eq!(
        LoadFileLifeCycle::from_byte(0x01),
        Ok(LoadFileLifeCycle::Loaded)
    );
    assert!(LoadFileLifeCycle::from_byte(0x03).is_err());
}

#[test]
fn status_word_mapping() {
    let tag = Tag::new(0x4F);
    let table = [
        (CommandError::AidLength(3), 0x6A80),
        (CommandError::AidHex, 0x6A80),
        (
            CommandError::Instruction {
                expected: 0xE4,
                found: 0xE6,
            },
            0x6D00,
        ),
        (
            CommandError::P1P2 {
                command: "X",
                p1: 1,
                p2: 2,
            },
            0x6A86,
        ),
        (
            CommandError::DataLength {
                command: "X",
                len: 0,
            },
            0x6700,
        ),
        (
            CommandError::FieldLength {
                field: "f",
                len: 1,
                min: 2,
                max: 3,
            },
            0x6A80,
        ),
        (
            CommandError::Truncated {
                field: "f",
                needed: 2,
                available: 1,
            },
            0x6A80,
        ),
        (
            CommandError::TrailingBytes {
                field: "f",
                count: 1,
            },
            0x6A80,
        ),
        (CommandError::MissingTag(tag), 0x6A80),
        (
            CommandError::UnexpectedTag {
                context: "c",
                found: tag,
            },
            0x6A80,
        ),
        (CommandError::DuplicateTag(tag), 0x6A80),
        (
            CommandError::Value {
                field: "f",
                value: 1,
            },
            0x6A80,
        ),
        (
            CommandError::LifeCycle {
                kind: "card",
                value: 2,
            },
            0x6A80,
        ),
        (
            CommandError::Transition {
                kind: "card",
                from: 0xFF,
                to: 0x0F,
            },
            0x6985,
        ),
        (
            CommandError::BlockNumber {
                expected: 1,
                found: 2,
            },
            0x6A86,
        ),
        (CommandError::Sequence("LOAD"), 0x6985),
        (CommandError::TooManyBlocks(70_000), 0x6A84),
        (
            CommandError::TooLong {
                field: "f",
                len: 9,
                max: 8,
            },
            0x6A84,
        ),
        (CommandError::NotFound, 0x6A88),
        (CommandError::Tlv(TlvError::Empty), 0x6A80),
        (CommandError::Apdu(apdu_codec::Error::ZeroLc), 0x6700),
        (CommandError::Status(StatusWord::from_u16(0x6A82)), 0x6A82),
    ];
    for (error, sw) in table {
        assert_eq!(error.status_word().to_u16(), sw, "{error}");
        assert_eq!(StatusWord::from(&error).to_u16(), sw);
        // The crate error wraps it and maps it the same way.
        let wrapped = gp_scp::Error::from(error);
        assert_eq!(wrapped.status_word().to_u16(), sw);
        assert_eq!(wrapped.to_string(), error.to_string());
    }
}
