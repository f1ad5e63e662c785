//! What `info` and `list` read from the card, decoded, as text tables or JSON.

use std::io::Write;

use gp_scp::cmd::get_data::{
    self, Cplc, parse_card_recognition_data, parse_cplc, parse_cplc_date, parse_key_information,
};
use gp_scp::cmd::get_status::{RegistryEntry, StatusSubset};
use gp_scp::cmd::select::Fci;
use serde::Serialize;

use super::client::{GpClient, GpError, SessionInfo};
use crate::transport::Transport;

/// One decoded CPLC field.
#[derive(Debug, Serialize)]
pub(crate) struct CplcField {
    /// Field name (GPC 2.3 §H.6).
    pub(crate) name: &'static str,
    /// Raw value (hex).
    pub(crate) value: String,
    /// Decoded date (`Y` digit and day of year) for the date fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) date: Option<String>,
}

/// One secure channel the card data announces.
#[derive(Debug, Serialize)]
pub(crate) struct ScpReport {
    /// `SCP02`, `SCP03`, ...
    pub(crate) scp: String,
    /// `i` (hex).
    pub(crate) i: String,
    /// Meaning of the `i` bits.
    pub(crate) options: Vec<&'static str>,
}

/// One key of the key information template.
#[derive(Debug, Serialize)]
pub(crate) struct KeyRow {
    /// Key identifier.
    pub(crate) id: String,
    /// Key version.
    pub(crate) version: String,
    /// Components: type name and length.
    pub(crate) components: Vec<String>,
}

/// Everything `info` shows.
#[derive(Debug, Default, Serialize)]
pub(crate) struct InfoReport {
    /// The selected security domain.
    pub(crate) security_domain: Option<String>,
    /// CPLC fields.
    pub(crate) cplc: Vec<CplcField>,
    /// GlobalPlatform version from the card data.
    pub(crate) gp_version: Option<String>,
    /// Card identification scheme OID.
    pub(crate) card_id_scheme: Option<String>,
    /// Secure channels from the card data.
    pub(crate) secure_channels: Vec<ScpReport>,
    /// Other card data objects (hex).
    pub(crate) card_data_other: Vec<String>,
    /// IIN (hex).
    pub(crate) iin: Option<String>,
    /// CIN (hex).
    pub(crate) cin: Option<String>,
    /// KDD (hex).
    pub(crate) kdd: Option<String>,
    /// Sequence counter.
    pub(crate) sequence_counter: Option<u32>,
    /// Key information template.
    pub(crate) keys: Vec<KeyRow>,
    /// Card life cycle.
    pub(crate) card_lifecycle: Option<String>,
    /// The session opened (protocol, key version, level).
    pub(crate) session: Option<SessionInfo>,
}

impl InfoReport {
    /// Record the session.
    pub(crate) fn add_session(&mut self, s: &SessionInfo) {
        self.session = Some(s.clone());
    }

    /// Record the ISD's GET STATUS entry.
    pub(crate) fn add_card_lifecycle(&mut self, isd: Option<&RegistryEntry>) {
        self.card_lifecycle = isd.map(|e| {
            e.life_cycle_state(StatusSubset::IssuerSecurityDomain)
                .map_or_else(|_| format!("{:02X}", e.life_cycle), |l| l.to_string())
        });
    }
}

/// Dotted OID of `2A 86 48 86 FC 6B ...` arcs (ITU-T X.690 §8.19).
fn oid_string(bytes: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for b in bytes {
        value = value
            .saturating_mul(128)
            .saturating_add(u64::from(b & 0x7F));
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn cplc_fields(c: &Cplc) -> Vec<CplcField> {
    let h2 = |v: u16| format!("{v:04X}");
    let h4 = |v: u32| format!("{v:08X}");
    let date = |v: u16| parse_cplc_date(v).map(|(y, d)| format!("year digit {y}, day {d}"));
    let f = |name, value: String, d: Option<String>| CplcField {
        name,
        value,
        date: d,
    };
    vec![
        f("IC fabricator", h2(c.ic_fabricator), None),
        f("IC type", h2(c.ic_type), None),
        f("OS identifier", h2(c.os_id), None),
        f(
            "OS release date",
            h2(c.os_release_date),
            date(c.os_release_date),
        ),
        f("OS release level", h2(c.os_release_level), None),
        f(
            "IC fabrication date",
            h2(c.ic_fabrication_date),
            date(c.ic_fabrication_date),
        ),
        f("IC serial number", h4(c.ic_serial_number), None),
        f("IC batch identifier", h2(c.ic_batch_id), None),
        f("IC module fabricator", h2(c.ic_module_fabricator), None),
        f(
            "IC module packaging date",
            h2(c.ic_module_packaging_date),
            date(c.ic_module_packaging_date),
        ),
        f("ICC manufacturer", h2(c.icc_manufacturer), None),
        f(
            "IC embedding date",
            h2(c.ic_embedding_date),
            date(c.ic_embedding_date),
        ),
        f("IC pre-personalizer", h2(c.pre_personalizer), None),
        f(
            "IC pre-personalization date",
            h2(c.pre_personalization_date),
            date(c.pre_personalization_date),
        ),
        f(
            "IC pre-personalization equipment",
            h4(c.pre_personalization_equipment),
            None,
        ),
        f("IC personalizer", h2(c.personalizer), None),
        f(
            "IC personalization date",
            h2(c.personalization_date),
            date(c.personalization_date),
        ),
        f(
            "IC personalization equipment",
            h4(c.personalization_equipment),
            None,
        ),
    ]
}

/// Key type names (GPC 2.3 Table 11-16).
fn key_type_name(t: u8) -> &'static str {
    match t {
        0x80 => "DES",
        0x82 => "3DES-CBC",
        0x83 => "DES-ECB",
        0x84 => "DES-CBC",
        0x85 => "TLS-PSK",
        0x88 => "AES",
        0x90 => "HMAC-SHA1",
        0x91 => "HMAC-SHA1-160",
        0xA0 => "RSA public e",
        0xA1 => "RSA public N",
        0xA2 => "RSA private N",
        0xA3 => "RSA private d",
        0xA4..=0xA8 => "RSA private CRT",
        0xB0 => "ECC public",
        0xB1 => "ECC private",
        0xB2..=0xB7 => "ECC parameter",
        0xB8 => "ECC key parameters reference",
        0xFF => "extended",
        _ => "reserved",
    }
}

/// Read the data objects `info` shows (no session needed).
///
/// # Errors
/// Transport errors and unexpected status words.
pub(crate) fn collect_info<T: Transport>(
    client: &mut GpClient<T>,
    fci: Option<&Fci>,
) -> Result<InfoReport, GpError> {
    let mut info = InfoReport {
        security_domain: client.sd().map(ToString::to_string),
        ..InfoReport::default()
    };
    if let Some(raw) = client.get_data(0x9F7F)? {
        match parse_cplc(&raw) {
            Ok(c) => info.cplc = cplc_fields(&c),
            Err(e) => info.card_data_other.push(format!(
                "CPLC not decoded ({e}): {}",
                hex::encode_upper(&raw)
            )),
        }
    }
    let card_data = match client.get_data(0x66)? {
        Some(raw) => Some(raw),
        None => fci.and_then(|f| f.management_data.clone()),
    };
    if let Some(raw) = card_data {
        match parse_card_recognition_data(&raw) {
            Ok(d) => {
                let mut gp = vec![0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B];
                info.gp_version = d.gp_version.as_ref().map(|v| {
                    let mut o = gp.clone();
                    o.push(0x02);
                    o.extend_from_slice(v);
                    format!(
                        "{} (GlobalPlatform {})",
                        oid_string(&o),
                        v.iter().map(u8::to_string).collect::<Vec<_>>().join(".")
                    )
                });
                info.card_id_scheme = d.card_id_scheme.as_ref().map(|v| {
                    gp.push(0x03);
                    gp.extend_from_slice(v);
                    oid_string(&gp)
                });
                info.secure_channels = d
                    .secure_channels
                    .iter()
                    .map(|s| ScpReport {
                        scp: format!("SCP{:02X}", s.scp),
                        i: format!("{:02X}", s.i),
                        options: s.option_names(),
                    })
                    .collect();
                for (name, v) in [
                    ("card configuration", &d.card_configuration),
                    ("chip details", &d.chip_details),
                    ("trust point", &d.trust_point_info),
                    ("certificate", &d.certificate_info),
                ] {
                    if let Some(v) = v {
                        info.card_data_other
                            .push(format!("{name}: {}", hex::encode_upper(v)));
                    }
                }
            }
            Err(e) => info.card_data_other.push(format!(
                "card data not decoded ({e}): {}",
                hex::encode_upper(&raw)
            )),
        }
    }
    let value = |raw: Vec<u8>, tag: u32| -> String {
        get_data::parse_data_object(&raw, apdu_codec::tlv::Tag::new(tag))
            .map_or_else(|_| hex::encode_upper(&raw), hex::encode_upper)
    };
    info.iin = client.get_data(0x42)?.map(|r| value(r, 0x42));
    info.cin = client.get_data(0x45)?.map(|r| value(r, 0x45));
    info.kdd = client.get_data(0xCF)?.map(|r| value(r, 0xCF));
    if let Some(raw) = client.get_data(0xC1)? {
        info.sequence_counter = get_data::parse_sequence_counter(&raw).ok();
    }
    if let Some(raw) = client.get_data(0xE0)? {
        let keys = parse_key_information(&raw)?;
        info.keys = keys
            .iter()
            .map(|k| KeyRow {
                id: format!("{:02X}", k.id),
                version: format!("{:02X}", k.version),
                components: k
                    .components
                    .iter()
                    .map(|c| {
                        format!(
                            "{} ({:02X}) {} bytes",
                            key_type_name(c.key_type),
                            c.key_type,
                            c.length
                        )
                    })
                    .collect(),
            })
            .collect();
    }
    Ok(info)
}

fn json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), GpError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| GpError::Usage(format!("JSON: {e}")))?;
    writeln!(out, "{text}").map_err(GpError::Output)
}

/// Print `info`.
///
/// # Errors
/// Output errors.
pub(crate) fn print_info(
    info: &InfoReport,
    as_json: bool,
    out: &mut dyn Write,
) -> Result<(), GpError> {
    if as_json {
        return json(out, info);
    }
    let mut s = String::new();
    use std::fmt::Write as _;
    let na = "(not available)";
    let _ = writeln!(
        s,
        "Security domain: {}",
        info.security_domain.as_deref().unwrap_or(na)
    );
    let _ = writeln!(
        s,
        "Card life cycle: {}",
        info.card_lifecycle
            .as_deref()
            .unwrap_or("(unknown: needs an authenticated session)")
    );
    if let Some(sess) = &info.session {
        let _ = writeln!(
            s,
            "Session: SCP{}{} key version {:02X}, security level {:02X}",
            sess.scp,
            sess.i.map(|i| format!(" i={i:02X}")).unwrap_or_default(),
            sess.key_version,
            sess.level
        );
    }
    let _ = writeln!(s, "IIN: {}", info.iin.as_deref().unwrap_or(na));
    let _ = writeln!(s, "CIN: {}", info.cin.as_deref().unwrap_or(na));
    let _ = writeln!(s, "KDD: {}", info.kdd.as_deref().unwrap_or(na));
    let _ = writeln!(
        s,
        "Sequence counter: {}",
        info.sequence_counter
            .map_or_else(|| na.to_owned(), |c| format!("{c} ({c:06X})"))
    );
    let _ = writeln!(s, "Card data (66):");
    let _ = writeln!(
        s,
        "  GlobalPlatform version: {}",
        info.gp_version.as_deref().unwrap_or(na)
    );
    if let Some(c) = &info.card_id_scheme {
        let _ = writeln!(s, "  card identification scheme: {c}");
    }
    if info.secure_channels.is_empty() {
        let _ = writeln!(s, "  supported secure channels: {na}");
    }
    for scp in &info.secure_channels {
        let _ = writeln!(
            s,
            "  supported: {} i={} ({})",
            scp.scp,
            scp.i,
            scp.options.join(", ")
        );
    }
    for o in &info.card_data_other {
        let _ = writeln!(s, "  {o}");
    }
    let _ = writeln!(s, "CPLC (9F7F):");
    if info.cplc.is_empty() {
        let _ = writeln!(s, "  {na}");
    }
    for f in &info.cplc {
        let _ = writeln!(
            s,
            "  {:<34} {}{}",
            f.name,
            f.value,
            f.date
                .as_ref()
                .map(|d| format!("  ({d})"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(s, "Key information (E0):");
    if info.keys.is_empty() {
        let _ = writeln!(s, "  {na}");
    } else {
        let _ = writeln!(s, "  {:<4} {:<7} components", "id", "version");
    }
    for k in &info.keys {
        let _ = writeln!(
            s,
            "  {:<4} {:<7} {}",
            k.id,
            k.version,
            k.components.join(", ")
        );
    }
    write!(out, "{s}").map_err(GpError::Output)
}

/// One line of `list`.
#[derive(Debug, Serialize)]
pub(crate) struct ListEntry {
    /// `ISD`, `SSD`, `APP` or `PKG`.
    pub(crate) kind: &'static str,
    /// AID (hex).
    pub(crate) aid: String,
    /// Life cycle (hex and name).
    pub(crate) lifecycle: String,
    /// Privilege names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) privileges: Vec<String>,
    /// Privileges (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) privileges_hex: Option<String>,
    /// Load file of an application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) load_file: Option<String>,
    /// Modules of a load file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) modules: Vec<String>,
    /// Associated security domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) security_domain: Option<String>,
    /// Load file version (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<String>,
}

fn entry(kind: &'static str, e: &RegistryEntry, subset: StatusSubset) -> ListEntry {
    ListEntry {
        kind,
        aid: e.aid.to_string(),
        lifecycle: e
            .life_cycle_state(subset)
            .map_or_else(|_| format!("{:02X}", e.life_cycle), |l| l.to_string()),
        privileges: e
            .privileges
            .map(|p| p.names().map(str::to_owned).collect())
            .unwrap_or_default(),
        privileges_hex: e.privileges.map(|p| hex::encode_upper(p.0)),
        load_file: e.load_file.map(|a| a.to_string()),
        modules: e.modules.iter().map(ToString::to_string).collect(),
        security_domain: e.security_domain.map(|a| a.to_string()),
        version: e.load_file_version.as_ref().map(hex::encode_upper),
    }
}

/// GET STATUS in every P1: ISD (80), applications and SSDs (40), load files with modules
/// (10; 20 when the card refuses 10).
///
/// # Errors
/// As [`GpClient::get_status`].
pub(crate) fn collect_registry<T: Transport>(
    client: &mut GpClient<T>,
) -> Result<Vec<ListEntry>, GpError> {
    let mut out = Vec::new();
    for e in client.get_status(StatusSubset::IssuerSecurityDomain)? {
        out.push(entry("ISD", &e, StatusSubset::IssuerSecurityDomain));
    }
    for e in client.get_status(StatusSubset::Applications)? {
        let sd = e.privileges.is_some_and(|p| p.is_security_domain());
        out.push(entry(
            if sd { "SSD" } else { "APP" },
            &e,
            StatusSubset::Applications,
        ));
    }
    let files = match client.get_status(StatusSubset::LoadFilesAndModules) {
        Ok(f) => f
            .into_iter()
            .map(|e| (e, StatusSubset::LoadFilesAndModules))
            .collect::<Vec<_>>(),
        Err(GpError::Status { sw, .. }) if matches!(sw.to_u16(), 0x6A86 | 0x6A80) => client
            .get_status(StatusSubset::LoadFiles)?
            .into_iter()
            .map(|e| (e, StatusSubset::LoadFiles))
            .collect(),
        Err(e) => return Err(e),
    };
    for (e, subset) in files {
        out.push(entry("PKG", &e, subset));
    }
    Ok(out)
}

/// Print `list`.
///
/// # Errors
/// Output errors.
pub(crate) fn print_registry(
    entries: &[ListEntry],
    as_json: bool,
    out: &mut dyn Write,
) -> Result<(), GpError> {
    if as_json {
        return json(out, &entries);
    }
    let mut s = String::new();
    use std::fmt::Write as _;
    if entries.is_empty() {
        s.push_str("(GET STATUS found nothing this security domain may see)\n");
    }
    for e in entries {
        let _ = writeln!(s, "{}: {} {}", e.kind, e.aid, e.lifecycle);
        if !e.privileges.is_empty() || e.privileges_hex.as_deref().is_some_and(|h| h != "000000") {
            let _ = writeln!(
                s,
                "     privileges {}: {}",
                e.privileges_hex.as_deref().unwrap_or(""),
                e.privileges.join(", ")
            );
        }
        if let Some(l) = &e.load_file {
            let _ = writeln!(s, "     from load file {l}");
        }
        if let Some(v) = &e.version {
            let _ = writeln!(s, "     version {v}");
        }
        for m in &e.modules {
            let _ = writeln!(s, "     module {m}");
        }
        if let Some(sd) = &e.security_domain {
            let _ = writeln!(s, "     security domain {sd}");
        }
    }
    write!(out, "{s}").map_err(GpError::Output)
}
