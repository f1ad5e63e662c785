//! Interoperability with an independent implementation: the `scll-core` 1.0.5 host (with
//! `scll-backend-rustcrypto`) opens SCP03 and SCP02 sessions against the gp-scp card side,
//! and its wrapped commands are accepted byte for byte. (scll drops the Le of a case-2
//! command when it wraps it, so Le is not compared.)
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use apdu_codec::{Command, StatusWord, parse_command};
use gp_scp::fuzzing::{DangerSeededRng, SD_AID};
use gp_scp::keys::{KeySet, KeyType};
use scll::backend::{KeyBackend, KeyKind};
use scll::backend_rustcrypto::RustCryptoBackend;

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
        self.0 >> 11
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

fn commands() -> Vec<Command> {
    [0usize, 1, 15, 16, 100, 239]
        .into_iter()
        .map(|n| {
            Command::new(0x80, 0xE2, 0x00, 0x00)
                .with_data((0..n).map(|i| i as u8).collect::<Vec<_>>())
        })
        .chain([Command::new(0x80, 0xCA, 0x00, 0x66).with_le(256)])
        .collect()
}

#[test]
fn scll_scp03_host_against_gp_scp_card() {
    for level in [0x01u8, 0x03, 0x13, 0x33] {
        let backend = RustCryptoBackend::new(PeerRng(u64::from(level)));
        let key = [0x40u8; 16];
        let keys = vec![KeySet::new(0x30, KeyType::Aes, &key, &[0x41; 16], &[0x42; 16]).unwrap()];
        let enc = backend.import_key(KeyKind::Aes128, &key).unwrap();
        let mac = backend.import_key(KeyKind::Aes128, &[0x41; 16]).unwrap();
        let hc = [level; 8];
        let init = scll::scp::scp03::iu_command(0x30, &hc).unwrap();
        let mut rng = DangerSeededRng::new(u64::from(level));
        let config = gp_scp::scp03::card::Scp03CardConfig {
            option: gp_scp::scp03::Scp03Option::I70,
            sd_aid: SD_AID.to_vec(),
        };
        let (iu, pending) = gp_scp::scp03::card::initialize_update(
            &parse_command(&init).unwrap(),
            &keys,
            &config,
            7,
            &mut rng,
        )
        .unwrap();
        // scll verifies our card cryptogram and our pseudo-random card challenge.
        let (mut peer, ea) =
            scll::scp::scp03::begin(&backend, &enc, &mac, 0x30, level, &hc, &SD_AID, &iu.data)
                .unwrap();
        let (r, mut card) = pending
            .external_authenticate(&parse_command(&ea).unwrap())
            .unwrap();
        assert_eq!(r.status, StatusWord::SUCCESS);
        for cmd in commands() {
            let wrapped = peer.wrap_command(&backend, &cmd.to_vec().unwrap()).unwrap();
            let plain = card.unwrap(&parse_command(&wrapped).unwrap()).unwrap();
            assert_eq!(
                (plain.cla, plain.ins, &plain.data),
                (cmd.cla, cmd.ins, &cmd.data),
                "level {level:02X}"
            );
            let resp = card.wrap(&cmd.data, StatusWord::SUCCESS).to_vec();
            let back = peer.unwrap_response(&backend, &resp).unwrap();
            assert_eq!(
                &back[..back.len() - 2],
                &cmd.data[..],
                "level {level:02X}: scll unwraps our response"
            );
        }
    }
}

#[test]
fn scll_scp02_host_against_gp_scp_card() {
    for (i, level) in [(0x55u8, 0x01u8), (0x55, 0x03), (0x15, 0x03)] {
        let backend = RustCryptoBackend::new(PeerRng(u64::from(level)));
        let keys =
            vec![KeySet::new(0x20, KeyType::Des, &[0x40; 16], &[0x41; 16], &[0x42; 16]).unwrap()];
        let e = backend
            .import_key(KeyKind::TripleDesDouble, &[0x40; 16])
            .unwrap();
        let m = backend
            .import_key(KeyKind::TripleDesDouble, &[0x41; 16])
            .unwrap();
        let d = backend
            .import_key(KeyKind::TripleDesDouble, &[0x42; 16])
            .unwrap();
        let hc = [level; 8];
        let init = scll::scp::scp02::iu_command(0x20, 0x00, &hc).unwrap();
        let mut rng = DangerSeededRng::new(u64::from(level));
        let config = gp_scp::scp02::card::Scp02CardConfig {
            option: gp_scp::scp02::Scp02Option::new(i).unwrap(),
            sd_aid: SD_AID.to_vec(),
        };
        let (iu, pending) = gp_scp::scp02::card::initialize_update(
            &parse_command(&init).unwrap(),
            &keys,
            &config,
            0x0102,
            [0; 10],
            &mut rng,
        )
        .unwrap();
        let (mut peer, ea) =
            scll::scp::scp02::begin(&backend, &e, &m, &d, i, 0x20, level, &hc, &iu.data).unwrap();
        let (r, mut card) = pending
            .external_authenticate(&parse_command(&ea).unwrap())
            .unwrap();
        assert_eq!(r.status, StatusWord::SUCCESS);
        for cmd in commands() {
            let wrapped = peer.wrap_command(&backend, &cmd.to_vec().unwrap()).unwrap();
            let plain = card.unwrap(&parse_command(&wrapped).unwrap()).unwrap();
            assert_eq!(
                (plain.cla, plain.ins, &plain.data),
                (cmd.cla, cmd.ins, &cmd.data),
                "i {i:02X} level {level:02X}"
            );
        }
    }
}
