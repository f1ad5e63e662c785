//! The checking functions behind this crate's fuzz targets in `fuzz/fuzz_targets/`, kept in the
//! library so that an ordinary `cargo test` replays the committed corpus and every crash file
//! through exactly the same code (`tests/fuzz_corpus.rs`). Each function panics when an
//! invariant breaks; any other outcome (including a decode error) is a pass.
//!
//! Not part of the stable API.

use crate::store::{CrashModel, DiskOptions, DiskStore, SimDisk};
use crate::transport::frame::{FrameDecoder, FrameError, Request, decode_all, encode_frame};

/// Fuzz target `vpcd_frames`: the vpcd frame decoder on arbitrary bytes.
///
/// Checks: decoding never panics; feeding the bytes one at a time gives the same requests as
/// feeding them at once; every APDU request has at least 2 bytes; re-encoding the decoded
/// frames reproduces exactly the consumed bytes.
///
/// # Panics
/// When an invariant breaks.
pub fn vpcd_frames(data: &[u8]) {
    let (whole, rest) = decode_all(data);
    let mut decoder = FrameDecoder::new();
    let mut bytewise = Vec::new();
    for b in data {
        decoder.push(core::slice::from_ref(b));
        while let Some(r) = decoder.next_request() {
            bytewise.push(r);
        }
    }
    assert_eq!(
        whole, bytewise,
        "split feeding changed the decoded requests"
    );
    assert_eq!(decoder.buffered(), rest);
    let mut reencoded = Vec::new();
    for request in &whole {
        let payload: Vec<u8> = match request {
            Ok(Request::Apdu(apdu)) => {
                assert!(apdu.len() >= 2, "an APDU request shorter than 2 bytes");
                apdu.clone()
            }
            Ok(Request::Control(c)) => vec![c.code()],
            Err(FrameError::Empty) => Vec::new(),
            Err(FrameError::UnknownControl(c)) => vec![*c],
            Err(e) => panic!("decoder produced an encoder-only error: {e}"),
        };
        reencoded.extend(encode_frame(&payload).unwrap_or_default());
    }
    let consumed = data.len().saturating_sub(rest);
    assert_eq!(
        reencoded.as_slice(),
        data.get(..consumed).unwrap_or_default()
    );
}

/// Fuzz target `disk_recovery`: [`DiskStore`] recovery over arbitrary store files.
///
/// The first byte splits the rest into a `journal` and a `data` file (first byte × len / 256
/// bytes go to the journal). Checks: opening never panics; when it opens, recovery is durable
/// and idempotent (reopening after the harshest crash shows the same entries), the journal
/// was cut to its valid prefix, and the store then accepts and keeps a commit.
///
/// # Panics
/// When an invariant breaks.
pub fn disk_recovery(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).saturating_mul(rest.len()) / 256;
    let (journal, image) = rest.split_at(at.min(rest.len()));
    let disk = SimDisk::new();
    disk.set_file("journal", journal);
    if !image.is_empty() {
        disk.set_file("data", image);
    }
    let options = DiskOptions {
        checkpoint_bytes: 1 << 20,
    };
    let Ok(mut store) = DiskStore::open_on(disk.clone(), options) else {
        return;
    };
    let entries = store.entries();
    let journal_len = disk.file("journal").map_or(0, |j| j.len());
    assert_eq!(u64::try_from(journal_len).ok(), Some(store.journal_len()));
    let again = DiskStore::open_on(disk.power_cycle(CrashModel::LoseUnsynced), options);
    assert_eq!(
        again.map(|s| s.entries()).ok().as_ref(),
        Some(&entries),
        "recovery not durable"
    );
    let batch = [(b"fuzz".to_vec(), Some(vec![1, 2, 3]))];
    crate::store::Store::commit(&mut store, &batch).unwrap_or_else(|e| panic!("commit: {e}"));
    let mut want = entries;
    want.insert(b"fuzz".to_vec(), vec![1, 2, 3]);
    let after = DiskStore::open_on(disk.power_cycle(CrashModel::LoseUnsynced), options);
    assert_eq!(
        after.map(|s| s.entries()).ok(),
        Some(want),
        "commit after recovery lost"
    );
}
