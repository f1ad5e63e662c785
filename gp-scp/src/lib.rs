#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(test, allow(clippy::unwrap_used))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod crypto;
pub mod diversify;
mod error;
pub mod keys;

pub use error::{AuthFailure, Error};
mod apdu;
pub mod level;
pub mod scp02;
pub mod scp03;
pub mod sm;

pub use level::SecurityLevel;
