//! GlobalPlatform card-management commands processed by a security domain: GET DATA, GET
//! STATUS, INSTALL, LOAD, DELETE, PUT KEY, STORE DATA, SET STATUS (GPC 2.3 §11).
//!
//! Every handler works on a working copy of the card state and on the command's transaction;
//! the caller commits both only when the handler returns `Ok`.

use std::collections::BTreeMap;

use apdu_codec::tlv::{Tag, TlvIter, write_tlv};
use apdu_codec::{CommandView, StatusWord};
use gp_scp::SecurityLevel;
use gp_scp::cmd::get_data::{self, CardRecognitionData, KeyInformation, ScpInfo};
use gp_scp::cmd::get_status::{self, GetStatus, StatusSubset};
use gp_scp::cmd::install::{self, Install};
use gp_scp::cmd::load::{self, LoadReassembler};
use gp_scp::cmd::set_status::{self, Scope, SetStatus};
use gp_scp::cmd::store_data::{self, Encryption, Structure};
use gp_scp::cmd::{
    Aid, ApplicationLifeCycle, CardLifeCycle, CommandError, Privilege, Privileges,
    SecurityDomainLifeCycle, delete,
};
use gp_scp::crypto::AesCipher;
use gp_scp::keys::KeyType;
use gp_scp::put_key::parse_put_key_data;

use super::model::{
    CardState, DomainRecord, ELF_PREFIX, EntryKind, KeyRecord, RegistryEntry, app_lifecycle,
    app_prefix, card_lifecycle, record_key,
};
use super::{CardOptions, KeyInfoFormat, TxStorage};
use crate::applet::{Applet, AppletContext, Packages, StoreDataBlock};
use crate::store::{Store, Transaction};

/// Largest executable load file accepted by LOAD (bytes).
pub(crate) const MAX_LOAD_FILE: usize = 256 * 1024;
/// Response budget for GET STATUS pages: leaves room for R-MAC (8) and R-ENC padding (16)
/// inside a short response.
const STATUS_PAGE_BUDGET: usize = 200;

/// The outcome of a handler: response data and status word (success or a warning).
pub(crate) type Outcome = Result<(Vec<u8>, StatusWord), StatusWord>;

fn ok(data: Vec<u8>) -> Outcome {
    Ok((data, StatusWord::SUCCESS))
}

/// The status word of a command the shared parsers refuse (GPC 2.3 chapter 11).
#[allow(clippy::needless_pass_by_value)] // used as `map_err(sw)`
fn sw(e: CommandError) -> StatusWord {
    e.status_word()
}

/// A LOAD sequence in progress (transient: a reset abandons it).
#[derive(Debug, Clone)]
pub(crate) struct LoadInProgress {
    pub(crate) load_file: Vec<u8>,
    pub(crate) sd: Vec<u8>,
    pub(crate) blocks: LoadReassembler,
}

/// Per-logical-channel transient state the card-management commands use.
#[derive(Debug, Clone, Default)]
pub(crate) struct ManagementState {
    /// INSTALL [for personalization] target.
    pub(crate) personalization: Option<Vec<u8>>,
    /// Next expected STORE DATA block number.
    pub(crate) next_store_block: u8,
    /// A LOAD after INSTALL [for load].
    pub(crate) load: Option<LoadInProgress>,
    /// GET STATUS paging: the search and the index of the next entry to return.
    pub(crate) status_paging: Option<(GetStatus, usize)>,
}

/// Everything a handler needs besides the command.
pub(crate) struct Env<'a> {
    /// Working copy of the card state.
    pub(crate) state: &'a mut CardState,
    /// AID of the security domain processing the command.
    pub(crate) sd: Vec<u8>,
    /// Level of the authenticated secure channel on this logical channel, if any.
    pub(crate) level: Option<SecurityLevel>,
    /// Key (and its type) that decrypts PUT KEY key components: session DEK for SCP02, static
    /// DEK for SCP03, S-DEK for SCP11.
    pub(crate) dek: Option<(Vec<u8>, KeyType)>,
    /// Per-channel management state.
    pub(crate) mgmt: &'a mut ManagementState,
    /// Card options from the profile.
    pub(crate) options: &'a CardOptions,
    /// Built-in packages.
    pub(crate) packages: &'a Packages,
    /// Live applet instances (transient state).
    pub(crate) instances: &'a mut BTreeMap<Vec<u8>, Box<dyn Applet>>,
    /// Logical channel number.
    pub(crate) channel: u8,
    /// The card's random source.
    pub(crate) random: &'a mut dyn FnMut(&mut [u8]),
}

impl Env<'_> {
    fn require_auth(&self) -> Result<SecurityLevel, StatusWord> {
        // GPC 2.3 §10.2: card content management needs an authenticated secure channel.
        self.level.ok_or(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
    }

    fn sd_entry(&self) -> Result<&RegistryEntry, StatusWord> {
        self.state
            .entries
            .get(&self.sd)
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)
    }

    fn is_isd(&self) -> bool {
        self.sd == self.state.card.isd
    }

    fn domain(&self) -> Result<&DomainRecord, StatusWord> {
        self.state
            .domains
            .get(&self.sd)
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)
    }

    fn domain_mut(&mut self) -> Result<&mut DomainRecord, StatusWord> {
        self.state
            .domains
            .get_mut(&self.sd)
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)
    }

    /// Whether this SD may manage card content (ISD, or an SSD with authorized management).
    fn may_manage_content(&self) -> Result<bool, StatusWord> {
        let e = self.sd_entry()?;
        Ok(self.is_isd()
            || Privileges::from_bytes(e.privileges).has(Privilege::AuthorizedManagement))
    }

    /// Whether this SD may act on `entry` (the ISD on everything; an SSD with authorized
    /// management on what is associated with it).
    fn may_act_on(&self, entry: &RegistryEntry) -> Result<bool, StatusWord> {
        if self.is_isd() {
            return Ok(true);
        }
        Ok(self.may_manage_content()? && entry.associated_sd == self.sd)
    }
}

/// A cursor over length-prefixed fields.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn byte(&mut self) -> Result<u8, StatusWord> {
        let (&b, rest) = self.0.split_first().ok_or(StatusWord::INCORRECT_DATA)?;
        self.0 = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StatusWord> {
        let (a, b) = self
            .0
            .split_at_checked(n)
            .ok_or(StatusWord::INCORRECT_DATA)?;
        self.0 = b;
        Ok(a)
    }

    /// A one-byte length then that many bytes.
    fn lv(&mut self) -> Result<&'a [u8], StatusWord> {
        let n = self.byte()?;
        self.take(usize::from(n))
    }
}

fn tlv(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + 5);
    write_tlv(&mut v, Tag::new(tag), value);
    v
}

/// A positive INTEGER's content octets: big-endian, no leading zero byte unless needed for
/// the sign (X.690 §8.3).
fn minimal_be(n: u32) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    let mut v = bytes.get(skip..).unwrap_or(&bytes).to_vec();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    v
}

// ---------------------------------------------------------------------------------------------
// GET DATA

/// Card recognition data (GPC 2.3 §H.2) of a security domain using `scp` with options `i`:
/// GlobalPlatform 2.3, no card identification scheme arcs, one secure channel protocol.
pub(crate) fn card_recognition_data(scp: u8, i: u8) -> CardRecognitionData {
    CardRecognitionData {
        gp_version: Some(vec![0x02, 0x03]),
        card_id_scheme: Some(Vec::new()),
        secure_channels: vec![ScpInfo { scp, i }],
        ..CardRecognitionData::default()
    }
}

/// Key information data of every key, ordered by version then identifier (GPC 2.3
/// §11.3.3.1 Table 11-28: `C0 04 id kvn type len`).
fn key_info(keys: &[KeyRecord]) -> Vec<KeyInformation> {
    let mut sorted: Vec<&KeyRecord> = keys.iter().collect();
    sorted.sort_by_key(|k| (k.kvn, k.id));
    sorted
        .into_iter()
        .map(|k| {
            let len = u8::try_from(k.value.len()).unwrap_or(u8::MAX);
            KeyInformation::basic(k.id, k.kvn, k.key_type, len)
        })
        .collect()
}

/// GET DATA (GPC 2.3 §11.3): `80/00 CA P1 P2`.
pub(crate) fn get_data(cmd: &CommandView<'_>, env: &Env<'_>) -> Outcome {
    let tag = u16::from_be_bytes([cmd.p1(), cmd.p2()]);
    let domain = env.domain()?;
    let tagged = env.options.key_info_format == KeyInfoFormat::GlobalPlatform;
    match tag {
        // ISO/IEC 7816-4 extended length information (layout as in the OpenPGP card
        // spec 3.4): `02 L max command APDU bytes, 02 L max response APDU bytes`.
        0x7F66 => match env.options.extended_length {
            super::ExtendedLength::Announced {
                max_command: Some(c),
                max_response,
            } => {
                let mut v = tlv(0x02, &minimal_be(c));
                v.extend_from_slice(&tlv(0x02, &minimal_be(max_response.unwrap_or(c))));
                ok(tlv(0x7F66, &v))
            }
            _ => Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        },
        // GPC 2.3 §H.6: CPLC.
        0x9F7F => ok(tlv(0x9F7F, &env.state.card.cplc)),
        // GPC 2.3 §H.2: card data (card recognition data).
        0x0066 => {
            if let Some(v) = domain.data_objects.get(&0x66) {
                return ok(tlv(0x66, v));
            }
            ok(card_recognition_data(domain.scp.id(), domain.i).to_card_data())
        }
        // GPC 2.3 §11.3.3: key diversification data.
        0x00CF => ok(tlv(0xCF, &domain.kdd)),
        // GPC 2.3 §11.3.3: sequence counter of the default key version (2 bytes SCP02, 3 SCP03).
        0x00C1 => {
            let b = domain.sequence_counter.to_be_bytes();
            let v = if domain.scp == super::model::Scp::Scp02 {
                &b[2..]
            } else {
                &b[1..]
            };
            ok(tlv(0xC1, v))
        }
        // GPC 2.3 §11.3.3.1: key information template.
        0x00E0 => {
            ok(get_data::encode_key_information(&key_info(&domain.keys), tagged).map_err(sw)?)
        }
        // GPC 2.3 §H.1: IIN and CIN.
        0x0042 | 0x0045 => {
            let v = domain
                .data_objects
                .get(&u32::from(tag))
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
            ok(tlv(u32::from(tag), v))
        }
        // Amd F §6.3 (GET DATA certificate store): the SD's certificate chain.
        0xBF21 => {
            if domain.certificates.is_empty() {
                return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
            }
            let certs: Vec<&[u8]> = domain.certificates.iter().map(Vec::as_slice).collect();
            ok(get_data::encode_certificate_store(&certs, tagged).map_err(sw)?)
        }
        other => {
            let v = domain
                .data_objects
                .get(&u32::from(other))
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
            ok(tlv(u32::from(other), v))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GET STATUS

/// A registry entry as GET STATUS reports it (GPC 2.3 §11.4.3): the ISD with the card life
/// cycle, load files without privileges, modules only for P1 `10`.
fn status_entry(
    e: &RegistryEntry,
    subset: StatusSubset,
    card_lifecycle: u8,
) -> Result<get_status::RegistryEntry, StatusWord> {
    let aid = |a: &[u8]| Aid::new(a).map_err(sw);
    let lifecycle = if e.kind == EntryKind::IssuerSecurityDomain {
        card_lifecycle
    } else {
        e.lifecycle
    };
    let mut out = get_status::RegistryEntry::new(aid(&e.aid)?, lifecycle);
    if e.kind == EntryKind::LoadFile {
        if !e.version.is_empty() {
            out.load_file_version = Some(e.version.clone());
        }
    } else {
        out.privileges = Some(Privileges::from_bytes(e.privileges));
    }
    out.load_file = e.load_file.as_deref().map(aid).transpose()?;
    if subset == StatusSubset::LoadFilesAndModules {
        out.modules = e.modules.iter().map(|m| aid(m)).collect::<Result<_, _>>()?;
    }
    out.security_domain = Some(aid(&e.associated_sd)?);
    Ok(out)
}

/// GET STATUS (GPC 2.3 §11.4): `80 F2 P1 P2 Lc 4F len [AID prefix] [5C tag list]`, parsed by
/// [`get_status::parse_get_status`] and answered (both formats, paging with `6310`) by
/// [`get_status::answer_get_status`].
pub(crate) fn get_status(cmd: &CommandView<'_>, env: &mut Env<'_>) -> Outcome {
    env.require_auth()?;
    let request = get_status::parse_get_status(cmd).map_err(sw)?;
    let same_search = |(previous, _): &(GetStatus, usize)| {
        previous.subset == request.subset
            && previous.format == request.format
            && previous.aid_prefix == request.aid_prefix
    };
    let skip = if request.next {
        match &env.mgmt.status_paging {
            Some(paging) if same_search(paging) => paging.1,
            _ => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
        }
    } else {
        0
    };
    let isd_view = env.is_isd()
        || Privileges::from_bytes(env.sd_entry()?.privileges).has(Privilege::GlobalRegistry);
    let card_lc = env.state.card.lifecycle;
    let registry = env
        .state
        .ordered()
        .into_iter()
        .filter(|e| match request.subset {
            StatusSubset::IssuerSecurityDomain => e.kind == EntryKind::IssuerSecurityDomain,
            StatusSubset::Applications => {
                matches!(e.kind, EntryKind::Application | EntryKind::SecurityDomain)
            }
            StatusSubset::LoadFiles | StatusSubset::LoadFilesAndModules => {
                e.kind == EntryKind::LoadFile
            }
        })
        .filter(|e| isd_view || (e.associated_sd == env.sd && e.aid != env.sd))
        .map(|e| status_entry(e, request.subset, card_lc))
        .collect::<Result<Vec<_>, _>>()?;
    match get_status::answer_get_status(&request, &registry, skip, STATUS_PAGE_BUDGET) {
        Ok(answer) => {
            env.mgmt.status_paging = answer.next.map(|next| (request, next));
            Ok((answer.data, answer.status))
        }
        Err(e) => {
            if e == CommandError::NotFound {
                env.mgmt.status_paging = None;
            }
            Err(e.status_word())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// INSTALL

/// INSTALL (GPC 2.3 §11.5): `80 E6 P1 P2`, parsed by [`install::parse_install`].
pub(crate) fn install<S: Store>(
    cmd: &CommandView<'_>,
    env: &mut Env<'_>,
    tx: &mut Transaction<'_, S>,
) -> Outcome {
    env.require_auth()?;
    if cmd.p2() != 0x00 {
        // This card does not run the combined load, install and make selectable process
        // (P2 `01`/`03`, GPC 2.3 §11.5.2.2).
        return Err(StatusWord::INCORRECT_P1_P2);
    }
    let request = install::parse_install(cmd).map_err(sw)?;
    if env.state.card.lifecycle >= card_lifecycle::CARD_LOCKED
        && !matches!(request.install, Install::Personalization { .. })
    {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    // P1 b8 (more INSTALL commands follow) and P2 (combined sequence indicator) do not change
    // what one command does (GPC 2.3 §11.5.2.1-2).
    match request.install {
        Install::ForLoad {
            load_file,
            security_domain,
            ..
        } => install_for_load(&load_file, security_domain.as_ref(), env),
        Install::ForInstall {
            load_file,
            module,
            application,
            privileges,
            parameters,
            make_selectable,
            ..
        } => {
            let app_params = install::parse_install_parameters(&parameters)
                .map_err(sw)?
                .application_specific
                .unwrap_or_default();
            let target = InstallTarget {
                elf: load_file.as_bytes().to_vec(),
                module: module.as_bytes().to_vec(),
                app: application.as_bytes().to_vec(),
                privileges: privileges.to_bytes(),
            };
            install_for_install(target, &app_params, env, tx, make_selectable)
        }
        Install::MakeSelectable {
            application,
            privileges,
            ..
        } => make_selectable(application.as_bytes(), privileges, env),
        Install::Extradition {
            security_domain,
            application,
            ..
        } => extradition(security_domain.as_bytes(), application.as_bytes(), env),
        Install::Personalization { application } => {
            for_personalization(application.as_bytes().to_vec(), env)
        }
        Install::RegistryUpdate {
            security_domain,
            application,
            privileges,
            ..
        } => registry_update(
            security_domain.as_ref(),
            application.as_ref(),
            privileges,
            env,
        ),
    }
}

fn install_for_load(elf: &Aid, sd: Option<&Aid>, env: &mut Env<'_>) -> Outcome {
    if !env.may_manage_content()? {
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    let elf = elf.as_bytes().to_vec();
    let sd = sd.map_or_else(|| env.sd.clone(), |a| a.as_bytes().to_vec());
    match env.state.entries.get(&sd) {
        Some(e) if e.kind.is_security_domain() => {}
        _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
    }
    if !env.is_isd() && sd != env.sd {
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    if env.state.entries.contains_key(&elf) {
        // GPC 2.3 §11.5.3: the AID is already in use.
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    env.mgmt.load = Some(LoadInProgress {
        load_file: elf,
        sd,
        blocks: LoadReassembler::new(MAX_LOAD_FILE + 16),
    });
    ok(vec![0x00])
}

/// The AIDs and privileges of INSTALL [for install].
struct InstallTarget {
    elf: Vec<u8>,
    module: Vec<u8>,
    app: Vec<u8>,
    privileges: [u8; 3],
}

fn install_for_install<S: Store>(
    target: InstallTarget,
    app_params: &[u8],
    env: &mut Env<'_>,
    tx: &mut Transaction<'_, S>,
    selectable: bool,
) -> Outcome {
    if !env.may_manage_content()? {
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    let InstallTarget {
        elf,
        module,
        app,
        privileges,
    } = target;
    match env.state.entries.get(&elf) {
        Some(e) if e.kind == EntryKind::LoadFile => {
            if !e.modules.contains(&module) {
                return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
            }
        }
        _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
    }
    if env.state.entries.contains_key(&app) {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    let is_sd = privileges[0] & 0x80 != 0;
    if !env.is_isd() && (privileges[0] & 0x7F != 0 || privileges[1] != 0) {
        // Only the ISD grants privileges other than "security domain" (GPC 2.3 §6.6.1).
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    if privileges[0] & 0x10 != 0 && !env.is_isd() {
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    let order = env.state.next_order();
    let entry = RegistryEntry {
        aid: app.clone(),
        kind: if is_sd {
            EntryKind::SecurityDomain
        } else {
            EntryKind::Application
        },
        lifecycle: if selectable {
            app_lifecycle::SELECTABLE
        } else {
            app_lifecycle::INSTALLED
        },
        privileges,
        associated_sd: env.sd.clone(),
        load_file: Some(elf.clone()),
        module: Some(module.clone()),
        modules: Vec::new(),
        version: Vec::new(),
        order,
    };
    if is_sd {
        // A new SSD starts with the installing SD's protocol settings and a copy of its
        // symmetric key sets as initial keys (as development cards do), so that the host can
        // open a secure channel to it and replace them with PUT KEY. SCP11 keys and
        // certificates are never copied.
        let parent = env.domain()?;
        let record = DomainRecord {
            scp: parent.scp,
            i: parent.i,
            kdd: parent.kdd.clone(),
            sequence_counter: 0,
            card_challenge: None,
            failures: 0,
            keys: parent
                .keys
                .iter()
                .filter(|k| matches!(k.key_type, 0x80 | 0x88))
                .cloned()
                .collect(),
            certificates: Vec::new(),
            data_objects: BTreeMap::new(),
        };
        env.state.domains.insert(app.clone(), record);
    } else {
        let factory = env
            .packages
            .factory(&elf, &module)
            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        let mut instance = factory();
        let mut storage = TxStorage::new(tx, app_prefix(&app));
        let level = env.level.map_or(0, |l| l.to_byte());
        let mut ctx = AppletContext::new(&app, env.channel, level, &mut storage, &mut *env.random);
        instance.install(&mut ctx, app_params)?;
        env.instances.insert(app.clone(), instance);
    }
    env.state.entries.insert(app, entry);
    ok(vec![0x00])
}

fn make_selectable(app: &[u8], privileges: Option<Privileges>, env: &mut Env<'_>) -> Outcome {
    let entry = env
        .state
        .entries
        .get(app)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    if !env.may_act_on(entry)? {
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    if entry.lifecycle != app_lifecycle::INSTALLED || entry.kind == EntryKind::LoadFile {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    let entry = env
        .state
        .entries
        .get_mut(app)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    entry.lifecycle = app_lifecycle::SELECTABLE;
    if let Some(p) = privileges.map(Privileges::to_bytes) {
        // The SD bit cannot change after installation.
        if (p[0] ^ entry.privileges[0]) & 0x80 != 0 {
            return Err(StatusWord::INCORRECT_DATA);
        }
        entry.privileges = p;
    }
    ok(vec![0x00])
}

fn extradition(sd: &[u8], app: &[u8], env: &mut Env<'_>) -> Outcome {
    if !env.is_isd() {
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    match env.state.entries.get(sd) {
        Some(e) if e.kind.is_security_domain() => {}
        _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
    }
    if app == env.state.card.isd || app == sd {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    // An SD cannot be associated with an SD that is (transitively) associated with it.
    let mut cursor = sd.to_vec();
    for _ in 0..env.state.entries.len() {
        if cursor == app {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        match env.state.entries.get(&cursor) {
            Some(e) if e.associated_sd != cursor => cursor = e.associated_sd.clone(),
            _ => break,
        }
    }
    let entry = env
        .state
        .entries
        .get_mut(app)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    entry.associated_sd = sd.to_vec();
    ok(vec![0x00])
}

fn for_personalization(app: Vec<u8>, env: &mut Env<'_>) -> Outcome {
    let entry = env
        .state
        .entries
        .get(&app)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    // GPC 2.3 §11.5.2.3.4: the application must be associated with this SD.
    if entry.associated_sd != env.sd || entry.kind != EntryKind::Application {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    if entry.lifecycle & app_lifecycle::LOCKED_BIT != 0 {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    env.mgmt.personalization = Some(app);
    env.mgmt.next_store_block = 0;
    ok(vec![0x00])
}

fn registry_update(
    sd: Option<&Aid>,
    app: Option<&Aid>,
    privileges: Option<Privileges>,
    env: &mut Env<'_>,
) -> Outcome {
    if !env.is_isd() {
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    let sd = sd.map(|a| a.as_bytes().to_vec());
    if let Some(sd) = &sd {
        match env.state.entries.get(sd) {
            Some(e) if e.kind.is_security_domain() => {}
            _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        }
    }
    // This card updates application entries only; without an application AID nothing is
    // referenced.
    let app = app.ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?.as_bytes();
    let entry = env
        .state
        .entries
        .get_mut(app)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    if entry.kind == EntryKind::LoadFile || entry.kind == EntryKind::IssuerSecurityDomain {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    if let Some(p) = privileges.map(Privileges::to_bytes) {
        // The SD bit cannot change after installation.
        if (p[0] ^ entry.privileges[0]) & 0x80 != 0 {
            return Err(StatusWord::INCORRECT_DATA);
        }
        entry.privileges = p;
    }
    if let Some(sd) = sd
        && sd != app
    {
        entry.associated_sd = sd;
    }
    ok(vec![0x00])
}

// ---------------------------------------------------------------------------------------------
// LOAD

/// LOAD (GPC 2.3 §11.6): `80 E8 P1 P2`, P1 `80` last block, P2 block number; the blocks are
/// reassembled by [`LoadReassembler`].
pub(crate) fn load<S: Store>(
    cmd: &CommandView<'_>,
    env: &mut Env<'_>,
    tx: &mut Transaction<'_, S>,
) -> Outcome {
    env.require_auth()?;
    // P1 and an empty block are checked before the sequence (as before the shared parser).
    load::parse_load(cmd).map_err(sw)?;
    let Some(progress) = env.mgmt.load.as_mut() else {
        // No INSTALL [for load] before.
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    };
    let file = match progress.blocks.push(cmd) {
        Ok(file) => file,
        Err(e @ CommandError::TooLong { .. }) => {
            env.mgmt.load = None;
            return Err(e.status_word());
        }
        // A block out of order changes nothing; the host may resend the right one.
        Err(e @ (CommandError::BlockNumber { .. } | CommandError::Sequence(_))) => {
            return Err(e.status_word());
        }
        Err(e) => {
            // A malformed load file ends the sequence.
            env.mgmt.load = None;
            return Err(e.status_word());
        }
    };
    let Some(file) = file else {
        return ok(Vec::new());
    };
    let Some(progress) = env.mgmt.load.take() else {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    };
    if file.ciphered {
        // This card holds no key to decipher a `D4` load file data block.
        return Err(StatusWord::INCORRECT_DATA);
    }
    let blob = file.data;
    if env.state.entries.contains_key(&progress.load_file) {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    // Load files are opaque; a load file whose AID is a built-in package gets its modules.
    let modules = env
        .packages
        .package(&progress.load_file)
        .map(|p| p.modules.iter().map(|(m, _)| m.clone()).collect())
        .unwrap_or_default();
    let order = env.state.next_order();
    env.state.entries.insert(
        progress.load_file.clone(),
        RegistryEntry {
            aid: progress.load_file.clone(),
            kind: EntryKind::LoadFile,
            lifecycle: app_lifecycle::LOADED,
            privileges: [0; 3],
            associated_sd: progress.sd,
            load_file: None,
            module: None,
            modules,
            version: Vec::new(),
            order,
        },
    );
    tx.put(record_key(ELF_PREFIX, &progress.load_file), blob);
    ok(vec![0x00])
}

// ---------------------------------------------------------------------------------------------
// DELETE

/// DELETE (GPC 2.3 §11.2): `80 E4 00 P2`, P2 `80` = with related objects; data `4F AID`
/// or `D0 key id` / `D2 key version`, parsed by [`delete::parse_delete`].
pub(crate) fn delete<S: Store>(
    cmd: &CommandView<'_>,
    env: &mut Env<'_>,
    tx: &mut Transaction<'_, S>,
) -> Outcome {
    env.require_auth()?;
    match delete::parse_delete(cmd).map_err(sw)?.target {
        delete::Target::Object { aid, related, .. } => {
            delete_object(aid.as_bytes(), related, env, tx)
        }
        delete::Target::Key { id, version } => {
            let domain = env.domain_mut()?;
            let before = domain.keys.len();
            domain
                .keys
                .retain(|k| !(id.is_none_or(|i| i == k.id) && version.is_none_or(|v| v == k.kvn)));
            if domain.keys.len() == before {
                return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
            }
            ok(vec![0x00])
        }
    }
}

fn delete_object<S: Store>(
    aid: &[u8],
    related: bool,
    env: &mut Env<'_>,
    tx: &mut Transaction<'_, S>,
) -> Outcome {
    let entry = env
        .state
        .entries
        .get(aid)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?
        .clone();
    if entry.kind == EntryKind::IssuerSecurityDomain {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    if !env.may_act_on(&entry)? {
        return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
    }
    // What goes with it: instances of a load file; applications associated with an SD.
    let dependents: Vec<Vec<u8>> = env
        .state
        .entries
        .values()
        .filter(|e| e.aid != entry.aid)
        .filter(|e| match entry.kind {
            EntryKind::LoadFile => e.load_file.as_deref() == Some(aid),
            EntryKind::SecurityDomain => e.associated_sd == aid,
            _ => false,
        })
        .map(|e| e.aid.clone())
        .collect();
    if !dependents.is_empty() && !related {
        // GPC 2.3 §11.2.2.3: referenced objects exist.
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    if entry.kind == EntryKind::SecurityDomain && env.sd == entry.aid {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    let mut to_delete = vec![entry.aid.clone()];
    // Related objects, recursively (an SSD's SSDs and their applications; a load file's
    // instances, which may themselves be SSDs).
    let mut queue = dependents;
    while let Some(a) = queue.pop() {
        if to_delete.contains(&a) {
            continue;
        }
        if a == env.state.card.isd || a == env.sd {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let Some(e) = env.state.entries.get(&a) else {
            continue;
        };
        if e.kind.is_security_domain() {
            queue.extend(
                env.state
                    .entries
                    .values()
                    .filter(|x| x.associated_sd == a && x.aid != a)
                    .map(|x| x.aid.clone()),
            );
        }
        if e.kind == EntryKind::LoadFile {
            queue.extend(
                env.state
                    .entries
                    .values()
                    .filter(|x| x.load_file.as_deref() == Some(a.as_slice()))
                    .map(|x| x.aid.clone()),
            );
        }
        to_delete.push(a);
    }
    // Load files associated with a deleted SD but still having instances elsewhere would
    // dangle; refuse instead of leaving the registry inconsistent.
    for e in env.state.entries.values() {
        if to_delete.contains(&e.aid) {
            continue;
        }
        if to_delete.contains(&e.associated_sd) {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        if e.load_file.as_ref().is_some_and(|l| to_delete.contains(l)) {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
    }
    for a in &to_delete {
        if let Some(e) = env.state.entries.remove(a) {
            match e.kind {
                EntryKind::LoadFile => tx.delete(record_key(ELF_PREFIX, a)),
                EntryKind::Application => {
                    tx.delete_prefix(&app_prefix(a))
                        .map_err(|_| StatusWord::MEMORY_FAILURE)?;
                    env.instances.remove(a);
                }
                EntryKind::SecurityDomain => {
                    env.state.domains.remove(a);
                }
                EntryKind::IssuerSecurityDomain => {}
            }
        }
    }
    if env
        .mgmt
        .personalization
        .as_ref()
        .is_some_and(|p| to_delete.contains(p))
    {
        env.mgmt.personalization = None;
    }
    ok(vec![0x00])
}

// ---------------------------------------------------------------------------------------------
// PUT KEY

/// Decrypt an EC private key component: AES-CBC under the DEK with a zero ICV (Amd F).
fn decrypt_aes(dek: &[u8], data: &[u8]) -> Result<Vec<u8>, StatusWord> {
    if !data.len().is_multiple_of(16) || data.is_empty() {
        return Err(StatusWord::INCORRECT_DATA);
    }
    let c = AesCipher::new(dek).map_err(|_| StatusWord::CONDITIONS_NOT_SATISFIED)?;
    let mut out = data.to_vec();
    c.cbc_decrypt(&[0; 16], &mut out);
    Ok(out)
}

/// EC key components (Amd F §6.4 / GPC 2.3 Table 11-72 with key types B0/B1): `B0 len Q`
/// (in clear) or `B1 len AES-CBC(DEK, d)`, each optionally followed by the key parameter
/// reference `F0 01 00` and a KCV length byte `00` (or a `03` KCV, ignored for EC keys).
fn parse_ec_components(mut f: Fields<'_>, dek: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, StatusWord> {
    let mut out = Vec::new();
    while !f.0.is_empty() {
        let key_type = f.byte()?;
        let block = f.lv()?;
        let value = match key_type {
            // SEC1 uncompressed P-256 point.
            0xB0 if block.len() == 65 && block.first() == Some(&0x04) => block.to_vec(),
            0xB1 => {
                let d = decrypt_aes(dek, block)?;
                let d = d.get(..32).ok_or(StatusWord::INCORRECT_DATA)?.to_vec();
                if p256::SecretKey::from_slice(&d).is_err() {
                    return Err(StatusWord::INCORRECT_DATA);
                }
                d
            }
            _ => return Err(StatusWord::INCORRECT_DATA),
        };
        if f.0.first() == Some(&0xF0) {
            f.byte()?;
            if f.lv()? != [0x00] {
                // Only the P-256 parameter reference (00) is supported.
                return Err(StatusWord::INCORRECT_DATA);
            }
        }
        match f.0.first() {
            Some(0x00) => {
                f.byte()?;
            }
            Some(0x03) => {
                f.lv()?;
            }
            _ => {}
        }
        out.push((key_type, value));
    }
    Ok(out)
}

/// PUT KEY (GPC 2.3 §11.8): `80 D8 P1 P2`, P1 = version to replace (00 = new), P2 = key id
/// (bit 80 = several keys). DES/AES key data is decoded by gp-scp (both AES layouts: with the
/// key length byte as GlobalPlatformPro sends it, without as yubikit does; KCVs checked); EC
/// keys (SCP11) are decoded here.
pub(crate) fn put_key(cmd: &CommandView<'_>, env: &mut Env<'_>) -> Outcome {
    env.require_auth()?;
    let (dek, dek_type) = env
        .dek
        .clone()
        .ok_or(StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
    let old_kvn = cmd.p1() & 0x7F;
    let first_id = cmd.p2() & 0x7F;
    let several = cmd.p2() & 0x80 != 0;
    if first_id == 0 && !several {
        return Err(StatusWord::INCORRECT_P1_P2);
    }
    let mut f = Fields(cmd.data());
    let new_kvn = f.byte()?;
    if new_kvn == 0 || new_kvn > 0x7F {
        // Key version numbers 01-7F (GPC 2.3 §11.1.8); FF is the initial key set only.
        return Err(StatusWord::INCORRECT_DATA);
    }
    let first_type = f.0.first().copied().ok_or(StatusWord::WRONG_LENGTH)?;
    let mut id = if first_id == 0 { 1 } else { first_id };
    let mut new_keys: Vec<KeyRecord> = Vec::new();
    let mut response = vec![new_kvn];
    if matches!(first_type, 0xB0 | 0xB1) {
        for (key_type, value) in parse_ec_components(f, &dek)? {
            new_keys.push(KeyRecord {
                kvn: new_kvn,
                id,
                key_type,
                value,
            });
            id = id.checked_add(1).ok_or(StatusWord::INCORRECT_DATA)?;
        }
    } else {
        // GPC 2.3 §11.8.3: a wrong KCV or malformed key data answers 6A80.
        let parsed = parse_put_key_data(cmd.data(), &dek, dek_type)
            .map_err(|_| StatusWord::INCORRECT_DATA)?;
        for k in parsed.keys {
            response.extend_from_slice(&k.kcv.0);
            new_keys.push(KeyRecord {
                kvn: new_kvn,
                id,
                key_type: k.key_type.to_byte(),
                value: k.key.as_bytes().to_vec(),
            });
            id = id.checked_add(1).ok_or(StatusWord::INCORRECT_DATA)?;
        }
    }
    if new_keys.is_empty() {
        return Err(StatusWord::WRONG_LENGTH);
    }
    if !several && new_keys.len() > 1 {
        return Err(StatusWord::INCORRECT_DATA);
    }
    let domain = env.domain_mut()?;
    if old_kvn == 0 {
        // Add a new key version; an initial key set (version FF) is replaced by the first new
        // one (GPC 2.3 §11.1.8 note on the initial key set).
        if domain
            .keys
            .iter()
            .any(|k| k.kvn == new_kvn && new_keys.iter().any(|n| n.id == k.id))
        {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        if new_keys.iter().any(|k| matches!(k.key_type, 0x80 | 0x88)) {
            domain.keys.retain(|k| k.kvn != 0xFF);
        }
    } else {
        if !domain.keys.iter().any(|k| k.kvn == old_kvn) {
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        if new_kvn != old_kvn && domain.keys.iter().any(|k| k.kvn == new_kvn) {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let replaced: Vec<u8> = new_keys.iter().map(|k| k.id).collect();
        domain
            .keys
            .retain(|k| !(k.kvn == old_kvn && (replaced.contains(&k.id) || new_kvn != old_kvn)));
    }
    domain.keys.extend(new_keys);
    // A new key set restarts its sequence counter and failure count.
    domain.sequence_counter = 0;
    domain.failures = 0;
    ok(response)
}

// ---------------------------------------------------------------------------------------------
// STORE DATA

/// STORE DATA (GPC 2.3 §11.11): `80 E2 P1 P2`, routed to the application under INSTALL
/// [for personalization] or kept by the security domain itself.
pub(crate) fn store_data<S: Store>(
    cmd: &CommandView<'_>,
    env: &mut Env<'_>,
    tx: &mut Transaction<'_, S>,
) -> Outcome {
    let level = env.require_auth()?;
    // Reserved P1 codings and an empty block are refused before the block is routed.
    let parsed = store_data::parse_store_data(cmd).map_err(sw)?;
    if parsed.number != env.mgmt.next_store_block {
        return Err(StatusWord::INCORRECT_P1_P2);
    }
    let block = StoreDataBlock {
        p1: cmd.p1(),
        block: parsed.number,
        data: parsed.data,
    };
    let out = if let Some(target) = env.mgmt.personalization.clone() {
        let entry = env
            .state
            .entries
            .get(&target)
            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        let (elf, module) = match (&entry.load_file, &entry.module) {
            (Some(e), Some(m)) => (e.clone(), m.clone()),
            _ => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
        };
        if !env.instances.contains_key(&target) {
            let factory = env
                .packages
                .factory(&elf, &module)
                .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
            env.instances.insert(target.clone(), factory());
        }
        let instance = env
            .instances
            .get_mut(&target)
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        let mut storage = TxStorage::new(tx, app_prefix(&target));
        let mut ctx = AppletContext::new(
            &target,
            env.channel,
            level.to_byte(),
            &mut storage,
            &mut *env.random,
        );
        instance.personalize(block, &mut ctx)?
    } else {
        sd_store_data(&parsed, env)?
    };
    if block.is_last() {
        env.mgmt.next_store_block = 0;
        env.mgmt.personalization = None;
    } else {
        env.mgmt.next_store_block = block
            .block
            .checked_add(1)
            .ok_or(StatusWord::INCORRECT_P1_P2)?;
    }
    ok(out)
}

/// STORE DATA to the SD itself: BER-TLV data objects (IIN 42, CIN 45, card data 66, others),
/// answered later by GET DATA.
fn sd_store_data(
    block: &store_data::StoreDataBlock<'_>,
    env: &mut Env<'_>,
) -> Result<Vec<u8>, StatusWord> {
    if block.options.encryption != Encryption::None || block.options.structure == Structure::Dgi {
        return Err(StatusWord::INCORRECT_P1_P2);
    }
    let mut objects = Vec::new();
    for item in TlvIter::new(block.data) {
        let item = item.map_err(|_| StatusWord::INCORRECT_DATA)?;
        let tag = item.tag().value();
        // Data the SD computes itself cannot be overwritten.
        if matches!(tag, 0x9F7F | 0xCF | 0xC1 | 0xE0 | 0xBF21) {
            return Err(StatusWord::INCORRECT_DATA);
        }
        objects.push((tag, item.value().to_vec()));
    }
    if objects.is_empty() {
        return Err(StatusWord::WRONG_LENGTH);
    }
    let domain = env.domain_mut()?;
    for (tag, value) in objects {
        domain.data_objects.insert(tag, value);
    }
    Ok(Vec::new())
}

// ---------------------------------------------------------------------------------------------
// SET STATUS

/// New life cycle of an application or SSD (GPC 2.3 §5.3, §11.10.2.2), validated by
/// [`SetStatus::apply_to_application`] / [`SetStatus::apply_to_security_domain`].
fn entry_transition(entry: &RegistryEntry, request: &SetStatus) -> Result<u8, StatusWord> {
    let p2 = request.state;
    if entry.lifecycle & app_lifecycle::LOCKED_BIT == 0 && p2 & app_lifecycle::LOCKED_BIT == 0 {
        // A state this card does not let SET STATUS request is incorrect data (6A80): for an
        // application an application-specific state (b3-b1 = 111, §5.3.1), for an SSD
        // another of SELECTABLE / PERSONALIZED (§5.3.2).
        let requestable = match entry.kind {
            EntryKind::SecurityDomain => {
                p2 != entry.lifecycle
                    && matches!(
                        p2,
                        app_lifecycle::INSTALLED
                            | app_lifecycle::SELECTABLE
                            | app_lifecycle::PERSONALIZED
                    )
            }
            _ => p2 & 0x07 == 0x07,
        };
        if !requestable {
            return Err(StatusWord::INCORRECT_DATA);
        }
    }
    match entry.kind {
        EntryKind::SecurityDomain => {
            let current = SecurityDomainLifeCycle::from_byte(entry.lifecycle).map_err(sw)?;
            let next = request.apply_to_security_domain(current).map_err(sw)?;
            Ok(next.to_byte())
        }
        _ => {
            let current = ApplicationLifeCycle::from_byte(entry.lifecycle).map_err(sw)?;
            let next = request.apply_to_application(current).map_err(sw)?;
            Ok(next.to_byte())
        }
    }
}

/// SET STATUS (GPC 2.3 §11.10): `80 F0 P1 P2 [AID]`, parsed by
/// [`set_status::parse_set_status`].
pub(crate) fn set_status(cmd: &CommandView<'_>, env: &mut Env<'_>) -> Outcome {
    env.require_auth()?;
    let request = set_status::parse_set_status(cmd).map_err(sw)?;
    let p2 = request.state;
    match request.scope {
        Scope::Card(aid) => {
            if !env.is_isd() {
                return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
            }
            if aid.is_some_and(|a| a.as_bytes() != env.state.card.isd.as_slice()) {
                return Err(StatusWord::INCORRECT_DATA);
            }
            let target = CardLifeCycle::from_byte(p2).map_err(sw)?;
            let isd = Privileges::from_bytes(env.sd_entry()?.privileges);
            if target == CardLifeCycle::CardLocked && !isd.has(Privilege::CardLock) {
                return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
            }
            if target == CardLifeCycle::Terminated && !isd.has(Privilege::CardTerminate) {
                return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
            }
            let current = CardLifeCycle::from_byte(env.state.card.lifecycle).map_err(sw)?;
            env.state.card.lifecycle = request.apply_to_card(current).map_err(sw)?.to_byte();
            ok(Vec::new())
        }
        Scope::Application(aid) | Scope::SecurityDomainAndApplications(aid) => {
            let whole_domain = matches!(request.scope, Scope::SecurityDomainAndApplications(_));
            let aid = aid.as_bytes().to_vec();
            let entry = env
                .state
                .entries
                .get(&aid)
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?
                .clone();
            if entry.kind == EntryKind::LoadFile || entry.kind == EntryKind::IssuerSecurityDomain {
                return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
            }
            let global_lock =
                Privileges::from_bytes(env.sd_entry()?.privileges).has(Privilege::GlobalLock);
            if !(env.may_act_on(&entry)? || global_lock && p2 & 0x80 != 0) {
                return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
            }
            if aid == env.sd && p2 & 0x80 != 0 {
                // An SD does not lock itself through its own secure channel.
                return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
            }
            let new_state = entry_transition(&entry, &request)?;
            if whole_domain {
                if entry.kind != EntryKind::SecurityDomain || !(p2 == 0 || p2 & 0x80 != 0) {
                    return Err(StatusWord::INCORRECT_P1_P2);
                }
                let lock = p2 & 0x80 != 0;
                for e in env.state.entries.values_mut() {
                    if e.associated_sd == aid && e.aid != aid && e.kind == EntryKind::Application {
                        let is_locked = e.lifecycle & 0x80 != 0;
                        if lock && !is_locked {
                            e.lifecycle |= 0x80;
                        } else if !lock && is_locked {
                            e.lifecycle &= 0x7F;
                        }
                    }
                }
            }
            if let Some(e) = env.state.entries.get_mut(&aid) {
                e.lifecycle = new_state;
            }
            ok(Vec::new())
        }
    }
}
