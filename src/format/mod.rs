//! On-disk formats: log records, header slots, the block translation table and page blocks.
//! Each module pairs an encoder with a verifying decoder; decoders never panic on any input.

pub mod control;
pub mod header;
pub mod page;
mod reader;
pub mod record;
pub mod translation;
