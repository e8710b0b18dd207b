//! Fuzzing entry points for the file store's decoders (feature `fuzzing`).
//! Each panics when a property fails, which is what the fuzzer looks for.

use super::record::{self, STATE_OFF};
use super::recovery::scan;
use super::{blockidx, index};

/// The record parser: accepts only bytes that re-encode to themselves; a
/// valid record with one byte changed (other than the unchecked state byte)
/// never validates.
pub(crate) fn record(data: &[u8]) {
    if let Ok(v) = record::parse(data) {
        let mut again = Vec::new();
        let parts = [
            &data[v.subj.clone()],
            &data[v.hdr.clone()],
            &data[v.payload.clone()],
        ];
        record::encode(&mut again, data[STATE_OFF], v.seq, v.ts, parts);
        assert_eq!(
            &again[..],
            &data[..v.len],
            "accepted bytes that are not a record"
        );
    }
    let Some((&at, rest)) = data.split_first() else {
        return;
    };
    let split = rest.len().min(usize::from(at) * 4);
    let subj = std::str::from_utf8(&rest[..split.min(64)]).unwrap_or("s");
    let mut rec = Vec::new();
    record::encode(
        &mut rec,
        record::STATE_LIVE,
        7,
        9,
        [subj.as_bytes(), &[], &rest[split..]],
    );
    let i = usize::from(at) % rec.len();
    if i != STATE_OFF {
        rec[i] ^= 0x01 | at;
        assert!(record::parse(&rec).is_err(), "damage at {i} accepted");
    }
}

/// The block scan with resynchronisation: what it keeps are valid records with
/// rising sequences, in order, inside the data.
pub(crate) fn block_scan(data: &[u8]) {
    let s = scan(data, 0, 0);
    assert!(s.good_end <= data.len());
    let mut prev_end = 0;
    let mut prev_seq = 0;
    for (at, v) in &s.records {
        assert!(*at >= prev_end && at + v.len <= data.len());
        assert!(v.seq > prev_seq);
        let again = record::parse(&data[*at..]).expect("kept record validates");
        assert_eq!(again.seq, v.seq);
        prev_end = at + v.len;
        prev_seq = v.seq;
    }
}

/// The index snapshot decoder: never panics; what it accepts is checksummed.
pub(crate) fn index_snapshot(data: &[u8]) {
    if let Ok((metas, last_seq, _, core)) = index::decode(data, |_| {}) {
        assert!(core.last_seq() >= last_seq);
        assert!(!metas.is_empty() || core.msgs() == 0);
        let n = data.len();
        assert!(n >= 4);
        let crc = u32::from_le_bytes([data[n - 4], data[n - 3], data[n - 2], data[n - 1]]);
        assert_eq!(crc, crc32fast::hash(&data[..n - 4]));
    }
}

/// The block index decoder: never panics; what it accepts is checksummed and
/// lists no more messages than its bytes can hold (7 bytes each at least).
pub(crate) fn block_index(data: &[u8]) {
    if let Ok(idx) = blockidx::decode(data.to_vec()) {
        let n = data.len();
        assert!(n >= 4);
        let crc = u32::from_le_bytes([data[n - 4], data[n - 3], data[n - 2], data[n - 1]]);
        assert_eq!(crc, crc32fast::hash(&data[..n - 4]));
        assert!(idx.msgs() <= n / 7);
        assert!(idx.last_seq >= idx.msgs() as u64, "entries rise from 1");
    }
    // Version 2: a head and entries, each checksummed; the entries add up to the head.
    if let Ok((head, entries)) = blockidx::decode_v2(data) {
        assert_eq!(entries.len() as u64, head.sum.msgs);
        assert!(head.sum.msgs as usize <= data.len() / 7);
        let bytes: u64 = entries.iter().map(|e| u64::from(e.size)).sum();
        assert_eq!(bytes, head.sum.bytes);
        assert!(
            entries
                .iter()
                .all(|e| u64::from(e.loc.off) + u64::from(e.loc.len) <= head.len)
        );
    }
}
