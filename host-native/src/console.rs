//! The web console under `/console`: a page for operators, protected by the admin key.
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /console` | the console page, or 401 with a login form when not signed in |
//! | `POST /console/login` (form `key=...`) | 303 to `/console` with a session cookie; 401 and the form again for a wrong key |
//! | `POST /console/logout` | 303 to `/console`, cookie cleared |
//! | `GET /console/console.js`, `/console/console.css` | the page's assets (the script needs a session) |
//! | `GET /console/api/{info,clients,rooms,metrics}` | the engine's `serverInfo`, `clients`, `rooms`, `metrics` as JSON |
//!
//! Signing in: the admin key as for the admin API (`Authorization: Bearer KEY` or
//! `X-Admin-Key`), or the session cookie the login form sets. The cookie holds
//! HMAC-SHA256(admin key, a fixed label), never the key itself: it is `HttpOnly`,
//! `SameSite=Strict`, scoped to `/console`, and stops working when the admin key
//! changes. The API is read-only; writes stay on `/admin/` with the key.
//!
//! The page (`host-native/console/index.html`, `login.html`, `console.css`) and its
//! script `console.js` are compiled in. The script is built from
//! `client-js/console/app.ts` by `client-js/scripts/build.mjs`, bundled with
//! `@switchboard/client` (the page's message tester connects through it), and committed;
//! no CDN is involved.

use std::sync::Arc;

use bytes::Bytes;
use engine::{Command, ErrorCode};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use sha2::Sha256;

use crate::response::{json_error, truncate, Body};
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../console/index.html");
const LOGIN_HTML: &str = include_str!("../console/login.html");
const CONSOLE_JS: &str = include_str!("../console/console.js");
const CONSOLE_CSS: &str = include_str!("../console/console.css");

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "switchboard_console";
/// Lifetime of the session cookie in the browser, in seconds (12 h).
const COOKIE_MAX_AGE: u32 = 12 * 3600;
/// Largest login form body.
const MAX_LOGIN_BODY: usize = 4096;
/// The placeholder in `login.html` that carries the error line.
const LOGIN_ERROR_SLOT: &str = "<!--error-->";

/// Whether `path` belongs to the console (the HTTP router's hook).
pub fn owns(path: &str) -> bool {
    path == "/console" || path.starts_with("/console/")
}

/// Answer one `/console...` request.
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let method = req.method().clone();
    let signed_in = signed_in(&state, &req);
    let get = method == Method::GET || method == Method::HEAD;
    match (path.as_str(), signed_in) {
        ("/console", true) if get => page(StatusCode::OK, INDEX_HTML),
        ("/console", false) if get => login_page(StatusCode::UNAUTHORIZED, None),
        ("/console/login", _) if method == Method::POST => login(&state, req).await,
        ("/console/logout", _) if method == Method::POST => see_other(Some(&clear_cookie())),
        ("/console/console.css", _) if get => asset("text/css; charset=utf-8", CONSOLE_CSS),
        ("/console/console.js", true) if get => asset("text/javascript; charset=utf-8", CONSOLE_JS),
        (p, true) if get && p.starts_with("/console/api/") => {
            let cmd = match &p["/console/api/".len()..] {
                "info" => Command::ServerInfo,
                "clients" => Command::Clients,
                "rooms" => Command::Rooms,
                "metrics" => Command::Metrics,
                _ => return not_found(&method, &path),
            };
            let mut r = crate::admin::command(&state, cmd).await;
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        (_, false) if get && path != "/console/login" && path != "/console/logout" => json_error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "the console needs the admin key: sign in at /console",
        ),
        _ => not_found(&method, &path),
    }
}

fn not_found(method: &Method, path: &str) -> Response<Body> {
    json_error(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("nothing at {method} {} in the console", truncate(path, 200)),
    )
}

/// The session cookie's value for this admin key (hex HMAC-SHA256 of a fixed label).
pub fn session_token(admin_key: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(admin_key.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(b"switchboard console session v1");
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn signed_in(state: &AppState, req: &Request<Incoming>) -> bool {
    if crate::admin::authorized(state, req) {
        return true;
    }
    let want = session_token(&state.admin_key);
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE_NAME)
        .any(|(_, value)| crate::admin::constant_time_eq(value.as_bytes(), want.as_bytes()))
}

async fn login(state: &AppState, req: Request<Incoming>) -> Response<Body> {
    let body = match Limited::new(req.into_body(), MAX_LOGIN_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                format!("the login form is limited to {MAX_LOGIN_BODY} bytes"),
            )
        }
    };
    let key = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !key.is_empty()
        && crate::admin::constant_time_eq(key.trim().as_bytes(), state.admin_key.as_bytes())
    {
        let cookie = format!(
            "{COOKIE_NAME}={}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE}",
            session_token(&state.admin_key)
        );
        see_other(Some(&cookie))
    } else {
        tracing::warn!("console: sign-in with a wrong admin key");
        login_page(StatusCode::UNAUTHORIZED, Some("That is not the admin key."))
    }
}

fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn see_other(cookie: Option<&str>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut()
        .insert(LOCATION, HeaderValue::from_static("/console"));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    r
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response<Body> {
    let html = match error {
        Some(e) => LOGIN_HTML.replace(LOGIN_ERROR_SLOT, &format!("<p class=\"error\">{e}</p>")),
        None => LOGIN_HTML.to_string(),
    };
    page(status, html)
}

/// An HTML page with headers that keep it to its own origin and out of caches and frames.
fn page(status: StatusCode, html: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(html.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
             style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}
