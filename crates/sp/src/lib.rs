//! Latchkey SP toolkit: what a service provider needs after the SAML layer has verified a
//! login — the replay cache, and just-in-time provisioning of local accounts under a
//! per-application contract.
#![forbid(unsafe_code)]

pub mod error;
pub mod jit;
pub mod replay;
pub mod store;

pub use error::{ContractError, Error, ReplayError, StoreError};
