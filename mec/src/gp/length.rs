//! Short or extended APDUs, and how large a LOAD / STORE DATA block may be.
//!
//! Whether a card takes extended-length APDUs (ISO/IEC 7816-4 §5.1: Lc on 3 bytes, Le on 2 or
//! 3) is read from two places:
//! - the card capabilities in the ATR's historical bytes (ISO/IEC 7816-4 §8.1.1.2.7, compact
//!   TLV tag `7`, length 3): the third byte ("third software function table") has b8 = command
//!   chaining, b7 = extended Lc and Le fields, b6 = extended length information in EF.ATR/INFO.
//!   The same bit layout is decoded by openpgp-card (`CardCapabilities`), and ETSI TS 102 221
//!   §6.2 shows UICC ATRs with `73 .. .. 15` "no extended Lc and Le";
//! - the extended length information data object `7F66` (ISO/IEC 7816-4; layout as
//!   in the OpenPGP card specification 3.4): two INTEGERs (`02`), the most bytes in a
//!   command APDU and in a response APDU. `mec gp` asks for it with GET DATA when b6 is set.

use std::fmt;

/// `--apdu`: which APDU lengths `mec gp` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum ApduMode {
    /// Short APDUs only (up to 255 data bytes; longer commands are chained).
    Short,
    /// Extended-length APDUs when a command needs them (even if the card does not announce
    /// them; refused when its ATR says it has none).
    Extended,
    /// Extended only when the card announces them in its ATR (card capabilities, b7).
    #[default]
    Auto,
}

/// ISO/IEC 7816-4 §8.1.1.2.7: compact-TLV tag of the card capabilities.
const TAG_CARD_CAPABILITIES: u8 = 0x7;
/// Third software function table: command chaining (b8).
const CAP_CHAINING: u8 = 0x80;
/// Third software function table: extended Lc and Le fields (b7).
const CAP_EXTENDED: u8 = 0x40;
/// Third software function table: extended length information in EF.ATR/INFO (b6).
const CAP_EXTENDED_INFO: u8 = 0x20;

/// The card capabilities of an ATR (ISO/IEC 7816-4 §8.1.1.2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CardCapabilities {
    /// The third software function table byte (`None` when the object is shorter).
    pub(crate) third: Option<u8>,
}

impl CardCapabilities {
    /// Command chaining (b8).
    pub(crate) fn chaining(self) -> bool {
        self.third.is_some_and(|b| b & CAP_CHAINING != 0)
    }
    /// Extended Lc and Le fields (b7).
    pub(crate) fn extended(self) -> bool {
        self.third.is_some_and(|b| b & CAP_EXTENDED != 0)
    }
    /// Extended length information in EF.ATR/INFO (b6).
    pub(crate) fn extended_info(self) -> bool {
        self.third.is_some_and(|b| b & CAP_EXTENDED_INFO != 0)
    }
}

/// The historical bytes of an ATR (ISO/IEC 7816-3 §8.2): after TS, T0 and the interface
/// bytes announced by T0 and each TDi; T0's low nibble is their number. `None` for an ATR too
/// short for what it announces.
pub(crate) fn parse_historical_bytes(atr: &[u8]) -> Option<&[u8]> {
    let t0 = *atr.get(1)?;
    let count = usize::from(t0 & 0x0F);
    let mut y = t0 >> 4;
    let mut at = 2usize;
    loop {
        // TAi, TBi, TCi, TDi are present for bits 1, 2, 3, 4 of Y (ISO/IEC 7816-3 §8.2.3).
        let present = usize::try_from((y & 0x0F).count_ones()).ok()?;
        let td_at = at.checked_add(present)?.checked_sub(1)?;
        if y & 0x08 != 0 {
            let td = *atr.get(td_at)?;
            y = td >> 4;
            at = td_at.checked_add(1)?;
        } else {
            at = at.checked_add(present)?;
            break;
        }
    }
    atr.get(at..at.checked_add(count)?)
}

/// The card capabilities in the ATR's historical bytes, when the category indicator is `00`
/// or `80` (compact-TLV objects, ISO/IEC 7816-4 §8.1.1.1) and the object is present.
pub(crate) fn parse_card_capabilities(atr: &[u8]) -> Option<CardCapabilities> {
    let historical = parse_historical_bytes(atr)?;
    let (&category, rest) = historical.split_first()?;
    let objects = match category {
        // Compact-TLV objects, then a 3-byte status indicator.
        0x00 => rest.get(..rest.len().checked_sub(3)?)?,
        // Compact-TLV objects only (a status indicator is object `8x`).
        0x80 => rest,
        _ => return None,
    };
    let mut at = 0usize;
    while let Some(&header) = objects.get(at) {
        let len = usize::from(header & 0x0F);
        let value = objects.get(at.checked_add(1)?..at.checked_add(1)?.checked_add(len)?)?;
        if header >> 4 == TAG_CARD_CAPABILITIES {
            return Some(CardCapabilities {
                third: value.get(2).copied(),
            });
        }
        at = at.checked_add(1)?.checked_add(len)?;
    }
    None
}

/// The extended length information (`7F66`): most bytes in a command and in a response APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExtendedLengthInfo {
    /// Most bytes in a command APDU.
    pub(crate) max_command: u32,
    /// Most bytes in a response APDU.
    pub(crate) max_response: u32,
}

/// Parse the extended length information: `7F66 L { 02 L n, 02 L n }`, or the same without
/// the outer tag (what GET DATA answers varies between cards).
///
/// # Errors
/// A message naming what is malformed.
pub(crate) fn parse_extended_length_info(data: &[u8]) -> Result<ExtendedLengthInfo, String> {
    let inner = match data {
        [0x7F, 0x66, rest @ ..] => {
            let (len, value) = ber_length(rest)?;
            value
                .get(..len)
                .ok_or("7F66: the length runs past the data")?
        }
        other => other,
    };
    let (max_command, rest) = integer(inner)?;
    let (max_response, rest) = integer(rest)?;
    if !rest.is_empty() {
        return Err(format!(
            "7F66: {} byte(s) after the two INTEGERs",
            rest.len()
        ));
    }
    Ok(ExtendedLengthInfo {
        max_command,
        max_response,
    })
}

fn ber_length(data: &[u8]) -> Result<(usize, &[u8]), String> {
    match data {
        [n, rest @ ..] if *n < 0x80 => Ok((usize::from(*n), rest)),
        [0x81, n, rest @ ..] => Ok((usize::from(*n), rest)),
        [0x82, a, b, rest @ ..] => Ok((usize::from(u16::from_be_bytes([*a, *b])), rest)),
        _ => Err("7F66: bad BER length".into()),
    }
}

fn integer(data: &[u8]) -> Result<(u32, &[u8]), String> {
    let [0x02, rest @ ..] = data else {
        return Err("7F66: expected an INTEGER (02)".into());
    };
    let (len, rest) = ber_length(rest)?;
    let value = rest.get(..len).ok_or("7F66: INTEGER runs past the data")?;
    let digits: &[u8] = match value {
        [0, tail @ ..] if !tail.is_empty() => tail,
        v => v,
    };
    if digits.is_empty() || digits.len() > 4 {
        return Err(format!("7F66: INTEGER of {len} bytes"));
    }
    let n = digits
        .iter()
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    Ok((n, rest.get(len..).unwrap_or_default()))
}

/// The most data bytes of a short command APDU (ISO/IEC 7816-4 §5.1).
pub(crate) const SHORT_DATA: usize = 255;
/// The most data bytes of an extended command APDU.
pub(crate) const EXTENDED_DATA: usize = 65_535;
/// Header, 3-byte Lc and 2-byte Le of an extended command APDU.
const EXTENDED_OVERHEAD: usize = 4 + 3 + 2;
/// LOAD / STORE DATA block with short APDUs: with padding and an 8-byte MAC the wrapped
/// command fits a short APDU (224 -> 240 padded + 8 = 248 <= 255).
pub(crate) const SHORT_BLOCK: usize = 224;
/// LOAD / STORE DATA block with extended APDUs when the card gives no smaller limit.
pub(crate) const EXTENDED_BLOCK: usize = 2048;
/// The largest block any short APDU can carry once wrapped (MAC only, 8-byte MAC).
pub(crate) const SHORT_BLOCK_MAX: usize = SHORT_DATA - 8;

/// What secure messaging adds to a command's data field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wrapping {
    /// Encryption block the data is padded to (at least one byte added), 0 without C-DEC.
    pub(crate) pad: usize,
    /// MAC length.
    pub(crate) mac: usize,
    /// The session, for messages (`SCP03 level 33`).
    pub(crate) name: &'static str,
    level: u8,
}

impl Wrapping {
    /// No secure channel.
    pub(crate) const PLAIN: Wrapping = Wrapping {
        pad: 0,
        mac: 0,
        name: "no secure channel",
        level: 0,
    };

    /// What a session adds: SCP02 pads to 8 (C-DEC, GPC 2.3 Appendix E) and MACs 8 bytes;
    /// SCP03 / SCP11 pad to 16 (Amd D, C-DECRYPTION) and MAC 8 bytes (SCP03 S16 mode, `i` bit 01:
    /// 16 bytes, Amd D §5.1; SCP11b sessions of gp-scp use 8-byte MACs at level 33).
    pub(crate) fn of(scp: &str, i: Option<u8>, level: u8) -> Wrapping {
        let c_dec = level & 0x02 != 0;
        let mac_on = level & 0x01 != 0;
        let (block, mac, name) = match scp {
            "02" => (8, 8, "SCP02"),
            "03" if i.is_some_and(|i| i & 0x01 != 0) => (16, 16, "SCP03 S16"),
            "03" => (16, 8, "SCP03"),
            _ => (16, 8, "SCP11b"),
        };
        Wrapping {
            pad: if c_dec { block } else { 0 },
            mac: if mac_on { mac } else { 0 },
            name,
            level,
        }
    }

    /// The data field length of a wrapped block of `n` bytes.
    pub(crate) fn wrapped(self, n: usize) -> usize {
        let padded = if self.pad == 0 {
            n
        } else {
            n.saturating_add(1)
                .div_ceil(self.pad)
                .saturating_mul(self.pad)
        };
        padded.saturating_add(self.mac)
    }

    /// The largest block whose wrapped data field is at most `limit` bytes (0: none fits).
    pub(crate) fn max_block(self, limit: usize) -> usize {
        let Some(room) = limit.checked_sub(self.mac) else {
            return 0;
        };
        match room.checked_div(self.pad) {
            None => room,
            Some(blocks) => blocks.saturating_mul(self.pad).saturating_sub(1),
        }
    }
}

impl fmt::Display for Wrapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mac == 0 && self.pad == 0 && self.level == 0 {
            f.write_str(self.name)
        } else {
            write!(f, "{} level {:02X}", self.name, self.level)
        }
    }
}

/// The APDU lengths settled for a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LengthPlan {
    /// Whether extended APDUs are sent.
    pub(crate) extended: bool,
    /// The card's extended length information, when read.
    pub(crate) info: Option<ExtendedLengthInfo>,
    /// Why (for the trace and messages): `ATR card capabilities: extended Lc/Le`, ...
    pub(crate) reason: String,
}

impl Default for LengthPlan {
    fn default() -> Self {
        LengthPlan {
            extended: false,
            info: None,
            reason: "short APDUs".into(),
        }
    }
}

impl LengthPlan {
    /// The most data bytes of one command APDU on the wire.
    pub(crate) fn data_limit(&self) -> usize {
        if !self.extended {
            return SHORT_DATA;
        }
        match self.info {
            Some(i) => usize::try_from(i.max_command)
                .unwrap_or(usize::MAX)
                .saturating_sub(EXTENDED_OVERHEAD)
                .clamp(SHORT_DATA, EXTENDED_DATA),
            None => EXTENDED_DATA,
        }
    }

    /// The LOAD / STORE DATA block size: `requested`, checked to fit once wrapped, or the
    /// default (224 short, 2048 extended) lowered until it fits.
    ///
    /// # Errors
    /// A message saying why `requested` does not fit and what does.
    pub(crate) fn block_size(
        &self,
        requested: Option<usize>,
        wrapping: Wrapping,
    ) -> Result<usize, String> {
        let limit = self.data_limit();
        let fit = wrapping.max_block(limit);
        let (kind, default) = if self.extended {
            ("an extended APDU", EXTENDED_BLOCK)
        } else {
            ("a short APDU", SHORT_BLOCK)
        };
        let card_limit = match (self.extended, self.info) {
            (true, Some(i)) => format!(
                " (the card takes command APDUs of at most {} bytes, GET DATA 7F66)",
                i.max_command
            ),
            _ => String::new(),
        };
        match requested {
            Some(n) if n >= 1 && n <= fit => Ok(n),
            Some(n) => Err(format!(
                "--block-size {n}: wrapped for {wrapping} a block becomes {} data bytes, more \
                 than the {limit} {kind} carries{card_limit}; use at most --block-size {fit}{}",
                wrapping.wrapped(n),
                if self.extended {
                    ""
                } else {
                    " (or --apdu extended on a card that takes extended APDUs)"
                }
            )),
            None if fit == 0 => Err(format!(
                "no block fits {kind} of {limit} data bytes once wrapped for {wrapping}"
            )),
            None => Ok(default.min(fit)),
        }
    }
}

/// Command-line checks that need no card: `--apdu short` with a block no short APDU can carry.
///
/// # Errors
/// The usage message.
pub(crate) fn check_options(mode: ApduMode, block: Option<usize>) -> Result<(), String> {
    match (mode, block) {
        (ApduMode::Short, Some(n)) if n > SHORT_BLOCK_MAX => Err(format!(
            "--apdu short --block-size {n}: a short APDU carries {SHORT_DATA} data bytes, and \
             secure messaging adds at least an 8-byte MAC (and padding with encryption): \
             blocks of at most {SHORT_BLOCK_MAX} bytes fit (239 with SCP02 or SCP03 encryption, \
             223 in SCP03 S16 mode); use --apdu extended (or auto) for larger blocks"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn historical_bytes_and_capabilities() {
        // The virtual SE's default ATR: proprietary historical bytes "mecvSE01".
        let default = hex::decode("3BF81300008131FE456D65637653453031EA").unwrap();
        assert_eq!(parse_historical_bytes(&default).unwrap(), b"mecvSE01");
        assert_eq!(parse_card_capabilities(&default), None);
        // virtual-se/profiles/extended-length.toml: 80, 73 80 21 F3, 56 "mecXL1".
        let ext = hex::decode("3BFC1300008131FE4580738021F3566D6563584C315D").unwrap();
        let caps = parse_card_capabilities(&ext).unwrap();
        assert!(caps.extended() && caps.chaining() && caps.extended_info());
        // virtual-se/profiles/short-only.toml: third byte 93 (no b7).
        let short = hex::decode("3BFC1300008131FE458073802193566D656353483132").unwrap();
        let caps = parse_card_capabilities(&short).unwrap();
        assert!(!caps.extended() && caps.chaining());
        // ETSI TS 102 221 §6.2 example historical bytes 80 31 A0 73 BE 21 15: "no extended Lc
        // and Le" (behind T0 = 97, TA1 95, TD1 80, TD2 1F, TA3 42).
        let uicc = hex::decode("3B9795801F42803 1A073BE211500".replace(' ', "")).unwrap();
        let caps = parse_card_capabilities(&uicc).unwrap();
        assert_eq!(caps.third, Some(0x15));
        assert!(!caps.extended());
        // Category 00: compact-TLV objects, then the last three bytes are the status
        // indicator, not objects. Historical bytes 00 | 73 00 00 E0 | 00 90 00.
        let cat00 = [0x3B, 0x08, 0x00, 0x73, 0x00, 0x00, 0xE0, 0x00, 0x90, 0x00];
        assert_eq!(
            parse_card_capabilities(&cat00),
            Some(CardCapabilities { third: Some(0xE0) })
        );
        // 00 | (no objects) | 71 90 00: read as objects, the status indicator would be a
        // card capabilities object `71 90`; it is not one.
        let status_only = [0x3B, 0x04, 0x00, 0x71, 0x90, 0x00];
        assert_eq!(
            parse_historical_bytes(&status_only),
            Some(&[0x00, 0x71, 0x90, 0x00][..])
        );
        assert_eq!(parse_card_capabilities(&status_only), None);
        // Category 80 reads every byte as objects: the same bytes are a capabilities object.
        let cat80 = [0x3B, 0x04, 0x80, 0x71, 0x90, 0x00];
        assert_eq!(
            parse_card_capabilities(&cat80),
            Some(CardCapabilities { third: None })
        );
    }

    #[test]
    fn truncated_atrs_never_panic() {
        for atr in [
            &[][..],
            &[0x3B],
            &[0x3B, 0xFF],
            &[0x3B, 0x8F, 0x80],
            &[0x3B, 0x81, 0x80, 0x7F],
            &[0x3B, 0x03, 0x80, 0x73, 0x80],
            &[0x3B, 0x02, 0x80, 0x7F],
        ] {
            assert_eq!(parse_card_capabilities(atr), None, "{atr:02X?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Any ATR and any 7F66 answer: a result or an error, never a panic; the block size
        /// always fits once wrapped.
        #[test]
        fn parsers_never_panic(
            atr in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            info in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
            max in 0u32..70_000,
            block in proptest::option::of(1usize..70_000),
            level in proptest::prelude::any::<u8>(),
        ) {
            let _ = parse_card_capabilities(&atr);
            let _ = parse_extended_length_info(&info);
            for scp in ["02", "03", "11b"] {
                let w = Wrapping::of(scp, Some(level), level);
                for plan in [
                    LengthPlan::default(),
                    LengthPlan {
                        extended: true,
                        info: Some(ExtendedLengthInfo { max_command: max, max_response: max }),
                        reason: String::new(),
                    },
                ] {
                    if let Ok(n) = plan.block_size(block, w) {
                        proptest::prop_assert!(n >= 1 && w.wrapped(n) <= plan.data_limit());
                    }
                }
            }
        }
    }

    #[test]
    fn extended_length_info() {
        let info =
            parse_extended_length_info(&hex::decode("7F66080202080002020800").unwrap()).unwrap();
        assert_eq!((info.max_command, info.max_response), (2048, 2048));
        // Without the outer tag; 3-byte INTEGERs with a leading zero.
        let info =
            parse_extended_length_info(&hex::decode("020300FFFF0203010002").unwrap()).unwrap();
        assert_eq!((info.max_command, info.max_response), (65_535, 65_538));
        for bad in [
            "",
            "7F6603020108",
            "0201",
            "020108",
            "0201080201080000",
            "7F6681",
        ] {
            assert!(
                parse_extended_length_info(&hex::decode(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn wrapping_and_block_sizes() {
        let s8 = Wrapping::of("03", Some(0x70), 0x33);
        assert_eq!(s8.wrapped(224), 248);
        assert_eq!(s8.max_block(255), 239);
        assert_eq!(s8.wrapped(239), 248);
        assert_eq!(s8.wrapped(240), 264);
        let s16 = Wrapping::of("03", Some(0x71), 0x03);
        assert_eq!(s16.max_block(255), 223);
        let des = Wrapping::of("02", Some(0x55), 0x03);
        assert_eq!(des.max_block(255), 239);
        assert_eq!(Wrapping::of("02", None, 0x01).max_block(255), 247);
        assert_eq!(Wrapping::PLAIN.max_block(255), 255);
        // SCP11b at level 33: the same 224-byte short default as SCP03 S8.
        let scp11 = Wrapping::of("11b", None, 0x33);
        assert_eq!(LengthPlan::default().block_size(None, scp11), Ok(224));

        let short = LengthPlan::default();
        assert_eq!(short.block_size(None, s8), Ok(224));
        assert_eq!(short.block_size(None, s16), Ok(223));
        assert!(
            short
                .block_size(Some(240), s8)
                .unwrap_err()
                .contains("at most --block-size 239")
        );
        let ext = LengthPlan {
            extended: true,
            info: None,
            reason: String::new(),
        };
        assert_eq!(ext.block_size(None, s8), Ok(2048));
        assert_eq!(ext.block_size(Some(65_000), s8), Ok(65_000));
        assert!(ext.block_size(Some(65_530), s8).is_err());
        let limited = LengthPlan {
            extended: true,
            info: Some(ExtendedLengthInfo {
                max_command: 2048,
                max_response: 2048,
            }),
            reason: String::new(),
        };
        // 2048 - 9 = 2039 data bytes; 2015 -> 2016 padded + 8 = 2024.
        assert_eq!(limited.block_size(None, s8), Ok(2015));
        let e = limited.block_size(Some(4000), s8).unwrap_err();
        assert!(
            e.contains("at most 2048 bytes") && e.contains("2015"),
            "{e}"
        );
        let e = check_options(ApduMode::Short, Some(248)).unwrap_err();
        assert!(e.contains("at most 247 bytes fit (239 with"), "{e}");
        // The figures in the message are the sessions' own limits.
        assert_eq!(
            (s8.max_block(SHORT_DATA), des.max_block(SHORT_DATA)),
            (239, 239)
        );
        assert_eq!(
            Wrapping::of("03", Some(0x71), 0x33).max_block(SHORT_DATA),
            223
        );
        assert!(check_options(ApduMode::Short, Some(247)).is_ok());
        assert!(check_options(ApduMode::Auto, Some(4000)).is_ok());
    }
}
