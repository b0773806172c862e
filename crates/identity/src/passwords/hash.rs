//! argon2id hashes as PHC strings: computing, checking, and telling when one is out of date.
//!
//! Everything here is synchronous and CPU-bound (tens of milliseconds and 19 MiB per call);
//! only [`PasswordHasher`](super::PasswordHasher)'s worker threads may call the hashing and
//! verifying functions. [`needs_rehash`] only parses, so it is cheap anywhere.

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash as Phc, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;

/// Memory cost in KiB: 19 MiB, OWASP's recommended minimum for argon2id with `t = 2, p = 1`.
pub const M_COST_KIB: u32 = 19 * 1024;
/// Passes over memory.
pub const T_COST: u32 = 2;
/// Lanes.
pub const P_COST: u32 = 1;

/// Random salt per hash; 16 bytes is what the PHC string format recommends.
const SALT_LEN: usize = 16;
/// Hash output in bytes, argon2's default; fixed so that a change of library default cannot
/// silently change what is stored.
const OUTPUT_LEN: usize = 32;

/// Ceilings on the parameters of a stored hash. Hashes may be imported from elsewhere, and a
/// corrupted or hostile row asking for gigabytes of memory must not take the server down; these
/// are far above any sensible interactive setting (libsodium's "sensitive" is 1 GiB, t = 4).
const MAX_STORED_M_COST_KIB: u32 = 1024 * 1024;
const MAX_STORED_T_COST: u32 = 16;
const MAX_STORED_P_COST: u32 = 16;

/// Why hashing or verifying could not give an answer. A wrong password is not an error:
/// verification answers `Ok(false)`.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the queue is full; answer 503 so the client retries later.
    #[error("too many password checks in progress; try again shortly")]
    Busy,
    /// The stored hash is not an argon2 PHC string within latchkey's limits.
    #[error("the stored password hash is not an argon2 PHC string latchkey accepts")]
    InvalidHash,
    /// The job got no answer: it panicked, or the worker threads are gone.
    #[error("the password hashing threads are not running")]
    Stopped,
    /// The worker threads could not be started.
    #[error("could not start the password hashing threads")]
    Start(#[source] std::io::Error),
    /// argon2 itself failed, for instance because the system's random number generator did.
    #[error("password hashing failed")]
    Internal(#[source] argon2::password_hash::Error),
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), ready to store. Its `Debug`
/// prints nothing of it: hashes are never logged, since each one can be attacked offline.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The PHC string, to store.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The PHC string, to store.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(redacted)")
    }
}

/// Evaluated at compile time, so parameters argon2 would refuse fail the build, not a sign-up.
const CURRENT_PARAMS: Params = match Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)) {
    Ok(params) => params,
    Err(_) => panic!("argon2 refuses latchkey's parameters"),
};

/// Size every kept buffer is reserved at (virtual memory; only what a hash uses is touched).
/// Above glibc's largest dynamic mmap threshold (32 MiB on 64-bit), so the allocator always
/// maps it on its own and unmaps it when it is dropped: releasing a buffer gives its memory back
/// to the system at once, instead of leaving it in a thread's malloc arena for good.
const RESERVED_BYTES: usize = 33 * 1024 * 1024;

thread_local! {
    /// Each worker keeps its argon2 memory (19 MiB at current parameters) between calls, until
    /// [`release_memory`]. Allocating it per call made the allocator hand memory back to the
    /// kernel and fault it in again, page by page: measured here, over a third of a worker's
    /// time went to page faults.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs argon2 with this thread's kept memory. Hashes with larger parameters than latchkey's
/// own (imported ones) get a one-off buffer, so a worker never holds more than it needs for
/// current hashes.
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    if blocks > CURRENT_PARAMS.block_count() {
        let mut memory = vec![Block::new(); blocks];
        return argon.hash_password_into_with_memory(password, salt, out, &mut memory[..]);
    }
    MEMORY.with(|cell| {
        let mut memory = cell.borrow_mut();
        if memory.len() < blocks {
            if memory.capacity() < blocks {
                let reserve = (RESERVED_BYTES / size_of::<Block>()).max(blocks);
                *memory = Vec::with_capacity(reserve);
            }
            memory.resize(blocks, Block::new());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

/// Gives this thread's kept argon2 memory back to the system; the next hash on this thread
/// maps it again. The hashing threads call it once they have been idle a while.
pub(super) fn release_memory() {
    MEMORY.with(|cell| {
        let mut memory = cell.borrow_mut();
        if memory.capacity() > 0 {
            *memory = Vec::new();
        }
    });
}

/// Bytes of argon2 memory this thread keeps.
#[cfg(test)]
pub(super) fn kept_memory() -> usize {
    MEMORY.with(|cell| cell.borrow().capacity() * size_of::<Block>())
}

/// Hashes `password` with the current parameters and a fresh random salt.
pub(super) fn hash_password(password: &[u8]) -> Result<PasswordHash, HashError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt)
        .map_err(|_| HashError::Internal(argon2::password_hash::Error::RngFailure))?;
    let mut out = [0u8; OUTPUT_LEN];
    compute(
        Algorithm::Argon2id,
        Version::V0x13,
        CURRENT_PARAMS,
        password,
        &salt,
        &mut out,
    )
    .map_err(|e| HashError::Internal(e.into()))?;
    let phc = Phc {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&CURRENT_PARAMS).map_err(HashError::Internal)?,
        salt: Some(Salt::new(&salt).map_err(|e| HashError::Internal(e.into()))?),
        hash: Some(Output::new(&out).map_err(|e| HashError::Internal(e.into()))?),
    };
    Ok(PasswordHash(phc.to_string()))
}

/// Whether `password` matches `stored`, using the algorithm and parameters written in `stored`
/// (so hashes made with older parameters keep working until they are re-hashed). The outputs
/// are compared in constant time.
pub(super) fn verify_password(password: &[u8], stored: &str) -> Result<bool, HashError> {
    if let Some(result) = super::foreign::verify(password, stored) {
        return result;
    }
    let parsed = parse_stored(stored).ok_or(HashError::InvalidHash)?;
    let algorithm =
        Algorithm::new(parsed.algorithm.as_str()).map_err(|_| HashError::InvalidHash)?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).map_err(|_| HashError::InvalidHash)?,
        // As the argon2 crate reads it: no version means the current one.
        None => Version::V0x13,
    };
    let params = Params::try_from(&parsed).map_err(|_| HashError::InvalidHash)?;
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err(HashError::InvalidHash);
    };
    let mut out = vec![0u8; expected.len()];
    compute(
        algorithm,
        version,
        params,
        password,
        salt.as_ref(),
        &mut out,
    )
    .map_err(|_| HashError::InvalidHash)?;
    Ok(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
}

/// Whether `stored` should be replaced by a fresh hash at the user's next successful sign-in:
/// it was made with another algorithm, version, parameters, salt or output length than latchkey
/// uses now, or it cannot be read at all.
#[must_use]
pub fn needs_rehash(stored: &str) -> bool {
    let Some(parsed) = parse_stored(stored) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    let current = CURRENT_PARAMS;
    let salt_len = parsed.salt.as_ref().map(|salt| salt.len());
    let output_len = parsed.hash.as_ref().map(|output| output.len());
    parsed.algorithm != Algorithm::Argon2id.ident()
        || parsed.version != Some(Version::V0x13.into())
        || params.m_cost() != current.m_cost()
        || params.t_cost() != current.t_cost()
        || params.p_cost() != current.p_cost()
        || !params.keyid().is_empty()
        || !params.data().is_empty()
        || salt_len != Some(SALT_LEN)
        || output_len != Some(OUTPUT_LEN)
}

/// Parses a stored hash, accepting any argon2 variant and parameters up to the ceilings.
/// Whether `stored` is an argon2 PHC string within latchkey's limits.
pub(super) fn is_readable(stored: &str) -> bool {
    parse_stored(stored).is_some()
}

fn parse_stored(stored: &str) -> Option<Phc> {
    let parsed = Phc::new(stored).ok()?;
    Algorithm::new(parsed.algorithm.as_str()).ok()?;
    parsed.salt.as_ref()?;
    parsed.hash.as_ref()?;
    let params = Params::try_from(&parsed).ok()?;
    let within_limits = params.m_cost() <= MAX_STORED_M_COST_KIB
        && params.t_cost() <= MAX_STORED_T_COST
        && params.p_cost() <= MAX_STORED_P_COST;
    within_limits.then_some(parsed)
}
