//! The HTTP API: one route table, from which the axum router is built and against which the
//! OpenAPI document (`docs/roaming-openapi.json`) is checked.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use mec_roaming::message::{TransactionId, parse_envelope};
use mec_roaming::registry::parse_update_json;
use mec_roaming::server::{HomeInput, UserReply, UserRequest, VisitedInput};
use mec_roaming::store::{Pin, SubscriberStore};
use mec_roaming::{E164, Error, ErrorCode};
use serde::Serialize;
use tracing::{info, warn};

use super::api::{
    Accepted, CpEventJson, ErrorBody, Health, MerchantAccount, RegistryState, StartTransaction,
    SubmitPin, SubmitSignature, SubscriberInfo, TransactionStatus, UserReplyJson, visited_state,
};
use super::auth::{CpGrant, Scope};
use super::config::Role;
use super::server::{App, Machine, now};
use super::sqlite::TxFields;

/// Media type of server-to-server messages (RFC 7515 §9.2.1).
pub(crate) const JOSE: &str = "application/jose";

/// Prefix of the user-agent session URLs on the home server.
pub(crate) const USER_SESSIONS: &str = "/roam/v1/user/sessions";

/// What a route does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Health,
    RegistryUpdate,
    S2sMessage,
    CpStart,
    CpStatus,
    CpAccount,
    UserContract,
    UserStatus,
    UserPin,
    UserSignature,
    AdminSubscriber,
}

/// One route of the API.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Route {
    /// `GET` or `POST`.
    pub(crate) method: &'static str,
    /// Path in axum 0.8 / OpenAPI template syntax.
    pub(crate) path: &'static str,
    /// Servers that serve it.
    pub(crate) roles: &'static [Role],
    /// Handler.
    pub(crate) op: Op,
    /// Bearer-token scope required (`None`: s2s messages are authenticated by their JWS,
    /// user-agent requests by the session id, health is open).
    pub(crate) auth: Option<Scope>,
}

const BOTH: &[Role] = &[Role::Visited, Role::Home];
const VISITED: &[Role] = &[Role::Visited];
const HOME: &[Role] = &[Role::Home];

/// The route table: the router is built from it, the OpenAPI test checks it.
pub(crate) const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/roam/v1/health",
        roles: BOTH,
        op: Op::Health,
        auth: None,
    },
    Route {
        method: "POST",
        path: "/roam/v1/admin/registry/updates",
        roles: BOTH,
        op: Op::RegistryUpdate,
        auth: Some(Scope::Admin),
    },
    Route {
        method: "POST",
        path: "/roam/v1/s2s/messages",
        roles: BOTH,
        op: Op::S2sMessage,
        auth: None,
    },
    Route {
        method: "POST",
        path: "/roam/v1/cp/transactions",
        roles: VISITED,
        op: Op::CpStart,
        auth: Some(Scope::Cp),
    },
    Route {
        method: "GET",
        path: "/roam/v1/cp/transactions/{tid}",
        roles: VISITED,
        op: Op::CpStatus,
        auth: Some(Scope::Cp),
    },
    Route {
        method: "GET",
        path: "/roam/v1/cp/accounts/{merchant}",
        roles: VISITED,
        op: Op::CpAccount,
        auth: Some(Scope::Cp),
    },
    Route {
        method: "GET",
        path: "/roam/v1/user/sessions/{session}",
        roles: HOME,
        op: Op::UserContract,
        auth: None,
    },
    Route {
        method: "GET",
        path: "/roam/v1/user/sessions/{session}/status",
        roles: HOME,
        op: Op::UserStatus,
        auth: None,
    },
    Route {
        method: "POST",
        path: "/roam/v1/user/sessions/{session}/pin",
        roles: HOME,
        op: Op::UserPin,
        auth: None,
    },
    Route {
        method: "POST",
        path: "/roam/v1/user/sessions/{session}/signature",
        roles: HOME,
        op: Op::UserSignature,
        auth: None,
    },
    Route {
        method: "GET",
        path: "/roam/v1/admin/subscribers/{subscriber}",
        roles: HOME,
        op: Op::AdminSubscriber,
        auth: Some(Scope::Admin),
    },
];

/// The router of a server of `app.role`.
pub(crate) fn router(app: Arc<App>) -> Router {
    let limit = app.http.max_body_bytes;
    let mut r: Router<Arc<App>> = Router::new();
    for route in ROUTES.iter().filter(|r| r.roles.contains(&app.role)) {
        let mut m = method_router(route);
        if let Some(scope) = route.auth {
            // Checked before the handler runs: a refused request changes nothing.
            m = m.layer(axum::middleware::from_fn_with_state(
                (Arc::clone(&app), scope),
                authorize,
            ));
        }
        r = r.route(route.path, m);
    }
    r.fallback(|| async {
        error(
            StatusCode::NOT_FOUND,
            ErrorCode::MessageInvalid,
            "no such endpoint",
        )
    })
    .layer(DefaultBodyLimit::max(limit))
    .with_state(app)
}

fn method_router(route: &Route) -> MethodRouter<Arc<App>> {
    let m = if route.method == "POST" {
        MethodFilter::POST
    } else {
        MethodFilter::GET
    };
    match route.op {
        Op::Health => on(m, health),
        Op::RegistryUpdate => on(m, registry_update),
        Op::S2sMessage => on(m, s2s_message),
        Op::CpStart => on(m, cp_start),
        Op::CpStatus => on(m, cp_status),
        Op::CpAccount => on(m, cp_account),
        Op::UserContract => on(m, user_contract),
        Op::UserStatus => on(m, user_status),
        Op::UserPin => on(m, user_pin),
        Op::UserSignature => on(m, user_signature),
        Op::AdminSubscriber => on(m, admin_subscriber),
    }
}

/// Lets the request through only with a bearer token of `scope`; otherwise 401.
async fn authorize(
    State((app, scope)): State<(Arc<App>, Scope)>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match app.tokens.check(scope, req.headers()) {
        Ok(grant) => {
            // The content-provider handlers read what the token may see.
            req.extensions_mut().insert(grant);
            next.run(req).await
        }
        Err(refusal) => {
            warn!(path = %req.uri().path(), scope = scope.scheme(), "request without an accepted bearer token refused");
            *refusal
        }
    }
}

/// HTTP status for a wire error code.
pub(crate) fn http_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::UnknownTransaction => StatusCode::NOT_FOUND,
        ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
        ErrorCode::DecryptionFailure | ErrorCode::TransactionDataInvalid => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::TransientFailure => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::PermanentFailure => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::ConnectionFailure => StatusCode::BAD_GATEWAY,
        // MessageInvalid, VersionNotSupported, RequiredElementMissing, FormatInvalid and any later code.
        _ => StatusCode::BAD_REQUEST,
    }
}

fn error(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            code,
            detail: detail.into(),
        }),
    )
        .into_response()
}

fn lib_error(e: &Error) -> Response {
    let code = ErrorCode::from(e);
    error(http_status(code), code, e.to_string())
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

fn parse_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Box<Response>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with("application/json") {
        return Err(Box::new(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::MessageInvalid,
            "expected application/json",
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            ErrorCode::MessageInvalid,
            format!("JSON: {e}"),
        ))
    })
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let core = app.lock();
    let reg = core.machine.registry();
    json_response(
        StatusCode::OK,
        &Health {
            role: app.role.as_str().into(),
            name: app.name.clone(),
            registry_serial: reg.serial(),
            partners: reg.len(),
        },
    )
}

async fn registry_update(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with("application/json") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::MessageInvalid,
            "expected application/json",
        );
    }
    let update = match parse_update_json(&body) {
        Ok(u) => u,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::MessageInvalid,
                e.to_string(),
            );
        }
    };
    let mut core = app.lock();
    // Apply to a copy, make it durable, then swap: all or nothing.
    let mut next = core.machine.registry().clone();
    if let Err(e) = next.apply_update(&update) {
        warn!(error = %e, "registry update refused");
        return error(
            StatusCode::CONFLICT,
            ErrorCode::TransactionDataInvalid,
            e.to_string(),
        );
    }
    let json = match serde_json::to_string(&next.to_config()) {
        Ok(j) => j,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::PermanentFailure,
                e.to_string(),
            );
        }
    };
    if let Err(e) = core.journal.save_registry(next.serial(), &json) {
        tracing::error!(error = %e, "registry update not stored; not applied");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TransientFailure,
            "registry could not be stored",
        );
    }
    let state = RegistryState {
        serial: next.serial(),
        partners: next.len(),
    };
    *core.machine.registry_mut() = next;
    info!(
        serial = state.serial,
        partners = state.partners,
        "registry update applied"
    );
    json_response(StatusCode::OK, &state)
}

/// Server-to-server: one compact JWS per POST. `202` = admitted (a duplicate is answered as
/// before and acted on once); otherwise the wire error code.
async fn s2s_message(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.starts_with(JOSE) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::MessageInvalid,
            "expected application/jose",
        );
    }
    let Ok(jws) = String::from_utf8(body.to_vec()) else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::MessageInvalid,
            "JWS is not UTF-8",
        );
    };
    let jws = jws.trim().to_owned();
    let peek = peek(&jws);
    let (r, _) = app.input(|c| match &mut c.machine {
        Machine::Visited(v) => v.handle_input(now(), VisitedInput::Receive { jws }),
        Machine::Home(h) => h.handle_input(now(), HomeInput::Receive { jws }),
    });
    match r {
        Ok(()) => {
            info!(from = %peek.0, tid = %peek.1, message_type = %peek.2, "message admitted");
            json_response(
                StatusCode::ACCEPTED,
                &Accepted {
                    status: "accepted".into(),
                },
            )
        }
        Err(e) => {
            warn!(from = %peek.0, tid = %peek.1, message_type = %peek.2, error = %e, "message refused");
            lib_error(&e)
        }
    }
}

/// Sender, transaction and type of a message, unverified, for logs only.
fn peek(jws: &str) -> (String, String, String) {
    let parsed = mec_roaming::jose::jws::parse_compact(jws).ok();
    let env = parsed
        .as_ref()
        .and_then(|p| parse_envelope(p.unverified_payload()).ok());
    match env {
        Some(e) => (e.iss, e.tid.to_string(), e.body.type_name().to_owned()),
        None => ("?".into(), "?".into(), "?".into()),
    }
}

/// 403 for a merchant-bound content-provider token used for another merchant.
fn other_merchant(what: &str, merchant: &str) -> Response {
    warn!(
        merchant,
        what, "content-provider token bound to another merchant refused"
    );
    error(
        StatusCode::FORBIDDEN,
        ErrorCode::AccessDenied,
        "this content-provider token is not for that merchant",
    )
}

/// The merchant of a start request stored as JSON in the journal.
fn merchant_of(request: Option<&str>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(request?).ok()?;
    v.get("merchant")?.as_str().map(str::to_owned)
}

async fn cp_start(
    State(app): State<Arc<App>>,
    Extension(grant): Extension<CpGrant>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: StartTransaction = match parse_json(&headers, &body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if let Err(why) = req.check() {
        return error(StatusCode::BAD_REQUEST, ErrorCode::FormatInvalid, why);
    }
    if !grant.covers(&req.merchant) {
        return other_merchant("start", &req.merchant);
    }
    let request_text = serde_json::to_string(&req).unwrap_or_default();
    let (r, _) = app.input(|c| {
        let Machine::Visited(v) = &mut c.machine else {
            return Err(Error::Input("not a visited server"));
        };
        // cpRef is the content provider's idempotency key, per merchant: a retried start gets
        // the first transaction back, a different request under the same cpRef is refused.
        match c.journal.tx_by_cp_ref(&req.cp_ref, |r| {
            merchant_of(r).as_deref() == Some(req.merchant.as_str())
        }) {
            Ok(Some((tid, stored))) => {
                return Ok(if stored.as_deref() == Some(request_text.as_str()) {
                    Started::Existing(tid)
                } else {
                    Started::Conflict
                });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "journal read failed");
                return Err(Error::Store("journal".into()));
            }
        }
        let tid = v.start(now(), req.to_start())?;
        let state = v.state(&tid).map_or("failed", visited_state);
        if let Err(e) = c.journal.upsert_tx(
            "",
            tid.as_str(),
            state,
            &TxFields {
                cp_ref: Some(&req.cp_ref),
                request: Some(&request_text),
                ..TxFields::default()
            },
        ) {
            tracing::error!(error = %e, "journal write failed");
        }
        Ok(Started::New(tid.to_string()))
    });
    let (status, tid) = match r {
        Ok(Started::New(tid)) => {
            info!(%tid, cp_ref = %req.cp_ref, request_type = ?req.request_type, "transaction started");
            (StatusCode::CREATED, tid)
        }
        Ok(Started::Existing(tid)) => {
            info!(%tid, cp_ref = %req.cp_ref, "repeated start answered with the existing transaction");
            (StatusCode::OK, tid)
        }
        Ok(Started::Conflict) => {
            return error(
                StatusCode::CONFLICT,
                ErrorCode::TransactionDataInvalid,
                "cpRef already used for another request",
            );
        }
        Err(e) => return lib_error(&e),
    };
    match status_of(&app, &tid) {
        Some(s) => json_response(status, &s),
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::PermanentFailure,
            "transaction not journaled",
        ),
    }
}

/// What a start request did.
enum Started {
    New(String),
    Existing(String),
    Conflict,
}

fn status_of(app: &App, tid: &str) -> Option<TransactionStatus> {
    let core = app.lock();
    let row = core.journal.tx("", tid).ok().flatten()?;
    let live = match (&core.machine, TransactionId::parse(tid)) {
        (Machine::Visited(v), Ok(t)) => v.state(&t).map(visited_state),
        _ => None,
    };
    let events: Vec<CpEventJson> = core
        .journal
        .events(tid)
        .ok()?
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    Some(TransactionStatus {
        transaction_id: tid.to_owned(),
        cp_ref: row.cp_ref.unwrap_or_default(),
        state: live.map_or(row.state, str::to_owned),
        user_url: row.user_url,
        outcome: row.outcome.and_then(|o| serde_json::from_str(&o).ok()),
        events,
    })
}

async fn cp_status(
    State(app): State<Arc<App>>,
    Extension(grant): Extension<CpGrant>,
    Path(tid): Path<String>,
) -> Response {
    if TransactionId::parse(&tid).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::FormatInvalid,
            "transaction id",
        );
    }
    // Another merchant's transaction answers exactly as an unknown one: a merchant-bound token
    // learns nothing about other merchants' transaction ids.
    let visible = match &grant {
        CpGrant::AllMerchants => true,
        CpGrant::Merchant(m) => {
            let row = app.lock().journal.tx("", &tid).ok().flatten();
            let theirs = row.is_some_and(|r| merchant_of(r.request.as_deref()).as_ref() == Some(m));
            if !theirs {
                warn!(%tid, merchant = %m, "status of a transaction outside the token's merchant answered as unknown");
            }
            theirs
        }
    };
    match status_of(&app, &tid).filter(|_| visible) {
        Some(s) => json_response(StatusCode::OK, &s),
        None => error(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownTransaction,
            "unknown transaction",
        ),
    }
}

async fn cp_account(
    State(app): State<Arc<App>>,
    Extension(grant): Extension<CpGrant>,
    Path(merchant): Path<String>,
) -> Response {
    if !grant.covers(&merchant) {
        return other_merchant("account", &merchant);
    }
    let core = app.lock();
    let Machine::Visited(v) = &core.machine else {
        return error(
            StatusCode::NOT_FOUND,
            ErrorCode::MessageInvalid,
            "not a visited server",
        );
    };
    match v.acquirer().balances(&merchant) {
        Ok(balances) => json_response(StatusCode::OK, &MerchantAccount { merchant, balances }),
        Err(e) => lib_error(&e),
    }
}

fn valid_session(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn user(app: &App, session: String, request: UserRequest) -> Response {
    if !valid_session(&session) {
        return json_response(StatusCode::NOT_FOUND, &UserReplyJson::UnknownSession);
    }
    let s2 = session.clone();
    let (r, replies) = app.input(|c| match &mut c.machine {
        Machine::Home(h) => h.handle_input(
            now(),
            HomeInput::User {
                session: s2,
                request,
            },
        ),
        Machine::Visited(_) => Err(Error::Input("not a home server")),
    });
    if let Err(e) = r {
        return lib_error(&e);
    }
    let reply = replies
        .into_iter()
        .find(|(s, _)| *s == session)
        .map(|(_, r)| r)
        .unwrap_or(UserReply::UnknownSession);
    let status = match &reply {
        UserReply::UnknownSession => StatusCode::NOT_FOUND,
        UserReply::Refused { .. } => StatusCode::CONFLICT,
        _ => StatusCode::OK,
    };
    json_response(status, &UserReplyJson::from(reply))
}

async fn user_contract(State(app): State<Arc<App>>, Path(session): Path<String>) -> Response {
    user(&app, session, UserRequest::FetchContract)
}

async fn user_status(State(app): State<Arc<App>>, Path(session): Path<String>) -> Response {
    user(&app, session, UserRequest::Status)
}

async fn user_pin(
    State(app): State<Arc<App>>,
    Path(session): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: SubmitPin = match parse_json(&headers, &body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let pin = match Pin::parse(&req.pin) {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::FormatInvalid,
                e.to_string(),
            );
        }
    };
    user(
        &app,
        session,
        UserRequest::SubmitPin {
            pin,
            method: req.method,
        },
    )
}

async fn user_signature(
    State(app): State<Arc<App>>,
    Path(session): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: SubmitSignature = match parse_json(&headers, &body) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    user(
        &app,
        session,
        UserRequest::SubmitDeviceSignature {
            signature: req.signature,
        },
    )
}

async fn admin_subscriber(State(app): State<Arc<App>>, Path(subscriber): Path<String>) -> Response {
    let Ok(id) = E164::parse(&subscriber) else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::FormatInvalid,
            "subscriber id must be +<digits>",
        );
    };
    let core = app.lock();
    let Machine::Home(h) = &core.machine else {
        return error(
            StatusCode::NOT_FOUND,
            ErrorCode::MessageInvalid,
            "not a home server",
        );
    };
    let store = h.store();
    let record = match store.subscriber(&id) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                ErrorCode::UnknownTransaction,
                "unknown subscriber",
            );
        }
        Err(e) => return lib_error(&e),
    };
    let wallet = match store.wallet_balance(&id) {
        Ok(w) => w,
        Err(e) => return lib_error(&e),
    };
    json_response(
        StatusCode::OK,
        &SubscriberInfo {
            subscriber: id.to_string(),
            pin_tries_left: record.pin_tries_left,
            payment_methods: record.payment_methods,
            wallet,
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn openapi() -> serde_json::Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/roaming-openapi.json");
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Every route the servers register is in the OpenAPI document, and nothing else is.
    #[test]
    fn openapi_document_matches_the_route_table() {
        let doc = openapi();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["get", "post", "put", "delete", "patch"] {
                if item.get(method).is_some() {
                    documented.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let registered: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        assert_eq!(
            registered.len(),
            ROUTES.len(),
            "duplicate route in the table"
        );
        let missing: Vec<_> = registered.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&registered).collect();
        assert!(
            missing.is_empty(),
            "routes missing from docs/roaming-openapi.json: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "documented routes the servers do not register: {extra:?}"
        );
        // Which server serves a path is documented with x-mec-roles.
        for r in ROUTES {
            let op = &doc["paths"][r.path][r.method.to_lowercase()];
            let roles: BTreeSet<&str> = op["x-mec-roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let ours: BTreeSet<&str> = r.roles.iter().map(|r| r.as_str()).collect();
            assert_eq!(roles, ours, "x-mec-roles of {} {}", r.method, r.path);
        }
    }

    /// Every route's bearer-token scope is its OpenAPI `security`, with 401 documented; the
    /// others declare no HTTP security (`security: []`).
    #[test]
    fn openapi_security_matches_the_route_table() {
        let doc = openapi();
        for scope in [Scope::Cp, Scope::Admin] {
            let s = &doc["components"]["securitySchemes"][scope.scheme()];
            assert_eq!(
                (s["type"].as_str(), s["scheme"].as_str()),
                (Some("http"), Some("bearer")),
                "{}",
                scope.scheme()
            );
        }
        for r in ROUTES {
            let op = &doc["paths"][r.path][r.method.to_lowercase()];
            let expected = match r.auth {
                Some(scope) => serde_json::json!([{ scope.scheme(): [] }]),
                None => serde_json::json!([]),
            };
            assert_eq!(
                op["security"], expected,
                "security of {} {}",
                r.method, r.path
            );
            assert_eq!(
                r.auth.is_some(),
                op["responses"].get("401").is_some(),
                "401 of {} {}",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn every_wire_code_has_an_http_status() {
        for c in [
            101u16, 102, 201, 203, 301, 302, 303, 305, 402, 403, 404, 405,
        ] {
            let s = http_status(ErrorCode::try_from(c).unwrap());
            assert!(s.is_client_error() || s.is_server_error(), "{c}");
        }
        assert_eq!(http_status(ErrorCode::AccessDenied), StatusCode::FORBIDDEN);
    }

    #[test]
    fn user_sessions_prefix_is_a_route() {
        assert!(
            ROUTES
                .iter()
                .any(|r| r.path == format!("{USER_SESSIONS}/{{session}}"))
        );
    }
}
