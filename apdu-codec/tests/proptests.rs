//! Property tests: `parse(encode(x)) == x` for commands in every form and for BER-TLV trees
//! built with `TlvBuilder`, and "never panics" on arbitrary bytes for every parser.
#![allow(clippy::unwrap_used)]

use apdu_codec::tlv::{self, Limits, Tag, TlvBuilder, TlvIter};
use apdu_codec::{Command, Error, LengthForm, parse_command, parse_response};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn le_strategy() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        Just(None),
        (1usize..=256).prop_map(Some),
        (1usize..=65_536).prop_map(Some),
        Just(Some(65_536)),
    ]
}

fn data_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 1..=255),
        prop::collection::vec(any::<u8>(), 256..=600),
    ]
}

fn form_strategy() -> impl Strategy<Value = LengthForm> {
    prop_oneof![
        Just(LengthForm::Auto),
        Just(LengthForm::Short),
        Just(LengthForm::Extended)
    ]
}

/// A BER-TLV tree for the round trip.
#[derive(Debug, Clone)]
enum Node {
    Primitive(Tag, Vec<u8>),
    Constructed(Tag, Vec<Node>),
}

/// A valid tag of 1-3 bytes with the constructed bit as asked.
fn tag_strategy(constructed: bool) -> impl Strategy<Value = Tag> {
    let bit = if constructed { 0x20u32 } else { 0 };
    prop_oneof![
        // One byte: low five bits not all ones.
        (0u32..=0xFF)
            .prop_filter("not a multi-byte marker", |b| b & 0x1F != 0x1F)
            .prop_map(move |b| Tag::new((b & !0x20) | bit)),
        // Two bytes: first xx1F, second without the continuation bit.
        (0u32..4, 0u32..0x80).prop_map(move |(class, second)| {
            Tag::new((((class << 6) | bit | 0x1F) << 8) | second)
        }),
        // Three bytes.
        (0u32..4, 0x80u32..=0xFF, 0u32..0x80).prop_map(move |(class, second, third)| {
            Tag::new((((class << 6) | bit | 0x1F) << 16) | (second << 8) | third)
        }),
    ]
}

fn node_strategy() -> impl Strategy<Value = Node> {
    let leaf = (
        tag_strategy(false),
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..8),
            prop::collection::vec(any::<u8>(), 120..300),
        ],
    )
        .prop_map(|(tag, value)| Node::Primitive(tag, value));
    leaf.prop_recursive(6, 48, 5, |inner| {
        (tag_strategy(true), prop::collection::vec(inner, 0..5))
            .prop_map(|(tag, children)| Node::Constructed(tag, children))
    })
}

fn build(builder: &mut TlvBuilder, node: &Node) {
    match node {
        Node::Primitive(tag, value) => {
            builder.primitive(*tag, value);
        }
        Node::Constructed(tag, children) => {
            builder.constructed(*tag, |inner| {
                for child in children {
                    build(inner, child);
                }
            });
        }
    }
}

fn count(node: &Node) -> usize {
    match node {
        Node::Primitive(..) => 1,
        Node::Constructed(_, children) => 1 + children.iter().map(count).sum::<usize>(),
    }
}

/// Compare a parsed object with the node it was built from.
fn same(parsed: tlv::Tlv<'_>, node: &Node) -> bool {
    match node {
        Node::Primitive(tag, value) => {
            parsed.tag() == *tag && !parsed.is_constructed() && parsed.value() == value
        }
        Node::Constructed(tag, children) => {
            let parsed_children: Vec<_> = parsed.children().collect();
            parsed.tag() == *tag
                && parsed.is_constructed()
                && parsed_children.len() == children.len()
                && parsed_children
                    .into_iter()
                    .zip(children)
                    .all(|(p, c)| p.is_ok_and(|p| same(p, c)))
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn command_round_trip(
        header in any::<[u8; 4]>().prop_filter("CLA FF is invalid", |h| h[0] != 0xFF),
        data in data_strategy(),
        le in le_strategy(),
        form in form_strategy(),
    ) {
        let command = Command {
            cla: header[0], ins: header[1], p1: header[2], p2: header[3],
            data: data.clone(), le, form,
        };
        let short_ok = data.len() <= 255 && le.is_none_or(|le| le <= 256);
        match command.to_vec() {
            Ok(bytes) => {
                prop_assert_eq!(bytes.len(), command.encoded_len().unwrap());
                let view = parse_command(&bytes).unwrap();
                prop_assert_eq!(view.header(), header);
                prop_assert_eq!(view.data(), &data[..]);
                prop_assert_eq!(view.le(), le);
                let has_length = !data.is_empty() || le.is_some();
                let extended = form == LengthForm::Extended || !short_ok;
                prop_assert_eq!(view.is_extended(), extended && has_length);
                prop_assert_eq!(view.case().is_extended(), extended && has_length);
                prop_assert_eq!(view.to_command().to_vec().unwrap(), bytes);
            }
            Err(error) => {
                // Only a short form that cannot hold the fields fails here.
                prop_assert_eq!(form, LengthForm::Short);
                prop_assert!(!short_ok);
                let expected = matches!(error, Error::DataTooLong { .. } | Error::LeOutOfRange { .. });
                prop_assert!(expected, "unexpected {}", error);
            }
        }
    }

    #[test]
    fn tlv_round_trip(nodes in prop::collection::vec(node_strategy(), 1..4)) {
        let mut builder = TlvBuilder::new();
        for node in &nodes {
            build(&mut builder, node);
        }
        let bytes = builder.into_vec();
        let limits = Limits { max_depth: 16, max_length: tlv::MAX_LENGTH };
        let total: usize = nodes.iter().map(count).sum();
        prop_assert_eq!(tlv::validate(&bytes, limits), Ok(total));
        let parsed: Vec<_> = TlvIter::new(&bytes).collect();
        prop_assert_eq!(parsed.len(), nodes.len());
        for (parsed, node) in parsed.into_iter().zip(&nodes) {
            prop_assert!(same(parsed.unwrap(), node));
        }
        if nodes.len() == 1 {
            prop_assert!(same(tlv::parse_single(&bytes).unwrap(), &nodes[0]));
        }
    }

    #[test]
    fn command_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        apdu_codec::fuzzing::command_apdu(&bytes);
    }

    #[test]
    fn command_parse_never_panics_near_valid(
        header in any::<[u8; 4]>(),
        marker in prop_oneof![Just(0u8), any::<u8>()],
        body in prop::collection::vec(any::<u8>(), 0..12),
    ) {
        // Short bodies around the length fields hit every branch of the case analysis.
        let mut bytes = header.to_vec();
        bytes.push(marker);
        bytes.extend_from_slice(&body);
        for cut in 0..=bytes.len() {
            apdu_codec::fuzzing::command_apdu(&bytes[..cut]);
            let _ = parse_command(&bytes[..cut]);
        }
    }

    #[test]
    fn response_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        apdu_codec::fuzzing::response_apdu(&bytes);
        let _ = parse_response(&bytes);
    }

    #[test]
    fn tlv_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        // Includes deep validate with default, tight and loose limits and the rebuild check.
        apdu_codec::fuzzing::ber_tlv(&bytes);
    }

    #[test]
    fn tlv_parse_never_panics_on_nested_headers(
        headers in prop::collection::vec((prop_oneof![Just(0xE1u8), Just(0x9F), Just(0xBF), any::<u8>()], any::<u8>()), 0..64),
    ) {
        // Mostly constructed tags with random lengths: deep, overlapping, truncated trees.
        let bytes: Vec<u8> = headers.iter().flat_map(|(t, l)| [*t, *l]).collect();
        apdu_codec::fuzzing::ber_tlv(&bytes);
    }

    #[test]
    fn exchange_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        apdu_codec::fuzzing::apdu_round_trip(&bytes);
    }
}
