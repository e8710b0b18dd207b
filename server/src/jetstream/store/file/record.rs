//! Encoding and validation of one message record (layout in the parent module docs).
//!
//! Owns the byte layout only; knows nothing of blocks or indexes.

use std::ops::Range;

use crc32fast::Hasher;

/// Fixed bytes before the subject.
pub(crate) const REC_HDR: usize = 28;
/// Fixed bytes per record (header + trailing checksum).
pub(crate) const REC_OVERHEAD: usize = REC_HDR + 4;
/// Largest record accepted (also bounds resynchronisation).
pub(crate) const MAX_RECORD: usize = 256 * 1024 * 1024;

/// State byte of a stored message.
pub(crate) const STATE_LIVE: u8 = 0xA5;
/// State byte of a deleted (or erased) message.
pub(crate) const STATE_DELETED: u8 = 0x5A;
/// State byte of a sequence marker (advances the last sequence, no message).
pub(crate) const STATE_MARK: u8 = 0xC3;
/// Offset of the state byte (not covered by the checksum).
pub(crate) const STATE_OFF: usize = 4;

/// A validated record inside a buffer.
#[derive(Debug, Clone)]
pub(crate) struct RecordView {
    pub(crate) len: usize,
    pub(crate) state: u8,
    pub(crate) seq: u64,
    pub(crate) ts: i64,
    pub(crate) subj: Range<usize>,
    pub(crate) hdr: Range<usize>,
    pub(crate) payload: Range<usize>,
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecError {
    /// The buffer ends before the record does (a torn tail, or a damaged length).
    Short,
    /// Fields or checksum do not validate.
    Bad,
}

/// Total record length for the given part sizes.
pub(crate) fn record_len(subj: usize, hdr: usize, payload: usize) -> usize {
    REC_OVERHEAD + subj + hdr + payload
}

fn checksum(rec: &[u8]) -> u32 {
    let mut h = Hasher::new();
    h.update(&rec[..STATE_OFF]);
    h.update(&rec[STATE_OFF + 1..rec.len() - 4]);
    h.finalize()
}

/// Appends an encoded record to `out` and returns its length.
///
/// The caller checks sizes (`subj` fits a u16, the total fits [`MAX_RECORD`]).
pub(crate) fn encode(out: &mut Vec<u8>, state: u8, seq: u64, ts: i64, parts: [&[u8]; 3]) -> usize {
    let [subj, hdr, payload] = parts;
    let len = record_len(subj.len(), hdr.len(), payload.len());
    let start = out.len();
    out.reserve(len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.push(state);
    out.push(0);
    out.extend_from_slice(&(subj.len() as u16).to_le_bytes());
    out.extend_from_slice(&(hdr.len() as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(subj);
    out.extend_from_slice(hdr);
    out.extend_from_slice(payload);
    out.extend_from_slice(&[0; 4]);
    let crc = checksum(&out[start..]);
    let end = out.len();
    out[end - 4..].copy_from_slice(&crc.to_le_bytes());
    len
}

/// Recomputes the checksum of a record in place (after erasing its contents).
pub(crate) fn reseal(rec: &mut [u8]) {
    let n = rec.len();
    let crc = checksum(rec);
    rec[n - 4..].copy_from_slice(&crc.to_le_bytes());
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Cheap plausibility check of a header: state, reserved byte and lengths.
fn plausible(buf: &[u8]) -> Result<(usize, usize, usize), RecError> {
    if buf.len() < REC_OVERHEAD {
        return Err(RecError::Short);
    }
    let len = le_u32(buf, 0) as usize;
    let state = buf[STATE_OFF];
    let slen = usize::from(u16::from_le_bytes([buf[6], buf[7]]));
    let hlen = le_u32(buf, 8) as usize;
    let valid_state = matches!(state, STATE_LIVE | STATE_DELETED | STATE_MARK);
    if !valid_state || buf[5] != 0 || !(REC_OVERHEAD..=MAX_RECORD).contains(&len) {
        return Err(RecError::Bad);
    }
    if REC_OVERHEAD + slen + hlen > len {
        return Err(RecError::Bad);
    }
    if len > buf.len() {
        return Err(RecError::Short);
    }
    Ok((len, slen, hlen))
}

/// Validates the record at the start of `buf` (which may continue past it).
pub(crate) fn parse(buf: &[u8]) -> Result<RecordView, RecError> {
    let (len, slen, hlen) = plausible(buf)?;
    let rec = &buf[..len];
    if le_u32(rec, len - 4) != checksum(rec) {
        return Err(RecError::Bad);
    }
    let subj = REC_HDR..REC_HDR + slen;
    if std::str::from_utf8(&rec[subj.clone()]).is_err() {
        return Err(RecError::Bad);
    }
    let hdr = subj.end..subj.end + hlen;
    Ok(RecordView {
        len,
        state: rec[STATE_OFF],
        seq: le_u64(rec, 12),
        ts: le_u64(rec, 20) as i64,
        payload: hdr.end..len - 4,
        subj,
        hdr,
    })
}

/// Finds the next offset at or after `from` holding a valid record with a sequence above `min_seq`.
pub(crate) fn resync(data: &[u8], from: usize, min_seq: u64) -> Option<(usize, RecordView)> {
    (from..data.len().saturating_sub(REC_OVERHEAD - 1)).find_map(|at| {
        let buf = &data[at..];
        plausible(buf).ok()?;
        let v = parse(buf).ok()?;
        (v.seq > min_seq).then_some((at, v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damage() {
        let mut buf = Vec::new();
        let n = encode(
            &mut buf,
            STATE_LIVE,
            7,
            99,
            [b"a.b", b"NATS/1.0\r\n\r\n", b"hi"],
        );
        assert_eq!(n, buf.len());
        let v = parse(&buf).expect("valid");
        assert_eq!((v.seq, v.ts, &buf[v.payload.clone()]), (7, 99, &b"hi"[..]));
        assert_eq!(parse(&buf[..n - 1]).unwrap_err(), RecError::Short);
        // The state byte is outside the checksum.
        buf[STATE_OFF] = STATE_DELETED;
        assert_eq!(parse(&buf).expect("valid").state, STATE_DELETED);
        for i in 0..n {
            if i == STATE_OFF {
                continue;
            }
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert!(parse(&bad).is_err(), "flip at {i} undetected");
        }
    }

    #[test]
    fn resync_finds_next_record() {
        let mut buf = Vec::new();
        encode(&mut buf, STATE_LIVE, 1, 0, [b"x", b"", b"one"]);
        let second = buf.len();
        encode(&mut buf, STATE_LIVE, 2, 0, [b"x", b"", b"two"]);
        buf[3] ^= 0xff;
        let (at, v) = resync(&buf, 1, 0).expect("found");
        assert_eq!((at, v.seq), (second, 2));
    }
}
