//! Instruction names defined by ISO/IEC 7816-4, GlobalPlatform and the PBOC electronic purse.
//!
//! [`name`] is what a trace decoder prints; card code matches on the constants. ISO/IEC 7816-4
//! lists the interindustry codes in its table of commands; the GlobalPlatform sections are those
//! of Card Specification 2.3 chapter 11.

/// ISO/IEC 7816-4 SELECT.
pub const SELECT: u8 = 0xA4;
/// ISO/IEC 7816-4 MANAGE CHANNEL.
pub const MANAGE_CHANNEL: u8 = 0x70;
/// ISO/IEC 7816-4 READ BINARY.
pub const READ_BINARY: u8 = 0xB0;
/// ISO/IEC 7816-4 UPDATE BINARY.
pub const UPDATE_BINARY: u8 = 0xD6;
/// ISO/IEC 7816-4 READ RECORD.
pub const READ_RECORD: u8 = 0xB2;
/// ISO/IEC 7816-4 UPDATE RECORD.
pub const UPDATE_RECORD: u8 = 0xDC;
/// ISO/IEC 7816-4 APPEND RECORD.
pub const APPEND_RECORD: u8 = 0xE2;
/// ISO/IEC 7816-4 VERIFY.
pub const VERIFY: u8 = 0x20;
/// ISO/IEC 7816-4 CHANGE REFERENCE DATA.
pub const CHANGE_REFERENCE_DATA: u8 = 0x24;
/// ISO/IEC 7816-4 RESET RETRY COUNTER.
pub const RESET_RETRY_COUNTER: u8 = 0x2C;
/// ISO/IEC 7816-4 INTERNAL AUTHENTICATE (GP SCP11: `80 88`).
pub const INTERNAL_AUTHENTICATE: u8 = 0x88;
/// ISO/IEC 7816-4 EXTERNAL AUTHENTICATE (GP: `84 82`).
pub const EXTERNAL_AUTHENTICATE: u8 = 0x82;
/// ISO/IEC 7816-4 GET CHALLENGE.
pub const GET_CHALLENGE: u8 = 0x84;
/// ISO/IEC 7816-4 GET RESPONSE.
pub const GET_RESPONSE: u8 = 0xC0;
/// ISO/IEC 7816-4 GET DATA (GP: `80 CA`).
pub const GET_DATA: u8 = 0xCA;
/// ISO/IEC 7816-4 PUT DATA.
pub const PUT_DATA: u8 = 0xDA;
/// GlobalPlatform INITIALIZE UPDATE (`80 50`, SCP02 and SCP03); PBOC INITIALIZE FOR
/// LOAD/PURCHASE shares the code.
pub const INITIALIZE_UPDATE: u8 = 0x50;
/// GPC 2.3 §11.4 GET STATUS.
pub const GET_STATUS: u8 = 0xF2;
/// GPC 2.3 §11.5 INSTALL.
pub const INSTALL: u8 = 0xE6;
/// GPC 2.3 §11.6 LOAD.
pub const LOAD: u8 = 0xE8;
/// GPC 2.3 §11.2 DELETE.
pub const DELETE: u8 = 0xE4;
/// GPC 2.3 §11.8 PUT KEY.
pub const PUT_KEY: u8 = 0xD8;
/// GPC 2.3 §11.10 SET STATUS.
pub const SET_STATUS: u8 = 0xF0;
/// GPC 2.3 §11.11 STORE DATA.
pub const STORE_DATA: u8 = 0xE2;
/// GP Amendment F PERFORM SECURITY OPERATION.
pub const PERFORM_SECURITY_OPERATION: u8 = 0x2A;
/// PBOC CREDIT FOR LOAD.
pub const CREDIT_FOR_LOAD: u8 = 0x52;
/// PBOC DEBIT FOR PURCHASE / DEBIT FOR UNLOAD.
pub const DEBIT_FOR_PURCHASE: u8 = 0x54;
/// PBOC GET BALANCE.
pub const GET_BALANCE: u8 = 0x5C;
/// PBOC GET TRANSACTION PROVE.
pub const GET_TRANSACTION_PROVE: u8 = 0x5A;

/// The name of an instruction for the given class, or `None` when neither ISO/IEC 7816-4 nor
/// GlobalPlatform nor the PBOC purse defines it. Interindustry (CLA bit `80` clear) and
/// proprietary classes are looked up separately where the meanings differ (`E2` is APPEND
/// RECORD in ISO and STORE DATA in GlobalPlatform; `50` is INITIALIZE UPDATE in GP and
/// INITIALIZE FOR LOAD/PURCHASE in a PBOC purse, which shares the name here).
///
/// ```
/// assert_eq!(apdu_codec::ins::name(0x80, 0xE2), Some("STORE DATA"));
/// assert_eq!(apdu_codec::ins::name(0x00, 0xE2), Some("APPEND RECORD"));
/// assert_eq!(apdu_codec::ins::name(0x00, 0x01), None);
/// ```
#[must_use]
pub fn name(cla: u8, ins: u8) -> Option<&'static str> {
    let proprietary = cla & 0x80 != 0;
    let common = match ins {
        SELECT => "SELECT",
        MANAGE_CHANNEL => "MANAGE CHANNEL",
        READ_BINARY => "READ BINARY",
        UPDATE_BINARY => "UPDATE BINARY",
        READ_RECORD => "READ RECORD",
        UPDATE_RECORD => "UPDATE RECORD",
        VERIFY => "VERIFY",
        CHANGE_REFERENCE_DATA => "CHANGE REFERENCE DATA",
        RESET_RETRY_COUNTER => "RESET RETRY COUNTER",
        INTERNAL_AUTHENTICATE => "INTERNAL AUTHENTICATE",
        EXTERNAL_AUTHENTICATE => "EXTERNAL AUTHENTICATE",
        GET_CHALLENGE => "GET CHALLENGE",
        GET_RESPONSE => "GET RESPONSE",
        GET_DATA => "GET DATA",
        PUT_DATA => "PUT DATA",
        _ => "",
    };
    if !common.is_empty() {
        return Some(common);
    }
    let specific = if proprietary {
        match ins {
            INITIALIZE_UPDATE => "INITIALIZE UPDATE",
            GET_STATUS => "GET STATUS",
            INSTALL => "INSTALL",
            LOAD => "LOAD",
            DELETE => "DELETE",
            PUT_KEY => "PUT KEY",
            SET_STATUS => "SET STATUS",
            STORE_DATA => "STORE DATA",
            PERFORM_SECURITY_OPERATION => "PERFORM SECURITY OPERATION",
            CREDIT_FOR_LOAD => "CREDIT FOR LOAD",
            DEBIT_FOR_PURCHASE => "DEBIT FOR PURCHASE",
            GET_BALANCE => "GET BALANCE",
            GET_TRANSACTION_PROVE => "GET TRANSACTION PROVE",
            _ => return None,
        }
    } else {
        match ins {
            APPEND_RECORD => "APPEND RECORD",
            PERFORM_SECURITY_OPERATION => "PERFORM SECURITY OPERATION",
            _ => return None,
        }
    };
    Some(specific)
}
