//! Fuzzes recovery: any database directory (a damaged small database, or raw bytes) opens with
//! Ok or a typed error, never a panic, a hang or an unbounded allocation; an undamaged one
//! recovers to its model state; a recovered one survives a commit, a clean close and a reopen.
//! See `crashpoint_fuzz::image`.
#![no_main]

use crashpoint_fuzz::bounded::AnyLength;
use crashpoint_fuzz::image::{check, Image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|image: AnyLength<Image>| check(&image.0));
