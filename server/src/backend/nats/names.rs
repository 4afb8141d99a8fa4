//! Unique names across servers through the names bucket (docs/NATS.md, "Names"): a login
//! claims both keys of its name with an atomic create; the holder's entry names its
//! server; a leave deletes them only at the revisions it wrote, so it never frees a name
//! someone else holds by then.

use std::time::Duration;

use async_nats::jetstream::kv;

use super::scan::Extent;
use super::wire::{self, Holder};

/// An entry older than this whose holder the replica does not know online was left by a
/// server that died between writing it and its join reaching the stream: it may be taken.
pub const STALE: Duration = Duration::from_secs(10);

/// The outcome of a claim.
#[derive(Debug)]
pub enum Claim {
    /// Both keys are ours, at these revisions.
    Won([u64; 2]),
    /// Someone holds it (their name as typed).
    Taken(String),
}

/// Why a claim could not be decided.
#[derive(Debug, thiserror::Error)]
#[error("the names bucket: {0}")]
pub struct BucketError(String);

fn err(e: impl std::fmt::Display) -> BucketError {
    BucketError(e.to_string())
}

/// Claims `holder.name`. `stale` says whether an existing entry may be taken over, given
/// its holder and age (a gone server's, or one the replica does not know online and older
/// than [`STALE`]); it is taken at the revision read, so two claimants cannot both win it.
pub async fn claim(
    names: &kv::Store,
    holder: &Holder,
    stale: impl Fn(&Holder, Duration) -> bool,
) -> Result<Claim, BucketError> {
    let keys = wire::name_keys(&holder.name);
    let value = holder.encode();
    let mut revs = [0u64; 2];
    for (i, key) in keys.iter().enumerate() {
        let outcome = create(names, key, value.clone(), &stale).await;
        if let Ok(Ok(rev)) = outcome {
            revs[i] = rev;
            continue;
        }
        // Give back what this claim took before it lost or failed.
        if i == 1 {
            let _ = names.delete_expect_revision(&keys[0], Some(revs[0])).await;
        }
        return match outcome {
            Ok(Err(name)) => Ok(Claim::Taken(name)),
            Err(e) => Err(e),
            Ok(Ok(_)) => Ok(Claim::Won(revs)),
        };
    }
    Ok(Claim::Won(revs))
}

/// Creates `key`; `Ok(Err(name))` when a live holder has it.
async fn create(
    names: &kv::Store,
    key: &str,
    value: bytes::Bytes,
    stale: &impl Fn(&Holder, Duration) -> bool,
) -> Result<Result<u64, String>, BucketError> {
    match names.create(key, value.clone()).await {
        Ok(rev) => return Ok(Ok(rev)),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(e)),
    }
    let Some(entry) = names.entry(key).await.map_err(err)? else {
        // Deleted meanwhile: one more try.
        return names.create(key, value).await.map(Ok).map_err(err);
    };
    let holder = Holder::decode(&entry.value);
    let age = since_nanos(entry.created.unix_timestamp_nanos());
    let takeable = match &holder {
        Some(h) => stale(h, age),
        None => true,
    };
    if !takeable {
        return Ok(Err(holder.map(|h| h.name).unwrap_or_default()));
    }
    tracing::info!(key, "taking over a stale name entry");
    match names.update(key, value, entry.revision).await {
        Ok(rev) => Ok(Ok(rev)),
        // Someone else was quicker: theirs now.
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
            Ok(Err(holder.map(|h| h.name).unwrap_or_default()))
        }
        Err(e) => Err(err(e)),
    }
}

/// Time since a moment given in ns since the Unix epoch (the cluster's clock).
fn since_nanos(nanos: i128) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let then = u64::try_from(nanos).unwrap_or(0);
    now.saturating_sub(Duration::from_nanos(then))
}

/// Frees `name` where we hold it at `revs`.
pub async fn release(names: &kv::Store, name: &str, revs: [u64; 2]) {
    for (key, rev) in wire::name_keys(name).iter().zip(revs) {
        if let Err(e) = names.delete_expect_revision(key, Some(rev)).await {
            tracing::debug!(key, "a name entry was not ours any more: {e}");
        }
    }
}

/// Frees `name` if server `srv` holds it (a gone server's user), whatever the revision.
pub async fn release_for(names: &kv::Store, name: &str, srv: &str) {
    for key in wire::name_keys(name) {
        let Ok(Some(entry)) = names.entry(&key).await else {
            continue;
        };
        if Holder::decode(&entry.value).is_some_and(|h| h.srv == srv) {
            let _ = names
                .delete_expect_revision(&key, Some(entry.revision))
                .await;
        }
    }
}

/// Every holder in the bucket now: the last value of each folded key, read from the
/// bucket's stream in batches (deleted entries skipped). Not through a KV watch: this
/// needs the current values once. Every key is read, skeletons too, so the read knows
/// from the stream's count of subjects how many to expect (the scan's module says why).
pub async fn holders(names: &kv::Store) -> Result<Vec<Holder>, BucketError> {
    let info = names.stream.get_info().await.map_err(err)?;
    let extent = Extent::LastPerSubject {
        all: format!("{}>", names.prefix),
        subjects: info.state.subjects_count,
    };
    let mut out = Vec::new();
    super::scan::scan(&names.stream, extent, |m| {
        let folded = m
            .subject
            .strip_prefix(names.prefix.as_str())
            .is_some_and(wire::is_folded_key);
        let deleted = m
            .headers
            .as_ref()
            .and_then(|h| h.get("KV-Operation"))
            .is_some();
        if folded
            && !deleted
            && let Some(h) = Holder::decode(&m.payload)
        {
            out.push(h);
        }
        std::ops::ControlFlow::Continue(())
    })
    .await
    .map_err(err)?;
    Ok(out)
}
