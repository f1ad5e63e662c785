#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(test, allow(clippy::unwrap_used))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod cla;
mod command;
mod error;
#[cfg(feature = "alloc")]
pub mod exchange;
#[cfg(feature = "alloc")]
#[doc(hidden)]
pub mod fuzzing;
pub mod ins;
mod response;
mod status;
pub mod tlv;

pub use cla::{Cla, SecureMessaging};
#[cfg(feature = "alloc")]
pub use command::Command;
pub use command::{Case, CommandView, LengthForm, parse_command};
pub use error::Error;
#[cfg(feature = "alloc")]
pub use response::Response;
pub use response::{ResponseView, parse_response};
pub use status::StatusWord;

/// Largest data field of a short APDU (ISO/IEC 7816-4 §5.1: Lc is one byte, 1..=255).
pub const MAX_SHORT_DATA: usize = 255;
/// Largest Le of a short APDU (`00` encodes 256).
pub const MAX_SHORT_LE: usize = 256;
/// Largest data field of an extended APDU (ISO/IEC 7816-4 §5.1: Lc is two bytes, 1..=65535).
pub const MAX_EXTENDED_DATA: usize = 65_535;
/// Largest Le of an extended APDU (`0000` encodes 65536).
pub const MAX_EXTENDED_LE: usize = 65_536;
