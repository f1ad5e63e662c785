//! Reading SCP11b trust material for `mec gp --ca` / `--sd-key`: CA certificates and public
//! keys in PEM (RFC 7468; several blocks per file allowed) or DER, and pinned SD keys as hex.

use std::path::Path;

use gp_scp::scp11::TrustAnchor;
use p256::pkcs8::der::pem;

/// The PEM blocks of a text, each as (label, DER).
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let Some(end) = block.find("-----END ") else {
            return Err("PEM block without an END line".into());
        };
        let end_line = block[end..].find('\n').map_or(block.len(), |n| end + n + 1);
        let (label, der) = pem::decode_vec(block[..end_line].trim_end().as_bytes())
            .map_err(|e| format!("bad PEM: {e}"))?;
        out.push((label.to_owned(), der));
        rest = &block[end_line..];
    }
    Ok(out)
}

/// The trust anchors in a file: every `CERTIFICATE` and `PUBLIC KEY` block of a PEM file, or
/// one DER certificate or SubjectPublicKeyInfo.
///
/// # Errors
/// A message for an unreadable file, an unknown PEM label, or a certificate or key that is
/// not P-256.
pub(crate) fn read_anchors(path: &Path) -> Result<Vec<TrustAnchor>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    parse_anchors(&bytes)
}

fn parse_anchors(bytes: &[u8]) -> Result<Vec<TrustAnchor>, String> {
    let text = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN "));
    let Some(text) = text else {
        return TrustAnchor::from_der(bytes)
            .map(|a| vec![a])
            .map_err(|e| format!("not a DER certificate or public key ({e})"));
    };
    let mut out = Vec::new();
    for (label, der) in pem_blocks(text)? {
        let anchor = match label.as_str() {
            "CERTIFICATE" | "TRUSTED CERTIFICATE" => TrustAnchor::from_certificate(&der),
            "PUBLIC KEY" => TrustAnchor::from_spki_der(&der),
            other => {
                return Err(format!(
                    "PEM block \"{other}\" is neither a CERTIFICATE nor a PUBLIC KEY"
                ));
            }
        };
        out.push(anchor.map_err(|e| e.to_string())?);
    }
    if out.is_empty() {
        return Err("no PEM block".into());
    }
    Ok(out)
}

/// `--sd-key`: an uncompressed (or compressed) P-256 point in hex, or a file holding the
/// key or the SD certificate.
///
/// # Errors
/// A message for a bad point, an unreadable file or one holding several keys.
pub(crate) fn parse_sd_key(arg: &str) -> Result<p256::PublicKey, String> {
    let hex_digits: String = arg.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let looks_hex =
        matches!(hex_digits.len(), 66 | 130) && hex_digits.chars().all(|c| c.is_ascii_hexdigit());
    if looks_hex && !Path::new(arg).exists() {
        let bytes = hex::decode(&hex_digits).map_err(|e| e.to_string())?;
        return p256::PublicKey::from_sec1_bytes(&bytes)
            .map_err(|_| "not a P-256 point (04 || X || Y)".to_owned());
    }
    let anchors = read_anchors(Path::new(arg))?;
    match anchors.as_slice() {
        [one] => Ok(*one.public_key()),
        _ => Err(format!(
            "{arg}: expected one key or certificate, found {}",
            anchors.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn profile(name: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../virtual-se/profiles")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn pem_and_der_anchors_agree() {
        let der = parse_anchors(&profile("danger-test-scp11b-ca-cert.der")).unwrap();
        let pem = parse_anchors(&profile("danger-test-scp11b-ca-cert.pem")).unwrap();
        let pk = parse_anchors(&profile("danger-test-scp11b-ca-pk.pem")).unwrap();
        assert_eq!(der[0].public_key(), pem[0].public_key());
        assert_eq!(der[0].public_key(), pk[0].public_key());
        // Two blocks in one file: two anchors.
        let mut both = profile("danger-test-scp11b-ca-cert.pem");
        both.extend(profile("danger-test-scp11b-ca-pk.pem"));
        assert_eq!(parse_anchors(&both).unwrap().len(), 2);
        // Refusals.
        let key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(parse_anchors(key).unwrap_err().contains("PRIVATE KEY"));
        assert!(parse_anchors(b"-----BEGIN CERTIFICATE-----\nAAAA").is_err());
        assert!(parse_anchors(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(parse_anchors(b"").is_err());
    }

    #[test]
    fn sd_key_as_hex() {
        let point = "048F42829D707E9C52CB71228A8A0D44789A11E9E971950C3F74ACB41875BEB5412112715CFFEA68EEB3852BA6077926EC1D60027D6720C5135F62074E42376DC7";
        let k = parse_sd_key(point).unwrap();
        let cert = parse_anchors(&profile("danger-test-scp11b-cert.der")).unwrap();
        assert_eq!(&k, cert[0].public_key());
        assert!(parse_sd_key(&point.replace("04", "05")).is_err());
        assert!(parse_sd_key("/nonexistent/file").is_err());
    }
}
