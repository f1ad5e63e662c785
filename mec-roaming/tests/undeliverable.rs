//! Transport failure reports (`Undeliverable`) fed back to both machines: a candidate that is
//! down or refuses is skipped while locating the home, a home that goes down after accepting
//! aborts the transaction promptly, a refused result aborts home (wallet debit given back), an
//! unreachable visited server does not, and late or repeated reports change nothing.
#![allow(clippy::unwrap_used, missing_docs)]

use core::time::Duration;

use mec_roaming::message::{PaymentMethod, RequestType, TransactionId};
use mec_roaming::server::{
    CpEvent, HomeInput, HomeServer, HomeTxState, Transmit, Undeliverable, VisitedInput,
    VisitedTxState,
};
use mec_roaming::sim::{ALICE, CAROL, Fault, HOME, SILENT, Sim, UserScript, VISITED};
use mec_roaming::store::{MemorySubscriberStore, SubscriberStore};
use mec_roaming::{E164, ErrorCode, SeededRng};

fn pins(p: &[&str]) -> UserScript {
    UserScript::Pins(p.iter().map(|s| (*s).to_owned()).collect(), None)
}

/// (virtual ms, partner) of every roamUserRequest sent, retransmissions included.
fn asked(sim: &Sim) -> Vec<(u64, String)> {
    sim.transcript
        .iter()
        .filter(|l| l.ends_with(" roamUserRequest"))
        .map(|l| {
            let (ms, rest) = l.split_once(' ').unwrap();
            let to = rest.split_once("->").unwrap().1.split(' ').next().unwrap();
            (ms.parse().unwrap(), to.to_owned())
        })
        .collect()
}

fn failures(sim: &Sim, tid: &TransactionId) -> Vec<ErrorCode> {
    sim.events_of(tid)
        .into_iter()
        .filter_map(|e| match e {
            CpEvent::Failed { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

fn wallet(sim: &Sim, who: &str) -> u64 {
    sim.home
        .store()
        .wallet_balance(&E164::parse(who).unwrap())
        .unwrap()
        .unwrap()
        .value
}

fn standing_debit(sim: &Sim, tid: &TransactionId) -> bool {
    let key = HomeServer::<MemorySubscriberStore, SeededRng>::wallet_key(VISITED, tid);
    sim.home.store().standing_debit(&key).is_some()
}

/// Every report the world fed (and one per captured message, both kinds) fed again to the
/// message's sender: nothing may change.
fn replay_reports(sim: &mut Sim) {
    let mut reports: Vec<(String, Undeliverable)> = sim
        .reports
        .iter()
        .map(|(m, u)| ((*m).to_owned(), u.clone()))
        .collect();
    for (from, to, kind, jws) in sim.wire.clone() {
        let parsed = mec_roaming::jose::jws::parse_compact(&jws).unwrap();
        let env = mec_roaming::message::parse_envelope(parsed.unverified_payload()).unwrap();
        let t = Transmit {
            to,
            url: String::new(),
            tid: env.tid,
            message_type: kind,
            mid: env.mid,
            jws,
        };
        reports.push((from.clone(), Undeliverable::new(&t, true, "late refusal")));
        reports.push((from, Undeliverable::new(&t, false, "late failure")));
    }
    for (machine, u) in reports {
        if machine == VISITED {
            sim.visited
                .handle_input(sim.now, VisitedInput::Undeliverable(u))
                .unwrap();
        } else {
            sim.home
                .handle_input(sim.now, HomeInput::Undeliverable(u))
                .unwrap();
        }
    }
}

fn locate_past(fault: Fault, seed: u64) {
    // Carol's prefix belongs to silent-uk (asked first); home-uk serves her country code.
    let mut sim = Sim::new(seed, false).unwrap();
    sim.faults.insert(SILENT.into(), fault);
    let tid = sim
        .start(
            Sim::request(
                CAROL,
                RequestType::Payment,
                Some(300),
                &[PaymentMethod::Wallet],
            ),
            pins(&["2468"]),
        )
        .unwrap();
    let t0 = sim.now.as_millis();
    sim.run_for(Duration::from_secs(60));
    assert!(
        matches!(sim.outcome(&tid), Some(CpEvent::Paid { .. })),
        "{:?}",
        sim.outcome(&tid)
    );
    let asked = asked(&sim);
    assert_eq!(
        asked.len(),
        2,
        "one request each, no retransmission: {asked:?}"
    );
    assert_eq!((asked[0].1.as_str(), asked[1].1.as_str()), (SILENT, HOME));
    // Moved on when the transport gave up (300 ms here), not at the 10 s home-response deadline.
    assert_eq!(asked[1].0 - t0, sim.transport_give_up_ms, "{asked:?}");
    assert_eq!(sim.reports.len(), 1, "{:?}", sim.reports);
    let (machine, u) = &sim.reports[0];
    assert_eq!((*machine, u.to.as_str()), (VISITED, SILENT));
    assert_eq!(u.permanent, fault == Fault::Refuses);
    assert_eq!(wallet(&sim, CAROL), 200);
    assert_eq!(sim.visited.acquirer().payments.len(), 1);
    assert_eq!(sim.visited.state(&tid), Some(&VisitedTxState::Completed));
    assert_eq!(sim.home.state(VISITED, &tid), Some(&HomeTxState::Completed));

    // The report again, and reports about every message of the flow, change nothing.
    let events = sim.cp_events.len();
    let wire = sim.wire.len();
    replay_reports(&mut sim);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.cp_events.len(), events);
    assert_eq!(sim.wire.len(), wire, "nothing sent");
    assert_eq!(sim.visited.state(&tid), Some(&VisitedTxState::Completed));
    assert_eq!(sim.home.state(VISITED, &tid), Some(&HomeTxState::Completed));
    assert_eq!(wallet(&sim, CAROL), 200);
    assert_eq!(sim.visited.acquirer().payments.len(), 1);

    // The located home is cached: the next request goes straight to home-uk.
    let tid2 = sim
        .start(
            Sim::request(CAROL, RequestType::Authentication, None, &[]),
            pins(&["2468"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    assert!(matches!(
        sim.outcome(&tid2),
        Some(CpEvent::SecurityCompleted { .. })
    ));
    assert_eq!(sim.wire[wire].1, HOME);
}

#[test]
fn a_candidate_that_refuses_counts_as_no_accept_and_the_next_is_asked() {
    locate_past(Fault::Refuses, 41);
}

#[test]
fn a_candidate_that_is_down_counts_as_no_accept_and_the_next_is_asked() {
    locate_past(Fault::Down, 42);
}

#[test]
fn every_candidate_down_fails_promptly_with_a_connection_failure() {
    let mut sim = Sim::new(43, false).unwrap();
    sim.faults.insert(HOME.into(), Fault::Down);
    sim.faults.insert(SILENT.into(), Fault::Down);
    let tid = sim
        .start(
            Sim::request(ALICE, RequestType::Authentication, None, &[]),
            pins(&["1234"]),
        )
        .unwrap();
    // Two candidates, 300 ms each: failed long before the first 10 s deadline.
    sim.run_for(Duration::from_secs(1));
    assert_eq!(failures(&sim, &tid), [ErrorCode::ConnectionFailure]);
    assert_eq!(
        sim.visited.state(&tid),
        Some(&VisitedTxState::Failed {
            code: ErrorCode::ConnectionFailure
        })
    );
    let to: Vec<String> = asked(&sim).into_iter().map(|a| a.1).collect();
    assert_eq!(to, [HOME, SILENT], "each candidate once, in order");
    sim.run_for(Duration::from_secs(60));
    assert_eq!(failures(&sim, &tid).len(), 1, "notified once");
    replay_reports(&mut sim);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(failures(&sim, &tid).len(), 1, "still once");

    // A refusing candidate among silent ones: the silence decides (402), and a refusal alone
    // is a permanent failure (404).
    let mut sim = Sim::new(44, false).unwrap();
    sim.faults.insert(HOME.into(), Fault::Refuses);
    let tid = sim
        .start(
            Sim::request(ALICE, RequestType::Authentication, None, &[]),
            pins(&["1234"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(failures(&sim, &tid), [ErrorCode::Timeout]);
    let mut sim = Sim::new(45, false).unwrap();
    sim.faults.insert(HOME.into(), Fault::Refuses);
    sim.faults.insert(SILENT.into(), Fault::Refuses);
    let tid = sim
        .start(
            Sim::request(ALICE, RequestType::Authentication, None, &[]),
            pins(&["1234"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(failures(&sim, &tid), [ErrorCode::PermanentFailure]);
}

/// Home accepts, then its endpoint fails before the contract: the visited side aborts as soon
/// as the transport gives up, and the content provider hears it once.
fn home_fails_after_accepting(fault: Fault, code: ErrorCode, seed: u64) {
    let mut sim = Sim::new(seed, false).unwrap();
    let tid = sim
        .start(
            Sim::request(
                ALICE,
                RequestType::Payment,
                Some(2500),
                &[PaymentMethod::Wallet],
            ),
            pins(&["1234"]),
        )
        .unwrap();
    // roamUserRequest arrives at 20 ms; home's accept arrives back at 40 ms and the contract
    // leaves then.
    sim.run_for(Duration::from_millis(30));
    assert_eq!(sim.home.state(VISITED, &tid), Some(&HomeTxState::Accepted));
    sim.faults.insert(HOME.into(), fault);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(failures(&sim, &tid), [code], "{:?}", sim.events_of(&tid));
    assert_eq!(
        sim.visited.state(&tid),
        Some(&VisitedTxState::Failed { code })
    );
    let contract_reports = sim
        .reports
        .iter()
        .filter(|(m, u)| *m == VISITED && u.to == HOME)
        .count();
    assert!(contract_reports >= 1);
    // Nothing else happens on the visited side; home gives up at its own deadline.
    sim.run_for(Duration::from_secs(400));
    assert_eq!(failures(&sim, &tid), [code], "notified once");
    assert!(matches!(
        sim.home.state(VISITED, &tid),
        Some(HomeTxState::Failed { .. })
    ));
    assert!(sim.visited.acquirer().payments.is_empty());
    assert_eq!(wallet(&sim, ALICE), 10_000);
    replay_reports(&mut sim);
    assert_eq!(failures(&sim, &tid), [code]);
}

#[test]
fn home_down_after_accepting_aborts_with_a_connection_failure() {
    home_fails_after_accepting(Fault::Down, ErrorCode::ConnectionFailure, 46);
}

#[test]
fn home_refusing_the_contract_aborts_with_a_permanent_failure() {
    home_fails_after_accepting(Fault::Refuses, ErrorCode::PermanentFailure, 47);
}

fn wallet_payment(sim: &mut Sim) -> TransactionId {
    sim.start(
        Sim::request(
            ALICE,
            RequestType::Payment,
            Some(2500),
            &[PaymentMethod::Wallet],
        ),
        pins(&["1234"]),
    )
    .unwrap()
}

#[test]
fn a_refused_payment_authorization_aborts_home_and_gives_the_debit_back() {
    let mut sim = Sim::new(48, false).unwrap();
    let tid = wallet_payment(&mut sim);
    // The user is redirected at 80 ms and submits the PIN at 580 ms; the authorization is
    // refused then, and the transport's report reaches home at 880 ms.
    sim.run_for(Duration::from_millis(300));
    assert!(matches!(
        sim.visited.state(&tid),
        Some(VisitedTxState::AwaitingUser { .. })
    ));
    sim.faults.insert(VISITED.into(), Fault::Refuses);
    sim.run_for(Duration::from_millis(300));
    assert_eq!(
        sim.home.state(VISITED, &tid),
        Some(&HomeTxState::ResultSent)
    );
    assert!(standing_debit(&sim, &tid));
    sim.faults.clear();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        sim.home.state(VISITED, &tid),
        Some(&HomeTxState::Failed {
            code: ErrorCode::PermanentFailure
        })
    );
    assert!(!standing_debit(&sim, &tid), "debit given back");
    assert_eq!(wallet(&sim, ALICE), 10_000);
    // As for a deadline, home tells the visited side, which was still waiting: the content
    // provider hears of the failure now, not at the visited side's own deadline.
    assert_eq!(failures(&sim, &tid), [ErrorCode::PermanentFailure]);
    sim.run_for(Duration::from_secs(400));
    assert_eq!(failures(&sim, &tid), [ErrorCode::PermanentFailure], "once");
    assert!(sim.visited.acquirer().payments.is_empty());
    assert_eq!(wallet(&sim, ALICE), 10_000);
    replay_reports(&mut sim);
    assert_eq!(wallet(&sim, ALICE), 10_000);
    assert!(sim.visited.acquirer().payments.is_empty());

    // With the visited side refusing everything, the error is refused too: home is done, the
    // visited side fails at its own deadline; nothing is paid either way.
    let mut sim = Sim::new(51, false).unwrap();
    let tid = wallet_payment(&mut sim);
    sim.run_for(Duration::from_millis(300));
    sim.faults.insert(VISITED.into(), Fault::Refuses);
    sim.run_for(Duration::from_secs(2));
    assert!(matches!(
        sim.home.state(VISITED, &tid),
        Some(HomeTxState::Failed { .. })
    ));
    sim.faults.clear();
    sim.run_for(Duration::from_secs(400));
    assert_eq!(failures(&sim, &tid), [ErrorCode::Timeout]);
    assert!(sim.visited.acquirer().payments.is_empty());
    assert_eq!(wallet(&sim, ALICE), 10_000);
}

#[test]
fn an_unreachable_visited_server_does_not_abort_a_sent_result() {
    let mut sim = Sim::new(49, false).unwrap();
    let tid = wallet_payment(&mut sim);
    sim.run_for(Duration::from_millis(300));
    sim.faults.insert(VISITED.into(), Fault::Down);
    sim.run_for(Duration::from_secs(10));
    // The authorization may have arrived before (a timed-out POST can have been acted on):
    // home keeps re-sending it and keeps the debit.
    assert_eq!(
        sim.home.state(VISITED, &tid),
        Some(&HomeTxState::ResultSent)
    );
    assert!(standing_debit(&sim, &tid));
    assert!(
        sim.reports
            .iter()
            .filter(|(m, u)| *m == HOME && !u.permanent)
            .count()
            > 2,
        "every re-send failed: {:?}",
        sim.reports
    );
    sim.faults.clear();
    sim.run_for(Duration::from_secs(60));
    assert!(matches!(sim.outcome(&tid), Some(CpEvent::Paid { .. })));
    assert_eq!(sim.visited.state(&tid), Some(&VisitedTxState::Completed));
    assert_eq!(sim.home.state(VISITED, &tid), Some(&HomeTxState::Completed));
    assert_eq!(wallet(&sim, ALICE), 7500, "debited once");
    assert_eq!(sim.visited.acquirer().payments.len(), 1, "paid once");
    replay_reports(&mut sim);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(wallet(&sim, ALICE), 7500);
    assert_eq!(sim.home.state(VISITED, &tid), Some(&HomeTxState::Completed));
}

#[test]
fn home_refusing_the_final_answer_ends_the_visited_side_without_re_sending() {
    let mut sim = Sim::new(50, false).unwrap();
    let tid = wallet_payment(&mut sim);
    // The payment authorization reaches visited at 600 ms, which pays and sends the result.
    sim.run_for(Duration::from_millis(590));
    assert!(matches!(
        sim.visited.state(&tid),
        Some(VisitedTxState::AwaitingUser { .. })
    ));
    sim.faults.insert(HOME.into(), Fault::Refuses);
    sim.run_for(Duration::from_secs(1));
    assert!(matches!(sim.outcome(&tid), Some(CpEvent::Paid { .. })));
    assert_eq!(sim.visited.state(&tid), Some(&VisitedTxState::Completed));
    sim.run_for(Duration::from_secs(30));
    // Home, without the result, re-sends its authorization; each copy is answered with the
    // result as before, but the visited side's own re-send timer has stopped.
    let count = |kind: &str| sim.wire.iter().filter(|w| w.2 == kind).count();
    assert!(count("paymentAuthorization") > 5);
    assert_eq!(count("paymentResult"), count("paymentAuthorization"));
    assert_eq!(sim.visited.acquirer().payments.len(), 1);
}
