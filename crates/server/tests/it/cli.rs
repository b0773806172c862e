//! The binary as an operator runs it: start, stop, migrate, and refuse bad settings.

use std::time::Duration;

use latchkey_testkit::{Backend, TestContext, pgbouncer::free_port};

use crate::support::{finish, latchkey, run_in, terminate, wait_until_ok};

/// Points a command at this test's database: the default SQLite file in the data directory,
/// or a fresh Postgres database.
fn database_env(command: &mut tokio::process::Command, pg_url: Option<&String>) {
    if let Some(url) = pg_url {
        command.env("DATABASE_URL", url);
    }
}

/// A fresh Postgres database's URL on Postgres; `None` (the default SQLite file) on SQLite.
async fn fresh_pg_url(ctx: &TestContext) -> Option<String> {
    match ctx.backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(ctx.fresh_database().await.expose_for_child_process()),
    }
}

pub async fn serve_creates_its_data_dir_then_reuses_it(ctx: TestContext) {
    let cwd = ctx.temp_dir();
    let data_dir = cwd.join("data");
    let pg_url = fresh_pg_url(&ctx).await;
    for round in 0..2 {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut command = latchkey(&cwd);
        command.args([
            "serve",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--addr",
            &addr,
        ]);
        database_env(&mut command, pg_url.as_ref());
        let child = command.spawn().expect("latchkey starts");
        let took = wait_until_ok(&format!("http://{addr}/healthz"), Duration::from_secs(20)).await;
        assert!(
            took < Duration::from_secs(20),
            "round {round}: /healthz took {took:?}"
        );
        assert!(data_dir.is_dir(), "the data directory was created");
        // Only this user may read the master key and the database.
        let mode = |path: &std::path::Path| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&data_dir), 0o700, "the data directory");
        assert_eq!(mode(&data_dir.join("master.key")), 0o600, "the master key");
        if ctx.backend == Backend::Sqlite {
            assert!(
                data_dir.join("latchkey.db").is_file(),
                "the SQLite file lives in the data directory"
            );
            for file in ["latchkey.db", "latchkey.db-wal", "latchkey.db-shm"] {
                assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
            }
        }
        wait_until_ok(&format!("http://{addr}/readyz"), Duration::from_secs(5)).await;
        terminate(&child).await;
        let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .expect("latchkey stops within 10 s of SIGTERM")
            .unwrap();
        assert!(
            output.status.success(),
            "a SIGTERM stop is a clean exit: {:?}",
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("sk_live_"),
            "the secret key never reaches the log"
        );
        let keys = secret_keys_in(&stdout);
        if round == 0 {
            assert_eq!(keys.len(), 1, "the first start prints one key: {stdout}");
        } else {
            assert!(keys.is_empty(), "later starts print no key: {stdout}");
        }
    }
}

/// Every `sk_live_…` key in `text`.
fn secret_keys_in(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|word| word.starts_with("sk_live_"))
        .map(str::to_owned)
        .collect()
}

/// The first start prints a working key; `keys secret-key` makes more; revoked keys stop working.
pub async fn management_api_secret_keys_are_made_listed_and_revoked(ctx: TestContext) {
    let cwd = ctx.temp_dir();
    let pg_url = fresh_pg_url(&ctx).await;
    let keys_command = |args: &[&str]| {
        let mut command = latchkey(&cwd);
        command.arg("keys").args(args).args(["--data-dir", "data"]);
        database_env(&mut command, pg_url.as_ref());
        command
    };

    let addr = format!("127.0.0.1:{}", free_port());
    let mut command = latchkey(&cwd);
    command.args(["serve", "--data-dir", "data", "--addr", &addr]);
    database_env(&mut command, pg_url.as_ref());
    let mut child = command.spawn().expect("latchkey starts");
    let stdout = child.stdout.take().unwrap();
    let first = tokio::time::timeout(Duration::from_secs(30), async {
        use tokio::io::AsyncBufReadExt as _;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(key) = secret_keys_in(&line).pop() {
                return key;
            }
        }
        panic!("latchkey's output ended without a secret key");
    })
    .await
    .expect("the first start prints its secret key");
    wait_until_ok(&format!("http://{addr}/readyz"), Duration::from_secs(20)).await;

    let count = async |key: &str| {
        reqwest::Client::new()
            .get(format!("http://{addr}/v1/users/count"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(count(&first).await, 200, "the printed key works");
    assert_eq!(count("sk_live_not_a_key").await, 401);

    let made = finish(keys_command(&["secret-key"])).await;
    assert_eq!(made.code, Some(0), "stderr: {}", made.stderr);
    let second = secret_keys_in(&made.stdout)
        .pop()
        .expect("a key is printed");
    assert_ne!(second, first);
    assert!(!made.stderr.contains(&second));

    let listed = finish(keys_command(&["list-secret-keys", "--json"])).await;
    assert_eq!(listed.code, Some(0), "stderr: {}", listed.stderr);
    assert!(
        !listed.stdout.contains(&first) && !listed.stdout.contains(&second),
        "listings never show keys"
    );
    let listed: Vec<serde_json::Value> = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed.len(), 2);
    let second_id = listed
        .iter()
        .find(|key| second.starts_with(key["prefix"].as_str().unwrap()))
        .expect("the new key is listed by its prefix")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let revoked = finish(keys_command(&["revoke-secret-key", &second_id])).await;
    assert_eq!(revoked.code, Some(0), "stderr: {}", revoked.stderr);
    assert_eq!(count(&second).await, 401, "a revoked key is refused");
    assert_eq!(count(&first).await, 200, "other keys keep working");
    let again = finish(keys_command(&["revoke-secret-key", &second_id])).await;
    assert_eq!(again.code, Some(3), "revoking twice: not found");
    terminate(&child).await;
}

pub async fn migrate_creates_the_schema_once(ctx: TestContext) {
    let cwd = ctx.temp_dir();
    let pg_url = fresh_pg_url(&ctx).await;
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let mut command = latchkey(&cwd);
        command.args(["migrate", "--data-dir", "data"]);
        database_env(&mut command, pg_url.as_ref());
        let done = finish(command).await;
        assert_eq!(done.code, Some(0), "stderr: {}", done.stderr);
        outputs.push(done.stdout);
    }
    let total = latchkey_server::MIGRATIONS
        .iter()
        .map(|set| set.len())
        .sum::<usize>();
    assert!(
        outputs[0].starts_with(&format!("migrations: {total} applied, 0 already in place")),
        "{}",
        outputs[0]
    );
    assert!(
        outputs[1].starts_with(&format!("migrations: 0 applied, {total} already in place")),
        "{}",
        outputs[1]
    );
}

/// Runs `latchkey` with `args` and `env` and expects exit status 2 with a single stderr line
/// containing `names`.
async fn expect_config_error(ctx: &TestContext, args: &[&str], env: &[(&str, &str)], names: &str) {
    let cwd = ctx.temp_dir();
    let done = run_in(&cwd, args, env).await;
    assert_eq!(
        done.code,
        Some(2),
        "stdout: {} stderr: {}",
        done.stdout,
        done.stderr
    );
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, got: {:?}", done.stderr);
    assert!(
        lines[0].contains(names),
        "the line names {names}: {}",
        lines[0]
    );
    assert!(!cwd.join("latchkey-data").exists(), "nothing was created");
}

pub async fn bad_settings_stop_with_one_line_naming_them(ctx: TestContext) {
    expect_config_error(
        &ctx,
        &["migrate"],
        &[("DATABASE_URL", "postgres//nope")],
        "DATABASE_URL",
    )
    .await;
    expect_config_error(
        &ctx,
        &["serve"],
        &[("DATABASE_URL", "mysql://localhost/db")],
        "DATABASE_URL",
    )
    .await;
    expect_config_error(
        &ctx,
        &["serve", "--database-url", "sqlite://"],
        &[],
        "--database-url",
    )
    .await;
    expect_config_error(&ctx, &["serve", "--addr", "localhost"], &[], "--addr").await;
    expect_config_error(&ctx, &[], &[("LATCHKEY_ADDR", "nope")], "LATCHKEY_ADDR").await;
    expect_config_error(
        &ctx,
        &[],
        &[("LATCHKEY_PUBLIC_URL", "ftp://example.com")],
        "LATCHKEY_PUBLIC_URL",
    )
    .await;
    expect_config_error(
        &ctx,
        &[],
        &[("LATCHKEY_LOG_FORMAT", "xml")],
        "LATCHKEY_LOG_FORMAT",
    )
    .await;
}

/// A variable that is not UTF-8 (any byte string is a valid Unix environment value) does not
/// stop latchkey unless it is one of latchkey's own, which is refused in one line.
pub async fn non_utf8_environment_variables_do_not_panic(ctx: TestContext) {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt as _;

    let junk = OsStr::from_bytes(b"\xff\xfe");
    let cwd = ctx.temp_dir();
    let mut command = latchkey(&cwd);
    command
        .arg("migrate")
        .env("OTHER_TOOL_JUNK", junk)
        .env(OsStr::from_bytes(b"JUNK_\xff_NAME"), "x");
    let done = finish(command).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(done.stdout.starts_with("migrations: "), "{}", done.stdout);

    for own in ["LATCHKEY_ADDR", "LATCHKEY_SECRET", "DATABASE_URL"] {
        let cwd = ctx.temp_dir();
        let mut command = latchkey(&cwd);
        command.arg("serve").env(own, junk);
        let done = finish(command).await;
        assert_eq!(done.code, Some(2), "{own}: {}", done.stderr);
        assert_eq!(
            done.stderr,
            format!("latchkey: invalid {own}: the value is not UTF-8 text\n")
        );
        assert!(!cwd.join("latchkey-data").exists(), "nothing was created");
    }
}

/// `webhooks replay --since` takes real times and ages only, and a bad one is a usage error
/// before the database is opened.
pub async fn impossible_since_times_are_refused_in_one_line(ctx: TestContext) {
    for since in [
        "2026-02-31T00:00:00Z",
        "2026-11-26-99T08:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-02-31",
        "99999999999d",
    ] {
        expect_config_error(
            &ctx,
            &["webhooks", "replay", "--endpoint", "ep_x", "--since", since],
            &[],
            &format!("--since {since:?}"),
        )
        .await;
    }
}

pub async fn the_config_file_is_a_layer_below_the_environment(ctx: TestContext) {
    let cwd = ctx.temp_dir();
    std::fs::write(cwd.join("latchkey.toml"), "addr = \"not an address\"\n").unwrap();
    let done = run_in(&cwd, &["migrate"], &[]).await;
    assert_eq!(done.code, Some(2));
    assert!(
        done.stderr.contains("addr in latchkey.toml"),
        "{}",
        done.stderr
    );

    // The environment wins over the file, so the same file is fine with LATCHKEY_ADDR set.
    let done = run_in(&cwd, &["migrate"], &[("LATCHKEY_ADDR", "127.0.0.1:0")]).await;
    assert_eq!(done.code, Some(0), "{}", done.stderr);

    std::fs::write(cwd.join("latchkey.toml"), "adress = \"127.0.0.1:1\"\n").unwrap();
    let done = run_in(&cwd, &["migrate"], &[]).await;
    assert_eq!(done.code, Some(2));
    assert!(
        done.stderr.contains("unknown setting \"adress\""),
        "{}",
        done.stderr
    );
}

pub async fn help_documents_every_setting(ctx: TestContext) {
    let cwd = ctx.temp_dir();
    let done = run_in(&cwd, &["--help"], &[]).await;
    assert_eq!(done.code, Some(0));
    for setting in latchkey_server::config::ALL {
        assert!(
            done.stdout.contains(setting.flag),
            "--help mentions {}",
            setting.flag
        );
        assert!(
            done.stdout.contains(setting.env),
            "--help mentions {}",
            setting.env
        );
    }
}
