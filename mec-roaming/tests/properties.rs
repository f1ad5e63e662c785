//! Property: any interleaving of losses, duplicates, delays, replays and a server outage (its
//! endpoint down, the transport reporting messages to it undeliverable) yields at most one
//! payment per transaction and states on both servers that agree about the money.
#![allow(clippy::unwrap_used, missing_docs)]

use core::time::Duration;

use mec_roaming::message::{PaymentMethod, RequestType};
use mec_roaming::server::{CpEvent, HomeServer, HomeTxState, VisitedTxState};
use mec_roaming::sim::{ALICE, CAROL, Fault, HOME, NetConfig, Sim, UserScript, VISITED};
use mec_roaming::store::{MemorySubscriberStore, SubscriberStore};
use mec_roaming::{E164, SeededRng};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn at_most_one_payment_and_consistent_money(
        seed in any::<u64>(),
        loss in 0u32..450,
        dup in 0u32..500,
        max_delay in 0u64..4000,
        wallet in any::<bool>(),
        encrypt in any::<bool>(),
        second_tx in any::<bool>(),
        replays in proptest::collection::vec((any::<u16>(), any::<bool>(), 0u64..20_000), 0..12),
        outage in proptest::option::of((any::<bool>(), 0u64..10_000, 0u64..40_000)),
    ) {
        let mut sim = Sim::new(seed, encrypt).unwrap();
        sim.net = NetConfig { loss_permille: loss, dup_permille: dup, min_delay_ms: 1, max_delay_ms: max_delay };
        let method = if wallet { PaymentMethod::Wallet } else { PaymentMethod::Card };
        let mut tids = vec![sim.start(Sim::request(ALICE, RequestType::Payment, Some(1500), &[method]), UserScript::Pins(vec!["1234".into()], None)).unwrap()];
        if second_tx {
            tids.push(sim.start(Sim::request(CAROL, RequestType::Payment, Some(200), &[PaymentMethod::Wallet]), UserScript::Pins(vec!["2468".into()], None)).unwrap());
        }
        // One server's endpoint is down for a while (up to 40 s: below the 120 s give-up time).
        if let Some((home_down, after_ms, for_ms)) = outage {
            let name = if home_down { HOME } else { VISITED };
            sim.run_for(Duration::from_millis(after_ms));
            sim.faults.insert(name.into(), Fault::Down);
            sim.run_for(Duration::from_millis(for_ms));
            sim.faults.clear();
        }
        // Interleave replays of captured messages (to either side) with the run.
        for (pick, to_home, wait_ms) in replays {
            sim.run_for(Duration::from_millis(wait_ms));
            if !sim.wire.is_empty() {
                let w = sim.wire[usize::from(pick) % sim.wire.len()].3.clone();
                let _ = if to_home { sim.inject_to_home(w) } else { sim.inject_to_visited(w) };
            }
        }
        // At most 50 s of outage, 240 s of replays plus 300 s: below the 600 s for which
        // finished transactions are kept, so both sides still hold every state checked below.
        sim.run_for(Duration::from_secs(300));

        let payments = &sim.visited.acquirer().payments;
        for tid in &tids {
            let paid = payments.iter().filter(|p| &p.tid == tid).count();
            prop_assert!(paid <= 1, "paid {} times", paid);
            let outcome = sim.outcome(tid).cloned();
            prop_assert_eq!(paid == 1, matches!(outcome, Some(CpEvent::Paid { .. })), "outcome {:?}", outcome);
            let v = sim.visited.state(tid).cloned();
            let h = sim.home.state(VISITED, tid).cloned();
            // Settled: both finished, and they agree.
            if v == Some(VisitedTxState::Completed) {
                prop_assert_eq!(h.clone(), Some(HomeTxState::Completed));
            }
            if paid == 1 {
                prop_assert!(matches!(h, Some(HomeTxState::Completed)), "paid but home {:?}", h);
            }
            // Wallet money: a standing debit at home exists exactly when the acquirer moved it.
            let key = HomeServer::<MemorySubscriberStore, SeededRng>::wallet_key(VISITED, tid);
            let standing = sim.home.store().standing_debit(&key).is_some();
            let wallet_paid = payments.iter().any(|p| &p.tid == tid && p.method == PaymentMethod::Wallet);
            let in_flight = matches!(h, Some(HomeTxState::ResultSent | HomeTxState::InDoubt));
            prop_assert!(standing == wallet_paid || in_flight, "standing {} paid {} home {:?} visited {:?}", standing, wallet_paid, h, v);
        }
        // Balances add up: what left the wallets is what the merchant received by wallet.
        let alice = E164::parse(ALICE).unwrap();
        let carol = E164::parse(CAROL).unwrap();
        let left = (10_000 - sim.home.store().wallet_balance(&alice).unwrap().unwrap().value)
            + (500 - sim.home.store().wallet_balance(&carol).unwrap().unwrap().value);
        let by_wallet: u64 = payments.iter().filter(|p| p.method == PaymentMethod::Wallet).map(|p| p.amount.value).sum();
        let any_in_flight = tids.iter().any(|t| matches!(sim.home.state(VISITED, t), Some(HomeTxState::ResultSent | HomeTxState::InDoubt)));
        prop_assert!(left == by_wallet || any_in_flight, "wallets lost {} merchant got {}", left, by_wallet);
        let merchant: u64 = payments.iter().map(|p| p.amount.value).sum();
        prop_assert_eq!(sim.visited.acquirer().merchant_balances.values().sum::<u64>(), merchant);
    }
}
