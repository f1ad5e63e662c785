#![doc = include_str!("../README.md")]

pub mod error;
pub mod store;
pub mod transport;

pub use error::Error;
