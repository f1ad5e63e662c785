//! Published secure channel sessions replayed against the TEST ONLY profiles with a fixed
//! card challenge (`profiles/kaoh-scp02.toml`, `profiles/samsung-scp03.toml`): the card's
//! INITIALIZE UPDATE answer equals the recorded one byte for byte, and the recorded
//! EXTERNAL AUTHENTICATE and first wrapped command are accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod card_support;

use card_support::*;
use virtual_se::profile::Profile;
use virtual_se::store::MemoryStore;

/// One recorded session: profile, SELECT of the ISD, INITIALIZE UPDATE, its response (data
/// and status word), EXTERNAL AUTHENTICATE, and the first wrapped command.
struct Vector {
    source: &'static str,
    profile: &'static str,
    select: &'static str,
    initialize_update: &'static str,
    response: &'static str,
    external_authenticate: &'static str,
    wrapped: &'static str,
}

const VECTORS: &[Vector] = &[
    Vector {
        // vectors/scp02.toml: kaoh/globalplatform src/scp02Test.c get_status_mac_only
        // (lines 53-115), i=15, C-MAC.
        source: "kaoh/globalplatform scp02Test.c",
        profile: "kaoh-scp02.toml",
        select: "00A4040008A000000003000000",
        initialize_update: "8050000008D5AD539A60CA5E7200",
        response: "000074746E6E6E626262 0102 069F AA2A0591E733 67DD78794D04315E 9000",
        external_authenticate: "84820100107C799B3C771DBAE6BEF49310977617BA",
        wrapped: "84F220020A4F00BB6E71C0EFCFCF0D00",
    },
    Vector {
        // vectors/scp03.toml: Samsung/OpenSCP-Java InputTestData.java and
        // SmartCardScp03Aes128S8ModeEmulation.java, AES-128, S8, security level 33.
        source: "Samsung/OpenSCP-Java AES-128 S8",
        profile: "samsung-scp03.toml",
        select: "00A4040008A000000151000000",
        initialize_update: "805030000806F85B77251BF79400",
        response: "A1A012430585513120853003709CE033FA78E6B10DDC2DBE8974C8B0DE00082A9000",
        external_authenticate: "8482330010B08D6CE26B6CB3CCB411CF0296EB7B1D",
        wrapped: "84F22000185230BA64388B4A40E0B4DA5CC1DF51C285E4020D99D5AED1",
    },
];

fn vector_card(v: &Vector) -> virtual_se::card::Card<MemoryStore> {
    card_with(
        Profile::from_file(&profile_path(v.profile)).unwrap(),
        MemoryStore::new(),
    )
}

#[test]
fn initialize_update_answers_the_recorded_response() {
    for v in VECTORS {
        // Twice, on fresh cards: the answer does not depend on the card's RNG.
        for _ in 0..2 {
            let mut card = vector_card(v);
            ok(sw(&mut card, v.select));
            let r = card.transmit(&h(v.initialize_update));
            assert_eq!(r, h(v.response), "{}", v.source);
        }
    }
}

#[test]
fn recorded_external_authenticate_and_wrapped_command_are_accepted() {
    for v in VECTORS {
        let mut card = vector_card(v);
        ok(sw(&mut card, v.select));
        let (_, s) = send(&mut card, &h(v.initialize_update));
        ok(s);
        assert_eq!(
            sw(&mut card, v.external_authenticate),
            0x9000,
            "{}",
            v.source
        );
        // The wrapped GET STATUS passes the C-MAC (and C-DECRYPTION) check: a 9000 or a
        // "nothing found" 6A88, never 6982 (security status) or 6988 (SM data objects).
        let r = card.transmit(&h(v.wrapped));
        let status = u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]]);
        assert!(
            status == 0x9000 || status == 0x6A88,
            "{}: wrapped command answered {status:04X}",
            v.source
        );
    }
}

#[test]
fn a_tampered_external_authenticate_is_refused_with_a_fixed_challenge() {
    for v in VECTORS {
        let mut card = vector_card(v);
        ok(sw(&mut card, v.select));
        let (_, s) = send(&mut card, &h(v.initialize_update));
        ok(s);
        let mut ea = h(v.external_authenticate);
        ea[7] ^= 0x01;
        // The altered host cryptogram no longer matches the command's C-MAC: a secure
        // messaging failure, 6982 (GPC 2.3 §10.8, Amd D §6.2.4).
        assert_eq!(send(&mut card, &ea).1, 0x6982, "{}", v.source);
    }
}
