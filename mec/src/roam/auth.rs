//! Bearer-token authentication of the content-provider and admin endpoints (RFC 6750).
//!
//! The configuration holds only the SHA-256 of each token (64 hex digits), one list per scope;
//! a presented token is hashed and compared with every configured hash in constant time
//! (`subtle`). Server-to-server messages are authenticated by their JWS signature instead, and
//! user-agent endpoints by the unguessable session id.

use std::fmt;

use anyhow::{Context, bail};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mec_roaming::ErrorCode;
use mec_roaming::jose::b64;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use super::api::ErrorBody;
use super::config::{AuthConfig, CpTokenConfig, hex32};

/// Who an endpoint is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scope {
    /// Content providers (`/roam/v1/cp/...`, visited server).
    Cp,
    /// Operators (`/roam/v1/admin/...`, both servers).
    Admin,
}

impl Scope {
    /// Name of the scheme in the OpenAPI document and of the realm in `WWW-Authenticate`.
    pub(crate) fn scheme(self) -> &'static str {
        match self {
            Self::Cp => "cpBearer",
            Self::Admin => "adminBearer",
        }
    }

    /// The configuration key holding this scope's token hashes.
    pub(crate) fn config_key(self) -> &'static str {
        match self {
            Self::Cp => "cp_token_sha256",
            Self::Admin => "admin_token_sha256",
        }
    }
}

/// What a content-provider token may see and do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CpGrant {
    /// Every merchant (`[auth] cp_token_sha256`).
    AllMerchants,
    /// One merchant (`[[auth.cp]]` with `merchant`).
    Merchant(String),
}

impl CpGrant {
    /// True when the token may act for `merchant`.
    pub(crate) fn covers(&self, merchant: &str) -> bool {
        match self {
            Self::AllMerchants => true,
            Self::Merchant(m) => m == merchant,
        }
    }
}

/// The accepted token hashes per scope. Not secret (hashes of 256-bit random tokens), but
/// `Debug` shows only how many there are.
#[derive(Clone, Default)]
pub(crate) struct Tokens {
    cp: Vec<([u8; 32], CpGrant)>,
    admin: Vec<[u8; 32]>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("cp", &self.cp.len())
            .field("admin", &self.admin.len())
            .finish()
    }
}

impl Tokens {
    /// Parses the `[auth]` section.
    pub(crate) fn from_config(c: &AuthConfig) -> anyhow::Result<Self> {
        let parse = |list: &[String], scope: Scope| -> anyhow::Result<Vec<[u8; 32]>> {
            list.iter()
                .enumerate()
                .map(|(i, h)| {
                    hex32(h).with_context(|| {
                        format!(
                            "[auth] {} entry {}: a SHA-256 in hex",
                            scope.config_key(),
                            i + 1
                        )
                    })
                })
                .collect()
        };
        let mut cp: Vec<([u8; 32], CpGrant)> = parse(&c.cp_token_sha256, Scope::Cp)?
            .into_iter()
            .map(|h| (h, CpGrant::AllMerchants))
            .collect();
        for (
            i,
            CpTokenConfig {
                token_sha256,
                merchant,
            },
        ) in c.cp.iter().enumerate()
        {
            let h = hex32(token_sha256).with_context(|| {
                format!(
                    "[[auth.cp]] entry {}: token_sha256 is a SHA-256 in hex",
                    i + 1
                )
            })?;
            if merchant.is_empty() {
                bail!("[[auth.cp]] entry {}: merchant is empty", i + 1);
            }
            cp.push((h, CpGrant::Merchant(merchant.clone())));
        }
        let admin = parse(&c.admin_token_sha256, Scope::Admin)?;
        // One token, one grant: a hash listed twice would make the grant depend on the order.
        let mut seen: Vec<&[u8; 32]> = cp.iter().map(|(h, _)| h).chain(admin.iter()).collect();
        seen.sort_unstable();
        if seen.windows(2).any(|w| w.first() == w.last()) {
            bail!(
                "[auth]: a token hash is listed more than once (each token gets one scope and one merchant)"
            );
        }
        Ok(Self { cp, admin })
    }

    /// True when no token is configured for `scope` (its endpoints then refuse every request).
    pub(crate) fn is_empty(&self, scope: Scope) -> bool {
        match scope {
            Scope::Cp => self.cp.is_empty(),
            Scope::Admin => self.admin.is_empty(),
        }
    }

    /// The grant of `token` when it is one of `scope`'s tokens (for the admin scope,
    /// [`CpGrant::AllMerchants`]). Every configured hash is compared, each in constant time.
    fn grant(&self, scope: Scope, token: &[u8]) -> Option<CpGrant> {
        let digest: [u8; 32] = Sha256::digest(token).into();
        match scope {
            Scope::Cp => {
                let mut found = None;
                for (h, g) in &self.cp {
                    let eq: bool = h.ct_eq(&digest).into();
                    if eq && found.is_none() {
                        found = Some(g);
                    }
                }
                found.cloned()
            }
            Scope::Admin => {
                let mut ok = Choice::from(0);
                for h in &self.admin {
                    ok |= h.ct_eq(&digest);
                }
                bool::from(ok).then_some(CpGrant::AllMerchants)
            }
        }
    }

    /// True when `token` is one of `scope`'s tokens.
    #[cfg(test)]
    pub(crate) fn allows(&self, scope: Scope, token: &[u8]) -> bool {
        self.grant(scope, token).is_some()
    }

    /// Checks a request's `Authorization` header: the token's grant (what a content-provider
    /// token may see; [`CpGrant::AllMerchants`] for admin tokens), or the 401 answer to send.
    pub(crate) fn check(
        &self,
        scope: Scope,
        headers: &HeaderMap,
    ) -> Result<CpGrant, Box<Response>> {
        match bearer(headers) {
            None => Err(Box::new(unauthorized(scope, None, "bearer token required"))),
            Some(token) => self.grant(scope, token).ok_or_else(|| {
                Box::new(unauthorized(
                    scope,
                    Some("invalid_token"),
                    "bearer token not accepted",
                ))
            }),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 9110
/// §11.1; token characters of RFC 6750 §2.1 `b64token`). `None` without a header; `Some(&[])`
/// (never accepted) for another scheme or a malformed token.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    // A header too short to hold "Bearer " (`Basic`, say) is another scheme, not no header.
    let Some((scheme, rest)) = v.split_at_checked(7) else {
        return Some(&[]);
    };
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return Some(&[]);
    }
    let token = rest.trim_ascii();
    let body = token
        .iter()
        .position(|&b| b == b'=')
        .map_or(token, |i| token.get(..i).unwrap_or_default());
    let padding_ok = token
        .get(body.len()..)
        .is_some_and(|p| p.iter().all(|&b| b == b'='));
    let chars_ok = !body.is_empty()
        && body
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    Some(if chars_ok && padding_ok { token } else { &[] })
}

/// 401 with `WWW-Authenticate: Bearer realm=...` (RFC 6750 §3) and the usual error body (303).
fn unauthorized(scope: Scope, error: Option<&str>, detail: &str) -> Response {
    let challenge = match error {
        Some(e) => format!("Bearer realm=\"{}\", error=\"{e}\"", scope.scheme()),
        None => format!("Bearer realm=\"{}\"", scope.scheme()),
    };
    let mut r = (
        StatusCode::UNAUTHORIZED,
        axum::Json(ErrorBody {
            code: ErrorCode::AccessDenied,
            detail: detail.to_owned(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// A new token (32 random bytes, base64url) and its SHA-256 in hex.
pub(crate) fn generate() -> anyhow::Result<(Zeroizing<String>, String)> {
    let mut raw = Zeroizing::new([0u8; 32]);
    getrandom::fill(raw.as_mut_slice())
        .map_err(|e| anyhow::anyhow!("operating system random generator: {e}"))?;
    let token = Zeroizing::new(b64::encode(raw.as_slice()));
    let hash = hash_hex(token.as_bytes());
    Ok((token, hash))
}

/// SHA-256 of `token` in lowercase hex (the form the configuration stores).
pub(crate) fn hash_hex(token: &[u8]) -> String {
    Sha256::digest(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuses an `[auth]` section that does not fit the role.
pub(crate) fn check_for_role(tokens: &Tokens, visited: bool) -> anyhow::Result<()> {
    if visited && tokens.is_empty(Scope::Cp) {
        bail!(
            "a visited server needs a content-provider token: [auth] cp_token_sha256 or [[auth.cp]] (create one with `mec roam token --scope cp [--merchant NAME]`)"
        );
    }
    if !visited && !tokens.is_empty(Scope::Cp) {
        bail!("[auth] cp_token_sha256 and [[auth.cp]] belong in a visited server's configuration");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    fn tokens() -> Tokens {
        Tokens::from_config(&AuthConfig {
            cp_token_sha256: vec![hash_hex(b"cp-one"), hash_hex(b"cp-two")],
            cp: vec![CpTokenConfig {
                token_sha256: hash_hex(b"shop-1"),
                merchant: "Shop 1".into(),
            }],
            admin_token_sha256: vec![hash_hex(b"admin")],
        })
        .unwrap()
    }

    #[test]
    fn merchant_bound_tokens_carry_their_merchant() {
        let t = tokens();
        let grant = |token: &str| t.check(Scope::Cp, &headers(&format!("Bearer {token}")));
        assert_eq!(grant("cp-one").unwrap(), CpGrant::AllMerchants);
        let g = grant("shop-1").unwrap();
        assert_eq!(g, CpGrant::Merchant("Shop 1".into()));
        assert!(g.covers("Shop 1") && !g.covers("Shop 2") && !g.covers("shop 1"));
        assert!(CpGrant::AllMerchants.covers("anything"));
        assert!(t.check(Scope::Admin, &headers("Bearer shop-1")).is_err());
        assert!(check_for_role(&t, false).is_err());
        // Only bound tokens: still a valid visited configuration.
        let only_bound = Tokens::from_config(&AuthConfig {
            cp: vec![CpTokenConfig {
                token_sha256: hash_hex(b"shop-1"),
                merchant: "Shop 1".into(),
            }],
            ..AuthConfig::default()
        })
        .unwrap();
        assert!(check_for_role(&only_bound, true).is_ok());
        // A hash listed twice (here: flat and bound) or an empty merchant is refused.
        for bad in [
            AuthConfig {
                cp_token_sha256: vec![hash_hex(b"shop-1")],
                cp: vec![CpTokenConfig {
                    token_sha256: hash_hex(b"shop-1"),
                    merchant: "Shop 1".into(),
                }],
                ..AuthConfig::default()
            },
            AuthConfig {
                cp: vec![CpTokenConfig {
                    token_sha256: hash_hex(b"x"),
                    merchant: String::new(),
                }],
                ..AuthConfig::default()
            },
            AuthConfig {
                cp: vec![CpTokenConfig {
                    token_sha256: "abc".into(),
                    merchant: "M".into(),
                }],
                ..AuthConfig::default()
            },
        ] {
            assert!(Tokens::from_config(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sha256_hex_known_answer() {
        // FIPS 180-2 Appendix B.1: SHA-256("abc").
        assert_eq!(
            hash_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn each_scope_accepts_only_its_own_tokens() {
        let t = tokens();
        assert!(t.allows(Scope::Cp, b"cp-one"));
        assert!(t.allows(Scope::Cp, b"cp-two"));
        assert!(!t.allows(Scope::Cp, b"admin"));
        assert!(t.allows(Scope::Admin, b"admin"));
        assert!(!t.allows(Scope::Admin, b"cp-one"));
        assert!(!t.allows(Scope::Cp, b""));
        assert!(!Tokens::default().allows(Scope::Admin, b"admin"));
    }

    #[test]
    fn bearer_header_parsing() {
        let t = tokens();
        assert!(t.check(Scope::Cp, &headers("Bearer cp-one")).is_ok());
        assert!(t.check(Scope::Cp, &headers("bearer   cp-two ")).is_ok());
        assert!(t.check(Scope::Admin, &headers("BEARER admin")).is_ok());
        for bad in [
            "Basic Y3Atb25lOg==",
            "Basic",
            "Bearer",
            "Bearer ",
            "Bearer cp-one extra",
            "Bearer =cp",
            "Bearer cp=one",
            "cp-one",
        ] {
            let r = t.check(Scope::Cp, &headers(bad));
            let Err(r) = r else {
                panic!("{bad:?} accepted")
            };
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
            assert!(
                r.headers()[header::WWW_AUTHENTICATE]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer realm=\"cpBearer\""),
                "{bad:?}"
            );
            // Even a header too short to name a scheme (`Basic`) is a token that was refused.
            assert!(
                r.headers()[header::WWW_AUTHENTICATE]
                    .to_str()
                    .unwrap()
                    .ends_with("error=\"invalid_token\""),
                "{bad:?}"
            );
        }
        let r = t.check(Scope::Cp, &HeaderMap::new()).unwrap_err();
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"cpBearer\""
        );
    }

    #[test]
    fn generated_tokens_are_fresh_and_hash_to_the_printed_line() {
        let (a, ha) = generate().unwrap();
        let (b, _) = generate().unwrap();
        assert_ne!(*a, *b);
        assert_eq!(a.len(), 43);
        assert_eq!(ha, hash_hex(a.as_bytes()));
        assert!(hex32(&ha).is_ok());
    }

    #[test]
    fn role_checks() {
        let t = tokens();
        assert!(check_for_role(&t, true).is_ok());
        assert!(
            check_for_role(&t, false).is_err(),
            "cp tokens on a home server"
        );
        assert!(check_for_role(&Tokens::default(), true).is_err());
        assert!(check_for_role(&Tokens::default(), false).is_ok());
    }
}
