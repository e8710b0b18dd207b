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

/// The legacy index snapshot decoder.
pub fn index_snapshot(data: &[u8]) {
    super::file::fuzz::index_snapshot(data);
}

/// The block index decoder (`<id>.idx`): never panics; what it accepts is
/// checksummed and lists no more messages than its bytes can hold.
pub fn block_index(data: &[u8]) {
    super::file::fuzz::block_index(data);
}

/// The consumer state log replay: the valid prefix it reports replays to the
/// same state, and never extends past the data. A valid log built from the
/// input with one byte changed replays exactly up to the damaged record, to the
/// state before it, and says whether whole records follow (damage) or not (a
/// torn tail).
pub fn consumer_log(data: &[u8]) {
    let r = super::consumer::replay(data);
    assert!(r.good <= data.len());
    let again = super::consumer::replay(&data[..r.good]);
    assert_eq!((&again.state, again.good), (&r.state, r.good));
    assert!(!again.damaged && again.newer_kind.is_none());
    damaged_consumer_log(data);
}

fn damaged_consumer_log(data: &[u8]) {
    use super::consumer::{self, ConsumerState, KIND_ACK, KIND_DELIVERED};
    let Some((&pick, ops)) = data.split_first() else {
        return;
    };
    let (mut log, mut starts, mut states) = (Vec::new(), Vec::new(), Vec::new());
    let mut st = ConsumerState::default();
    for op in ops.chunks_exact(9) {
        let v = u64::from_le_bytes([op[1], op[2], op[3], op[4], op[5], op[6], op[7], op[8]]);
        starts.push(log.len());
        states.push(st.clone());
        if op[0] % 2 == 0 {
            let (d, s) = (v % 1000, v % 997);
            st.apply_delivered(d, s, 1 + v % 3, v as i64);
            consumer::push_record(
                &mut log,
                KIND_DELIVERED,
                &consumer::u64s(&[d, s, 1 + v % 3, v]),
            );
        } else {
            st.apply_ack(v % 1000, v % 997);
            consumer::push_record(&mut log, KIND_ACK, &consumer::u64s(&[v % 1000, v % 997]));
        }
    }
    let whole = consumer::replay(&log);
    assert_eq!((whole.good, &whole.state), (log.len(), &st));
    if log.is_empty() {
        return;
    }
    let at = (usize::from(pick) * 7919 + ops.len()) % log.len();
    log[at] ^= 1 << (pick % 8);
    let k = starts.iter().rposition(|&s| s <= at).unwrap_or(0);
    let r = consumer::replay(&log);
    assert_eq!(r.good, starts[k], "replay stops at the damaged record");
    assert_eq!(r.state, states[k], "the state before the damage");
    assert_eq!(r.damaged, k + 1 < starts.len(), "damage vs torn tail");
}
