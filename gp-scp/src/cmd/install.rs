//! INSTALL (GPC 2.3 §11.5): every variant's data field for the host and the card, and the
//! install / load / system parameters inside it (§11.5.2.3.6-7, Tables 11-48 to 11-50).

use alloc::vec::Vec;

use apdu_codec::tlv::{self, Tag, TlvBuilder};
use apdu_codec::{Command, CommandView, ins};

use super::reader::{Reader, be_uint, expect_ins, put_ber_lv, put_lv};
use super::select::set_once;
use super::{Aid, CLA_GP, CommandError, LE_MAX_SHORT, Privileges};

/// P1 b8: more INSTALL commands follow (GPC 2.3 §11.5.2.1).
pub const P1_MORE: u8 = 0x80;
/// P1 `02`: for load.
pub const P1_FOR_LOAD: u8 = 0x02;
/// P1 `04`: for install.
pub const P1_FOR_INSTALL: u8 = 0x04;
/// P1 `08`: for make selectable.
pub const P1_FOR_MAKE_SELECTABLE: u8 = 0x08;
/// P1 `0C`: for install and make selectable.
pub const P1_FOR_INSTALL_AND_MAKE_SELECTABLE: u8 = 0x0C;
/// P1 `10`: for extradition.
pub const P1_FOR_EXTRADITION: u8 = 0x10;
/// P1 `20`: for personalization.
pub const P1_FOR_PERSONALIZATION: u8 = 0x20;
/// P1 `40`: for registry update.
pub const P1_FOR_REGISTRY_UPDATE: u8 = 0x40;

/// `C9` application specific parameters (GPC 2.3 Table 11-49).
pub const TAG_APPLICATION_SPECIFIC: Tag = Tag::new(0xC9);
/// `EF` system specific parameters (GPC 2.3 Tables 11-48, 11-49).
pub const TAG_SYSTEM_SPECIFIC: Tag = Tag::new(0xEF);
/// `EA` TS 102 226 specific template (GPC 2.3 Table 11-49, ETSI TS 102 226 §8.2.1.3).
pub const TAG_TS102226_TEMPLATE: Tag = Tag::new(0xEA);
/// `C6` non-volatile code minimum memory requirement (Table 11-48).
pub const TAG_NV_CODE_MIN: Tag = Tag::new(0xC6);
/// `C7` volatile minimum memory requirement (Table 11-48).
pub const TAG_VOLATILE_MIN: Tag = Tag::new(0xC7);
/// `C8` non-volatile data minimum memory requirement (Table 11-48).
pub const TAG_NV_DATA_MIN: Tag = Tag::new(0xC8);
/// `CB` global service parameters (Table 11-49).
pub const TAG_GLOBAL_SERVICE: Tag = Tag::new(0xCB);
/// `D7` volatile reserved memory (Table 11-49).
pub const TAG_VOLATILE_RESERVED: Tag = Tag::new(0xD7);
/// `D8` non-volatile reserved memory (Table 11-49).
pub const TAG_NV_RESERVED: Tag = Tag::new(0xD8);
/// `CA` TS 102 226 specific parameter (Table 11-49).
pub const TAG_TS102226_PARAMETER: Tag = Tag::new(0xCA);
/// `CD` load file data block format id (Table 11-48).
pub const TAG_LFDB_FORMAT: Tag = Tag::new(0xCD);
/// `CF` implicit selection parameter (Table 11-50, §11.1.7).
pub const TAG_IMPLICIT_SELECTION: Tag = Tag::new(0xCF);
/// `DD` load file data block parameters (Table 11-48).
pub const TAG_LFDB_PARAMETERS: Tag = Tag::new(0xDD);

/// P2 of INSTALL: the combined load, install and make selectable sequence indicator
/// (GPC 2.3 §11.5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CombinedSequence {
    /// `00`: no information.
    #[default]
    None,
    /// `01`: beginning of a combined load, install and make selectable process.
    Beginning,
    /// `03`: end of a combined load, install and make selectable process.
    End,
}

impl CombinedSequence {
    const fn p2(self) -> u8 {
        match self {
            CombinedSequence::None => 0x00,
            CombinedSequence::Beginning => 0x01,
            CombinedSequence::End => 0x03,
        }
    }
}

/// The variants of INSTALL with their data fields (GPC 2.3 §11.5.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Install {
    /// P1 `02` (§11.5.2.3.1).
    ForLoad {
        /// Load file AID.
        load_file: Aid,
        /// Security domain to associate (absent: the current one).
        security_domain: Option<Aid>,
        /// Load file data block hash (may be empty).
        hash: Vec<u8>,
        /// Load parameters (may be empty; see [`SystemParameters`]).
        parameters: Vec<u8>,
        /// Load token (may be empty).
        token: Vec<u8>,
    },
    /// P1 `04`, or `0C` with `make_selectable` (§11.5.2.3.2).
    ForInstall {
        /// Executable load file AID.
        load_file: Aid,
        /// Executable module AID.
        module: Aid,
        /// Application AID.
        application: Aid,
        /// Privileges.
        privileges: Privileges,
        /// Install parameters (see [`InstallParameters`]; `C9` is mandatory when present).
        parameters: Vec<u8>,
        /// Install token (may be empty).
        token: Vec<u8>,
        /// P1 `0C`: install and make selectable in one step.
        make_selectable: bool,
    },
    /// P1 `08` (§11.5.2.3.3).
    MakeSelectable {
        /// Application AID.
        application: Aid,
        /// New privileges (absent, a zero-length field: unchanged; GPC 2.3 §11.5.2.3.3).
        privileges: Option<Privileges>,
        /// Make selectable parameters (may be empty).
        parameters: Vec<u8>,
        /// Make selectable token (may be empty).
        token: Vec<u8>,
    },
    /// P1 `10` (§11.5.2.3.4).
    Extradition {
        /// The security domain to associate with.
        security_domain: Aid,
        /// The application or executable load file.
        application: Aid,
        /// Extradition parameters (may be empty).
        parameters: Vec<u8>,
        /// Extradition token (may be empty).
        token: Vec<u8>,
    },
    /// P1 `20` (§11.5.2.3.5).
    Personalization {
        /// The application to personalize through its security domain.
        application: Aid,
    },
    /// P1 `40` (§11.5.2.3.6).
    RegistryUpdate {
        /// Security domain to associate with (absent: unchanged).
        security_domain: Option<Aid>,
        /// Application whose entry changes (absent: the security domain itself).
        application: Option<Aid>,
        /// New privileges (absent: unchanged).
        privileges: Option<Privileges>,
        /// Registry update parameters (may be empty).
        parameters: Vec<u8>,
        /// Registry update token (may be empty).
        token: Vec<u8>,
    },
}

impl Install {
    /// The P1 coding (without the "more commands" bit).
    #[must_use]
    pub const fn p1(&self) -> u8 {
        match self {
            Install::ForLoad { .. } => P1_FOR_LOAD,
            Install::ForInstall {
                make_selectable: false,
                ..
            } => P1_FOR_INSTALL,
            Install::ForInstall {
                make_selectable: true,
                ..
            } => P1_FOR_INSTALL_AND_MAKE_SELECTABLE,
            Install::MakeSelectable { .. } => P1_FOR_MAKE_SELECTABLE,
            Install::Extradition { .. } => P1_FOR_EXTRADITION,
            Install::Personalization { .. } => P1_FOR_PERSONALIZATION,
            Install::RegistryUpdate { .. } => P1_FOR_REGISTRY_UPDATE,
        }
    }

    /// The data field.
    ///
    /// # Errors
    /// [`CommandError::TooLong`] for a parameters, hash or token field over 65535 bytes.
    pub fn data(&self) -> Result<Vec<u8>, CommandError> {
        let mut out = Vec::new();
        let aid = |out: &mut Vec<u8>, a: Option<&Aid>| {
            put_lv(out, a.map_or(&[][..], Aid::as_bytes), "AID")
        };
        match self {
            Install::ForLoad {
                load_file,
                security_domain,
                hash,
                parameters,
                token,
            } => {
                aid(&mut out, Some(load_file))?;
                aid(&mut out, security_domain.as_ref())?;
                put_ber_lv(&mut out, hash, "load file data block hash")?;
                put_ber_lv(&mut out, parameters, "load parameters")?;
                put_ber_lv(&mut out, token, "load token")?;
            }
            Install::ForInstall {
                load_file,
                module,
                application,
                privileges,
                parameters,
                token,
                ..
            } => {
                aid(&mut out, Some(load_file))?;
                aid(&mut out, Some(module))?;
                aid(&mut out, Some(application))?;
                put_lv(&mut out, &privileges.to_bytes(), "privileges")?;
                put_ber_lv(&mut out, parameters, "install parameters")?;
                put_ber_lv(&mut out, token, "install token")?;
            }
            Install::MakeSelectable {
                application,
                privileges,
                parameters,
                token,
            } => {
                out.extend_from_slice(&[0, 0]);
                aid(&mut out, Some(application))?;
                match privileges {
                    Some(p) => put_lv(&mut out, &p.to_bytes(), "privileges")?,
                    None => out.push(0),
                }
                put_ber_lv(&mut out, parameters, "make selectable parameters")?;
                put_ber_lv(&mut out, token, "make selectable token")?;
            }
            Install::Extradition {
                security_domain,
                application,
                parameters,
                token,
            } => {
                aid(&mut out, Some(security_domain))?;
                out.push(0);
                aid(&mut out, Some(application))?;
                out.push(0);
                put_ber_lv(&mut out, parameters, "extradition parameters")?;
                put_ber_lv(&mut out, token, "extradition token")?;
            }
            Install::Personalization { application } => {
                out.extend_from_slice(&[0, 0]);
                aid(&mut out, Some(application))?;
                out.extend_from_slice(&[0, 0, 0]);
            }
            Install::RegistryUpdate {
                security_domain,
                application,
                privileges,
                parameters,
                token,
            } => {
                aid(&mut out, security_domain.as_ref())?;
                out.push(0);
                aid(&mut out, application.as_ref())?;
                match privileges {
                    Some(p) => put_lv(&mut out, &p.to_bytes(), "privileges")?,
                    None => out.push(0),
                }
                put_ber_lv(&mut out, parameters, "registry update parameters")?;
                put_ber_lv(&mut out, token, "registry update token")?;
            }
        }
        Ok(out)
    }

    /// Host: `80 E6 P1 00 Lc data 00`.
    ///
    /// # Errors
    /// As [`data`](Self::data).
    pub fn to_command(&self) -> Result<Command, CommandError> {
        InstallCommand::new(self.clone()).to_command()
    }
}

/// INSTALL with the P1 "more commands" bit and the P2 sequence indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallCommand {
    /// The variant and its fields.
    pub install: Install,
    /// P1 b8: more INSTALL commands follow.
    pub more: bool,
    /// P2.
    pub sequence: CombinedSequence,
}

impl InstallCommand {
    /// A single INSTALL command (P1 b8 clear, P2 `00`).
    #[must_use]
    pub const fn new(install: Install) -> Self {
        InstallCommand {
            install,
            more: false,
            sequence: CombinedSequence::None,
        }
    }

    /// Host: `80 E6 P1 P2 Lc data 00`.
    ///
    /// # Errors
    /// As [`Install::data`].
    pub fn to_command(&self) -> Result<Command, CommandError> {
        let p1 = self.install.p1() | if self.more { P1_MORE } else { 0 };
        Ok(Command::new(CLA_GP, ins::INSTALL, p1, self.sequence.p2())
            .with_data(self.install.data()?)
            .with_le(LE_MAX_SHORT))
    }
}

fn optional_aid(bytes: &[u8]) -> Result<Option<Aid>, CommandError> {
    if bytes.is_empty() {
        Ok(None)
    } else {
        Aid::new(bytes).map(Some)
    }
}

fn empty(bytes: &[u8], field: &'static str) -> Result<(), CommandError> {
    if bytes.is_empty() {
        Ok(())
    } else {
        Err(CommandError::FieldLength {
            field,
            len: bytes.len(),
            min: 0,
            max: 0,
        })
    }
}

fn well_formed(bytes: &[u8]) -> Result<(), CommandError> {
    tlv::validate(bytes, tlv::Limits::default())?;
    Ok(())
}

/// Card side: parse INSTALL.
///
/// # Errors
/// [`CommandError::Instruction`], [`CommandError::P1P2`] for an undefined P1/P2,
/// [`CommandError::DataLength`] without data, [`CommandError::Truncated`],
/// [`CommandError::TrailingBytes`], [`CommandError::AidLength`],
/// [`CommandError::FieldLength`] (privileges, fields that must be empty),
/// [`CommandError::Tlv`] for malformed parameters, [`CommandError::MissingTag`] for
/// install parameters without `C9`.
pub fn parse_install(command: &CommandView<'_>) -> Result<InstallCommand, CommandError> {
    expect_ins(command, ins::INSTALL)?;
    let (p1, p2) = (command.p1(), command.p2());
    let bad_p1p2 = CommandError::P1P2 {
        command: "INSTALL",
        p1,
        p2,
    };
    let sequence = match p2 {
        0x00 => CombinedSequence::None,
        0x01 => CombinedSequence::Beginning,
        0x03 => CombinedSequence::End,
        _ => return Err(bad_p1p2),
    };
    // An undefined P1 is reported before the data field is looked at (as P2 above).
    if !matches!(
        p1 & !P1_MORE,
        P1_FOR_LOAD
            | P1_FOR_INSTALL
            | P1_FOR_INSTALL_AND_MAKE_SELECTABLE
            | P1_FOR_MAKE_SELECTABLE
            | P1_FOR_EXTRADITION
            | P1_FOR_PERSONALIZATION
            | P1_FOR_REGISTRY_UPDATE
    ) {
        return Err(bad_p1p2);
    }
    let data = command.data();
    if data.is_empty() {
        return Err(CommandError::DataLength {
            command: "INSTALL",
            len: 0,
        });
    }
    let mut r = Reader::new(data);
    let install = match p1 & !P1_MORE {
        P1_FOR_LOAD => {
            let load_file = Aid::new(r.lv("load file AID")?)?;
            let security_domain = optional_aid(r.lv("security domain AID")?)?;
            let hash = r.ber_lv("load file data block hash")?.to_vec();
            let parameters = r.ber_lv("load parameters")?.to_vec();
            let token = r.ber_lv("load token")?.to_vec();
            well_formed(&parameters)?;
            Install::ForLoad {
                load_file,
                security_domain,
                hash,
                parameters,
                token,
            }
        }
        P1_FOR_INSTALL | P1_FOR_INSTALL_AND_MAKE_SELECTABLE => {
            let load_file = Aid::new(r.lv("executable load file AID")?)?;
            let module = Aid::new(r.lv("executable module AID")?)?;
            let application = Aid::new(r.lv("application AID")?)?;
            let privileges = Privileges::from_slice(r.lv("privileges")?)?;
            let parameters = r.ber_lv("install parameters")?.to_vec();
            let token = r.ber_lv("install token")?.to_vec();
            if !parameters.is_empty() {
                let parsed = parse_install_parameters(&parameters)?;
                if parsed.application_specific.is_none() {
                    return Err(CommandError::MissingTag(TAG_APPLICATION_SPECIFIC));
                }
            }
            Install::ForInstall {
                load_file,
                module,
                application,
                privileges,
                parameters,
                token,
                make_selectable: p1 & !P1_MORE == P1_FOR_INSTALL_AND_MAKE_SELECTABLE,
            }
        }
        P1_FOR_MAKE_SELECTABLE => {
            empty(
                r.lv("executable load file AID")?,
                "executable load file AID",
            )?;
            empty(r.lv("executable module AID")?, "executable module AID")?;
            let application = Aid::new(r.lv("application AID")?)?;
            let privileges = match r.lv("privileges")? {
                [] => None,
                p => Some(Privileges::from_slice(p)?),
            };
            let parameters = r.ber_lv("make selectable parameters")?.to_vec();
            let token = r.ber_lv("make selectable token")?.to_vec();
            well_formed(&parameters)?;
            Install::MakeSelectable {
                application,
                privileges,
                parameters,
                token,
            }
        }
        P1_FOR_EXTRADITION => {
            let security_domain = Aid::new(r.lv("security domain AID")?)?;
            empty(r.lv("executable module AID")?, "executable module AID")?;
            let application = Aid::new(r.lv("application AID")?)?;
            empty(r.lv("privileges")?, "privileges")?;
            let parameters = r.ber_lv("extradition parameters")?.to_vec();
            let token = r.ber_lv("extradition token")?.to_vec();
            well_formed(&parameters)?;
            Install::Extradition {
                security_domain,
                application,
                parameters,
                token,
            }
        }
        P1_FOR_PERSONALIZATION => {
            empty(
                r.lv("executable load file AID")?,
                "executable load file AID",
            )?;
            empty(r.lv("executable module AID")?, "executable module AID")?;
            let application = Aid::new(r.lv("application AID")?)?;
            empty(r.lv("privileges")?, "privileges")?;
            empty(r.ber_lv("parameters")?, "parameters")?;
            empty(r.ber_lv("token")?, "token")?;
            Install::Personalization { application }
        }
        P1_FOR_REGISTRY_UPDATE => {
            let security_domain = optional_aid(r.lv("security domain AID")?)?;
            empty(r.lv("executable module AID")?, "executable module AID")?;
            let application = optional_aid(r.lv("application AID")?)?;
            let privileges = match r.lv("privileges")? {
                [] => None,
                p => Some(Privileges::from_slice(p)?),
            };
            let parameters = r.ber_lv("registry update parameters")?.to_vec();
            let token = r.ber_lv("registry update token")?.to_vec();
            well_formed(&parameters)?;
            Install::RegistryUpdate {
                security_domain,
                application,
                privileges,
                parameters,
                token,
            }
        }
        _ => return Err(bad_p1p2),
    };
    r.finish("INSTALL data")?;
    Ok(InstallCommand {
        install,
        more: p1 & P1_MORE != 0,
        sequence,
    })
}

/// System specific parameters `EF` (GPC 2.3 Tables 11-48 and 11-49): memory quotas and the
/// other system objects. Memory amounts are 2 or 4 bytes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemParameters {
    /// `C6` non-volatile code minimum memory requirement.
    pub non_volatile_code: Option<u32>,
    /// `C7` volatile minimum memory requirement.
    pub volatile_memory: Option<u32>,
    /// `C8` non-volatile data minimum memory requirement.
    pub non_volatile_data: Option<u32>,
    /// `CB` global service parameters.
    pub global_service: Option<Vec<u8>>,
    /// `D7` volatile reserved memory (memory quota).
    pub volatile_reserved: Option<u32>,
    /// `D8` non-volatile reserved memory (memory quota).
    pub non_volatile_reserved: Option<u32>,
    /// `CA` TS 102 226 specific parameter.
    pub ts102226: Option<Vec<u8>>,
    /// `CD` load file data block format id.
    pub lfdb_format: Option<Vec<u8>>,
    /// `CF` implicit selection parameters (one byte each, GPC 2.3 §11.1.7).
    pub implicit_selection: Vec<u8>,
    /// `DD` load file data block parameters.
    pub lfdb_parameters: Option<Vec<u8>>,
    /// Other objects, kept as received.
    pub other: Vec<(Tag, Vec<u8>)>,
}

fn memory_bytes(value: u32) -> Vec<u8> {
    match u16::try_from(value) {
        Ok(short) => short.to_be_bytes().to_vec(),
        Err(_) => value.to_be_bytes().to_vec(),
    }
}

fn memory_value(bytes: &[u8], field: &'static str) -> Result<u32, CommandError> {
    if bytes.len() != 2 && bytes.len() != 4 {
        return Err(CommandError::FieldLength {
            field,
            len: bytes.len(),
            min: 2,
            max: 4,
        });
    }
    be_uint(bytes, field)
}

impl SystemParameters {
    /// The `EF` object.
    #[must_use]
    pub fn to_tlv(&self) -> Vec<u8> {
        let mut b = TlvBuilder::new();
        b.constructed(TAG_SYSTEM_SPECIFIC, |ef| {
            for (tag, value) in [
                (TAG_NV_CODE_MIN, self.non_volatile_code),
                (TAG_VOLATILE_MIN, self.volatile_memory),
                (TAG_NV_DATA_MIN, self.non_volatile_data),
            ] {
                if let Some(v) = value {
                    ef.primitive(tag, &memory_bytes(v));
                }
            }
            if let Some(v) = &self.global_service {
                ef.primitive(TAG_GLOBAL_SERVICE, v);
            }
            for (tag, value) in [
                (TAG_VOLATILE_RESERVED, self.volatile_reserved),
                (TAG_NV_RESERVED, self.non_volatile_reserved),
            ] {
                if let Some(v) = value {
                    ef.primitive(tag, &memory_bytes(v));
                }
            }
            if let Some(v) = &self.ts102226 {
                ef.primitive(TAG_TS102226_PARAMETER, v);
            }
            if let Some(v) = &self.lfdb_format {
                ef.primitive(TAG_LFDB_FORMAT, v);
            }
            for cf in &self.implicit_selection {
                ef.primitive(TAG_IMPLICIT_SELECTION, &[*cf]);
            }
            if let Some(v) = &self.lfdb_parameters {
                ef.primitive(TAG_LFDB_PARAMETERS, v);
            }
            for (tag, v) in &self.other {
                ef.primitive(*tag, v);
            }
        });
        b.into_vec()
    }
}

/// Parse the value of an `EF` object.
///
/// # Errors
/// [`CommandError::Tlv`], [`CommandError::FieldLength`] for a memory amount that is not 2
/// or 4 bytes or an implicit selection parameter that is not 1 byte,
/// [`CommandError::DuplicateTag`].
pub fn parse_system_parameters(value: &[u8]) -> Result<SystemParameters, CommandError> {
    let mut p = SystemParameters::default();
    for item in tlv::TlvIter::new(value) {
        let item = item?;
        let v = item.value();
        let tag = item.tag();
        match tag {
            TAG_NV_CODE_MIN => set_once(&mut p.non_volatile_code, memory_value(v, "C6")?, tag)?,
            TAG_VOLATILE_MIN => set_once(&mut p.volatile_memory, memory_value(v, "C7")?, tag)?,
            TAG_NV_DATA_MIN => set_once(&mut p.non_volatile_data, memory_value(v, "C8")?, tag)?,
            TAG_GLOBAL_SERVICE => set_once(&mut p.global_service, v.to_vec(), tag)?,
            TAG_VOLATILE_RESERVED => {
                set_once(&mut p.volatile_reserved, memory_value(v, "D7")?, tag)?;
            }
            TAG_NV_RESERVED => {
                set_once(&mut p.non_volatile_reserved, memory_value(v, "D8")?, tag)?;
            }
            TAG_TS102226_PARAMETER => set_once(&mut p.ts102226, v.to_vec(), tag)?,
            TAG_LFDB_FORMAT => set_once(&mut p.lfdb_format, v.to_vec(), tag)?,
            TAG_IMPLICIT_SELECTION => {
                let [cf] = *v else {
                    return Err(CommandError::FieldLength {
                        field: "implicit selection parameter",
                        len: v.len(),
                        min: 1,
                        max: 1,
                    });
                };
                p.implicit_selection.push(cf);
            }
            TAG_LFDB_PARAMETERS => set_once(&mut p.lfdb_parameters, v.to_vec(), tag)?,
            other => p.other.push((other, v.to_vec())),
        }
    }
    Ok(p)
}

/// Install parameters (GPC 2.3 §11.5.2.3.7, Table 11-49) — also the shape of load,
/// make selectable, extradition and registry update parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstallParameters {
    /// `C9` application specific parameters (mandatory in install parameters; `C9 00`
    /// when the application takes none).
    pub application_specific: Option<Vec<u8>>,
    /// `EF` system specific parameters.
    pub system: Option<SystemParameters>,
    /// `EA` TS 102 226 specific template.
    pub ts102226: Option<Vec<u8>>,
    /// Other objects (for example `B6` control reference template), kept as received.
    pub other: Vec<(Tag, Vec<u8>)>,
}

impl InstallParameters {
    /// Parameters with only `C9`.
    #[must_use]
    pub fn application(specific: &[u8]) -> Self {
        InstallParameters {
            application_specific: Some(specific.to_vec()),
            ..InstallParameters::default()
        }
    }

    /// The encoded parameters field.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(c9) = &self.application_specific {
            tlv::write_tlv(&mut out, TAG_APPLICATION_SPECIFIC, c9);
        }
        if let Some(ef) = &self.system {
            out.extend_from_slice(&ef.to_tlv());
        }
        if let Some(ea) = &self.ts102226 {
            tlv::write_tlv(&mut out, TAG_TS102226_TEMPLATE, ea);
        }
        for (tag, v) in &self.other {
            tlv::write_tlv(&mut out, *tag, v);
        }
        out
    }
}

/// Parse a parameters field.
///
/// # Errors
/// [`CommandError::Tlv`], [`CommandError::DuplicateTag`], and the errors of
/// [`parse_system_parameters`].
pub fn parse_install_parameters(bytes: &[u8]) -> Result<InstallParameters, CommandError> {
    let mut p = InstallParameters::default();
    for item in tlv::TlvIter::new(bytes) {
        let item = item?;
        let tag = item.tag();
        match tag {
            TAG_APPLICATION_SPECIFIC => {
                set_once(&mut p.application_specific, item.value().to_vec(), tag)?;
            }
            TAG_SYSTEM_SPECIFIC => {
                set_once(&mut p.system, parse_system_parameters(item.value())?, tag)?;
            }
            TAG_TS102226_TEMPLATE => set_once(&mut p.ts102226, item.value().to_vec(), tag)?,
            other => p.other.push((other, item.value().to_vec())),
        }
    }
    Ok(p)
}
