//! Sans-IO visited and home server state machines.
//!
//! Both follow one shape: feed [`VisitedInput`]/[`HomeInput`] with
//! `handle_input(now, input)`, then drain `poll_output()` until `None`, and call
//! `handle_input(now, Timeout)` again no later than `poll_timeout()`. Nothing here reads a
//! clock, touches a socket or draws OS randomness.

mod common;
pub mod home;
pub mod visited;

pub use common::{Timeouts, Transmit, Undeliverable};
pub use home::{
    HomeConfig, HomeInput, HomeOutput, HomeServer, HomeTxState, UserReply, UserRequest,
};
pub use visited::{
    Acquirer, AcquirerOutcome, CpEvent, MemoryAcquirer, PaymentInstruction, StartRequest,
    VisitedConfig, VisitedInput, VisitedOutput, VisitedServer, VisitedSnapshot, VisitedTxState,
};
