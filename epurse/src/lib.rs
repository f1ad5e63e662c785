#![doc = include_str!("../README.md")]
#![no_std]
#![cfg_attr(test, allow(clippy::unwrap_used))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod card;
pub mod crypto;
pub mod danger;
mod encoding;
mod error;
pub mod fuzzing;
pub mod host;
pub mod pboc;
pub mod perso;
pub mod tag;
pub mod ticket;

pub use error::Error;
