//! The write-ahead journal of a run, in the user's state directory: what will
//! be created is written before it is created, and what was created after.
//! `dscan gc` reads journals of dead runs to remove what they left behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ClusterError;
use super::identity::ObjectRef;

/// Where an object stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryState {
    /// About to be created (it may exist if the process died mid-call).
    Planned,
    /// Created.
    Created,
    /// Deleted and verified gone.
    Deleted,
}

/// One object in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The object.
    pub object: ObjectRef,
    /// Its state.
    pub state: EntryState,
}

/// A run's journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// Format version.
    pub version: u32,
    /// Run id.
    pub run_id: String,
    /// PID of the dscan process.
    pub pid: u32,
    /// Its start time (clock ticks since boot), to tell a reused PID apart.
    pub pid_start: Option<u64>,
    /// API server URL.
    pub server: String,
    /// Namespace.
    pub namespace: String,
    /// Target pod.
    pub pod: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// When its token expires (RFC 3339), once known.
    pub expires_at: Option<String>,
    /// The objects.
    pub entries: Vec<Entry>,
    /// The restricted kubeconfig, once written.
    pub kubeconfig: Option<PathBuf>,
}

/// `<state>/runs`.
pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

/// The default state directory (`$XDG_STATE_HOME/dscan` or the platform's equivalent).
pub fn default_state_dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "dscan")?;
    Some(
        dirs.state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_path_buf(),
    )
}

/// This process's start time in clock ticks, from `/proc/self/stat`.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime); the comm field may contain spaces, so count after ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

impl Journal {
    /// A new journal for this process.
    pub fn new(run_id: &str, server: &str, namespace: &str, pod: &str, started_at: &str) -> Self {
        let pid = std::process::id();
        Journal {
            version: 1,
            run_id: run_id.into(),
            pid,
            pid_start: process_start(pid),
            server: server.into(),
            namespace: namespace.into(),
            pod: pod.into(),
            started_at: started_at.into(),
            expires_at: None,
            entries: vec![],
            kubeconfig: None,
        }
    }

    /// The run's directory under `state_dir`.
    pub fn dir(&self, state_dir: &Path) -> PathBuf {
        runs_dir(state_dir).join(&self.run_id)
    }

    /// Writes the journal atomically (`journal.json` in the run directory).
    pub fn save(&self, state_dir: &Path) -> Result<(), ClusterError> {
        let dir = self.dir(state_dir);
        super::kubeconfig::private_dir(&dir)?;
        let path = dir.join("journal.json");
        let err = |what| {
            let path = path.display().to_string();
            move |source| ClusterError::Io { what, path, source }
        };
        let mut file = tempfile::NamedTempFile::new_in(&dir).map_err(err("create journal"))?;
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| err("encode journal")(std::io::Error::other(e)))?;
        file.write_all(&text).map_err(err("write journal"))?;
        file.as_file().sync_all().map_err(err("sync journal"))?;
        file.persist(&path)
            .map_err(|e| err("write journal")(e.error))?;
        Ok(())
    }

    /// Reads a journal file.
    pub fn load(path: &Path) -> Result<Journal, ClusterError> {
        let text = std::fs::read(path).map_err(|source| ClusterError::Io {
            what: "read journal",
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|e| ClusterError::Io {
            what: "parse journal",
            path: path.display().to_string(),
            source: std::io::Error::other(e),
        })
    }

    /// Sets an object's state (adding it if new).
    pub fn mark(&mut self, object: &ObjectRef, state: EntryState) {
        match self.entries.iter_mut().find(|e| e.object == *object) {
            Some(e) => e.state = state,
            None => self.entries.push(Entry {
                object: object.clone(),
                state,
            }),
        }
    }

    /// Objects that may exist (planned or created).
    pub fn outstanding(&self) -> Vec<ObjectRef> {
        self.entries
            .iter()
            .filter(|e| e.state != EntryState::Deleted)
            .map(|e| e.object.clone())
            .collect()
    }

    /// Checks that the journal describes only what its own run could have
    /// created, before `gc` acts on it: a journal is a file on disk, and gc
    /// must not delete an arbitrary file or object because one names it. The
    /// run id must be the run directory's name (`dir`), the kubeconfig must be
    /// the run directory's `kubeconfig`, and every object must be the run's
    /// own `dscan-<run-id>` in the journal's namespace.
    pub fn check_consistent(&self, dir: &Path) -> Result<(), String> {
        let valid_id = self.run_id.len() == 10
            && self
                .run_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid_id || dir.file_name().and_then(|n| n.to_str()) != Some(self.run_id.as_str()) {
            return Err(format!(
                "its run id {:?} is not a dscan run id or not its directory's name",
                self.run_id
            ));
        }
        if let Some(k) = &self.kubeconfig
            && *k != dir.join("kubeconfig")
        {
            return Err(format!(
                "it names {} as its kubeconfig, which is not the run directory's",
                k.display()
            ));
        }
        let name = format!("dscan-{}", self.run_id);
        for e in &self.entries {
            if e.object.name != name || e.object.namespace != self.namespace {
                return Err(format!(
                    "it lists {}, which is not this run's {name} in namespace {}",
                    e.object, self.namespace
                ));
            }
        }
        Ok(())
    }

    /// Whether the process that wrote this journal is still running.
    pub fn owner_alive(&self) -> bool {
        match (process_start(self.pid), self.pid_start) {
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// The records a run keeps beside its journal in files named `prefix…`
/// (one per debug container, per node-debug slot), read with `parse`, in
/// file-name order. Unreadable or unparsable files are left out: the
/// callers check what the records name before acting on it.
pub fn side_records<T>(dir: &Path, prefix: &str, parse: impl Fn(&str) -> Option<T>) -> Vec<T> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(prefix))
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .filter_map(|t| parse(&t))
        .collect()
}

/// Every journal under `state_dir`, with its run directory.
pub fn list(state_dir: &Path) -> Vec<(PathBuf, Result<Journal, ClusterError>)> {
    let Ok(entries) = std::fs::read_dir(runs_dir(state_dir)) else {
        return vec![];
    };
    let mut out: Vec<(PathBuf, Result<Journal, ClusterError>)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .map(|dir| {
            let journal = Journal::load(&dir.join("journal.json"));
            (dir, journal)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::identity::planned_objects;

    #[test]
    fn round_trips_and_tracks_states() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::new("abc", "https://x", "ns", "web", "2026-01-01T00:00:00Z");
        let objs = planned_objects("ns", "abc");
        j.mark(&objs[0], EntryState::Planned);
        j.mark(&objs[0], EntryState::Created);
        j.mark(&objs[1], EntryState::Planned);
        j.save(dir.path()).unwrap();
        let back = Journal::load(&j.dir(dir.path()).join("journal.json")).unwrap();
        assert_eq!(back, j);
        assert_eq!(back.outstanding().len(), 2);
        assert!(back.owner_alive(), "this process wrote it");
        let mode = std::fs::metadata(j.dir(dir.path())).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o700
        );
        let mut dead = back.clone();
        dead.pid_start = Some(1);
        assert!(!dead.owner_alive(), "a reused PID is not the owner");
    }
}
