//! Prints a roaming message signed by this library, with the public key that verifies it, as one
//! JSON object — for cross-checking with another JOSE implementation, e.g. in Python:
//!
//! ```text
//! cargo run -p mec-roaming --example print_jws > jws.json
//! python3 -c 'import json; from jwcrypto import jwk, jws
//! d = json.load(open("jws.json")); k = jwk.JWK(**d["jwk"]); t = jws.JWS(); t.deserialize(d["jws"])
//! t.verify(k, alg="ES256"); print(t.payload.decode())'
//! ```
//!
//! Optional argument: a seed (default 1), so the output is reproducible.

use mec_roaming::jose::jwe::EcJwk;
use mec_roaming::jose::keys::PrivateKey;
use mec_roaming::message::{
    Body, Envelope, MessageId, PROTOCOL_VERSION, RequestType, TransactionId,
};
use mec_roaming::security::{Endpoint, Validity};
use mec_roaming::{E164, SeededRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seed = std::env::args()
        .nth(1)
        .map(|s| s.parse::<u64>())
        .transpose()?
        .unwrap_or(1);
    let mut rng = SeededRng::from_u64(seed);
    let key = PrivateKey::generate(&mut rng);
    let pem = key.public_key_pem()?;
    let jwk = EcJwk::from_public_key(&key.public_key());
    let endpoint = Endpoint::new("visited-fi", key, Validity::default());
    let env = Envelope {
        ver: PROTOCOL_VERSION.into(),
        mid: MessageId::random(&mut rng),
        tid: TransactionId::random(&mut rng),
        iss: "visited-fi".into(),
        aud: "home-uk".into(),
        iat: 1_760_000_000,
        body: Body::RoamUserRequest {
            subscriber: E164::parse("+447700900123")?,
            request_type: RequestType::Payment,
        },
    };
    let jws = endpoint.seal(&env)?;
    let out = serde_json::json!({
        "jws": jws,
        "jwk": {"kty": jwk.kty, "crv": jwk.crv, "x": jwk.x, "y": jwk.y},
        "public_key_pem": pem,
        "payload": serde_json::to_value(&env)?,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
