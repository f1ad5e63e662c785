//! JOSE building blocks: base64url, keys, JWS ES256 and JWE ECDH-ES + A256GCM, compact forms.

pub mod b64;
pub mod jwe;
pub mod jws;
pub mod keys;
