//! Load files for `mec gp install`: a Java Card CAP file (a ZIP archive of components) or a
//! raw load file data block.
//!
//! A CAP file's load file data block is the concatenation of its components in the order
//! Java Card VM Specification 3.0.5 §6.2 gives for installation: Header, Directory, Import,
//! Applet, Class, Method, StaticField, Export, ConstantPool, ReferenceLocation, and
//! optionally Descriptor. The package AID comes from the Header component (§6.4) and the
//! applet AIDs from the Applet component (§6.5).

use std::io::Read;

use gp_scp::cmd::Aid;

/// Component file names in load order (JCVM 3.0.5 §6.2), without Descriptor.
pub(crate) const COMPONENT_ORDER: [&str; 10] = [
    "Header",
    "Directory",
    "Import",
    "Applet",
    "Class",
    "Method",
    "StaticField",
    "Export",
    "ConstantPool",
    "RefLocation",
];

/// Header component magic (JCVM 3.0.5 §6.4).
const CAP_MAGIC: [u8; 4] = [0xDE, 0xCA, 0xFF, 0xED];
/// Component tags (JCVM 3.0.5 Table 6-1).
const TAG_HEADER: u8 = 1;
const TAG_APPLET: u8 = 3;

/// A load file ready for LOAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoadFileSource {
    /// The load file data block (what goes inside `C4`).
    pub(crate) data: Vec<u8>,
    /// Package AID (from the CAP header).
    pub(crate) package: Option<Aid>,
    /// Applet AIDs (from the CAP applet component).
    pub(crate) applets: Vec<Aid>,
    /// Components found, in load order (for the report).
    pub(crate) components: Vec<String>,
}

/// Read a load file: a ZIP archive (CAP file) when it starts with `PK`, otherwise the raw
/// load file data block.
///
/// # Errors
/// A message naming what is wrong with the file.
pub(crate) fn read_load_file(bytes: &[u8], descriptor: bool) -> Result<LoadFileSource, String> {
    if bytes.starts_with(b"PK\x03\x04") {
        read_cap(bytes, descriptor)
    } else {
        if bytes.is_empty() {
            return Err("the load file is empty".into());
        }
        Ok(LoadFileSource {
            data: bytes.to_vec(),
            package: None,
            applets: Vec::new(),
            components: Vec::new(),
        })
    }
}

fn read_cap(bytes: &[u8], descriptor: bool) -> Result<LoadFileSource, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a readable CAP (ZIP) file: {e}"))?;
    // name (without directory and extension) -> contents; a CAP holds one package.
    let mut found: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive
            .by_index(i)
            .map_err(|e| format!("CAP entry {i}: {e}"))?;
        let name = file.name().to_owned();
        let Some(base) = name.rsplit('/').next().and_then(|b| b.strip_suffix(".cap")) else {
            continue;
        };
        if found.iter().any(|(n, _)| n == base) {
            return Err(format!(
                "the CAP file holds two {base}.cap components (more than one package?)"
            ));
        }
        let mut content = Vec::new();
        file.by_ref()
            .take(16 * 1024 * 1024)
            .read_to_end(&mut content)
            .map_err(|e| format!("reading {name}: {e}"))?;
        found.push((base.to_owned(), content));
    }
    let mut order: Vec<&str> = COMPONENT_ORDER.to_vec();
    if descriptor {
        order.push("Descriptor");
    }
    let mut data = Vec::new();
    let mut components = Vec::new();
    for name in order {
        if let Some((_, c)) = found.iter().find(|(n, _)| n == name) {
            data.extend_from_slice(c);
            components.push(name.to_owned());
        }
    }
    let header = found
        .iter()
        .find(|(n, _)| n == "Header")
        .map(|(_, c)| c.as_slice())
        .ok_or("the CAP file has no Header.cap component")?;
    let package = parse_header_package(header)?;
    let applets = match found.iter().find(|(n, _)| n == "Applet") {
        Some((_, c)) => parse_applets(c)?,
        None => Vec::new(),
    };
    Ok(LoadFileSource {
        data,
        package: Some(package),
        applets,
        components,
    })
}

/// The package AID of a Header component: tag(1) size(2) magic(4) minor(1) major(1)
/// flags(1) then package_info: minor(1) major(1) AID_length(1) AID (JCVM 3.0.5 §6.4).
fn parse_header_package(header: &[u8]) -> Result<Aid, String> {
    if header.first() != Some(&TAG_HEADER) {
        return Err("Header.cap does not start with tag 01".into());
    }
    if header.get(3..7) != Some(&CAP_MAGIC[..]) {
        return Err("Header.cap has no DECAFFED magic".into());
    }
    let len = usize::from(*header.get(12).ok_or("Header.cap is truncated")?);
    let aid = header
        .get(13..13 + len)
        .ok_or("Header.cap: truncated package AID")?;
    Aid::new(aid).map_err(|e| format!("Header.cap: package AID: {e}"))
}

/// The applet AIDs of an Applet component: tag(1) size(2) count(1) then per applet
/// AID_length(1) AID install_method_offset(2) (JCVM 3.0.5 §6.5).
fn parse_applets(applet: &[u8]) -> Result<Vec<Aid>, String> {
    if applet.first() != Some(&TAG_APPLET) {
        return Err("Applet.cap does not start with tag 03".into());
    }
    let count = *applet.get(3).ok_or("Applet.cap is truncated")?;
    let mut at = 4usize;
    let mut out = Vec::new();
    for _ in 0..count {
        let len = usize::from(*applet.get(at).ok_or("Applet.cap is truncated")?);
        let aid = applet
            .get(at + 1..at + 1 + len)
            .ok_or("Applet.cap: truncated applet AID")?;
        out.push(Aid::new(aid).map_err(|e| format!("Applet.cap: applet AID: {e}"))?);
        at += 1 + len + 2;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal CAP file for package `package` with one applet `applet` (the Header and
    /// Applet components are well formed; the others are placeholder components of the right
    /// tags, which the virtual SE stores opaquely).
    pub(crate) fn build_cap(package: &[u8], applet: &[u8]) -> Vec<u8> {
        let mut header = vec![TAG_HEADER, 0, 0];
        header.extend_from_slice(&CAP_MAGIC);
        header.extend_from_slice(&[0x02, 0x02, 0x04, 0x00, 0x01]);
        header.push(u8::try_from(package.len()).unwrap());
        header.extend_from_slice(package);
        let n = u16::try_from(header.len() - 3).unwrap().to_be_bytes();
        header[1] = n[0];
        header[2] = n[1];
        let mut applet_c = vec![TAG_APPLET, 0, 0, 1, u8::try_from(applet.len()).unwrap()];
        applet_c.extend_from_slice(applet);
        applet_c.extend_from_slice(&[0x00, 0x10]);
        let n = u16::try_from(applet_c.len() - 3).unwrap().to_be_bytes();
        applet_c[1] = n[0];
        applet_c[2] = n[1];
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut buf);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            // Written out of load order on purpose: the reader must reorder.
            let mut files: Vec<(&str, Vec<u8>)> = vec![
                ("Method", vec![7, 0, 3, 1, 2, 3]),
                ("Applet", applet_c),
                ("Header", header),
                ("Descriptor", vec![11, 0, 1, 0]),
                ("Directory", vec![2, 0, 2, 0, 0]),
                ("Import", vec![4, 0, 1, 0]),
                ("Class", vec![6, 0, 1, 0]),
                ("StaticField", vec![8, 0, 1, 0]),
                ("ConstantPool", vec![5, 0, 1, 0]),
                ("RefLocation", vec![9, 0, 1, 0]),
            ];
            files.push(("Export", vec![10, 0, 1, 0]));
            zip.add_directory("META-INF/", options).unwrap();
            zip.start_file("META-INF/MANIFEST.MF", options).unwrap();
            zip.write_all(b"Manifest-Version: 1.0\n").unwrap();
            for (name, content) in files {
                zip.start_file(format!("com/example/javacard/{name}.cap"), options)
                    .unwrap();
                zip.write_all(&content).unwrap();
            }
            zip.finish().unwrap();
        }
        buf.into_inner()
    }

    #[test]
    fn cap_components_in_load_order() {
        let cap = build_cap(
            &[0xF0, 0x6D, 0x65, 0x63, 0x53, 0x54],
            &[0xF0, 0x6D, 1, 2, 3],
        );
        let lf = read_load_file(&cap, false).unwrap();
        assert_eq!(lf.components, COMPONENT_ORDER.to_vec());
        assert_eq!(
            lf.package.unwrap().as_bytes(),
            [0xF0, 0x6D, 0x65, 0x63, 0x53, 0x54]
        );
        assert_eq!(lf.applets.len(), 1);
        assert_eq!(lf.applets[0].as_bytes(), [0xF0, 0x6D, 1, 2, 3]);
        // Header first, then Directory (tag 02), ..., RefLocation (tag 09) last.
        assert_eq!(lf.data[0], TAG_HEADER);
        let tags: Vec<u8> = {
            let mut t = Vec::new();
            let mut at = 0;
            while at < lf.data.len() {
                t.push(lf.data[at]);
                let n = usize::from(u16::from_be_bytes([lf.data[at + 1], lf.data[at + 2]]));
                at += 3 + n;
            }
            t
        };
        assert_eq!(tags, [1, 2, 4, 3, 6, 7, 8, 10, 5, 9]);
        let with_descriptor = read_load_file(&cap, true).unwrap();
        assert_eq!(with_descriptor.components.last().unwrap(), "Descriptor");
        assert_eq!(*with_descriptor.data.get(lf.data.len()).unwrap(), 11);
    }

    #[test]
    fn raw_blob_and_bad_caps() {
        let raw = read_load_file(&[1, 2, 3], false).unwrap();
        assert_eq!(raw.data, [1, 2, 3]);
        assert!(raw.package.is_none());
        assert!(read_load_file(&[], false).is_err());
        assert!(read_load_file(b"PK\x03\x04garbage", false).is_err());
        assert!(parse_header_package(&[1, 0, 5, 0xDE, 0xCA, 0xFF, 0xEE]).is_err());
        assert!(parse_applets(&[3, 0, 4, 2, 9]).is_err());
    }
}
