//! The token byte format. One token has exactly one encoding: fixed little-endian
//! fields, length-prefixed strings, no general-purpose serializer. See docs/TOKEN.md.
//!
//! ```text
//! text      = "pdb1." base64url-no-pad(header || body || signature)
//! header    = version:u8 (1) || type:u8 (1 access, 2 one-time) || key_id:u64 LE         (10 bytes)
//! body      = str(project) || str(user_id) || str(session_id) || token_id:[u8;16]
//!             || issued_at:i64 LE || not_before:i64 LE || expires_at:i64 LE   (Unix seconds)
//! str(s)    = len:u8 || s        (1 to 36 bytes of id characters)
//! signature = Ed25519(PAE("permdb-token-v1", header, body, store_id))        (64 bytes)
//! PAE(p..)  = count:u64 LE || for each p: len(p):u64 LE || p
//! ```
//! `store_id` (16 random bytes) is signed but never sent, so a token of another store
//! cannot verify; the header (and so the type) is signed, so no type can pass for another.

use time::OffsetDateTime;

use super::TokenError;
use crate::id::id_fault;

/// Longest token text accepted; permdb's own are well under it.
pub const MAX_TOKEN_LEN: usize = 512;
pub(crate) const VERSION: u8 = 1;
pub(crate) const PREFIX: &str = "pdb1.";
pub(crate) const DOMAIN: &[u8] = b"permdb-token-v1";
pub(crate) const HEADER_LEN: usize = 10;
pub(crate) const SIGNATURE_LEN: usize = 64;
/// Shortest body: three one-byte strings, token id, three timestamps.
const MIN_BODY_LEN: usize = 3 * 2 + 16 + 24;
const MAX_BODY_LEN: usize = 3 * 37 + 16 + 24;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Usable until it expires (`create_jwt`).
    Access,
    /// Usable once (`create_one_time_jwt`).
    OneTime,
}

impl TokenKind {
    fn code(self) -> u8 {
        match self {
            TokenKind::Access => 1,
            TokenKind::OneTime => 2,
        }
    }
}

/// The claims of a token whose signature has verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// Access or one-time.
    pub kind: TokenKind,
    /// The signing key's id.
    pub key_id: u64,
    /// The project it was issued for.
    pub project: String,
    /// The user it acts as.
    pub user_id: String,
    /// The session it was created from.
    pub session_id: String,
    /// Random, unique per token (128 bits).
    pub token_id: [u8; 16],
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// Not valid before.
    pub not_before: OffsetDateTime,
    /// Not valid after.
    pub expires_at: OffsetDateTime,
}

/// The header, read before the signature is checked (it names the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: TokenKind,
    pub(crate) key_id: u64,
}

pub(crate) fn encode_header(kind: TokenKind, key_id: u64) -> [u8; HEADER_LEN] {
    let [k0, k1, k2, k3, k4, k5, k6, k7] = key_id.to_le_bytes();
    [VERSION, kind.code(), k0, k1, k2, k3, k4, k5, k6, k7]
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Callers pass validated ids: 1 to 36 bytes.
    out.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn encode_body(c: &TokenClaims) -> Vec<u8> {
    let mut b = Vec::with_capacity(MAX_BODY_LEN);
    put_str(&mut b, &c.project);
    put_str(&mut b, &c.user_id);
    put_str(&mut b, &c.session_id);
    b.extend_from_slice(&c.token_id);
    for t in [c.issued_at, c.not_before, c.expires_at] {
        b.extend_from_slice(&t.unix_timestamp().to_le_bytes());
    }
    b
}

/// Pre-authentication encoding: every piece length-prefixed, so no two inputs collide.
pub(crate) fn pae(pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + pieces.iter().map(|p| 8 + p.len()).sum::<usize>());
    out.extend_from_slice(&(pieces.len() as u64).to_le_bytes());
    for p in pieces {
        out.extend_from_slice(&(p.len() as u64).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

pub(crate) fn signing_input(header: &[u8], body: &[u8], store_id: &[u8; 16]) -> Vec<u8> {
    pae(&[DOMAIN, header, body, store_id])
}

/// A token split into its parts, after size, prefix, version, base64 and length checks.
pub(crate) struct Parts {
    pub(crate) header: Header,
    pub(crate) header_bytes: [u8; HEADER_LEN],
    pub(crate) body: Vec<u8>,
    pub(crate) signature: [u8; SIGNATURE_LEN],
}

impl TokenClaims {
    /// Reads the claims of a token **without verifying it**: no signature, project, time
    /// or session check. For inspecting a token (`permdb token inspect`); never act on it.
    pub fn decode_unverified(text: &str) -> Result<TokenClaims, TokenError> {
        let parts = split(text)?;
        decode_body(parts.header, &parts.body)
    }
}

/// Steps 1 to 3 of the verification order: size, prefix and version, strict base64,
/// then the fixed header. The body is not looked at.
pub(crate) fn split(text: &str) -> Result<Parts, TokenError> {
    if text.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong {
            len: text.len(),
            max: MAX_TOKEN_LEN,
        });
    }
    let Some(rest) = text.strip_prefix("pdb") else {
        return Err(TokenError::BadPrefix);
    };
    let Some((version, payload)) = rest.split_once('.') else {
        return Err(TokenError::BadPrefix);
    };
    match version {
        "1" => {}
        v if !v.is_empty() && v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(TokenError::UnsupportedVersion(v.parse().unwrap_or(0)));
        }
        _ => return Err(TokenError::BadPrefix),
    }
    let bytes = crate::secret::b64_decode(payload).ok_or(TokenError::BadEncoding)?;
    let body_len = bytes.len().checked_sub(HEADER_LEN + SIGNATURE_LEN);
    if !body_len.is_some_and(|n| (MIN_BODY_LEN..=MAX_BODY_LEN).contains(&n)) {
        return Err(TokenError::BadLength(bytes.len()));
    }
    let (header_bytes, rest) = bytes.split_at(HEADER_LEN);
    let (body, signature) = rest.split_at(rest.len() - SIGNATURE_LEN);
    let header_bytes: [u8; HEADER_LEN] = header_bytes
        .try_into()
        .map_err(|_| TokenError::BadLength(bytes.len()))?;
    let signature: [u8; SIGNATURE_LEN] = signature
        .try_into()
        .map_err(|_| TokenError::BadLength(bytes.len()))?;
    let [version, kind, key_id @ ..] = header_bytes;
    if version != VERSION {
        return Err(TokenError::UnsupportedVersion(u32::from(version)));
    }
    let kind = match kind {
        1 => TokenKind::Access,
        2 => TokenKind::OneTime,
        other => return Err(TokenError::UnknownType(other)),
    };
    Ok(Parts {
        header: Header {
            kind,
            key_id: u64::from_le_bytes(key_id),
        },
        header_bytes,
        body: body.to_vec(),
        signature,
    })
}

/// Reads the body; called only after the signature has verified. Exact lengths, every
/// string an id, checked time conversion, and no byte left over.
pub(crate) fn decode_body(header: Header, body: &[u8]) -> Result<TokenClaims, TokenError> {
    let mut r = Reader { bytes: body };
    let project = r.string("project")?;
    let user_id = r.string("user id")?;
    let session_id = r.string("session id")?;
    let token_id: [u8; 16] = r
        .take(16, "token id")?
        .try_into()
        .map_err(|_| bad("token id"))?;
    let mut times = [OffsetDateTime::UNIX_EPOCH; 3];
    for (slot, name) in times
        .iter_mut()
        .zip(["issued-at", "not-before", "expires-at"])
    {
        let secs = i64::from_le_bytes(r.take(8, name)?.try_into().map_err(|_| bad(name))?);
        *slot = OffsetDateTime::from_unix_timestamp(secs).map_err(|_| bad(name))?;
    }
    if !r.bytes.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let [issued_at, not_before, expires_at] = times;
    Ok(TokenClaims {
        kind: header.kind,
        key_id: header.key_id,
        project,
        user_id,
        session_id,
        token_id,
        issued_at,
        not_before,
        expires_at,
    })
}

fn bad(what: &str) -> TokenError {
    TokenError::BadClaims(what.to_string())
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], TokenError> {
        if self.bytes.len() < n {
            return Err(bad(what));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn string(&mut self, what: &str) -> Result<String, TokenError> {
        let len = *self.take(1, what)?.first().ok_or_else(|| bad(what))?;
        let s = std::str::from_utf8(self.take(usize::from(len), what)?).map_err(|_| bad(what))?;
        if id_fault(s).is_some() {
            return Err(bad(what));
        }
        Ok(s.to_owned())
    }
}

/// Step "time with leeway": `now` must lie in `[max(issued_at, not_before) - leeway, expires_at + leeway]`.
pub(crate) fn check_time(
    c: &TokenClaims,
    now: OffsetDateTime,
    leeway: time::Duration,
) -> Result<(), TokenError> {
    // Checked arithmetic: a bound that overflows the calendar is no bound.
    let start = c.issued_at.max(c.not_before);
    if start
        .checked_sub(leeway)
        .is_some_and(|earliest| now < earliest)
    {
        return Err(TokenError::NotYetValid);
    }
    // A token that ends before it starts is valid at no time (only a broken signer makes
    // one): expired, whatever the leeway.
    if c.expires_at < start
        || c.expires_at
            .checked_add(leeway)
            .is_some_and(|latest| now > latest)
    {
        return Err(TokenError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Claims valid from `start` (issued at and not before) to `expires`.
    fn claims(start: i64, expires: i64) -> TokenClaims {
        TokenClaims {
            kind: TokenKind::Access,
            key_id: 1,
            project: "p".into(),
            user_id: "u".into(),
            session_id: "s".into(),
            token_id: [0; 16],
            issued_at: at(start),
            not_before: at(start),
            expires_at: at(expires),
        }
    }

    const LEEWAY: time::Duration = time::Duration::seconds(60);

    /// A token whose expiry comes before its start is valid at no time, even within the
    /// leeway (the fuzz target's re-signed claims found the verifier accepting one).
    #[test]
    fn a_token_ending_before_it_starts_is_expired() {
        let backwards = claims(1_000, 990);
        assert_eq!(
            check_time(&backwards, at(995), LEEWAY),
            Err(TokenError::Expired)
        );
        let fine = claims(1_000, 1_900);
        assert_eq!(
            check_time(&fine, at(995), LEEWAY),
            Ok(()),
            "within the leeway"
        );
        assert_eq!(
            check_time(&fine, at(930), LEEWAY),
            Err(TokenError::NotYetValid)
        );
    }

    /// The bounds are inclusive: valid from `start - leeway` to `expires + leeway`.
    #[test]
    fn the_time_bounds_are_inclusive() {
        let c = claims(1_000, 1_900);
        assert_eq!(check_time(&c, at(940), LEEWAY), Ok(()));
        assert_eq!(
            check_time(&c, at(939), LEEWAY),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(check_time(&c, at(1_960), LEEWAY), Ok(()));
        assert_eq!(check_time(&c, at(1_961), LEEWAY), Err(TokenError::Expired));
        // A token ending the instant it starts is valid then (and for the leeway).
        assert_eq!(check_time(&claims(1_000, 1_000), at(1_000), LEEWAY), Ok(()));
    }
}
