//! Atomicity of the disk store under injected power cuts and journal damage.
//!
//! Every write point of a commit is cut at every byte of its data, under both crash models;
//! recovery must show exactly the old or exactly the new state, and a commit that returned `Ok`
//! must survive any crash. The journal is also truncated and corrupted at every byte offset.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use virtual_se::store::{
    BatchEntry, CrashModel, CutPoint, DiskOptions, DiskStore, SimDisk, Store, StoreError,
};

type State = BTreeMap<Vec<u8>, Vec<u8>>;

const MODELS: [CrashModel; 2] = [CrashModel::KeepWritten, CrashModel::LoseUnsynced];
/// Checkpoint after every commit, and (almost) never.
const OPTIONS: [DiskOptions; 2] = [
    DiskOptions {
        checkpoint_bytes: 0,
    },
    DiskOptions {
        checkpoint_bytes: 1 << 20,
    },
];

fn apply(state: &State, batch: &[BatchEntry]) -> State {
    let mut next = state.clone();
    for (k, v) in batch {
        match v {
            Some(v) => next.insert(k.clone(), v.clone()),
            None => next.remove(k),
        };
    }
    next
}

fn open(disk: &SimDisk, options: DiskOptions) -> DiskStore<SimDisk> {
    DiskStore::open_on(disk.clone(), options).unwrap()
}

/// A disk holding `initial` committed, and the state it holds.
fn prepared(initial: &[Vec<BatchEntry>], options: DiskOptions) -> (SimDisk, State) {
    let disk = SimDisk::new();
    let mut store = open(&disk, options);
    let mut state = State::new();
    for batch in initial {
        store.commit(batch).unwrap();
        state = apply(&state, batch);
    }
    assert_eq!(store.entries(), state);
    (disk, state)
}

/// Every (write point, bytes kept) cut of running `op` on a fresh store over a fork of `base`.
fn cut_points(
    base: &SimDisk,
    options: DiskOptions,
    op: &dyn Fn(&mut DiskStore<SimDisk>),
) -> Vec<CutPoint> {
    let probe = base.fork();
    let mut store = open(&probe, options);
    probe.reset_count();
    op(&mut store);
    let mut cuts = Vec::new();
    for (write, size) in probe.write_sizes().into_iter().enumerate() {
        // Data-less operations (truncate, rename, remove): 0 = not done, 1 = done.
        for keep in 0..=size.max(1) {
            cuts.push(CutPoint {
                write: u64::try_from(write).unwrap(),
                keep,
            });
        }
    }
    cuts
}

/// Recover `disk` under `model` and check the state is `old` or `new`; then check the store
/// still works and its next commit is durable. Returns which state was found (true = new).
fn recover_and_check(
    disk: &SimDisk,
    model: CrashModel,
    options: DiskOptions,
    old: &State,
    new: &State,
) -> bool {
    let after = disk.power_cycle(model);
    let mut store = open(&after, options);
    let got = store.entries();
    assert!(
        got == *old || got == *new,
        "recovered to a state that is neither old nor new ({model:?})"
    );
    let is_new = got == *new && got != *old;
    // The recovered store takes a commit, and that commit survives the harshest crash.
    let extra: Vec<BatchEntry> = vec![(b"after-recovery".to_vec(), Some(vec![0xA5; 3]))];
    store.commit(&extra).unwrap();
    let expected = apply(&got, &extra);
    let again = open(&after.power_cycle(CrashModel::LoseUnsynced), options);
    assert_eq!(again.entries(), expected);
    is_new
}

fn tear_commit_everywhere(
    initial: &[Vec<BatchEntry>],
    batch: &[BatchEntry],
    options: DiskOptions,
) -> usize {
    let (base, old) = prepared(initial, options);
    let new = apply(&old, batch);
    let cuts = cut_points(&base, options, &|s| s.commit(batch).unwrap());
    for cut in &cuts {
        let disk = base.fork();
        let mut store = open(&disk, options);
        disk.arm_cut(*cut);
        match store.commit(batch) {
            // The cut fell after the last write point of this commit (cannot happen: the cut
            // list comes from the same commit) — then the commit must be durable.
            Ok(()) => panic!("cut {cut:?} did not fire"),
            Err(e) => assert!(e.is_power_cut(), "unexpected error {e}"),
        }
        // A dead store refuses everything.
        assert!(matches!(store.read(b"x"), Err(StoreError::Poisoned)));
        for model in MODELS {
            recover_and_check(&disk, model, options, &old, &new);
        }
        // Without a sync after the append, the harshest crash must show the old state.
        if cut.write == 0 {
            let after = disk.power_cycle(CrashModel::LoseUnsynced);
            assert_eq!(open(&after, options).entries(), old);
        }
    }
    // No cut: the commit survives any crash.
    let disk = base.fork();
    let mut store = open(&disk, options);
    store.commit(batch).unwrap();
    for model in MODELS {
        assert_eq!(open(&disk.power_cycle(model), options).entries(), new);
    }
    cuts.len()
}

fn entry() -> impl Strategy<Value = BatchEntry> {
    (
        proptest::collection::vec(0u8..4, 1..3),
        proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..10)),
    )
}

fn batch() -> impl Strategy<Value = Vec<BatchEntry>> {
    proptest::collection::vec(entry(), 1..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn commit_torn_at_every_write_and_byte(
        initial in proptest::collection::vec(batch(), 0..3),
        next in batch(),
    ) {
        for options in OPTIONS {
            let cuts = tear_commit_everywhere(&initial, &next, options);
            prop_assert!(cuts > 0);
        }
    }
}

#[test]
fn commit_write_points_are_counted() {
    let batch = vec![(b"key".to_vec(), Some(b"value".to_vec()))];
    // Without checkpoint: one append (sync is not a write point).
    let (disk, _) = prepared(&[], OPTIONS[1]);
    let mut store = open(&disk, OPTIONS[1]);
    disk.reset_count();
    store.commit(&batch).unwrap();
    assert_eq!(disk.write_points(), 1);
    // With a checkpoint: append, write data.tmp, rename, truncate journal.
    let (disk, _) = prepared(&[], OPTIONS[0]);
    let mut store = open(&disk, OPTIONS[0]);
    disk.reset_count();
    store.commit(&batch).unwrap();
    assert_eq!(disk.write_points(), 4);
    let n = tear_commit_everywhere(&[], &batch, OPTIONS[0]);
    let record = 8 + 4 + 1 + 4 + 3 + 4 + 5;
    let image = 8 + 4 + 4 + 3 + 4 + 5 + 4;
    assert_eq!(n, (record + 1) + (image + 1) + 2 + 2);
}

/// Recovery itself is torn at every write point (a crash while truncating a torn journal
/// tail, or while removing a stale `data.tmp`).
#[test]
fn recovery_torn_at_every_write() {
    let initial = vec![vec![(b"a".to_vec(), Some(b"1".to_vec()))]];
    let batch = vec![(b"a".to_vec(), Some(b"2".to_vec())), (b"b".to_vec(), None)];
    for options in OPTIONS {
        let (base, old) = prepared(&initial, options);
        let new = apply(&old, &batch);
        for cut in cut_points(&base, options, &|s| s.commit(&batch).unwrap()) {
            let disk = base.fork();
            let mut store = open(&disk, options);
            disk.arm_cut(cut);
            assert!(store.commit(&batch).is_err());
            let crashed = disk.power_cycle(CrashModel::KeepWritten);
            // Count and cut the writes of recovery.
            let probe = crashed.fork();
            probe.reset_count();
            let recovered = open(&probe, options).entries();
            assert!(recovered == old || recovered == new);
            let sizes = probe.write_sizes();
            for (write, size) in sizes.into_iter().enumerate() {
                for keep in 0..=size.max(1) {
                    let d = crashed.fork();
                    d.arm_cut(CutPoint {
                        write: u64::try_from(write).unwrap(),
                        keep,
                    });
                    assert!(
                        DiskStore::open_on(d.clone(), options)
                            .unwrap_err()
                            .is_power_cut()
                    );
                    for model in MODELS {
                        let got = open(&d.power_cycle(model), options).entries();
                        assert_eq!(
                            got, recovered,
                            "recovery torn at {write}/{keep} changed its outcome"
                        );
                    }
                }
            }
        }
    }
}

/// A journal of three records over a checkpoint, truncated and corrupted at every byte.
#[test]
fn journal_truncated_or_corrupted_at_every_offset() {
    let options = OPTIONS[1];
    let base_batch = vec![(b"base".to_vec(), Some(b"checkpointed".to_vec()))];
    let records: Vec<Vec<BatchEntry>> = vec![
        vec![
            (b"k1".to_vec(), Some(b"one".to_vec())),
            (b"base".to_vec(), None),
        ],
        vec![(b"k2".to_vec(), Some(vec![2; 20]))],
        vec![
            (b"k1".to_vec(), Some(b"uno".to_vec())),
            (b"k3".to_vec(), Some(Vec::new())),
        ],
    ];
    let disk = SimDisk::new();
    let mut store = open(&disk, options);
    store.commit(&base_batch).unwrap();
    store.checkpoint().unwrap();
    let mut states = vec![apply(&State::new(), &base_batch)];
    let mut ends = Vec::new();
    for r in &records {
        store.commit(r).unwrap();
        states.push(apply(states.last().unwrap(), r));
        ends.push(usize::try_from(store.journal_len()).unwrap());
    }
    drop(store);
    let journal = disk.file("journal").unwrap();
    assert_eq!(journal.len(), *ends.last().unwrap());
    // State after the records that end at or before `offset`.
    let state_at = |offset: usize| &states[ends.iter().filter(|&&e| e <= offset).count()];
    for offset in 0..=journal.len() {
        // Truncated at `offset`.
        let d = disk.fork();
        d.set_file("journal", &journal[..offset]);
        let mut s = open(&d, options);
        assert_eq!(&s.entries(), state_at(offset), "truncated at {offset}");
        // The damaged tail was cut off, so new commits land after the valid records.
        s.commit(&[(b"z".to_vec(), Some(vec![9]))]).unwrap();
        let want = apply(state_at(offset), &[(b"z".to_vec(), Some(vec![9]))]);
        assert_eq!(
            open(&d.power_cycle(CrashModel::LoseUnsynced), options).entries(),
            want
        );
    }
    for offset in 0..journal.len() {
        // Record containing `offset` is damaged: recovery keeps the records before it.
        let before = ends.iter().filter(|&&e| e <= offset).count();
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = journal.clone();
            bad[offset] ^= flip;
            let d = disk.fork();
            d.set_file("journal", &bad);
            let got = open(&d, options).entries();
            assert_eq!(got, states[before], "byte {offset} ^ {flip:#04x}");
        }
    }
}

#[test]
fn corrupt_checkpoint_is_reported_not_ignored() {
    let (disk, _) = prepared(&[vec![(b"k".to_vec(), Some(b"v".to_vec()))]], OPTIONS[0]);
    let image = disk.file("data").unwrap();
    for offset in 0..image.len() {
        let mut bad = image.clone();
        bad[offset] ^= 0x20;
        let d = disk.fork();
        d.set_file("data", &bad);
        assert!(matches!(
            DiskStore::open_on(d, OPTIONS[0]),
            Err(StoreError::Corrupt { .. })
        ));
    }
    let d = disk.fork();
    d.set_file("data", &image[..image.len() - 1]);
    assert!(matches!(
        DiskStore::open_on(d, OPTIONS[0]),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn real_directory_survives_reopen_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let options = OPTIONS[1];
    {
        let mut store = DiskStore::open_with(dir.path(), options).unwrap();
        store
            .commit(&[(b"a".to_vec(), Some(b"1".to_vec()))])
            .unwrap();
        // Two stores never share a directory.
        assert!(matches!(
            DiskStore::open(dir.path()),
            Err(StoreError::Locked)
        ));
        store
            .commit(&[(b"b".to_vec(), Some(b"2".to_vec())), (b"a".to_vec(), None)])
            .unwrap();
    }
    let journal_path = dir.path().join("journal");
    let journal = std::fs::read(&journal_path).unwrap();
    let first_end = 8 + 4 + 1 + 4 + 1 + 4 + 1;
    for offset in 0..=journal.len() {
        std::fs::write(&journal_path, &journal[..offset]).unwrap();
        let store = DiskStore::open_with(dir.path(), options).unwrap();
        let got = store.entries();
        let want: State = if offset < first_end {
            State::new()
        } else if offset < journal.len() {
            [(b"a".to_vec(), b"1".to_vec())].into()
        } else {
            [(b"b".to_vec(), b"2".to_vec())].into()
        };
        assert_eq!(got, want, "offset {offset}");
        assert_eq!(
            std::fs::metadata(&journal_path).unwrap().len(),
            store.journal_len()
        );
    }
    // Checkpoint, reopen with default options.
    {
        let mut store = DiskStore::open(dir.path()).unwrap();
        store.checkpoint().unwrap();
        assert_eq!(store.journal_len(), 0);
    }
    let store = DiskStore::open(dir.path()).unwrap();
    assert_eq!(store.read(b"b").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.scan_prefix(b"").unwrap().len(), 1);
}
