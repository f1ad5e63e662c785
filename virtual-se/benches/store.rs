//! Storage costs: one APDU-sized transaction committed to the in-memory store and to the disk
//! store (journal append + fsync; and with a checkpoint after every commit), and the
//! recovery time of a disk store.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use virtual_se::store::{DiskOptions, DiskStore, MemoryStore, SimDisk, Store, Transaction};

/// A PUT KEY-sized write: three 16-byte keys with their records (about 120 bytes).
fn put_key_like<S: Store>(store: &mut S, i: u32) {
    let mut tx = Transaction::new(store);
    for kid in 1u8..=3 {
        let mut value = vec![0x88, 0x10];
        value.extend_from_slice(&[kid; 16]);
        value.extend_from_slice(&i.to_be_bytes());
        tx.put(vec![b'k', b'/', 0xFF, kid], value);
    }
    tx.put(b"sd/seq".to_vec(), i.to_be_bytes().to_vec());
    tx.commit().unwrap();
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("store_commit");
    let mut memory = MemoryStore::new();
    let mut i = 0u32;
    g.bench_function("memory", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            put_key_like(black_box(&mut memory), i);
        });
    });
    let mut sim = DiskStore::open_on(SimDisk::new(), DiskOptions::default()).unwrap();
    g.bench_function("disk_simulated_no_io", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            put_key_like(black_box(&mut sim), i);
        });
    });
    let dir = tempfile::tempdir().unwrap();
    let mut disk = DiskStore::open(dir.path()).unwrap();
    g.bench_function("disk_fsync", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            put_key_like(black_box(&mut disk), i);
        });
    });
    drop(disk);
    let dir2 = tempfile::tempdir().unwrap();
    let mut eager = DiskStore::open_with(
        dir2.path(),
        DiskOptions {
            checkpoint_bytes: 0,
        },
    )
    .unwrap();
    g.bench_function("disk_fsync_checkpoint_every_commit", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            put_key_like(black_box(&mut eager), i);
        });
    });
    g.finish();

    // Recovery: a journal of 500 PUT KEY-sized records over a 200-entry checkpoint.
    let disk = SimDisk::new();
    {
        let mut store = DiskStore::open_on(
            disk.clone(),
            DiskOptions {
                checkpoint_bytes: 1 << 30,
            },
        )
        .unwrap();
        for n in 0..200u32 {
            store
                .commit(&[(n.to_be_bytes().to_vec(), Some(vec![0x5A; 64]))])
                .unwrap();
        }
        store.checkpoint().unwrap();
        for n in 0..500u32 {
            put_key_like(&mut store, n);
        }
    }
    c.bench_function("store_recovery_500_records", |b| {
        b.iter(|| {
            let store = DiskStore::open_on(
                black_box(disk.fork()),
                DiskOptions {
                    checkpoint_bytes: 1 << 30,
                },
            )
            .unwrap();
            black_box(store.journal_len())
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
