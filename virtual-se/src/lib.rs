#![doc = include_str!("../README.md")]

pub mod applet;
pub mod card;
pub mod error;
pub mod fuzzing;
pub mod profile;
pub mod store;
pub mod transport;

pub use error::Error;
