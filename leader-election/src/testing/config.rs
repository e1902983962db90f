//! The check every backend's configuration type passes: [`check_config`].

use std::fmt::Debug;

use serde::de::value::{Error as ValueError, MapDeserializer};

use crate::backend::{BackendConfig, BuildError};
use crate::builder::ElectionBuilder;

/// What [`check_config`] needs to know of a backend's configuration.
#[derive(Clone, Copy, Debug)]
pub struct ConfigCase<'a> {
    /// Variables for a configuration that builds: the connection (holding
    /// [`secret`](Self::secret)) and any other fields of the backend's section.
    pub vars: &'a [(&'a str, &'a str)],
    /// A secret one of [`vars`](Self::vars) holds, which no `Debug` output may show; none
    /// when the backend's configuration holds no secret.
    pub secret: Option<&'a str>,
    /// A variable of the backend's section whose value its field cannot take, and that
    /// field's name: `("LEADER_ELECTION_MYDB_POOL_SIZE", "many", "pool_size")`; none when
    /// every field takes any text.
    pub invalid: Option<(&'a str, &'a str, &'a str)>,
    /// Whether the configuration has the TLS files (`tls`): a CA file that does not exist is
    /// then refused by `build_store`, naming the setting.
    pub tls: bool,
}

fn owned(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// Checks a backend's configuration type `C` and returns the one loaded from `case.vars`, for
/// the backend to check its own fields:
/// - it loads from the variables, with the election options from `LEADER_ELECTION_<FIELD>`;
/// - neither its `Debug` nor its builder's shows the secret;
/// - a value that does not parse is refused naming the field and the variable, and a
///   variable of its section that names no field is refused;
/// - an unknown field is refused by serde too (`deny_unknown_fields`);
/// - the default configuration (no connection) fails `build_store` with
///   [`BuildError::MissingConnection`], and election options that break a rule fail it with
///   [`BuildError::Options`];
/// - with [`tls`](ConfigCase::tls), a missing CA file fails `build_store` with
///   [`BuildError::Tls`] naming `tls_ca`.
///
/// # Panics
/// When a check fails, saying which.
pub fn check_config<C>(case: ConfigCase<'_>) -> C
where
    C: BackendConfig + Clone + Debug + Default,
    C::Builder: ElectionBuilder<Error = BuildError> + Debug,
{
    let section = format!("LEADER_ELECTION_{}_", C::SECTION);
    let mut vars = owned(case.vars);
    vars.push(("LEADER_ELECTION_RETRY_JITTER".to_owned(), "0.2".to_owned()));
    let config = C::from_vars(vars).expect("the configuration loads from its variables");
    assert_eq!(
        config.options().retry_jitter,
        0.2,
        "the election options load"
    );
    if let Some(secret) = case.secret {
        for shown in [
            format!("{config:?}"),
            format!("{:?}", config.clone().into_builder()),
        ] {
            assert!(!shown.contains(secret), "Debug shows the secret: {shown}");
        }
    }

    if let Some((var, value, field)) = case.invalid {
        let err = C::from_vars(owned(&[(var, value)])).expect_err("an invalid value is refused");
        assert_eq!(err.field, field, "{err}");
        assert!(
            err.rule.contains(var),
            "the error names the variable: {err}"
        );
    }

    let typo = format!("{section}NO_SUCH_SETTING");
    let err = C::from_vars(owned(&[(&typo, "x")])).expect_err("an unknown variable is refused");
    assert!(
        err.rule.contains(&typo),
        "the error names the variable: {err}"
    );

    let fields = MapDeserializer::<_, ValueError>::new([("no_such_setting", "x")].into_iter());
    let err =
        <C as serde::Deserialize>::deserialize(fields).expect_err("an unknown field is refused");
    assert!(err.to_string().contains("no_such_setting"), "{err}");

    let Err(err) = C::default().into_builder().build_store() else {
        panic!("a configuration without a connection is refused");
    };
    assert!(matches!(err, BuildError::MissingConnection { .. }), "{err}");

    let Err(err) = config
        .clone()
        .into_builder()
        .renew_interval(config.options().lease_duration * 2)
        .build_store()
    else {
        panic!("a renew interval longer than the lease is refused by build_store");
    };
    let BuildError::Options(refused) = &err else {
        panic!("the options are checked by build_store: {err}");
    };
    assert_eq!(refused.field, "renew_interval", "{err}");

    if case.tls {
        let ca = format!("{section}TLS_CA_FILE");
        let mut vars = owned(case.vars);
        vars.push((ca, "/nonexistent/ca.pem".to_owned()));
        let tls = C::from_vars(vars).expect("the TLS files load from their variables");
        let Err(err) = tls.into_builder().build_store() else {
            panic!("a missing CA file is refused");
        };
        let BuildError::Tls { setting, .. } = &err else {
            panic!("a missing CA file is a TLS error: {err}");
        };
        assert_eq!(*setting, "tls_ca", "{err}");
    }
    config
}
