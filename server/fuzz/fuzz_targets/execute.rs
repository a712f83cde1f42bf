//! Command execution against a model (sled's `fuzz_model` approach): the input is a
//! sequence of session commands and clock steps (`sessiond_server::model`), run through
//! the real dispatcher and store; every reply must be the one the `HashMap` model of
//! Redis's behaviour gives.
//!
//! `cd server/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run execute -- -max_total_time=600`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ops = sessiond_server::model::ops_from_bytes(data);
    if let Err(e) = sessiond_server::model::run(&ops) {
        panic!("server and model disagree: {e}");
    }
});
