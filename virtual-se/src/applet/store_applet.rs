//! The generic store applet: a simple persistent data-object store.
//!
//! - Personalization: STORE DATA routed by its security domain after INSTALL [for
//!   personalization], in BER-TLV (P1 bits `10`, or no structure bits) or DGI (P1 bits `08`)
//!   format; every object is kept under its tag.
//! - `00/80 CA P1 P2` GET DATA: the object with tag `P1P2` (one-byte tag when P1 = 00), as a
//!   TLV; `6A88` if absent.
//! - `00/80 DA P1 P2` PUT DATA: replace the object with tag `P1P2` (empty data removes it);
//!   written in a nested transaction.
//!
//! Its persistent keys are the tag bytes of the objects.

use std::sync::Arc;

use apdu_codec::tlv::{Tag, TlvIter, write_tlv};
use apdu_codec::{CommandView, Response, StatusWord};
use gp_scp::cmd::store_data;

use super::{Applet, AppletContext, Package, StoreDataBlock};

/// Load file AID of the built-in store applet package (project-proprietary, ISO 7816-5
/// category `F`: not registered).
pub const STORE_APPLET_LOAD_FILE: &[u8] = &[0xF0, 0x6D, 0x65, 0x63, 0x53, 0x54];
/// Module AID of the store applet.
pub const STORE_APPLET_MODULE: &[u8] = &[0xF0, 0x6D, 0x65, 0x63, 0x53, 0x54, 0x01];

/// Largest object the store applet keeps.
const MAX_OBJECT: usize = 4096;

/// The generic store applet (no transient state).
#[derive(Debug, Default)]
pub struct StoreApplet;

impl StoreApplet {
    /// Its package (load file and one module).
    #[must_use]
    pub fn package() -> Package {
        Package {
            load_file: STORE_APPLET_LOAD_FILE.to_vec(),
            modules: vec![(
                STORE_APPLET_MODULE.to_vec(),
                Arc::new(|| Box::new(StoreApplet) as Box<dyn Applet>),
            )],
        }
    }
}

fn tag_of(p1: u8, p2: u8) -> Vec<u8> {
    if p1 == 0 { vec![p2] } else { vec![p1, p2] }
}

/// Data objects: tag bytes and value.
type Objects<'a> = Vec<(Vec<u8>, &'a [u8])>;

/// DGI-formatted data (EMV CPS 1.1 §4.1, GPC 2.3 §11.11.2.3) as data objects named by their
/// 2-byte DGI.
fn parse_dgis(data: &[u8]) -> Result<Objects<'_>, StatusWord> {
    let dgis = store_data::parse_dgis(data).map_err(|e| e.status_word())?;
    Ok(dgis
        .into_iter()
        .map(|d| (d.id.to_be_bytes().to_vec(), d.value))
        .collect())
}

impl Applet for StoreApplet {
    fn select(&mut self, ctx: &mut AppletContext<'_>) -> Result<Vec<u8>, StatusWord> {
        let mut inner = Vec::new();
        write_tlv(&mut inner, Tag::new(0x84), ctx.aid());
        let mut fci = Vec::new();
        write_tlv(&mut fci, Tag::new(0x6F), &inner);
        Ok(fci)
    }

    fn process(
        &mut self,
        command: &CommandView<'_>,
        ctx: &mut AppletContext<'_>,
    ) -> Result<Response, StatusWord> {
        let cla = command.cla().0;
        if cla & 0x7C != 0 && cla & 0x40 == 0 {
            // Secure messaging or chaining on an applet without its own secure channel.
            return Err(StatusWord::SECURE_MESSAGING_NOT_SUPPORTED);
        }
        match command.ins() {
            0xCA => {
                if !command.data().is_empty() {
                    return Err(StatusWord::WRONG_LENGTH);
                }
                let tag = tag_of(command.p1(), command.p2());
                let value = ctx
                    .read(&tag)?
                    .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
                let mut out = Vec::with_capacity(value.len() + 6);
                out.extend_from_slice(&tag);
                apdu_codec::tlv::encode_length(&mut out, value.len());
                out.extend_from_slice(&value);
                Ok(Response::success(out))
            }
            0xDA => {
                let tag = tag_of(command.p1(), command.p2());
                if command.p1() == 0 && command.p2() == 0 {
                    return Err(StatusWord::INCORRECT_P1_P2);
                }
                if command.data().len() > MAX_OBJECT {
                    return Err(StatusWord::NOT_ENOUGH_MEMORY);
                }
                ctx.begin_nested()?;
                if command.data().is_empty() {
                    ctx.remove(&tag);
                } else {
                    ctx.write(&tag, command.data());
                }
                ctx.commit_nested()?;
                Ok(Response::status_only(StatusWord::SUCCESS))
            }
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }

    fn personalize(
        &mut self,
        block: StoreDataBlock<'_>,
        ctx: &mut AppletContext<'_>,
    ) -> Result<Vec<u8>, StatusWord> {
        if block.p1 & 0x60 != 0 {
            // Encrypted personalization data is application dependent; this applet has none.
            return Err(StatusWord::INCORRECT_DATA);
        }
        let objects: Objects<'_> = match block.structure() {
            0x08 => parse_dgis(block.data)?,
            0x00 | 0x10 => {
                let mut v = Vec::new();
                for tlv in TlvIter::new(block.data) {
                    let tlv = tlv.map_err(|_| StatusWord::INCORRECT_DATA)?;
                    let (bytes, n) = tlv.tag().to_bytes();
                    v.push((
                        bytes
                            .get(4usize.saturating_sub(n)..)
                            .unwrap_or_default()
                            .to_vec(),
                        tlv.value(),
                    ));
                }
                v
            }
            _ => return Err(StatusWord::INCORRECT_P1_P2),
        };
        for (tag, value) in objects {
            if value.len() > MAX_OBJECT {
                return Err(StatusWord::NOT_ENOUGH_MEMORY);
            }
            ctx.write(&tag, value);
        }
        Ok(Vec::new())
    }
}
