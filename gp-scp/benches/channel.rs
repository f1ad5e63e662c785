//! Secure channel throughput: gp-scp against the bare RustCrypto primitives (the floor) and
//! against the `scll` peer (scll-core 1.0.5 with its RustCrypto backend).
//!
//! `cargo bench -p gp-scp -- --measurement-time 3 --warm-up-time 1`
#![allow(missing_docs, clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::hint::black_box;

use aes::Aes128;
use aes::cipher::{
    Array, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit,
};
use apdu_codec::{Command, StatusWord, parse_command, parse_response};
use cmac::Mac;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use des::{Des, TdesEde2};
use gp_scp::SecurityLevel;
use gp_scp::fuzzing::{Pair, Variant};

const LEN: usize = 255;
const PEER_LEN: usize = 239; // the largest C-DEC command scll-core can wrap (short APDUs only)

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

/// One full cycle: host wrap, card unwrap, card wrap (echo), host unwrap.
fn cycle(pair: &mut Pair, cmd: &Command, resp: &[u8]) {
    let wrapped = pair.host.wrap(cmd).unwrap();
    let bytes = wrapped.to_vec().unwrap();
    let view = parse_command(&bytes).unwrap();
    let step = pair.card.process(
        &view,
        gp_scp::CardInput {
            key_sets: &pair.key_sets,
            counter: 1,
            kdd: [0; 10],
            rng: &mut pair.rng,
        },
    );
    let gp_scp::CardStep::Process(plain) = step else {
        panic!("card refused")
    };
    let r = pair.card.wrap(resp, StatusWord::SUCCESS).to_vec();
    let out = pair.host.unwrap(&parse_response(&r).unwrap()).unwrap();
    black_box((plain, out));
}

fn pad80(data: &[u8], block: usize) -> Vec<u8> {
    let mut v = data.to_vec();
    v.push(0x80);
    while !v.len().is_multiple_of(block) {
        v.push(0);
    }
    v
}

type Blk16 = Array<u8, aes::cipher::consts::U16>;
type Blk8 = Array<u8, aes::cipher::consts::U8>;

/// The floor of an SCP03 level-33 cycle: the same AES operations over the same bytes with
/// pre-keyed `aes` + `cbc` + `cmac` (ICVs, CBC of command and response, four CMACs).
struct Scp03Floor {
    enc: Aes128,
    mac: cmac::Cmac<Aes128>,
    rmac: cmac::Cmac<Aes128>,
}

impl Scp03Floor {
    fn new() -> Self {
        Self {
            enc: Aes128::new(&[1u8; 16].into()),
            mac: <cmac::Cmac<Aes128> as KeyInit>::new(&[2u8; 16].into()),
            rmac: <cmac::Cmac<Aes128> as KeyInit>::new(&[3u8; 16].into()),
        }
    }

    fn icv(&self, counter: u8) -> Blk16 {
        let mut b = Blk16::default();
        b[15] = counter;
        self.enc.encrypt_block(&mut b);
        b
    }

    fn cbc_enc(&self, iv: &Blk16, data: &mut [u8]) {
        let (blocks, _) = Blk16::slice_as_chunks_mut(data);
        cbc::Encryptor::<&Aes128>::inner_iv_init(&self.enc, iv).encrypt_blocks(blocks);
    }

    fn cbc_dec(&self, iv: &Blk16, data: &mut [u8]) {
        let (blocks, _) = Blk16::slice_as_chunks_mut(data);
        cbc::Decryptor::<&Aes128>::inner_iv_init(&self.enc, iv).decrypt_blocks(blocks);
    }

    fn cmac(m: &cmac::Cmac<Aes128>, parts: &[&[u8]]) -> [u8; 16] {
        let mut m = m.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    fn cycle(&self, cmd: &[u8], resp: &[u8]) {
        let chain = [0u8; 16];
        let header = [0x84, 0xE2, 0x00, 0x00, 0x00, 0x01, 0x08];
        // host wrap
        let mut c = pad80(cmd, 16);
        self.cbc_enc(&self.icv(1), &mut c);
        let t = Self::cmac(&self.mac, &[&chain, &header, &c]);
        // card unwrap
        let t2 = Self::cmac(&self.mac, &[&chain, &header, &c]);
        self.cbc_dec(&self.icv(1), &mut c);
        // card wrap
        let mut r = pad80(resp, 16);
        self.cbc_enc(&self.icv(0x80), &mut r);
        let rm = Self::cmac(&self.rmac, &[&t, &r, &[0x90, 0x00]]);
        // host unwrap
        let rm2 = Self::cmac(&self.rmac, &[&t, &r, &[0x90, 0x00]]);
        self.cbc_dec(&self.icv(0x80), &mut r);
        black_box((t2, rm, rm2, c, r));
    }
}

/// The floor of an SCP02 level-03 cycle: ICV encryption, retail MAC (`retail-mac`) over the
/// MAC input and 3DES-CBC of the data, on both sides.
struct Scp02Floor {
    tdes: TdesEde2,
    mac: retail_mac::RetailMac<Des>,
    icv_key: Des,
}

impl Scp02Floor {
    fn new() -> Self {
        Self {
            tdes: TdesEde2::new(&[1u8; 16].into()),
            mac: <retail_mac::RetailMac<Des> as retail_mac::KeyInit>::new_from_slice(&[2u8; 16])
                .unwrap(),
            icv_key: Des::new(&[2u8; 8].into()),
        }
    }

    fn side(&self, mac_input: &[u8], data: &mut [u8], encrypt: bool) {
        let mut icv = Blk8::default();
        self.icv_key.encrypt_block(&mut icv);
        let mut m = self.mac.clone();
        m.update(mac_input);
        let t = m.finalize();
        let (blocks, _) = Blk8::slice_as_chunks_mut(data);
        if encrypt {
            cbc::Encryptor::<&TdesEde2>::inner_iv_init(&self.tdes, &Blk8::default())
                .encrypt_blocks(blocks);
        } else {
            cbc::Decryptor::<&TdesEde2>::inner_iv_init(&self.tdes, &Blk8::default())
                .decrypt_blocks(blocks);
        }
        black_box((icv, t));
    }

    fn cycle(&self, cmd: &[u8]) {
        let mut mac_input = vec![0x84, 0xE2, 0x00, 0x00, 0x00, 0x01, 0x07];
        mac_input.extend_from_slice(cmd);
        let mac_input = pad80(&mac_input, 8);
        let mut data = pad80(cmd, 8);
        self.side(&mac_input, &mut data, true);
        self.side(&mac_input, &mut data, false);
    }
}

fn bench_cycles(c: &mut Criterion) {
    let cmd_data = payload(LEN);
    let cmd = Command::new(0x80, 0xE2, 0x00, 0x00).with_data(cmd_data.clone());

    let mut g = c.benchmark_group("scp03_aes128_l33_255B_cycle");
    g.throughput(Throughput::Bytes(LEN as u64));
    let mut pair = Pair::open(
        Variant::Scp03 {
            i: 0x70,
            key_len: 16,
        },
        SecurityLevel::ALL,
        1,
    )
    .unwrap();
    g.bench_function("gp-scp", |b| b.iter(|| cycle(&mut pair, &cmd, &cmd_data)));
    let floor = Scp03Floor::new();
    g.bench_function("floor_aes_cbc_cmac", |b| {
        b.iter(|| floor.cycle(black_box(&cmd_data), black_box(&cmd_data)))
    });
    g.finish();

    let mut g = c.benchmark_group("scp02_l03_255B_cycle");
    g.throughput(Throughput::Bytes(LEN as u64));
    let mut pair = Pair::open(Variant::Scp02(0x55), SecurityLevel::C_DEC_C_MAC, 1).unwrap();
    g.bench_function("gp-scp", |b| b.iter(|| cycle(&mut pair, &cmd, &[])));
    let floor = Scp02Floor::new();
    g.bench_function("floor_3des_cbc_retail_mac", |b| {
        b.iter(|| floor.cycle(black_box(&cmd_data)))
    });
    g.finish();
}

/// A rand_core 0.6 source for the scll backend (deterministic; benchmark only).
struct PeerRng(u64);
impl rand_core06::RngCore for PeerRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core06::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core06::CryptoRng for PeerRng {}

fn bench_peer(c: &mut Criterion) {
    use gp_scp::keys::{KeySet, KeyType};
    use gp_scp::scp03::Scp03Option;
    use scll::backend::{KeyBackend, KeyKind};
    use scll::backend_rustcrypto::RustCryptoBackend;

    let data = payload(PEER_LEN);
    let cmd = Command::new(0x80, 0xE2, 0x00, 0x00).with_data(data.clone());
    let plain = cmd.to_vec().unwrap();
    let backend = RustCryptoBackend::new(PeerRng(9));

    // SCP03: the peer opens a session against the gp-scp card (interoperability check).
    let key = [0x40u8; 16];
    let keys = vec![KeySet::single(0x30, KeyType::Aes, &key).unwrap()];
    let enc = backend.import_key(KeyKind::Aes128, &key).unwrap();
    let mac = backend.import_key(KeyKind::Aes128, &key).unwrap();
    let aid = gp_scp::fuzzing::SD_AID;
    let hc = [7u8; 8];
    let init = scll::scp::scp03::iu_command(0x30, &hc).unwrap();
    let mut rng = gp_scp::fuzzing::DangerSeededRng::new(3);
    let config = gp_scp::scp03::card::Scp03CardConfig {
        option: Scp03Option::I70,
        sd_aid: aid.to_vec(),
    };
    let (iu, pending) = gp_scp::scp03::card::initialize_update(
        &parse_command(&init).unwrap(),
        &keys,
        &config,
        5,
        &mut rng,
    )
    .unwrap();
    let (mut peer03, ea) =
        scll::scp::scp03::begin(&backend, &enc, &mac, 0x30, 0x33, &hc, &aid, &iu.data).unwrap();
    let (_, mut card03) = pending
        .external_authenticate(&parse_command(&ea).unwrap())
        .unwrap();
    let first = peer03.wrap_command(&backend, &plain).unwrap();
    let recovered = card03.unwrap(&parse_command(&first).unwrap()).unwrap();
    assert_eq!(
        recovered.data, data,
        "scll-wrapped SCP03 command accepted by the gp-scp card"
    );

    let mut g = c.benchmark_group("scp03_host_wrap_239B");
    g.throughput(Throughput::Bytes(PEER_LEN as u64));
    g.bench_function("scll-core", |b| {
        b.iter(|| black_box(peer03.wrap_command(&backend, black_box(&plain)).unwrap()))
    });
    let mut pair = Pair::open(
        Variant::Scp03 {
            i: 0x70,
            key_len: 16,
        },
        SecurityLevel::ALL,
        2,
    )
    .unwrap();
    g.bench_function("gp-scp", |b| {
        b.iter(|| black_box(pair.host.wrap(black_box(&cmd)).unwrap().to_vec().unwrap()))
    });
    g.finish();

    // SCP02.
    let dkey = [0x40u8; 16];
    let dkeys = vec![KeySet::single(0x20, KeyType::Des, &dkey).unwrap()];
    let h = |_: u8| backend.import_key(KeyKind::TripleDesDouble, &dkey).unwrap();
    let (e, m, d) = (h(1), h(2), h(3));
    let init = scll::scp::scp02::iu_command(0x20, 0x00, &hc).unwrap();
    let config02 = gp_scp::scp02::card::Scp02CardConfig {
        option: gp_scp::scp02::Scp02Option::I55,
        sd_aid: aid.to_vec(),
    };
    let (iu, pending) = gp_scp::scp02::card::initialize_update(
        &parse_command(&init).unwrap(),
        &dkeys,
        &config02,
        5,
        [0; 10],
        &mut rng,
    )
    .unwrap();
    let (mut peer02, ea) =
        scll::scp::scp02::begin(&backend, &e, &m, &d, 0x55, 0x20, 0x03, &hc, &iu.data).unwrap();
    let (_, mut card02) = pending
        .external_authenticate(&parse_command(&ea).unwrap())
        .unwrap();
    let first = peer02.wrap_command(&backend, &plain).unwrap();
    let recovered = card02.unwrap(&parse_command(&first).unwrap()).unwrap();
    assert_eq!(
        recovered.data, data,
        "scll-wrapped SCP02 command accepted by the gp-scp card"
    );

    let mut g = c.benchmark_group("scp02_host_wrap_239B");
    g.throughput(Throughput::Bytes(PEER_LEN as u64));
    g.bench_function("scll-core", |b| {
        b.iter(|| black_box(peer02.wrap_command(&backend, black_box(&plain)).unwrap()))
    });
    let mut pair = Pair::open(Variant::Scp02(0x55), SecurityLevel::C_DEC_C_MAC, 2).unwrap();
    g.bench_function("gp-scp", |b| {
        b.iter(|| black_box(pair.host.wrap(black_box(&cmd)).unwrap().to_vec().unwrap()))
    });
    g.finish();
}

criterion_group!(benches, bench_cycles, bench_peer);
criterion_main!(benches);
