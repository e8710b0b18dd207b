//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`): the
//! decoders of every store file. Each panics when a property fails.

/// The record parser (see `file::record`).
pub fn record(data: &[u8]) {
    super::file::fuzz::record(data);
}

/// The block scan with resynchronisation past damage.
pub fn block_scan(data: &[u8]) {
    super::file::fuzz::block_scan(data);
}

/// The index snapshot decoder.
pub fn index_snapshot(data: &[u8]) {
    super::file::fuzz::index_snapshot(data);
}

/// The consumer state log replay: the valid prefix it reports replays to the
/// same state, and never extends past the data.
pub fn consumer_log(data: &[u8]) {
    let r = super::consumer::replay(data);
    assert!(r.good <= data.len());
    let again = super::consumer::replay(&data[..r.good]);
    assert_eq!((&again.state, again.good), (&r.state, r.good));
    assert!(!again.damaged && again.newer_kind.is_none());
}
