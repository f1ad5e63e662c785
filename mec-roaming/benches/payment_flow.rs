//! A complete payment flow (both servers, every signature made and verified) and the share of
//! its time spent in ECDSA.
#![allow(missing_docs, clippy::unwrap_used)]

use core::time::Duration;
use std::hint::black_box;
use std::time::Instant;

use p256::ecdsa::Signature;
use p256::ecdsa::signature::{Signer, Verifier};

mod common;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mec_roaming::SeededRng;
use mec_roaming::jose::jws::{sign_compact, verify_compact};
use mec_roaming::jose::keys::PrivateKey;
use mec_roaming::message::{PaymentMethod, RequestType};
use mec_roaming::server::{
    CpEvent, HomeInput, HomeOutput, UserRequest, VisitedInput, VisitedOutput, VisitedTxState,
};
use mec_roaming::sim::{ALICE, NetConfig, Sim, UserScript};
use mec_roaming::store::Pin;

fn flow(mut sim: Sim, method: PaymentMethod) -> Sim {
    sim.net = NetConfig::default();
    let tid = sim
        .start(
            Sim::request(ALICE, RequestType::Payment, Some(1250), &[method]),
            UserScript::Pins(vec!["1234".into()], None),
        )
        .unwrap();
    sim.run_for(Duration::from_secs(30));
    assert!(matches!(sim.outcome(&tid), Some(CpEvent::Paid { .. })));
    sim
}

/// The same payment driven without the simulator: every output handed straight to the other
/// machine (what two servers on one core do, minus HTTP). Includes every signature and check.
fn direct_flow(mut sim: Sim, method: PaymentMethod) -> Sim {
    let now = sim.now;
    let req = Sim::request(ALICE, RequestType::Payment, Some(1250), &[method]);
    let tid = sim.visited.start(now, req).unwrap();
    let mut paid = false;
    loop {
        let mut progressed = false;
        while let Some(o) = sim.visited.poll_output() {
            progressed = true;
            match o {
                VisitedOutput::Transmit(t) => sim
                    .home
                    .handle_input(now, HomeInput::Receive { jws: t.jws })
                    .unwrap(),
                VisitedOutput::RedirectUser { url, .. } => {
                    let session = url.rsplit('/').next().unwrap_or_default().to_owned();
                    let fetch = HomeInput::User {
                        session: session.clone(),
                        request: UserRequest::FetchContract,
                    };
                    sim.home.handle_input(now, fetch).unwrap();
                    let pin = UserRequest::SubmitPin {
                        pin: Pin::parse("1234").unwrap(),
                        method: None,
                    };
                    sim.home
                        .handle_input(
                            now,
                            HomeInput::User {
                                session,
                                request: pin,
                            },
                        )
                        .unwrap();
                }
                VisitedOutput::ContentProvider {
                    event: CpEvent::Paid { .. },
                    ..
                } => paid = true,
                VisitedOutput::ContentProvider { .. } => {}
            }
        }
        while let Some(o) = sim.home.poll_output() {
            progressed = true;
            if let HomeOutput::Transmit(t) = o {
                sim.visited
                    .handle_input(now, VisitedInput::Receive { jws: t.jws })
                    .unwrap();
            }
        }
        if !progressed {
            break;
        }
    }
    assert!(paid);
    assert_eq!(sim.visited.state(&tid), Some(&VisitedTxState::Completed));
    sim
}

fn bench(c: &mut Criterion) {
    // Messages per flow and a typical message size, to price the ECDSA work.
    let probe = flow(Sim::new(1, false).unwrap(), PaymentMethod::Wallet);
    let mut g = c.benchmark_group("payment_flow_in_simulator");
    g.sample_size(20);
    g.bench_function("wallet", |b| {
        b.iter_batched(
            || Sim::new(7, false).unwrap(),
            |sim| black_box(flow(sim, PaymentMethod::Wallet)),
            BatchSize::SmallInput,
        );
    });
    g.finish();
    let messages = probe.wire.len();
    let avg_payload = probe.wire.iter().map(|w| w.3.len()).sum::<usize>() / messages.max(1) * 3 / 4;
    eprintln!(
        "payment flow: {messages} signed messages (each signed once and verified once), average payload {avg_payload} bytes"
    );

    // Share of a flow's time spent in ECDSA: flows and the same number of raw P-256 signatures
    // and verifications (over messages of the average size), timed alternately so that load
    // from other processes falls on both alike.
    {
        let mut rng = SeededRng::from_u64(9);
        let key = PrivateKey::generate(&mut rng);
        let vk = key.verifying_key();
        let msg = vec![b'x'; avg_payload * 4 / 3];
        let origin = Instant::now();
        let (mut flow_t, mut ecdsa_t, mut flow_wall) = (0u128, 0u128, 0f64);
        let rounds = 40u32;
        for _ in 0..rounds {
            let sim = Sim::new(7, false).unwrap();
            let w = Instant::now();
            let t = common::cpu_ns(origin);
            black_box(direct_flow(sim, PaymentMethod::Wallet));
            flow_t += common::cpu_ns(origin) - t;
            flow_wall += w.elapsed().as_secs_f64();
            let t = common::cpu_ns(origin);
            for _ in 0..messages {
                let sig: Signature = key.signing_key().sign(black_box(&msg));
                vk.verify(black_box(&msg), &sig).unwrap();
            }
            ecdsa_t += common::cpu_ns(origin) - t;
        }
        let per_flow = flow_t as f64 / f64::from(rounds) / 1e9;
        eprintln!(
            "wallet flow on-CPU {:.3} ms (wall {:.3} ms), {messages} ECDSA signs + {messages} verifies on-CPU {:.3} ms: ECDSA share {:.1} %, {:.0} flows/s per core (on-CPU)",
            per_flow * 1e3,
            flow_wall / f64::from(rounds) * 1e3,
            ecdsa_t as f64 / f64::from(rounds) / 1e6,
            100.0 * ecdsa_t as f64 / flow_t as f64,
            1.0 / per_flow
        );
    }

    let mut g = c.benchmark_group("payment_flow");
    g.sample_size(30);
    for (name, method, encrypt) in [
        ("wallet", PaymentMethod::Wallet, false),
        ("card_token", PaymentMethod::Card, false),
        ("card_jwe", PaymentMethod::Card, true),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || Sim::new(7, encrypt).unwrap(),
                |sim| black_box(direct_flow(sim, method)),
                BatchSize::SmallInput,
            );
        });
    }
    let mut rng = SeededRng::from_u64(3);
    let key = PrivateKey::generate(&mut rng);
    let payload = vec![b'x'; avg_payload];
    let token = sign_compact(&key, "home-uk", &payload).unwrap();
    let vk = key.verifying_key();
    g.bench_function("es256_sign_one_message", |b| {
        b.iter(|| sign_compact(&key, "home-uk", black_box(&payload)).unwrap())
    });
    g.bench_function("es256_verify_one_message", |b| {
        b.iter(|| verify_compact(black_box(&token), &vk).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
