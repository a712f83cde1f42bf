use super::*;

#[test]
fn file_values_fill_in_under_flags() {
    let f = parse_file(
        Path::new("x.conf"),
        "# comment\nport 7000\nbind \"0.0.0.0\"\nshards 16\nloglevel notice\nsave \"\"\nproto-max-bulk-len 1gb\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.port, Some(7000));
    assert_eq!(f.bind.as_deref(), Some("0.0.0.0"));
    assert_eq!(f.shards, Some(16));
    assert_eq!(f.log_level.as_deref(), Some("info"));
    assert_eq!(f.proto_max_bulk_len, Some(1024 * 1024 * 1024));
}

#[test]
fn unknown_directive_is_an_error() {
    let e = parse_file(Path::new("x.conf"), "port 1\nmaxmemroy 1gb\n");
    assert!(matches!(e, Err(ConfigError::Line { line: 2, .. })));
    assert!(parse_file(Path::new("x.conf"), "appendonly yes\n").is_err());
    assert!(parse_file(Path::new("x.conf"), "port 70000\n").is_err());
}

/// The settings `sessiond <v...>` resolves to, with no config file.
fn args(v: &[&str]) -> Result<Config, ConfigError> {
    let mut all = vec!["sessiond"];
    all.extend_from_slice(v);
    Config::from_args(Args::parse_from(all))
}

#[test]
fn cluster_settings_resolve_and_are_checked() {
    let c = args(&[
        "--node-id",
        "2",
        "--peers",
        "1=127.0.0.1:17001,2=127.0.0.1:17002",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let cs = c.cluster.expect("cluster on");
    assert_eq!(cs.raft_addr.as_deref(), Some("127.0.0.1:17002"));
    assert!(args(&[]).is_ok_and(|c| c.cluster.is_none()));
    assert!(args(&["--join"]).is_err(), "--join without --node-id");
    assert!(
        args(&["--peers", "1=127.0.0.1:1"]).is_err(),
        "--peers without --node-id"
    );
    assert!(args(&["--node-id", "3", "--peers", "1=127.0.0.1:1"]).is_err());
    assert!(args(&["--node-id", "1", "--peers", "1=nohost"]).is_err());
    assert!(args(&["--dir", "/tmp/x"]).is_ok_and(|c| c.cluster.is_some_and(|s| s.node_id == 1)));
}

#[test]
fn memory_units() {
    assert_eq!(parse_memory("512mb"), Some(512 << 20));
    assert_eq!(parse_memory("1k"), Some(1000));
    assert_eq!(parse_memory("12"), Some(12));
    assert_eq!(parse_memory("x"), None);
}

#[test]
fn defaults_validate() {
    let c = Config::from_args(Args::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c, Config::default());
    let bad = Args {
        shards: Some(3),
        ..Args::default()
    };
    assert!(Config::from_args(bad).is_err());
}

#[test]
fn coalesce_us_default_flag_file_and_limit() {
    use Coalesce::{Auto, Fixed};
    assert!(args(&[]).is_ok_and(|c| c.coalesce_us == Auto));
    assert!(args(&["--node-id", "1"]).is_ok_and(|c| c.coalesce_us == Fixed(0)));
    assert!(
        args(&["--node-id", "1", "--coalesce-us", "5"]).is_ok_and(|c| c.coalesce_us == Fixed(5))
    );
    assert!(args(&["--node-id", "1", "--coalesce-us", "AUTO"]).is_ok_and(|c| c.coalesce_us == Auto));
    assert!(args(&["--coalesce-us", "0"]).is_ok_and(|c| c.coalesce_us == Fixed(0)));
    assert!(Args::try_parse_from(["sessiond", "--coalesce-us", "soon"]).is_err());
    let file =
        parse_file(Path::new("t.conf"), "coalesce-us 75\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(file.coalesce_us, Some(Fixed(75)));
    let file =
        parse_file(Path::new("t.conf"), "coalesce-us auto\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(file.coalesce_us, Some(Auto));
    match args(&["--coalesce-us", "10001"]) {
        Err(ConfigError::Invalid(m)) => {
            assert_eq!(m, "coalesce-us must be at most 10000, got 10001")
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
}
