#![forbid(unsafe_code)]
pub mod catalog;
pub mod keys;
