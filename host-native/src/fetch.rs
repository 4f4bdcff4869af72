//! Key-source fetches: the HTTP GETs the engine asks for with
//! [`engine::HostRequest::Fetch`] (OpenID discovery documents and JWKS).
//!
//! The engine decides what to fetch and when (cache lifetimes, retries, the unknown-`kid`
//! cooldown) and what the answer means; this module only performs the request with
//! `reqwest` over rustls (webpki roots) and reports status, body and `Cache-Control`.
//! Redirects are followed (at most 5) only to URLs the engine itself would accept
//! (`https://`, or `http://` on loopback), and at most [`engine::auth::MAX_FETCH_BODY`]
//! bytes are read.

use std::time::Duration;

use engine::auth::{check_fetch_url, MAX_FETCH_BODY};
use engine::FetchResponse;
use reqwest::redirect::{Attempt, Policy};

/// Performs key-source fetches (cheap to clone: one shared connection pool).
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

fn redirect(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    if attempt.previous().len() >= 5 {
        attempt.error("too many redirects")
    } else if let Err(e) = check_fetch_url(attempt.url().as_str()) {
        attempt.error(format!("refused redirect: {e}"))
    } else {
        attempt.follow()
    }
}

impl Fetcher {
    /// A client with the redirect policy above.
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(Policy::custom(redirect))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { client })
    }

    /// GET `url` within `budget`; never fails: errors come back as `status: 0` + `error`.
    pub async fn get(&self, url: &str, budget: Duration) -> FetchResponse {
        match tokio::time::timeout(budget, self.try_get(url)).await {
            Ok(Ok(r)) => r,
            Ok(Err(error)) => FetchResponse {
                error: Some(error),
                ..FetchResponse::default()
            },
            Err(_) => FetchResponse {
                error: Some(format!("no answer within {} ms", budget.as_millis())),
                ..FetchResponse::default()
            },
        }
    }

    async fn try_get(&self, url: &str) -> Result<FetchResponse, String> {
        let mut resp = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = resp.status().as_u16();
        let cache_control = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
            if body.len() + chunk.len() > MAX_FETCH_BODY {
                return Err(format!("the body is larger than {MAX_FETCH_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
        Ok(FetchResponse {
            status,
            body,
            cache_control,
            error: None,
        })
    }
}

/// An error with its causes ("error sending request: ... : Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
