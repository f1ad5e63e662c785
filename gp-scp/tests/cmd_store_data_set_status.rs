//! STORE DATA (splitting, P1 bits, reassembly, DGIs) and SET STATUS (scopes and the life cycle
//! checks the card applies).
#![allow(clippy::unwrap_used, missing_docs)]

use apdu_codec::{Command, CommandView};
use gp_scp::cmd::set_status::{self, Request, Scope, SetStatus};
use gp_scp::cmd::store_data::{
    self, Dgi, Encryption, StoreDataOptions, StoreDataReassembler, Structure, parse_dgis,
    store_data_objects, write_dgi,
};
use gp_scp::cmd::{
    Aid, ApplicationLifeCycle, CardLifeCycle, CommandError, SecurityDomainLifeCycle,
};

#[test]
fn p1_coding() {
    // GPC 2.3 Table 11-89.
    for (structure, encryption, response, p1) in [
        (Structure::None, Encryption::None, false, 0x00),
        (Structure::Dgi, Encryption::None, false, 0x08),
        (Structure::BerTlv, Encryption::None, false, 0x10),
        (Structure::Dgi, Encryption::Encrypted, false, 0x68),
        (
            Structure::BerTlv,
            Encryption::ApplicationDependent,
            true,
            0x31,
        ),
    ] {
        let options = StoreDataOptions {
            structure,
            encryption,
            response,
        };
        assert_eq!(options.p1(), p1);
        assert_eq!(StoreDataOptions::from_p1(p1, 0), Ok(options));
        assert_eq!(StoreDataOptions::from_p1(p1 | 0x80, 0), Ok(options));
    }
    for p1 in [0x40, 0x18, 0x02, 0x04] {
        assert_eq!(
            StoreDataOptions::from_p1(p1, 7),
            Err(CommandError::P1P2 {
                command: "STORE DATA",
                p1,
                p2: 7
            })
        );
    }
}

#[test]
fn splitting_and_reassembly() {
    let data: Vec<u8> = (0..600u16)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    let options = StoreDataOptions {
        structure: Structure::Dgi,
        encryption: Encryption::Encrypted,
        response: false,
    };
    let commands = store_data::store_data(&data, options, 255).unwrap();
    assert_eq!(commands.len(), 3);
    assert_eq!(commands[0].header(), [0x80, 0xE2, 0x68, 0x00]);
    assert_eq!(commands[1].header(), [0x80, 0xE2, 0x68, 0x01]);
    assert_eq!(commands[2].header(), [0x80, 0xE2, 0xE8, 0x02]);
    let encoded: Vec<Vec<u8>> = commands.iter().map(|c| c.to_vec().unwrap()).collect();
    let mut card = StoreDataReassembler::new(4096);
    assert_eq!(
        card.push(&CommandView::try_from(&encoded[0][..]).unwrap())
            .unwrap(),
        None
    );
    // Out of order, changed options, after the end.
    assert_eq!(
        card.push(&CommandView::try_from(&encoded[2][..]).unwrap()),
        Err(CommandError::BlockNumber {
            expected: 1,
            found: 2
        })
    );
    let mut other = commands[1].clone();
    other.p1 = 0x08;
    let other = other.to_vec().unwrap();
    assert_eq!(
        card.push(&CommandView::try_from(&other[..]).unwrap()),
        Err(CommandError::Sequence("STORE DATA"))
    );
    assert_eq!(
        card.push(&CommandView::try_from(&encoded[1][..]).unwrap())
            .unwrap(),
        None
    );
    let done = card
        .push(&CommandView::try_from(&encoded[2][..]).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(done.data, data);
    assert_eq!(done.options, options);
    assert_eq!(
        card.push(&CommandView::try_from(&encoded[0][..]).unwrap()),
        Err(CommandError::Sequence("STORE DATA"))
    );
    // Limit.
    let mut small = StoreDataReassembler::new(100);
    let err = small
        .push(&CommandView::try_from(&encoded[0][..]).unwrap())
        .unwrap_err();
    assert_eq!(err.status_word().to_u16(), 0x6A84);
    // Single block, empty data allowed on the host (one empty last block) but not on the card.
    let empty = store_data::store_data(&[], StoreDataOptions::default(), 255).unwrap();
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].to_vec().unwrap(), [0x80, 0xE2, 0x80, 0x00, 0x00]);
    let err = StoreDataReassembler::new(10)
        .push(&CommandView::try_from(&[0x80, 0xE2, 0x80, 0x00][..]).unwrap())
        .unwrap_err();
    assert_eq!(err.status_word().to_u16(), 0x6700);
    assert_eq!(
        store_data::store_data(&[0; 257], StoreDataOptions::default(), 1).unwrap_err(),
        CommandError::TooManyBlocks(257)
    );
    assert!(matches!(
        store_data::store_data(&[0; 2], StoreDataOptions::default(), 0),
        Err(CommandError::FieldLength { .. })
    ));
    let wrong_ins = Command::new(0x80, 0xE8, 0x80, 0)
        .with_data(vec![1])
        .to_vec()
        .unwrap();
    assert_eq!(
        store_data::parse_store_data(&CommandView::try_from(&wrong_ins[..]).unwrap()).unwrap_err(),
        CommandError::Instruction {
            expected: 0xE2,
            found: 0xE8
        }
    );
}

#[test]
fn dgis() {
    let mut bytes = Vec::new();
    write_dgi(&mut bytes, 0x0101, &[0xAA; 3]).unwrap();
    write_dgi(&mut bytes, 0x8010, &[0xBB; 0xFE]).unwrap();
    write_dgi(&mut bytes, 0x9000, &[0xCC; 0xFF]).unwrap();
    write_dgi(&mut bytes, 0x0202, &[]).unwrap();
    assert_eq!(&bytes[..6], &[0x01, 0x01, 0x03, 0xAA, 0xAA, 0xAA]);
    assert_eq!(&bytes[6..9], &[0x80, 0x10, 0xFE]);
    // 255 bytes need the three-byte form FF 00 FF (GPC 2.3 §11.11.2.3).
    assert_eq!(
        &bytes[9 + 0xFE..9 + 0xFE + 5],
        &[0x90, 0x00, 0xFF, 0x00, 0xFF]
    );
    let parsed = parse_dgis(&bytes).unwrap();
    assert_eq!(parsed.len(), 4);
    assert_eq!(
        parsed[0],
        Dgi {
            id: 0x0101,
            value: &[0xAA; 3]
        }
    );
    assert_eq!(parsed[2].value.len(), 0xFF);
    assert_eq!(
        parsed[3],
        Dgi {
            id: 0x0202,
            value: &[]
        }
    );
    for (hex_in, field) in [
        ("01", "DGI"),
        ("0101", "DGI length"),
        ("0101FF00", "DGI length"),
        ("010102AA", "DGI value"),
    ] {
        let b = hex::decode(hex_in).unwrap();
        assert!(
            matches!(parse_dgis(&b), Err(CommandError::Truncated { field: f, .. }) if f == field),
            "{hex_in}"
        );
    }
    assert!(matches!(
        write_dgi(&mut Vec::new(), 1, &vec![0; 70_000]),
        Err(CommandError::TooLong { .. })
    ));
    // Object packing keeps whole DGIs in a block when they fit.
    let a = [0x01, 0x01, 0x02, 1, 2];
    let b = [0x01, 0x02, 0x02, 3, 4];
    let big = [0x55u8; 12];
    let options = StoreDataOptions {
        structure: Structure::Dgi,
        ..Default::default()
    };
    let commands = store_data_objects(&[&a, &b, &big], options, 10).unwrap();
    let blocks: Vec<&[u8]> = commands.iter().map(|c| &c.data[..]).collect();
    assert_eq!(blocks, [&[a, b].concat()[..], &big[..10], &big[10..]]);
    assert_eq!(commands.last().unwrap().p1, 0x88);
    assert_eq!(store_data_objects(&[], options, 10).unwrap().len(), 1);
    assert!(matches!(
        store_data_objects(&[&a], options, 0),
        Err(CommandError::FieldLength { .. })
    ));
}

#[test]
fn set_status_commands() {
    let aid: Aid = "A00000006200010101".parse().unwrap();
    let cases = [
        (SetStatus::card(CardLifeCycle::Secured), "80F0800F"),
        (SetStatus::card(CardLifeCycle::CardLocked), "80F0807F"),
        (SetStatus::lock(aid), "80F0408009A00000006200010101"),
        (SetStatus::unlock(aid), "80F0400009A00000006200010101"),
        (
            SetStatus {
                scope: Scope::SecurityDomainAndApplications(aid),
                state: 0x80,
            },
            "80F0608009A00000006200010101",
        ),
        (
            SetStatus {
                scope: Scope::Card(Some(Aid::GP_ISD)),
                state: 0xFF,
            },
            "80F080FF08A000000151000000",
        ),
    ];
    for (cmd, bytes) in cases {
        let b = hex::decode(bytes).unwrap();
        assert_eq!(cmd.to_command().to_vec().unwrap(), b, "{bytes}");
        assert_eq!(
            set_status::parse_set_status(&CommandView::try_from(&b[..]).unwrap()).unwrap(),
            cmd
        );
    }
    for (bytes, expected) in [
        (
            "80F0200F",
            CommandError::P1P2 {
                command: "SET STATUS",
                p1: 0x20,
                p2: 0x0F,
            },
        ),
        (
            "80F04080",
            CommandError::DataLength {
                command: "SET STATUS",
                len: 0,
            },
        ),
        ("80F0608003A00000", CommandError::AidLength(3)),
        ("80F0800F03A00000", CommandError::AidLength(3)),
        (
            "80E4800F",
            CommandError::Instruction {
                expected: 0xF0,
                found: 0xE4,
            },
        ),
    ] {
        let b = hex::decode(bytes).unwrap();
        assert_eq!(
            set_status::parse_set_status(&CommandView::try_from(&b[..]).unwrap()),
            Err(expected),
            "{bytes}"
        );
    }
}

#[test]
fn set_status_transitions() {
    let aid: Aid = "A00000006200010101".parse().unwrap();
    // Card (GPC 2.3 §5.1.1).
    let secure = SetStatus::card(CardLifeCycle::Secured);
    assert_eq!(
        secure.apply_to_card(CardLifeCycle::Initialized),
        Ok(CardLifeCycle::Secured)
    );
    assert_eq!(
        secure.apply_to_card(CardLifeCycle::CardLocked),
        Ok(CardLifeCycle::Secured)
    );
    assert_eq!(
        secure
            .apply_to_card(CardLifeCycle::Terminated)
            .unwrap_err()
            .status_word()
            .to_u16(),
        0x6985
    );
    let bad_state = SetStatus {
        scope: Scope::Card(None),
        state: 0x03,
    };
    assert_eq!(
        bad_state
            .apply_to_card(CardLifeCycle::Secured)
            .unwrap_err()
            .status_word()
            .to_u16(),
        0x6A80
    );
    assert!(matches!(
        SetStatus::lock(aid).apply_to_card(CardLifeCycle::Secured),
        Err(CommandError::P1P2 { .. })
    ));
    assert!(matches!(
        secure.apply_to_application(ApplicationLifeCycle::SELECTABLE),
        Err(CommandError::P1P2 { .. })
    ));
    assert!(matches!(
        secure.apply_to_security_domain(SecurityDomainLifeCycle::SELECTABLE),
        Err(CommandError::P1P2 { .. })
    ));

    // Applications (GPC 2.3 §5.3.1).
    assert_eq!(SetStatus::lock(aid).request(), Request::Lock);
    assert_eq!(SetStatus::unlock(aid).request(), Request::Unlock);
    let selectable = ApplicationLifeCycle::SELECTABLE;
    let locked = SetStatus::lock(aid)
        .apply_to_application(selectable)
        .unwrap();
    assert_eq!(locked.to_byte(), 0x87);
    assert!(SetStatus::lock(aid).apply_to_application(locked).is_err());
    assert_eq!(
        SetStatus::unlock(aid).apply_to_application(locked),
        Ok(selectable)
    );
    assert!(
        SetStatus::unlock(aid)
            .apply_to_application(selectable)
            .is_err()
    );
    let to_state = |s| SetStatus {
        scope: Scope::Application(aid),
        state: s,
    };
    assert_eq!(
        to_state(0x0F)
            .apply_to_application(selectable)
            .unwrap()
            .to_byte(),
        0x0F
    );
    assert_eq!(to_state(0x07).apply_to_application(locked), Ok(selectable)); // unlock by previous state
    assert!(matches!(
        to_state(0x03).apply_to_application(selectable),
        Err(CommandError::Transition { .. })
    ));
    assert!(matches!(
        to_state(0x05).apply_to_application(selectable),
        Err(CommandError::LifeCycle { .. })
    ));
    let whole = SetStatus {
        scope: Scope::SecurityDomainAndApplications(aid),
        state: 0x0F,
    };
    assert!(matches!(
        whole.apply_to_application(selectable),
        Err(CommandError::Transition { .. })
    ));

    // Security domains (GPC 2.3 §5.3.2).
    let sd = SecurityDomainLifeCycle::SELECTABLE;
    let personalized = to_state(0x0F).apply_to_security_domain(sd).unwrap();
    assert_eq!(personalized, SecurityDomainLifeCycle::PERSONALIZED);
    let sd_locked = SetStatus::lock(aid)
        .apply_to_security_domain(personalized)
        .unwrap();
    assert_eq!(sd_locked.to_byte(), 0x8F);
    assert!(
        SetStatus::lock(aid)
            .apply_to_security_domain(sd_locked)
            .is_err()
    );
    assert_eq!(
        SetStatus::unlock(aid).apply_to_security_domain(sd_locked),
        Ok(personalized)
    );
    assert!(
        SetStatus::unlock(aid)
            .apply_to_security_domain(personalized)
            .is_err()
    );
    assert!(matches!(
        to_state(0x07).apply_to_security_domain(personalized),
        Err(CommandError::Transition { .. })
    ));
    let whole_lock = SetStatus {
        scope: Scope::SecurityDomainAndApplications(aid),
        state: 0x80,
    };
    assert_eq!(
        whole_lock.apply_to_security_domain(sd).unwrap().to_byte(),
        0x87
    );
    assert!(matches!(
        whole.apply_to_security_domain(sd),
        Err(CommandError::Transition { .. })
    ));
}
