//! SharedKey request signing, which the Azure SDK for Rust 1.x does not offer: an HTTP pipeline
//! policy that signs every try of a request with the storage account key.
//!
//! The string to sign is described in "Authorize with Shared Key" of the Azure Storage REST
//! documentation (service version 2015-02-21 and later).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use azure_core::time::{OffsetDateTime, to_rfc7231};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// An account name and its decoded key. `Debug` shows the name only.
#[derive(Clone)]
pub(crate) struct AccountKey {
    pub(crate) account: String,
    key: Arc<[u8]>,
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl AccountKey {
    /// Decodes a base64 account key; `None` if it is not valid base64 or empty. The key is never
    /// part of any error.
    pub(crate) fn new(account: impl Into<String>, key_base64: &str) -> Option<Self> {
        let key = STANDARD.decode(key_base64.trim()).ok()?;
        if key.is_empty() {
            return None;
        }
        Some(Self {
            account: account.into(),
            key: key.into(),
        })
    }

    fn sign(&self, string_to_sign: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(string_to_sign.as_bytes());
        STANDARD.encode(mac.finalize().into_bytes())
    }
}

/// The pipeline policy that adds `x-ms-date` and a SharedKey `Authorization` header.
#[derive(Debug)]
pub(crate) struct SharedKeyPolicy {
    key: AccountKey,
}

impl SharedKeyPolicy {
    pub(crate) fn new(key: AccountKey) -> Self {
        Self { key }
    }
}

#[async_trait]
impl Policy for SharedKeyPolicy {
    // `Context<'_>` would make the lifetime early-bound, which the trait's does not allow.
    #[allow(elided_lifetimes_in_paths)]
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        request.insert_header("x-ms-date", to_rfc7231(&OffsetDateTime::now_utc()));
        let string_to_sign = string_to_sign(&self.key.account, request);
        let signature = self.key.sign(&string_to_sign);
        request.insert_header(
            "authorization",
            format!("SharedKey {}:{signature}", self.key.account),
        );
        next[0].send(ctx, request, &next[1..]).await
    }
}

/// The canonical string that SharedKey signs.
pub(crate) fn string_to_sign(account: &str, request: &Request) -> String {
    let header = |name: &str| -> String {
        request
            .headers()
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str().trim().to_owned())
            .unwrap_or_default()
    };
    // Since service version 2015-02-21 an empty body signs as an empty Content-Length.
    let content_length = match request.body().len() {
        Some(0) => String::new(),
        Some(len) => len.to_string(),
        None => header("content-length"),
    };
    let mut out = String::with_capacity(256);
    out.push_str(request.method().as_str());
    out.push('\n');
    for name in ["content-encoding", "content-language"] {
        out.push_str(&header(name));
        out.push('\n');
    }
    out.push_str(&content_length);
    out.push('\n');
    for name in [
        "content-md5",
        "content-type",
        "date",
        "if-modified-since",
        "if-match",
        "if-none-match",
        "if-unmodified-since",
        "range",
    ] {
        out.push_str(&header(name));
        out.push('\n');
    }
    out.push_str(&canonicalized_headers(request));
    out.push_str(&canonicalized_resource(account, request));
    out
}

fn canonicalized_headers(request: &Request) -> String {
    let mut headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_ascii_lowercase(), v.as_str()))
        .filter(|(n, _)| n.starts_with("x-ms-"))
        .map(|(n, v)| (n, v.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    headers.sort();
    let mut out = String::new();
    for (name, value) in headers {
        out.push_str(&name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
    }
    out
}

fn canonicalized_resource(account: &str, request: &Request) -> String {
    let url = request.url();
    let mut out = format!("/{account}{}", url.path());
    let mut params: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect();
    params.sort();
    let mut i = 0;
    while i < params.len() {
        let name = params[i].0.clone();
        let mut values = Vec::new();
        while i < params.len() && params[i].0 == name {
            values.push(params[i].1.clone());
            i += 1;
        }
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use azure_core::http::{Method, Url};

    use super::*;

    #[test]
    fn string_to_sign_follows_the_documented_layout() {
        let url =
            Url::parse("http://127.0.0.1:10000/devstoreaccount1/c/b?comp=lease&timeout=2&Comp2=x")
                .unwrap();
        let mut request = Request::new(url, Method::Put);
        request.insert_header("x-ms-version", "2025-11-05");
        request.insert_header("x-ms-lease-action", "acquire");
        request.insert_header("if-match", "\"0x1\"");
        request.insert_header("x-ms-date", "Thu, 26 Nov 2026 09:00:00 GMT");
        let s = string_to_sign("devstoreaccount1", &request);
        assert_eq!(
            s,
            "PUT\n\n\n\n\n\n\n\n\"0x1\"\n\n\n\n\
             x-ms-date:Thu, 26 Nov 2026 09:00:00 GMT\n\
             x-ms-lease-action:acquire\n\
             x-ms-version:2025-11-05\n\
             /devstoreaccount1/devstoreaccount1/c/b\ncomp:lease\ncomp2:x\ntimeout:2"
        );
    }

    #[test]
    fn account_key_debug_hides_the_key() {
        let key = AccountKey::new("acct", "c2VjcmV0LWtleQ==").unwrap();
        let shown = format!("{key:?}");
        assert!(
            !shown.contains("c2VjcmV0") && !shown.contains("secret"),
            "{shown}"
        );
        assert!(AccountKey::new("acct", "not base64!").is_none());
    }
}
