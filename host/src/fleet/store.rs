//! Where the shards of a distributed fleet run leave their results: one
//! ConfigMap per scanned container (the HDF, gzip-compressed, and a record of
//! the scan) and one per shard (what it selected, scanned and skipped, and
//! how it ended), all labelled with the fleet run's id, in a namespace the
//! user names. `dscan fleet collect` reads them back, merges them and
//! removes them.
//!
//! Why ConfigMaps: they live in the API server, so a result outlives the
//! shard's pod (rescheduled, evicted, its node gone) and is not at the mercy
//! of log rotation; reading them needs only the API access dscan already
//! has (no volume, no object store, no sidecar); and a label selects one
//! run's. The cost is the 1 MiB object limit: compressed HDF of a profile is
//! far below it (the container baseline's is about 3 KiB); larger results
//! are refused by name instead of truncated.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde::{Deserialize, Serialize};

use super::run::{FleetRecord, TargetRun};
use super::select::{FleetTarget, Skipped};
use super::shard::Shard;
use crate::cluster::{CALL_TIMEOUT, ClusterError, MANAGED_BY, bounded};
use crate::exit;

/// Label: the fleet run a stored result belongs to.
pub const FLEET_RUN_LABEL: &str = "dscan.dev/fleet-run";
/// Label: `result` or `shard`.
pub const PART_LABEL: &str = "dscan.dev/part";
/// The largest compressed results a ConfigMap takes here (the API's limit is
/// 1 MiB for the whole object; the rest is left for the record and metadata).
pub const MAX_STORED: usize = 900 * 1024;

/// How one container's scan ended, as stored beside its results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTarget {
    /// The container.
    pub target: FleetTarget,
    /// The error, when the scan failed.
    pub error: Option<String>,
    /// The exit code the failure would end a run with.
    pub exit_code: Option<u8>,
    /// The access strategy used.
    pub strategy: Option<String>,
    /// Seconds the scan took.
    pub seconds: f64,
}

/// How one shard ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// The shard.
    pub index: u32,
    /// Of how many.
    pub count: u32,
    /// Keys of the containers it scanned (or tried to).
    pub scanned: Vec<String>,
    /// Containers it skipped, with reasons (every shard lists the same
    /// skipped pods: selection happens before sharding).
    pub skipped: Vec<Skipped>,
    /// Covered by a scan of the same image: (container, covered by).
    pub covered: Vec<(FleetTarget, String)>,
    /// Results it could not store, with why.
    pub not_stored: Vec<(String, String)>,
    /// What stopped it as a whole, if anything did.
    pub error: Option<String>,
    /// Its exit code.
    pub exit_code: u8,
}

/// A stored result read back.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The record.
    pub record: StoredTarget,
    /// The HDF results, when the scan produced them.
    pub results: Option<Vec<u8>>,
}

/// Everything one fleet run stored.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Results, in key order.
    pub targets: Vec<Collected>,
    /// Shard records, by index.
    pub shards: BTreeMap<u32, ShardRecord>,
    /// ConfigMaps that could not be read, with why.
    pub unreadable: Vec<(String, String)>,
    /// Every ConfigMap of the run (to remove after merging).
    pub names: Vec<String>,
}

fn meta(name: String, run: &str, part: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        labels: Some(BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_string(),
                MANAGED_BY.to_string(),
            ),
            (FLEET_RUN_LABEL.to_string(), run.to_string()),
            (PART_LABEL.to_string(), part.to_string()),
        ])),
        ..Default::default()
    }
}

/// A fleet run id: what labels and names allow, at most 40 characters.
pub fn check_run_id(run: &str) -> Result<(), String> {
    let ok = !run.is_empty()
        && run.len() <= 40
        && run
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !run.starts_with('-')
        && !run.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "fleet run id {run:?}: use 1 to 40 lowercase letters, digits and inner dashes"
        ))
    }
}

fn result_name(run: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(&Sha256::digest(key.as_bytes())[..8]);
    format!("dscan-result-{run}-{digest}")
}

fn shard_name(run: &str, index: u32) -> String {
    format!("dscan-shard-{run}-{index}")
}

/// gzip.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// gunzip, refusing more than `limit` bytes out.
pub fn decompress(bytes: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not gzip: {e}"))?;
    if out.len() > limit {
        return Err(format!("more than {limit} bytes uncompressed"));
    }
    Ok(out)
}

/// Stores one container's outcome; results too large for a ConfigMap are
/// refused with the reason.
pub async fn put_target(
    client: &kube::Client,
    namespace: &str,
    run: &str,
    record: &StoredTarget,
    results: Option<&[u8]>,
) -> Result<(), ClusterError> {
    let key = record.target.key();
    let mut binary = BTreeMap::new();
    if let Some(r) = results {
        let packed = compress(r);
        if packed.len() > MAX_STORED {
            return Err(ClusterError::Target(format!(
                "the results of {key} are {} KiB compressed, over the {} KiB a ConfigMap holds here; run that target with --results-dir on a volume",
                packed.len() / 1024,
                MAX_STORED / 1024
            )));
        }
        binary.insert("results.json.gz".to_string(), ByteString(packed));
    }
    let text = serde_json::to_string(record).map_err(|e| ClusterError::Internal(e.to_string()))?;
    let cm = ConfigMap {
        metadata: meta(result_name(run, &key), run, "result"),
        data: Some(BTreeMap::from([("record.json".to_string(), text)])),
        binary_data: (!binary.is_empty()).then_some(binary),
        ..Default::default()
    };
    put(
        client,
        namespace,
        &cm,
        &format!("store the results of {key} in namespace {namespace}"),
    )
    .await
}

/// Creates the ConfigMap; one left by an earlier attempt of the same shard
/// (a retried Job pod) is replaced.
async fn put(
    client: &kube::Client,
    namespace: &str,
    cm: &ConfigMap,
    action: &str,
) -> Result<(), ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    match bounded(action, CALL_TIMEOUT, api.create(&PostParams::default(), cm)).await {
        Err(ClusterError::Api {
            code: Some(409), ..
        }) => {
            let name = cm.metadata.name.clone().unwrap_or_default();
            bounded(
                action,
                CALL_TIMEOUT,
                api.delete(&name, &DeleteParams::default()),
            )
            .await?;
            bounded(action, CALL_TIMEOUT, api.create(&PostParams::default(), cm)).await?;
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

/// Stores a shard's record (last: its presence says the shard finished).
pub async fn put_shard(
    client: &kube::Client,
    namespace: &str,
    run: &str,
    record: &ShardRecord,
) -> Result<(), ClusterError> {
    let text = serde_json::to_string(record).map_err(|e| ClusterError::Internal(e.to_string()))?;
    let cm = ConfigMap {
        metadata: meta(shard_name(run, record.index), run, "shard"),
        data: Some(BTreeMap::from([("shard.json".to_string(), text)])),
        ..Default::default()
    };
    let shard = Shard {
        index: record.index,
        count: record.count,
    };
    put(
        client,
        namespace,
        &cm,
        &format!("store the record of shard {shard}"),
    )
    .await
}

/// Reads every stored part of fleet run `run`.
pub async fn gather(
    client: &kube::Client,
    namespace: &str,
    run: &str,
    max_results: usize,
) -> Result<Gathered, ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let lp = ListParams::default().labels(&format!(
        "app.kubernetes.io/managed-by={MANAGED_BY},{FLEET_RUN_LABEL}={run}"
    ));
    let list = bounded(
        &format!("list the stored results of fleet run {run} in namespace {namespace}"),
        CALL_TIMEOUT,
        api.list(&lp),
    )
    .await?;
    let mut out = Gathered::default();
    for cm in list.items {
        let name = cm.metadata.name.clone().unwrap_or_default();
        out.names.push(name.clone());
        let part = cm
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(PART_LABEL).cloned())
            .unwrap_or_default();
        let data = cm.data.clone().unwrap_or_default();
        match part.as_str() {
            "shard" => match data
                .get("shard.json")
                .map(|t| serde_json::from_str::<ShardRecord>(t))
            {
                Some(Ok(r)) => {
                    out.shards.insert(r.index, r);
                }
                Some(Err(e)) => out.unreadable.push((name, e.to_string())),
                None => out.unreadable.push((name, "no shard.json".into())),
            },
            "result" => {
                let record = match data
                    .get("record.json")
                    .map(|t| serde_json::from_str::<StoredTarget>(t))
                {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => {
                        out.unreadable.push((name, e.to_string()));
                        continue;
                    }
                    None => {
                        out.unreadable.push((name, "no record.json".into()));
                        continue;
                    }
                };
                let results = match cm
                    .binary_data
                    .as_ref()
                    .and_then(|b| b.get("results.json.gz"))
                {
                    None => None,
                    Some(packed) => match decompress(&packed.0, max_results) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            out.unreadable.push((name, format!("results.json.gz: {e}")));
                            continue;
                        }
                    },
                };
                out.targets.push(Collected { record, results });
            }
            other => out
                .unreadable
                .push((name, format!("unknown part label {other:?}"))),
        }
    }
    out.targets.sort_by_key(|c| c.record.target.key());
    Ok(out)
}

/// Removes the named ConfigMaps; returns those that could not be removed.
pub async fn remove(
    client: &kube::Client,
    namespace: &str,
    names: &[String],
) -> Vec<(String, String)> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut failed = vec![];
    for name in names {
        match bounded(
            &format!("delete ConfigMap {namespace}/{name}"),
            CALL_TIMEOUT,
            api.delete(name, &DeleteParams::default()),
        )
        .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => failed.push((name.clone(), e.to_string())),
        }
    }
    failed
}

/// Stores every target's outcome of a shard's run and then the shard's
/// record; an outcome that could not be stored is named in the record and
/// makes the whole a cluster error.
pub async fn store_shard<T: StoredOutcome>(
    client: &kube::Client,
    namespace: &str,
    run: &str,
    record: &FleetRecord,
    runs: &[TargetRun<T>],
    outcome: &Result<(), ClusterError>,
) -> Result<(), ClusterError> {
    let mut not_stored = vec![];
    let mut scanned = vec![];
    let mut codes = vec![];
    for r in runs {
        scanned.push(r.target.key());
        let stored = StoredTarget {
            target: r.target.clone(),
            error: r.outcome.as_ref().err().map(ToString::to_string),
            exit_code: r.outcome.as_ref().err().map(ClusterError::exit_code),
            strategy: r.outcome.as_ref().ok().map(|o| o.strategy().to_string()),
            seconds: r.seconds,
        };
        codes.push(stored.exit_code.unwrap_or(exit::OK));
        let results = r.outcome.as_ref().ok().map(|o| r.target.stamp(o.results()));
        if let Err(e) = put_target(client, namespace, run, &stored, results.as_deref()).await {
            not_stored.push((r.target.key(), e.to_string()));
        }
    }
    let shard = record.shard.unwrap_or(Shard { index: 0, count: 1 });
    let exit_code = exit::worst(
        codes
            .into_iter()
            .chain(outcome.as_ref().err().map(ClusterError::exit_code))
            .chain((!not_stored.is_empty()).then_some(exit::CLUSTER)),
    );
    let shard_record = ShardRecord {
        index: shard.index,
        count: shard.count,
        scanned,
        skipped: record.skipped.clone(),
        covered: record
            .covered
            .iter()
            .map(|c| (c.target.clone(), c.by.clone()))
            .collect(),
        not_stored: not_stored.clone(),
        error: record.error.clone(),
        exit_code,
    };
    put_shard(client, namespace, run, &shard_record).await?;
    if let Some((key, why)) = not_stored.first() {
        return Err(ClusterError::Target(format!(
            "{} result(s) could not be stored, the first {key}: {why}",
            not_stored.len()
        )));
    }
    Ok(())
}

/// What storing needs of a scan's outcome.
pub trait StoredOutcome {
    /// The access strategy the scan used.
    fn strategy(&self) -> &str;
    /// Its HDF results.
    fn results(&self) -> &[u8];
}

impl StoredOutcome for crate::scan::ScanOutcome {
    fn strategy(&self) -> &str {
        &self.strategy
    }
    fn results(&self) -> &[u8] {
        &self.results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip_and_a_bomb_is_refused() {
        let text = br#"{"profiles": []}"#.repeat(1000);
        let packed = compress(&text);
        assert!(packed.len() < text.len() / 10);
        assert_eq!(decompress(&packed, 1 << 20).unwrap(), text);
        assert!(
            decompress(&packed, 100)
                .unwrap_err()
                .contains("more than 100")
        );
        assert!(decompress(b"plain", 100).is_err());
    }

    #[test]
    fn run_ids_fit_labels_and_names() {
        assert!(check_run_id("nightly-2026-11-30").is_ok());
        assert!(check_run_id("Nightly").is_err());
        assert!(check_run_id("-x").is_err());
        assert!(check_run_id(&"a".repeat(41)).is_err());
        let name = result_name(&"a".repeat(40), "ns/pod/container");
        assert!(name.len() <= 253, "{name}");
        assert_ne!(result_name("r", "a/b/c"), result_name("r", "a/b/d"));
    }
}
