//! **Test keys and fixtures. Never use these on a real card.** Well-known values (the
//! GlobalPlatform `404142..4F` test key and friends) so that tests, examples, the fuzz target
//! and simulations agree.

use alloc::vec::Vec;

use crate::Error;
use crate::card::{IssuerData, TagAccess, key_function};
use crate::crypto::Key16;
use crate::host::{InMemoryMasterKeys, TacKeyRef};
use crate::perso::Personalization;

/// The purse AID used by tests (a PBOC-style ED/EP ADF AID).
pub const TEST_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x03, 0x33, 0x01, 0x01, 0x01];
/// The test card's ASN.
pub const TEST_ASN: [u8; 8] = [0x00, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78];
/// The test PIN `123456`.
pub const TEST_PIN: [u8; 3] = [0x12, 0x34, 0x56];
/// The DTK the test cards carry.
pub const TEST_TAC_KEY: TacKeyRef = TacKeyRef {
    index: 0x01,
    version: 0x01,
};

/// The master key of `function` and key `index` in the test issuer: `40 41 .. 4F` with the
/// first byte replaced by the function number and the second xored with `(index - 1) << 4`, away from the DES parity bit (so every
/// function and index has a different key; index 1 keeps `41`).
#[must_use]
pub fn test_master_key(function: u8, index: u8) -> Key16 {
    let mut k: [u8; 16] = core::array::from_fn(|i| 0x40 + u8::try_from(i).unwrap_or(0));
    k[0] = function;
    k[1] ^= index.wrapping_sub(1) << 4;
    Key16::new(k)
}

/// The AN10922 master key for the value-block tag of the test issuer.
#[must_use]
pub fn test_tag_master_key() -> Key16 {
    Key16::new([
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE,
        0xFF,
    ])
}

/// Tag access data of the test issuer.
///
/// # Errors
/// Never for these constants.
pub fn test_tag_access() -> Result<TagAccess, Error> {
    TagAccess::new(test_tag_master_key(), [0x30, 0x42, 0xF5], b"MEC TAG")
}

/// Every function at index 1 version 1, plus a second purchase key (index 2, version 2).
pub const TEST_KEY_SET: [(u8, u8, u8); 8] = [
    (key_function::PURCHASE, 0x01, 0x01),
    (key_function::PURCHASE, 0x02, 0x02),
    (key_function::LOAD, 0x01, 0x01),
    (key_function::TAC, 0x01, 0x01),
    (key_function::UNLOAD, 0x01, 0x01),
    (key_function::PIN_UNBLOCK, 0x01, 0x01),
    (key_function::PIN_RELOAD, 0x01, 0x01),
    (key_function::MAINTENANCE, 0x01, 0x01),
];

/// The test issuer's master key store.
#[must_use]
pub fn test_master_keys() -> InMemoryMasterKeys {
    let mut store = InMemoryMasterKeys::new();
    for (f, i, v) in TEST_KEY_SET {
        store.insert(f, i, v, &test_master_key(f, i));
    }
    store
}

/// Issuer data of the test card: valid 2020-01-01 to 2030-12-31.
#[must_use]
pub fn test_issuer() -> IssuerData {
    IssuerData {
        asn: TEST_ASN,
        issuer_id: [0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01],
        app_type: 0x03,
        app_version: 0x01,
        start_date: [0x20, 0x20, 0x01, 0x01],
        end_date: [0x20, 0x30, 0x12, 0x31],
    }
}

/// The full personalization of the test card: maximum balance 1 000 000, ED overdraft
/// 5 000, PIN 123456 with 3 tries, tag access.
///
/// # Errors
/// Never for these constants.
pub fn test_personalization() -> Result<Personalization, Error> {
    let store = test_master_keys();
    Ok(Personalization {
        issuer: test_issuer(),
        max_balance: 1_000_000,
        overdraft_limit: 5_000,
        keys: Personalization::keys_from_masters(&store, &TEST_ASN, &TEST_KEY_SET)?,
        pin: TEST_PIN.to_vec(),
        pin_try_limit: 3,
        tag: Some(test_tag_access()?),
    })
}

/// A personalized, active test purse state (personalized through its own STORE DATA path).
///
/// # Errors
/// Never for these constants.
pub fn test_purse_state() -> Result<crate::card::PurseState, Error> {
    let mut purse = crate::card::Purse::new(crate::card::PurseState::new(&TEST_AID)?);
    let entropy = crate::card::Entropy::default();
    let select = apdu_codec::Command::new(0x00, 0xA4, 0x04, 0x00).with_data(TEST_AID.to_vec());
    let mut cmds: Vec<apdu_codec::Command> = alloc::vec![select];
    cmds.extend(test_personalization()?.store_data_commands()?);
    for c in cmds {
        let bytes = c.to_vec()?;
        let r = purse.process_apdu(&bytes, &entropy);
        if r.status() != apdu_codec::StatusWord::SUCCESS {
            return Err(Error::Card(r.status()));
        }
    }
    Ok(purse.into_state())
}

/// Overwrite one purse's balance and counters (to reach edge cases such as an ATC at `FFFF`
/// in tests without running 65 535 transactions). Test-only by intent.
pub fn force_account(
    state: &mut crate::card::PurseState,
    kind: crate::pboc::PurseKind,
    account: crate::card::Account,
) {
    *state.account_mut(kind) = account;
}
