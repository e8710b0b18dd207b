//! Fuzzes the store's block index decoder (`<id>.idx`): no input may panic it or pass damaged data as valid.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rill_server::jetstream::store::fuzz::block_index(data);
});
