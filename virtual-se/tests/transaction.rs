//! Transaction overlay semantics (Java Card style, nested levels).
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use virtual_se::store::{
    DiskOptions, DiskStore, MAX_NESTING_DEPTH, MemoryStore, SimDisk, Store, StoreError, Transaction,
};

fn kv(k: &str, v: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
}

#[test]
fn reads_see_pending_and_drop_discards() {
    let mut store = MemoryStore::new();
    store.commit(&[kv("a", "1"), kv("b", "2")]).unwrap();
    {
        let mut tx = Transaction::new(&mut store);
        tx.put(b"a".to_vec(), b"x".to_vec());
        tx.delete(b"b".to_vec());
        tx.put(b"c".to_vec(), b"3".to_vec());
        assert_eq!(tx.read(b"a").unwrap(), Some(b"x".to_vec()));
        assert_eq!(tx.read(b"b").unwrap(), None);
        let all = tx.scan_prefix(b"").unwrap();
        assert_eq!(
            all,
            vec![
                (b"a".to_vec(), b"x".to_vec()),
                (b"c".to_vec(), b"3".to_vec())
            ]
        );
        assert_eq!(tx.store().read(b"a").unwrap(), Some(b"1".to_vec()));
        // dropped here without commit
    }
    assert_eq!(store.read(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.read(b"c").unwrap(), None);
}

#[test]
fn nested_levels() {
    let mut store = MemoryStore::new();
    let mut tx = Transaction::new(&mut store);
    tx.put(b"k".to_vec(), b"outer".to_vec());
    tx.begin_nested().unwrap();
    tx.put(b"k".to_vec(), b"inner".to_vec());
    tx.put(b"j".to_vec(), b"inner".to_vec());
    tx.begin_nested().unwrap();
    tx.delete(b"k".to_vec());
    assert_eq!(tx.nesting_depth(), 2);
    assert_eq!(tx.read(b"k").unwrap(), None);
    tx.abort_nested().unwrap();
    assert_eq!(tx.read(b"k").unwrap(), Some(b"inner".to_vec()));
    tx.commit_nested().unwrap();
    assert_eq!(tx.nesting_depth(), 0);
    assert!(matches!(
        tx.commit_nested(),
        Err(StoreError::NoNestedTransaction)
    ));
    assert!(matches!(
        tx.abort_nested(),
        Err(StoreError::NoNestedTransaction)
    ));
    // A level left open at commit is aborted (JCRE aborts an open applet transaction).
    tx.begin_nested().unwrap();
    tx.put(b"open".to_vec(), b"lost".to_vec());
    tx.commit().unwrap();
    assert_eq!(store.read(b"k").unwrap(), Some(b"inner".to_vec()));
    assert_eq!(store.read(b"j").unwrap(), Some(b"inner".to_vec()));
    assert_eq!(store.read(b"open").unwrap(), None);
}

#[test]
fn nesting_limit_and_delete_prefix() {
    let mut store = MemoryStore::new();
    store
        .commit(&[kv("p/1", "a"), kv("p/2", "b"), kv("q", "c")])
        .unwrap();
    let mut tx = Transaction::new(&mut store);
    for _ in 0..MAX_NESTING_DEPTH {
        tx.begin_nested().unwrap();
    }
    assert!(matches!(tx.begin_nested(), Err(StoreError::NestingTooDeep)));
    tx.put(b"p/3".to_vec(), b"d".to_vec());
    tx.delete_prefix(b"p/").unwrap();
    assert!(tx.scan_prefix(b"p/").unwrap().is_empty());
    for _ in 0..MAX_NESTING_DEPTH {
        tx.commit_nested().unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(
        store.scan_prefix(b"").unwrap(),
        vec![(b"q".to_vec(), b"c".to_vec())]
    );
}

#[test]
fn empty_transaction_does_not_write() {
    let disk = SimDisk::new();
    let mut store = DiskStore::open_on(disk.clone(), DiskOptions::default()).unwrap();
    disk.reset_count();
    let mut tx = Transaction::new(&mut store);
    assert!(tx.is_empty());
    tx.begin_nested().unwrap();
    tx.put(b"x".to_vec(), b"y".to_vec());
    tx.abort_nested().unwrap();
    tx.commit().unwrap();
    assert_eq!(disk.write_points(), 0);
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Begin,
    CommitNested,
    AbortNested,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        (0u8..6).prop_map(Op::Delete),
        Just(Op::Begin),
        Just(Op::CommitNested),
        Just(Op::AbortNested),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The overlay agrees with a model made of cloned maps, and a commit lands it exactly.
    #[test]
    fn overlay_matches_model(ops in proptest::collection::vec(op(), 0..40), commit in any::<bool>()) {
        let mut store = MemoryStore::new();
        store.commit(&[(vec![0], Some(vec![0])), (vec![1], Some(vec![1]))]).unwrap();
        let committed = store.entries();
        let mut model: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = vec![committed.clone()];
        let mut tx = Transaction::new(&mut store);
        for op in ops {
            match op {
                Op::Put(k, v) => { tx.put(vec![k], vec![v]); model.last_mut().unwrap().insert(vec![k], vec![v]); }
                Op::Delete(k) => { tx.delete(vec![k]); model.last_mut().unwrap().remove(&vec![k]); }
                Op::Begin => {
                    if tx.begin_nested().is_ok() { let top = model.last().unwrap().clone(); model.push(top); }
                    else { prop_assert_eq!(model.len(), MAX_NESTING_DEPTH + 1); }
                }
                Op::CommitNested => {
                    if tx.commit_nested().is_ok() { let top = model.pop().unwrap(); *model.last_mut().unwrap() = top; }
                    else { prop_assert_eq!(model.len(), 1); }
                }
                Op::AbortNested => {
                    if tx.abort_nested().is_ok() { model.pop(); } else { prop_assert_eq!(model.len(), 1); }
                }
            }
            let seen: BTreeMap<_, _> = tx.scan_prefix(b"").unwrap().into_iter().collect();
            prop_assert_eq!(&seen, model.last().unwrap());
            for k in 0u8..6 {
                prop_assert_eq!(tx.read(&[k]).unwrap(), model.last().unwrap().get(&vec![k]).cloned());
            }
        }
        let outer = model.first().unwrap().clone();
        if commit { tx.commit().unwrap(); prop_assert_eq!(store.entries(), outer); }
        else { drop(tx); prop_assert_eq!(store.entries(), committed); }
    }
}
