//! Feeds arbitrary bytes, in arbitrary chunks, to both decoders: they must never panic,
//! and an op they return must re-encode and decode to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rill_protocol::encode::encode_client;
use rill_protocol::{ClientDecoder, DecoderLimits, ServerDecoder};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let limits = DecoderLimits { max_control_line: 512, max_payload: 4096 };
    let mut dec = ClientDecoder::new(limits);
    let mut buf = BytesMut::new();
    'feed: for chunk in [&data[..split], &data[split..]] {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(op)) => {
                    let mut again = BytesMut::new();
                    encode_client(&op, &mut again);
                    if let Ok(Some(back)) = ClientDecoder::new(limits).decode(&mut again) {
                        if !matches!(op, rill_protocol::ClientOp::Connect(_)) {
                            assert_eq!(back, op);
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    let mut sdec = ServerDecoder::new(limits);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = sdec.decode(&mut buf) {}
});
