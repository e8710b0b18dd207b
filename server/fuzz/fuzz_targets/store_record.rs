//! Fuzzes the store's record decoder: no input may panic it or pass damaged data as valid.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rill_server::jetstream::store::fuzz::record(data);
});
