//! The chain: each entry's hash is HMAC-SHA256, under a key derived from the master secret,
//! of its fields (each length-prefixed, so no two entries encode alike) and the previous
//! entry's hash. Verifying walks from the first entry kept (pruning leaves the hash of the last
//! one removed in the head row) to the head: an edited row fails its own hash, a removed or
//! inserted one breaks the link or the numbering, a removed tail disagrees with the head.

use hmac::{KeyInit as _, Mac as _};
use latchkey_store::{Row as _, StoreError};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

use super::{AuditRow, COLUMNS, from_row};
use crate::secrets::MasterKey;
use crate::state::Identity;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Entries read per page while verifying.
const PAGE: i64 = 1000;

/// The chain's key.
pub(crate) fn key(master: &MasterKey) -> [u8; 32] {
    master.derive("audit log chain")
}

/// The hash `row` must carry, given its `prev_hash`.
pub(crate) fn hash(key: &[u8; 32], row: &AuditRow) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"latchkey audit v1\0");
    let seq = row.seq.to_string();
    let occurred_at = row.occurred_at.to_string();
    for field in [
        Some(seq.as_str()),
        Some(row.id.as_str()),
        Some(occurred_at.as_str()),
        Some(row.actor_type.as_str()),
        row.actor_id.as_deref(),
        Some(row.action.as_str()),
        row.subject_id.as_deref(),
        Some(row.detail.as_str()),
        row.ip.as_deref(),
        Some(row.prev_hash.as_str()),
    ] {
        match field {
            None => mac.update(&[0]),
            Some(text) => {
                mac.update(&[1]);
                mac.update(&u64::try_from(text.len()).unwrap_or(u64::MAX).to_be_bytes());
                mac.update(text.as_bytes());
            }
        }
    }
    hex::encode(mac.finalize().into_bytes())
}

/// What verifying found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Entries checked.
    pub checked: u64,
    /// The first entry kept (after pruning) and the last.
    pub first_seq: i64,
    pub last_seq: i64,
    /// Where the chain breaks, if it does.
    pub broken: Option<Break>,
}

/// The first place the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The entry's number (where one is missing, the number expected there).
    pub seq: i64,
    /// The entry's id, when there is an entry.
    pub id: Option<String>,
    pub reason: String,
}

/// Walks the chain; see the module documentation.
///
/// # Errors
/// Database failures.
pub async fn verify(identity: &Identity) -> Result<Verified, StoreError> {
    let key = key(identity.master());
    let mut tx = identity.db().begin_read().await?;
    let q = tx.query(
        "SELECT last_seq, last_hash, pruned_seq, pruned_hash FROM identity_audit_head WHERE id = 1",
    );
    let head = tx.fetch_one(q).await?;
    tx.commit().await?;
    let last_seq: i64 = head.try_get("last_seq")?;
    let last_hash: String = head.try_get("last_hash")?;
    let pruned_seq: i64 = head.try_get("pruned_seq")?;
    let mut expected_prev: String = head.try_get("pruned_hash")?;
    let mut verified = Verified {
        checked: 0,
        first_seq: pruned_seq + 1,
        last_seq,
        broken: None,
    };
    let mut next = pruned_seq + 1;
    let breaks = |seq, id: Option<&str>, reason: &str| {
        Some(Break {
            seq,
            id: id.map(str::to_owned),
            reason: reason.to_owned(),
        })
    };
    loop {
        let mut tx = identity.db().begin_read().await?;
        let q = tx
            .query_owned(format!(
                "SELECT {COLUMNS} FROM identity_audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2"
            ))
            .bind(next)
            .bind(PAGE);
        let rows = tx.fetch_all(q).await?;
        tx.commit().await?;
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) == PAGE;
        for row in &rows {
            let row = from_row(row)?;
            if row.seq != next {
                verified.broken = breaks(next, None, "the entry is missing");
                return Ok(verified);
            }
            if row.prev_hash != expected_prev {
                verified.broken = breaks(
                    row.seq,
                    Some(&row.id),
                    "its previous hash is not the hash of the entry before it",
                );
                return Ok(verified);
            }
            let computed = hash(&key, &row);
            if !bool::from(computed.as_bytes().ct_eq(row.hash.as_bytes())) {
                verified.broken = breaks(
                    row.seq,
                    Some(&row.id),
                    "its content does not match its hash (edited)",
                );
                return Ok(verified);
            }
            verified.checked += 1;
            expected_prev = row.hash;
            next += 1;
        }
        if !full {
            break;
        }
    }
    if next - 1 != last_seq || expected_prev != last_hash {
        verified.broken = breaks(
            next,
            None,
            "the chain ends before the last entry written (entries removed from its end)",
        );
    }
    Ok(verified)
}

/// Removes entries older than `before_ms`, keeping the hash of the last one removed so the
/// rest still verifies. Returns how many went.
///
/// # Errors
/// Database failures.
pub async fn prune(identity: &Identity, before_ms: i64) -> Result<u64, StoreError> {
    let mut tx = identity.db().begin().await?;
    // The head's lock first, as writers take it: no entry is added while the cut is made.
    let q = tx.query("UPDATE identity_audit_head SET pruned_seq = pruned_seq WHERE id = 1");
    tx.execute(q).await?;
    let q = tx
        .query(
            "SELECT seq, hash FROM identity_audit_log WHERE occurred_at < $1 \
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(before_ms);
    let Some(cut) = tx.fetch_optional(q).await? else {
        tx.commit().await?;
        return Ok(0);
    };
    let seq: i64 = cut.try_get("seq")?;
    let hash: String = cut.try_get("hash")?;
    let q = tx
        .query("DELETE FROM identity_audit_log WHERE seq <= $1")
        .bind(seq);
    let removed = tx.execute(q).await?;
    let q = tx
        .query("UPDATE identity_audit_head SET pruned_seq = $1, pruned_hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(&hash);
    tx.execute(q).await?;
    tx.commit().await?;
    Ok(removed)
}
