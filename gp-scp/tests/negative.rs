//! Negative tests: every tampering is rejected with the right status word, closes the
//! session and never panics. Plus the host quirks a card must accept.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use apdu_codec::{Command, LengthForm, StatusWord, parse_command, parse_response};
use gp_scp::fuzzing::{DangerSeededRng, Pair, SD_AID, Variant};
use gp_scp::keys::{KeySet, KeyType};
use gp_scp::scp02::host::{Scp02Host, Scp02HostConfig};
use gp_scp::scp03::Scp03Option;
use gp_scp::scp03::card::Scp03CardConfig;
use gp_scp::scp03::host::{Scp03Host, Scp03HostConfig};
use gp_scp::{CardChannel, CardInput, CardProtocol, CardStep, Error, SecurityLevel};

const SCP03: Variant = Variant::Scp03 {
    i: 0x70,
    key_len: 16,
};
const SCP02: Variant = Variant::Scp02(0x55);

fn sample() -> Command {
    Command::new(0x80, 0xF2, 0x40, 0x02)
        .with_data(vec![0x4F, 0x00])
        .with_le(256)
}

/// Send raw bytes to the card and return the status word it answers.
fn card_sw(pair: &mut Pair, bytes: &[u8]) -> StatusWord {
    pair.card_process(bytes).unwrap().status
}

fn all_variants() -> [(Variant, SecurityLevel); 4] {
    [
        (SCP03, SecurityLevel::ALL),
        (SCP03, SecurityLevel::C_MAC),
        (SCP02, SecurityLevel::C_DEC_C_MAC),
        (Variant::Scp11b, SecurityLevel::ALL),
    ]
}

#[test]
fn flipped_mac_bit_is_6982_and_closes() {
    for (variant, level) in all_variants() {
        let mut pair = Pair::open(variant, level, 1).unwrap();
        let mut wrapped = pair.host.wrap(&sample()).unwrap().to_vec().unwrap();
        let mac_byte = wrapped.len() - 2; // the last byte before Le
        wrapped[mac_byte] ^= 0x01;
        assert_eq!(
            card_sw(&mut pair, &wrapped),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            "{variant:?}"
        );
        assert!(!pair.card.is_open(), "{variant:?}");
        // The next correctly wrapped command is refused too: the session is gone.
        let next = pair.host.wrap(&sample()).unwrap().to_vec().unwrap();
        assert_eq!(
            card_sw(&mut pair, &next),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED
        );
    }
}

#[test]
fn flipped_data_bit_is_6982() {
    for (variant, level) in all_variants() {
        let mut pair = Pair::open(variant, level, 2).unwrap();
        let mut wrapped = pair.host.wrap(&sample()).unwrap().to_vec().unwrap();
        wrapped[5] ^= 0x80;
        assert_eq!(
            card_sw(&mut pair, &wrapped),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            "{variant:?}"
        );
        assert!(!pair.card.is_open());
    }
}

#[test]
fn replayed_command_is_6982() {
    for (variant, level) in all_variants() {
        let mut pair = Pair::open(variant, level, 3).unwrap();
        let wrapped = pair.host.wrap(&sample()).unwrap().to_vec().unwrap();
        assert_eq!(
            card_sw(&mut pair, &wrapped),
            StatusWord::SUCCESS,
            "{variant:?}"
        );
        assert_eq!(
            card_sw(&mut pair, &wrapped),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            "{variant:?}"
        );
        assert!(!pair.card.is_open());
    }
}

#[test]
fn skipped_command_is_6982() {
    for (variant, level) in all_variants() {
        let mut pair = Pair::open(variant, level, 4).unwrap();
        let _lost = pair.host.wrap(&sample()).unwrap();
        let second = pair.host.wrap(&sample()).unwrap().to_vec().unwrap();
        assert_eq!(
            card_sw(&mut pair, &second),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED,
            "{variant:?}"
        );
        assert!(!pair.card.is_open());
    }
}

#[test]
fn unprotected_command_in_session_is_6982() {
    let mut pair = Pair::open(SCP03, SecurityLevel::C_MAC, 5).unwrap();
    let plain = sample().to_vec().unwrap();
    assert_eq!(
        card_sw(&mut pair, &plain),
        StatusWord::SECURITY_STATUS_NOT_SATISFIED
    );
    assert!(!pair.card.is_open());
}

#[test]
fn truncated_mac_is_6982() {
    for (variant, level) in all_variants() {
        let mut pair = Pair::open(variant, level, 6).unwrap();
        let mut cmd = pair
            .host
            .wrap(&Command::new(0x80, 0xCA, 0x00, 0x66))
            .unwrap();
        cmd.data.truncate(4);
        assert_eq!(
            card_sw(&mut pair, &cmd.to_vec().unwrap()),
            StatusWord::SECURITY_STATUS_NOT_SATISFIED
        );
        assert!(!pair.card.is_open());
    }
}

#[test]
fn forged_response_mac_is_rejected_and_closes_host() {
    for (variant, level) in [
        (SCP03, SecurityLevel::ALL),
        (SCP03, SecurityLevel::C_MAC_R_MAC),
        (Variant::Scp11b, SecurityLevel::ALL),
        (SCP02, SecurityLevel::C_MAC_R_MAC),
    ] {
        let mut pair = Pair::open(variant, level, 7).unwrap();
        let wrapped = pair.host.wrap(&sample()).unwrap().to_vec().unwrap();
        let mut resp = pair.card_process(&wrapped).unwrap().to_vec();
        let n = resp.len();
        resp[n - 3] ^= 0x01;
        let err = pair
            .host
            .unwrap(&parse_response(&resp).unwrap())
            .unwrap_err();
        assert_eq!(err, Error::ResponseMac, "{variant:?}");
        assert!(!pair.host.is_open());
        assert_eq!(pair.host.wrap(&sample()).unwrap_err(), Error::NoSession);
        // A response without any R-MAC is refused as well.
        let mut pair = Pair::open(variant, level, 8).unwrap();
        let _ = pair.host.wrap(&sample()).unwrap();
        assert_eq!(
            pair.host
                .unwrap(&parse_response(&[0x90, 0x00]).unwrap())
                .unwrap_err(),
            Error::ResponseMac
        );
    }
}

/// A C-DEC body whose decrypted padding is wrong (MAC valid: built by hand with the host's
/// own keys is impossible from outside, so flip ciphertext so that the MAC fails first) and a
/// body that is not a whole number of blocks: both 6982.
#[test]
fn bad_padding_is_6982() {
    let mut pair = Pair::open(SCP03, SecurityLevel::C_DEC_C_MAC, 9).unwrap();
    let mut cmd = pair.host.wrap(&sample()).unwrap();
    // Remove 3 ciphertext bytes (no longer whole blocks).
    cmd.data.drain(0..3);
    assert_eq!(
        card_sw(&mut pair, &cmd.to_vec().unwrap()),
        StatusWord::SECURITY_STATUS_NOT_SATISFIED
    );
    assert!(!pair.card.is_open());

    let mut pair = Pair::open(SCP02, SecurityLevel::C_DEC_C_MAC, 9).unwrap();
    let mut cmd = pair.host.wrap(&sample()).unwrap();
    cmd.data.drain(0..3);
    assert_eq!(
        card_sw(&mut pair, &cmd.to_vec().unwrap()),
        StatusWord::SECURITY_STATUS_NOT_SATISFIED
    );
    assert!(!pair.card.is_open());
}

fn scp03_card() -> (CardChannel, Vec<KeySet>) {
    let keys = vec![KeySet::single(0x30, KeyType::Aes, &[0x40; 16]).unwrap()];
    let card = CardChannel::new(CardProtocol::Scp03(Scp03CardConfig {
        option: Scp03Option::I70,
        sd_aid: SD_AID.to_vec(),
    }));
    (card, keys)
}

fn respond(
    card: &mut CardChannel,
    keys: &[KeySet],
    rng: &mut DangerSeededRng,
    bytes: &[u8],
) -> apdu_codec::Response {
    let view = parse_command(bytes).unwrap();
    match card.process(
        &view,
        CardInput {
            key_sets: keys,
            counter: 5,
            kdd: [0; 10],
            rng,
        },
    ) {
        CardStep::Respond { response, .. } => response,
        CardStep::Process(c) => panic!("unexpected pass-through {c:?}"),
    }
}

#[test]
fn wrong_key_version_is_6a88_and_host_error_says_what_was_tried() {
    let (mut card, keys) = scp03_card();
    let mut rng = DangerSeededRng::new(1);
    let host_keys = KeySet::single(0x31, KeyType::Aes, &[0x40; 16]).unwrap();
    let host = Scp03Host::new(
        host_keys,
        Scp03HostConfig {
            key_version: 0x31,
            ..Default::default()
        },
        &[1; 8],
    )
    .unwrap();
    let r = respond(
        &mut card,
        &keys,
        &mut rng,
        &host.initialize_update().to_vec().unwrap(),
    );
    assert_eq!(r.status, StatusWord::REFERENCED_DATA_NOT_FOUND);

    // Right version, wrong keys: the host names key version, KCVs and diversification.
    let wrong = KeySet::single(0x30, KeyType::Aes, &[0x41; 16]).unwrap();
    let host = Scp03Host::new(
        wrong,
        Scp03HostConfig {
            key_version: 0x30,
            ..Default::default()
        },
        &[1; 8],
    )
    .unwrap();
    let r = respond(
        &mut card,
        &keys,
        &mut rng,
        &host.initialize_update().to_vec().unwrap(),
    );
    let err = host.process_initialize_update(&r.view()).unwrap_err();
    let Error::CardCryptogram(info) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(info.key_version, 0x30);
    let msg = err.to_string();
    assert!(msg.contains("key version 30"), "{msg}");
    assert!(msg.contains("KCV"), "{msg}");
    assert!(msg.contains("diversification none"), "{msg}");
}

#[test]
fn truncated_cryptogram_is_6700_and_bad_mac_6982() {
    let (mut card, keys) = scp03_card();
    let mut rng = DangerSeededRng::new(2);
    let host_keys = keys[0].clone();
    let host = Scp03Host::new(
        host_keys,
        Scp03HostConfig {
            level: SecurityLevel::C_MAC,
            ..Default::default()
        },
        &[2; 8],
    )
    .unwrap();
    let r = respond(
        &mut card,
        &keys,
        &mut rng,
        &host.initialize_update().to_vec().unwrap(),
    );
    let pending = host.process_initialize_update(&r.view()).unwrap();
    let ea = pending.external_authenticate().clone();

    // Truncated cryptogram: 6700, no session.
    let mut short = ea.clone();
    short.data.truncate(12);
    let r2 = respond(&mut card, &keys, &mut rng, &short.to_vec().unwrap());
    assert_eq!(r2.status, StatusWord::WRONG_LENGTH);
    assert!(!card.is_open());

    // A fresh handshake with a corrupted MAC: 6982; corrupted cryptogram with a valid MAC
    // cannot be built from outside, so check the card's own cryptogram check via SCP02 below.
    let host = Scp03Host::new(
        keys[0].clone(),
        Scp03HostConfig {
            level: SecurityLevel::C_MAC,
            ..Default::default()
        },
        &[3; 8],
    )
    .unwrap();
    let r = respond(
        &mut card,
        &keys,
        &mut rng,
        &host.initialize_update().to_vec().unwrap(),
    );
    let pending = host.process_initialize_update(&r.view()).unwrap();
    let mut ea = pending.external_authenticate().clone();
    ea.data[0] ^= 1;
    let r3 = respond(&mut card, &keys, &mut rng, &ea.to_vec().unwrap());
    assert_eq!(r3.status, StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    assert!(!card.is_open());

    // EXTERNAL AUTHENTICATE out of sequence: 6985.
    let r4 = respond(&mut card, &keys, &mut rng, &ea.to_vec().unwrap());
    assert_eq!(r4.status, StatusWord::CONDITIONS_NOT_SATISFIED);
}

/// What real hosts send: INITIALIZE UPDATE with no Le, Le 00 and Le 28; EXTERNAL
/// AUTHENTICATE with Le 00; an empty C-DEC body as nothing or as one encrypted padding block.
#[test]
fn host_quirks_are_accepted() {
    for le in [None, Some(256), Some(0x28)] {
        let (mut card, keys) = scp03_card();
        let mut rng = DangerSeededRng::new(3);
        let host = Scp03Host::new(
            keys[0].clone(),
            Scp03HostConfig {
                level: SecurityLevel::ALL,
                ..Default::default()
            },
            &[4; 8],
        )
        .unwrap();
        let mut init = host.initialize_update();
        init.le = le;
        let r = respond(&mut card, &keys, &mut rng, &init.to_vec().unwrap());
        assert_eq!(r.status, StatusWord::SUCCESS, "Le {le:?}");
        let pending = host.process_initialize_update(&r.view()).unwrap();
        let mut ea = pending.external_authenticate().clone();
        ea.le = Some(256);
        let r = respond(&mut card, &keys, &mut rng, &ea.to_vec().unwrap());
        assert_eq!(r.status, StatusWord::SUCCESS);
        assert!(card.is_open());
    }
}

#[test]
fn empty_cdec_body_as_padding_block_is_accepted() {
    // Build the "one encrypted padding block" form by wrapping a command whose plain data is
    // empty on a host that pads: emulate with the AES primitives from the session keys is not
    // possible from outside, so use the SCP03 vector keys through the public derive function.
    use gp_scp::crypto::AesCipher;
    use gp_scp::scp03::card::answer_initialize_update;
    let keys = KeySet::single(0x30, KeyType::Aes, &[0x40; 16]).unwrap();
    let host_challenge = [9u8; 8];
    let card_challenge = [7u8; 8];
    let init = Command::new(0x80, 0x50, 0x30, 0x00).with_data(host_challenge.to_vec());
    let init_bytes = init.to_vec().unwrap();
    let (_, pending) = answer_initialize_update(
        &parse_command(&init_bytes).unwrap(),
        &keys,
        Scp03Option::I70,
        &card_challenge,
        Some([0, 0, 1]),
        [0; 10],
    )
    .unwrap();
    let mut ctx = host_challenge.to_vec();
    ctx.extend_from_slice(&card_challenge);
    let [s_enc, s_mac, ..] = gp_scp::scp03::derive_raw(&keys, &ctx, 8).unwrap();
    let host = Scp03Host::new(
        keys.clone(),
        Scp03HostConfig {
            key_version: 0x30,
            level: SecurityLevel::C_DEC_C_MAC,
            ..Default::default()
        },
        &host_challenge,
    )
    .unwrap();
    let mut resp = pending_response(&keys, &host_challenge, &card_challenge);
    resp.extend_from_slice(&[0x90, 0x00]);
    let host_pending = host
        .process_initialize_update(&parse_response(&resp).unwrap())
        .unwrap();
    let ea = host_pending.external_authenticate().to_vec().unwrap();
    let (_, mut card) = pending
        .external_authenticate(&parse_command(&ea).unwrap())
        .unwrap();
    // chain = C-MAC of EXTERNAL AUTHENTICATE (last 8 bytes are its first half; recompute fully).
    let mac = AesCipher::new(&s_mac).unwrap();
    let chain0 = mac.cmac(&[&[0u8; 16], &ea[..5], &ea[5..13]]);
    // Counter 1: ICV = AES(S-ENC, 00..01); body = AES-CBC(ICV, 80 00..00).
    let enc = AesCipher::new(&s_enc).unwrap();
    let mut icv = [0u8; 16];
    icv[15] = 1;
    enc.encrypt_block(&mut icv);
    let mut block = [0u8; 16];
    block[0] = 0x80;
    enc.cbc_encrypt(&icv, &mut block);
    let header = [0x84, 0xCA, 0x00, 0x66, 24];
    let tag = mac.cmac(&[&chain0, &header, &block]);
    let mut cmd = header.to_vec();
    cmd.extend_from_slice(&block);
    cmd.extend_from_slice(&tag[..8]);
    let plain = card.unwrap(&parse_command(&cmd).unwrap()).unwrap();
    assert!(plain.data.is_empty());
    assert_eq!(plain.cla, 0x80);
}

fn pending_response(keys: &KeySet, hc: &[u8; 8], cc: &[u8; 8]) -> Vec<u8> {
    use gp_scp::scp03::card::answer_initialize_update;
    let init = Command::new(0x80, 0x50, 0x30, 0x00)
        .with_data(hc.to_vec())
        .to_vec()
        .unwrap();
    let (r, _) = answer_initialize_update(
        &parse_command(&init).unwrap(),
        keys,
        Scp03Option::I70,
        cc,
        Some([0, 0, 1]),
        [0; 10],
    )
    .unwrap();
    r.data
}

#[test]
fn scp02_wrong_keys_error_and_diversification_hint() {
    let mut rng = DangerSeededRng::new(4);
    let card_keys = vec![KeySet::single(0x20, KeyType::Des, &[0x40; 16]).unwrap()];
    let mut card = CardChannel::new(CardProtocol::Scp02(gp_scp::scp02::card::Scp02CardConfig {
        option: gp_scp::scp02::Scp02Option::I55,
        sd_aid: SD_AID.to_vec(),
    }));
    let host = Scp02Host::new(
        KeySet::single(0x20, KeyType::Des, &[0x42; 16]).unwrap(),
        Scp02HostConfig::default(),
        [1; 8],
    )
    .unwrap();
    let view = parse_command(&host.initialize_update().to_vec().unwrap())
        .unwrap()
        .to_command()
        .to_vec()
        .unwrap();
    let step = card.process(
        &parse_command(&view).unwrap(),
        CardInput {
            key_sets: &card_keys,
            counter: 9,
            kdd: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            rng: &mut rng,
        },
    );
    let CardStep::Respond {
        response,
        counter_used,
    } = step
    else {
        panic!()
    };
    assert_eq!(counter_used, Some(9));
    let err = host
        .process_initialize_update(&response.view())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("SCP02") && msg.contains("EMV, VISA2 or KDF3"),
        "{msg}"
    );
}

#[test]
fn scp11_untrusted_key_and_forged_receipt() {
    use gp_scp::scp11::card::Scp11CardKeys;
    use gp_scp::scp11::host::{Scp11HostConfig, Scp11bHost};
    let mut rng = DangerSeededRng::new(5);
    let card_keys = Scp11CardKeys::from_scalar(1, 0x13, &[7u8; 32], vec![]).unwrap();
    let other = Scp11CardKeys::from_scalar(1, 0x13, &[8u8; 32], vec![]).unwrap();
    let config = Scp11HostConfig {
        key_version: 1,
        key_id: 0x13,
        card_key: card_keys.public_key(),
    };
    assert_eq!(
        Scp11bHost::new(config.clone(), &[other.public_key()], &mut rng).unwrap_err(),
        Error::UntrustedCardKey
    );

    let host = Scp11bHost::new(config.clone(), &[card_keys.public_key()], &mut rng).unwrap();
    let cmd = host.internal_authenticate().to_vec().unwrap();
    let (resp, _) = gp_scp::scp11::card::internal_authenticate(
        &parse_command(&cmd).unwrap(),
        &card_keys,
        &mut rng,
    )
    .unwrap();
    let mut bytes = resp.to_vec();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    assert_eq!(
        host.process_internal_authenticate(&parse_response(&bytes).unwrap())
            .unwrap_err(),
        Error::Receipt
    );

    // A card answering with another static key (impostor) fails the receipt too.
    let host = Scp11bHost::new(config, &[card_keys.public_key()], &mut rng).unwrap();
    let cmd = host.internal_authenticate().to_vec().unwrap();
    let (resp, _) =
        gp_scp::scp11::card::internal_authenticate(&parse_command(&cmd).unwrap(), &other, &mut rng)
            .unwrap();
    assert_eq!(
        host.process_internal_authenticate(&resp.view())
            .unwrap_err(),
        Error::Receipt
    );

    // Malformed INTERNAL AUTHENTICATE data: rejected, no panic.
    let bad = Command::new(0x80, 0x88, 0x01, 0x13)
        .with_data(vec![0xA6, 0x03, 0x90, 0x01, 0x11])
        .to_vec()
        .unwrap();
    assert!(
        gp_scp::scp11::card::internal_authenticate(
            &parse_command(&bad).unwrap(),
            &card_keys,
            &mut rng
        )
        .is_err()
    );
}

#[test]
fn extended_form_request_is_kept() {
    let mut pair = Pair::open(SCP03, SecurityLevel::ALL, 12).unwrap();
    let cmd = Command::new(0x80, 0xE2, 0x00, 0x00)
        .with_data(vec![1, 2, 3])
        .with_form(LengthForm::Extended);
    let wrapped = pair.host.wrap(&cmd).unwrap();
    assert_eq!(wrapped.form, LengthForm::Extended);
    let bytes = wrapped.to_vec().unwrap();
    assert_eq!(&bytes[4..7], &[0x00, 0x00, 3 + 13 + 8]);
    let r = pair.card_process(&bytes).unwrap();
    assert_eq!(r.status, StatusWord::SUCCESS);
}

#[test]
fn wrong_host_cryptogram_with_valid_mac_is_6300() {
    use gp_scp::crypto::AesCipher;
    use gp_scp::scp03::card::answer_initialize_update;
    let keys = KeySet::single(0x30, KeyType::Aes, &[0x40; 16]).unwrap();
    let (hc, cc) = ([5u8; 8], [6u8; 8]);
    let init = Command::new(0x80, 0x50, 0x30, 0x00)
        .with_data(hc.to_vec())
        .to_vec()
        .unwrap();
    let (_, pending) = answer_initialize_update(
        &parse_command(&init).unwrap(),
        &keys,
        Scp03Option::I70,
        &cc,
        Some([0, 0, 1]),
        [0; 10],
    )
    .unwrap();
    let mut ctx = hc.to_vec();
    ctx.extend_from_slice(&cc);
    let [_, s_mac, _, _, host_cryptogram] = gp_scp::scp03::derive_raw(&keys, &ctx, 8).unwrap();
    let mut wrong = host_cryptogram.clone();
    wrong[0] ^= 1;
    let header = [0x84, 0x82, 0x01, 0x00, 0x10];
    let tag = AesCipher::new(&s_mac)
        .unwrap()
        .cmac(&[&[0u8; 16], &header, &wrong]);
    let mut ea = header.to_vec();
    ea.extend_from_slice(&wrong);
    ea.extend_from_slice(&tag[..8]);
    let err = pending
        .external_authenticate(&parse_command(&ea).unwrap())
        .unwrap_err();
    assert_eq!(err, Error::HostCryptogram);
    assert_eq!(err.status_word(), StatusWord::WARNING_CHANGED);
}

#[test]
fn put_key_round_trip_and_kcv_check() {
    use gp_scp::keys::SecretKey;
    use gp_scp::put_key::{encode_put_key_data, parse_put_key_data};
    let dek_des = [0x11u8; 16];
    let k1 = SecretKey::new(&gp_scp::keys::danger_test_keys::K40);
    let k2 = SecretKey::new(&[0x41; 16]);
    let data = encode_put_key_data(
        0x21,
        &[(KeyType::Des, &k1), (KeyType::Des, &k2)],
        &dek_des,
        KeyType::Des,
    )
    .unwrap();
    assert_eq!(data.len(), 1 + 2 * (2 + 16 + 4));
    // GPC 2.3 B.6: KCV of 404142...4F as a DES key is 8BAF47.
    assert_eq!(&data[19..23], &[0x03, 0x8B, 0xAF, 0x47]);
    let parsed = parse_put_key_data(&data, &dek_des, KeyType::Des).unwrap();
    assert_eq!(parsed.new_version, 0x21);
    assert_eq!(parsed.keys[0].key, k1);
    assert_eq!(parsed.keys[1].key, k2);

    for len in [16usize, 24, 32] {
        let dek = [0x22u8; 16];
        let key = SecretKey::new(&vec![0x33; len]);
        let data = encode_put_key_data(0x31, &[(KeyType::Aes, &key)], &dek, KeyType::Aes).unwrap();
        assert_eq!(data[1], 0x88);
        assert_eq!(usize::from(data[3]), len);
        let parsed = parse_put_key_data(&data, &dek, KeyType::Aes).unwrap();
        assert_eq!(parsed.keys[0].key, key);
        let mut bad = data.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(
            parse_put_key_data(&bad, &dek, KeyType::Aes).unwrap_err(),
            Error::KcvMismatch
        );
        assert!(parse_put_key_data(&data[..n - 2], &dek, KeyType::Aes).is_err());
    }
    // Type mismatch between key and DEK.
    assert!(encode_put_key_data(1, &[(KeyType::Aes, &k1)], &dek_des, KeyType::Des).is_err());
}

/// yubikit (yubikey-manager `ScpProcessor`) sends EXTERNAL AUTHENTICATE and every later
/// command in extended form, with the C-MAC computed over the extended header
/// (`84 82 33 00 00 00 10 ..`); the card must accept it.
#[test]
fn yubikit_style_extended_external_authenticate() {
    use gp_scp::crypto::AesCipher;
    let (mut card, keys) = scp03_card();
    let mut rng = DangerSeededRng::new(21);
    let hc = [0x31u8; 8];
    // INITIALIZE UPDATE without Le, as yubikit sends it.
    let init = Command::new(0x80, 0x50, 0x30, 0x00).with_data(hc.to_vec());
    let r = respond(&mut card, &keys, &mut rng, &init.to_vec().unwrap());
    assert_eq!(r.status, StatusWord::SUCCESS);
    let iu = gp_scp::scp03::parse_initialize_update_response(&r.data).unwrap();
    let mut ctx = hc.to_vec();
    ctx.extend_from_slice(iu.card_challenge());
    let [_, s_mac, _, card_cryptogram, host_cryptogram] =
        gp_scp::scp03::derive_raw(&keys[0], &ctx, 8).unwrap();
    assert_eq!(card_cryptogram, iu.card_cryptogram());
    let header = [0x84, 0x82, 0x33, 0x00, 0x00, 0x00, 0x10];
    let tag = AesCipher::new(&s_mac)
        .unwrap()
        .cmac(&[&[0u8; 16], &header, &host_cryptogram]);
    let mut ea = header.to_vec();
    ea.extend_from_slice(&host_cryptogram);
    ea.extend_from_slice(&tag[..8]);
    let r = respond(&mut card, &keys, &mut rng, &ea);
    assert_eq!(r.status, StatusWord::SUCCESS);
    assert_eq!(card.level(), Some(SecurityLevel::ALL));
}

/// yubikit's PUT KEY layout (`88 10 <encrypted key>`, no key-length byte) decodes too.
#[test]
fn put_key_yubikit_layout() {
    use gp_scp::keys::SecretKey;
    use gp_scp::put_key::{AesKeyFormat, encode_put_key_data_as, parse_put_key_data};
    let dek = [0x22u8; 16];
    let k = SecretKey::new(&[0x44; 16]);
    let data = encode_put_key_data_as(
        AesKeyFormat::Bare,
        0x02,
        &[(KeyType::Aes, &k), (KeyType::Aes, &k), (KeyType::Aes, &k)],
        &dek,
        KeyType::Aes,
    )
    .unwrap();
    assert_eq!(&data[1..3], &[0x88, 0x10]);
    let parsed = parse_put_key_data(&data, &dek, KeyType::Aes).unwrap();
    assert_eq!(parsed.aes_format, AesKeyFormat::Bare);
    assert_eq!(parsed.keys.len(), 3);
    assert_eq!(parsed.keys[2].key, k);
}

/// SK.SD loads from PKCS#8 DER (RFC 5208 / RFC 5915 layout, built here by hand), and the
/// SD public key is found in a GlobalPlatform certificate (7F21 { 7F49 { B0 Q } }) and in an
/// X.509 SubjectPublicKeyInfo.
#[test]
fn scp11_keys_from_pkcs8_and_certificates() {
    use gp_scp::scp11::card::Scp11CardKeys;
    use gp_scp::scp11::public_key_from_certificate;
    let scalar = [0x3Cu8; 32];
    let mut der = vec![0x30, 0x41, 0x02, 0x01, 0x00, 0x30, 0x13];
    der.extend_from_slice(&[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]); // id-ecPublicKey
    der.extend_from_slice(&[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]); // prime256v1
    der.extend_from_slice(&[0x04, 0x27, 0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20]);
    der.extend_from_slice(&scalar);
    let from_der = Scp11CardKeys::from_pkcs8_der(1, 0x13, &der, vec![vec![0xAA]]).unwrap();
    let from_scalar = Scp11CardKeys::from_scalar(1, 0x13, &scalar, vec![]).unwrap();
    assert_eq!(from_der.public_key(), from_scalar.public_key());
    assert_eq!(from_der.certificates(), &[vec![0xAA]]);
    assert!(Scp11CardKeys::from_pkcs8_der(1, 0x13, &der[..20], vec![]).is_err());

    let q = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&from_der.public_key(), false);
    let q = q.as_bytes();
    let mut gp = vec![
        0x7F, 0x21, 0x4C, 0x93, 0x01, 0x01, 0x7F, 0x49, 0x46, 0xB0, 0x41,
    ];
    gp.extend_from_slice(q);
    gp.extend_from_slice(&[0xF0, 0x01, 0x00]);
    assert_eq!(
        public_key_from_certificate(&gp).unwrap(),
        from_der.public_key()
    );
    let mut x509 = vec![
        0x30, 0x82, 0x01, 0x00, 0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D,
        0x02, 0x01,
    ];
    x509.extend_from_slice(&[
        0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ]);
    x509.extend_from_slice(q);
    assert_eq!(
        public_key_from_certificate(&x509).unwrap(),
        from_der.public_key()
    );
    assert!(public_key_from_certificate(&x509[..60]).is_err());
    let mut bad = gp.clone();
    bad[12] ^= 0x01; // no longer on the curve
    assert!(public_key_from_certificate(&bad).is_err());
}
