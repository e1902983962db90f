//! Reaching the storage account: connection strings, SAS URLs, endpoints with a credential, or
//! a caller's container client, resolved in one place into the container client a store uses.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::{ClientOptions, RetryOptions, Url};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use leader_election::BuildError;
use leader_election::backend::{Secret, quoted};

use crate::builder::DEFAULT_CONTAINER_NAME;
use crate::names::check_container_name;
use crate::shared_key::{AccountKey, SharedKeyPolicy};

/// Azurite's well-known development account (public, documented by Microsoft).
pub(crate) const DEV_ACCOUNT: &str = "devstoreaccount1";
pub(crate) const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How requests are authorized.
#[derive(Debug)]
pub(crate) enum Auth {
    /// Signed with the account key (SharedKey).
    SharedKey(AccountKey),
    /// A SAS token in the URL's query.
    Sas,
}

/// Where the blob service is and how to authorize against it.
#[derive(Debug)]
pub(crate) struct Target {
    /// The blob service URL, without a trailing slash; its query holds the SAS, if any.
    pub(crate) service: Url,
    pub(crate) auth: Auth,
}

/// A setting's name as an error message may show it: quoted (and cut, see
/// [`quoted`]) if it looks like a name, hidden if it may be part of a secret (a misplaced
/// `=` in a base64 account key or SAS would otherwise put the secret in the message).
fn setting(key: &str) -> String {
    if key.len() <= 40 && key.bytes().all(|b| b.is_ascii_alphabetic()) {
        quoted(key)
    } else {
        "(a name that is not shown, as it may be part of a secret)".to_owned()
    }
}

/// A URL as an error message may show it: without credentials, query (a SAS) or fragment,
/// quoted and cut; a placeholder if it does not parse (it may hold a secret).
fn shown_url(text: &str) -> String {
    match Url::parse(text.trim()) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            quoted(url.as_str())
        }
        Err(_) => "(not shown: not a URL, and it may hold a secret)".to_owned(),
    }
}

fn invalid_url(field: &'static str, text: &str, reason: &str) -> BuildError {
    BuildError::InvalidUrl {
        field,
        url: shown_url(text),
        reason: reason.to_owned(),
    }
}

fn invalid(message: impl Into<String>) -> BuildError {
    BuildError::InvalidConnectionString(message.into())
}

/// Parses a connection string. Error messages name settings, never their values.
pub(crate) fn parse_connection_string(text: &str) -> Result<Target, BuildError> {
    let mut account_name = None;
    let mut account_key = None;
    let mut sas = None;
    let mut blob_endpoint = None;
    let mut protocol = None;
    let mut suffix = None;
    let mut development = false;
    let mut proxy = None;
    for (index, part) in text.split(';').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, value)) = part.split_once('=') else {
            return Err(invalid(format!(
                "part {} is not of the form Name=Value",
                index + 1
            )));
        };
        let key = key.trim();
        let value = value.trim();
        if value.is_empty() {
            return Err(invalid(format!("{} has no value", setting(key))));
        }
        let slot = match key.to_ascii_lowercase().as_str() {
            "accountname" => &mut account_name,
            "accountkey" => &mut account_key,
            "sharedaccesssignature" => &mut sas,
            "blobendpoint" => &mut blob_endpoint,
            "defaultendpointsprotocol" => &mut protocol,
            "endpointsuffix" => &mut suffix,
            "developmentstorageproxyuri" => &mut proxy,
            "usedevelopmentstorage" => {
                if !value.eq_ignore_ascii_case("true") {
                    return Err(invalid("`UseDevelopmentStorage` must be `true`"));
                }
                development = true;
                continue;
            }
            // Endpoints of the other services do not matter here.
            "queueendpoint" | "tableendpoint" | "fileendpoint" | "dfsendpoint" => continue,
            _ => return Err(invalid(format!("unknown setting {}", setting(key)))),
        };
        if slot.replace(value.to_owned()).is_some() {
            return Err(invalid(format!("{} is given twice", setting(key))));
        }
    }

    if development {
        if account_key.is_some() || sas.is_some() || account_name.is_some() {
            return Err(invalid(
                "`UseDevelopmentStorage=true` cannot be combined with account settings",
            ));
        }
        let host = proxy.unwrap_or_else(|| "http://127.0.0.1".into());
        let endpoint = blob_endpoint
            .unwrap_or_else(|| format!("{}:10000/{DEV_ACCOUNT}", host.trim_end_matches('/')));
        let key = AccountKey::new(DEV_ACCOUNT, DEV_KEY)
            .ok_or_else(|| invalid("the development account key is invalid"))?;
        return Ok(Target {
            service: service_url(&endpoint, "BlobEndpoint")?,
            auth: Auth::SharedKey(key),
        });
    }

    let endpoint = match (blob_endpoint, &account_name) {
        (Some(endpoint), _) => endpoint,
        (None, Some(account)) => {
            let protocol = protocol.as_deref().unwrap_or("https");
            if !matches!(protocol, "http" | "https") {
                return Err(invalid(
                    "`DefaultEndpointsProtocol` must be `http` or `https`",
                ));
            }
            let suffix = suffix.as_deref().unwrap_or("core.windows.net");
            format!("{protocol}://{account}.blob.{suffix}")
        }
        (None, None) => return Err(invalid("needs `AccountName` or `BlobEndpoint`")),
    };
    let mut service = service_url(&endpoint, "BlobEndpoint")?;
    let auth = match (account_key, sas) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "give either `AccountKey` or `SharedAccessSignature`, not both",
            ));
        }
        (Some(key), None) => {
            let account =
                account_name.ok_or_else(|| invalid("`AccountKey` needs `AccountName`"))?;
            let key = AccountKey::new(account, &key)
                .ok_or_else(|| invalid("`AccountKey` is not valid base64"))?;
            Auth::SharedKey(key)
        }
        (None, Some(sas)) => {
            let sas = sas.trim_start_matches('?');
            if !has_signature(sas) {
                return Err(invalid("`SharedAccessSignature` has no signature (`sig`)"));
            }
            service.set_query(Some(sas));
            Auth::Sas
        }
        (None, None) => {
            return Err(invalid("needs `AccountKey` or `SharedAccessSignature`"));
        }
    };
    Ok(Target { service, auth })
}

/// A blob service URL with a SAS token in its query.
pub(crate) fn parse_sas_url(text: &str) -> Result<Target, BuildError> {
    let url =
        Url::parse(text.trim()).map_err(|_| invalid_url("sas_url", text, "not a valid URL"))?;
    if !url.query().is_some_and(has_signature) {
        return Err(invalid_url(
            "sas_url",
            text,
            "has no SAS signature (`sig` in the query)",
        ));
    }
    let query = url.query().map(str::to_owned);
    let mut bare = url;
    bare.set_query(None);
    let mut service = service_url(bare.as_str(), "sas_url")?;
    service.set_query(query.as_deref());
    Ok(Target {
        service,
        auth: Auth::Sas,
    })
}

fn has_signature(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair.to_ascii_lowercase().starts_with("sig=") && pair.len() > 4)
}

/// Parses a blob service URL: http(s), no query or fragment, no trailing slash (which would
/// break path-style URLs such as Azurite's).
pub(crate) fn service_url(text: &str, field: &'static str) -> Result<Url, BuildError> {
    let error = |reason: &str| invalid_url(field, text, reason);
    let mut url = Url::parse(text.trim()).map_err(|_| error("not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(error("must be http or https"));
    }
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(error(
            "must be a blob service URL such as https://account.blob.core.windows.net",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(error("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(error("must not contain credentials"));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// The container URL under `service`, keeping the service URL's query (a SAS).
pub(crate) fn container_url(service: &Url, container: &str) -> Url {
    let mut url = service.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(container);
    }
    url
}

/// The host (and port) of a URL, for logs and `Debug`.
pub(crate) fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => String::new(),
    }
}

// === impl Account ===

/// The ways to reach the storage account that a builder was given: exactly one of a
/// connection string, a SAS URL, an endpoint with a credential, or a container client.
#[derive(Default)]
pub(crate) struct Account {
    pub(crate) connection_string: Option<Secret>,
    pub(crate) sas_url: Option<Secret>,
    pub(crate) endpoint: Option<String>,
    pub(crate) credential: Option<Arc<dyn TokenCredential>>,
    pub(crate) container_client: Option<BlobContainerClient>,
}

impl Account {
    /// The client of the container `container_name` (default: [`DEFAULT_CONTAINER_NAME`]),
    /// and that name. A client made here sends `api_version`, signs with SharedKey for an
    /// account key, and never retries (the core retries, within the lease).
    pub(crate) fn container_client(
        self,
        container_name: Option<String>,
        api_version: String,
    ) -> Result<(BlobContainerClient, String), BuildError> {
        let conflict = |reason: &str| Err(BuildError::ConflictingConnection(reason.to_owned()));
        if let Some(client) = self.container_client {
            if self.connection_string.is_some()
                || self.sas_url.is_some()
                || self.endpoint.is_some()
                || self.credential.is_some()
            {
                return conflict("container_client cannot be combined with other account settings");
            }
            if container_name.is_some() {
                return conflict("container_client names its container; do not set container_name");
            }
            let name = client
                .url()
                .path_segments()
                .and_then(|mut segments| segments.rfind(|s| !s.is_empty()))
                .unwrap_or_default()
                .to_owned();
            check_container_name(&name)?;
            return Ok((client, name));
        }

        let container_name = container_name.unwrap_or_else(|| DEFAULT_CONTAINER_NAME.to_owned());
        check_container_name(&container_name)?;
        let sources = [
            self.connection_string.is_some(),
            self.sas_url.is_some(),
            self.endpoint.is_some(),
        ];
        match sources.iter().filter(|set| **set).count() {
            0 if self.credential.is_some() => return conflict("credential needs endpoint"),
            0 => {
                return Err(BuildError::MissingConnection {
                    backend: "Azure Blob",
                    hint: "set connection_string, sas_url, endpoint + credential, or \
                           container_client",
                });
            }
            1 => {}
            _ => return conflict("set only one of connection_string, sas_url and endpoint"),
        }
        if self.credential.is_some() != self.endpoint.is_some() {
            return conflict("endpoint and credential go together");
        }

        let (target, credential) = if let Some(text) = &self.connection_string {
            (parse_connection_string(text.expose())?, None)
        } else if let Some(text) = &self.sas_url {
            (parse_sas_url(text.expose())?, None)
        } else {
            let endpoint = self.endpoint.as_deref().unwrap_or_default();
            let service = service_url(endpoint, "endpoint")?;
            (
                Target {
                    service,
                    auth: Auth::Sas,
                },
                self.credential,
            )
        };

        let mut per_try: Vec<Arc<dyn Policy>> = Vec::new();
        if let Auth::SharedKey(key) = target.auth {
            per_try.push(Arc::new(SharedKeyPolicy::new(key)));
        }
        let client_options = BlobContainerClientOptions {
            client_options: ClientOptions {
                // The core retries, within the lease; the SDK's default retries take over a
                // minute when the service is down.
                retry: RetryOptions::none(),
                per_try_policies: per_try,
                ..ClientOptions::default()
            },
            version: api_version,
        };
        let url = container_url(&target.service, &container_name);
        let client =
            BlobContainerClient::new(url, credential, Some(client_options)).map_err(|e| {
                BuildError::Client {
                    backend: "Azure Blob",
                    reason: crate::error::redact(&e.to_string()),
                }
            })?;
        Ok((client, container_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "c2VjcmV0LWFjY291bnQta2V5LXZhbHVl";

    #[test]
    fn account_key_strings_build_the_public_endpoint() {
        let t = parse_connection_string(&format!(
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net"
        ))
        .unwrap();
        assert_eq!(t.service.as_str(), "https://acct.blob.core.windows.net/");
        assert!(matches!(t.auth, Auth::SharedKey(_)));
        assert!(!format!("{t:?}").contains(KEY));
    }

    #[test]
    fn development_storage_points_at_azurite() {
        let t = parse_connection_string("UseDevelopmentStorage=true").unwrap();
        assert_eq!(
            t.service.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        let t = parse_connection_string(
            "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://azurite",
        )
        .unwrap();
        assert_eq!(t.service.as_str(), "http://azurite:10000/devstoreaccount1");
    }

    #[test]
    fn blob_endpoint_with_trailing_slash_is_trimmed() {
        let t = parse_connection_string(&format!(
            "AccountName=devstoreaccount1;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:1234/devstoreaccount1/"
        ))
        .unwrap();
        assert_eq!(t.service.as_str(), "http://127.0.0.1:1234/devstoreaccount1");
        assert_eq!(
            container_url(&t.service, "c").as_str(),
            "http://127.0.0.1:1234/devstoreaccount1/c"
        );
    }

    #[test]
    fn sas_strings_keep_the_token_in_the_query() {
        let t = parse_connection_string(
            "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=?sv=2025-11-05&sig=abc",
        )
        .unwrap();
        assert_eq!(t.service.query(), Some("sv=2025-11-05&sig=abc"));
        assert_eq!(
            container_url(&t.service, "c").as_str(),
            "https://acct.blob.core.windows.net/c?sv=2025-11-05&sig=abc"
        );
    }

    #[test]
    fn malformed_strings_never_echo_the_key() {
        let cases = [
            format!("AccountName=acct;AccountKey={KEY}!!"),
            format!("AccountName=acct;AccountKey={KEY};AccountKey={KEY}"),
            format!("AccountName=acct;{KEY}"),
            // A padded key where a setting belongs: its part before `=` is not a name.
            format!("AccountName=acct;{KEY}=="),
            format!("AccountName=acct;{KEY}="),
            format!("AccountKey={KEY}"),
            format!("AccountName=acct;AccountKey={KEY};SharedAccessSignature=sig={KEY}"),
            format!("AccountName=acct;AccountKey={KEY};Bogus={KEY}"),
            format!("AccountName=acct;AccountKey={KEY};DefaultEndpointsProtocol=ftp"),
            "AccountName=acct".to_owned(),
            "UseDevelopmentStorage=false".to_owned(),
            String::new(),
        ];
        for case in cases {
            let err = parse_connection_string(&case).expect_err(&case).to_string();
            assert!(!err.contains(KEY) && !err.contains("c2Vj"), "{err}");
        }
        let err = parse_connection_string("AccountName=a;AccountKye=x").unwrap_err();
        assert!(err.to_string().contains("\"AccountKye\""), "{err}");
    }

    #[test]
    fn sas_urls_need_a_signature() {
        let t = parse_sas_url("http://127.0.0.1:10000/devstoreaccount1/?sv=1&sig=x").unwrap();
        assert_eq!(
            container_url(&t.service, "c").as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/c?sv=1&sig=x"
        );
        assert!(parse_sas_url("https://acct.blob.core.windows.net/?sv=1").is_err());
        assert!(parse_sas_url("not a url").is_err());
    }

    #[test]
    fn service_urls_are_checked() {
        assert!(service_url("ftp://x", "endpoint").is_err());
        assert!(service_url("https://x/?a=b", "endpoint").is_err());
        assert!(service_url("https://u:p@x/", "endpoint").is_err());
        assert_eq!(
            service_url("https://acct.blob.core.windows.net/", "endpoint")
                .unwrap()
                .as_str(),
            "https://acct.blob.core.windows.net/"
        );
    }
}
