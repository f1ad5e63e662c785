//! `Sim::with_keys`: worlds started from one cached `SimKeys` are independent and identical to
//! the world `Sim::new` builds from the same seed (the fuzz target `roaming_machines` relies on
//! this to generate each world's keys once).
#![allow(clippy::unwrap_used)]

use core::time::Duration;

use mec_roaming::message::{PaymentMethod, RequestType};
use mec_roaming::sim::{ALICE, Sim, SimKeys, UserScript};

fn pay(mut sim: Sim) -> (Vec<(String, String, String, String)>, usize) {
    let req = Sim::request(
        ALICE,
        RequestType::Payment,
        Some(1250),
        &[PaymentMethod::Card],
    );
    sim.start(req, UserScript::Pins(vec!["1234".into()], None))
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    let paid = sim.visited.acquirer().payments.len();
    (sim.wire, paid)
}

#[test]
fn worlds_from_cached_keys_equal_a_new_world() {
    for encrypt in [false, true] {
        let keys = SimKeys::generate(9, encrypt).unwrap();
        let first = pay(Sim::with_keys(&keys).unwrap());
        let second = pay(Sim::with_keys(&keys).unwrap());
        let fresh = pay(Sim::new(9, encrypt).unwrap());
        assert_eq!(first.1, 1, "the payment went through");
        assert!(!first.0.is_empty());
        assert_eq!(
            first, second,
            "a second world from the same keys starts afresh"
        );
        assert_eq!(first, fresh, "cached keys build the world Sim::new builds");
    }
}
