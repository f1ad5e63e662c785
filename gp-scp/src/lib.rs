#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(test, allow(clippy::unwrap_used))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod apdu;
mod channel;
pub mod crypto;
pub mod diversify;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod level;
pub mod put_key;
pub mod scp02;
pub mod scp03;
pub mod scp11;
pub mod sm;

// ---- card-management command set (owned by G2) --------------------------------------------
pub mod cmd;
// --------------------------------------------------------------------------------------------

pub use channel::{
    CardChannel, CardInput, CardProtocol, CardStep, HostProtocol, HostSession, HostStep,
};
pub use error::{AuthFailure, Error};
pub use level::SecurityLevel;
