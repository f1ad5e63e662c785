#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod e164;
pub mod error;
pub mod fuzzing;
pub mod jose;
pub mod locator;
pub mod message;
pub mod registry;
pub mod security;
pub mod seeded_rng;
pub mod server;
pub mod sim;
pub mod store;
pub mod time;

pub use e164::{CountryCode, E164, NormalizeOptions};
pub use error::{Error, ErrorCode};
pub use registry::{
    Partner, PartnerConfig, Registry, RegistryConfig, RegistryError, RegistryUpdate,
    UpdateOperation,
};
pub use seeded_rng::SeededRng;
pub use time::Timestamp;
