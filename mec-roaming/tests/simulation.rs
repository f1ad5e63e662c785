//! Deterministic simulations of content provider, visited server, home server and user.
#![allow(clippy::unwrap_used, missing_docs)]

use core::time::Duration;

use mec_roaming::message::{PaymentMethod, RequestType};
use mec_roaming::server::{CpEvent, HomeTxState, UserReply, VisitedTxState};
use mec_roaming::sim::{ALICE, BOB, CAROL, HOME, NOBODY, NetConfig, Sim, UserScript, VISITED};
use mec_roaming::store::SubscriberStore;
use mec_roaming::{E164, ErrorCode};

fn pins(p: &[&str]) -> UserScript {
    UserScript::Pins(p.iter().map(|s| (*s).to_owned()).collect(), None)
}

fn pins_with(p: &[&str], m: PaymentMethod) -> UserScript {
    UserScript::Pins(p.iter().map(|s| (*s).to_owned()).collect(), Some(m))
}

fn completed(sim: &Sim, tid: &mec_roaming::message::TransactionId) {
    assert_eq!(
        sim.visited.state(tid),
        Some(&VisitedTxState::Completed),
        "visited state"
    );
    assert_eq!(
        sim.home.state(VISITED, tid),
        Some(&HomeTxState::Completed),
        "home state"
    );
}

#[test]
fn authentication_flow_fig5() {
    let mut sim = Sim::new(1, false).unwrap();
    let tid = sim
        .start(
            Sim::request(ALICE, RequestType::Authentication, None, &[]),
            pins(&["1234"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    match sim.outcome(&tid) {
        Some(CpEvent::SecurityCompleted { result }) => {
            assert_eq!(result.request_type, RequestType::Authentication);
            assert_eq!(result.subscriber, E164::parse(ALICE).unwrap());
            assert!(result.signature.is_none());
        }
        other => panic!("unexpected outcome {other:?}"),
    }
    completed(&sim, &tid);
    // The user saw the receipt with the continue URL (steps 17-18).
    assert!(sim.user_replies.iter().any(|(_, r)| matches!(r, UserReply::Receipt { receipt } if receipt.continue_url == "https://cp.invalid/done")));
    let kinds: Vec<&str> = sim.wire.iter().map(|w| w.2.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "roamUserRequest",
            "roamUserResponse",
            "contract",
            "contractAck",
            "roamSecurityResult",
            "receipt",
            "ack"
        ]
    );
}

#[test]
fn delegated_signature_is_verifiable_by_the_content_provider() {
    let mut sim = Sim::new(2, false).unwrap();
    let tid = sim
        .start(
            Sim::request(ALICE, RequestType::DigitalSignature, None, &[]),
            pins(&["1234"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    let Some(CpEvent::SecurityCompleted { result }) = sim.outcome(&tid) else {
        panic!("{:?}", sim.outcome(&tid))
    };
    assert!(result.signature.is_some() && result.subscriber_key.is_some());
    assert_eq!(result.request_type, RequestType::DigitalSignature);
    assert_eq!(result.subscriber, E164::parse(ALICE).unwrap());
    completed(&sim, &tid);
}

#[test]
fn end_to_end_signature_forwarded_by_home() {
    let mut sim = Sim::new(3, false).unwrap();
    let key = mec_roaming::jose::keys::PrivateKey::from_pkcs8_der(
        &sim.alice_device.to_pkcs8_der().unwrap(),
    )
    .unwrap();
    let tid = sim
        .start(
            Sim::request(ALICE, RequestType::EndToEndSignature, None, &[]),
            UserScript::DeviceSign { key, tamper: false },
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    assert!(
        matches!(sim.outcome(&tid), Some(CpEvent::SecurityCompleted { .. })),
        "{:?}",
        sim.outcome(&tid)
    );
    completed(&sim, &tid);
}

#[test]
fn tampered_contract_signature_is_refused() {
    let mut sim = Sim::new(4, false).unwrap();
    let key = mec_roaming::jose::keys::PrivateKey::from_pkcs8_der(
        &sim.alice_device.to_pkcs8_der().unwrap(),
    )
    .unwrap();
    let tid = sim
        .start(
            Sim::request(ALICE, RequestType::EndToEndSignature, None, &[]),
            UserScript::DeviceSign { key, tamper: true },
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    assert!(
        matches!(
            sim.outcome(&tid),
            Some(CpEvent::Failed {
                code: ErrorCode::TransactionDataInvalid,
                ..
            })
        ),
        "{:?}",
        sim.outcome(&tid)
    );
    assert!(matches!(
        sim.home.state(VISITED, &tid),
        Some(HomeTxState::Failed { .. })
    ));
}

#[test]
fn tampered_message_in_transit_is_refused_and_changes_nothing() {
    let mut sim = Sim::new(5, false).unwrap();
    sim.home_silent = true; // capture the contract instead of delivering it
    let _tid = sim
        .start(
            Sim::request(ALICE, RequestType::Authentication, None, &[]),
            pins(&["1234"]),
        )
        .unwrap();
    let req = sim
        .wire
        .iter()
        .find(|w| w.2 == "roamUserRequest")
        .unwrap()
        .3
        .clone();
    // Flip one character of the payload part.
    let mut parts: Vec<String> = req.split('.').map(str::to_owned).collect();
    let mut p = parts[1].clone().into_bytes();
    p[10] = if p[10] == b'A' { b'B' } else { b'A' };
    parts[1] = String::from_utf8(p).unwrap();
    let forged = parts.join(".");
    let e = sim.inject_to_home(forged).unwrap_err();
    assert!(
        matches!(
            ErrorCode::from(&e),
            ErrorCode::AccessDenied | ErrorCode::MessageInvalid
        ),
        "{e}"
    );
    assert!(sim.home.state(VISITED, &_tid).is_none(), "nothing created");
}

#[test]
fn card_payment_fig6_with_tokenized_card() {
    for encrypt in [false, true] {
        let mut sim = Sim::new(6, encrypt).unwrap();
        let tid = sim
            .start(
                Sim::request(
                    ALICE,
                    RequestType::Payment,
                    Some(1250),
                    &[PaymentMethod::Card, PaymentMethod::Wallet],
                ),
                pins_with(&["1234"], PaymentMethod::Card),
            )
            .unwrap();
        sim.run_for(Duration::from_secs(60));
        assert!(
            matches!(
                sim.outcome(&tid),
                Some(CpEvent::Paid {
                    method: PaymentMethod::Card,
                    ..
                })
            ),
            "{:?}",
            sim.outcome(&tid)
        );
        completed(&sim, &tid);
        let pays = &sim.visited.acquirer().payments;
        assert_eq!(pays.len(), 1);
        let card = pays[0].card.as_ref().unwrap();
        assert_eq!(card.masked_pan, "411111******1111");
        // The PAN never crossed the wire, in clear or otherwise.
        assert!(sim.wire.iter().all(|w| !w.3.contains("4111111111111111")));
        let auth = sim
            .wire
            .iter()
            .find(|w| w.2 == "paymentAuthorization")
            .unwrap();
        let payload = mec_roaming::jose::jws::parse_compact(&auth.3).unwrap();
        let text = String::from_utf8(payload.unverified_payload().to_vec()).unwrap();
        assert_eq!(text.contains("encryptedToken"), encrypt, "{text}");
        assert_eq!(text.contains("maskedPan"), !encrypt);
    }
}

#[test]
fn wallet_payment_moves_funds_once() {
    let mut sim = Sim::new(7, false).unwrap();
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
    sim.run_for(Duration::from_secs(60));
    assert!(matches!(
        sim.outcome(&tid),
        Some(CpEvent::Paid {
            method: PaymentMethod::Wallet,
            ..
        })
    ));
    completed(&sim, &tid);
    let alice = E164::parse(ALICE).unwrap();
    assert_eq!(
        sim.home
            .store()
            .wallet_balance(&alice)
            .unwrap()
            .unwrap()
            .value,
        7500
    );
    assert_eq!(
        sim.visited
            .acquirer()
            .merchant_balances
            .get("Helsinki Tickets Oy"),
        Some(&2500)
    );
}

#[test]
fn insufficient_wallet_then_timeout_leaves_balance_untouched() {
    let mut sim = Sim::new(8, false).unwrap();
    let tid = sim
        .start(
            Sim::request(
                CAROL,
                RequestType::Payment,
                Some(1000),
                &[PaymentMethod::Wallet],
            ),
            pins(&["2468"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(400));
    assert!(
        sim.user_replies
            .iter()
            .any(|(_, r)| *r == UserReply::InsufficientFunds)
    );
    assert!(
        matches!(
            sim.outcome(&tid),
            Some(CpEvent::Failed {
                code: ErrorCode::Timeout,
                ..
            })
        ),
        "{:?}",
        sim.outcome(&tid)
    );
    let carol = E164::parse(CAROL).unwrap();
    assert_eq!(
        sim.home
            .store()
            .wallet_balance(&carol)
            .unwrap()
            .unwrap()
            .value,
        500
    );
    assert!(sim.visited.acquirer().payments.is_empty());
}

#[test]
fn no_common_payment_method() {
    let mut sim = Sim::new(9, false).unwrap();
    let tid = sim
        .start(
            Sim::request(
                BOB,
                RequestType::Payment,
                Some(100),
                &[PaymentMethod::Wallet],
            ),
            pins(&["4321"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    assert!(matches!(
        sim.outcome(&tid),
        Some(CpEvent::Failed {
            code: ErrorCode::TransactionDataInvalid,
            ..
        })
    ));
}

#[test]
fn wrong_pin_three_times_locks_the_subscriber() {
    let mut sim = Sim::new(10, false).unwrap();
    let tid = sim
        .start(
            Sim::request(ALICE, RequestType::Authentication, None, &[]),
            pins(&["0000", "1111", "2222", "1234"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    let replies: Vec<&UserReply> = sim
        .user_replies
        .iter()
        .map(|(_, r)| r)
        .filter(|r| !matches!(r, UserReply::Contract { .. }))
        .collect();
    assert_eq!(
        replies,
        [
            &UserReply::WrongPin { tries_left: 2 },
            &UserReply::WrongPin { tries_left: 1 },
            &UserReply::Blocked
        ]
    );
    assert!(matches!(
        sim.outcome(&tid),
        Some(CpEvent::Failed {
            code: ErrorCode::AccessDenied,
            ..
        })
    ));
    let alice = E164::parse(ALICE).unwrap();
    assert_eq!(
        sim.home
            .store()
            .subscriber(&alice)
            .unwrap()
            .unwrap()
            .pin_tries_left,
        0
    );
    // Later requests are turned away at the roamUserRequest.
    let tid2 = sim
        .start(
            Sim::request(ALICE, RequestType::Authentication, None, &[]),
            pins(&["1234"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    assert!(matches!(
        sim.outcome(&tid2),
        Some(CpEvent::Failed {
            code: ErrorCode::AccessDenied,
            ..
        })
    ));
}

#[test]
fn correct_pin_resets_the_try_counter() {
    let mut sim = Sim::new(11, false).unwrap();
    let tid = sim
        .start(
            Sim::request(ALICE, RequestType::Authentication, None, &[]),
            pins(&["0000", "1234"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    assert!(matches!(
        sim.outcome(&tid),
        Some(CpEvent::SecurityCompleted { .. })
    ));
    let alice = E164::parse(ALICE).unwrap();
    assert_eq!(
        sim.home
            .store()
            .subscriber(&alice)
            .unwrap()
            .unwrap()
            .pin_tries_left,
        3
    );
}

#[test]
fn unknown_subscriber_fails_without_a_broadcast() {
    let mut sim = Sim::new(12, false).unwrap();
    let tid = sim
        .start(
            Sim::request(NOBODY, RequestType::Authentication, None, &[]),
            pins(&["1234"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    assert!(sim.wire.is_empty(), "no partner asked");
    assert!(matches!(
        sim.outcome(&tid),
        Some(CpEvent::Failed {
            code: ErrorCode::AccessDenied,
            ..
        })
    ));
    // A subscriber in a served range that home does not know: home rejects, the other UK partner
    // (silent) is tried, then the transaction fails.
    let tid = sim
        .start(
            Sim::request("+447700000000", RequestType::Authentication, None, &[]),
            pins(&["1234"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    assert!(
        matches!(
            sim.outcome(&tid),
            Some(CpEvent::Failed {
                code: ErrorCode::Timeout,
                ..
            })
        ),
        "{:?}",
        sim.outcome(&tid)
    );
    let mut asked: Vec<&str> = sim
        .wire
        .iter()
        .filter(|w| w.2 == "roamUserRequest")
        .map(|w| w.1.as_str())
        .collect();
    asked.dedup(); // retransmissions to the silent partner
    assert_eq!(asked, [HOME, "silent-uk"]);
}

#[test]
fn silent_home_times_out_and_the_next_candidate_is_asked() {
    // Carol's prefix belongs to the silent partner; home-uk serves her country code.
    let mut sim = Sim::new(13, false).unwrap();
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
    sim.run_for(Duration::from_secs(120));
    assert!(
        matches!(sim.outcome(&tid), Some(CpEvent::Paid { .. })),
        "{:?}",
        sim.outcome(&tid)
    );
    let asked: Vec<&str> = sim
        .wire
        .iter()
        .filter(|w| w.2 == "roamUserRequest")
        .map(|w| w.1.as_str())
        .collect();
    assert!(
        asked.len() >= 2 && asked[0] == "silent-uk" && *asked.last().unwrap() == HOME,
        "{asked:?}"
    );
    // The located home is cached: the next request goes straight to home-uk.
    let before = sim.wire.len();
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
    assert_eq!(sim.wire[before].1, HOME);

    // A home that never answers at all: the content provider hears of a timeout.
    let mut sim = Sim::new(14, false).unwrap();
    sim.home_silent = true;
    let tid = sim
        .start(
            Sim::request(ALICE, RequestType::Authentication, None, &[]),
            pins(&["1234"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(120));
    assert!(matches!(
        sim.outcome(&tid),
        Some(CpEvent::Failed {
            code: ErrorCode::Timeout,
            ..
        })
    ));
    assert!(
        sim.wire.iter().filter(|w| w.2 == "roamUserRequest").count() > 2,
        "retransmitted"
    );
}

#[test]
fn user_never_returns_both_sides_abort() {
    let mut sim = Sim::new(15, false).unwrap();
    let tid = sim
        .start(
            Sim::request(
                ALICE,
                RequestType::Payment,
                Some(100),
                &[PaymentMethod::Wallet],
            ),
            UserScript::Ignore,
        )
        .unwrap();
    sim.run_for(Duration::from_secs(400));
    assert!(matches!(
        sim.outcome(&tid),
        Some(CpEvent::Failed {
            code: ErrorCode::Timeout,
            ..
        })
    ));
    assert!(matches!(
        sim.home.state(VISITED, &tid),
        Some(HomeTxState::Failed { .. })
    ));
}

#[test]
fn forged_signature_and_unknown_sender_are_refused() {
    let mut sim = Sim::new(16, false).unwrap();
    let tid = sim
        .start(
            Sim::request(
                ALICE,
                RequestType::Payment,
                Some(100),
                &[PaymentMethod::Card],
            ),
            UserScript::Ignore,
        )
        .unwrap();
    sim.run_for(Duration::from_secs(5));
    assert!(matches!(
        sim.visited.state(&tid),
        Some(VisitedTxState::AwaitingUser { .. })
    ));
    // Mallory signs a payment authorization with her own key but claims to be home-uk.
    let mut rng = mec_roaming::SeededRng::from_u64(99);
    let mallory = mec_roaming::jose::keys::PrivateKey::generate(&mut rng);
    let env = serde_json::json!({"ver":"1.0","mid":"m1","tid":tid.as_str(),"iss":HOME,"aud":VISITED,"iat":sim.now.as_unix_secs(),
        "body":{"type":"error","code":404,"detail":"forged"}});
    let forged =
        mec_roaming::jose::jws::sign_compact(&mallory, HOME, env.to_string().as_bytes()).unwrap();
    let e = sim.inject_to_visited(forged).unwrap_err();
    assert_eq!(ErrorCode::from(&e), ErrorCode::AccessDenied);
    let unknown =
        mec_roaming::jose::jws::sign_compact(&mallory, "mallory", env.to_string().as_bytes())
            .unwrap();
    assert_eq!(
        ErrorCode::from(&sim.inject_to_visited(unknown).unwrap_err()),
        ErrorCode::AccessDenied
    );
    assert!(
        matches!(
            sim.visited.state(&tid),
            Some(VisitedTxState::AwaitingUser { .. })
        ),
        "unchanged"
    );
}

#[test]
fn replayed_authorization_pays_once_and_stale_replay_is_refused() {
    let mut sim = Sim::new(17, false).unwrap();
    let tid = sim
        .start(
            Sim::request(
                ALICE,
                RequestType::Payment,
                Some(700),
                &[PaymentMethod::Wallet],
            ),
            pins(&["1234"]),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(30));
    completed(&sim, &tid);
    let auth = sim
        .wire
        .iter()
        .find(|w| w.2 == "paymentAuthorization")
        .unwrap()
        .3
        .clone();
    let n = sim.wire.len();
    sim.inject_to_visited(auth.clone()).unwrap();
    // Answered with the very same payment result, not paid again.
    assert_eq!(sim.wire.len(), n + 1);
    assert_eq!(sim.wire[n].2, "paymentResult");
    assert_eq!(
        sim.wire[n].3,
        sim.wire.iter().find(|w| w.2 == "paymentResult").unwrap().3
    );
    assert_eq!(sim.visited.acquirer().payments.len(), 1);
    // After the validity window it is stale.
    sim.now = sim.now.saturating_add(Duration::from_secs(400));
    assert_eq!(
        ErrorCode::from(&sim.inject_to_visited(auth).unwrap_err()),
        ErrorCode::AccessDenied
    );
    assert_eq!(sim.visited.acquirer().payments.len(), 1);
}

#[test]
fn lossy_duplicating_reordering_network_still_pays_exactly_once() {
    for seed in 0..12u64 {
        let mut sim = Sim::new(100 + seed, seed % 2 == 0).unwrap();
        sim.net = NetConfig {
            loss_permille: 250,
            dup_permille: 250,
            min_delay_ms: 5,
            max_delay_ms: 3000,
        };
        let method = if seed % 3 == 0 {
            PaymentMethod::Card
        } else {
            PaymentMethod::Wallet
        };
        let tid = sim
            .start(
                Sim::request(ALICE, RequestType::Payment, Some(900), &[method]),
                pins(&["1234"]),
            )
            .unwrap();
        sim.run_for(Duration::from_secs(500));
        assert!(
            matches!(sim.outcome(&tid), Some(CpEvent::Paid { .. })),
            "seed {seed}: {:?}",
            sim.outcome(&tid)
        );
        assert_eq!(sim.visited.acquirer().payments.len(), 1, "seed {seed}");
        completed(&sim, &tid);
    }
}

#[test]
fn same_seed_same_transcript() {
    let run = |seed| {
        let mut sim = Sim::new(seed, true).unwrap();
        sim.net = NetConfig {
            loss_permille: 100,
            dup_permille: 100,
            min_delay_ms: 5,
            max_delay_ms: 500,
        };
        sim.start(
            Sim::request(
                ALICE,
                RequestType::Payment,
                Some(10),
                &[PaymentMethod::Card],
            ),
            pins(&["1234"]),
        )
        .unwrap();
        sim.run_for(Duration::from_secs(300));
        sim.wire.iter().map(|w| w.3.clone()).collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn crash_and_restart_from_snapshots_at_any_point_pays_once() {
    for (i, at_ms) in [0u64, 15, 30, 60, 520, 600, 1100, 1600, 2600, 5000]
        .into_iter()
        .enumerate()
    {
        for method in [PaymentMethod::Card, PaymentMethod::Wallet] {
            let mut sim = Sim::new(200 + i as u64, true).unwrap();
            let tid = sim
                .start(
                    Sim::request(ALICE, RequestType::Payment, Some(4200), &[method]),
                    pins(&["1234"]),
                )
                .unwrap();
            sim.run_for(Duration::from_millis(at_ms));
            sim.restart(9000 + i as u64).unwrap();
            sim.run_for(Duration::from_secs(120));
            assert!(
                matches!(sim.outcome(&tid), Some(CpEvent::Paid { .. })),
                "restart at {at_ms} ms: {:?}",
                sim.outcome(&tid)
            );
            assert_eq!(
                sim.visited.acquirer().payments.len(),
                1,
                "restart at {at_ms} ms"
            );
            completed(&sim, &tid);
            if method == PaymentMethod::Wallet {
                let alice = E164::parse(ALICE).unwrap();
                assert_eq!(
                    sim.home
                        .store()
                        .wallet_balance(&alice)
                        .unwrap()
                        .unwrap()
                        .value,
                    10_000 - 4200
                );
            }
        }
    }
}

#[test]
fn silent_home_while_finishing_ends_without_spinning() {
    // The visited server has the outcome and is re-sending the result to a home server that
    // no longer answers. Its reported deadlines must be ones it acts on: the simulation
    // terminates, the transaction gives up cleanly, and the payment stands.
    let mut sim = Sim::new(11, false).unwrap();
    let tid = sim
        .start(
            Sim::request(
                ALICE,
                RequestType::Payment,
                Some(1200),
                &[PaymentMethod::Wallet],
            ),
            pins(&["1234"]),
        )
        .unwrap();
    let mut finishing = false;
    for _ in 0..10_000 {
        sim.run_for(Duration::from_millis(1));
        if matches!(
            sim.visited.state(&tid),
            Some(mec_roaming::server::VisitedTxState::Finishing { .. })
        ) {
            finishing = true;
            break;
        }
    }
    assert!(finishing, "the flow never reached Finishing");
    sim.home_silent = true;
    // Far past the overall transaction deadline and the give-up time.
    let start = sim.now;
    sim.run_for(Duration::from_secs(3600));
    assert!(sim.now > start, "virtual time advanced");
    for (_, state) in sim.visited.transactions() {
        assert!(!matches!(
            state,
            mec_roaming::server::VisitedTxState::Finishing { .. }
        ));
    }
    if let Some(next) = sim.visited.poll_timeout() {
        assert!(next > start, "no deadline left in the past");
    }
    assert!(matches!(
        sim.outcome(&tid),
        Some(CpEvent::Paid {
            method: PaymentMethod::Wallet,
            ..
        })
    ));
}
