//! The GlobalPlatform card-management command set (GPC 2.3 chapter 11, Amendments D and F):
//! builders for the host, parsers for the card, response parsers for the host and response
//! encoders for the card.
//!
//! Every host-side builder returns an [`apdu_codec::Command`] (CLA `80`, or `00` for
//! SELECT; the secure channel sets the secure messaging bit when it wraps). Every card-side
//! parser takes the [`apdu_codec::CommandView`] the secure channel unwrapped and returns a
//! typed request or a [`CommandError`], whose [`CommandError::status_word`] is the status
//! word to answer.
//!
//! ```
//! use apdu_codec::CommandView;
//! use gp_scp::cmd::{delete, Aid};
//! // Host: DELETE an application and its related objects (GPC 2.3 §11.2).
//! let aid: Aid = "A00100015141434C".parse()?;
//! let command = delete::Delete::object(aid).with_related(true).to_command()?;
//! let bytes = command.to_vec()?;
//! assert_eq!(bytes, [0x80, 0xE4, 0x00, 0x80, 0x0A, 0x4F, 0x08,
//!                    0xA0, 0x01, 0x00, 0x01, 0x51, 0x41, 0x43, 0x4C]);
//! // Card: parse it back.
//! let request = delete::parse_delete(&CommandView::try_from(&bytes[..])?)?;
//! assert_eq!(request, delete::Delete::object(aid).with_related(true));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aid;
mod blocks;
mod error;
mod lifecycle;
mod privileges;
mod reader;

#[doc(hidden)]
pub mod fuzzing;

pub mod delete;
pub mod get_data;
pub mod get_status;
pub mod install;
pub mod load;
pub mod put_key;
pub mod select;
pub mod set_status;
pub mod store_data;

pub use aid::{AID_MAX_LEN, AID_MIN_LEN, Aid};
pub use error::CommandError;
pub use lifecycle::{
    ApplicationLifeCycle, CardLifeCycle, LifeCycle, LoadFileLifeCycle, SecurityDomainLifeCycle,
};
pub use privileges::{PRIVILEGES, Privilege, Privileges};

/// CLA of the GlobalPlatform commands without secure messaging (GPC 2.3 §11.1.4).
pub const CLA_GP: u8 = 0x80;
/// CLA of the interindustry commands (SELECT, GET RESPONSE; ISO/IEC 7816-4 §5.4.1).
pub const CLA_ISO: u8 = 0x00;
/// Le asking for everything available in a short response (`00` = 256, ISO/IEC 7816-4 §5.1).
pub const LE_MAX_SHORT: usize = 256;
/// Largest data field of a short command (ISO/IEC 7816-4 §5.1).
pub const MAX_SHORT_DATA: usize = 255;
