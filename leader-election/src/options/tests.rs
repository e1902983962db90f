//! The options' rules, defaults, serde and environment variables.
use super::*;

fn valid() -> LeaderElectionOptions {
    LeaderElectionOptions {
        instance_id: "a".into(),
        ..LeaderElectionOptions::default()
    }
}

fn field_of(options: &LeaderElectionOptions) -> &'static str {
    options.validate().expect_err("should be invalid").field
}

#[test]
fn defaults_are_valid_and_documented_values() {
    let o = LeaderElectionOptions::default();
    o.validate().unwrap();
    assert_eq!(o.lease_duration, Duration::from_secs(30));
    assert_eq!(o.renew_interval, Duration::from_secs(10));
    assert_eq!(o.retry_interval, Duration::from_secs(5));
    assert_eq!(o.max_retry_interval, Duration::from_secs(40));
    assert_eq!(o.retry_backoff_factor, 2.0);
    assert_eq!(o.retry_jitter, 0.1);
    assert_eq!(o.max_retry_attempts, 3);
    assert!(o.enable_graceful_shutdown);
    assert_eq!(o.operation_timeout, None);
    assert_eq!(o.operation_timeout(), Duration::from_secs(2));
    assert!(o.operation_timeout() < o.renew_interval / 2);
    assert_eq!(o.deadline_margin(), Duration::from_millis(400));
}

#[test]
fn short_leases_work_with_the_default_operation_timeout() {
    let mut o = valid();
    o.lease_duration = Duration::from_secs(2);
    o.renew_interval = Duration::from_millis(500);
    o.validate().unwrap();
    assert_eq!(o.operation_timeout(), Duration::from_millis(500));
    o.operation_timeout = Some(Duration::from_secs(2));
    assert_eq!(field_of(&o), "renew_interval");
}

#[test]
fn a_zero_deadline_margin_is_rejected() {
    let mut o = valid();
    o.clock_drift_rate = 0.0;
    o.deadline_slack = Duration::ZERO;
    assert_eq!(field_of(&o), "deadline_slack");
    o.deadline_slack = Duration::from_millis(1);
    o.validate().unwrap();
}

#[test]
fn a_tiny_retry_interval_is_rejected() {
    let mut o = valid();
    o.retry_interval = Duration::from_millis(9);
    assert_eq!(field_of(&o), "retry_interval");
    o.retry_interval = MIN_RETRY_INTERVAL;
    o.validate().unwrap();
}

#[test]
fn errors_do_not_echo_huge_input_whole() {
    let huge = "9".repeat(100_000);
    for field in ["LEASE_DURATION", "RETRY_JITTER", "ENABLE_GRACEFUL_SHUTDOWN"] {
        let err = LeaderElectionOptions::from_vars([(
            format!("LEADER_ELECTION_{field}"),
            format!("x{huge}"),
        )])
        .unwrap_err();
        assert!(
            err.to_string().len() < 300,
            "{field}: {} bytes",
            err.to_string().len()
        );
    }
    let err =
        LeaderElectionOptions::from_vars([(format!("LEADER_ELECTION_{huge}"), "1".to_owned())])
            .unwrap_err();
    assert!(err.to_string().len() < 300);
}

#[test]
fn default_instance_ids_are_unique_and_carry_the_pid() {
    let a = default_instance_id();
    let b = default_instance_id();
    assert_ne!(a, b);
    assert!(a.contains(&std::process::id().to_string()));
    assert!(!a.is_empty() && a.len() <= MAX_INSTANCE_ID_LEN);
}

#[test]
fn empty_blank_long_or_control_instance_id_is_rejected() {
    for id in ["", "   ", "a\nb"] {
        let o = LeaderElectionOptions {
            instance_id: id.into(),
            ..valid()
        };
        assert_eq!(field_of(&o), "instance_id", "{id:?}");
    }
    let o = LeaderElectionOptions {
        instance_id: "x".repeat(MAX_INSTANCE_ID_LEN + 1),
        ..valid()
    };
    assert_eq!(field_of(&o), "instance_id");
}

#[test]
fn zero_durations_are_rejected() {
    type Setter = fn(&mut LeaderElectionOptions);
    let cases: [(&str, Setter); 6] = [
        ("lease_duration", |o| o.lease_duration = Duration::ZERO),
        ("renew_interval", |o| o.renew_interval = Duration::ZERO),
        ("retry_interval", |o| o.retry_interval = Duration::ZERO),
        ("max_retry_interval", |o| {
            o.max_retry_interval = Duration::ZERO
        }),
        ("operation_timeout", |o| {
            o.operation_timeout = Some(Duration::ZERO)
        }),
        ("shutdown_timeout", |o| o.shutdown_timeout = Duration::ZERO),
    ];
    for (field, set) in cases {
        let mut o = valid();
        set(&mut o);
        assert_eq!(field_of(&o), field);
        assert!(o.validate().unwrap_err().to_string().contains(field));
    }
}

#[test]
fn absurdly_long_durations_are_rejected_without_panicking() {
    let mut o = valid();
    o.deadline_slack = Duration::MAX;
    assert_eq!(field_of(&o), "deadline_slack");
    let mut o = valid();
    o.lease_duration = Duration::MAX;
    assert_eq!(field_of(&o), "lease_duration");
    let _ = o.deadline_margin();
}

#[test]
fn renew_interval_must_be_shorter_than_the_lease() {
    let mut o = valid();
    o.renew_interval = o.lease_duration;
    let err = o.validate().unwrap_err();
    assert_eq!(err.field, "renew_interval");
    assert!(err.rule.contains("shorter than lease_duration"), "{err}");
}

#[test]
fn max_retry_interval_must_cover_retry_interval() {
    let mut o = valid();
    o.max_retry_interval = Duration::from_secs(1);
    assert_eq!(field_of(&o), "max_retry_interval");
}

#[test]
fn factors_out_of_range_are_rejected() {
    for f in [0.99, 3.01, f64::NAN, f64::INFINITY] {
        let mut o = valid();
        o.retry_backoff_factor = f;
        assert_eq!(field_of(&o), "retry_backoff_factor", "{f}");
    }
    for j in [-0.01, 0.51, f64::NAN] {
        let mut o = valid();
        o.retry_jitter = j;
        assert_eq!(field_of(&o), "retry_jitter", "{j}");
    }
    for r in [-0.1, 0.6, f64::NAN] {
        let mut o = valid();
        o.clock_drift_rate = r;
        assert_eq!(field_of(&o), "clock_drift_rate", "{r}");
    }
    let mut o = valid();
    o.retry_backoff_factor = 1.0;
    o.retry_jitter = 0.5;
    o.validate().unwrap();
}

#[test]
fn zero_retry_attempts_are_rejected() {
    let mut o = valid();
    o.max_retry_attempts = 0;
    assert_eq!(field_of(&o), "max_retry_attempts");
}

#[test]
fn a_margin_that_leaves_no_time_to_renew_is_rejected() {
    // 10 s lease, 8 s renew, 2 s timeout: nothing is left for the 0.2 s margin.
    let mut o = valid();
    o.lease_duration = Duration::from_secs(10);
    o.renew_interval = Duration::from_secs(8);
    o.operation_timeout = Some(Duration::from_secs(2));
    let err = o.validate().unwrap_err();
    assert_eq!(err.field, "renew_interval");
    assert!(err.rule.contains("leaves no time to renew"), "{err}");
    // A huge drift rate eats the lease just the same.
    let mut o = valid();
    o.lease_duration = Duration::from_secs(20);
    o.clock_drift_rate = 0.5;
    assert_eq!(field_of(&o), "renew_interval");
    // The same timings with a shorter timeout fit.
    let mut o = valid();
    o.lease_duration = Duration::from_secs(10);
    o.renew_interval = Duration::from_secs(8);
    o.operation_timeout = Some(Duration::from_millis(500));
    o.validate().unwrap();
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn environment_variables_override_defaults() {
    let o = LeaderElectionOptions::from_vars(vars(&[
        ("LEADER_ELECTION_INSTANCE_ID", "pod-7"),
        ("LEADER_ELECTION_LEASE_DURATION", "15s"),
        ("LEADER_ELECTION_RENEW_INTERVAL", "5s"),
        ("LEADER_ELECTION_RETRY_JITTER", "0.2"),
        ("LEADER_ELECTION_MAX_RETRY_ATTEMPTS", "5"),
        ("LEADER_ELECTION_ENABLE_GRACEFUL_SHUTDOWN", "false"),
        ("PATH", "/usr/bin"),
    ]))
    .unwrap();
    assert_eq!(o.instance_id, "pod-7");
    assert_eq!(o.lease_duration, Duration::from_secs(15));
    assert_eq!(o.renew_interval, Duration::from_secs(5));
    assert_eq!(o.retry_jitter, 0.2);
    assert_eq!(o.max_retry_attempts, 5);
    assert!(!o.enable_graceful_shutdown);
}

#[test]
fn bad_environment_variables_name_the_field() {
    let err = LeaderElectionOptions::from_vars(vars(&[("LEADER_ELECTION_LEASE_DURATION", "soon")]))
        .unwrap_err();
    assert_eq!(err.field, "lease_duration");
    let err = LeaderElectionOptions::from_vars(vars(&[("LEADER_ELECTION_RETRY_JITTER", "lots")]))
        .unwrap_err();
    assert_eq!(err.field, "retry_jitter");
    let err = LeaderElectionOptions::from_vars(vars(&[("LEADER_ELECTION_LEASE_DURATON", "5s")]))
        .unwrap_err();
    assert!(err.rule.contains("lease_duraton"), "{err}");
    let err = LeaderElectionOptions::from_vars(vars(&[("LEADER_ELECTION_RENEW_INTERVAL", "40s")]))
        .unwrap_err();
    assert_eq!(err.field, "renew_interval", "validated after parsing");
}

#[test]
fn every_option_field_is_read_from_the_environment() {
    let o = LeaderElectionOptions::from_vars(vars(&[
        ("LEADER_ELECTION_INSTANCE_ID", "pod-1"),
        ("LEADER_ELECTION_LEASE_DURATION", "20s"),
        ("LEADER_ELECTION_RENEW_INTERVAL", "2s"),
        ("LEADER_ELECTION_RETRY_INTERVAL", "2s"),
        ("LEADER_ELECTION_MAX_RETRY_INTERVAL", "3s"),
        ("LEADER_ELECTION_RETRY_BACKOFF_FACTOR", "1.5"),
        ("LEADER_ELECTION_RETRY_JITTER", "0.05"),
        ("LEADER_ELECTION_MAX_RETRY_ATTEMPTS", "4"),
        ("LEADER_ELECTION_ENABLE_GRACEFUL_SHUTDOWN", "off"),
        ("LEADER_ELECTION_OPERATION_TIMEOUT", "1s"),
        ("LEADER_ELECTION_CLOCK_DRIFT_RATE", "0.05"),
        ("LEADER_ELECTION_DEADLINE_SLACK", "50ms"),
        ("LEADER_ELECTION_SHUTDOWN_TIMEOUT", "3s"),
        ("LEADER_ELECTION_METADATA", "10.0.0.7:8080"),
        ("LEADER_ELECTION_PRIORITY", "7"),
        ("LEADER_ELECTION_MIN_TENURE", "40s"),
    ]))
    .unwrap();
    let expected = LeaderElectionOptions {
        instance_id: "pod-1".into(),
        lease_duration: Duration::from_secs(20),
        renew_interval: Duration::from_secs(2),
        retry_interval: Duration::from_secs(2),
        max_retry_interval: Duration::from_secs(3),
        retry_backoff_factor: 1.5,
        retry_jitter: 0.05,
        max_retry_attempts: 4,
        enable_graceful_shutdown: false,
        operation_timeout: Some(Duration::from_secs(1)),
        clock_drift_rate: 0.05,
        deadline_slack: Duration::from_millis(50),
        shutdown_timeout: Duration::from_secs(3),
        metadata: Some(b"10.0.0.7:8080".to_vec()),
        priority: Some(7),
        min_tenure: Some(Duration::from_secs(40)),
    };
    assert_eq!(o, expected);
}

#[test]
fn deserializes_human_durations_and_fills_defaults() {
    let o: LeaderElectionOptions = serde_json::from_str(
        r#"{"instance_id":"n1","lease_duration":"2s","renew_interval":"500ms",
            "operation_timeout":"200ms","retry_interval":"1m 30s"}"#,
    )
    .unwrap();
    assert_eq!(o.instance_id, "n1");
    assert_eq!(o.lease_duration, Duration::from_secs(2));
    assert_eq!(o.renew_interval, Duration::from_millis(500));
    assert_eq!(o.retry_interval, Duration::from_secs(90));
    assert_eq!(o.max_retry_attempts, 3);
    let err =
        serde_json::from_str::<LeaderElectionOptions>(r#"{"lease_duraton":"2s"}"#).unwrap_err();
    assert!(err.to_string().contains("lease_duraton"), "{err}");
    let err =
        serde_json::from_str::<LeaderElectionOptions>(r#"{"lease_duration":"soon"}"#).unwrap_err();
    assert!(err.to_string().contains("duration"), "{err}");
}
