//! A real PgBouncer in transaction-pooling mode, started for one test on a free loopback port.
//!
//! PgBouncer refuses to run as root, so as root it is started as the `postgres` user through
//! `setpriv`, which execs it directly (killing our child kills PgBouncer itself).

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::postgres::PgServer;

/// Where Debian's `pgbouncer` package installs the daemon.
const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

/// A running PgBouncer; stopped when dropped.
pub struct PgBouncer {
    pub port: u16,
    _dir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl PgBouncer {
    /// Starts PgBouncer in front of `pg` with `pool_size` server connections per database and
    /// user, so that many clients share few server connections.
    ///
    /// # Panics
    /// If PgBouncer is not installed or does not come up: the test needs it.
    pub async fn start(pg: &PgServer, pool_size: u32) -> Self {
        assert!(
            std::path::Path::new(PGBOUNCER).exists(),
            "{PGBOUNCER} is missing: install Debian's pgbouncer package (.ci/run does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("latchkey-pgbouncer-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        let (host, pg_port) = pg.host_port();
        let user = pg.user();
        let auth_file = dir.path().join("users.txt");
        std::fs::write(&auth_file, format!("\"{user}\" \"\"\n")).unwrap();
        let config = format!(
            "[databases]\n\
             * = host={host} port={pg_port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {auth}\n\
             pool_mode = transaction\n\
             default_pool_size = {pool_size}\n\
             max_client_conn = 500\n\
             ignore_startup_parameters = extra_float_digits\n\
             logfile =\n\
             pidfile =\n",
            auth = auth_file.display(),
        );
        let config_path: PathBuf = dir.path().join("pgbouncer.ini");
        std::fs::write(&config_path, config).unwrap();
        for file in [&auth_file, &config_path] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }

        let running_as_root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let mut command = if running_as_root {
            let mut c = tokio::process::Command::new("setpriv");
            c.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
                PGBOUNCER,
            ]);
            c
        } else {
            tokio::process::Command::new(PGBOUNCER)
        };
        command
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start pgbouncer: {e}"));

        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "pgbouncer did not start listening on 127.0.0.1:{port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            port,
            _dir: dir,
            child,
        }
    }

    /// A URL for `database` through this PgBouncer, in transaction-pooler mode.
    #[must_use]
    pub fn url_for(&self, pg: &PgServer, database: &str) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{database}?pgbouncer=true",
            pg.user(),
            self.port
        )
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A loopback port nobody is listening on right now.
#[must_use]
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
