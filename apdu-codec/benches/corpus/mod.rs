//! The fixed, deterministic corpora of the `parse` bench (also used by `tests/no_alloc.rs`):
//! 10,000 command APDUs of all seven cases and 10,000 BER-TLV structures shaped like
//! GlobalPlatform responses. A small linear congruential generator with a fixed seed varies
//! lengths and contents, so every run and every machine sees the same bytes.

// A data generator: truncating random numbers and checked-small lengths to bytes is the intent.
#![allow(clippy::cast_possible_truncation)]
/// Number of items in each corpus.
pub(crate) const CORPUS_SIZE: usize = 10_000;

/// Deterministic pseudo-random numbers (Knuth's MMIX LCG constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    fn below(&mut self, n: usize) -> usize {
        self.next() as usize % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// `min + below(spread)` random bytes.
    fn some_bytes(&mut self, min: usize, spread: usize) -> Vec<u8> {
        let n = min + self.below(spread);
        self.bytes(n)
    }
}

fn short(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], le: Option<u8>) -> Vec<u8> {
    let mut out = vec![cla, ins, p1, p2];
    if !data.is_empty() {
        out.push(data.len() as u8);
        out.extend_from_slice(data);
    }
    out.extend(le);
    out
}

fn extended(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8], le: Option<u16>) -> Vec<u8> {
    let mut out = vec![cla, ins, p1, p2, 0x00];
    if !data.is_empty() {
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }
    if let Some(le) = le {
        out.extend_from_slice(&le.to_be_bytes());
    }
    out
}

/// 10,000 command APDUs, a realistic GlobalPlatform/ISO mix covering all seven cases.
pub(crate) fn commands() -> Vec<Vec<u8>> {
    let mut rng = Lcg(0x5EED_A9D0);
    (0..CORPUS_SIZE)
        .map(|i| match i % 16 {
            // Case 1: MANAGE CHANNEL close, a PBOC-less GET RESPONSE-free header.
            0 => short(0x00, 0x70, 0x80, (rng.below(3) + 1) as u8, &[], None),
            // Case 2S: GET DATA (CPLC, card data, key information, sequence counter).
            1 => {
                let (p1, p2) =
                    [(0x9F, 0x7F), (0x00, 0x66), (0x00, 0xE0), (0x00, 0xC1)][rng.below(4)];
                short(0x80, 0xCA, p1, p2, &[], Some(0x00))
            }
            // Case 2S: GET RESPONSE.
            2 => short(0x00, 0xC0, 0x00, 0x00, &[], Some(rng.next() as u8)),
            // Case 3S: EXTERNAL AUTHENTICATE (host cryptogram + C-MAC).
            3 => short(0x84, 0x82, 0x33, 0x00, &rng.bytes(16), None),
            // Case 3S: DELETE an AID.
            4 => {
                let mut data = vec![0x4F, 0x08];
                data.extend(rng.bytes(8));
                short(0x80, 0xE4, 0x00, 0x80, &data, None)
            }
            // Case 3S: PUT KEY (three AES keys with KCVs).
            5 => short(0x80, 0xD8, 0x00, 0x81, &rng.bytes(70), None),
            // Case 4S: SELECT by AID.
            6 => short(0x00, 0xA4, 0x04, 0x00, &rng.some_bytes(5, 12), Some(0x00)),
            // Case 4S: INITIALIZE UPDATE with Le 00.
            7 => short(0x80, 0x50, 0x00, 0x00, &rng.bytes(8), Some(0x00)),
            // Case 4S: GET STATUS under secure messaging.
            8 => short(0x84, 0xF2, 0x40, 0x02, &rng.bytes(10), Some(0x00)),
            // Case 4S: INSTALL [for install and make selectable].
            9 => short(0x80, 0xE6, 0x0C, 0x00, &rng.some_bytes(30, 40), Some(0x00)),
            // Case 3S: LOAD block (the bulk of a CAP file upload).
            10 => {
                let block = rng.next() as u8;
                short(0x80, 0xE8, 0x00, block, &rng.some_bytes(200, 56), None)
            }
            // Case 3S: STORE DATA on logical channel 1.
            11 => short(0x81, 0xE2, 0x80, 0x00, &rng.some_bytes(20, 100), None),
            // Case 2E: GET DATA certificate store (BF21), Le 0000.
            12 => extended(0x80, 0xCA, 0xBF, 0x21, &[], Some(0x0000)),
            // Case 3E: STORE DATA of a large personalisation block.
            13 => extended(0x80, 0xE2, 0x80, 0x00, &rng.some_bytes(256, 700), None),
            // Case 4E: PERFORM SECURITY OPERATION with a certificate.
            14 => extended(
                0x80,
                0x2A,
                0x18,
                0x10,
                &rng.some_bytes(300, 300),
                Some(0x0000),
            ),
            // Case 4S: VERIFY PIN with Le (PBOC terminals send it).
            _ => short(0x00, 0x20, 0x00, 0x01, &rng.bytes(6), Some(0x00)),
        })
        .collect()
}

fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    match value.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n <= 0xFF => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

/// One GET STATUS (P2 bit 02, tagged format) response: several E3 entries
/// (GPC 2.3 §11.4.3: 4F AID, 9F70 life cycle, C5 privileges, C4 load file, CE version,
/// 84 modules).
fn get_status(rng: &mut Lcg) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(4) {
        let mut entry = Vec::new();
        entry.extend(tlv(&[0x4F], &rng.some_bytes(5, 12)));
        entry.extend(tlv(&[0x9F, 0x70], &[0x07]));
        entry.extend(tlv(&[0xC5], &[0x00, 0x00, 0x00]));
        if rng.below(2) == 0 {
            entry.extend(tlv(&[0xC4], &rng.bytes(7)));
            entry.extend(tlv(&[0xCE], &[0x01, 0x00]));
        } else {
            entry.extend(tlv(&[0xCC], &rng.bytes(8)));
        }
        out.extend(tlv(&[0xE3], &entry));
    }
    out
}

/// GET DATA 9F7F: CPLC (GPC 2.3 Annex H), a 42-byte primitive under a two-byte tag.
fn cplc(rng: &mut Lcg) -> Vec<u8> {
    tlv(&[0x9F, 0x7F], &rng.bytes(42))
}

/// GET DATA 00E0: key information template (GPC 2.3 §11.3.3.1), E0 { C0 ... }.
fn key_information(rng: &mut Lcg) -> Vec<u8> {
    let mut inner = Vec::new();
    for id in 1..=(3 + rng.below(4)) as u8 {
        inner.extend(tlv(&[0xC0], &[id, 0x30 + rng.below(3) as u8, 0x88, 0x10]));
    }
    tlv(&[0xE0], &inner)
}

/// GET DATA 0066: card recognition data, nested three levels (66 { 73 { 06, 60 { 06 } ... } }).
fn card_data(rng: &mut Lcg) -> Vec<u8> {
    let oid = |rng: &mut Lcg| tlv(&[0x06], &rng.bytes(7));
    let mut inner = oid(rng);
    for tag in [0x60u8, 0x63, 0x64] {
        inner.extend(tlv(&[tag], &oid(rng)));
    }
    tlv(&[0x66], &tlv(&[0x73], &inner))
}

/// 10,000 BER-TLV structures as GlobalPlatform cards return them.
pub(crate) fn tlv_structures() -> Vec<Vec<u8>> {
    let mut rng = Lcg(0x0B57_E7A1);
    (0..CORPUS_SIZE)
        .map(|i| match i % 8 {
            0..=3 => get_status(&mut rng),
            4 | 5 => key_information(&mut rng),
            6 => cplc(&mut rng),
            _ => card_data(&mut rng),
        })
        .collect()
}
