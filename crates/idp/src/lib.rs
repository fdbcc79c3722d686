#![forbid(unsafe_code)]
pub mod catalog;
