//! The verbs of `mec gp`, each a function of a [`GpClient`] and the parsed options, writing
//! its report to `out`.

use std::io::Write;

use apdu_codec::{Command, StatusWord, parse_command};
use gp_scp::cmd::delete::Delete;
use gp_scp::cmd::get_status::StatusSubset;
use gp_scp::cmd::install::{Install, InstallCommand, InstallParameters};
use gp_scp::cmd::load::LoadFile;
use gp_scp::cmd::put_key::{PutKey, parse_put_key_response};
use gp_scp::cmd::set_status::{Scope, SetStatus};
use gp_scp::cmd::store_data::{StoreDataOptions, Structure, store_data_objects};
use gp_scp::cmd::{Aid, CardLifeCycle, PRIVILEGES, Privileges};
use gp_scp::diversify::diversify;
use gp_scp::keys::{KeySet, KeyType, SecretKey};

use super::client::{GpClient, GpError, status_error};
use super::{GpArgs, KeyTypeArg, Verb, cap, parse_hex, report};
use crate::transport::{Transport, list_readers};

fn w(out: &mut dyn Write, text: &str) -> Result<(), GpError> {
    writeln!(out, "{text}").map_err(GpError::Output)
}

/// Parse an AID (hex, 5-16 bytes).
///
/// # Errors
/// [`GpError::Usage`] naming the problem.
pub(crate) fn parse_aid(s: &str) -> Result<Aid, GpError> {
    let bytes = parse_hex(s).map_err(GpError::Usage)?;
    Aid::new(&bytes).map_err(|e| GpError::Usage(format!("AID {s}: {e} (5 to 16 bytes)")))
}

fn norm(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace([' ', '_'], "-")
}

/// Parse privileges: comma-separated names (GPC 2.3 §11.1.2 names, any case, `-`/`_`/space)
/// or 1 or 3 hex bytes.
///
/// # Errors
/// [`GpError::Usage`] listing the known names.
pub(crate) fn parse_privileges(s: &str) -> Result<Privileges, GpError> {
    if let Ok(bytes) = parse_hex(s)
        && let Ok(p) = Privileges::from_slice(&bytes)
    {
        return Ok(p);
    }
    let mut p = Privileges([0; 3]);
    for item in s.split(',').filter(|i| !i.trim().is_empty()) {
        let wanted = norm(item);
        let Some((privilege, _, _)) = PRIVILEGES.iter().find(|(_, name, _)| norm(name) == wanted)
        else {
            let names: Vec<String> = PRIVILEGES.iter().map(|(_, n, _)| norm(n)).collect();
            return Err(GpError::Usage(format!(
                "unknown privilege \"{}\"; known: {}",
                item.trim(),
                names.join(", ")
            )));
        };
        p = p.with(*privilege);
    }
    Ok(p)
}

fn parse_card_state(s: &str) -> Result<CardLifeCycle, GpError> {
    let byte = match norm(s).as_str() {
        "op-ready" => 0x01,
        "initialized" => 0x07,
        "secured" => 0x0F,
        "card-locked" | "locked" => 0x7F,
        "terminated" => 0xFF,
        _ => super::parse_byte(s).map_err(GpError::Usage)?,
    };
    CardLifeCycle::from_byte(byte).map_err(|_| {
        GpError::Usage(format!(
            "unknown card life cycle \"{s}\": OP_READY, INITIALIZED, SECURED, CARD_LOCKED, TERMINATED"
        ))
    })
}

fn parse_app_state(s: &str) -> Result<u8, GpError> {
    Ok(match norm(s).as_str() {
        "locked" | "lock" => 0x80,
        "unlocked" | "unlock" => 0x00,
        "selectable" => 0x07,
        "personalized" => 0x0F,
        _ => super::parse_byte(s).map_err(GpError::Usage)?,
    })
}

/// `mec gp readers`.
///
/// # Errors
/// Reader errors.
pub(crate) fn readers(args: &GpArgs, out: &mut dyn Write) -> Result<(), GpError> {
    let readers = list_readers()?;
    if args.json {
        let text = serde_json::to_string_pretty(&readers)
            .map_err(|e| GpError::Usage(format!("JSON: {e}")))?;
        return w(out, &text);
    }
    if readers.is_empty() {
        return w(out, "no PC/SC readers");
    }
    for r in readers {
        w(
            out,
            &format!(
                "{}\t{}",
                r.name,
                match &r.atr {
                    Some(atr) => format!("card present, ATR {atr}"),
                    None if r.card_present => "card present".into(),
                    None => "no card".into(),
                }
            ),
        )?;
    }
    Ok(())
}

/// Select the security domain and authenticate.
fn authenticate<T: Transport>(client: &mut GpClient<T>, args: &GpArgs) -> Result<(), GpError> {
    let sd = args.sd_aid()?;
    client.select_sd(sd.as_ref())?;
    client.configure_length(args.apdu)?;
    let auth = args.auth()?;
    let info = client.open(&auth)?;
    client.trace_comment(&format!(
        "secure channel open: SCP{} key version {:02X} level {:02X}",
        info.scp, info.key_version, info.level
    ));
    Ok(())
}

/// Run a verb (all but `readers`).
///
/// # Errors
/// Whatever the verb meets; see [`GpError`].
pub(crate) fn execute<T: Transport>(
    client: &mut GpClient<T>,
    args: &GpArgs,
    out: &mut dyn Write,
) -> Result<(), GpError> {
    client.close();
    super::length::check_options(args.apdu, args.block_size.map(usize::from))
        .map_err(GpError::Usage)?;
    match &args.verb {
        Verb::Readers => readers(args, out),
        Verb::Info { no_auth } => {
            let sd = args.sd_aid()?;
            let fci = client.select_sd(sd.as_ref())?;
            let mut info = report::collect_info(client, fci.as_ref())?;
            if !no_auth {
                let auth = args.auth()?;
                let session = client.open(&auth)?;
                info.add_session(&session);
                let isd = client.get_status(StatusSubset::IssuerSecurityDomain)?;
                info.add_card_lifecycle(isd.first());
            }
            report::print_info(&info, args.json, out)
        }
        Verb::List => {
            authenticate(client, args)?;
            let entries = report::collect_registry(client)?;
            report::print_registry(&entries, args.json, out)
        }
        Verb::Install {
            file,
            create,
            package,
            applet,
            params,
            privs,
            to,
            load_only,
            descriptor,
        } => {
            let source = match file {
                Some(path) => Some(
                    std::fs::read(path)
                        .map_err(|e| GpError::Usage(format!("{}: {e}", path.display())))
                        .and_then(|b| {
                            cap::read_load_file(&b, *descriptor)
                                .map_err(|m| GpError::Usage(format!("{}: {m}", path.display())))
                        })?,
                ),
                None => None,
            };
            let package = match (package, source.as_ref().and_then(|s| s.package)) {
                (Some(p), _) => parse_aid(p)?,
                (None, Some(p)) => p,
                (None, None) => {
                    return Err(GpError::Usage(
                        "give --package AID (a raw load file, or no file, has no package AID)"
                            .into(),
                    ));
                }
            };
            let module = match applet {
                Some(a) => Some(parse_aid(a)?),
                None => match source.as_ref().map(|s| s.applets.as_slice()) {
                    Some([only]) => Some(*only),
                    Some([]) | None => None,
                    Some(_) => {
                        return Err(GpError::Usage(
                            "the CAP has several applets: choose one with --applet".into(),
                        ));
                    }
                },
            };
            let instance = create.as_deref().map(parse_aid).transpose()?;
            let privileges = privs
                .as_deref()
                .map(parse_privileges)
                .transpose()?
                .unwrap_or(Privileges([0; 3]));
            let parameters = params
                .as_deref()
                .map(parse_hex)
                .transpose()
                .map_err(GpError::Usage)?;
            let to = to.as_deref().map(parse_aid).transpose()?;
            if module.is_none() && !load_only && source.is_none() {
                return Err(GpError::Usage(
                    "give --applet AID (the module to instantiate)".into(),
                ));
            }
            authenticate(client, args)?;
            if let Some(source) = &source {
                load(
                    client,
                    &package,
                    to,
                    &source.data,
                    args.block_size.map(usize::from),
                )?;
                w(
                    out,
                    &format!(
                        "loaded {package} ({} bytes{})",
                        source.data.len(),
                        if source.components.is_empty() {
                            String::new()
                        } else {
                            format!(", components {}", source.components.join(" "))
                        }
                    ),
                )?;
            }
            if *load_only {
                return Ok(());
            }
            let Some(module) = module else {
                w(out, "no applet in the load file: nothing to install")?;
                return Ok(());
            };
            let instance = instance.unwrap_or(module);
            install_instance(
                client,
                package,
                module,
                instance,
                privileges,
                parameters.as_deref(),
            )?;
            w(
                out,
                &format!("installed {instance} (module {module} of {package}), selectable"),
            )
        }
        Verb::Delete { aid, all } => {
            let aid = parse_aid(aid)?;
            authenticate(client, args)?;
            let command = Delete::object(aid).with_related(*all).to_command()?;
            client.expect_ok(&format!("DELETE {aid}"), &command)?;
            w(
                out,
                &format!(
                    "deleted {aid}{}",
                    if *all { " and its related objects" } else { "" }
                ),
            )
        }
        Verb::Lock { aid } | Verb::Unlock { aid } => {
            let lock = matches!(args.verb, Verb::Lock { .. });
            let aid = parse_aid(aid)?;
            authenticate(client, args)?;
            let s = if lock {
                SetStatus::lock(aid)
            } else {
                SetStatus::unlock(aid)
            };
            client.expect_ok(
                &format!(
                    "SET STATUS ({} {aid})",
                    if lock { "lock" } else { "unlock" }
                ),
                &s.to_command(),
            )?;
            w(
                out,
                &format!("{} {aid}", if lock { "locked" } else { "unlocked" }),
            )
        }
        Verb::LockCard | Verb::UnlockCard => {
            let lock = matches!(args.verb, Verb::LockCard);
            authenticate(client, args)?;
            let state = if lock {
                CardLifeCycle::CardLocked
            } else {
                CardLifeCycle::Secured
            };
            client.expect_ok(
                &format!("SET STATUS (card {})", state.name()),
                &SetStatus::card(state).to_command(),
            )?;
            w(
                out,
                &format!(
                    "card life cycle: {:02X} ({})",
                    state.to_byte(),
                    state.name()
                ),
            )
        }
        Verb::SetStatus {
            card,
            aid,
            state,
            with_apps,
        } => {
            let s = match (card, aid, state) {
                (Some(c), _, _) => SetStatus::card(parse_card_state(c)?),
                (None, Some(a), Some(st)) => {
                    let a = parse_aid(a)?;
                    SetStatus {
                        scope: if *with_apps {
                            Scope::SecurityDomainAndApplications(a)
                        } else {
                            Scope::Application(a)
                        },
                        state: parse_app_state(st)?,
                    }
                }
                _ => {
                    return Err(GpError::Usage("give --card STATE, or AID and STATE".into()));
                }
            };
            authenticate(client, args)?;
            client.expect_ok("SET STATUS", &s.to_command())?;
            w(out, &format!("status set: {:02X}", s.state))
        }
        Verb::PutKey {
            new_kvn,
            replace,
            new_key,
            new_key_enc,
            new_key_mac,
            new_key_dek,
            key_type,
            from_master,
            kdf,
        } => {
            let Some(version) = new_kvn.or(*replace) else {
                return Err(GpError::Usage(
                    "give --new-kvn (add a key set) or --replace KVN".into(),
                ));
            };
            authenticate(client, args)?;
            let Some((dek, dek_type)) = client.dek() else {
                return Err(GpError::Usage("no session DEK".into()));
            };
            let key_type = match key_type {
                Some(KeyTypeArg::Des) => KeyType::Des,
                Some(KeyTypeArg::Aes) => KeyType::Aes,
                None => dek_type,
            };
            let secrets: Vec<SecretKey> = if let Some(master) = from_master {
                let master = master.0.as_bytes();
                let method = kdf.unwrap_or(super::Kdf::None).method();
                let kdd = client.session().and_then(|s| s.kdd).ok_or_else(|| {
                    GpError::Usage("the session has no KDD to diversify with".into())
                })?;
                let master_set = KeySet::new(version, key_type, master, master, master)
                    .map_err(|e| GpError::Usage(format!("--from-master: {e}")))?;
                let derived = diversify(&master_set, method, &kdd)
                    .map_err(|e| GpError::Usage(format!("--kdf: {e}")))?;
                vec![
                    derived.enc().clone(),
                    derived.mac().clone(),
                    derived.dek().clone(),
                ]
            } else {
                let pick = |k: &Option<super::HexKey>| -> Result<SecretKey, GpError> {
                    match k.as_ref().or(new_key.as_ref()) {
                        Some(h) => Ok(h.0.clone()),
                        None => Err(GpError::Usage(
                            "give --new-key (or --new-key-enc, --new-key-mac, --new-key-dek), or --from-master"
                                .into(),
                        )),
                    }
                };
                vec![pick(new_key_enc)?, pick(new_key_mac)?, pick(new_key_dek)?]
            };
            let components: Vec<(KeyType, &SecretKey)> =
                secrets.iter().map(|k| (key_type, k)).collect();
            let data = gp_scp::put_key::encode_put_key_data(
                version,
                &components,
                dek.as_bytes(),
                dek_type,
            )
            .map_err(|e| GpError::Usage(format!("new keys: {e}")))?;
            let expected: Vec<[u8; 3]> = secrets
                .iter()
                .map(|k| k.kcv(key_type).map(|c| c.0))
                .collect::<Result<_, _>>()
                .map_err(|e| GpError::Usage(format!("new keys: {e}")))?;
            let command = PutKey::from_data(replace.unwrap_or(0), 0x01, &data)?.to_command()?;
            let answer = client.expect_ok("PUT KEY", &command)?;
            let parsed = parse_put_key_response(&answer)?;
            if parsed.version != version || parsed.kcvs != expected {
                return Err(GpError::KcvMismatch {
                    expected: expected.iter().map(hex::encode_upper).collect(),
                    card: parsed.kcvs.iter().map(hex::encode_upper).collect(),
                });
            }
            w(
                out,
                &format!(
                    "{} key set {version:02X} ({}), KCVs {} checked",
                    if replace.is_some() {
                        "replaced"
                    } else {
                        "added"
                    },
                    if key_type == KeyType::Des {
                        "DES"
                    } else {
                        "AES"
                    },
                    expected
                        .iter()
                        .map(hex::encode_upper)
                        .collect::<Vec<_>>()
                        .join("/")
                ),
            )
        }
        Verb::DeleteKey { kvn, id } => {
            authenticate(client, args)?;
            let command = Delete::key(*id, Some(*kvn)).to_command()?;
            client.expect_ok(&format!("DELETE key version {kvn:02X}"), &command)?;
            w(
                out,
                &format!(
                    "deleted key version {kvn:02X}{}",
                    id.map(|i| format!(" id {i:02X}")).unwrap_or_default()
                ),
            )
        }
        Verb::StoreData { aid, dgi, tlv } => {
            let aid = parse_aid(aid)?;
            let (structure, items) = if dgi.is_empty() {
                (Structure::BerTlv, tlv)
            } else {
                (Structure::Dgi, dgi)
            };
            let objects: Vec<Vec<u8>> = items
                .iter()
                .map(|h| parse_hex(h).map_err(GpError::Usage))
                .collect::<Result<_, _>>()?;
            authenticate(client, args)?;
            let perso = InstallCommand {
                install: Install::Personalization { application: aid },
                more: false,
                sequence: Default::default(),
            }
            .to_command()?;
            client.expect_ok(&format!("INSTALL [for personalization] {aid}"), &perso)?;
            let refs: Vec<&[u8]> = objects.iter().map(Vec::as_slice).collect();
            let options = StoreDataOptions {
                structure,
                ..Default::default()
            };
            let block = client.block_size(args.block_size.map(usize::from))?;
            let commands = store_data_objects(&refs, options, block)?;
            let count = commands.len();
            for (n, c) in commands.iter().enumerate() {
                client.expect_ok(&format!("STORE DATA block {n}"), c)?;
            }
            w(
                out,
                &format!(
                    "personalized {aid}: {} object(s) in {count} STORE DATA command(s)",
                    objects.len()
                ),
            )
        }
        Verb::CreateSsd {
            aid,
            privs,
            keys,
            package,
            module,
        } => {
            let aid = parse_aid(aid)?;
            let package = parse_aid(package)?;
            let module = parse_aid(module)?;
            let mut privileges = privs
                .as_deref()
                .map(parse_privileges)
                .transpose()?
                .unwrap_or(Privileges([0x80, 0, 0]));
            if !privileges.is_security_domain() {
                privileges.0[0] |= 0x80;
            }
            let new_keys = keys.as_ref().map(|k| k.0.clone());
            authenticate(client, args)?;
            install_instance(client, package, module, aid, privileges, None)?;
            w(
                out,
                &format!("created security domain {aid} ({privileges})"),
            )?;
            if let Some(k) = new_keys {
                // The new SSD starts with a copy of the installing domain's keys: open a
                // session to it with them and replace that key set.
                client.select_sd(Some(&aid))?;
                let auth = args.auth()?;
                let info = client.open(&auth)?;
                let Some((dek, dek_type)) = client.dek() else {
                    return Err(GpError::Usage("no session DEK".into()));
                };
                let secret = k;
                // An initial key set (FF) cannot be given version FF again: the first PUT KEY
                // adds version 01, which removes it (GPC 2.3 §11.8).
                let (old_version, new_version) = if info.key_version == 0xFF {
                    (0x00, 0x01)
                } else {
                    (info.key_version, info.key_version)
                };
                let data = gp_scp::put_key::encode_put_key_data(
                    new_version,
                    &[
                        (dek_type, &secret),
                        (dek_type, &secret),
                        (dek_type, &secret),
                    ],
                    dek.as_bytes(),
                    dek_type,
                )
                .map_err(|e| GpError::Usage(format!("--keys: {e}")))?;
                let command = PutKey::from_data(old_version, 0x01, &data)?.to_command()?;
                let answer = client.expect_ok("PUT KEY (new SSD keys)", &command)?;
                let kcv = secret
                    .kcv(dek_type)
                    .map_err(|e| GpError::Usage(format!("--keys: {e}")))?;
                let parsed = parse_put_key_response(&answer)?;
                if parsed.kcvs.iter().any(|c| *c != kcv.0) {
                    return Err(GpError::KcvMismatch {
                        expected: vec![hex::encode_upper(kcv.0); 3],
                        card: parsed.kcvs.iter().map(hex::encode_upper).collect(),
                    });
                }
                w(
                    out,
                    &format!(
                        "replaced its initial key set {:02X} by version {new_version:02X} (KCV {})",
                        info.key_version,
                        hex::encode_upper(kcv.0)
                    ),
                )?;
            }
            Ok(())
        }
        Verb::Apdu { apdus, secure } => {
            let commands: Vec<Command> = apdus
                .iter()
                .map(|h| {
                    let bytes = parse_hex(h).map_err(GpError::Usage)?;
                    parse_command(&bytes)
                        .map(|v| v.to_command())
                        .map_err(|e| GpError::Usage(format!("APDU {h}: {e}")))
                })
                .collect::<Result<_, _>>()?;
            if *secure {
                authenticate(client, args)?;
            } else {
                if let Some(sd) = args.sd_aid()? {
                    client.select_sd(Some(&sd))?;
                }
                client.configure_length(args.apdu)?;
            }
            let mut failed = None;
            for c in &commands {
                let r = client.transmit(c)?;
                w(
                    out,
                    &format!(
                        "{}{}{}",
                        hex::encode_upper(&r.data),
                        if r.data.is_empty() { "" } else { " " },
                        r.status
                    ),
                )?;
                if !r.status.is_success() && !r.status.is_warning() && failed.is_none() {
                    failed = Some((r.status, client.wrong_length_hint(r.status)));
                }
            }
            match failed {
                Some((sw, hint @ Some(_))) => Err(GpError::Status {
                    what: "APDU".into(),
                    sw,
                    hint,
                }),
                Some((sw, None)) => Err(status_error("APDU", sw)),
                None => Ok(()),
            }
        }
    }
}

fn load<T: Transport>(
    client: &mut GpClient<T>,
    package: &Aid,
    to: Option<Aid>,
    data: &[u8],
    block_size: Option<usize>,
) -> Result<(), GpError> {
    let for_load = InstallCommand {
        install: Install::ForLoad {
            load_file: *package,
            security_domain: to,
            hash: Vec::new(),
            parameters: Vec::new(),
            token: Vec::new(),
        },
        more: false,
        sequence: Default::default(),
    }
    .to_command()?;
    let block_size = client.block_size(block_size)?;
    // Split first: a load file that cannot be split changes nothing on the card.
    let commands = LoadFile::new(data)
        .to_commands(block_size)
        .map_err(|e| match e {
            gp_scp::cmd::CommandError::TooManyBlocks(len) => GpError::Usage(format!(
                "a load file of {len} bytes needs more than 256 LOAD blocks of {block_size} \
                 bytes (P2 numbers them 00-FF); use a larger --block-size{}",
                if client.length().extended {
                    ""
                } else {
                    ", which needs extended APDUs (--apdu extended, or auto on a card that \
                     announces them)"
                }
            )),
            other => GpError::from(other),
        })?;
    client.expect_ok(&format!("INSTALL [for load] {package}"), &for_load)?;
    client.trace_comment(&format!(
        "LOAD: {} bytes in {} block(s)",
        data.len(),
        commands.len()
    ));
    for (n, c) in commands.iter().enumerate() {
        client.expect_ok(&format!("LOAD block {n} of {}", commands.len()), c)?;
    }
    Ok(())
}

fn install_instance<T: Transport>(
    client: &mut GpClient<T>,
    package: Aid,
    module: Aid,
    instance: Aid,
    privileges: Privileges,
    params: Option<&[u8]>,
) -> Result<(), GpError> {
    let parameters = InstallParameters::application(params.unwrap_or(&[])).to_vec();
    let command = InstallCommand {
        install: Install::ForInstall {
            load_file: package,
            module,
            application: instance,
            privileges,
            parameters,
            token: Vec::new(),
            make_selectable: true,
        },
        more: false,
        sequence: Default::default(),
    }
    .to_command()?;
    let r = client.transmit(&command)?;
    if r.status != StatusWord::SUCCESS {
        return Err(status_error(
            &format!("INSTALL [for install and make selectable] {instance}"),
            r.status,
        ));
    }
    Ok(())
}
