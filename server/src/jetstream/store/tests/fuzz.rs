//! The cargo-fuzz properties (`store::fuzz`, run for long by `server/fuzz/`)
//! also run here on bounded random input, so every test run checks them:
//! arbitrary bytes, and real store files (a block, a block index, a
//! consumer state log) with random bytes changed and random tails cut.

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::super::consumer::FileConsumerStore;
use super::super::fuzz;
use super::super::*;

/// A real block file, its index and a consumer log.
fn real_files() -> &'static [Vec<u8>; 3] {
    static FILES: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    FILES.get_or_init(|| {
        let disk = SimDisk::new();
        let dir = Path::new("/s");
        let cfg = StoreConfig {
            block_size: 1 << 20,
            ..StoreConfig::default()
        };
        let mut s = FileStore::open(dir, cfg, disk.shared()).expect("open");
        for i in 0..40u8 {
            let hdr = (i % 3 == 0).then_some(&b"NATS/1.0\r\nK: v\r\n\r\n"[..]);
            s.append(&format!("s.{}", i % 4), hdr, &vec![i; usize::from(i) * 3])
                .expect("append");
        }
        s.remove(7).expect("remove");
        s.close().expect("close");
        drop(s);
        let cdir = Path::new("/c");
        let mut c = FileConsumerStore::open(cdir, disk.shared()).expect("consumer");
        for i in 1..=20u64 {
            c.update_delivered(i, i, 1, 1000 + i as i64)
                .expect("delivered");
            if i % 3 != 0 {
                c.update_ack(i, i).expect("ack");
            }
        }
        c.sync().expect("sync");
        let read = |p: &Path| disk.read_file(p).expect("read");
        [
            read(&dir.join("0000000001.blk")),
            read(&dir.join("0000000001.idx")),
            read(&cdir.join("state.log")),
        ]
    })
}

fn mutated(file: usize, changes: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut data = real_files()[file].clone();
    for (at, x) in changes {
        let i = at % data.len();
        data[i] ^= x | 1;
    }
    data.truncate(data.len() - cut % (data.len() / 4 + 1));
    data
}

fn changes() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>()), 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fuzz_properties_hold_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzz::record(&data);
        fuzz::block_scan(&data);
        fuzz::index_snapshot(&data);
        fuzz::block_index(&data);
        fuzz::consumer_log(&data);
    }

    #[test]
    fn fuzz_properties_hold_on_damaged_store_files(
        ch in changes(),
        cut in any::<usize>(),
        skip in 0usize..2000,
    ) {
        let block = mutated(0, &ch, cut);
        fuzz::block_scan(&block);
        fuzz::record(&block[(40 + skip).min(block.len())..]);
        fuzz::block_index(&mutated(1, &ch, cut));
        fuzz::consumer_log(&mutated(2, &ch, cut));
    }
}

/// The real files themselves pass, and a real record is accepted whole.
#[test]
fn real_store_files_pass_the_fuzz_properties() {
    let [block, idx, log] = real_files();
    fuzz::block_scan(block);
    fuzz::block_index(idx);
    fuzz::consumer_log(log);
}
