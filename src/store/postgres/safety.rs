//! The commit-safety check (issue 20): a 2xx means the posting survives a crash of the
//! database machine only when the server syncs its write-ahead log before it reports a commit
//! (`fsync`), the commit waits for that sync (`synchronous_commit`), and a page torn by a crash
//! can be restored from the log (`full_page_writes`). They are read from the server at
//! start-up, as our own sessions see them (a role or database setting counts).

use tokio_postgres::Client;

use super::PgError;

/// The server settings a durable commit depends on.
pub const SETTINGS: [&str; 3] = ["fsync", "synchronous_commit", "full_page_writes"];

/// The settings found unsafe, as `name=value` (empty: safe).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitSafety {
    pub unsafe_settings: Vec<String>,
}

impl CommitSafety {
    pub fn is_safe(&self) -> bool {
        self.unsafe_settings.is_empty()
    }

    /// Judges the values read from the server. `synchronous_commit` is durable locally for
    /// every value but `off` (`local`, `remote_write`, `on`, `remote_apply` all wait for the
    /// local WAL flush); a setting the server did not report counts as unsafe.
    pub fn judge(values: &[(String, String)]) -> Self {
        let unsafe_settings = SETTINGS
            .iter()
            .filter_map(|name| {
                let value = values.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
                let safe = match (*name, value) {
                    (_, None) => false,
                    ("synchronous_commit", Some(v)) => v != "off",
                    (_, Some(v)) => v == "on",
                };
                (!safe).then(|| format!("{name}={}", value.unwrap_or("unknown")))
            })
            .collect();
        Self { unsafe_settings }
    }

    /// One line for start-up, the readiness body and the refusal.
    pub fn describe(&self) -> String {
        self.unsafe_settings.join(", ")
    }
}

/// Reads the three settings as this session sees them.
pub async fn read(client: &Client) -> Result<CommitSafety, PgError> {
    let names: Vec<&str> = SETTINGS.to_vec();
    let rows = client
        .query("SELECT name, setting FROM pg_settings WHERE name = ANY($1)", &[&names])
        .await
        .map_err(PgError::query("reading fsync, synchronous_commit and full_page_writes"))?;
    let values: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(CommitSafety::judge(&values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(fsync: &str, sync_commit: &str, fpw: &str) -> Vec<(String, String)> {
        vec![
            ("fsync".into(), fsync.into()),
            ("synchronous_commit".into(), sync_commit.into()),
            ("full_page_writes".into(), fpw.into()),
        ]
    }

    #[test]
    fn each_setting_off_is_named() {
        let table = [
            (values("on", "on", "on"), vec![]),
            (values("on", "local", "on"), vec![]),
            (values("on", "remote_apply", "on"), vec![]),
            (values("off", "on", "on"), vec!["fsync=off"]),
            (values("on", "off", "on"), vec!["synchronous_commit=off"]),
            (values("on", "on", "off"), vec!["full_page_writes=off"]),
            (
                values("off", "off", "off"),
                vec!["fsync=off", "synchronous_commit=off", "full_page_writes=off"],
            ),
        ];
        for (given, unsafe_settings) in table {
            assert_eq!(
                CommitSafety::judge(&given).unsafe_settings,
                unsafe_settings,
                "{given:?}"
            );
        }
    }

    #[test]
    fn a_setting_the_server_did_not_report_is_unsafe() {
        let judged = CommitSafety::judge(&[("fsync".into(), "on".into())]);
        assert_eq!(
            judged.unsafe_settings,
            vec!["synchronous_commit=unknown", "full_page_writes=unknown"]
        );
    }
}
