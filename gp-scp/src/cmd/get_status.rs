//! GET STATUS (GPC 2.3 §11.4): the command, both response formats (legacy and the tagged
//! `E3` format), paging with `6310`, and the card-side encoder that splits a long answer.
//!
//! A host and a card paging through a registry:
//!
//! ```
//! use apdu_codec::CommandView;
//! use gp_scp::cmd::get_status::*;
//! use gp_scp::cmd::{Aid, Privileges};
//!
//! // Card side: the registry and where the last answer stopped.
//! let registry: Vec<RegistryEntry> = (0u8..20)
//!     .map(|i| {
//!         let mut e = RegistryEntry::new(Aid::new(&[0xA0, 0, 0, 0, 0x62, i]).unwrap(), 0x07);
//!         e.privileges = Some(Privileges::NONE);
//!         e
//!     })
//!     .collect();
//! let mut resume = 0;
//!
//! // Host side.
//! let mut request = GetStatus::new(StatusSubset::Applications);
//! let mut found = Vec::new();
//! loop {
//!     let apdu = request.to_command()?.to_vec()?;
//!     // --- card ---
//!     let parsed = parse_get_status(&CommandView::try_from(&apdu[..])?)?;
//!     let start = if parsed.next { resume } else { 0 };
//!     let answer = answer_get_status(&parsed, &registry, start, 200)?;
//!     resume = answer.next.unwrap_or(0);
//!     // --- host ---
//!     let page = parse_get_status_page(request.subset, request.format, &answer.data, answer.status)?;
//!     found.extend(page.entries);
//!     if !page.more {
//!         break;
//!     }
//!     request = request.next_occurrence();
//! }
//! assert_eq!(found, registry);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::vec::Vec;

use apdu_codec::tlv::{self, Tag, TlvBuilder};
use apdu_codec::{Command, CommandView, StatusWord, ins};

use super::reader::{Reader, expect_ins, put_lv};
use super::select::set_once;
use super::{
    AID_MAX_LEN, Aid, ApplicationLifeCycle, CLA_GP, CardLifeCycle, CommandError, LE_MAX_SHORT,
    LifeCycle, LoadFileLifeCycle, Privileges, SecurityDomainLifeCycle,
};

/// `4F` AID search criterion (GPC 2.3 §11.4.2.3).
pub const TAG_AID: Tag = Tag::new(0x4F);
/// `5C` tag list (GPC 2.3 §11.4.2.3).
pub const TAG_TAG_LIST: Tag = Tag::new(0x5C);
/// `E3` GlobalPlatform registry related data (GPC 2.3 §11.4.3.1).
pub const TAG_REGISTRY_DATA: Tag = Tag::new(0xE3);
/// `9F70` life cycle state.
pub const TAG_LIFE_CYCLE: Tag = Tag::new(0x9F70);
/// `C5` privileges.
pub const TAG_PRIVILEGES: Tag = Tag::new(0xC5);
/// `C4` the application's executable load file AID.
pub const TAG_LOAD_FILE_AID: Tag = Tag::new(0xC4);
/// `CE` executable load file version number.
pub const TAG_LOAD_FILE_VERSION: Tag = Tag::new(0xCE);
/// `84` executable module AID (repeated).
pub const TAG_MODULE_AID: Tag = Tag::new(0x84);
/// `CC` associated security domain AID.
pub const TAG_SECURITY_DOMAIN_AID: Tag = Tag::new(0xCC);
/// `CF` implicit selection parameter (repeated, GPC 2.3 §11.1.7).
pub const TAG_IMPLICIT_SELECTION: Tag = Tag::new(0xCF);

/// P2 b1: next occurrence (GPC 2.3 §11.4.2.2).
pub const P2_NEXT: u8 = 0x01;
/// P2 b2: tagged `E3` response format (GPC 2.3 §11.4.2.2); clear = legacy (deprecated).
pub const P2_TAGGED: u8 = 0x02;

/// What GET STATUS reports on (P1, GPC 2.3 §11.4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusSubset {
    /// `80`: the issuer security domain.
    IssuerSecurityDomain,
    /// `40`: applications, including security domains.
    Applications,
    /// `20`: executable load files.
    LoadFiles,
    /// `10`: executable load files and their executable modules.
    LoadFilesAndModules,
}

impl StatusSubset {
    /// The P1 coding.
    #[must_use]
    pub const fn p1(self) -> u8 {
        match self {
            StatusSubset::IssuerSecurityDomain => 0x80,
            StatusSubset::Applications => 0x40,
            StatusSubset::LoadFiles => 0x20,
            StatusSubset::LoadFilesAndModules => 0x10,
        }
    }

    /// Decode P1.
    #[must_use]
    pub const fn from_p1(p1: u8) -> Option<Self> {
        match p1 {
            0x80 => Some(StatusSubset::IssuerSecurityDomain),
            0x40 => Some(StatusSubset::Applications),
            0x20 => Some(StatusSubset::LoadFiles),
            0x10 => Some(StatusSubset::LoadFilesAndModules),
            _ => None,
        }
    }
}

/// The response format (P2 b2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseFormat {
    /// b2 clear: `len AID lcs privileges [modules]` records (deprecated but still common).
    Legacy,
    /// b2 set: `E3` templates.
    Tagged,
}

/// A GET STATUS command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetStatus {
    /// P1.
    pub subset: StatusSubset,
    /// P2 b2.
    pub format: ResponseFormat,
    /// P2 b1: next occurrence (after `6310`).
    pub next: bool,
    /// `4F` search criterion: an AID prefix, empty for every entry.
    pub aid_prefix: Vec<u8>,
    /// `5C` tag list, when the host asks for specific objects.
    pub tag_list: Option<Vec<u8>>,
}

impl GetStatus {
    /// Every entry of a subset, tagged format, first occurrence.
    #[must_use]
    pub const fn new(subset: StatusSubset) -> Self {
        GetStatus {
            subset,
            format: ResponseFormat::Tagged,
            next: false,
            aid_prefix: Vec::new(),
            tag_list: None,
        }
    }

    /// Choose the response format.
    #[must_use]
    pub fn with_format(mut self, format: ResponseFormat) -> Self {
        self.format = format;
        self
    }

    /// Only entries whose AID starts with `prefix`.
    #[must_use]
    pub fn with_aid_prefix(mut self, prefix: &[u8]) -> Self {
        self.aid_prefix = prefix.to_vec();
        self
    }

    /// Ask for specific objects (`5C`).
    #[must_use]
    pub fn with_tag_list(mut self, tags: &[u8]) -> Self {
        self.tag_list = Some(tags.to_vec());
        self
    }

    /// The same command for the next occurrence (send it after a `6310`).
    #[must_use]
    pub fn next_occurrence(&self) -> Self {
        let mut next = self.clone();
        next.next = true;
        next
    }

    /// P2.
    #[must_use]
    pub const fn p2(&self) -> u8 {
        let format = match self.format {
            ResponseFormat::Legacy => 0,
            ResponseFormat::Tagged => P2_TAGGED,
        };
        if self.next { format | P2_NEXT } else { format }
    }

    /// The data field `4F prefix [5C tags]`.
    ///
    /// # Errors
    /// [`CommandError::FieldLength`] for a prefix over 16 bytes, [`CommandError::TooLong`]
    /// for a tag list over 127 bytes.
    pub fn data(&self) -> Result<Vec<u8>, CommandError> {
        if self.aid_prefix.len() > AID_MAX_LEN {
            return Err(CommandError::FieldLength {
                field: "GET STATUS AID",
                len: self.aid_prefix.len(),
                min: 0,
                max: AID_MAX_LEN,
            });
        }
        let mut out = Vec::with_capacity(2 + self.aid_prefix.len());
        out.push(0x4F);
        put_lv(&mut out, &self.aid_prefix, "GET STATUS AID")?;
        if let Some(tags) = &self.tag_list {
            if tags.len() > 0x7F {
                return Err(CommandError::TooLong {
                    field: "GET STATUS tag list",
                    len: tags.len(),
                    max: 0x7F,
                });
            }
            tlv::write_tlv(&mut out, TAG_TAG_LIST, tags);
        }
        Ok(out)
    }

    /// Host: `80 F2 P1 P2 Lc 4F .. [5C ..] 00`.
    ///
    /// ```
    /// use gp_scp::cmd::get_status::{GetStatus, StatusSubset};
    /// let cmd = GetStatus::new(StatusSubset::Applications).to_command()?;
    /// assert_eq!(cmd.to_vec()?, [0x80, 0xF2, 0x40, 0x02, 0x02, 0x4F, 0x00, 0x00]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`data`](Self::data).
    pub fn to_command(&self) -> Result<Command, CommandError> {
        Ok(
            Command::new(CLA_GP, ins::GET_STATUS, self.subset.p1(), self.p2())
                .with_data(self.data()?)
                .with_le(LE_MAX_SHORT),
        )
    }

    /// `true` when an entry matches the search criterion.
    #[must_use]
    pub fn matches(&self, aid: &Aid) -> bool {
        aid.starts_with(&self.aid_prefix)
    }
}

/// Card side: parse GET STATUS.
///
/// # Errors
/// [`CommandError::Instruction`], [`CommandError::P1P2`], [`CommandError::DataLength`]
/// without data, [`CommandError::MissingTag`] without `4F`, [`CommandError::UnexpectedTag`],
/// [`CommandError::DuplicateTag`], [`CommandError::FieldLength`] for an AID over 16 bytes,
/// [`CommandError::Tlv`].
pub fn parse_get_status(command: &CommandView<'_>) -> Result<GetStatus, CommandError> {
    expect_ins(command, ins::GET_STATUS)?;
    let (p1, p2) = (command.p1(), command.p2());
    let subset = StatusSubset::from_p1(p1).ok_or(CommandError::P1P2 {
        command: "GET STATUS",
        p1,
        p2,
    })?;
    if p2 & !(P2_NEXT | P2_TAGGED) != 0 {
        return Err(CommandError::P1P2 {
            command: "GET STATUS",
            p1,
            p2,
        });
    }
    if command.data().is_empty() {
        return Err(CommandError::DataLength {
            command: "GET STATUS",
            len: 0,
        });
    }
    let mut prefix = None;
    let mut tag_list = None;
    for item in tlv::TlvIter::new(command.data()) {
        let item = item?;
        match item.tag() {
            TAG_AID => {
                if item.value().len() > AID_MAX_LEN {
                    return Err(CommandError::FieldLength {
                        field: "GET STATUS AID",
                        len: item.value().len(),
                        min: 0,
                        max: AID_MAX_LEN,
                    });
                }
                set_once(&mut prefix, item.value().to_vec(), TAG_AID)?;
            }
            TAG_TAG_LIST => set_once(&mut tag_list, item.value().to_vec(), TAG_TAG_LIST)?,
            other => {
                return Err(CommandError::UnexpectedTag {
                    context: "GET STATUS search criteria",
                    found: other,
                });
            }
        }
    }
    Ok(GetStatus {
        subset,
        format: if p2 & P2_TAGGED != 0 {
            ResponseFormat::Tagged
        } else {
            ResponseFormat::Legacy
        },
        next: p2 & P2_NEXT != 0,
        aid_prefix: prefix.ok_or(CommandError::MissingTag(TAG_AID))?,
        tag_list,
    })
}

/// Split a `5C` tag list into its tags (one to three bytes each, ISO/IEC 7816-4 §5.2.2.1).
///
/// # Errors
/// [`CommandError::Tlv`] for a truncated or over-long tag.
pub fn parse_tag_list(bytes: &[u8]) -> Result<Vec<Tag>, CommandError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some(first) = rest.first() {
        let mut len = 1;
        if first & 0x1F == 0x1F {
            // Subsequent bytes follow while b8 is set; the tag ends at the first without it.
            let more = rest.iter().skip(1).take_while(|b| **b & 0x80 != 0).count();
            len += more + 1;
        }
        let Some((tag, after)) = rest.split_at_checked(len) else {
            return Err(CommandError::Tlv(tlv::TlvError::TruncatedTag));
        };
        out.push(Tag::from_bytes(tag)?);
        rest = after;
    }
    Ok(out)
}

/// One GlobalPlatform registry entry as GET STATUS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// `4F` AID.
    pub aid: Aid,
    /// `9F70` life cycle state coding (decode with [`RegistryEntry::life_cycle_state`]).
    pub life_cycle: u8,
    /// `C5` privileges (legacy format: one byte; absent for load files in the tagged format).
    pub privileges: Option<Privileges>,
    /// `C4` the application's executable load file.
    pub load_file: Option<Aid>,
    /// `CE` executable load file version number.
    pub load_file_version: Option<Vec<u8>>,
    /// `84` executable modules (P1 `10`).
    pub modules: Vec<Aid>,
    /// `CC` associated security domain.
    pub security_domain: Option<Aid>,
    /// `CF` implicit selection parameters.
    pub implicit_selection: Vec<u8>,
    /// Objects of other tags inside `E3`, kept as received.
    pub other: Vec<(Tag, Vec<u8>)>,
}

impl RegistryEntry {
    /// An entry with only AID and life cycle state.
    #[must_use]
    pub const fn new(aid: Aid, life_cycle: u8) -> Self {
        RegistryEntry {
            aid,
            life_cycle,
            privileges: None,
            load_file: None,
            load_file_version: None,
            modules: Vec::new(),
            security_domain: None,
            implicit_selection: Vec::new(),
            other: Vec::new(),
        }
    }

    /// The life cycle state decoded for the subset the entry came from (a security domain
    /// is recognized by its privileges).
    ///
    /// # Errors
    /// [`CommandError::LifeCycle`] when the coding is not defined for that kind of entry.
    pub fn life_cycle_state(&self, subset: StatusSubset) -> Result<LifeCycle, CommandError> {
        Ok(match subset {
            StatusSubset::IssuerSecurityDomain => {
                LifeCycle::Card(CardLifeCycle::from_byte(self.life_cycle)?)
            }
            StatusSubset::LoadFiles | StatusSubset::LoadFilesAndModules => {
                LifeCycle::LoadFile(LoadFileLifeCycle::from_byte(self.life_cycle)?)
            }
            StatusSubset::Applications => {
                if self.privileges.is_some_and(Privileges::is_security_domain) {
                    LifeCycle::SecurityDomain(SecurityDomainLifeCycle::from_byte(self.life_cycle)?)
                } else {
                    LifeCycle::Application(ApplicationLifeCycle::from_byte(self.life_cycle)?)
                }
            }
        })
    }

    /// The `E3` template.
    #[must_use]
    pub fn to_tagged(&self) -> Vec<u8> {
        let mut b = TlvBuilder::new();
        b.constructed(TAG_REGISTRY_DATA, |e3| {
            e3.primitive(TAG_AID, self.aid.as_bytes());
            e3.primitive(TAG_LIFE_CYCLE, &[self.life_cycle]);
            if let Some(p) = self.privileges {
                e3.primitive(TAG_PRIVILEGES, &p.to_bytes());
            }
            for cf in &self.implicit_selection {
                e3.primitive(TAG_IMPLICIT_SELECTION, &[*cf]);
            }
            if let Some(lf) = &self.load_file {
                e3.primitive(TAG_LOAD_FILE_AID, lf.as_bytes());
            }
            if let Some(v) = &self.load_file_version {
                e3.primitive(TAG_LOAD_FILE_VERSION, v);
            }
            for m in &self.modules {
                e3.primitive(TAG_MODULE_AID, m.as_bytes());
            }
            if let Some(sd) = &self.security_domain {
                e3.primitive(TAG_SECURITY_DOMAIN_AID, sd.as_bytes());
            }
            for (tag, value) in &self.other {
                e3.primitive(*tag, value);
            }
        });
        b.into_vec()
    }

    /// The `E3` template with only the objects whose tags a `5C` tag list asks for
    /// (GPC 2.3 §11.4.2.3), in the order of [`to_tagged`](Self::to_tagged).
    #[must_use]
    pub fn to_tagged_only(&self, tags: &[Tag]) -> Vec<u8> {
        let full = self.to_tagged();
        let Ok(e3) = tlv::parse_single(&full) else {
            return full;
        };
        let mut b = TlvBuilder::new();
        b.constructed(TAG_REGISTRY_DATA, |out| {
            for item in e3.children().flatten() {
                if tags.contains(&item.tag()) {
                    out.primitive(item.tag(), item.value());
                }
            }
        });
        b.into_vec()
    }

    /// The legacy record (GPC 2.3 §11.4.3.2): `len AID lcs privileges` and, for P1 `10`,
    /// `count (len AID)*`. Only byte 1 of the privileges fits this format.
    ///
    /// # Errors
    /// [`CommandError::TooLong`] for more than 255 modules.
    pub fn to_legacy(&self, subset: StatusSubset) -> Result<Vec<u8>, CommandError> {
        let mut out = Vec::with_capacity(3 + self.aid.len());
        put_lv(&mut out, self.aid.as_bytes(), "AID")?;
        out.push(self.life_cycle);
        out.push(self.privileges.map_or(0, |p| p.to_bytes()[0]));
        if subset == StatusSubset::LoadFilesAndModules {
            out.push(
                u8::try_from(self.modules.len()).map_err(|_| CommandError::TooLong {
                    field: "executable modules",
                    len: self.modules.len(),
                    max: 255,
                })?,
            );
            for m in &self.modules {
                put_lv(&mut out, m.as_bytes(), "module AID")?;
            }
        }
        Ok(out)
    }

    /// The entry in the given format.
    ///
    /// # Errors
    /// As [`to_legacy`](Self::to_legacy).
    pub fn encode(
        &self,
        subset: StatusSubset,
        format: ResponseFormat,
    ) -> Result<Vec<u8>, CommandError> {
        match format {
            ResponseFormat::Tagged => Ok(self.to_tagged()),
            ResponseFormat::Legacy => self.to_legacy(subset),
        }
    }
}

fn parse_tagged_entry(e3: &tlv::Tlv<'_>) -> Result<RegistryEntry, CommandError> {
    let mut aid = None;
    let mut life_cycle = None;
    let mut entry = RegistryEntry::new(Aid::GP_ISD, 0);
    for item in e3.children() {
        let item = item?;
        let v = item.value();
        match item.tag() {
            TAG_AID => set_once(&mut aid, Aid::new(v)?, TAG_AID)?,
            TAG_LIFE_CYCLE => {
                // One byte (GPC 2.3 §11.4.3.1); some cards send two, the first is the state.
                let lcs = match *v {
                    [lcs] | [lcs, _] => lcs,
                    _ => {
                        return Err(CommandError::FieldLength {
                            field: "life cycle state",
                            len: v.len(),
                            min: 1,
                            max: 2,
                        });
                    }
                };
                set_once(&mut life_cycle, lcs, TAG_LIFE_CYCLE)?;
            }
            TAG_PRIVILEGES => {
                set_once(
                    &mut entry.privileges,
                    Privileges::from_slice(v)?,
                    TAG_PRIVILEGES,
                )?;
            }
            TAG_LOAD_FILE_AID => set_once(&mut entry.load_file, Aid::new(v)?, TAG_LOAD_FILE_AID)?,
            TAG_LOAD_FILE_VERSION => {
                set_once(
                    &mut entry.load_file_version,
                    v.to_vec(),
                    TAG_LOAD_FILE_VERSION,
                )?;
            }
            TAG_MODULE_AID => entry.modules.push(Aid::new(v)?),
            TAG_SECURITY_DOMAIN_AID => {
                set_once(
                    &mut entry.security_domain,
                    Aid::new(v)?,
                    TAG_SECURITY_DOMAIN_AID,
                )?;
            }
            TAG_IMPLICIT_SELECTION => {
                let [cf] = *v else {
                    return Err(CommandError::FieldLength {
                        field: "implicit selection parameter",
                        len: v.len(),
                        min: 1,
                        max: 1,
                    });
                };
                entry.implicit_selection.push(cf);
            }
            other => entry.other.push((other, v.to_vec())),
        }
    }
    entry.aid = aid.ok_or(CommandError::MissingTag(TAG_AID))?;
    entry.life_cycle = life_cycle.ok_or(CommandError::MissingTag(TAG_LIFE_CYCLE))?;
    Ok(entry)
}

/// Host side: parse the data of one GET STATUS response.
///
/// # Errors
/// Tagged: [`CommandError::Tlv`], [`CommandError::UnexpectedTag`] for anything but `E3`,
/// [`CommandError::MissingTag`] without `4F` or `9F70`, [`CommandError::AidLength`],
/// [`CommandError::FieldLength`], [`CommandError::DuplicateTag`].
/// Legacy: [`CommandError::Truncated`], [`CommandError::AidLength`].
pub fn parse_get_status_response(
    subset: StatusSubset,
    format: ResponseFormat,
    data: &[u8],
) -> Result<Vec<RegistryEntry>, CommandError> {
    let mut out = Vec::new();
    match format {
        ResponseFormat::Tagged => {
            for e3 in tlv::TlvIter::new(data) {
                let e3 = e3?;
                if e3.tag() != TAG_REGISTRY_DATA {
                    return Err(CommandError::UnexpectedTag {
                        context: "GET STATUS response",
                        found: e3.tag(),
                    });
                }
                out.push(parse_tagged_entry(&e3)?);
            }
        }
        ResponseFormat::Legacy => {
            let mut r = Reader::new(data);
            while !r.is_empty() {
                let aid = Aid::new(r.lv("AID")?)?;
                let mut entry = RegistryEntry::new(aid, r.byte("life cycle state")?);
                entry.privileges = Some(Privileges::from_bytes([r.byte("privileges")?, 0, 0]));
                if subset == StatusSubset::LoadFilesAndModules {
                    let count = r.byte("number of executable modules")?;
                    for _ in 0..count {
                        entry.modules.push(Aid::new(r.lv("module AID")?)?);
                    }
                }
                out.push(entry);
            }
        }
    }
    Ok(out)
}

/// One page of a GET STATUS answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetStatusPage {
    /// The entries of this page.
    pub entries: Vec<RegistryEntry>,
    /// `true` after `6310`: send [`GetStatus::next_occurrence`] for the rest.
    pub more: bool,
}

/// Host side: parse a response including its status word: `9000` is the last page,
/// `6310` announces more (GPC 2.3 §11.4.3).
///
/// # Errors
/// [`CommandError::Status`] for any other status word (`6A88`: nothing matched), and the
/// errors of [`parse_get_status_response`].
pub fn parse_get_status_page(
    subset: StatusSubset,
    format: ResponseFormat,
    data: &[u8],
    status: StatusWord,
) -> Result<GetStatusPage, CommandError> {
    let more = match status {
        StatusWord::SUCCESS => false,
        StatusWord::MORE_DATA => true,
        other => return Err(CommandError::Status(other)),
    };
    Ok(GetStatusPage {
        entries: parse_get_status_response(subset, format, data)?,
        more,
    })
}

/// What the card answers to one GET STATUS command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetStatusAnswer {
    /// Response data.
    pub data: Vec<u8>,
    /// `9000`, or `6310` when entries remain.
    pub status: StatusWord,
    /// Index of the first entry for the next-occurrence command, when entries remain.
    pub next: Option<usize>,
}

/// Card side: answer a parsed GET STATUS from the whole registry: keeps the entries that
/// match its search criterion, honours its tag list (tagged format) and pages from `start`
/// (the `next` index of the previous answer when [`GetStatus::next`] is set, else 0).
///
/// # Errors
/// As [`encode_get_status_response`]; [`CommandError::Tlv`] for a malformed tag list.
pub fn answer_get_status(
    request: &GetStatus,
    registry: &[RegistryEntry],
    start: usize,
    max_len: usize,
) -> Result<GetStatusAnswer, CommandError> {
    let tags = match (&request.tag_list, request.format) {
        (Some(list), ResponseFormat::Tagged) => Some(parse_tag_list(list)?),
        _ => None,
    };
    let matching: Vec<&RegistryEntry> = registry
        .iter()
        .filter(|e| request.matches(&e.aid))
        .collect();
    let encode = |e: &RegistryEntry| match &tags {
        Some(tags) => Ok(e.to_tagged_only(tags)),
        None => e.encode(request.subset, request.format),
    };
    encode_entries(&matching, encode, start, max_len)
}

/// Card side: encode the matching entries from `start` on, as many as fit `max_len` bytes;
/// answers `6310` with the index to continue from when some remain (GPC 2.3 §11.4.3).
///
/// # Errors
/// [`CommandError::NotFound`] (`6A88`) when no entry remains from `start`,
/// [`CommandError::TooLong`] when the entry at `start` alone exceeds `max_len`, and the
/// errors of [`RegistryEntry::encode`].
pub fn encode_get_status_response(
    entries: &[RegistryEntry],
    subset: StatusSubset,
    format: ResponseFormat,
    start: usize,
    max_len: usize,
) -> Result<GetStatusAnswer, CommandError> {
    let refs: Vec<&RegistryEntry> = entries.iter().collect();
    encode_entries(&refs, |e| e.encode(subset, format), start, max_len)
}

fn encode_entries(
    entries: &[&RegistryEntry],
    encode: impl Fn(&RegistryEntry) -> Result<Vec<u8>, CommandError>,
    start: usize,
    max_len: usize,
) -> Result<GetStatusAnswer, CommandError> {
    let remaining = entries.get(start..).unwrap_or(&[]);
    if remaining.is_empty() {
        return Err(CommandError::NotFound);
    }
    let mut data = Vec::new();
    for (offset, entry) in remaining.iter().enumerate() {
        let encoded = encode(entry)?;
        if data.len() + encoded.len() > max_len {
            if offset == 0 {
                return Err(CommandError::TooLong {
                    field: "registry entry",
                    len: encoded.len(),
                    max: max_len,
                });
            }
            return Ok(GetStatusAnswer {
                data,
                status: StatusWord::MORE_DATA,
                next: Some(start + offset),
            });
        }
        data.extend_from_slice(&encoded);
    }
    Ok(GetStatusAnswer {
        data,
        status: StatusWord::SUCCESS,
        next: None,
    })
}
